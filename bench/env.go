package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/certs"
	"github.com/ssec-proxy/ssec-proxy/internal/miniotest"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy"
)

// world is what the benchmark runs against: MinIO over TLS, ssec-proxy in
// front of it (a process of the real binary, or in process for profiling),
// and optionally nginx as a plain TLS reverse proxy in front of it too.
type world struct {
	dir    string
	minio  *miniotest.Server
	key    []byte
	direct *endpoint
	proxy  *endpoint
	nginx  *endpoint // nil: no nginx

	pt      certs.Files  // the proxy's (and nginx's) TLS files
	keyFile string       // the rule's key
	hc      *http.Client // trusts MinIO's and the proxy's CAs

	proxyCmd  *exec.Cmd // nil when in process
	proxyDone chan error
	proxySrv  *http.Server
	nginxCmd  *exec.Cmd
	nginxDone chan error
	cleanups  []func() // the network phase's processes, stopped first
}

const clientAK, clientSK = "bench-client", "bench-client-secret-0123456789"

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startWorld(ctx context.Context, dir, proxyBin string, proxyEnv []string, inProcess, withNginx bool) (*world, error) {
	w := &world{dir: dir, key: make([]byte, 32)}
	_, _ = rand.Read(w.key)
	mc, err := miniotest.Start(ctx, filepath.Join(dir, "minio"))
	if err != nil {
		return nil, err
	}
	w.minio = mc
	pt, err := certs.Ensure(filepath.Join(dir, "proxy-tls"), []string{"localhost", "127.0.0.1"})
	if err != nil {
		return w, err
	}
	hc, err := newClient(mc.CAFile, pt.CA)
	if err != nil {
		return w, err
	}
	w.direct = &endpoint{name: "direct", base: mc.Endpoint, ak: mc.AccessKey, sk: mc.SecretKey, sseKey: w.key, hc: hc}
	// MinIO answers ready before its object layer is: retry a while.
	for i := 0; ; i++ {
		err := w.direct.createBucket(ctx)
		if err == nil {
			break
		}
		if i == 100 || !strings.Contains(err.Error(), "503") {
			return w, err
		}
		time.Sleep(200 * time.Millisecond)
	}

	keyFile := filepath.Join(dir, "bench.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(w.key)+"\n"), 0o600); err != nil {
		return w, err
	}
	port, err := freePort()
	if err != nil {
		return w, err
	}
	os.Setenv("SSEC_BENCH_UPSTREAM_SECRET", mc.SecretKey)
	w.pt, w.keyFile, w.hc = pt, keyFile, hc
	cfgPath, err := w.proxyConfig("ssec-proxy", port, "off", mc.Endpoint, proxyETags)
	if err != nil {
		return w, err
	}
	w.proxy = &endpoint{name: "proxy", base: fmt.Sprintf("https://127.0.0.1:%d", port), ak: clientAK, sk: clientSK, hc: hc}
	if inProcess {
		err = w.startProxyInProcess(cfgPath, pt)
	} else {
		err = w.startProxyBinary(proxyBin, cfgPath, proxyEnv)
	}
	if err != nil {
		return w, err
	}
	if err := waitTCP(ctx, w.proxy.base, w.proxyDone); err != nil {
		return w, fmt.Errorf("ssec-proxy did not start (see %s, kept with -keep): %w", filepath.Join(dir, "proxy.log"), err)
	}
	if withNginx {
		if err := w.startNginx(ctx, pt); err != nil {
			return w, err
		}
	}
	return w, nil
}

// proxyConfig writes the config of a proxy named name (its file is
// name.yaml): listening on port, its admin listener on admin ("off" or an
// address), in front of the upstream endpoint, with the given etags
// setting.
func (w *world) proxyConfig(name string, port int, admin, upstream, etags string) (string, error) {
	cfgPath := filepath.Join(w.dir, name+".yaml")
	yml := fmt.Sprintf(`listen: 127.0.0.1:%d
tls:
  mode: files
  cert: %s
  key: %s
state_dir: %s
admin:
  listen: %q
upstream:
  endpoint: %s
  region: %s
  access_key: %s
  secret_key: ${SSEC_BENCH_UPSTREAM_SECRET}
  ca_file: %s
clients:
  - access_key: %s
    secret_key: %s
keys:
  - id: bench
    file: %s
rules:
  - bucket: %s
    key: bench
default: deny
etags: %s
`, port, w.pt.Cert, w.pt.Key, filepath.Join(w.dir, "state-"+name), admin, upstream, region, w.minio.AccessKey, w.minio.CAFile,
		clientAK, clientSK, w.keyFile, bucket, etags)
	return cfgPath, os.WriteFile(cfgPath, []byte(yml), 0o600)
}

func (w *world) startProxyBinary(bin, cfgPath string, env []string) error {
	cmd, done, err := w.launch(bin, "proxy.log", env, "serve", "--config", cfgPath)
	w.proxyCmd, w.proxyDone = cmd, done
	return err
}

