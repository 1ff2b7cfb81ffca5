package e2e

// Faults on real sockets (issue 7, "Faults"): an upstream that dies, hangs,
// refuses or shows the wrong certificate, a client that goes away, the
// proxy process killed mid-upload, a key file corrupted while running.
// The client must get a clean 5xx S3 error or a broken stream it can
// detect (never a short body with 200), and MinIO must hold nothing
// partial.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"github.com/minio/minio-go/v7/pkg/signer"
	"golang.org/x/sys/unix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy"
)

// startProxy runs another in-process proxy with a copy of the test world's
// config, changed by edit, on a plain-HTTP listener on 127.0.0.1. It logs
// into env.logs, so that the secret scan covers it. It returns the base
// URL and the server.
func startProxy(t *testing.T, edit func(*config.Config)) (string, *proxy.Server) {
	t.Helper()
	return startObservedProxy(t, edit, nil)
}

// finishedPuts counts the PutObject requests the proxy has finished, and
// their statuses.
type finishedPuts struct {
	mu       sync.Mutex
	statuses []int
}

func (f *finishedPuts) ObserveRequest(s proxy.RequestStats) {
	if s.Op != "PutObject" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses = append(f.statuses, s.Status)
}

func (f *finishedPuts) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.statuses)
}

func (f *finishedPuts) last() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.statuses) == 0 {
		return 0
	}
	return f.statuses[len(f.statuses)-1]
}

func startObservedProxy(t *testing.T, edit func(*config.Config), obs proxy.Observer) (string, *proxy.Server) {
	t.Helper()
	return startProxyWith(t, edit, obs, nil)
}

// startProxyWith is startObservedProxy whose upstream requests also pass
// through wrap (after the invariant check), when set.
func startProxyWith(t *testing.T, edit func(*config.Config), obs proxy.Observer, wrap func(http.RoundTripper) http.RoundTripper) (string, *proxy.Server) {
	t.Helper()
	cfg := *env.cfg
	if edit != nil {
		edit(&cfg)
	}
	ring, _, err := keystore.Build(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(env.logs), zap.DebugLevel))
	var h *proxy.Server
	wt := checked(&h)
	if wrap != nil {
		wt = func(next http.RoundTripper) http.RoundTripper { return checked(&h)(wrap(next)) }
	}
	h, err = proxy.New(proxy.Options{Config: &cfg, Keyring: ring, Logger: log, Observer: obs, WrapTransport: wt})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), h
}

// A relay passes TCP bytes between the proxy and MinIO unchanged (TLS goes
// through it end to end) and injects faults on request.
type relay struct {
	ln     net.Listener
	target string

	refuse    atomic.Bool  // close every new connection at once
	cutUp     atomic.Int64 // >0: cut a connection after this many bytes proxy→upstream
	cutDown   atomic.Int64 // >0: cut after this many bytes upstream→proxy
	stallUp   atomic.Int64 // >0: stop forwarding proxy→upstream after this many bytes
	stallDown atomic.Int64 // >0: stop forwarding upstream→proxy after this many bytes

	active   atomic.Int32 // connections open
	accepted atomic.Int32
	faults   atomic.Int32 // faults injected
	mu       sync.Mutex
	conns    map[net.Conn]*relayConn // both ends of each connection
}

// relayConn is one relayed connection.
type relayConn struct {
	up, down atomic.Int64 // bytes forwarded proxy→upstream, upstream→proxy
	stalled  atomic.Bool
	closed   atomic.Bool
}

// open counts the connections still open that match.
func (r *relay) open(match func(*relayConn) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[*relayConn]bool{}
	for _, rc := range r.conns {
		if !rc.closed.Load() && match(rc) {
			seen[rc] = true
		}
	}
	return len(seen)
}

// reset closes every relayed connection, so that the proxy dials afresh
// and a fault armed next applies from the first byte.
func (r *relay) reset() {
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	waitFor(2*time.Second, func() bool { return r.active.Load() == 0 })
	time.Sleep(20 * time.Millisecond) // the proxy's transport notices its idle connections closed
}

// arm resets the relay, then sets a fault; the returned func clears it.
func (r *relay) arm(fault *atomic.Int64, n int64) func() {
	r.reset()
	fault.Store(n)
	return func() { fault.Store(0) }
}

func newRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target, conns: map[net.Conn]*relayConn{}}
	go r.serve()
	t.Cleanup(r.close)
	return r
}

// endpoint is the relay as an upstream endpoint (MinIO's certificate is
// for 127.0.0.1).
func (r *relay) endpoint() string { return "https://" + r.ln.Addr().String() }

func (r *relay) close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
}

func (r *relay) track(c net.Conn, rc *relayConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rc != nil {
		r.conns[c] = rc
	} else {
		delete(r.conns, c)
	}
}

func (r *relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.accepted.Add(1)
		if r.refuse.Load() {
			r.faults.Add(1)
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.active.Add(1)
		rc := &relayConn{}
		r.track(c, rc)
		r.track(up, rc)
		go func() {
			var once sync.Once
			done := make(chan struct{})
			end := func() {
				once.Do(func() {
					c.Close()
					up.Close()
					rc.closed.Store(true)
					close(done)
				})
			}
			go r.pipe(up, c, &rc.up, rc, r.cutUp.Load(), r.stallUp.Load(), end, done)
			r.pipe(c, up, &rc.down, rc, r.cutDown.Load(), r.stallDown.Load(), end, done)
			<-done
			r.track(c, nil)
			r.track(up, nil)
			r.active.Add(-1)
		}()
	}
}

// pipe copies src to dst until either side ends, a cut (reset both) or a
// stall (stop forwarding, keep both open until the other side ends).
func (r *relay) pipe(dst, src net.Conn, count *atomic.Int64, rc *relayConn, cut, stall int64, end func(), done chan struct{}) {
	defer end()
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			chunk := buf[:k]
			limit := int64(-1)
			if cut > 0 {
				limit = cut
			}
			if stall > 0 && (limit < 0 || stall < limit) {
				limit = stall
			}
			if limit >= 0 && n+int64(k) >= limit {
				chunk = buf[:limit-n]
				_, _ = dst.Write(chunk)
				count.Add(int64(len(chunk)))
				r.faults.Add(1)
				if cut > 0 && limit == cut {
					for _, c := range []net.Conn{src, dst} {
						if tc, ok := c.(*net.TCPConn); ok {
							_ = tc.SetLinger(0) // a reset, as a dying host gives
						}
					}
					return
				}
				rc.stalled.Store(true)
				// Stalled: forward nothing more and read nothing more, but
				// notice when the peer closes (its socket state, not a read:
				// a read would drain its window and unblock its writes).
				for {
					select {
					case <-done:
						return
					case <-time.After(100 * time.Millisecond):
					}
					if peerClosed(src) {
						return
					}
				}
			}
			if _, werr := dst.Write(chunk); werr != nil {
				return
			}
			n += int64(k)
			count.Add(int64(k))
		}
		if err != nil {
			return
		}
	}
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// faultPut is a signed PUT of data in the given payload mode.
func faultPut(base, path, mode string, data []byte) *rawReq {
	switch mode {
	case "streaming-signed":
		return chunkedPut(base, path, data, len(data), nil)
	case "hex":
		r := newRaw(http.MethodPut, path, data)
		r.signClient(base, sha256Hex(data))
		return r
	}
	r := newRaw(http.MethodPut, path, data)
	r.signClient(base, unsignedPL)
	return r
}

var payloadModes = []string{"unsigned", "hex", "streaming-signed"}

func minioAddr() string {
	u, _ := url.Parse(env.minio.Endpoint)
	return u.Host
}

// wantGatewayError accepts a 5xx S3 XML error or a broken connection.
func wantGatewayError(t *testing.T, a *s3Answer) {
	t.Helper()
	switch {
	case a.status == 0 && a.err != nil:
		t.Logf("connection broken: %v", a.err)
	case a.status >= 500 && a.Code != "":
		t.Logf("answered %v", a)
	default:
		t.Errorf("got %v %.200q, want a 5xx S3 error or a broken connection", a, a.body)
	}
}

