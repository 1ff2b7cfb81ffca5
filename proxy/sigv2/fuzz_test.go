package sigv2

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

const (
	fuzzDate    = "Thu, 05 Mar 2026 10:00:00 GMT"
	fuzzExpires = "1772708400"
)

// semantic is what a V2 signature covers, as a simple model of S3 reads
// it, independently of the package's code.
type semantic struct {
	Method, MD5, Type, Date string
	Amz                     map[string]string
	Resource                string
	Sub                     [][2]string
}

// model returns the signed content of r and its string to sign; ok is
// false where the request is ambiguous and must be refused.
func model(r *http.Request, vhost string, presigned bool) (semantic, string, bool) {
	s := semantic{Method: r.Method, Amz: map[string]string{}}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || len(r.Header["Authorization"]) > 1 && !presigned {
		return s, "", false
	}
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"} {
		if q.Has(k) {
			return s, "", false
		}
	}
	one := func(name string) (string, bool) {
		vv := r.Header.Values(name)
		if len(vv) == 0 && presigned {
			vv = q[strings.ToLower(name)]
		}
		if len(vv) > 1 {
			return "", false
		}
		if len(vv) == 0 {
			return "", true
		}
		return strings.TrimSpace(vv[0]), true
	}
	var ok1, ok2 bool
	s.MD5, ok1 = one("Content-MD5")
	s.Type, ok2 = one("Content-Type")
	if !ok1 || !ok2 {
		return s, "", false
	}
	if _, sent := r.Header["Content-Md5"]; sent || s.MD5 != "" {
		if b, err := base64.StdEncoding.DecodeString(s.MD5); err != nil || len(b) != 16 {
			return s, "", false
		}
	}
	switch {
	case presigned:
		s.Date = fuzzExpires
	case r.Header.Get("X-Amz-Date") != "":
	default:
		s.Date = fuzzDate
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	add := func(name, v string) {
		v = strings.Join(strings.FieldsFunc(v, func(c rune) bool { return c == '\r' || c == '\n' }), " ")
		v = strings.Trim(v, " \t")
		if old, ok := s.Amz[name]; ok {
			v = old + "," + v
		}
		s.Amz[name] = v
	}
	for _, k := range keys {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-") {
			for _, v := range r.Header[k] {
				add(lk, foldTrim(v))
			}
		}
	}
	if presigned {
		// In the order of the raw query, as url.ParseQuery loses it.
		for part := range strings.SplitSeq(r.URL.RawQuery, "&") {
			k, v, _ := strings.Cut(part, "=")
			k, _ = url.QueryUnescape(k)
			v, _ = url.QueryUnescape(v)
			if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-") {
				add(lk, foldTrim(v))
			}
		}
	}
	path := r.URL.EscapedPath()
	if strings.HasPrefix(r.RequestURI, "/") {
		path, _, _ = strings.Cut(r.RequestURI, "?")
	}
	if path == "" {
		path = "/"
	}
	if vhost != "" {
		path = "/" + vhost + path
	}
	s.Resource = path
	for k, vv := range q {
		if !IsSubresource(k) {
			continue
		}
		if len(vv) > 1 || strings.Contains(vv[0], "&") {
			return s, "", false
		}
		s.Sub = append(s.Sub, [2]string{k, vv[0]})
	}
	sort.Slice(s.Sub, func(i, j int) bool { return s.Sub[i][0] < s.Sub[j][0] })

	var b strings.Builder
	b.WriteString(s.Method + "\n" + s.MD5 + "\n" + s.Type + "\n" + s.Date + "\n")
	names := make([]string, 0, len(s.Amz))
	for k := range s.Amz {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		b.WriteString(k + ":" + s.Amz[k] + "\n")
	}
	b.WriteString(s.Resource)
	for i, kv := range s.Sub {
		b.WriteString(map[bool]string{true: "?", false: "&"}[i == 0] + kv[0])
		if kv[1] != "" {
			b.WriteString("=" + kv[1])
		}
	}
	return s, b.String(), true
}