// launch starts bin with args, its output in the work directory's logName;
// done reports its exit.
func (w *world) launch(bin, logName string, env []string, args ...string) (*exec.Cmd, chan error, error) {
	logf, err := os.Create(filepath.Join(w.dir, logName))
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logf.Close() }()
	return cmd, done, nil
}

// stopProcess interrupts a process and waits for it, killing it after 10 s.
func stopProcess(cmd *exec.Cmd, done chan error) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
	}
}

// startProxyInProcess serves the same config from this process, so that
// runtime/pprof sees the proxy's code (and the client's: read profiles by
// function).
func (w *world) startProxyInProcess(cfgPath string, pt certs.Files) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	ring, _, err := keystore.Build(cfg)
	if err != nil {
		return err
	}
	h, err := proxy.New(proxy.Options{Config: cfg, Keyring: ring})
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(pt.Cert, pt.Key)
	if err != nil {
		return err
	}
	ln, err := tls.Listen("tcp", cfg.Listen, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		return err
	}
	w.proxySrv = &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = w.proxySrv.Serve(ln) }()
	return nil
}

// proxyPID is the proxy's process: this one when it runs in process.
func (w *world) proxyPID() int {
	if w.proxyCmd == nil {
		return os.Getpid()
	}
	return w.proxyCmd.Process.Pid
}

// nginxConf is a plain TLS reverse proxy to MinIO, streaming both ways
// (no request or response buffering), with upstream keep-alive: the least
// any proxy that terminates TLS on both sides has to do.
const nginxConf = `daemon off;
master_process on;
worker_processes 2;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log %[1]s/nginx-access.log;
  client_body_temp_path %[1]s/nginx-body;
  proxy_temp_path %[1]s/nginx-proxy;
  client_max_body_size 0;
  client_body_buffer_size 128k;
  proxy_buffer_size 128k;
  proxy_buffers 8 128k;
  proxy_busy_buffers_size 256k;
  upstream minio {
    server 127.0.0.1:%[2]d;
    keepalive 128;
  }
  server {
    listen 127.0.0.1:%[3]d ssl;
    ssl_certificate %[4]s;
    ssl_certificate_key %[5]s;
    location / {
      proxy_pass https://minio;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_trusted_certificate %[6]s;
      proxy_ssl_session_reuse on;
      proxy_read_timeout 600s;
      proxy_send_timeout 600s;
    }
  }
}
`

func (w *world) startNginx(ctx context.Context, pt certs.Files) error {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin = "/usr/sbin/nginx"; !fileExists(bin) {
			return errNoNginx
		}
	}
	mport := w.minio.Endpoint[len("https://127.0.0.1:"):]
	var minioPort int
	fmt.Sscan(mport, &minioPort)
	port, err := freePort()
	if err != nil {
		return err
	}
	ndir := filepath.Join(w.dir, "nginx")
	if err := os.MkdirAll(ndir, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(ndir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, ndir, minioPort, port, pt.Cert, pt.Key, w.minio.CAFile)), 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(ndir, "stderr.log"))
	if err != nil {
		return err
	}
	w.nginxCmd = exec.Command(bin, "-c", conf, "-p", ndir, "-e", filepath.Join(ndir, "nginx-error.log"))
	w.nginxCmd.Stdout, w.nginxCmd.Stderr = logf, logf
	if err := w.nginxCmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	w.nginxDone = done
	go func() { done <- w.nginxCmd.Wait(); logf.Close() }()
	w.nginx = &endpoint{name: "nginx", base: fmt.Sprintf("https://127.0.0.1:%d", port), ak: w.minio.AccessKey, sk: w.minio.SecretKey, sseKey: w.key, hc: w.direct.hc}
	if err := waitTCP(ctx, w.nginx.base, done); err != nil {
		return fmt.Errorf("nginx did not start (see %s): %w", ndir, err)
	}
	return nil
}

var errNoNginx = errors.New("nginx is not installed (apt-get install nginx-light): no CPU floor comparison")

// nginxPIDs are nginx's master and workers.
func (w *world) nginxPIDs() []int {
	p := w.nginxCmd.Process.Pid
	return append([]int{p}, children(p)...)
}

// minioPID is the MinIO server's process (a child of this one).
func (w *world) minioPID() int {
	for _, c := range children(os.Getpid()) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c)); err == nil && strings.TrimSpace(string(b)) == "minio" {
			return c
		}
	}
	return 0
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// waitTCP waits until base accepts connections, or done reports an exit.
func waitTCP(ctx context.Context, base string, done chan error) error {
	host := base[len("https://"):]
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-done:
			return fmt.Errorf("exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (w *world) stop() {
	for _, c := range w.cleanups {
		c()
	}
	stopProcess(w.nginxCmd, w.nginxDone)
	stopProcess(w.proxyCmd, w.proxyDone)
	if w.proxySrv != nil {
		_ = w.proxySrv.Close()
	}
	if w.minio != nil {
		w.minio.Stop()
	}
}