func TestFaultUpstreamDiesMidPut(t *testing.T) {
	buckets(t)
	rl := newRelay(t, minioAddr())
	base, _ := startProxy(t, func(c *config.Config) { c.Upstream.Endpoint = rl.endpoint() })
	data := randomBytes(2 << 20)
	for _, mode := range payloadModes {
		t.Run(mode, func(t *testing.T) {
			before := snapshot(t)
			defer rl.arm(&rl.cutUp, 300<<10)()
			a := send(t, base, faultPut(base, "/enc/"+uniqueKey(t, "fault/"), mode, data))
			if a.status == 0 || a.status < 500 {
				t.Errorf("got %v, want a 5xx S3 error", a)
			} else {
				wantError(t, a, 502, "BadGateway")
			}
			assertNothingNew(t, before)
		})
	}
	t.Run("recovers", func(t *testing.T) {
		k := uniqueKey(t, "fault/")
		if a := send(t, base, faultPut(base, "/enc/"+k, "unsigned", data)); a.status != 200 {
			t.Fatalf("after the faults: %v", a)
		}
		assertEncrypted(t, "enc", k, "k1", data)
	})
}

func TestFaultUpstreamDiesMidMultipartPart(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	rl := newRelay(t, minioAddr())
	base, _ := startProxy(t, func(c *config.Config) { c.Upstream.Endpoint = rl.endpoint() })
	k := uniqueKey(t, "fault/")
	core := minio.Core{Client: viaProxy(t, true)}
	id, err := core.NewMultipartUpload(ctx, "enc", k, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = core.AbortMultipartUpload(ctx, "enc", k, id) }()
	part := randomBytes(6 << 20)
	for i, mode := range payloadModes {
		t.Run(mode, func(t *testing.T) {
			defer rl.arm(&rl.cutUp, 1<<20)()
			r := newRaw(http.MethodPut, "/enc/"+k, part)
			r.query = fmt.Sprintf("partNumber=%d&uploadId=%s", i+1, url.QueryEscape(id))
			switch mode {
			case "hex":
				r.signClient(base, sha256Hex(part))
			case "unsigned":
				r.signClient(base, unsignedPL)
			default:
				r.body = nil
				r.header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(part)))
				r.header.Set("Content-Encoding", "aws-chunked")
				c := r.signClient(base, streamingPL)
				r.body = encodeChunks(signedChunks(c, part, 64<<10), "")
			}
			a := send(t, base, r)
			if a.status < 500 {
				t.Errorf("got %v, want a 5xx S3 error", a)
			}
		})
	}
	parts, err := (&minio.Core{Client: sharedDirect(t)}).ListObjectParts(ctx, "enc", k, id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts.ObjectParts) != 0 {
		t.Errorf("MinIO stored %d parts whose upload was cut", len(parts.ObjectParts))
	}
	if _, err := sharedDirect(t).StatObject(ctx, "enc", k, minio.StatObjectOptions{ServerSideEncryption: ssec(t, "k1")}); errCode(err) != "NoSuchKey" {
		t.Errorf("the object exists after cut parts: %v", err)
	}
	// The same upload goes on once the upstream is back.
	if _, err := core.PutObjectPart(ctx, "enc", k, id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatalf("part after the fault: %v", err)
	}
}

func TestFaultUpstreamDiesMidGet(t *testing.T) {
	buckets(t)
	rl := newRelay(t, minioAddr())
	// An upstream that stops reading is cut after upstream.stall_timeout
	// (default 1 minute; 2 s here to keep the test short).
	base, _ := startProxy(t, func(c *config.Config) {
		c.Upstream.Endpoint = rl.endpoint()
		c.Upstream.StallTimeout = config.Duration(2 * time.Second)
	})
	k := uniqueKey(t, "fault/")
	data := randomBytes(4 << 20)
	if _, err := viaProxy(t, true).PutObject(context.Background(), "enc", k, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int64{3000, 1 << 20} { // in the headers, in the body
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			defer rl.arm(&rl.cutDown, cut)()
			r := newRaw(http.MethodGet, "/enc/"+k, nil)
			r.signClient(base, emptyHash)
			a := send(t, base, r)
			switch {
			case a.status == 200 && a.err == nil:
				t.Fatalf("a GET cut after %d upstream bytes answered 200 with a complete-looking body of %d bytes (want %d)", cut, len(a.body), len(data))
			case a.status == 200:
				t.Logf("200, then the stream broke after %d bytes: %v", len(a.body), a.err)
				if !bytes.Equal(a.body, data[:len(a.body)]) {
					t.Error("the bytes before the break differ from the object")
				}
			default:
				wantGatewayError(t, a)
			}
		})
	}
}

