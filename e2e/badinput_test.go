package e2e

// Hostile and broken input (issue 7, "Bad input"): every case is sent as
// raw bytes over a socket, signed by the small SigV4 signer below where it
// has to be (real clients refuse to send most of it), and must be answered
// with the right S3 XML error and status. After each, MinIO must hold no
// new or changed object (snapshot / assertNothingNew).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

const (
	emptyHash   = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	testRegion  = "us-east-1"
	amzDateFmt  = "20060102T150405Z"
	unsignedPL  = "UNSIGNED-PAYLOAD"
	streamingPL = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	trailerPL   = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// rawReq is an HTTP/1.1 request written byte for byte as given: nothing
// fixes up its path, Content-Length or body.
type rawReq struct {
	method string
	path   string // escaped, exactly as sent
	query  string // raw, exactly as sent
	host   string // "" means the host of the base URL
	header http.Header
	body   []byte
	cl     int  // Content-Length header; -1: len(body); -2: none
	short  int  // send only this many body bytes, then close the write side (0: all)
	keepUp bool // keep the connection open after sending (no Connection: close)
	te     bool // send the body with Transfer-Encoding: chunked, no Content-Length
	abort  bool // with short: close the whole connection after the short body, read nothing
	// timeout bounds the whole exchange (a client timeout); 0: 20 s.
	timeout time.Duration
}

func newRaw(method, path string, body []byte) *rawReq {
	return &rawReq{method: method, path: path, header: http.Header{}, body: body, cl: -1}
}

// sigs holds every signature the tests made: none may show up in a log or
// an error body (invariant 2).
var sigs struct {
	sync.Mutex
	all []string
}

func rememberSig(s string) {
	sigs.Lock()
	sigs.all = append(sigs.all, s)
	sigs.Unlock()
}

func hmacSHA(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func signingKey(sk, date string) []byte {
	k := hmacSHA([]byte("AWS4"+sk), date)
	k = hmacSHA(k, testRegion)
	k = hmacSHA(k, "s3")
	return hmacSHA(k, "aws4_request")
}

// sigEncode is SigV4's UriEncode of a query key or value.
func sigEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func canonicalQuery(raw string, skipSig bool) string {
	var pairs []string
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		if skipSig && k == "X-Amz-Signature" {
			continue
		}
		pairs = append(pairs, sigEncode(k)+"="+sigEncode(v))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// chainState continues a signature chain (aws-chunked).
type chainState struct {
	key         []byte
	date, scope string
	prev        string
}

func (c *chainState) next(algorithm, hash string, chunk bool) string {
	sts := algorithm + "\n" + c.date + "\n" + c.scope + "\n"
	if c.prev != "" {
		sts += c.prev + "\n"
	}
	if chunk {
		sts += emptyHash + "\n"
	}
	sts += hash
	c.prev = hex.EncodeToString(hmacSHA(c.key, sts))
	rememberSig(c.prev)
	return c.prev
}

// sign signs r with SigV4 as of at, with the payload hash value payload:
// every header in r.header and host are signed. It returns the chain the
// request signature starts (for chunk signatures).
func (r *rawReq) sign(base, ak, sk string, at time.Time, payload string) *chainState {
	date := at.UTC().Format(amzDateFmt)
	r.header.Set("X-Amz-Date", date)
	r.header.Set("X-Amz-Content-Sha256", payload)
	r.header.Del("Authorization")
	host := r.hostFor(base)
	names := []string{"host"}
	vals := map[string]string{"host": host}
	for name, vv := range r.header {
		n := strings.ToLower(name)
		names = append(names, n)
		for i := range vv {
			vv[i] = strings.Join(strings.Fields(vv[i]), " ")
		}
		vals[n] = strings.Join(vv, ",")
	}
	sort.Strings(names)
	var ch strings.Builder
	for _, n := range names {
		ch.WriteString(n + ":" + vals[n] + "\n")
	}
	signed := strings.Join(names, ";")
	creq := strings.Join([]string{r.method, r.path, canonicalQuery(r.query, false), ch.String(), signed, payload}, "\n")
	scope := date[:8] + "/" + testRegion + "/s3/aws4_request"
	c := &chainState{key: signingKey(sk, date[:8]), date: date, scope: scope}
	sig := c.next("AWS4-HMAC-SHA256", sha256Hex([]byte(creq)), false)
	r.header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", ak, scope, signed, sig))
	return c
}

// presign adds the query authentication of a presigned URL made at at and
// valid for expires seconds.
func (r *rawReq) presign(base, ak, sk string, at time.Time, expires int) {
	date := at.UTC().Format(amzDateFmt)
	scope := date[:8] + "/" + testRegion + "/s3/aws4_request"
	q := url.Values{}
	q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
	q.Set("X-Amz-Credential", ak+"/"+scope)
	q.Set("X-Amz-Date", date)
	q.Set("X-Amz-Expires", strconv.Itoa(expires))
	q.Set("X-Amz-SignedHeaders", "host")
	if r.query != "" {
		r.query += "&"
	}
	r.query += q.Encode()
	creq := strings.Join([]string{r.method, r.path, canonicalQuery(r.query, true), "host:" + r.hostFor(base) + "\n", "host", unsignedPL}, "\n")
	c := &chainState{key: signingKey(sk, date[:8]), date: date, scope: scope}
	r.query += "&X-Amz-Signature=" + c.next("AWS4-HMAC-SHA256", sha256Hex([]byte(creq)), false)
}

func (r *rawReq) hostFor(base string) string {
	if r.host != "" {
		return r.host
	}
	u, _ := url.Parse(base)
	return u.Host
}

// signClient signs r as the test world's client, now.
func (r *rawReq) signClient(base, payload string) *chainState {
	return r.sign(base, env.clientAK, env.clientSK, time.Now(), payload)
}

// chunk is one aws-chunked chunk as it will be written.
type chunk struct {
	size string // hex size as written
	sig  string // chunk-signature; "" writes none
	data []byte
}

// signedChunks cuts data into chunks of n bytes plus the final empty one,
// each signed in the chain c.
func signedChunks(c *chainState, data []byte, n int) []chunk {
	var out []chunk
	for len(data) > 0 {
		d := data[:min(n, len(data))]
		data = data[len(d):]
		out = append(out, chunk{size: strconv.FormatInt(int64(len(d)), 16), sig: c.next("AWS4-HMAC-SHA256-PAYLOAD", sha256Hex(d), true), data: d})
	}
	return append(out, chunk{size: "0", sig: c.next("AWS4-HMAC-SHA256-PAYLOAD", emptyHash, true)})
}

func encodeChunks(chunks []chunk, trailer string) []byte {
	var b bytes.Buffer
	for _, c := range chunks {
		b.WriteString(c.size)
		if c.sig != "" {
			b.WriteString(";chunk-signature=" + c.sig)
		}
		b.WriteString("\r\n")
		b.Write(c.data)
		if c.size != "0" || trailer == "" {
			b.WriteString("\r\n")
		}
	}
	b.WriteString(trailer)
	return b.Bytes()
}

// unsignedChunks is an aws-chunked body without signatures (trailer modes).
func unsignedChunks(data []byte, n int) []chunk {
	var out []chunk
	for len(data) > 0 {
		d := data[:min(n, len(data))]
		data = data[len(d):]
		out = append(out, chunk{size: strconv.FormatInt(int64(len(d)), 16), data: d})
	}
	return append(out, chunk{size: "0"})
}

func crc32B64(b []byte) string {
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], crc32.ChecksumIEEE(b))
	return base64.StdEncoding.EncodeToString(s[:])
}

// s3Answer is a response as the client saw it.
type s3Answer struct {
	status  int
	header  http.Header
	rawHead string
	body    []byte
	err     error // the connection failed before or while the response came
	Code    string
	Msg     string
}

func (a *s3Answer) String() string {
	if a.err != nil && a.status == 0 {
		return "no response: " + a.err.Error()
	}
	return fmt.Sprintf("%d %s (%s) err=%v", a.status, a.Code, a.Msg, a.err)
}

// dialBase connects to the proxy at base (http or https URL).
func dialBase(base string) (net.Conn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	addr := strings.Replace(u.Host, "localhost", "127.0.0.1", 1)
	if u.Scheme == "https" {
		conf := &tls.Config{ServerName: "localhost", RootCAs: caPoolOnce(), NextProtos: []string{"http/1.1"}}
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
	}
	return net.DialTimeout("tcp", addr, 5*time.Second)
}

var proxyCA struct {
	once sync.Once
	pool *x509.CertPool
}

func caPoolOnce() *x509.CertPool {
	proxyCA.once.Do(func() {
		proxyCA.pool = x509.NewCertPool()
		if b, err := os.ReadFile(env.caFile); err == nil {
			proxyCA.pool.AppendCertsFromPEM(b)
		}
	})
	return proxyCA.pool
}

// send writes r to the proxy at base and reads the answer.
func send(t *testing.T, base string, r *rawReq) *s3Answer {
	t.Helper()
	conn, err := dialBase(base)
	if err != nil {
		t.Fatalf("dial %s: %v", base, err)
	}
	defer conn.Close()
	timeout := r.timeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	var head bytes.Buffer
	target := r.path
	if r.query != "" {
		target += "?" + r.query
	}
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.method, target, r.hostFor(base))
	switch {
	case r.te:
		head.WriteString("Transfer-Encoding: chunked\r\n")
	case r.cl >= 0:
		fmt.Fprintf(&head, "Content-Length: %d\r\n", r.cl)
	case r.cl == -1 && (len(r.body) > 0 || r.method == http.MethodPut || r.method == http.MethodPost):
		fmt.Fprintf(&head, "Content-Length: %d\r\n", len(r.body))
	}
	if !r.keepUp {
		head.WriteString("Connection: close\r\n")
	}
	_ = r.header.WriteSubset(&head, map[string]bool{"Host": true, "Content-Length": true})
	head.WriteString("\r\n")
	body := r.body
	if r.short > 0 {
		body = body[:r.short]
	}
	if r.te {
		body = fmt.Appendf(nil, "%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	}
	ans := &s3Answer{}
	if r.abort {
		_, ans.err = conn.Write(append(head.Bytes(), body...))
		time.Sleep(50 * time.Millisecond) // let the proxy start streaming upstream
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		conn.Close()
		return ans
	}
	// Write in the background: the proxy may answer (and stop reading)
	// before the whole body is in.
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(append(head.Bytes(), body...))
		if err == nil && r.short > 0 {
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				err = cw.CloseWrite()
			}
		}
		werr <- err
	}()
	var raw bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(conn, &raw)), &http.Request{Method: r.method})
	if err != nil {
		ans.err = err
		<-werr
		return ans
	}
	if head, _, ok := bytes.Cut(raw.Bytes(), []byte("\r\n\r\n")); ok {
		ans.rawHead = string(head) // the header names as they were sent
	}
	ans.status, ans.header = resp.StatusCode, resp.Header
	ans.body, ans.err = io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct {
		Code    string
		Message string
	}
	if len(ans.body) > 0 && bytes.HasPrefix(bytes.TrimSpace(ans.body), []byte("<?xml")) {
		_ = xml.Unmarshal(ans.body, &e)
	}
	ans.Code, ans.Msg = e.Code, e.Message
	noSecretsIn(t, "error body", string(ans.body))
	return ans
}

