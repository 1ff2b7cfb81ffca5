package proxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// knownParams are every query parameter some row of the table takes.
func knownParams() map[string]bool {
	m := map[string]bool{}
	for _, rt := range routes {
		for _, p := range rt.sub {
			m[p] = true
		}
		for _, p := range rt.params {
			m[p] = true
		}
	}
	return m
}

// dataWrite reports whether an upstream request writes object data (or
// starts or finishes an upload): a PUT or POST on an object whose query
// names no metadata subresource.
func dataWrite(rec recorded) (bucket, key string, ok bool) {
	path, _ := url.PathUnescape(rec.Path)
	b, k, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if k == "" || rec.Method != http.MethodPut && rec.Method != http.MethodPost {
		return b, k, false
	}
	q, _ := url.ParseQuery(rec.Query)
	for _, sub := range []string{"acl", "tagging", "retention", "legal-hold"} {
		if q.Has(sub) && rec.Header.Get("X-Amz-Copy-Source") == "" && len(rec.Body) <= maxSmallBody {
			return b, k, false
		}
	}
	return b, k, true
}

// checkUpstream asserts invariant 1 and the closed world on every request
// that reached the (recording) upstream.
func checkUpstream(t errorer, p *testProxy, recs []recorded) {
	t.Helper()
	known := knownParams()
	for _, rec := range recs {
		q, _ := url.ParseQuery(rec.Query)
		for name := range q {
			if !known[name] {
				t.Errorf("%s %s?%s: unknown parameter %q reached the upstream", rec.Method, rec.Path, rec.Query, name)
			}
		}
		for name := range rec.Header {
			if forbiddenAmz.allows(name) {
				t.Errorf("%s %s: header %s reached the upstream", rec.Method, rec.Path, name)
			}
		}
		if rec.Header.Get("X-Amz-Copy-Source") != "" {
			if rec.Method != http.MethodPut || len(q) != 0 && !(q.Has("partNumber") && q.Has("uploadId") && len(q) == 2) {
				t.Errorf("%s %s?%s: a copy source on what is not a copy", rec.Method, rec.Path, rec.Query)
			}
		}
		b, k, write := dataWrite(rec)
		want := ""
		switch {
		case b == "enc" && !strings.HasPrefix(k, "public/"):
			want = p.keyMD5["cur"]
		case b == "src-bucket":
			want = p.keyMD5["other"]
		case b == "nope" && k != "":
			if write || (rec.Method == http.MethodGet || rec.Method == http.MethodHead) && len(q) == 0 {
				t.Errorf("%s %s?%s reached the upstream under default deny", rec.Method, rec.Path, rec.Query)
			}
		}
		if write && want != "" && rec.Header.Get(hSSEKey) != want {
			t.Errorf("%s %s?%s: a write under an encrypting rule went up with key MD5 %q, want %q",
				rec.Method, rec.Path, rec.Query, rec.Header.Get(hSSEKey), want)
		}
	}
}

var fuzzHeaders = []struct{ name, value string }{
	{"X-Amz-Copy-Source", "/enc/src"},
	{"X-Amz-Copy-Source", "/nope/src"},
	{"X-Amz-Meta-Snowball-Auto-Extract", "true"},
	{"X-Amz-Meta-Minio-Snowball-Prefix", "x"},
	{"X-Amz-Write-Offset-Bytes", "0"},
	{"X-Amz-Acl", "public-read"},
	{"X-Amz-Acl", "private"},
	{"X-Amz-Grant-Read", "uri=x"},
	{"X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256"},
	{"X-Amz-Metadata-Directive", "REPLACE"},
	{"X-Amz-Meta-Owner", "me"},
	{"Content-Type", "multipart/form-data; boundary=x"},
	{"X-Amz-Copy-Source-Range", "bytes=0-1"},
	{"X-Amz-Storage-Class", "STANDARD"},
}

var fuzzMethods = []string{"GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS"}

var fuzzPaths = []string{"/enc/secret/x", "/enc/public/x", "/enc", "/src-bucket/k", "/plain/k", "/nope/k", "/nope", "/", "/enc/.ssec-proxy/etags/x"}