func TestFaultUpstreamHangs(t *testing.T) {
	buckets(t)
	rl := newRelay(t, minioAddr())
	// An upstream that stops reading is cut after upstream.stall_timeout
	// (default 1 minute; 2 s here to keep the test short).
	puts := &finishedPuts{}
	base, _ := startObservedProxy(t, func(c *config.Config) {
		c.Upstream.Endpoint = rl.endpoint()
		c.Upstream.StallTimeout = config.Duration(2 * time.Second)
	}, puts)
	k := uniqueKey(t, "fault/")
	data := randomBytes(4 << 20)
	if _, err := viaProxy(t, true).PutObject(context.Background(), "enc", k, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// released checks that the proxy has finished the request (and so let
	// go of its upstream connection) soon after its client left. The relay
	// itself cannot tell: a closed connection's FIN waits behind the data
	// that the stalled relay no longer reads.
	released := func(t *testing.T, before int) {
		t.Helper()
		if !waitFor(5*time.Second, func() bool { return puts.count() > before }) {
			t.Errorf("the proxy still serves a PUT whose upstream hung, 5 s after its client left")
		}
	}
	stalled := func(rc *relayConn) bool { return rc.stalled.Load() }
	t.Run("client-waits", func(t *testing.T) {
		// The client stays: the proxy's write to the upstream that stopped
		// reading fails after the stall timeout, and the client gets a 5xx.
		before, ref := snapshot(t), puts.count()
		defer rl.arm(&rl.stallUp, 256<<10)()
		big := randomBytes(48 << 20) // more than the sockets' buffers hold
		start := time.Now()
		resp, err := signedPut(t, base, "/enc/"+uniqueKey(t, "fault/"), big, 20*time.Second)
		took := time.Since(start)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 {
				t.Fatalf("a PUT whose upstream stopped reading answered %s %s", resp.Status, b)
			}
		}
		if took > 15*time.Second {
			t.Errorf("the stalled PUT took %v; want about the 2 s stall timeout", took)
		}
		if !waitFor(5*time.Second, func() bool { return puts.count() > ref }) || puts.last() < 500 {
			t.Errorf("the proxy did not finish the stalled PUT with a 5xx (statuses seen: %d, last %d)", puts.count()-ref, puts.last())
		}
		assertNothingNew(t, before)
	})
	t.Run("before-answering", func(t *testing.T) {
		defer rl.arm(&rl.stallDown, 1)() // not even the TLS handshake comes back
		r := newRaw(http.MethodGet, "/enc/"+k, nil)
		r.timeout = 1500 * time.Millisecond
		r.signClient(base, emptyHash)
		a := send(t, base, r)
		if a.status == 200 {
			t.Fatalf("a hung upstream gave %v", a)
		}
		t.Logf("client: %v", a)
		// The proxy's dial goes on in the background up to its TLS
		// handshake timeout (10 s): not waited for here.
		t.Logf("hung handshakes still open: %d", rl.open(stalled))
	})
	t.Run("mid-get-body", func(t *testing.T) {
		defer rl.arm(&rl.stallDown, 512<<10)()
		r := newRaw(http.MethodGet, "/enc/"+k, nil)
		r.timeout = 1500 * time.Millisecond
		r.signClient(base, emptyHash)
		a := send(t, base, r)
		if a.status == 200 && a.err == nil {
			t.Fatalf("a GET whose upstream hung answered 200 with %d bytes and no error", len(a.body))
		}
		t.Logf("client: status %d, %d bytes, %v", a.status, len(a.body), a.err)
		// The relay still reads what the proxy sends, so it sees it close.
		if !waitFor(5*time.Second, func() bool { return rl.open(stalled) == 0 }) {
			t.Errorf("the proxy still holds %d hung upstream connections 5 s after its client left", rl.open(stalled))
		}
	})
	for _, mode := range payloadModes {
		t.Run("mid-put-"+mode, func(t *testing.T) {
			before, ref := snapshot(t), puts.count()
			defer rl.arm(&rl.stallUp, 256<<10)()
			r := faultPut(base, "/enc/"+uniqueKey(t, "fault/"), mode, data)
			r.timeout = 1500 * time.Millisecond
			a := send(t, base, r)
			if a.status == 200 {
				t.Fatalf("a PUT whose upstream hung answered %v", a)
			}
			t.Logf("client: %v", a)
			if mode == "unsigned" { // once: while this fails it waits
				released(t, ref)
			}
			assertNothingNew(t, before)
		})
	}
}