// noSecretsIn fails if text holds a key, a secret key or a signature the
// tests made.
func noSecretsIn(t *testing.T, what, text string) {
	t.Helper()
	if text == "" {
		return
	}
	var leaks []string
	for id, k := range env.keys {
		for _, enc := range []string{base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k), hex.EncodeToString(k), string(k)} {
			if strings.Contains(text, enc) {
				leaks = append(leaks, "key "+id)
			}
		}
	}
	for name, s := range map[string]string{"client secret key": env.clientSK, "upstream secret key": env.minio.SecretKey} {
		if strings.Contains(text, s) {
			leaks = append(leaks, name)
		}
	}
	sigs.Lock()
	for _, s := range sigs.all {
		if strings.Contains(text, s) {
			leaks = append(leaks, "signature "+s[:8]+"…")
		}
	}
	sigs.Unlock()
	if len(leaks) > 0 {
		t.Errorf("%s holds secrets: %v", what, leaks)
	}
}

// wantError checks a (status, code) S3 XML answer.
func wantError(t *testing.T, a *s3Answer, status int, codes ...string) {
	t.Helper()
	if a.status != status || !slices.Contains(codes, a.Code) {
		t.Errorf("got %v, body %.300q; want %d %v", a, a.body, status, codes)
		return
	}
	if ct := a.header.Get("Content-Type"); !strings.Contains(ct, "xml") {
		t.Errorf("error answered as %q, want application/xml", ct)
	}
}

