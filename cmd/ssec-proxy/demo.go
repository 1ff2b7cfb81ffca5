package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/ssec-proxy/ssec-proxy/internal/certs"
	"github.com/ssec-proxy/ssec-proxy/internal/miniotest"
)

func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "ssec-proxy")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "ssec-proxy")
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	dir := fs.String("dir", filepath.Join(defaultStateDir(), "demo"), "where the demo keeps MinIO's data, the key, the config and the certificates")
	listen := fs.String("listen", "127.0.0.1:8443", "the proxy's address")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	mc, err := miniotest.Start(ctx, filepath.Join(*dir, "minio"))
	if err != nil {
		return err
	}
	defer mc.Stop()
	cfgPath, err := writeDemoConfig(*dir, *listen, mc)
	if err != nil {
		return err
	}
	cfg, ring, _, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w (pass --listen 127.0.0.1:PORT)", cfg.Listen, err)
	}
	ca := certs.In(filepath.Join(cfg.StateDir, "tls")).CA
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	endpoint := "https://localhost:" + port
	fmt.Fprintf(stdout, `
ssec-proxy demo: MinIO (TLS) at %s, the proxy in front of it at %s.
Every object is encrypted with the key in %s (rule: bucket "*").
Config: %s   (ssec-proxy check --config %s)

Client settings (paste into a shell):

  export AWS_ENDPOINT_URL=%s
  export AWS_CA_BUNDLE=%s
  export AWS_ACCESS_KEY_ID=%s
  export AWS_SECRET_ACCESS_KEY=%s
  export AWS_DEFAULT_REGION=us-east-1

Then, for example:

  aws s3 mb s3://demo
  echo hello | aws s3 cp - s3://demo/hello.txt
  aws s3 cp s3://demo/hello.txt -

(An aws cli older than 2.13 ignores AWS_ENDPOINT_URL: add --endpoint-url %s.)
Ctrl-C stops the proxy and MinIO.

`, mc.Endpoint, endpoint, filepath.Join(*dir, "demo.key"), cfgPath, cfgPath,
		endpoint, ca, cfg.Clients[0].AccessKey, cfg.Clients[0].SecretKey, endpoint)
	log, err := newLogger("console", "info", stderr)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, ring, ln, log)
}

// writeDemoConfig writes the demo's key (once) and its config (each run:
// MinIO's credentials are new each time).
func writeDemoConfig(dir, listen string, mc *miniotest.Server) (string, error) {
	keyFile := filepath.Join(dir, "demo.key")
	if _, err := os.Stat(keyFile); os.IsNotExist(err) {
		k, err := newKey(rand.Reader)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(keyFile, []byte(k+"\n"), 0o600); err != nil {
			return "", err
		}
	}
	clientKey, clientSecret := "demo-"+randomHex(4), randomHex(16)
	cfg := fmt.Sprintf(`# Written by "ssec-proxy demo": a local MinIO behind the proxy.
listen: %s
tls:
  mode: auto
state_dir: %s
upstream:
  endpoint: %s
  region: us-east-1
  access_key: %s
  secret_key: %s
  ca_file: %s
clients:
  - access_key: %s
    secret_key: %s
keys:
  - id: demo
    file: %s
rules:
  - bucket: "*"
    key: demo
default: deny
admin:
  listen: "off"   # the demo runs no metrics listener, so that it never clashes with a real proxy's
`, listen, filepath.Join(dir, "proxy"), mc.Endpoint, mc.AccessKey, mc.SecretKey, mc.CAFile,
		clientKey, clientSecret, keyFile)
	path := filepath.Join(dir, "ssec-proxy.yaml")
	return path, os.WriteFile(path, []byte(strings.TrimLeft(cfg, "\n")), 0o600)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
