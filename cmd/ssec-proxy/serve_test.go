package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ssec-proxy/ssec-proxy/internal/certs"
)

// protoRecorder is a RoundTripper that remembers each response's protocol.
type protoRecorder struct {
	rt     http.RoundTripper
	mu     sync.Mutex
	protos map[string]int
}

func (p *protoRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.rt.RoundTrip(r)
	if err == nil {
		p.mu.Lock()
		p.protos[resp.Proto]++
		p.mu.Unlock()
	}
	return resp, err
}

// TestServeAutoTLS: tls.mode auto makes a CA and a certificate in
// state_dir (keys 0600) and logs where the CA is; a client that trusts only
// that CA connects, over HTTP/2 and HTTP/1.1, and streams objects both ways;
// a client that does not trust it is refused; TLS 1.1 is refused; a restart
// serves the same certificate.
func TestServeAutoTLS(t *testing.T) {
	w := newWorld(t)
	p := startProxy(t, w.cfg)
	ca := p.waitLog("local TLS certificate authority: trust this CA in your S3 tools", nil, time.Second)
	caFile := filepath.Join(w.dir, "state", "tls", "ca.crt")
	if ca["ca"] != caFile || ca["client_setting"] != "AWS_CA_BUNDLE="+caFile {
		t.Errorf("logged CA %v, %v; want %s", ca["ca"], ca["client_setting"], caFile)
	}
	for _, k := range []string{"ca.key", "server.key"} {
		st, err := os.Stat(filepath.Join(w.dir, "state", "tls", k))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", k, st.Mode().Perm())
		}
	}
	// `ssec-proxy ca` prints the same path.
	out, _, err := runCmd(t, "ca", "--config", w.cfg)
	if err != nil || strings.TrimSpace(out) != caFile {
		t.Errorf("ssec-proxy ca printed %q, %v; want %s", out, err, caFile)
	}

	base := p.url()
	if !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Fatalf("url %s", base)
	}
	localhostURL := strings.Replace(base, "127.0.0.1", "localhost", 1)
	ctx := context.Background()
	data := randomBytes(24 << 20) // above minio-go's 16 MiB part size: one streamed PUT, as asked
	sum := sha256.Sum256(data)
	for _, tc := range []struct {
		name, url string
		h2        bool
		proto     string
	}{
		{"h2 via localhost", localhostURL, true, "HTTP/2.0"},
		{"http/1.1 via 127.0.0.1", base, false, "HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := trusting(t, caFile)
			tr.ForceAttemptHTTP2 = tc.h2
			rec := &protoRecorder{rt: tr, protos: map[string]int{}}
			c := client(t, tc.url, rec, clientSK)
			obj := "auto-" + hexString(4)
			if _, err := c.PutObject(ctx, w.bucket, obj, bytes.NewReader(data), int64(len(data)),
				minio.PutObjectOptions{DisableMultipart: true}); err != nil {
				t.Fatal(err)
			}
			o, err := c.GetObject(ctx, w.bucket, obj, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			n, err := io.Copy(h, o)
			o.Close()
			if err != nil || n != int64(len(data)) || !bytes.Equal(h.Sum(nil), sum[:]) {
				t.Fatalf("read back %d bytes (%v), hash match %v", n, err, bytes.Equal(h.Sum(nil), sum[:]))
			}
			// A range, over the same protocol.
			ro := minio.GetObjectOptions{}
			_ = ro.SetRange(1<<20, 2<<20-1)
			o, err = c.GetObject(ctx, w.bucket, obj, ro)
			if err != nil {
				t.Fatal(err)
			}
			part, err := io.ReadAll(o)
			o.Close()
			if err != nil || !bytes.Equal(part, data[1<<20:2<<20]) {
				t.Fatalf("range read: %v, %d bytes", err, len(part))
			}
			rec.mu.Lock()
			protos := fmt.Sprint(rec.protos)
			ok := rec.protos[tc.proto] >= 3 && len(rec.protos) == 1
			rec.mu.Unlock()
			if !ok {
				t.Errorf("responses by protocol: %s, want all %s", protos, tc.proto)
			}
			if got := w.readDirect(obj, "k1"); !bytes.Equal(got, data) {
				t.Error("MinIO holds other bytes than sent")
			}
			if w.opens(obj, "k2") {
				t.Error("the object opens with a key that is not its rule's")
			}
		})
	}

	// A client that trusts only the system roots is refused.
	resp, err := (&http.Client{Transport: &http.Transport{}}).Get(base + "/")
	if err == nil {
		resp.Body.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client not trusting the CA: err = %v, want a certificate error", err)
	}
	// TLS 1.1 is refused.
	if conn, err := tls.Dial("tcp", hostOf(t, base), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil { //nolint:gosec
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}

	first := servedCert(t, hostOf(t, base))
	caBefore, _ := os.ReadFile(caFile)
	p.stop()

	p2 := startProxy(t, w.cfg)
	second := servedCert(t, hostOf(t, p2.url()))
	caAfter, _ := os.ReadFile(caFile)
	if !bytes.Equal(first.Raw, second.Raw) {
		t.Error("a restart made a new certificate; want the one in state_dir reused")
	}
	if !bytes.Equal(caBefore, caAfter) {
		t.Error("a restart made a new CA")
	}
	for _, name := range []string{"localhost", "*.localhost"} {
		if !containsString(second.DNSNames, name) {
			t.Errorf("the certificate lacks %s: %v", name, second.DNSNames)
		}
	}
	if len(second.IPAddresses) != 2 {
		t.Errorf("the certificate's IP addresses: %v, want 127.0.0.1 and ::1", second.IPAddresses)
	}
	p2.stop()
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestServeFilesRotation: with tls.mode files, new certificate files are
// picked up while clients keep working: no request fails, a keep-alive
// connection made before the rotation keeps serving after it, new
// connections get the new certificate, and a pair that does not match is
// refused with the previous certificate kept.
func TestServeFilesRotation(t *testing.T) {
	w := newWorld(t)
	tlsDir := filepath.Join(w.dir, "files-tls")
	hosts := []string{"localhost", "127.0.0.1"}
	f, err := certs.Ensure(tlsDir, hosts)
	if err != nil {
		t.Fatal(err)
	}
	w.writeConfig(fmt.Sprintf("tls:\n  mode: files\n  cert: %s\n  key: %s", f.Cert, f.Key), "k1", "30s", "")
	p := startProxy(t, w.cfg)
	base := p.url()
	addr := hostOf(t, base)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	newConns := make([]atomic.Int64, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := trusting(t, f.CA)
			tr.DisableKeepAlives = i >= 2 // two clients keep one connection, two make a new one per request
			c := client(t, base, tr, clientSK)
			body := randomBytes(64 << 10)
			for n := 0; ctx.Err() == nil; n++ {
				obj := fmt.Sprintf("rot-%d-%d", i, n%20)
				tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
					GotConn: func(ci httptrace.GotConnInfo) {
						if !ci.Reused {
							newConns[i].Add(1)
						}
					},
				})
				err := func() error {
					if _, err := c.PutObject(tctx, w.bucket, obj, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
						return err
					}
					o, err := c.GetObject(tctx, w.bucket, obj, minio.GetObjectOptions{})
					if err != nil {
						return err
					}
					defer o.Close()
					got, err := io.ReadAll(o)
					if err == nil && !bytes.Equal(got, body) {
						err = errors.New("read back other bytes")
					}
					return err
				}()
				switch {
				case err == nil:
					ok.Add(1)
				case ctx.Err() != nil:
				default:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		}()
	}

	waitServed := func(serial string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for servedCert(t, addr).SerialNumber.Text(16) != serial {
			if time.Now().After(deadline) {
				t.Fatalf("the new certificate (serial %s) is not served after 15s", serial)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	fileSerial := func() string {
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		return pair.Leaf.SerialNumber.Text(16)
	}
	time.Sleep(time.Second)
	for round := range 3 {
		// IssueLeaf writes the key, then the certificate: for a moment the
		// files do not match, as with any two-file rotation.
		if err := certs.IssueLeaf(tlsDir, hosts, 48*time.Hour); err != nil {
			t.Fatal(err)
		}
		waitServed(fileSerial())
		if round == 1 {
			// A certificate whose key is not in the key file: refused.
			served := servedCert(t, addr).SerialNumber.Text(16)
			other := t.TempDir()
			if _, err := certs.Ensure(other, hosts); err != nil {
				t.Fatal(err)
			}
			otherCert, _ := os.ReadFile(certs.In(other).Cert)
			const invalid = "tls: the certificate files changed but do not make a valid pair; still serving the previous certificate"
			before := p.count(invalid)
			writeFileAtomic(t, f.Cert, otherCert)
			deadline := time.Now().Add(10 * time.Second)
			for p.count(invalid) == before {
				if time.Now().After(deadline) {
					t.Fatal("a certificate without its key was not refused within 10s")
				}
				time.Sleep(100 * time.Millisecond)
			}
			if got := servedCert(t, addr).SerialNumber.Text(16); got != served {
				t.Errorf("after an invalid pair the server presents serial %s, want the previous %s", got, served)
			}
		}
		time.Sleep(time.Second)
	}
	cancel()
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d of %d requests failed during rotation; first: %v", failed.Load(), failed.Load()+ok.Load(), *firstErr.Load())
	}
	if ok.Load() < 20 {
		t.Errorf("only %d requests succeeded: the load was too light to show anything", ok.Load())
	}
	for i := range 2 {
		if n := newConns[i].Load(); n != 1 {
			t.Errorf("keep-alive client %d made %d connections in %d requests; want its one connection to survive the rotations", i, n, ok.Load())
		}
	}
	m := p.metrics()
	if got := m[`ssec_proxy_tls_reloads_total{result="success"}`]; got < 3 {
		t.Errorf("tls reloads success = %v, want >= 3", got)
	}
	if got := m[`ssec_proxy_tls_reloads_total{result="failure"}`]; got < 1 {
		t.Errorf("tls reloads failure = %v, want >= 1", got)
	}
	p.stop()
}

// TestServeReload: SIGHUP with a bad config keeps the running config
// (logged, counted); a good config file takes effect without a signal; a
// changed key file takes effect; a setting that needs a restart is warned
// about.
func TestServeReload(t *testing.T) {
	w := newWorld(t)
	p := startProxy(t, w.cfg)
	caFile := filepath.Join(w.dir, "state", "tls", "ca.crt")
	c := client(t, p.url(), trusting(t, caFile), clientSK)
	ctx := context.Background()
	put := func(obj string) {
		t.Helper()
		body := []byte("object " + obj)
		if _, err := c.PutObject(ctx, w.bucket, obj, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put %s: %v", obj, err)
		}
	}
	put("one")
	if !w.opens("one", "k1") {
		t.Fatal("the first object does not open with k1")
	}

	// A config naming an unknown key: refused, the old one keeps serving.
	w.writeConfig("tls:\n  mode: auto", "nope", "30s", "")
	p.signal(syscall.SIGHUP)
	e := p.waitLog("reload failed: keeping the config in effect", nil, 10*time.Second)
	if e["trigger"] != "sighup" || !strings.Contains(fmt.Sprint(e["error"]), `rules[0].key`) {
		t.Errorf("reload failure logged as %v", e)
	}
	put("two")
	if !w.opens("two", "k1") {
		t.Error("after a failed reload the proxy does not use the old config's key")
	}
	m := p.metrics()
	if m[`ssec_proxy_config_reloads_total{result="failure",trigger="sighup"}`] != 1 || m[`ssec_proxy_config_last_reload_successful`] != 0 {
		t.Errorf("after a failed reload: failures %v, last successful %v",
			m[`ssec_proxy_config_reloads_total{result="failure",trigger="sighup"}`], m[`ssec_proxy_config_last_reload_successful`])
	}
	// The same bad content is not retried at each poll.
	time.Sleep(2*configPoll + 500*time.Millisecond)
	if n := p.count("reload failed: keeping the config in effect"); n != 1 {
		t.Errorf("%d reload failures logged for one bad config, want 1", n)
	}

	// A good config, written without a signal: the rule now uses k2. The
	// admin address changed too, which needs a restart.
	w.writeConfig("tls:\n  mode: auto", "k2", "30s", "")
	b, _ := os.ReadFile(w.cfg)
	writeFileAtomic(t, w.cfg, bytes.Replace(b, []byte("admin:\n  listen: 127.0.0.1:0"), []byte("admin:\n  listen: 127.0.0.1:1"), 1))
	p.waitLog("config reloaded", func(e map[string]any) bool { return e["trigger"] == "file" }, 10*time.Second)
	p.waitLog("reload: this setting changed but takes effect only at a restart",
		func(e map[string]any) bool { return e["field"] == "admin.listen" }, time.Second)
	put("three")
	if !w.opens("three", "k2") || w.opens("three", "k1") {
		t.Error("after reloading, a new object is not under k2")
	}

	// A new k2 in its file: reloaded without a signal.
	oldK2 := w.keys["k2"]
	w.setKey("k2", randomBytes(32))
	deadline := time.Now().Add(10 * time.Second)
	for p.count("config reloaded") < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	put("four")
	if !w.opens("four", "k2") {
		t.Error("after the key file changed, a new object is not under the new k2")
	}
	w.keys["k2"] = oldK2
	if !w.opens("three", "k2") {
		t.Error("the object written before the key change does not open with the old k2")
	}
	m = p.metrics()
	if got := m[`ssec_proxy_config_reloads_total{result="success",trigger="file"}`]; got != 2 {
		t.Errorf("successful file reloads = %v, want 2", got)
	}
	if m[`ssec_proxy_config_last_reload_successful`] != 1 {
		t.Error("last reload successful is not 1 after a good reload")
	}
	p.stop()
}

// patterned is a deterministic body of n bytes, hashed as it is read; it
// calls at once when mark bytes have been read.
type patterned struct {
	n, read, mark int64
	at            func()
	rng           *rand.ChaCha8
	h             io.Writer
	delay         time.Duration // per Read, to slow an upload
}

func (p *patterned) Read(b []byte) (int, error) {
	if p.read >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.read {
		b = b[:p.n-p.read]
	}
	if len(b) > 256<<10 {
		b = b[:256<<10]
	}
	if p.delay > 0 {
		time.Sleep(p.delay)
	}
	_, _ = p.rng.Read(b)
	p.h.Write(b)
	before := p.read
	p.read += int64(len(b))
	if p.at != nil && before < p.mark && p.read >= p.mark {
		p.at()
	}
	return len(b), nil
}

// TestServeSIGTERMDuringUpload: SIGTERM while a 200 MiB upload streams:
// the proxy stops accepting connections at once, lets the upload finish
// (the object is whole on MinIO, under its key) and then exits 0.
func TestServeSIGTERMDuringUpload(t *testing.T) {
	w := newWorld(t)
	w.writeConfig("tls:\n  mode: off", "k1", "2m", "")
	p := startProxy(t, w.cfg)
	base := p.url()
	c := client(t, base, &http.Transport{}, clientSK)
	const size = 200 << 20
	h := sha256.New()
	signalled := make(chan struct{})
	body := &patterned{n: size, mark: 32 << 20, rng: rand.NewChaCha8([32]byte{1}), h: h, at: func() {
		p.signal(syscall.SIGTERM)
		close(signalled)
	}}
	upErr := make(chan error, 1)
	go func() {
		_, err := c.PutObject(context.Background(), w.bucket, "big", body, size,
			minio.PutObjectOptions{DisableMultipart: true})
		upErr <- err
	}()
	select {
	case <-signalled:
	case err := <-upErr:
		t.Fatalf("the upload ended before the signal: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the upload did not reach 32 MiB in 2 minutes")
	}
	p.waitLog("shutting down: no new connections; letting requests in flight finish", nil, 10*time.Second)
	if e := p.waitLog("shutting down: no new connections; letting requests in flight finish", nil, time.Second); e["in_flight"] != 1.0 {
		t.Errorf("in flight at the signal: %v, want 1", e["in_flight"])
	}
	deadline := time.Now().Add(5 * time.Second)
	for !refused(hostOf(t, base)) {
		if time.Now().After(deadline) {
			t.Fatal("the proxy still accepts connections 5s after SIGTERM")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := <-upErr; err != nil {
		t.Fatalf("the upload in flight failed: %v", err)
	}
	if err := p.wait(30 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	p.waitLog("shut down: every request finished", nil, time.Second)

	o, err := w.direct().GetObject(context.Background(), w.bucket, "big", minio.GetObjectOptions{ServerSideEncryption: w.ssec("k1")})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	h2 := sha256.New()
	n, err := io.Copy(h2, o)
	if err != nil || n != size {
		t.Fatalf("read %d bytes of the object from MinIO: %v", n, err)
	}
	if !bytes.Equal(h.Sum(nil), h2.Sum(nil)) {
		t.Fatal("the object on MinIO is not the bytes uploaded")
	}
}

// TestServeShutdownGraceEnds: an upload that outlasts shutdown_grace is
// cut when the grace is over, and nothing is stored.
func TestServeShutdownGraceEnds(t *testing.T) {
	w := newWorld(t)
	w.writeConfig("tls:\n  mode: off", "k1", "1s", "")
	p := startProxy(t, w.cfg)
	c := client(t, p.url(), &http.Transport{}, clientSK)
	const size = 64 << 20
	var signalledAt atomic.Int64
	body := &patterned{n: size, mark: 1 << 20, rng: rand.NewChaCha8([32]byte{2}), h: io.Discard, delay: 20 * time.Millisecond,
		at: func() { signalledAt.Store(time.Now().UnixNano()); p.signal(syscall.SIGTERM) }}
	_, err := c.PutObject(context.Background(), w.bucket, "slow", body, size, minio.PutObjectOptions{DisableMultipart: true})
	if err == nil {
		t.Fatal("an upload that outlasts the grace succeeded")
	}
	if err := p.wait(10 * time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	took := time.Since(time.Unix(0, signalledAt.Load()))
	if took > 8*time.Second {
		t.Errorf("the proxy took %s after SIGTERM with a 1s grace", took)
	}
	p.waitLog("shutdown grace over: closing the connections still open", nil, time.Second)
	if _, err := w.direct().StatObject(context.Background(), w.bucket, "slow", minio.StatObjectOptions{ServerSideEncryption: w.ssec("k1")}); err == nil {
		t.Error("the cut upload was stored")
	}
}

// TestServeMetricsExact: /metrics counts a known sequence of requests
// exactly, and holds no secret and no object key; /healthz and /readyz
// answer; `ssec-proxy healthcheck` agrees.
func TestServeMetricsExact(t *testing.T) {
	w := newWorld(t)
	w.writeConfig("tls:\n  mode: off", "k1", "30s", "")
	p := startProxy(t, w.cfg)
	base := p.url()
	core := minio.Core{Client: client(t, base, &http.Transport{}, clientSK)}
	ctx := context.Background()
	objects := []string{"secret-name-a.txt", "secret-name-b.txt", "secret-name-c.txt"}
	for _, obj := range objects {
		if _, err := core.PutObject(ctx, w.bucket, obj, bytes.NewReader(make([]byte, 1000)), 1000, "", "", minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, obj := range objects[:2] {
		o, _, _, err := core.GetObject(ctx, w.bucket, obj, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, o); err != nil || n != 1000 {
			t.Fatalf("get %s: %d bytes, %v", obj, n, err)
		}
		o.Close()
	}
	// A wrong secret: refused by authentication, before routing.
	bad := minio.Core{Client: client(t, base, &http.Transport{}, "wrong-secret-0123456789")}
	if _, err := bad.PutObject(ctx, w.bucket, "secret-name-d.txt", bytes.NewReader([]byte("x")), 1, "", "", minio.PutObjectOptions{}); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	// A bucket without a rule: denied.
	if _, err := core.PutObject(ctx, "no-rule-bucket", "secret-name-e.txt", bytes.NewReader([]byte("xy")), 2, "", "", minio.PutObjectOptions{}); err == nil {
		t.Fatal("a put without a rule was not denied")
	}

	resp, err := http.Get(p.admin() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := parseMetrics(t, bytes.NewReader(raw))
	want := map[string]float64{
		`ssec_proxy_requests_total{op="PutObject",status="200"}`:                3,
		`ssec_proxy_requests_total{op="GetObject",status="200"}`:                2,
		`ssec_proxy_requests_total{op="PutObject",status="403"}`:                1,
		`ssec_proxy_requests_total{op="none",status="403"}`:                     1,
		`ssec_proxy_received_bytes_total{op="PutObject"}`:                       3000,
		`ssec_proxy_sent_bytes_total{op="GetObject"}`:                           2000,
		`ssec_proxy_auth_failures_total{code="SignatureDoesNotMatch"}`:          1,
		`ssec_proxy_rule_decisions_total{decision="encrypt",key_id="k1"}`:       5,
		`ssec_proxy_rule_decisions_total{decision="deny",key_id=""}`:            1,
		`ssec_proxy_upstream_duration_seconds_count{op="PutObject"}`:            3,
		`ssec_proxy_upstream_duration_seconds_count{op="GetObject"}`:            2,
		`ssec_proxy_request_duration_seconds_count{op="none"}`:                  1,
		`ssec_proxy_requests_in_flight`:                                         0,
		`ssec_proxy_config_last_reload_successful`:                              1,
		`ssec_proxy_upstream_up`:                                                1,
		`ssec_proxy_upstream_duration_seconds_bucket{op="PutObject",le="+Inf"}`: 3,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	var total float64
	for k, v := range m {
		if strings.HasPrefix(k, "ssec_proxy_requests_total{") {
			total += v
		}
	}
	if total != 7 {
		t.Errorf("requests_total sums to %v over all series, want 7", total)
	}
	text := string(raw)
	for _, secret := range []string{clientSK, w.mc.SecretKey, "wrong-secret", "secret-name",
		base64Std(w.keys["k1"]), base64Std(w.keys["k2"])} {
		if strings.Contains(text, secret) {
			t.Errorf("/metrics holds %q", secret)
		}
	}

	for path, code := range map[string]int{"/healthz": 200, "/readyz": 200, "/nope": 404} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get(p.admin() + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == code {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: %d %s, want %d", path, resp.StatusCode, b, code)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	hc := exitCodeOf(t, proxyBinary(t), "healthcheck", "--url", p.admin()+"/healthz")
	if hc != 0 {
		t.Errorf("healthcheck exit %d, want 0", hc)
	}
	p.stop()
	if hc := exitCodeOf(t, proxyBinary(t), "healthcheck", "--url", p.admin()+"/healthz", "--timeout", "2s"); hc != 1 {
		t.Errorf("healthcheck of a stopped proxy: exit %d, want 1", hc)
	}
}