// objState is what identifies an object's version on MinIO.
type objState struct {
	etag string
	size int64
	mod  time.Time
}

// snapshot is every bucket, object and unfinished multipart upload on
// MinIO.
func snapshot(t *testing.T) map[string]objState {
	t.Helper()
	ctx := context.Background()
	c := sharedDirect(t)
	bs, err := c.ListBuckets(ctx)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	m := map[string]objState{}
	for _, b := range bs {
		m["bucket:"+b.Name] = objState{}
		for o := range c.ListObjects(ctx, b.Name, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatalf("snapshot: list %s: %v", b.Name, o.Err)
			}
			m[b.Name+"/"+o.Key] = objState{o.ETag, o.Size, o.LastModified}
		}
		for u := range c.ListIncompleteUploads(ctx, b.Name, "", true) {
			if u.Err != nil {
				t.Fatalf("snapshot: uploads %s: %v", b.Name, u.Err)
			}
			m["upload:"+b.Name+"/"+u.Key+"?"+u.UploadID] = objState{}
		}
	}
	return m
}

// changes lists what differs between two snapshots. New entries of the
// proxy's ETag index count only where their object is not there: an
// entry can be written a moment after its object.
func changes(before, after map[string]objState) []string {
	var out []string
	for k, v := range after {
		if old, ok := before[k]; !ok || old != v {
			if b, rest, ok := strings.Cut(k, "/.ssec-proxy/etags/"); ok {
				obj, _, _ := strings.Cut(rest, " ")
				if _, exists := after[b+"/"+obj]; exists {
					continue
				}
			}
			if ok {
				out = append(out, "changed "+k)
			} else {
				out = append(out, "new "+k)
			}
		}
	}
	for k := range before {
		// The proxy removes stale index entries behind its clients' wait:
		// one going is no change a request made.
		if _, ok := after[k]; !ok && !strings.HasPrefix(k, "upload:") && !strings.Contains(k, "/.ssec-proxy/") {
			out = append(out, "gone "+k)
		}
	}
	sort.Strings(out)
	return out
}

// assertNothingNew fails if MinIO holds a new or changed object compared
// with before. It looks twice, the second time after a moment, in case a
// broken upload was still on its way.
func assertNothingNew(t *testing.T, before map[string]objState) {
	t.Helper()
	for i := range 2 {
		if i == 1 {
			time.Sleep(100 * time.Millisecond)
		}
		if ch := changes(before, snapshot(t)); len(ch) > 0 {
			t.Errorf("MinIO changed: %v", ch)
			return
		}
	}
}

// sharedDirect is one direct MinIO client kept for the whole run, so that
// the many snapshots do not each leave a connection behind.
var shared struct {
	once sync.Once
	c    *minio.Client
}

func sharedDirect(t *testing.T) *minio.Client {
	shared.once.Do(func() { shared.c = direct(t) })
	return shared.c
}

// putBody is a small object body whose sha256 the tests sign.
func putBody(n int) []byte { return randomBytes(n) }

