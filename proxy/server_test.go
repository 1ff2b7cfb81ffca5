package proxy

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/invariant"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

// fakeS3 records what reaches the upstream and answers 200 (or status).
type fakeS3 struct {
	mu      sync.Mutex
	reqs    []recorded
	status  int
	body    string
	echoMD5 string // answer with this SSE-C key MD5, as S3 echoes it
	etag    string // answer with this ETag header
	// gate, when set, holds every request for the proxy's ETag index
	// until it is closed (a slow index write).
	gate chan struct{}
	mark int // first() looks at requests from here on
	// failing, when set, answers 503 to every request whose path holds it
	// (an upstream that fails the proxy's own writes).
	failing string
}

type recorded struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
	BodyErr             error
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), b, err})
	status, body, gate := f.status, f.body, f.gate
	if f.failing != "" && strings.Contains(r.URL.Path, f.failing) {
		status, body = http.StatusServiceUnavailable, ""
	}
	if gate != nil && strings.Contains(r.URL.Path, "/.ssec-proxy/etags/") {
		f.mu.Unlock()
		<-gate
		f.mu.Lock()
	}
	if f.etag != "" {
		w.Header().Set("ETag", f.etag)
	}
	if f.echoMD5 != "" {
		w.Header().Set("X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256")
		w.Header().Set(hSSEKey, f.echoMD5)
	}
	f.mu.Unlock()
	if status == 0 {
		status = 200
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (f *fakeS3) last(t *testing.T) recorded {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("nothing reached the upstream")
	}
	return f.reqs[len(f.reqs)-1]
}

// first returns the first request with method and path since the last
// reset.
func (f *fakeS3) first(t *testing.T, method, path string) recorded {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reqs[f.mark:] {
		if r.Method == method && strings.TrimSuffix(r.Path, "/") == strings.TrimSuffix(path, "/") {
			return r
		}
	}
	t.Fatalf("no %s %s reached the upstream", method, path)
	return recorded{}
}

// all returns what reached the upstream so far.
func (f *fakeS3) all() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeS3) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

type testProxy struct {
	h      *Server
	cfg    *config.Config
	url    string
	up     *fakeS3
	srv    *httptest.Server  // the upstream
	keyMD5 map[string]string // id → base64 MD5
}

const (
	testAK = "client-ak"
	testSK = "client-secret-key-0123456789"
)

// withoutCA leaves the upstream's certificate untrusted.
const withoutCA = true