func TestFaultUpstreamUnreachable(t *testing.T) {
	buckets(t)
	data := randomBytes(100 << 10)
	t.Run("connection-refused", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		base, _ := startProxy(t, func(c *config.Config) { c.Upstream.Endpoint = "https://" + addr })
		before := snapshot(t)
		wantError(t, send(t, base, faultPut(base, "/enc/"+uniqueKey(t, "fault/"), "unsigned", data)), 503, "ServiceUnavailable")
		assertNothingNew(t, before)
	})
	t.Run("reset-on-accept", func(t *testing.T) {
		rl := newRelay(t, minioAddr())
		rl.refuse.Store(true)
		base, _ := startProxy(t, func(c *config.Config) { c.Upstream.Endpoint = rl.endpoint() })
		before := snapshot(t)
		a := send(t, base, faultPut(base, "/enc/"+uniqueKey(t, "fault/"), "unsigned", data))
		if a.status < 500 || a.Code == "" {
			t.Errorf("got %v, want a 5xx S3 error", a)
		}
		assertNothingNew(t, before)
	})
}

// selfSigned is a TLS certificate for 127.0.0.1 that no one trusts.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "impostor"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestFaultUpstreamWrongCertificate(t *testing.T) {
	buckets(t)
	var reached atomic.Int32
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}})
	if err != nil {
		t.Fatal(err)
	}
	impostor := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1) // a request here would carry the SSE-C key
		w.WriteHeader(200)
	}), ErrorLog: newDiscardLog()}
	go func() { _ = impostor.Serve(ln) }()
	t.Cleanup(func() { _ = impostor.Close() })
	base, _ := startProxy(t, func(c *config.Config) { c.Upstream.Endpoint = "https://" + ln.Addr().String() })
	data := randomBytes(1000)
	for _, m := range []string{http.MethodPut, http.MethodGet} {
		t.Run(m, func(t *testing.T) {
			before := snapshot(t)
			var r *rawReq
			if m == http.MethodPut {
				r = faultPut(base, "/enc/"+uniqueKey(t, "fault/"), "hex", data)
			} else {
				r = newRaw(http.MethodGet, "/enc/anything", nil)
				r.signClient(base, emptyHash)
			}
			a := send(t, base, r)
			wantError(t, a, 502, "BadGateway")
			if !strings.Contains(a.Msg, "certificate") {
				t.Errorf("the message %q does not name the certificate", a.Msg)
			}
			assertNothingNew(t, before)
		})
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("%d requests reached the upstream with the untrusted certificate", n)
	}
}

func TestFaultClientDisconnectsMidUpload(t *testing.T) {
	buckets(t)
	data := randomBytes(8 << 20)
	for _, mode := range payloadModes {
		t.Run(mode, func(t *testing.T) {
			rl := newRelay(t, minioAddr())
			base, _ := startProxy(t, func(c *config.Config) { c.Upstream.Endpoint = rl.endpoint() })
			before := snapshot(t)
			r := faultPut(base, "/enc/"+uniqueKey(t, "fault/"), mode, data)
			r.short, r.abort = 3<<20, true
			send(t, base, r)
			// The proxy's upstream request must end (aborted), not wait.
			carrying := func(rc *relayConn) bool { return rc.up.Load() > 1<<20 }
			if !waitFor(5*time.Second, func() bool { return rl.accepted.Load() > 0 && rl.open(carrying) == 0 }) {
				t.Errorf("the upstream request is still open after the client left (accepted %d, open %d)", rl.accepted.Load(), rl.open(carrying))
			}
			assertNothingNew(t, before)
		})
	}
}