func TestBadInputAuth(t *testing.T) {
	buckets(t)
	base := env.httpURL
	data := putBody(1000)
	path := func(t *testing.T) string { return "/enc/" + uniqueKey(t, "badauth/") }
	signed := func(t *testing.T, at time.Time, ak, sk string) *rawReq {
		r := newRaw(http.MethodPut, path(t), data)
		r.sign(base, ak, sk, at, sha256Hex(data))
		return r
	}
	before := snapshot(t)

	t.Run("control-well-signed", func(t *testing.T) {
		r := signed(t, time.Now(), env.clientAK, env.clientSK)
		if a := send(t, base, r); a.status != 200 {
			t.Fatalf("a well-signed PUT got %v: the signer of these tests is wrong", a)
		}
		key, _ := url.PathUnescape(strings.TrimPrefix(r.path, "/enc/"))
		assertEncrypted(t, "enc", key, "k1", data)
		before = snapshot(t)
	})

	cases := []struct {
		name   string
		req    func(t *testing.T) *rawReq
		status int
		codes  []string
	}{
		{"missing-authorization", func(t *testing.T) *rawReq {
			r := newRaw(http.MethodPut, path(t), data)
			r.header.Set("X-Amz-Content-Sha256", sha256Hex(data))
			r.header.Set("X-Amz-Date", time.Now().UTC().Format(amzDateFmt))
			return r
		}, 403, []string{"AccessDenied"}},
		{"authorization-v2-forged", func(t *testing.T) *rawReq {
			r := signed(t, time.Now(), env.clientAK, env.clientSK)
			r.header.Set("Authorization", "AWS "+env.clientAK+":c2lnbmF0dXJl")
			return r
		}, 403, []string{"SignatureDoesNotMatch"}}, // checked as SigV2 (proxy/sigv2)
		{"authorization-garbage", func(t *testing.T) *rawReq {
			r := signed(t, time.Now(), env.clientAK, env.clientSK)
			r.header.Set("Authorization", "AWS4-HMAC-SHA256 ,,,==,Credential")
			return r
		}, 400, []string{"AuthorizationHeaderMalformed"}},
		{"authorization-no-sig", func(t *testing.T) *rawReq {
			r := signed(t, time.Now(), env.clientAK, env.clientSK)
			h := r.header.Get("Authorization")
			r.header.Set("Authorization", h[:strings.Index(h, ", Signature=")])
			return r
		}, 400, []string{"AuthorizationHeaderMalformed"}},
		{"authorization-short-sig", func(t *testing.T) *rawReq {
			r := signed(t, time.Now(), env.clientAK, env.clientSK)
			r.header.Set("Authorization", r.header.Get("Authorization")[:len(r.header.Get("Authorization"))-2])
			return r
		}, 400, []string{"AuthorizationHeaderMalformed"}},
		{"authorization-host-not-signed", func(t *testing.T) *rawReq {
			r := signed(t, time.Now(), env.clientAK, env.clientSK)
			r.header.Set("Authorization", strings.Replace(r.header.Get("Authorization"), "SignedHeaders=host;", "SignedHeaders=", 1))
			return r
		}, 400, []string{"AuthorizationHeaderMalformed"}},
		{"wrong-signature", func(t *testing.T) *rawReq {
			return signed(t, time.Now(), env.clientAK, "not-the-secret-key")
		}, 403, []string{"SignatureDoesNotMatch"}},
		{"signature-of-other-body", func(t *testing.T) *rawReq {
			r := signed(t, time.Now(), env.clientAK, env.clientSK)
			r.body = putBody(1000) // same length, other bytes: the hash was signed
			return r
		}, 400, []string{"XAmzContentSHA256Mismatch"}},
		{"unsigned-amz-header", func(t *testing.T) *rawReq {
			r := signed(t, time.Now(), env.clientAK, env.clientSK)
			r.header.Set("X-Amz-Copy-Source", "/enc/elsewhere")
			return r
		}, 403, []string{"AccessDenied"}},
		{"unknown-access-key", func(t *testing.T) *rawReq {
			return signed(t, time.Now(), "no-such-access-key", env.clientSK)
		}, 403, []string{"InvalidAccessKeyId"}},
		{"upstream-credentials-are-not-client-credentials", func(t *testing.T) *rawReq {
			return signed(t, time.Now(), env.minio.AccessKey, env.minio.SecretKey)
		}, 403, []string{"InvalidAccessKeyId"}},
		{"clock-20min-behind", func(t *testing.T) *rawReq {
			return signed(t, time.Now().Add(-20*time.Minute), env.clientAK, env.clientSK)
		}, 403, []string{"RequestTimeTooSkewed"}},
		{"clock-20min-ahead", func(t *testing.T) *rawReq {
			return signed(t, time.Now().Add(20*time.Minute), env.clientAK, env.clientSK)
		}, 403, []string{"RequestTimeTooSkewed"}},
		{"bad-x-amz-date", func(t *testing.T) *rawReq {
			r := signed(t, time.Now(), env.clientAK, env.clientSK)
			r.header.Set("X-Amz-Date", "yesterday")
			return r
		}, 403, []string{"AccessDenied"}},
		{"presigned-expired", func(t *testing.T) *rawReq {
			r := newRaw(http.MethodPut, path(t), data)
			r.presign(base, env.clientAK, env.clientSK, time.Now().Add(-2*time.Hour), 3600)
			return r
		}, 403, []string{"AccessDenied"}},
		{"presigned-future-dated", func(t *testing.T) *rawReq {
			r := newRaw(http.MethodPut, path(t), data)
			r.presign(base, env.clientAK, env.clientSK, time.Now().Add(20*time.Minute), 3600)
			return r
		}, 403, []string{"AccessDenied"}},
		{"presigned-expires-over-a-week", func(t *testing.T) *rawReq {
			r := newRaw(http.MethodPut, path(t), data)
			r.presign(base, env.clientAK, env.clientSK, time.Now(), 7*24*3600+1)
			return r
		}, 400, []string{"AuthorizationQueryParametersError"}},
		{"presigned-wrong-secret", func(t *testing.T) *rawReq {
			r := newRaw(http.MethodPut, path(t), data)
			r.presign(base, env.clientAK, "not-the-secret-key", time.Now(), 3600)
			return r
		}, 403, []string{"SignatureDoesNotMatch"}},
		{"presigned-and-header", func(t *testing.T) *rawReq {
			r := signed(t, time.Now(), env.clientAK, env.clientSK)
			r.presign(base, env.clientAK, env.clientSK, time.Now(), 3600)
			return r
		}, 400, []string{"InvalidArgument"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, send(t, base, tc.req(t)), tc.status, tc.codes...)
			assertNothingNew(t, before)
		})
	}
	// A GET with a bad signature reads nothing either.
	t.Run("get-wrong-signature", func(t *testing.T) {
		r := newRaw(http.MethodGet, "/enc/", nil)
		r.sign(base, env.clientAK, "not-the-secret-key", time.Now(), emptyHash)
		a := send(t, base, r)
		wantError(t, a, 403, "SignatureDoesNotMatch")
		if bytes.Contains(a.body, []byte("<Contents>")) {
			t.Error("the refused listing holds objects")
		}
	})
}

// chunkedPut is a PUT of data to path with signed aws-chunked encoding in
// 64 KiB chunks; edit may change the chunks before they are written.
func chunkedPut(base, path string, data []byte, declen int, edit func(c *chainState, ch []chunk) []chunk) *rawReq {
	r := newRaw(http.MethodPut, path, nil)
	r.header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(declen))
	r.header.Set("Content-Encoding", "aws-chunked")
	c := r.signClient(base, streamingPL)
	ch := signedChunks(c, data, 64<<10)
	if edit != nil {
		ch = edit(c, ch)
	}
	r.body = encodeChunks(ch, "")
	return r
}

func flipHex(s string) string {
	b := []byte(s)
	if b[0] == '0' {
		b[0] = '1'
	} else {
		b[0] = '0'
	}
	return string(b)
}