func newTestProxy(t testing.TB, noCA ...bool) *testProxy {
	t.Helper()
	up := &fakeS3{}
	us := httptest.NewTLSServer(up)
	t.Cleanup(us.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: us.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	caLine := "ca_file: " + ca
	if len(noCA) > 0 && noCA[0] {
		caLine = ""
	}
	md5s := map[string]string{}
	for i, id := range []string{"cur", "old", "other"} {
		k := bytes.Repeat([]byte{byte('a' + i)}, 32)
		sum := md5.Sum(k)
		md5s[id] = base64.StdEncoding.EncodeToString(sum[:])
		if err := os.WriteFile(filepath.Join(dir, id+".key"), k, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	yml := fmt.Sprintf(`
upstream:
  endpoint: %s
  region: us-east-1
  access_key: up-ak
  secret_key: up-sk
  %s
clients:
  - access_key: %s
    secret_key: %s
keys:
  - {id: cur, file: %[5]s/cur.key}
  - {id: old, file: %[5]s/old.key}
  - {id: other, file: %[5]s/other.key}
rules:
  - {bucket: enc, key: cur, previous: [old]}
  - {bucket: enc, prefix: public/, encrypt: false}
  - {bucket: src-bucket, key: other}
  - {bucket: plain, encrypt: false}
default: deny
`, us.URL, caLine, testAK, testSK, dir)
	cfg, err := config.Parse([]byte("state_dir: "+dir+"\n"+yml), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ring, _, err := keystore.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Every upstream request of every unit test is checked against
	// invariant 1 (internal/invariant).
	var h *Server
	inv := &invariant.RoundTripper{Ring: func() *keystore.Keyring {
		if h == nil {
			return nil
		}
		return h.Keyring()
	}}
	h, err = New(Options{Config: cfg, Keyring: ring, WrapTransport: func(next http.RoundTripper) http.RoundTripper {
		inv.Next = next
		return inv
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		v, _ := inv.Violations()
		for _, s := range v {
			t.Errorf("invariant: %s", s)
		}
	})
	ps := httptest.NewServer(h)
	t.Cleanup(ps.Close)
	return &testProxy{h: h, cfg: cfg, url: ps.URL, up: up, srv: us, keyMD5: md5s}
}

// do signs a request as a client would (hex payload hash) and sends it.
func (p *testProxy) do(t *testing.T, method, path string, body []byte, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	req = signer.SignV4(*req, testAK, testSK, "", "us-east-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const (
	hSSEKey     = "X-Amz-Server-Side-Encryption-Customer-Key-Md5"
	hCopySSEKey = "X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key-Md5"
)

// TestSSECPerOperation pins DESIGN.md's table: which key each operation
// carries upstream.
func TestSSECPerOperation(t *testing.T) {
	p := newTestProxy(t)
	cases := []struct {
		name, method, path string
		hdr                map[string]string
		key, copyKey       string // key ids expected upstream, "" for none
	}{
		{"PutObject", "PUT", "/enc/a/b", nil, "cur", ""},
		{"PutObject-plaintext-prefix", "PUT", "/enc/public/x", nil, "", ""},
		{"PutObject-plaintext-bucket", "PUT", "/plain/x", nil, "", ""},
		{"CreateMultipartUpload", "POST", "/enc/k?uploads", nil, "cur", ""},
		{"UploadPart", "PUT", "/enc/k?partNumber=1&uploadId=u", nil, "cur", ""},
		{"CompleteMultipartUpload", "POST", "/enc/k?uploadId=u", nil, "cur", ""},
		{"CopyObject-same-key", "PUT", "/enc/dst", map[string]string{"X-Amz-Copy-Source": "/enc/src"}, "cur", "cur"},
		{"CopyObject-from-other-key", "PUT", "/enc/dst", map[string]string{"X-Amz-Copy-Source": "src-bucket/src"}, "cur", "other"},
		{"CopyObject-from-plaintext", "PUT", "/enc/dst", map[string]string{"X-Amz-Copy-Source": "plain/src"}, "cur", ""},
		{"CopyObject-to-plaintext", "PUT", "/plain/dst", map[string]string{"X-Amz-Copy-Source": "enc/src"}, "", "cur"},
		{"UploadPartCopy", "PUT", "/enc/k?partNumber=2&uploadId=u", map[string]string{"X-Amz-Copy-Source": "enc/src"}, "cur", "cur"},
		{"GetObject", "GET", "/enc/k", nil, "cur", ""},
		{"HeadObject", "HEAD", "/enc/k", nil, "cur", ""},
		{"GetObjectAttributes", "GET", "/enc/k?attributes", map[string]string{"X-Amz-Object-Attributes": "ETag"}, "cur", ""},
		{"SelectObjectContent", "POST", "/enc/k?select&select-type=2", nil, "cur", ""},
		{"ListObjects", "GET", "/enc?list-type=2", nil, "", ""},
		{"DeleteObject", "DELETE", "/enc/k", nil, "", ""},
		{"PutObjectTagging", "PUT", "/enc/k?tagging", nil, "", ""},
		{"ListParts", "GET", "/enc/k?uploadId=u", nil, "", ""},
		{"AbortMultipartUpload", "DELETE", "/enc/k?uploadId=u", nil, "", ""},
		{"ListBuckets", "GET", "/", nil, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.up.mu.Lock()
			p.up.mark = len(p.up.reqs)
			p.up.mu.Unlock()
			resp := p.do(t, tc.method, tc.path, []byte("body"), tc.hdr)
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			got := p.up.first(t, tc.method, strings.SplitN(tc.path, "?", 2)[0])
			if want := p.keyMD5[tc.key]; got.Header.Get(hSSEKey) != want {
				t.Errorf("SSE-C key MD5 upstream = %q, want key %q (%q)", got.Header.Get(hSSEKey), tc.key, want)
			}
			if want := p.keyMD5[tc.copyKey]; got.Header.Get(hCopySSEKey) != want {
				t.Errorf("copy-source key MD5 upstream = %q, want key %q", got.Header.Get(hCopySSEKey), tc.copyKey)
			}
			if got.Header.Get("Authorization") == "" || strings.Contains(got.Header.Get("Authorization"), testAK) {
				t.Errorf("upstream request not re-signed with the upstream's credentials: %q", got.Header.Get("Authorization"))
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	p := newTestProxy(t)
	cases := []struct {
		name, method, path string
		hdr                map[string]string
		status             int
		code, msgPart      string
	}{
		{"default-deny", "PUT", "/nobucket/dir/x", nil, 403, "AccessDenied", `key prefix &#34;dir/&#34;`},
		{"deny-copy-source", "PUT", "/enc/x", map[string]string{"X-Amz-Copy-Source": "nobucket/y"}, 403, "AccessDenied", "nobucket"},
		{"client-sse-c", "PUT", "/enc/x", map[string]string{"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256"}, 400, "InvalidRequest", "manages encryption for s3://enc/"},
		{"client-sse-s3", "PUT", "/enc/x", map[string]string{"X-Amz-Server-Side-Encryption": "AES256"}, 400, "InvalidRequest", "manages encryption"},
		{"client-copy-sse", "PUT", "/enc/x", map[string]string{"X-Amz-Copy-Source": "enc/y", "X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm": "AES256"}, 400, "InvalidRequest", "copy-source"},
		{"post-form-encrypting", "POST", "/enc", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, 400, "InvalidRequest", "form upload"},
		{"unknown-post", "POST", "/enc/x", nil, 405, "MethodNotAllowed", "does not recognise"},
		{"bad-bucket", "GET", "/Bad_Bucket/x", nil, 400, "InvalidBucketName", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := p.up.count()
			resp := p.do(t, tc.method, tc.path, []byte("body"), tc.hdr)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), "<Code>"+tc.code+"</Code>") || !strings.Contains(string(b), tc.msgPart) {
				t.Errorf("got %d %s, want %d %s containing %q", resp.StatusCode, b, tc.status, tc.code, tc.msgPart)
			}
			if p.up.count() != before {
				t.Error("a refused request reached the upstream")
			}
		})
	}
}

func TestUnauthenticatedNeverReachesUpstream(t *testing.T) {
	p := newTestProxy(t)
	for name, mutate := range map[string]func(r *http.Request){
		"no-auth": func(r *http.Request) { r.Header.Del("Authorization") },
		"bad-signature": func(r *http.Request) {
			a := r.Header.Get("Authorization")
			last := "0"
			if strings.HasSuffix(a, "0") {
				last = "1"
			}
			r.Header.Set("Authorization", a[:len(a)-1]+last)
		},
		"tampered-path": func(r *http.Request) { r.URL.Path = "/enc/other" },
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("PUT", p.url+"/enc/k", strings.NewReader("data"))
			req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
			req = signer.SignV4(*req, testAK, testSK, "", "us-east-1")
			mutate(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 403 {
				t.Errorf("status %d, want 403: %s", resp.StatusCode, b)
			}
			if p.up.count() != 0 {
				t.Error("an unauthenticated request reached the upstream")
			}
		})
	}
}

// A body whose hash does not match what the client signed never completes
// upstream: the upstream sees a short, failed body (invariant 7).
func TestBadPayloadHashIsNotCommitted(t *testing.T) {
	p := newTestProxy(t)
	req, _ := http.NewRequest("PUT", p.url+"/enc/k", strings.NewReader("the real body"))
	sum := sha256.Sum256([]byte("another body"))
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	req = signer.SignV4(*req, testAK, testSK, "", "us-east-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "XAmzContentSHA256Mismatch") {
		t.Errorf("got %d %s, want 400 XAmzContentSHA256Mismatch", resp.StatusCode, b)
	}
	// The upstream handler may still be reading the aborted body.
	for i := 0; i < 100 && p.up.count() == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	for _, r := range p.up.all() {
		if r.BodyErr == nil && len(r.Body) == len("the real body") {
			t.Error("the upstream received the whole unverified body")
		}
	}
}

func TestPreviousKeyRetry(t *testing.T) {
	p := newTestProxy(t)
	p.up.status = 403
	resp := p.do(t, "GET", "/enc/k", nil, nil)
	if resp.StatusCode != 403 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := p.up.count(); n != 2 {
		t.Fatalf("%d upstream requests, want 2 (current key, then the previous one)", n)
	}
	reqs := p.up.all()
	if got := reqs[0].Header.Get(hSSEKey); got != p.keyMD5["cur"] {
		t.Errorf("first try with %q, want the current key", got)
	}
	if got := reqs[1].Header.Get(hSSEKey); got != p.keyMD5["old"] {
		t.Errorf("retry with %q, want the previous key", got)
	}
}

func TestAuthErrorsAreS3XML(t *testing.T) {
	p := newTestProxy(t)
	cases := []struct {
		name   string
		sign   func(r *http.Request) *http.Request
		status int
		code   string
	}{
		{"unknown-access-key", func(r *http.Request) *http.Request {
			return signer.SignV4(*r, "nobody", testSK, "", "us-east-1")
		}, 403, "InvalidAccessKeyId"},
		{"wrong-secret", func(r *http.Request) *http.Request {
			return signer.SignV4(*r, testAK, "wrong", "", "us-east-1")
		}, 403, "SignatureDoesNotMatch"},
		{"no-auth", func(r *http.Request) *http.Request { return r }, 403, "AccessDenied"},
		{"unsigned-amz-header", func(r *http.Request) *http.Request {
			r = signer.SignV4(*r, testAK, testSK, "", "us-east-1")
			r.Header.Set("X-Amz-Copy-Source", "enc/elsewhere")
			return r
		}, 403, "AccessDenied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", p.url+"/enc/k", nil)
			req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
			resp, err := http.DefaultClient.Do(tc.sign(req))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), "<Code>"+tc.code+"</Code>") {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, b, tc.status, tc.code)
			}
			if resp.Header.Get("Content-Type") != "application/xml" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
			if p.up.count() != 0 {
				t.Error("reached the upstream")
			}
		})
	}
}