// FuzzClassifier sends random methods, query strings and headers through
// the proxy to a recording upstream: whatever it makes of them, no write
// under an encrypting rule goes up without the rule's key, nothing goes
// up for a denied object, and no unknown parameter, disguised copy or
// upstream-special header goes up at all.
func FuzzClassifier(f *testing.F) {
	for _, s := range []struct {
		m, p     byte
		q        string
		hdr      uint16
		hn, hv   string
		withBody bool
	}{
		{1, 0, "restore", 0, "", "", true},
		{1, 0, "retention", 1, "", "", false},
		{1, 0, "legal-hold", 1 << 1, "", "", false},
		{1, 0, "", 1 << 2, "", "", true},
		{0, 5, "restore", 0, "", "", false},
		{0, 5, "torrent", 0, "", "", false},
		{2, 0, "uploads", 1, "", "", false},
		{1, 0, "partNumber=1&uploadId=u", 1, "", "", true},
		{2, 2, "delete", 0, "", "", true},
		{1, 0, "tagging&versionId=1", 1, "", "", true},
		{0, 2, "list-type=2&metadata=true", 0, "", "", false},
		{1, 0, "", 0, "X-Amz-Meta-Minio-X", "1", true},
		{2, 2, "", 1 << 11, "", "", true},
	} {
		f.Add(s.m, s.p, s.q, s.hdr, s.hn, s.hv, s.withBody)
	}
	p := newTestProxy(f)
	f.Fuzz(func(t *testing.T, m, pi byte, query string, hdr uint16, hname, hval string, withBody bool) {
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		path := fuzzPaths[int(pi)%len(fuzzPaths)]
		if strings.ContainsAny(query, "#\x00\r\n ") || strings.Contains(query, "X-Amz-") {
			t.Skip()
		}
		req, err := http.NewRequest(method, p.url+path+"?"+query, nil)
		if err != nil {
			t.Skip()
		}
		for i, h := range fuzzHeaders {
			if hdr&(1<<i) != 0 {
				req.Header.Set(h.name, h.value)
			}
		}
		if hname != "" {
			if !validHeaderName(hname) || strings.ContainsAny(hval, "\r\n\x00") {
				t.Skip()
			}
			req.Header.Set(hname, hval)
		}
		var body []byte
		if withBody && (method == "PUT" || method == "POST") {
			body = []byte("<Delete><Object><Key>.ssec-proxy/etags/x</Key></Object></Delete>")
		}
		req.Body = http.NoBody
		if body != nil {
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		}
		sum := sha256.Sum256(body)
		req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		req = signer.SignV4(*req, testAK, testSK, "", "us-east-1")
		mark := p.up.count()
		resp, err := http.DefaultClient.Do(req.WithContext(context.Background()))
		if err != nil {
			t.Skip() // the client refused to send it
		}
		resp.Body.Close()
		checkUpstream(t, p, p.up.all()[mark:])
	})
}

func validHeaderName(n string) bool {
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return n != ""
}

type errorer interface {
	Helper()
	Errorf(format string, args ...any)
}

// recordingT notes whether a check failed.
type recordingT struct{ failed bool }

func (*recordingT) Helper()                 {}
func (r *recordingT) Errorf(string, ...any) { r.failed = true }

// TestCheckUpstreamCatchesAKeylessWrite: the fuzz target's check is not
// vacuous: a write under an encrypting rule without its key fails it.
func TestCheckUpstreamCatchesAKeylessWrite(t *testing.T) {
	p := newTestProxy(t)
	bad := []recorded{{Method: "PUT", Path: "/enc/secret/x", Query: "restore", Header: http.Header{}}}
	rec := &recordingT{}
	checkUpstream(rec, p, bad)
	if !rec.failed {
		t.Fatal("a PUT ?restore under enc without SSE-C passed the check")
	}
	good := []recorded{{Method: "PUT", Path: "/enc/secret/x", Header: http.Header{hSSEKey: {p.keyMD5["cur"]}}}}
	rec = &recordingT{}
	checkUpstream(rec, p, good)
	if rec.failed {
		t.Fatal("a keyed PUT failed the check")
	}
}

