// Package miniotest runs a real MinIO server on loopback with TLS, the
// upstream that `ssec-proxy demo` and the integration tests use. MinIO
// serves SSE-C only over TLS, so it always gets a certificate from a local
// CA made in its directory.
package miniotest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ssec-proxy/ssec-proxy/internal/certs"
)

// Version is the MinIO the project pins (go install …@Version).
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// Server is a running MinIO.
type Server struct {
	Endpoint  string // https://127.0.0.1:port
	CAFile    string // the CA that signed its certificate
	AccessKey string
	SecretKey string
	Dir       string
	cmd       *exec.Cmd
	done      chan error
}

// Binary finds the minio binary: $SSEC_MINIO_BIN, the cache that
// scripts/deps.sh installs into, or PATH.
func Binary() (string, error) {
	if p := os.Getenv("SSEC_MINIO_BIN"); p != "" {
		return p, nil
	}
	if home, err := os.UserCacheDir(); err == nil {
		p := filepath.Join(home, "ssec-proxy", "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", errors.New("no minio binary: run scripts/deps.sh (go install github.com/minio/minio@" + Version + ") or set SSEC_MINIO_BIN")
}

// Start runs MinIO with its data and certificates under dir, on a free
// loopback port, and waits until it answers.
func Start(ctx context.Context, dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	f, err := certs.Ensure(filepath.Join(dir, "tls"), []string{"localhost", "127.0.0.1"})
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	for src, dst := range map[string]string{f.Cert: "public.crt", f.Key: "private.key"} {
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(certDir, dst), b, 0o600); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	console, err := freePort()
	if err != nil {
		return nil, err
	}
	ak, sk, err := credentials(dir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  fmt.Sprintf("https://127.0.0.1:%d", port),
		CAFile:    f.CA,
		AccessKey: ak,
		SecretKey: sk,
		Dir:       dir,
		done:      make(chan error, 1),
	}
	logFile, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "server", "--quiet",
		"--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", console),
		"--certs-dir", certDir, filepath.Join(dir, "data"))
	s.cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() { s.done <- s.cmd.Wait(); logFile.Close() }()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, fmt.Errorf("minio did not start (see %s): %w", logFile.Name(), err)
	}
	return s, nil
}

// HTTPClient trusts the server's CA.
func (s *Server) HTTPClient() *http.Client {
	return &http.Client{Transport: s.Transport()}
}

// Transport trusts the server's CA.
func (s *Server) Transport() *http.Transport {
	pool := x509.NewCertPool()
	if b, err := os.ReadFile(s.CAFile); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
}

func (s *Server) waitReady(ctx context.Context) error {
	c := s.HTTPClient()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/minio/health/ready", nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-s.done:
			return fmt.Errorf("minio exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop ends the server and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// credentials are made once per directory and kept in it, so that a MinIO
// restarted on the same data keeps its root user.
func credentials(dir string) (string, string, error) {
	path := filepath.Join(dir, "credentials")
	if b, err := os.ReadFile(path); err == nil {
		if ak, sk, ok := strings.Cut(strings.TrimSpace(string(b)), "\n"); ok {
			return ak, sk, nil
		}
	}
	ak, sk := "minio-"+randHex(6), randHex(20)
	return ak, sk, os.WriteFile(path, []byte(ak+"\n"+sk+"\n"), 0o600)
}