func TestBadInputBodies(t *testing.T) {
	buckets(t)
	base := env.httpURL
	data := putBody(200 << 10) // 4 chunks of 64 KiB (the last one short) and the final empty one
	before := snapshot(t)
	key := func(t *testing.T) string { return uniqueKey(t, "badbody/") }

	t.Run("control-signed-chunks", func(t *testing.T) {
		k := key(t)
		if a := send(t, base, chunkedPut(base, "/enc/"+k, data, len(data), nil)); a.status != 200 {
			t.Fatalf("well-formed signed chunks got %v: the chunk signer of these tests is wrong", a)
		}
		assertEncrypted(t, "enc", k, "k1", data)
		before = snapshot(t)
	})

	cases := []struct {
		name   string
		req    func(t *testing.T) *rawReq
		status int
		codes  []string
	}{
		{"bad-chunk-sig-middle", func(t *testing.T) *rawReq {
			return chunkedPut(base, "/enc/"+key(t), data, len(data), func(_ *chainState, ch []chunk) []chunk {
				ch[1].sig = flipHex(ch[1].sig)
				return ch
			})
		}, 403, []string{"SignatureDoesNotMatch"}},
		{"bad-data-middle-chunk", func(t *testing.T) *rawReq {
			return chunkedPut(base, "/enc/"+key(t), data, len(data), func(_ *chainState, ch []chunk) []chunk {
				d := slices.Clone(ch[2].data)
				d[100] ^= 1
				ch[2].data = d
				return ch
			})
		}, 403, []string{"SignatureDoesNotMatch"}},
		{"bad-chunk-sig-last-data-chunk", func(t *testing.T) *rawReq {
			return chunkedPut(base, "/enc/"+key(t), data, len(data), func(_ *chainState, ch []chunk) []chunk {
				ch[len(ch)-2].sig = flipHex(ch[len(ch)-2].sig)
				return ch
			})
		}, 403, []string{"SignatureDoesNotMatch"}},
		{"bad-data-last-byte", func(t *testing.T) *rawReq {
			return chunkedPut(base, "/enc/"+key(t), data, len(data), func(_ *chainState, ch []chunk) []chunk {
				d := slices.Clone(ch[len(ch)-2].data)
				d[len(d)-1] ^= 1
				ch[len(ch)-2].data = d
				return ch
			})
		}, 403, []string{"SignatureDoesNotMatch"}},
		{"bad-sig-final-empty-chunk", func(t *testing.T) *rawReq {
			return chunkedPut(base, "/enc/"+key(t), data, len(data), func(_ *chainState, ch []chunk) []chunk {
				ch[len(ch)-1].sig = flipHex(ch[len(ch)-1].sig)
				return ch
			})
		}, 403, []string{"SignatureDoesNotMatch"}},
		{"chunks-reordered", func(t *testing.T) *rawReq {
			return chunkedPut(base, "/enc/"+key(t), data, len(data), func(_ *chainState, ch []chunk) []chunk {
				ch[0], ch[1] = ch[1], ch[0]
				return ch
			})
		}, 403, []string{"SignatureDoesNotMatch"}},
		{"missing-final-chunk", func(t *testing.T) *rawReq {
			return chunkedPut(base, "/enc/"+key(t), data, len(data), func(_ *chainState, ch []chunk) []chunk {
				return ch[:len(ch)-1]
			})
		}, 400, []string{"IncompleteBody"}},
		{"truncated-chunk", func(t *testing.T) *rawReq {
			// The body (and its Content-Length) ends inside the third chunk.
			r := chunkedPut(base, "/enc/"+key(t), data, len(data), nil)
			r.body = r.body[:2*(64<<10)+5000]
			return r
		}, 400, []string{"IncompleteBody"}},
		{"chunk-longer-than-its-size", func(t *testing.T) *rawReq {
			return chunkedPut(base, "/enc/"+key(t), data, len(data), func(_ *chainState, ch []chunk) []chunk {
				ch[1].data = append(slices.Clone(ch[1].data), "extra"...)
				return ch
			})
		}, 400, []string{"IncompleteBody"}},
		{"oversized-chunk-size", func(t *testing.T) *rawReq {
			return chunkedPut(base, "/enc/"+key(t), data, len(data), func(_ *chainState, ch []chunk) []chunk {
				ch[0].size = "100000" // 1 MiB, more than the whole object
				return ch
			})
		}, 400, []string{"IncompleteBody"}},
		{"huge-chunk-size", func(t *testing.T) *rawReq {
			return chunkedPut(base, "/enc/"+key(t), data, len(data), func(_ *chainState, ch []chunk) []chunk {
				ch[0].size = "ffffffffffffffffff"
				return ch
			})
		}, 400, []string{"InvalidChunkSizeError"}},
		{"decoded-length-larger-than-body", func(t *testing.T) *rawReq {
			return chunkedPut(base, "/enc/"+key(t), data, len(data)+1000, nil)
		}, 400, []string{"IncompleteBody"}},
		{"decoded-length-smaller-than-body", func(t *testing.T) *rawReq {
			return chunkedPut(base, "/enc/"+key(t), data, len(data)-1000, nil)
		}, 400, []string{"IncompleteBody"}},
		{"trailer-checksum-mismatch", func(t *testing.T) *rawReq {
			r := newRaw(http.MethodPut, "/enc/"+key(t), nil)
			r.header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
			r.header.Set("Content-Encoding", "aws-chunked")
			r.header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
			r.signClient(base, trailerPL)
			r.body = encodeChunks(unsignedChunks(data, 64<<10), "x-amz-checksum-crc32:"+crc32B64([]byte("other data"))+"\r\n\r\n")
			return r
		}, 400, []string{"BadDigest"}},
		{"trailer-checksum-missing", func(t *testing.T) *rawReq {
			r := newRaw(http.MethodPut, "/enc/"+key(t), nil)
			r.header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
			r.header.Set("Content-Encoding", "aws-chunked")
			r.header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
			r.signClient(base, trailerPL)
			r.body = encodeChunks(unsignedChunks(data, 64<<10), "\r\n")
			return r
		}, 400, []string{"MalformedTrailerError"}},
		{"header-checksum-mismatch", func(t *testing.T) *rawReq {
			r := newRaw(http.MethodPut, "/enc/"+key(t), data)
			r.header.Set("X-Amz-Checksum-Crc32", crc32B64([]byte("other data")))
			r.signClient(base, unsignedPL)
			return r
		}, 400, []string{"BadDigest"}},
		{"content-length-longer-than-sent-hex", func(t *testing.T) *rawReq {
			// The client sends half its body and closes its side.
			r := newRaw(http.MethodPut, "/enc/"+key(t), data)
			r.signClient(base, sha256Hex(data))
			r.short = len(data) / 2
			return r
		}, 400, []string{"IncompleteBody"}},
		{"content-length-longer-than-sent-unsigned", func(t *testing.T) *rawReq {
			r := newRaw(http.MethodPut, "/enc/"+key(t), data)
			r.signClient(base, unsignedPL)
			r.short = len(data) - 1
			return r
		}, 400, []string{"IncompleteBody"}},
		{"content-length-longer-than-sent-chunked", func(t *testing.T) *rawReq {
			r := chunkedPut(base, "/enc/"+key(t), data, len(data), nil)
			r.short = len(r.body) - 3
			return r
		}, 400, []string{"IncompleteBody"}},
		{"content-length-shorter-than-body-hex", func(t *testing.T) *rawReq {
			r := newRaw(http.MethodPut, "/enc/"+key(t), data)
			r.signClient(base, sha256Hex(data))
			r.cl = len(data) - 100
			return r
		}, 400, []string{"XAmzContentSHA256Mismatch"}},
		{"content-length-shorter-than-body-chunked", func(t *testing.T) *rawReq {
			r := chunkedPut(base, "/enc/"+key(t), data, len(data), nil)
			r.cl = len(r.body) - 100
			return r
		}, 400, []string{"IncompleteBody", "SignatureDoesNotMatch"}},
		{"no-content-length-transfer-encoding-chunked", func(t *testing.T) *rawReq {
			r := newRaw(http.MethodPut, "/enc/"+key(t), data)
			r.te = true
			r.signClient(base, unsignedPL)
			return r
		}, 411, []string{"MissingContentLength"}},
		{"streaming-without-decoded-length", func(t *testing.T) *rawReq {
			r := newRaw(http.MethodPut, "/enc/"+key(t), nil)
			r.header.Set("Content-Encoding", "aws-chunked")
			c := r.signClient(base, streamingPL)
			r.body = encodeChunks(signedChunks(c, data, 64<<10), "")
			return r
		}, 411, []string{"MissingContentLength"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := send(t, base, tc.req(t))
			if a.status == 0 && tc.status == 400 && a.err != nil && strings.Contains(tc.name, "longer-than-sent") {
				// The client closed its side: a dropped connection is a
				// fair answer too, as long as nothing was stored.
				t.Logf("no answer after the client closed: %v", a.err)
			} else {
				wantError(t, a, tc.status, tc.codes...)
			}
			assertNothingNew(t, before)
		})
	}
	// The same bad chunks as an UploadPart: no part is stored.
	t.Run("upload-part-bad-chunk-sig", func(t *testing.T) {
		ctx := context.Background()
		k := key(t)
		core := minio.Core{Client: viaProxy(t, true)}
		id, err := core.NewMultipartUpload(ctx, "enc", k, minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = core.AbortMultipartUpload(ctx, "enc", k, id) }()
		// An UploadPart with a bad third chunk signature.
		r2 := newRaw(http.MethodPut, "/enc/"+k, nil)
		r2.query = "partNumber=1&uploadId=" + url.QueryEscape(id)
		r2.header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
		r2.header.Set("Content-Encoding", "aws-chunked")
		c := r2.signClient(base, streamingPL)
		ch := signedChunks(c, data, 64<<10)
		ch[2].sig = flipHex(ch[2].sig)
		r2.body = encodeChunks(ch, "")
		wantError(t, send(t, base, r2), 403, "SignatureDoesNotMatch")
		parts, err := (&minio.Core{Client: direct(t)}).ListObjectParts(ctx, "enc", k, id, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts.ObjectParts) != 0 {
			t.Errorf("MinIO stored %d parts of a refused UploadPart", len(parts.ObjectParts))
		}
	})
}