// TestCompleteContentMD5: the proxy rewrites a CompleteMultipartUpload's
// part list (upstream part ETags in place of the client's MD5s), so the
// client's Content-MD5 is checked against what the client sent and the
// upstream gets the MD5 of what it is sent (AWS checks it: BadDigest).
func TestCompleteContentMD5(t *testing.T) {
	p := newTestProxy(t)
	p.up.body = `<ListPartsResult><Part><PartNumber>1</PartNumber><ETag>"upstream-etag"</ETag></Part></ListPartsResult>`
	body := []byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"0123456789abcdef0123456789abcdef"</ETag></Part></CompleteMultipartUpload>`)
	sum := md5.Sum(body)
	good := base64.StdEncoding.EncodeToString(sum[:])
	// As if this instance had answered the part with that MD5: a part
	// ETag is taken only as the proxy or the upstream answered it.
	p.h.etags.Put("enc", "upstream-etag", "0123456789abcdef0123456789abcdef")

	resp := p.do(t, "POST", "/enc/secret/x?uploadId=u1", body, map[string]string{"Content-Md5": good})
	if resp.StatusCode != 200 {
		t.Fatalf("Complete: %d", resp.StatusCode)
	}
	var sent *recorded
	for _, r := range p.up.all() {
		if r.Method == "POST" && strings.Contains(r.Query, "uploadId=u1") {
			sent = &r
		}
	}
	if sent == nil {
		t.Fatal("no Complete reached the upstream")
	}
	if !bytes.Contains(sent.Body, []byte("upstream-etag")) {
		t.Fatalf("the part list was not rewritten: %s", sent.Body)
	}
	up := md5.Sum(sent.Body)
	if got, want := sent.Header.Get("Content-Md5"), base64.StdEncoding.EncodeToString(up[:]); got != want || got == good {
		t.Errorf("upstream Content-MD5 %q, want %q (the MD5 of the body it got)", got, want)
	}

	n := p.up.count()
	resp = p.do(t, "POST", "/enc/secret/x?uploadId=u2", body, map[string]string{"Content-Md5": base64.StdEncoding.EncodeToString(make([]byte, 16))})
	if resp.StatusCode != 400 {
		t.Errorf("Complete with a wrong Content-MD5: %d, want 400 BadDigest", resp.StatusCode)
	}
	for _, r := range p.up.all()[n:] {
		if r.Method == "POST" {
			t.Errorf("a Complete with a wrong Content-MD5 reached the upstream")
		}
	}
}

// TestSOSZoneStreamsCrossKeyCopies: SOS refuses a copy between different
// SSE-C keys with an error it does not document, so with upstream.zone
// the proxy streams such copies straight away; with a plain endpoint it
// tries the upstream's copy first.
func TestSOSZoneStreamsCrossKeyCopies(t *testing.T) {
	for _, zone := range []string{"", "ch-gva-2"} {
		t.Run("zone="+zone, func(t *testing.T) {
			p := newTestProxy(t)
			cfg := *p.cfg
			cfg.Upstream.Zone = zone // the endpoint stays the test upstream
			if err := p.h.Reload(&cfg, p.h.rt.Load().ring); err != nil {
				t.Fatal(err)
			}
			p.up.status = 400 // a refusal of the native copy, if one is tried
			p.do(t, "PUT", "/enc/secret/copy", nil, map[string]string{"X-Amz-Copy-Source": "/src-bucket/k"})
			native := false
			for _, r := range p.up.all() {
				if r.Method == "PUT" && r.Header.Get("X-Amz-Copy-Source") != "" {
					native = true
				}
			}
			if native != (zone == "") {
				t.Errorf("zone %q: native copy tried = %v, want %v", zone, native, zone == "")
			}
		})
	}
}

// hookRecorder is an Observer with the optional hooks metrics implements.
type hookRecorder struct {
	statsRecorder
	conns, handshakes, indexOK atomicCount
	pending, cleanups          func() int
}

type atomicCount struct{ n atomic.Int64 }

func (h *hookRecorder) UpstreamConnOpened()              { h.conns.n.Add(1) }
func (h *hookRecorder) UpstreamTLSHandshake(ok bool)     { h.handshakes.n.Add(1) }
func (h *hookRecorder) SetIndexPending(fn func() int)    { h.pending = fn }
func (h *hookRecorder) SetCleanupsPending(fn func() int) { h.cleanups = fn }
func (h *hookRecorder) IndexWrite(ok bool) {
	if ok {
		h.indexOK.n.Add(1)
	}
}

// TestObserverHooks: the observer hears of upstream connections and TLS
// handshakes, of index writes, and of the rule that decided.
func TestObserverHooks(t *testing.T) {
	p := newTestProxy(t)
	obs := &hookRecorder{}
	p.h.obs = obs
	if err := p.h.Reload(p.cfg, p.h.rt.Load().ring); err != nil {
		t.Fatal(err)
	}
	p.up.etag = `"upstream-etag"`
	p.do(t, "PUT", "/enc/secret/x", []byte("data"), nil)
	if obs.conns.n.Load() == 0 || obs.handshakes.n.Load() == 0 {
		t.Errorf("connections %d, handshakes %d: want both counted", obs.conns.n.Load(), obs.handshakes.n.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	DrainCleanups(ctx) // the entry is written behind the answer
	cancel()
	if obs.indexOK.n.Load() != 1 {
		t.Errorf("index writes %d, want 1", obs.indexOK.n.Load())
	}
	obs.mu.Lock()
	st := obs.stats[len(obs.stats)-1]
	obs.mu.Unlock()
	h, err := New(Options{Config: p.cfg, Keyring: p.h.rt.Load().ring, Observer: obs})
	if err != nil || obs.pending == nil || obs.pending() != 0 || obs.cleanups == nil || obs.cleanups() != 0 {
		t.Errorf("New did not hand the observer the index backlog and the clean-ups' (%v)", err)
	}
	_ = h
	if st.RuleBucket != "enc" || st.RulePrefix != "" || st.Op != "PutObject" {
		t.Errorf("stats %+v: want the rule enc/ of a PutObject", st)
	}
}

// TestRefusedSSECWriteExplained: an upstream that refuses an SSE-C write
// (AWS's 403 where the bucket blocks SSE-C; 501 or a 400 about encryption
// elsewhere) gets the client an S3 error that says so and what to change;
// other answers pass as they came.
func TestRefusedSSECWriteExplained(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		want       string // in the message; "" when passed as it came
	}{
		{"aws-blocked", `<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`, 403, "BlockedEncryptionTypes NONE"},
		{"not-implemented", `<Error><Code>NotImplemented</Code><Message>SSE-C is not supported</Message></Error>`, 501, "does not take SSE-C writes"},
		{"bad-request-encryption", `<Error><Code>InvalidArgument</Code><Message>Server side encryption with customer keys is not supported</Message></Error>`, 400, "does not take SSE-C writes"},
		{"other-bad-request", `<Error><Code>InvalidTag</Code><Message>bad tag</Message></Error>`, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProxy(t)
			p.up.status, p.up.body = tc.status, tc.body
			resp := p.do(t, "PUT", "/enc/secret/x", []byte("data"), nil)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want the upstream's %d", resp.StatusCode, tc.status)
			}
			if tc.want == "" {
				if string(b) != tc.body {
					t.Errorf("body %q, want the upstream's as it came", b)
				}
				return
			}
			if !bytes.Contains(b, []byte(tc.want)) || !bytes.Contains(b, []byte("check --probe")) || !bytes.Contains(b, []byte(`bucket &#34;enc&#34;`)) && !bytes.Contains(b, []byte(`bucket &quot;enc&quot;`)) {
				t.Errorf("body %s, want it to say %q, name the bucket and check --probe", b, tc.want)
			}
		})
	}
}