func TestFaultKeyFileCorruptedInProcess(t *testing.T) {
	buckets(t)
	dir := t.TempDir()
	kf := filepath.Join(dir, "k1.key")
	if err := os.WriteFile(kf, []byte(base64.StdEncoding.EncodeToString(env.keys["k1"])), 0o600); err != nil {
		t.Fatal(err)
	}
	base, _ := startProxy(t, func(c *config.Config) {
		c.Keys = []config.KeySource{{ID: "k1", File: kf}}
		c.Rules = []config.Rule{{Bucket: "enc", Key: "k1"}}
	})
	for _, corrupt := range []func() error{
		func() error { return os.WriteFile(kf, []byte("not a key at all\n"), 0o600) },
		func() error { return os.Remove(kf) },
	} {
		if err := corrupt(); err != nil {
			t.Fatal(err)
		}
		k, data := uniqueKey(t, "fault/"), randomBytes(10<<10)
		if a := send(t, base, faultPut(base, "/enc/"+k, "hex", data)); a.status != 200 {
			t.Fatalf("PUT after the key file changed: %v", a)
		}
		assertEncrypted(t, "enc", k, "k1", data)
	}
}

// The real binary, built once.
var builtBinary struct {
	once sync.Once
	path string
	err  error
}

func buildBinary(t *testing.T) string {
	t.Helper()
	builtBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "ssec-e2e-bin-")
		if err != nil {
			builtBinary.err = err
			return
		}
		builtBinary.path = filepath.Join(dir, "ssec-proxy")
		cmd := exec.Command("go", "build", "-o", builtBinary.path, "./cmd/ssec-proxy")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			builtBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if builtBinary.err != nil {
		t.Fatal(builtBinary.err)
	}
	return builtBinary.path
}

// process is the ssec-proxy binary running serve.
type process struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
}