// foldTrim is a value with its line folds as single spaces.
func foldTrim(v string) string {
	lines := strings.FieldsFunc(v, func(c rune) bool { return c == '\r' || c == '\n' })
	for i := range lines {
		lines[i] = strings.Trim(lines[i], " \t")
	}
	out := lines[:0]
	for _, l := range lines {
		if l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, " ")
}

// parseRaw reads a request head as Go's server would; nil if it can't.
func parseRaw(raw []byte) *http.Request {
	head, body, ok := bytes.Cut(raw, []byte("\n\n"))
	if ok {
		head = bytes.ReplaceAll(head, []byte("\n"), []byte("\r\n"))
		raw = append(append(head, "\r\n\r\n"...), body...)
	}
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil
	}
	return r
}

// prepare removes r's authentication and fixes its time, so that the
// fuzzer's requests can be signed and compared.
func prepare(r *http.Request, presigned bool) {
	r.Header.Del("Authorization")
	var parts []string
	for part := range strings.SplitSeq(r.URL.RawQuery, "&") {
		k, _, _ := strings.Cut(part, "=")
		if k, _ = url.QueryUnescape(k); part != "" && k != paramAccessKey && k != paramExpires && k != paramSignature {
			parts = append(parts, part)
		}
	}
	r.URL.RawQuery = strings.Join(parts, "&")
	if presigned {
		r.Header.Del("Date")
	} else {
		r.Header.Set("Date", fuzzDate)
		if _, ok := r.Header["X-Amz-Date"]; ok {
			r.Header.Set("X-Amz-Date", fuzzDate)
		}
	}
	setQuery(r, r.URL.RawQuery)
}

func setQuery(r *http.Request, q string) {
	p := r.URL.EscapedPath()
	if strings.HasPrefix(r.RequestURI, "/") {
		p, _, _ = strings.Cut(r.RequestURI, "?")
	}
	r.URL.RawQuery = q
	r.RequestURI = p
	if q != "" {
		r.RequestURI += "?" + q
	}
}

// authenticate signs r with sts, in the header or the query.
func authenticate(r *http.Request, sts string, presigned bool) {
	sig := sign(sts)
	if !presigned {
		r.Header.Set("Authorization", "AWS "+docAccessKey+":"+sig)
		return
	}
	q := r.URL.RawQuery
	if q != "" {
		q += "&"
	}
	setQuery(r, q+"AWSAccessKeyId="+docAccessKey+"&Expires="+fuzzExpires+"&Signature="+url.QueryEscape(sig))
}

func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, dir := range []string{"aws", "botocore", "s3cmd"} {
		files, _ := filepath.Glob("testdata/" + dir + "/*.http")
		for _, name := range files {
			raw, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			seeds = append(seeds, raw)
		}
	}
	return seeds
}