// TestOwnerOnlyACLPasses: an ACL document that grants to the upstream's
// owner only (what a tool puts back after reading it) goes through; the
// owner is the upstream's, read by the proxy, not the document's.
func TestOwnerOnlyACLPasses(t *testing.T) {
	p := newTestProxy(t)
	acl := `<AccessControlPolicy><Owner><ID>owner-id</ID></Owner><AccessControlList><Grant>` +
		`<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>owner-id</ID><DisplayName>o</DisplayName></Grantee>` +
		`<Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>`
	p.up.body = acl // the upstream's own ACL, as GET ?acl answers it
	if resp := p.do(t, "PUT", "/enc?acl", []byte(acl), nil); resp.StatusCode != 200 {
		t.Fatalf("owner-only ACL: %d", resp.StatusCode)
	}
	p.up.body = strings.ReplaceAll(acl, "owner-id", "someone-else")
	if resp := p.do(t, "PUT", "/enc?acl", []byte(acl), nil); resp.StatusCode != 403 {
		t.Errorf("an ACL naming another owner than the upstream's: %d, want 403", resp.StatusCode)
	}
}

// TestOneWriterOfSSECHeaders: in the package's code (not its tests)
// setSSEC and clearSSEC are called from applySSE only, and nothing else
// names the SSE-C key header: every SSE-C header of every upstream request
// comes from a decision (invariant 9). And build refuses a request that
// was not given one.
func TestOneWriterOfSSECHeaders(t *testing.T) {
	fset := gotoken.NewFileSet()
	dir, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range dir {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// Outside decision.go and policy.go, the SSE header prefixes are only
	// read (hasHeaderPrefix): no loop over a request's headers by them
	// copies or removes SSE-C headers behind the decision's back.
	for _, f := range files {
		if name := fset.Position(f.Pos()).Filename; name == "decision.go" || name == "policy.go" {
			continue
		}
		var stack []ast.Node
		ast.Inspect(f, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return true
			}
			if id, ok := n.(*ast.Ident); ok && (id.Name == "sseHeaderPrefix" || id.Name == "copySSEHeaderPrefix") {
				call, ok := stack[len(stack)-1].(*ast.CallExpr)
				if fn, isIdent := call.Fun.(*ast.Ident); !ok || !isIdent || fn.Name != "hasHeaderPrefix" {
					t.Errorf("%s: %s used other than to read (hasHeaderPrefix); SSE-C headers are written by decision.go only", fset.Position(id.Pos()), id.Name)
				}
			}
			stack = append(stack, n)
			return true
		})
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			fd, ok := n.(*ast.FuncDecl)
			if !ok || fd.Name.Name == "applySSE" {
				return fd == nil || !ok
			}
			ast.Inspect(fd, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok {
					if id, ok := call.Fun.(*ast.Ident); ok && (id.Name == "setSSEC" || id.Name == "clearSSEC") {
						t.Errorf("%s: %s calls %s; only applySSE may", fset.Position(call.Pos()), fd.Name.Name, id.Name)
					}
				}
				return true
			})
			return false
		})
	}
	p := newTestProxy(t)
	ur := &upstreamRequest{Method: http.MethodPut, Target: target{Bucket: "enc", Key: "secret/x"}, Query: url.Values{}, Header: http.Header{}}
	if _, err := p.h.rt.Load().up.build(context.Background(), ur); err != errUndecided {
		t.Errorf("build of a request without a decision: %v, want errUndecided", err)
	}
	ur.decide(exemptDecision)
	setSSEC(ur.Header, p.h.rt.Load().ring.Keys()[0], false)
	if _, err := p.h.rt.Load().up.build(context.Background(), ur); err != errUndecided {
		t.Errorf("build of an exempt request with a key: %v, want errUndecided", err)
	}
}