func TestBadInputHeadersAndNames(t *testing.T) {
	buckets(t)
	base := env.httpURL
	data := putBody(100)
	before := snapshot(t)
	put := func(path string) *rawReq {
		r := newRaw(http.MethodPut, path, data)
		r.signClient(base, sha256Hex(data))
		return r
	}
	t.Run("header-section-over-64KiB", func(t *testing.T) {
		r := newRaw(http.MethodPut, "/enc/"+uniqueKey(t, "bighdr/"), data)
		r.header.Set("X-Amz-Meta-Big", strings.Repeat("x", 70<<10))
		r.signClient(base, sha256Hex(data))
		a := send(t, base, r)
		// MinIO (and S3) limit user metadata to 2 KiB; the answer must be a
		// clean 4xx whoever gives it.
		if a.status < 400 || a.status >= 500 {
			t.Errorf("got %v, want a 4xx", a)
		}
		t.Logf("70 KiB header: %v", a)
		assertNothingNew(t, before)
	})
	t.Run("header-section-over-1MiB", func(t *testing.T) {
		r := newRaw(http.MethodPut, "/enc/"+uniqueKey(t, "bighdr/"), data)
		for i := range 20 {
			r.header.Set(fmt.Sprintf("X-Junk-%d", i), strings.Repeat("y", 60<<10))
		}
		r.signClient(base, sha256Hex(data))
		a := send(t, base, r)
		if a.status != http.StatusRequestHeaderFieldsTooLarge && a.status != 400 {
			t.Errorf("got %v, want 431 or 400", a)
		}
		assertNothingNew(t, before)
	})
	for _, tc := range []struct{ name, path string }{
		{"upper-case", "/Enc/x"},
		{"underscore", "/my_bucket/x"},
		{"too-short", "/ab/x"},
		{"too-long", "/" + strings.Repeat("a", 64) + "/x"},
		{"ip-address", "/192.168.1.10/x"},
		{"double-dot", "/en..c/x"},
		{"leading-hyphen", "/-enc/x"},
		{"encoded-slash", "/enc%2Fpublic/x"},
		{"dot-dot", "/../enc/x"},
		{"control-char", "/en%01c/x"},
	} {
		t.Run("bucket-"+tc.name, func(t *testing.T) {
			wantError(t, send(t, base, put(tc.path)), 400, "InvalidBucketName")
			assertNothingNew(t, before)
		})
	}
	// Go's HTTP server refuses a request target that does not %-decode
	// before the proxy sees it: a plain-text 400, and nothing stored.
	for i, p := range []string{"/en%zzc/x", "/enc/bad%zzkey", "/enc/bad%"} {
		t.Run(fmt.Sprintf("bad-escape-%d", i), func(t *testing.T) {
			if a := send(t, base, put(p)); a.status != 400 {
				t.Errorf("got %v, want 400", a)
			}
			assertNothingNew(t, before)
		})
	}
	// Odd object keys: the proxy refuses some itself, MinIO refuses others;
	// whatever is stored must be stored under exactly the key the rules
	// matched, encrypted as that key's rule says (invariant 4).
	for _, tc := range []struct {
		name, path string
		storedKey  string // "" when it must be refused
		status     int
		code       string
	}{
		{"invalid-utf8", "/enc/bad%FF%FEkey", "", 400, "InvalidArgument"},
		{"too-long", "/enc/" + strings.Repeat("k", 1025), "", 400, "KeyTooLongError"},
		{"reserved-index", "/enc/.ssec-proxy/etags/x", "", 403, "AccessDenied"},
		{"dot-dot-segment", "/enc/public/../x", "?", 0, ""},
		{"dot-dot-encoded", "/enc/public/%2E%2E/x", "?", 0, ""},
		{"dot-dot-leading", "/enc/../plain/x", "?", 0, ""},
		{"dot-segment", "/enc/./x", "?", 0, ""},
		{"encoded-slash", "/enc/public%2Fenc-slash", "?", 0, ""},
		{"double-slash", "/enc/a//b", "?", 0, ""},
		{"leading-slash", "/enc//x", "?", 0, ""},
		{"control-chars", "/enc/ctl%01%1F%7Fkey", "?", 0, ""},
		{"newline", "/enc/line%0D%0Abreak", "?", 0, ""},
		{"nul", "/enc/nul%00key", "?", 0, ""},
		{"backslash", "/enc/public%5C..%5Cx", "?", 0, ""},
	} {
		t.Run("key-"+tc.name, func(t *testing.T) {
			before := snapshot(t)
			a := send(t, base, put(tc.path))
			if tc.storedKey == "" {
				wantError(t, a, tc.status, tc.code)
				assertNothingNew(t, before)
				return
			}
			checkOddKey(t, a, before, "enc", tc.path, data)
		})
	}
}