func startBinary(t *testing.T, bin, cfgPath string) *process {
	t.Helper()
	p := &process{stderr: &syncBuffer{}}
	p.cmd = exec.Command(bin, "serve", "--config", cfgPath, "--log-level", "debug")
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		noSecretsIn(t, "the binary's log", p.stderr.String())
	})
	return p
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestFaultProcessKilledMidUpload(t *testing.T) {
	buckets(t)
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	kf := filepath.Join(dir, "k1.key")
	if err := os.WriteFile(kf, env.keys["k1"], 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cfgPath := filepath.Join(dir, "ssec-proxy.yaml")
	yml := fmt.Sprintf(`listen: %s
tls:
  mode: "off"
state_dir: %s
admin:
  listen: "off"
upstream:
  endpoint: %s
  region: us-east-1
  access_key: %s
  secret_key: ${SSEC_E2E_UPSTREAM_SECRET}
  ca_file: %s
clients:
  - access_key: %s
    secret_key: %s
keys:
  - id: k1
    file: %s
rules:
  - bucket: enc
    key: k1
`, addr, filepath.Join(dir, "state"), env.minio.Endpoint, env.minio.AccessKey, env.minio.CAFile, env.clientAK, env.clientSK, kf)
	if err := os.WriteFile(cfgPath, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	data := randomBytes(16 << 20)
	// up waits until the process answers a signed request.
	up := func(p *process) time.Duration {
		start := time.Now()
		ok := waitFor(10*time.Second, func() bool {
			c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		if !ok {
			t.Fatalf("the binary does not listen on %s:\n%s", addr, p.stderr.String())
		}
		return time.Since(start)
	}
	pt := t
	p := startBinary(pt, bin, cfgPath)
	up(p)

	for _, mode := range payloadModes {
		t.Run("sigkill-mid-put-"+mode, func(t *testing.T) {
			before := snapshot(t)
			r := faultPut(base, "/enc/"+uniqueKey(t, "killed/"), mode, data)
			conn, err := dialBase(base)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			raw := rawBytes(r, base)
			if _, err := conn.Write(raw[:len(raw)/3]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // the upload is streaming upstream now
			p.kill(t)
			conn.Close()
			time.Sleep(300 * time.Millisecond)
			assertNothingNew(t, before)

			p = startBinary(pt, bin, cfgPath)
			took := up(p)
			k, small := uniqueKey(t, "killed/"), randomBytes(64<<10)
			start := time.Now()
			var a *s3Answer
			for i := 0; i < 20; i++ {
				if a = send(t, base, faultPut(base, "/enc/"+k, "hex", small)); a.status == 200 {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if a.status != 200 {
				t.Fatalf("the restarted proxy answers %v", a)
			}
			t.Logf("restarted: listening after %v, first PUT done after %v more", took, time.Since(start))
			if took+time.Since(start) > 3*time.Second {
				t.Errorf("the restarted proxy took %v to serve", took+time.Since(start))
			}
			assertEncrypted(t, "enc", k, "k1", small)
		})
	}

	// Killed right after answering writes (issue 14, item 1): their index
	// entries, written behind the answers, may be lost, never an object.
	// Through the restarted proxy each object reads back whole, and its
	// ETag is the MD5 of its data or, where the entry was lost, the
	// upstream's: never another.
	t.Run("sigkill-after-answers", func(t *testing.T) {
		ctx := context.Background()
		c := minioClient(t, base)
		objs := map[string][]byte{}
		for range 20 {
			k, data := uniqueKey(t, "killed-after/"), randomBytes(1<<10)
			if _, err := c.PutObject(ctx, "enc", k, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			objs[k] = data
		}
		p.kill(t)
		p = startBinary(pt, bin, cfgPath)
		up(p)
		c = minioClient(t, base)
		withMD5 := 0
		for k, data := range objs {
			assertEncrypted(t, "enc", k, "k1", data)
			upst, err := direct(t).StatObject(ctx, "enc", k, minio.StatObjectOptions{ServerSideEncryption: ssec(t, "k1")})
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(c.GetObject(ctx, "enc", k, minio.GetObjectOptions{}))
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s through the restarted proxy: %d bytes, %v", k, len(got), err)
			}
			st, err := c.StatObject(ctx, "enc", k, minio.StatObjectOptions{})
			switch {
			case err != nil:
				t.Errorf("%s: %v", k, err)
			case st.ETag == md5hex(data):
				withMD5++
			case st.ETag != upst.ETag:
				t.Errorf("%s: ETag %s is neither the data's MD5 nor the upstream's %s", k, st.ETag, upst.ETag)
			}
		}
		t.Logf("%d of %d entries survived the kill", withMD5, len(objs))
	})

	// The key file corrupted, then removed, while the binary runs: a reload
	// (SIGHUP, or the file watcher) fails, the proxy says so, and keeps
	// encrypting with the key it has.
	for _, tc := range []struct {
		name    string
		corrupt func() error
	}{
		{"corrupted", func() error { return os.WriteFile(kf, []byte("garbage, not a key\n"), 0o600) }},
		{"truncated", func() error { return os.WriteFile(kf, env.keys["k1"][:16], 0o600) }},
		{"removed", func() error { return os.Remove(kf) }},
	} {
		t.Run("key-file-"+tc.name, func(t *testing.T) {
			mark := len(p.stderr.String())
			if err := tc.corrupt(); err != nil {
				t.Fatal(err)
			}
			_ = p.cmd.Process.Signal(syscall.SIGHUP)
			if !waitFor(5*time.Second, func() bool {
				return strings.Contains(p.stderr.String()[mark:], "reload failed")
			}) {
				t.Errorf("the proxy did not say that the reload failed; its log since:\n%s", p.stderr.String()[mark:])
			}
			k, small := uniqueKey(t, "keyfile/"), randomBytes(32<<10)
			if a := send(t, base, faultPut(base, "/enc/"+k, "unsigned", small)); a.status != 200 {
				t.Fatalf("PUT after the key file was %s: %v", tc.name, a)
			}
			assertEncrypted(t, "enc", k, "k1", small)
		})
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

// rawBytes is r as send writes it.
func rawBytes(r *rawReq, base string) []byte {
	var b bytes.Buffer
	target := r.path
	if r.query != "" {
		target += "?" + r.query
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", r.method, target, r.hostFor(base), len(r.body))
	_ = r.header.Write(&b)
	b.WriteString("\r\n")
	b.Write(r.body)
	return b.Bytes()
}

func newDiscardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// peerClosed reports whether the other end of c has closed or reset the
// connection, from the TCP state, without reading.
func peerClosed(c net.Conn) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	_ = raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		closed = err != nil || info.State == 7 /* TCP_CLOSE */ || info.State == 8 /* TCP_CLOSE_WAIT */
	})
	return closed
}

// signedPut sends data as a PUT signed with UNSIGNED-PAYLOAD by minio-go's
// signer, with a client timeout; the client writes and reads at once, as
// Go's does.
func signedPut(t *testing.T, base, path string, data []byte, timeout time.Duration) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, base+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	req = signer.SignV4(*req, env.clientAK, env.clientSK, "", "us-east-1")
	return (&http.Client{Timeout: timeout}).Do(req)
}