// TestIndexWritesBehind: the index entry of a write is written behind the
// client's wait (issue 14, item 1): the client has its answer while the
// entry's PUT is still held, the same instance answers the client ETag at
// once, the writes under way are bounded (one more waits for a slot:
// back-pressure, not memory), and DrainCleanups (SIGTERM) waits for them.
func TestIndexWritesBehind(t *testing.T) {
	p := newTestProxy(t)
	p.up.etag = `"upstream-etag"`
	gate := make(chan struct{})
	p.up.mu.Lock()
	p.up.gate = gate
	p.up.mu.Unlock()
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	defer release()

	done := make(chan int, 1)
	go func() { done <- p.do(t, "PUT", "/enc/secret/first", []byte("data"), nil).StatusCode }()
	select {
	case st := <-done:
		if st != 200 {
			t.Fatalf("PUT: %d", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the PUT waited for its index entry")
	}
	if got := p.do(t, "HEAD", "/enc/secret/first", nil, nil).Header.Get("ETag"); got != `"`+md5hex("data")+`"` {
		t.Errorf("HEAD on the same instance: ETag %s, want the MD5 at once", got)
	}
	if n := p.h.indexPending.Load(); n != 1 {
		t.Errorf("%d index writes pending, want 1", n)
	}
	// Fill the other slots, then one more: it waits.
	answered := make(chan struct{}, maxCleanups+1)
	for i := 0; i < maxCleanups; i++ {
		go func(i int) {
			p.do(t, "PUT", fmt.Sprintf("/enc/secret/more-%d", i), []byte("data"), nil)
			answered <- struct{}{}
		}(i)
	}
	// While the index is held, the slots run out: some of these wait
	// (each write also starts the clean-up of its overwritten entries,
	// which takes a slot for a moment).
	got := 0
	for quiet := time.After(2 * time.Second); ; {
		select {
		case <-answered:
			got++
			quiet = time.After(2 * time.Second)
			continue
		case <-quiet:
		}
		break
	}
	if got >= maxCleanups || got == 0 {
		t.Errorf("%d of %d writes answered while the index was held: want some, not all (back-pressure)", got, maxCleanups)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	DrainCleanups(ctx)
	cancel()
	if ctx.Err() == nil {
		t.Error("DrainCleanups returned while index writes were held")
	}
	release()
	for ; got < maxCleanups; got++ {
		select {
		case <-answered:
		case <-time.After(20 * time.Second):
			t.Fatal("the waiting writes were not answered once the index went on")
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	DrainCleanups(ctx)
	if ctx.Err() != nil || p.h.indexPending.Load() != 0 {
		t.Errorf("after the drain: %v, %d pending", ctx.Err(), p.h.indexPending.Load())
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