// checkOddKey accepts either a clean 4xx S3 error with nothing stored, or
// a 200 with exactly one new object, stored under the key its path
// decodes to and encrypted as the rule of that stored key says.
func checkOddKey(t *testing.T, a *s3Answer, before map[string]objState, bucket, path string, data []byte) {
	t.Helper()
	_, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	want, _ := url.PathUnescape(rest)
	checkStored(t, a, before, bucket, want, data)
}

// checkStored is checkOddKey for a key already decoded.
func checkStored(t *testing.T, a *s3Answer, before map[string]objState, bucket, want string, data []byte) {
	t.Helper()
	after := snapshot(t)
	ch := changes(before, after)
	switch {
	case a.status >= 400 && a.status < 500:
		if a.Code == "" {
			t.Errorf("refused without an S3 error code: %v %.200q", a, a.body)
		}
		if len(ch) > 0 {
			t.Errorf("refused with %v, yet MinIO changed: %v", a, ch)
		}
		t.Logf("refused: %v", a)
		return
	case a.status != 200:
		t.Fatalf("got %v, want 200 or a clean 4xx", a)
	}
	var stored []string
	for _, c := range ch {
		if k, ok := strings.CutPrefix(c, "new "+bucket+"/"); ok && !strings.HasPrefix(k, ".ssec-proxy/") {
			stored = append(stored, k)
		} else if !strings.Contains(c, "/.ssec-proxy/etags/") {
			t.Errorf("unexpected change %s", c)
		}
	}
	// Odd names (control characters) break other tests' XML listings:
	// remove what was stored, with its ETag index entry.
	t.Cleanup(func() {
		for _, k := range stored {
			removeWithIndex(t, bucket, k)
		}
	})
	if len(stored) != 1 || stored[0] != want {
		// Invariant 4: the rules matched want, the upstream stored another
		// name. Say whether that name falls under another rule.
		for _, k := range stored {
			gotID, gotEnc := ruleOf(bucket, k)
			wantID, wantEnc := ruleOf(bucket, want)
			if gotID != wantID || gotEnc != wantEnc {
				t.Errorf("the proxy applied the rule of %q (key %q, encrypt %v) to an object MinIO stored as %q, whose rule is (key %q, encrypt %v)",
					want, wantID, wantEnc, k, gotID, gotEnc)
			}
			if _, enc := ruleOf(bucket, k); enc {
				if got, err := readAll(sharedDirect(t).GetObject(context.Background(), bucket, k, minio.GetObjectOptions{})); err == nil && bytes.Equal(got, data) {
					t.Errorf("CONFIDENTIALITY: %s/%s lies under a rule that encrypts, yet MinIO stores it in plaintext", bucket, k)
				}
			}
		}
		t.Fatalf("stored %q, want exactly the key %q (invariant 4: the key the rules match is the key the upstream stores)", stored, want)
	}
	t.Logf("stored as %q", want)
	assertStoredByRule(t, bucket, want, data)
}

// removeWithIndex removes bucket/key from MinIO, and the proxy's ETag
// index entries of that key.
func removeWithIndex(t *testing.T, bucket, key string) {
	settle(t)
	ctx := context.Background()
	c := sharedDirect(t)
	_ = c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: ".ssec-proxy/etags/" + key + " ", Recursive: true}) {
		if o.Err == nil {
			_ = c.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{})
		}
	}
}

// assertStoredByRule checks that bucket/key is stored as the rule of that
// very key says: encrypted with its key, or in plaintext.
func assertStoredByRule(t *testing.T, bucket, key string, data []byte) {
	t.Helper()
	keyID, encrypt := ruleOf(bucket, key)
	if encrypt {
		assertEncrypted(t, bucket, key, keyID, data)
	} else {
		assertPlain(t, bucket, key, data)
	}
}

// ruleOf is the rules of rulesYAML for the buckets the tests use.
func ruleOf(bucket, key string) (keyID string, encrypt bool) {
	switch {
	case bucket == "enc" && strings.HasPrefix(key, "public/"):
		return "", false
	case bucket == "enc":
		return "k1", true
	case bucket == "plain":
		return "", false
	case bucket == "mixed" && strings.HasPrefix(key, "secret/"):
		return "k2", true
	case strings.HasPrefix(key, "star/"):
		return "k2", true
	}
	return "(no rule)", false
}

