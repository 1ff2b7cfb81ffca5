package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/certs"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/metrics"
)

func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

func metricText(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestCertWatcherFiles: a changed valid pair is served by new handshakes;
// an invalid pair, a missing file or an expired certificate leaves the
// previous certificate in place and is logged once.
func TestCertWatcherFiles(t *testing.T) {
	dir := t.TempDir()
	hosts := []string{"localhost", "127.0.0.1"}
	f, err := certs.Ensure(dir, hosts)
	if err != nil {
		t.Fatal(err)
	}
	log, logs := observed()
	m := metrics.New("test")
	w, err := newCertWatcher(f.Cert, f.Key, nil, log, m)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string { return w.current().Leaf.SerialNumber.String() }
	first := serial()
	if changed, err := w.check(); changed || err != nil {
		t.Fatalf("no change: check = %v, %v", changed, err)
	}
	if err := certs.IssueLeaf(dir, hosts, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	if changed, err := w.check(); !changed || err != nil {
		t.Fatalf("new pair: check = %v, %v", changed, err)
	}
	second := serial()
	if second == first {
		t.Fatal("the new certificate is not served")
	}
	got, _ := w.GetCertificate(&tls.ClientHelloInfo{})
	if got.Leaf.SerialNumber.String() != second {
		t.Error("GetCertificate does not give the current certificate")
	}

	other := t.TempDir()
	of, _ := certs.Ensure(other, hosts)
	cases := []struct {
		name  string
		setup func()
		want  string
	}{
		{"mismatched key", func() { copyFile(t, of.Cert, f.Cert) }, "private key does not match"},
		{"garbage", func() { _ = os.WriteFile(f.Cert, []byte("not pem"), 0o644) }, "failed to find any PEM data"},
		{"missing key", func() { os.Remove(f.Key) }, "no such file"},
	}
	for _, tc := range cases {
		tc.setup()
		changed, err := w.check()
		if changed || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: check = %v, %v; want no change and an error with %q", tc.name, changed, err, tc.want)
		}
		if serial() != second {
			t.Errorf("%s: the served certificate changed", tc.name)
		}
		// Looking again at the same bad files logs nothing more.
		n := logs.FilterMessageSnippet("do not make a valid pair").Len()
		_, _ = w.check()
		if logs.FilterMessageSnippet("do not make a valid pair").Len() != n {
			t.Errorf("%s: the same bad files were logged twice", tc.name)
		}
	}
	// An expired certificate is refused too.
	if _, err := certs.Ensure(dir, hosts); err != nil { // a valid pair again
		t.Fatal(err)
	}
	if changed, _ := w.check(); !changed {
		t.Fatal("a valid pair after bad ones is not served")
	}
	if err := certs.IssueLeaf(dir, hosts, -time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := w.check(); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired certificate: %v", err)
	}
	text := metricText(t, m)
	for _, want := range []string{`ssec_proxy_tls_reloads_total{result="success"} 2`, `ssec_proxy_tls_reloads_total{result="failure"} 4`} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCertWatcherAutoRenews: in tls.mode auto a leaf that comes due for
// renewal while the proxy runs is replaced at the next check, by the same
// CA, and served by new handshakes.
func TestCertWatcherAutoRenews(t *testing.T) {
	cfg := &config.Config{StateDir: t.TempDir(), Domain: "localhost", TLS: config.TLS{Mode: config.TLSAuto}}
	log, _ := observed()
	w, caFile, err := newTLSSource(cfg, log, metrics.New("test"))
	if err != nil {
		t.Fatal(err)
	}
	if caFile != filepath.Join(cfg.StateDir, "tls", "ca.crt") {
		t.Errorf("CA %s", caFile)
	}
	dir := filepath.Join(cfg.StateDir, "tls")
	if err := certs.IssueLeaf(dir, autoHosts(cfg), 10*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if changed, err := w.check(); !changed || err != nil {
		t.Fatalf("check = %v, %v", changed, err)
	}
	// The check saw the near-expiry leaf and Ensure replaced it first.
	if left := time.Until(w.current().Leaf.NotAfter); left < certs.RenewBefore {
		t.Errorf("served leaf expires in %s; want it renewed", left)
	}
	renewed := w.current().Leaf
	for _, h := range []string{"localhost", "*.localhost"} {
		if !containsString(renewed.DNSNames, h) {
			t.Errorf("the renewed leaf lacks %s", h)
		}
	}
	if len(renewed.IPAddresses) != 2 {
		t.Errorf("IPs %v", renewed.IPAddresses)
	}
}

// fakeSwapper records what the reloader swaps in.
type fakeSwapper struct {
	mu   sync.Mutex
	cfgs []*config.Config
	err  error
}

func (f *fakeSwapper) Reload(cfg *config.Config, _ *keystore.Keyring) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.cfgs = append(f.cfgs, cfg)
	return nil
}

const reloadConfig = `listen: 127.0.0.1:8443
state_dir: DIR/state
upstream:
  endpoint: https://127.0.0.1:1
  region: us-east-1
  access_key: a
  secret_key: b
keys:
  - id: k
    file: DIR/k.key
rules:
  - bucket: bkt
    key: KEY
`

// TestReloader: a bad config or key file is refused (the one in effect
// stays, the failure is counted and logged once per content); a good one
// is swapped in; a key file change is noticed; settings needing a restart
// are named.
func TestReloader(t *testing.T) {
	p, _ := writeConfig(t, strings.ReplaceAll(reloadConfig, "KEY", "k"))
	dir := filepath.Dir(p)
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	log, logs := observed()
	m := metrics.New("test")
	sw := &fakeSwapper{}
	r := newReloader(cfg, sw, log, m)
	if r.changed() {
		t.Fatal("changed before any change")
	}

	// An unknown key id.
	writeFileAtomic(t, p, []byte(strings.ReplaceAll(strings.ReplaceAll(reloadConfig, "DIR", dir), "KEY", "nope")))
	if !r.changed() {
		t.Fatal("a changed config file is not noticed")
	}
	if err := r.reload("file"); err == nil || !strings.Contains(err.Error(), "rules[0].key") {
		t.Fatalf("reload of a bad config: %v", err)
	}
	if r.config() != cfg || len(sw.cfgs) != 0 {
		t.Error("a bad config replaced the one in effect")
	}
	if r.changed() {
		t.Error("the same bad content is seen as a change again")
	}
	if logs.FilterMessage("reload failed: keeping the config in effect").Len() != 1 {
		t.Error("the failure is not logged")
	}

	// A good config with another listen address.
	good := strings.ReplaceAll(strings.ReplaceAll(reloadConfig, "DIR", dir), "KEY", "k")
	writeFileAtomic(t, p, []byte(strings.Replace(good, "127.0.0.1:8443", "127.0.0.1:8444", 1)))
	if err := r.reload("sighup"); err != nil {
		t.Fatal(err)
	}
	if len(sw.cfgs) != 1 || r.config() != sw.cfgs[0] {
		t.Fatal("a good config was not swapped in")
	}
	if e := logs.FilterMessage("reload: this setting changed but takes effect only at a restart").All(); len(e) != 1 || e[0].ContextMap()["field"] != "listen" {
		t.Errorf("restart warnings: %v", e)
	}

	// A key file of the wrong length: refused, with the key named.
	if err := os.WriteFile(filepath.Join(dir, "k.key"), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !r.changed() {
		t.Fatal("a changed key file is not noticed")
	}
	if err := r.reload("file"); err == nil || !strings.Contains(err.Error(), `"k"`) {
		t.Errorf("reload with a bad key file: %v", err)
	}
	// The swapper itself failing is a failure too.
	copyFile(t, filepath.Join(filepath.Dir(p), "k.key"), filepath.Join(dir, "k2.key"))
	if err := os.WriteFile(filepath.Join(dir, "k.key"), bytes.Repeat([]byte{9}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	sw.err = errors.New("upstream.endpoint: bad")
	if err := r.reload("file"); err == nil {
		t.Error("a refused swap reported success")
	}
	sw.err = nil
	if err := r.reload("file"); err != nil {
		t.Fatal(err)
	}
	text := metricText(t, m)
	for _, want := range []string{
		`ssec_proxy_config_reloads_total{result="failure",trigger="file"} 3`,
		`ssec_proxy_config_reloads_total{result="success",trigger="sighup"} 1`,
		`ssec_proxy_config_reloads_total{result="success",trigger="file"} 1`,
		`ssec_proxy_config_last_reload_successful 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, e := range logs.All() {
		if s := e.Message + " " + strings.Join(fieldStrings(e.Context), " "); strings.Contains(s, string(bytes.Repeat([]byte{9}, 32))) {
			t.Errorf("a log entry holds key bytes: %s", s)
		}
	}
}

func fieldStrings(fs []zapcore.Field) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.String)
		if f.Interface != nil {
			if e, ok := f.Interface.(error); ok {
				out = append(out, e.Error())
			}
		}
	}
	return out
}

// TestReloaderRunSIGHUP: run reloads on a signal value and on a file change.
func TestReloaderRunSIGHUP(t *testing.T) {
	p, _ := writeConfig(t, strings.ReplaceAll(reloadConfig, "KEY", "k"))
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	log, logs := observed()
	sw := &fakeSwapper{}
	r := newReloader(cfg, sw, log, metrics.New("test"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	go r.run(ctx, hup, 20*time.Millisecond)
	hup <- nil
	waitFor(t, func() bool { return logs.FilterMessage("config reloaded").Len() == 1 })
	b, _ := os.ReadFile(p)
	writeFileAtomic(t, p, append(b, []byte("# touched\n")...))
	waitFor(t, func() bool { return logs.FilterMessage("config reloaded").Len() == 2 })
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if len(sw.cfgs) != 2 {
		t.Errorf("%d swaps, want 2", len(sw.cfgs))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHealthAndReadiness: /healthz is always 200; /readyz is 200 only with
// a config loaded, a recent probe answered and no shutdown under way.
func TestHealthAndReadiness(t *testing.T) {
	m := metrics.New("test")
	h := &health{window: time.Minute}
	srv := httptest.NewServer(adminHandler(m, h))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	now := time.Now()
	for _, tc := range []struct {
		name   string
		setup  func()
		code   int
		reason string
	}{
		{"nothing loaded", func() {}, 503, "config not loaded"},
		{"not probed", func() { h.loaded.Store(true) }, 503, "not probed yet"},
		{"probe failed", func() { e := "connection refused"; h.lastErr.Store(&e) }, 503, "connection refused"},
		{"probe answered", func() { h.lastUp.Store(now.UnixNano()); h.lastErr.Store(nil) }, 200, "ready"},
		{"answer too old", func() { h.lastUp.Store(now.Add(-2 * time.Minute).UnixNano()) }, 503, "has not answered for"},
		{"draining", func() { h.lastUp.Store(now.UnixNano()); h.draining.Store(true) }, 503, "shutting down"},
	} {
		tc.setup()
		code, body := get("/readyz")
		if code != tc.code || !strings.Contains(body, tc.reason) {
			t.Errorf("%s: /readyz %d %q, want %d %q", tc.name, code, body, tc.code, tc.reason)
		}
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "ssec_proxy_requests_in_flight 0") {
		t.Errorf("/metrics %d", code)
	}
}

// TestProber: any HTTP answer from the upstream is up, whatever its
// status (an unauthenticated HEAD gets 403); a refused connection and an
// untrusted certificate are down.
func TestProber(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead || r.URL.Path != "/" || r.Header.Get("Authorization") != "" {
			t.Errorf("probe %s %s", r.Method, r.URL)
		}
		w.WriteHeader(http.StatusForbidden)
	}))
	defer up.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM(up.Certificate().Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := closed.Addr().String()
	closed.Close()
	for _, tc := range []struct {
		name string
		up   config.Upstream
		want bool
	}{
		{"403 answer", config.Upstream{Endpoint: up.URL, CAFile: caFile}, true},
		{"untrusted", config.Upstream{Endpoint: up.URL}, false},
		{"refused", config.Upstream{Endpoint: "https://" + deadAddr}, false},
	} {
		h := &health{window: time.Minute}
		h.loaded.Store(true)
		log, _ := observed()
		cfg := &config.Config{Upstream: tc.up}
		p := &prober{cfg: func() *config.Config { return cfg }, h: h, m: metrics.New("test"), log: log, timeout: 2 * time.Second}
		if got := p.probe(context.Background()); got != tc.want {
			t.Errorf("%s: probe = %v, want %v (%v)", tc.name, got, tc.want, h.lastErr.Load())
		}
		if ok, why := h.ready(time.Now()); ok != tc.want {
			t.Errorf("%s: ready = %v (%s)", tc.name, ok, why)
		}
	}
}

func certPEM(der []byte) []byte {
	var b bytes.Buffer
	b.WriteString("-----BEGIN CERTIFICATE-----\n")
	enc := []byte(base64Std(der))
	for len(enc) > 64 {
		b.Write(enc[:64])
		b.WriteByte('\n')
		enc = enc[64:]
	}
	b.Write(enc)
	b.WriteString("\n-----END CERTIFICATE-----\n")
	return b.Bytes()
}

// TestHealthcheckCommand: exit 0 on a 200, 1 otherwise; the URL defaults to
// the config's admin.listen (an unspecified host asked on loopback).
func TestHealthcheckCommand(t *testing.T) {
	var status = http.StatusOK
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/healthz" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	if _, _, err := runCmd(t, "healthcheck", "--url", srv.URL+"/healthz"); err != nil {
		t.Errorf("healthy: %v", err)
	}
	mu.Lock()
	status = http.StatusServiceUnavailable
	mu.Unlock()
	_, _, err := runCmd(t, "healthcheck", "--url", srv.URL+"/healthz")
	if err == nil || exitCode(err) != 1 {
		t.Errorf("a 503: err = %v (exit %d), want exit 1", err, exitCode(err))
	}
	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	t.Setenv("SSEC_TEST_UNSET_SECRET", "")
	os.Unsetenv("SSEC_TEST_UNSET_SECRET")
	p, _ := writeConfig(t, strings.ReplaceAll(strings.ReplaceAll(reloadConfig, "KEY", "k"), "secret_key: b", "secret_key: ${SSEC_TEST_UNSET_SECRET}")+
		"admin:\n  listen: 0.0.0.0:"+port+"\n")
	if out, _, err := runCmd(t, "healthcheck", "--config", p); err != nil || !strings.Contains(out, "127.0.0.1:"+port) {
		t.Errorf("healthcheck --config (with a secret not in the environment): %q, %v", out, err)
	}
	off, _ := writeConfig(t, strings.ReplaceAll(reloadConfig, "KEY", "k")+"admin:\n  listen: \"off\"\n")
	if _, _, err := runCmd(t, "healthcheck", "--config", off); err == nil || !strings.Contains(err.Error(), "off") {
		t.Errorf("admin off: %v", err)
	}
}

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{
		":9464": "127.0.0.1:9464", "0.0.0.0:9464": "127.0.0.1:9464", "[::]:9464": "[::1]:9464",
		"127.0.0.1:9464": "127.0.0.1:9464", "[::1]:1": "[::1]:1", "admin.local:9": "admin.local:9",
	} {
		if got := dialable(in); got != want {
			t.Errorf("dialable(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCACommand: ca prints the CA path of tls.mode auto (making the CA on
// first use), refuses other modes, and names a state_dir that comes from an
// unset variable as an error rather than guessing.
func TestCACommand(t *testing.T) {
	p, _ := writeConfig(t, strings.ReplaceAll(reloadConfig, "KEY", "k"))
	want := filepath.Join(filepath.Dir(p), "state", "tls", "ca.crt")
	out, errOut, err := runCmd(t, "ca", "--config", p)
	if err != nil || strings.TrimSpace(out) != want || !strings.Contains(errOut, "made a new local CA") {
		t.Fatalf("ca: %q %q %v", out, errOut, err)
	}
	b1, _ := os.ReadFile(want)
	out, errOut, err = runCmd(t, "ca", "--config", p)
	b2, _ := os.ReadFile(want)
	if err != nil || strings.TrimSpace(out) != want || errOut != "" || !bytes.Equal(b1, b2) {
		t.Errorf("second ca: %q %q %v (CA unchanged %v)", out, errOut, err, bytes.Equal(b1, b2))
	}
	files, _ := writeConfig(t, strings.ReplaceAll(reloadConfig, "KEY", "k")+"tls:\n  mode: files\n  cert: /c\n  key: /k\n")
	if _, _, err := runCmd(t, "ca", "--config", files); err == nil || !strings.Contains(err.Error(), "no local CA") {
		t.Errorf("ca with tls files: %v", err)
	}
	os.Unsetenv("SSEC_TEST_UNSET_STATE")
	envState, _ := writeConfig(t, strings.Replace(strings.ReplaceAll(reloadConfig, "KEY", "k"), "state_dir: DIR/state", "state_dir: ${SSEC_TEST_UNSET_STATE}", 1))
	if _, _, err := runCmd(t, "ca", "--config", envState); err == nil || !strings.Contains(err.Error(), "SSEC_TEST_UNSET_STATE") {
		t.Errorf("ca with state_dir from an unset variable: %v", err)
	}
}

// TestServeInProcess runs serve itself (under the race detector): tls.mode
// off on an address that is not loopback is warned about; requests are
// counted; /readyz follows the upstream probe; SIGHUP reloads; cancelling
// the context shuts down cleanly and closes both listeners.
func TestServeInProcess(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) }))
	defer up.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM(up.Certificate().Raw), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _ := writeConfig(t, strings.NewReplacer("KEY", "k", "https://127.0.0.1:1", up.URL,
		"listen: 127.0.0.1:8443", "listen: 0.0.0.0:8443\ntls:\n  mode: \"off\"\nadmin:\n  listen: 127.0.0.1:0").Replace(reloadConfig)+
		"  - bucket: \"*\"\n    key: k\n")
	b, _ := os.ReadFile(p)
	b = bytes.Replace(b, []byte("secret_key: b\n"), []byte("secret_key: b\n  ca_file: "+caFile+"\n"), 1)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	ring, _, err := keystore.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log, logs := observed()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, ring, ln, log) }()
	waitFor(t, func() bool { return logs.FilterMessage("ssec-proxy listening").Len() == 1 })
	if logs.FilterMessageSnippet("tls.mode: off while listening on 0.0.0.0:8443").Len() != 1 {
		t.Error("no warning for tls off on a non-loopback address")
	}
	adminURL := logs.FilterMessage("admin listening").All()[0].ContextMap()["url"].(string)
	resp, err := http.Get("http://" + ln.Addr().String() + "/bkt/obj")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("an unsigned request: %d", resp.StatusCode)
	}
	waitFor(t, func() bool {
		resp, err := http.Get(adminURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return logs.FilterMessage("config reloaded").Len() == 1 })
	resp, err = http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ssec_proxy_requests_total{op="none",status="403"} 1`,
		`ssec_proxy_auth_failures_total{code="AccessDenied"} 1`,
		`ssec_proxy_config_reloads_total{result="success",trigger="sighup"} 1`,
		`ssec_proxy_upstream_up 1`,
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after the context ended")
	}
	if !refused(ln.Addr().String()) || !refused(strings.TrimPrefix(adminURL, "http://")) {
		t.Error("a listener is still open after serve returned")
	}
}