// The upstream's failures become clean 5xx S3 errors, never a hang or a
// pass-through without TLS verification.
func TestUpstreamFailures(t *testing.T) {
	t.Run("dead-upstream", func(t *testing.T) {
		p := newTestProxy(t)
		p.srv.Close() // nothing listens there any more
		resp := p.do(t, "GET", "/enc/k", nil, nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 503 || !strings.Contains(string(b), "<Code>ServiceUnavailable</Code>") {
			t.Errorf("got %d %s, want 503 ServiceUnavailable", resp.StatusCode, b)
		}
	})
	t.Run("untrusted-certificate", func(t *testing.T) {
		p := newTestProxy(t, withoutCA)
		resp := p.do(t, "PUT", "/enc/k", []byte("secret data"), nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 502 || !strings.Contains(string(b), "TLS certificate") {
			t.Errorf("got %d %s, want 502 naming the certificate", resp.StatusCode, b)
		}
		if p.up.count() != 0 {
			t.Error("a request reached an upstream whose certificate is not trusted")
		}
	})
}

// An upstream that echoes another key's MD5 is not trusted with the answer.
func TestEchoedKeyMismatch(t *testing.T) {
	p := newTestProxy(t)
	p.up.echoMD5 = p.keyMD5["other"]
	resp := p.do(t, "PUT", "/enc/k", []byte("x"), nil)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 502 || !strings.Contains(string(b), "key MD5") {
		t.Errorf("got %d %s, want 502", resp.StatusCode, b)
	}
	p.up.echoMD5 = p.keyMD5["cur"]
	resp = p.do(t, "PUT", "/enc/k", []byte("x"), nil)
	if resp.StatusCode != 200 || resp.Header.Get(hSSEKey) != "" || resp.Header.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") != "" {
		t.Errorf("got %d with SSE-C echo %q; want 200 and the echo removed", resp.StatusCode, resp.Header.Get(hSSEKey))
	}
}

type statsRecorder struct {
	mu    sync.Mutex
	stats []RequestStats
}

func (r *statsRecorder) ObserveRequest(s RequestStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats = append(r.stats, s)
}

func TestReloadSwapsKeysAndObserverSees(t *testing.T) {
	p := newTestProxy(t)
	rec := &statsRecorder{}
	p.h.obs = rec
	p.do(t, "PUT", "/enc/k", []byte("abc"), nil)
	if got := p.up.last(t).Header.Get(hSSEKey); got != p.keyMD5["cur"] {
		t.Fatalf("before reload: key %q", got)
	}
	// The new config encrypts bucket enc with "other".
	cfg := *p.cfg
	cfg.Rules = []config.Rule{{Bucket: "enc", Key: "other"}}
	ring, _, err := keystore.Build(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.h.Reload(&cfg, ring); err != nil {
		t.Fatal(err)
	}
	p.do(t, "PUT", "/enc/k", []byte("abc"), nil)
	if got := p.up.last(t).Header.Get(hSSEKey); got != p.keyMD5["other"] {
		t.Errorf("after reload: key %q, want other's", got)
	}
	p.do(t, "PUT", "/nobucket/k", []byte("abc"), nil)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []RequestStats{
		{Op: "PutObject", Status: 200, Decision: "encrypt", KeyID: "cur", RuleBucket: "enc", BytesIn: 3},
		{Op: "PutObject", Status: 200, Decision: "encrypt", KeyID: "other", RuleBucket: "enc", BytesIn: 3},
		{Op: "PutObject", Status: 403, ErrCode: "AccessDenied", Decision: "deny"},
	}
	if len(rec.stats) != len(want) {
		t.Fatalf("%d stats, want %d", len(rec.stats), len(want))
	}
	for i, w := range want {
		g := rec.stats[i]
		g.Duration, g.Upstream, g.BytesOut = 0, 0, 0
		if g != w {
			t.Errorf("stats[%d] = %+v, want %+v", i, g, w)
		}
	}
}