// TestSecurityPathTricks: no path trick writes an object under a rule
// other than the rule of the key it is stored as (invariant 4).
func TestSecurityPathTricks(t *testing.T) {
	buckets(t)
	base := env.httpURL
	data := putBody(300)
	u, _ := url.Parse(base)
	for _, tc := range []struct {
		name, host, path string
		bucket, key      string // what the request addresses once decoded
	}{
		{"public-dot-dot-secret", "", "/enc/public/../secret-a", "enc", "public/../secret-a"},
		{"public-encoded-dot-dot", "", "/enc/public/%2e%2e/secret-b", "enc", "public/../secret-b"},
		{"public-encoded-slashes", "", "/enc/public%2F..%2Fsecret-c", "enc", "public/../secret-c"},
		{"public-backslash", "", "/enc/public%5C..%5Csecret-d", "enc", "public\\..\\secret-d"},
		{"secret-dot-dot-out", "", "/mixed/secret/../elsewhere-e", "mixed", "secret/../elsewhere-e"},
		{"star-dot-dot-out", "", "/other/star/../x-f", "other", "star/../x-f"},
		{"double-slash-into-public", "", "/enc//public/g", "enc", "/public/g"},
		{"double-slash-into-secret", "", "/mixed//secret/h", "mixed", "/secret/h"},
		{"vhost-dot-dot", "enc.localhost:" + u.Port(), "/public/../secret-i", "enc", "public/../secret-i"},
		{"vhost-encoded-slash", "enc.localhost:" + u.Port(), "/public%2Fj", "enc", "public/j"},
		{"vhost-double-slash", "enc.localhost:" + u.Port(), "//public/k", "enc", "/public/k"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t)
			r := newRaw(http.MethodPut, tc.path+"-"+string(hexRand(3)), data)
			r.host = tc.host
			r.signClient(base, sha256Hex(data))
			a := send(t, base, r)
			key := tc.key + r.path[len(tc.path):]
			if _, enc := ruleOf(tc.bucket, key); !enc {
				if id, _ := ruleOf(tc.bucket, key); id == "(no rule)" { // default: deny
					if a.status == 400 { // refused for its shape before any rule
						wantError(t, a, 400, "InvalidArgument")
					} else {
						wantError(t, a, 403, "AccessDenied")
					}
					assertNothingNew(t, before)
					return
				}
			}
			checkStored(t, a, before, tc.bucket, key, data)
		})
	}
	// Under default: plaintext a key that matches no rule is stored as
	// sent: "//secret/x" must not land, in plaintext, as "secret/x",
	// under the rule that encrypts secret/.
	t.Run("default-plaintext-double-slash-into-secret", func(t *testing.T) {
		pbase, _ := startProxy(t, func(c *config.Config) { c.Default = config.DefaultPlaintext })
		before := snapshot(t)
		key := "/secret/l-" + string(hexRand(3))
		r := newRaw(http.MethodPut, "/mixed/"+key, data)
		r.signClient(pbase, sha256Hex(data))
		a := send(t, pbase, r)
		checkStored(t, a, before, "mixed", key, data)
	})
}

// TestSecurityCopySource: a copy reads nothing through a source that the
// rules deny, however the source is spelled.
func TestSecurityCopySource(t *testing.T) {
	buckets(t)
	base := env.httpURL
	ctx := context.Background()
	// An object the rules deny (mixed, outside secret/), put straight on MinIO.
	denied := uniqueKey(t, "elsewhere/")
	secret := []byte("not for the proxy's clients")
	if _, err := direct(t).PutObject(ctx, "mixed", denied, bytes.NewReader(secret), int64(len(secret)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, source string
		status       int
		codes        []string
	}{
		{"denied-source", "/mixed/" + denied, 403, []string{"AccessDenied"}},
		{"denied-source-no-slash", "mixed/" + denied, 403, []string{"AccessDenied"}},
		{"denied-source-encoded", "/mixed/" + url.PathEscape(denied), 403, []string{"AccessDenied"}},
		{"denied-via-double-slash", "/mixed//" + denied, 403, []string{"AccessDenied"}},
		{"denied-via-dot-dot", "/mixed/secret/../" + denied, 400, []string{"XMinioInvalidObjectName", "XMinioInvalidResourceName", "InvalidArgument", "AccessDenied"}},
		{"denied-via-encoded-bucket-slash", "/mixed%2Fsecret/../" + denied, 400, []string{"InvalidArgument"}},
		{"no-such-bucket-name", "/Mixed/" + denied, 400, []string{"InvalidArgument"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t)
			r := newRaw(http.MethodPut, "/enc/"+uniqueKey(t, "copydst/"), nil)
			r.header.Set("X-Amz-Copy-Source", tc.source)
			r.signClient(base, emptyHash)
			a := send(t, base, r)
			if a.status == 200 || bytes.Contains(a.body, secret) {
				t.Fatalf("the copy from %s went through: %v", tc.source, a)
			}
			if a.status >= 500 || a.Code == "" {
				t.Errorf("got %v, want a clean 4xx S3 error", a)
			} else if a.status != tc.status || !slices.Contains(tc.codes, a.Code) {
				t.Logf("got %v (expected %d %v; still a refusal)", a, tc.status, tc.codes)
			}
			assertNothingNew(t, before)
		})
	}
	// Nor does a GET or HEAD of the denied object read it.
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		t.Run("read-denied-"+m, func(t *testing.T) {
			r := newRaw(m, "/mixed/"+denied, nil)
			r.signClient(base, emptyHash)
			a := send(t, base, r)
			if a.status != 403 || bytes.Contains(a.body, secret) {
				t.Errorf("%s of a denied object: %v", m, a)
			}
		})
	}
}

// TestSecurityKeyFilePermissions: keystore.Build warns about a key file
// that group or others can read, and not about one they cannot.
func TestSecurityKeyFilePermissions(t *testing.T) {
	requireEnv(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{{0o644, true}, {0o640, true}, {0o604, true}, {0o600, false}, {0o400, false}} {
		t.Run(fmt.Sprintf("%04o", tc.mode), func(t *testing.T) {
			f := fmt.Sprintf("%s/k-%04o.key", dir, tc.mode)
			if err := os.WriteFile(f, []byte(base64.StdEncoding.EncodeToString(randomBytes(32))), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(f, tc.mode); err != nil {
				t.Fatal(err)
			}
			cfg := *env.cfg
			cfg.Keys = []config.KeySource{{ID: "perm", File: f}}
			cfg.Rules = []config.Rule{{Bucket: "enc", Key: "perm"}}
			_, warnings, err := keystore.Build(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := false
			for _, w := range warnings {
				got = got || strings.Contains(w, "readable by group or others")
				noSecretsIn(t, "warning", w)
			}
			if got != tc.warn {
				t.Errorf("mode %04o: warnings %q, want a permission warning: %v", tc.mode, warnings, tc.warn)
			}
		})
	}
}

// TestSecurityUpstreamMustBeHTTPS: the config refuses a plain-http upstream
// (it would carry the keys in the clear), naming the field.
func TestSecurityUpstreamMustBeHTTPS(t *testing.T) {
	requireEnv(t)
	for _, endpoint := range []string{"http://127.0.0.1:9000", "HTTP://s3.example.com", "s3.example.com", "ftp://s3.example.com"} {
		yml := "upstream:\n  endpoint: " + endpoint + "\n  region: us-east-1\n  access_key: a\n  secret_key: b\nkeys:\n  - id: k\n    env: K\nrules:\n  - bucket: b\n    key: k\n"
		_, err := config.Parse([]byte(yml), "test.yaml", func(string) (string, bool) {
			return base64.StdEncoding.EncodeToString(make([]byte, 32)), true
		})
		if err == nil || !strings.Contains(err.Error(), "upstream.endpoint") {
			t.Errorf("endpoint %s: err %v, want an error naming upstream.endpoint", endpoint, err)
		}
	}
}
