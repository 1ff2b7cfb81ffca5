// Package e2e runs ssec-proxy against a real MinIO over TLS and drives real
// S3 clients through it: minio-go and aws-sdk-go-v2 in process, the aws cli,
// boto3 and s3cmd as programs. Every object is then checked directly on
// MinIO: unreadable without its rule's key, readable with it, plaintext
// where a rule says encrypt: false.
//
// `make test` runs these with SSEC_INTEGRATION=require, which makes a
// missing MinIO a failure; a plain `go test` skips them with a loud message.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/certs"
	"github.com/ssec-proxy/ssec-proxy/internal/miniotest"
	"github.com/ssec-proxy/ssec-proxy/internal/testenv"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy"
)

// env is the running test world, shared by all tests of the package.
var env *world

type world struct {
	minio     *miniotest.Server
	httpsURL  string // the proxy over TLS (https://localhost:port)
	httpURL   string // the same handler over plain HTTP (clients sign aws-chunked there)
	streamURL string // a second proxy with upstream.copy: stream and 5 MiB parts, as SOS needs
	caFile    string // the CA of the proxy's certificate
	clientAK  string
	clientSK  string
	keys      map[string][]byte // key id → raw key
	cfg       *config.Config
	logs      *syncBuffer // everything the proxy logged
	dir       string
}

// The rules every test runs under.
const rulesYAML = `
keys:
  - id: k0
    file: %[1]s/k0.key
  - id: k1
    file: %[1]s/k1.key
  - id: k2
    env: SSEC_E2E_K2
rules:
  - bucket: enc
    key: k1
    previous: [k0]
  - bucket: enc
    prefix: public/
    encrypt: false
  - bucket: mixed
    prefix: secret/
    key: k2
  - bucket: plain
    encrypt: false
  - bucket: "*"
    prefix: star/
    key: k2
  - bucket: enc
    prefix: legacy/
    key: k1
    allow_plaintext_reads: true
default: deny
`

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if ok, fail := testenv.Integration("e2e", "ALL INTEGRATION TESTS"); !ok {
		if fail {
			return 1
		}
		return 0
	}
	dir, err := os.MkdirTemp("", "ssec-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	w, err := start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: setup failed:", err)
		return 1
	}
	defer w.minio.Stop()
	env = w
	code := m.Run()
	if !invariantViolations() {
		code = 1
	}
	if leaks := w.secretsIn(w.logs.String()); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: the proxy's log holds secrets: %v\n", leaks)
		code = 1
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, "MinIO log:", filepath.Join(dir, "minio", "minio.log"))
	}
	return code
}

func start(dir string) (*world, error) {
	mc, err := miniotest.Start(context.Background(), filepath.Join(dir, "minio"))
	if err != nil {
		return nil, err
	}
	w := &world{minio: mc, keys: map[string][]byte{}, logs: &syncBuffer{}, dir: dir}
	for _, id := range []string{"k0", "k1", "k2"} {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		w.keys[id] = k
	}
	// k0 as 32 raw bytes, k1 as base64 in a file, k2 from the environment.
	if err := os.WriteFile(filepath.Join(dir, "k0.key"), w.keys["k0"], 0o600); err != nil {
		return nil, err
	}
	if err := testenv.WriteKey(filepath.Join(dir, "k1.key"), w.keys["k1"]); err != nil {
		return nil, err
	}
	os.Setenv("SSEC_E2E_K2", base64.StdEncoding.EncodeToString(w.keys["k2"]))
	w.clientAK, w.clientSK = "e2e-client", "e2e-client-secret-0123456789"
	os.Setenv("SSEC_E2E_UPSTREAM_SECRET", mc.SecretKey)
	yml := fmt.Sprintf(`listen: 127.0.0.1:0
upstream:
  endpoint: %s
  region: us-east-1
  access_key: %s
  secret_key: ${SSEC_E2E_UPSTREAM_SECRET}
  ca_file: %s
clients:
  - access_key: %s
    secret_key: %s
`, mc.Endpoint, mc.AccessKey, mc.CAFile, w.clientAK, w.clientSK) + fmt.Sprintf(rulesYAML, dir)
	cfgPath := filepath.Join(dir, "ssec-proxy.yaml")
	if err := os.WriteFile(cfgPath, []byte(yml), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	w.cfg = cfg
	ring, _, err := keystore.Build(cfg)
	if err != nil {
		return nil, err
	}
	var sink zapcore.WriteSyncer = zapcore.AddSync(w.logs)
	if p := os.Getenv("SSEC_E2E_LOG"); p != "" { // a copy of the proxy's log, for debugging
		if f, err := os.Create(p); err == nil {
			sink = zapcore.NewMultiWriteSyncer(sink, zapcore.AddSync(f))
		}
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), sink, zap.DebugLevel))
	var h *proxy.Server
	h, err = proxy.New(proxy.Options{Config: cfg, Keyring: ring, Logger: log, WrapTransport: checked(&h)})
	if err != nil {
		return nil, err
	}
	f, err := certs.Ensure(filepath.Join(dir, "proxy-tls"), []string{"localhost", "127.0.0.1", "*.localhost"})
	if err != nil {
		return nil, err
	}
	w.caFile = f.CA
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, err
	}
	tlsLn, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	streamCfg := *cfg
	streamCfg.Upstream.Copy, streamCfg.Upstream.PartSize = config.CopyStream, config.MinPartSize
	var hs *proxy.Server
	hs, err = proxy.New(proxy.Options{Config: &streamCfg, Keyring: ring, Logger: log, WrapTransport: checked(&hs)})
	if err != nil {
		return nil, err
	}
	streamLn, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	for ln, h := range map[net.Listener]http.Handler{tlsLn: h, plainLn: h, streamLn: hs} {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
		go func() { _ = srv.Serve(ln) }()
	}
	w.streamURL = fmt.Sprintf("https://localhost:%d", streamLn.Addr().(*net.TCPAddr).Port)
	w.httpsURL = fmt.Sprintf("https://localhost:%d", tlsLn.Addr().(*net.TCPAddr).Port)
	w.httpURL = fmt.Sprintf("http://localhost:%d", plainLn.Addr().(*net.TCPAddr).Port)
	return w, nil
}

// syncBuffer collects the proxy's log for the secret scan.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func requireEnv(t *testing.T) {
	t.Helper()
	if env == nil {
		t.Skip("integration environment not running")
	}
}

// secretsIn names each secret of the test world that text contains: keys in
// every encoding, secret keys, and signatures (invariant 2).
func (w *world) secretsIn(text string) []string {
	return testenv.Secrets{Keys: w.keys, Secrets: map[string]string{"client secret key": w.clientSK, "upstream secret key": w.minio.SecretKey}}.In(text)
}