// FuzzVerify signs request a as the model says, checks that Verify
// accepts it, then moves its signature onto request b: Verify may accept b
// only if b's signed content is a's.
func FuzzVerify(f *testing.F) {
	seeds := fuzzSeeds(f)
	for i, s := range seeds {
		f.Add(s, seeds[(i+1)%len(seeds)], "", "", i%3 == 0)
		f.Add(s, s, "bucket", "bucket", i%2 == 0)
		f.Add(s, bytes.Replace(s, []byte("HTTP/1.1"), []byte("?acl HTTP/1.1"), 1), "b", "", false)
	}
	f.Add([]byte("GET /b/k?versionId=1%26website HTTP/1.1\nHost: h\n\n"), []byte("GET /b/k?versionId=1&website HTTP/1.1\nHost: h\n\n"), "", "", false)
	f.Add([]byte("GET /k HTTP/1.1\nHost: h\n\n"), []byte("GET /b/k HTTP/1.1\nHost: h\n\n"), "b", "", true)
	f.Add([]byte("PUT /b/k HTTP/1.1\nHost: h\nX-Amz-Meta-A: 1\nX-Amz-Meta-A: 2\n\n"), []byte("PUT /b/k HTTP/1.1\nHost: h\nX-Amz-Meta-A: 1,2\n\n"), "", "", false)
	at, _ := http.ParseTime(fuzzDate)
	v := verifierAt(at)
	f.Fuzz(func(t *testing.T, a, b []byte, vhostA, vhostB string, presigned bool) {
		ra, rb := parseRaw(a), parseRaw(b)
		if ra == nil {
			return
		}
		prepare(ra, presigned)
		semA, sts, ok := model(ra, vhostA, presigned)
		if !ok {
			ra.Header.Set("Authorization", "AWS "+docAccessKey+":"+sign("x"))
			if _, err := v.Verify(ra, vhostA); err == nil {
				t.Fatal("verified a forged signature")
			} else {
				s3Err(t, err)
			}
			return
		}
		authenticate(ra, sts, presigned)
		if _, err := v.Verify(ra, vhostA); err != nil {
			t.Fatalf("model's signature refused: %v\nstring to sign %q\nrequest %q %q %v", err, sts, ra.RequestURI, vhostA, ra.Header)
		}
		if rb == nil {
			return
		}
		prepare(rb, presigned)
		if presigned {
			q := rb.URL.RawQuery
			if q != "" {
				q += "&"
			}
			_, sig, _ := strings.Cut(ra.URL.RawQuery, "AWSAccessKeyId=")
			setQuery(rb, q+"AWSAccessKeyId="+sig)
		} else {
			rb.Header.Set("Authorization", ra.Header.Get("Authorization"))
		}
		_, err := v.Verify(rb, vhostB)
		if err != nil {
			s3Err(t, err)
			return
		}
		semB, _, ok := model(rb, vhostB, presigned)
		if !ok || !reflect.DeepEqual(semA, semB) {
			t.Fatalf("b verified with a's signature:\na %+v\nb %+v (ok %v)", semA, semB, ok)
		}
	})
}

func s3Err(t *testing.T, err error) {
	t.Helper()
	var e *s3err.Error
	if !errors.As(err, &e) {
		t.Fatalf("not an S3 error: %v", err)
	}
	if strings.Contains(err.Error(), docSecret) {
		t.Fatalf("error holds the secret: %v", err)
	}
}

// FuzzParseAuthorization: the header parser never panics and what it
// accepts is "AWS key:signature".
func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=")
	f.Add("AWS a:b:c")
	f.Add("AWS :")
	f.Add("AWS4-HMAC-SHA256 Credential=x")
	f.Fuzz(func(t *testing.T, h string) {
		req, err := parseAuthorization(h)
		if err != nil {
			s3Err(t, err)
			return
		}
		if req.accessKey == "" || !strings.HasPrefix(h, "AWS ") || strings.ContainsAny(req.accessKey, " \t") {
			t.Fatalf("accepted %q as key %q", h, req.accessKey)
		}
		if req.sigOK && !strings.Contains(h, base64.StdEncoding.EncodeToString(req.signature[:])) {
			t.Fatalf("signature %x not in %q", req.signature, h)
		}
	})
}

// FuzzPresignedQuery: the query parser and presign checks never panic and
// never accept an expired URL or one valid for more than a week.
func FuzzPresignedQuery(f *testing.F) {
	f.Add("AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620", int64(1175139000))
	f.Add("AWSAccessKeyId=a&Expires=99999999999&Signature=x", int64(0))
	f.Add("a=%zz&b=+&&=&Expires", int64(5))
	f.Fuzz(func(t *testing.T, raw string, now int64) {
		q := parseQuery(raw)
		_, _ = subresources(q)
		_ = amzHeaders(http.Header{}, q, true)
		at := time.Unix(now%(1<<40), 0)
		req, err := parsePresigned(q, at)
		if err != nil {
			s3Err(t, err)
			return
		}
		exp, perr := strconv.ParseInt(req.date, 10, 64)
		if perr != nil || exp < at.Unix() || exp-at.Unix() > 7*24*3600 || req.accessKey == "" {
			t.Fatalf("accepted expires %q at %d, key %q", req.date, at.Unix(), req.accessKey)
		}
	})
}
