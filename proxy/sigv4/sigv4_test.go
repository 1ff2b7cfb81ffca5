package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// The AWS documentation's SigV4 examples for S3, replayed as Go's server
// parses them.
func TestAWSDocExamples(t *testing.T) {
	tests := []struct {
		file      string
		presigned bool
		mode      PayloadMode
		body      string
	}{
		{"get-object.http", false, Hex, ""},
		{"put-object.http", false, Hex, "Welcome to Amazon S3."},
		{"get-lifecycle.http", false, Hex, ""},
		{"list-objects.http", false, Hex, ""},
		{"presigned-get.http", true, Unsigned, ""},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			r := readHTTPFile(t, "testdata/aws/"+tc.file)
			a, err := docVerifier().Verify(r)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if a.AccessKey != docAccessKey || a.Region != "us-east-1" || a.Presigned != tc.presigned || a.Mode != tc.mode {
				t.Errorf("auth = %+v", a)
			}
			got, err := readBody(a.Body(r.Body), 4096)
			if err != nil || string(got) != tc.body {
				t.Errorf("body = %q, %v; want %q", got, err, tc.body)
			}
		})
	}
}

// A presigned URL is valid from X-Amz-Date (less the skew) until it expires.
func TestAWSDocPresignedWindow(t *testing.T) {
	tests := []struct {
		now  time.Time
		code string
		msg  string
	}{
		{docTime.Add(86400 * time.Second), "", ""},
		{docTime.Add(86401 * time.Second), "AccessDenied", "Request has expired"},
		{docTime.Add(-14 * time.Minute), "", ""},
		{docTime.Add(-16 * time.Minute), "AccessDenied", "Request is not valid yet"},
	}
	for _, tc := range tests {
		r := readHTTPFile(t, "testdata/aws/presigned-get.http")
		v := docVerifier()
		v.Now = func() time.Time { return tc.now }
		_, err := v.Verify(r)
		if codeOf(err) != tc.code || err != nil && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("now %v: err = %v, want %s %q", tc.now, err, tc.code, tc.msg)
		}
	}
}

// The streaming example: seed 4f232c43…, two chunks of 'a' (64 KiB, 1 KiB)
// and the final chunk, with the documented chunk signatures.
func TestAWSDocStreaming(t *testing.T) {
	r := readHTTPFile(t, "testdata/aws/streaming-put.http")
	r.Body = nopCloser{bytes.NewReader(docStreamingBody())}
	a, err := docVerifier().Verify(r)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if a.Mode != StreamingSigned || a.DecodedLength != 66560 {
		t.Fatalf("auth = %+v", a)
	}
	for _, n := range []int{1, 7, 8, 9, 4096, 32 << 10, 1 << 20} {
		got, err := readBody(a.Body(bytes.NewReader(docStreamingBody())), n)
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte("a"), 66560)) {
			t.Fatalf("buffer %d: %d bytes, %v", n, len(got), err)
		}
	}
}

func docStreamingBody() []byte {
	var b bytes.Buffer
	b.WriteString("10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n")
	b.Write(bytes.Repeat([]byte("a"), 65536))
	b.WriteString("\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n")
	b.Write(bytes.Repeat([]byte("a"), 1024))
	b.WriteString("\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n")
	return b.Bytes()
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// The trailer signature example of the AWS documentation (sigv4-streaming-trailers).
func TestAWSDocTrailerSignature(t *testing.T) {
	a := &Auth{
		Mode:       StreamingSignedTrailer,
		Trailer:    "x-amz-checksum-crc32c",
		signingKey: deriveKey(docSecret, "20130524", "us-east-1"),
		date:       "20130524T000000Z",
		scope:      "20130524/us-east-1/s3/aws4_request",
	}
	b := a.Body(nil)
	hex.Decode(b.prevSig[:], []byte("e05ab64fe1dfdbf0b5870abbaabdb063c371d4e96f2767e6934d90529c5ae850"))
	hex.Decode(b.chunkSig[:], []byte("41e14ac611e27a8bb3d66c3bad6856f209297767d5dd4fc87d8fa9e422e03faf"))
	if err := b.verifyTrailer([]byte("x-amz-checksum-crc32c:wdBDMA==\n")); err != nil {
		t.Fatal(err)
	}
	if err := b.verifyTrailer([]byte("x-amz-checksum-crc32c:wdBDMB==\n")); codeOf(err) != "SignatureDoesNotMatch" {
		t.Fatalf("tampered trailer: %v", err)
	}
}

// minio-go's SignV4 (hex payload and UNSIGNED-PAYLOAD) and PreSignV4 as the
// real client, through the wire and Go's request parser.
func TestMinioGoSignV4RoundTrip(t *testing.T) {
	data := pattern(100_000)
	sum := sha256.Sum256(data)
	tests := []struct {
		name, path, hash string
		query            url.Values
		mode             PayloadMode
	}{
		{"hex", "/bucket/dir/file.bin", hex.EncodeToString(sum[:]), nil, Hex},
		{"unsigned", "/bucket/dir/file.bin", unsignedPayload, nil, Unsigned},
		{"odd key", "/bucket/a b+c~d$e%f(g)*h'i!j=k&l@m.txt", unsignedPayload, nil, Unsigned},
		{"unicode key", "/bucket/ключ/日本.txt", unsignedPayload, nil, Unsigned},
		{"query", "/bucket/key", unsignedPayload, url.Values{"uploadId": {"a b/c+d="}, "partNumber": {"3"}, "tagging": {""}}, Unsigned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newClientReq(t, http.MethodPut, "", data)
			req.URL.Path = tc.path
			req.URL.RawQuery = tc.query.Encode()
			req.Header.Set("X-Amz-Content-Sha256", tc.hash)
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("X-Amz-Meta-Note", "  two   spaces\tand tab  ")
			req = signer.SignV4(*req, docAccessKey, docSecret, "", testRegion)
			r := toServer(t, req)
			a, err := liveVerifier().Verify(r)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if a.Mode != tc.mode || a.Region != testRegion || a.DecodedLength != int64(len(data)) || a.Presigned {
				t.Errorf("auth = %+v", a)
			}
			got, err := readBody(a.Body(r.Body), 32<<10)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("body: %d bytes, %v", len(got), err)
			}
		})
	}

	t.Run("presigned", func(t *testing.T) {
		req := newClientReq(t, http.MethodGet, "/bucket/dir/a%20b.txt?versionId=x%2By", nil)
		req = signer.PreSignV4(*req, docAccessKey, docSecret, "", testRegion, 3600)
		r := toServer(t, req)
		a, err := liveVerifier().Verify(r)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if !a.Presigned || a.Mode != Unsigned || a.AccessKey != docAccessKey {
			t.Errorf("auth = %+v", a)
		}
		// Any change to the signed query breaks the signature.
		r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "versionId=x%2By", "versionId=x%2Bz", 1)
		if _, err := liveVerifier().Verify(r); codeOf(err) != "SignatureDoesNotMatch" {
			t.Errorf("tampered query: %v", err)
		}
	})
}

// Headers Go's server moves out of r.Header still verify when signed.
func TestServerMovedHeaders(t *testing.T) {
	data := []byte("hello")
	sum := sha256.Sum256(data)
	// Sign with Content-Length and Transfer-Encoding among the headers.
	for _, tc := range []struct {
		name  string
		setup func(*http.Request)
	}{
		{"content-length", func(r *http.Request) { r.Header.Set("Content-Length", "5") }},
		{"expect", func(r *http.Request) { r.Header.Set("Expect", "100-continue") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newClientReq(t, http.MethodPut, "/bucket/k", data)
			req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
			tc.setup(req)
			req = signer.SignV4(*req, docAccessKey, docSecret, "", testRegion)
			if !strings.Contains(req.Header.Get("Authorization"), tc.name) {
				t.Fatalf("%s not signed: %s", tc.name, req.Header.Get("Authorization"))
			}
			req.Header.Del("Content-Length") // req.Write writes it from ContentLength
			r := toServer(t, req)
			if tc.name == "content-length" {
				r.Header.Del("Content-Length") // as if the server had moved it
			}
			a, err := liveVerifier().Verify(r)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got, err := readBody(a.Body(r.Body), 512); err != nil || string(got) != "hello" {
				t.Fatalf("body %q, %v", got, err)
			}
		})
	}
	t.Run("transfer-encoding", func(t *testing.T) {
		req := newClientReq(t, http.MethodPut, "/bucket/k", nil)
		req.Body = nopCloser{bytes.NewReader(data)}
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
		req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		req.Header.Set("Transfer-Encoding", "chunked")
		req = signer.SignV4(*req, docAccessKey, docSecret, "", testRegion)
		req.Header.Del("Transfer-Encoding")
		r := toServer(t, req)
		if _, ok := r.Header["Transfer-Encoding"]; ok || len(r.TransferEncoding) != 1 {
			t.Fatalf("server request: header %v, TransferEncoding %v", r.Header, r.TransferEncoding)
		}
		a, err := liveVerifier().Verify(r)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if a.DecodedLength != -1 {
			t.Errorf("DecodedLength = %d", a.DecodedLength)
		}
		if got, err := readBody(a.Body(r.Body), 512); err != nil || string(got) != "hello" {
			t.Fatalf("body %q, %v", got, err)
		}
	})
}

// Each bad request gets its exact S3 error code.
func TestVerifyErrors(t *testing.T) {
	get := func() *http.Request { return readHTTPFile(t, "testdata/aws/get-object.http") }
	pre := func() *http.Request { return readHTTPFile(t, "testdata/aws/presigned-get.http") }
	setAuth := func(r *http.Request, old, new string) *http.Request {
		r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), old, new, 1))
		return r
	}
	setQuery := func(r *http.Request, old, new string) *http.Request {
		r.URL.RawQuery = strings.Replace(r.URL.RawQuery, old, new, 1)
		r.RequestURI = r.URL.RequestURI()
		return r
	}
	const sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
	tests := []struct {
		name string
		req  func() *http.Request
		now  time.Time
		code string
	}{
		{"no auth", func() *http.Request { r := get(); r.Header.Del("Authorization"); return r }, docTime, "AccessDenied"},
		{"sigv2", func() *http.Request {
			r := get()
			r.Header.Set("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=")
			return r
		}, docTime, "AuthorizationHeaderMalformed"},
		{"sigv4a", func() *http.Request { return setAuth(get(), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256") }, docTime, "NotImplemented"},
		{"no credential", func() *http.Request { return setAuth(get(), "Credential=", "Cred=") }, docTime, "AuthorizationHeaderMalformed"},
		{"short credential", func() *http.Request { return setAuth(get(), "/us-east-1/s3", "/s3") }, docTime, "AuthorizationHeaderMalformed"},
		{"bad credential date", func() *http.Request { return setAuth(get(), "/20130524/", "/2013-05-24/") }, docTime, "AuthorizationHeaderMalformed"},
		{"credential date not request date", func() *http.Request { return setAuth(get(), "/20130524/", "/20130525/") }, docTime, "AuthorizationHeaderMalformed"},
		{"service not s3", func() *http.Request { return setAuth(get(), "/s3/", "/ec2/") }, docTime, "AuthorizationHeaderMalformed"},
		{"bad terminator", func() *http.Request { return setAuth(get(), "aws4_request", "aws5_request") }, docTime, "AuthorizationHeaderMalformed"},
		{"host unsigned", func() *http.Request { return setAuth(get(), "host;", "") }, docTime, "AuthorizationHeaderMalformed"},
		{"upper-case signed header", func() *http.Request { return setAuth(get(), "range", "Range") }, docTime, "AuthorizationHeaderMalformed"},
		{"short signature", func() *http.Request { return setAuth(get(), sig, sig[:63]) }, docTime, "AuthorizationHeaderMalformed"},
		{"duplicate field", func() *http.Request { return setAuth(get(), ",Signature=", ",SignedHeaders=host,Signature=") }, docTime, "AuthorizationHeaderMalformed"},
		{"unknown access key", func() *http.Request { return setAuth(get(), docAccessKey, "AKIAOTHER") }, docTime, "InvalidAccessKeyId"},
		{"bad signature", func() *http.Request { return setAuth(get(), sig, strings.Repeat("0", 64)) }, docTime, "SignatureDoesNotMatch"},
		{"changed header", func() *http.Request { r := get(); r.Header.Set("Range", "bytes=0-10"); return r }, docTime, "SignatureDoesNotMatch"},
		{"changed path", func() *http.Request { r := get(); r.URL.Path = "/test.txu"; r.RequestURI = "/test.txu"; return r }, docTime, "SignatureDoesNotMatch"},
		{"changed method", func() *http.Request { r := get(); r.Method = http.MethodDelete; return r }, docTime, "SignatureDoesNotMatch"},
		{"skew future", get, docTime.Add(-16 * time.Minute), "RequestTimeTooSkewed"},
		{"skew past", get, docTime.Add(16 * time.Minute), "RequestTimeTooSkewed"},
		{"no date", func() *http.Request { r := get(); r.Header.Del("X-Amz-Date"); return r }, docTime, "AccessDenied"},
		{"bad date", func() *http.Request { r := get(); r.Header.Set("X-Amz-Date", "2013-05-24T00:00:00Z"); return r }, docTime, "AccessDenied"},
		{"no content sha", func() *http.Request { r := get(); r.Header.Del("X-Amz-Content-Sha256"); return r }, docTime, "InvalidRequest"},
		{"bad content sha", func() *http.Request { r := get(); r.Header.Set("X-Amz-Content-Sha256", "xyz"); return r }, docTime, "InvalidArgument"},
		{"streaming without decoded length", func() *http.Request {
			r := get()
			r.Header.Set("X-Amz-Content-Sha256", streamingSigned)
			return r
		}, docTime, "MissingContentLength"},
		{"bad decoded length", func() *http.Request {
			r := get()
			r.Header.Set("X-Amz-Content-Sha256", streamingSigned)
			r.Header.Set("X-Amz-Decoded-Content-Length", "-1")
			return r
		}, docTime, "InvalidArgument"},
		{"unknown trailer", func() *http.Request {
			r := get()
			r.Header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailer)
			r.Header.Set("X-Amz-Decoded-Content-Length", "0")
			r.Header.Set("X-Amz-Trailer", "x-amz-meta-foo")
			return r
		}, docTime, "InvalidRequest"},
		{"both auth kinds", func() *http.Request {
			r := pre()
			r.Header.Set("Authorization", get().Header.Get("Authorization"))
			return r
		}, docTime, "InvalidArgument"},
		{"presigned bad algorithm", func() *http.Request {
			return setQuery(pre(), "X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1")
		}, docTime, "AuthorizationQueryParametersError"},
		{"presigned no expires", func() *http.Request { return setQuery(pre(), "X-Amz-Expires=86400&", "") }, docTime, "AuthorizationQueryParametersError"},
		{"presigned expires too long", func() *http.Request { return setQuery(pre(), "X-Amz-Expires=86400", "X-Amz-Expires=604801") }, docTime, "AuthorizationQueryParametersError"},
		{"presigned expires negative", func() *http.Request { return setQuery(pre(), "X-Amz-Expires=86400", "X-Amz-Expires=-1") }, docTime, "AuthorizationQueryParametersError"},
		{"presigned bad date", func() *http.Request { return setQuery(pre(), "X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130524") }, docTime, "AuthorizationQueryParametersError"},
		{"presigned bad credential", func() *http.Request { return setQuery(pre(), "%2Fs3%2F", "%2Fsqs%2F") }, docTime, "AuthorizationQueryParametersError"},
		{"presigned duplicate signature", func() *http.Request { return setQuery(pre(), "X-Amz-Expires", "X-Amz-Signature=00&X-Amz-Expires") }, docTime, "AuthorizationQueryParametersError"},
		{"presigned host unsigned", func() *http.Request { return setQuery(pre(), "X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range") }, docTime, "AuthorizationQueryParametersError"},
		{"presigned unknown key", func() *http.Request { return setQuery(pre(), docAccessKey, "AKIAOTHER") }, docTime, "InvalidAccessKeyId"},
		{"presigned bad signature", func() *http.Request { return setQuery(pre(), "X-Amz-Signature=a", "X-Amz-Signature=b") }, docTime, "SignatureDoesNotMatch"},
		{"presigned expired", pre, docTime.Add(86401 * time.Second), "AccessDenied"},
		{"presigned not yet valid", pre, docTime.Add(-time.Hour), "AccessDenied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := docVerifier()
			v.Now = func() time.Time { return tc.now }
			a, err := v.Verify(tc.req())
			if got := codeOf(err); got != tc.code {
				t.Fatalf("err = %v (auth %v), want %s", err, a != nil, tc.code)
			}
			noSecrets(t, err, sig, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
		})
	}
}

func TestNilCredentials(t *testing.T) {
	v := &Verifier{Now: func() time.Time { return docTime }}
	if _, err := v.Verify(readHTTPFile(t, "testdata/aws/get-object.http")); codeOf(err) != "InvalidAccessKeyId" {
		t.Fatalf("err = %v", err)
	}
}

func TestPayloadModeString(t *testing.T) {
	for m, want := range map[PayloadMode]string{
		Hex: "hex", Unsigned: "UNSIGNED-PAYLOAD", StreamingSigned: streamingSigned,
		StreamingSignedTrailer: streamingSignedTrailer, StreamingUnsignedTrailer: streamingUnsignedTrailer,
		PayloadMode(9): "PayloadMode(9)",
	} {
		if m.String() != want {
			t.Errorf("%d.String() = %q, want %q", m, m.String(), want)
		}
	}
}

func TestChecksumLen(t *testing.T) {
	for name, want := range map[string]int{
		"x-amz-checksum-crc32": 8, "x-amz-checksum-crc32c": 8, "x-amz-checksum-crc64nvme": 12,
		"x-amz-checksum-sha1": 28, "x-amz-checksum-sha256": 44,
	} {
		h := newChecksum(name)
		if got, ok := ChecksumLen(name); !ok || got != want || h == nil || len(b64(h.Sum(nil))) != want {
			t.Errorf("ChecksumLen(%q) = %d, %v", name, got, ok)
		}
	}
	if _, ok := ChecksumLen("x-amz-checksum-md5"); ok {
		t.Error("md5 known")
	}
}

func TestCanonicalHelpers(t *testing.T) {
	if got := string(appendTrimAll(nil, "  a   b\t\tc  ")); got != "a b c" {
		t.Errorf("trimAll = %q", got)
	}
	if got := string(appendURIEncode(nil, "/a b/~x+y*", true)); got != "/a%20b/~x%2By%2A" {
		t.Errorf("uriEncode = %q", got)
	}
	q := parseQuery("b=2&a=%2F&a=1&c&d=x+y")
	if got := string(appendCanonicalQuery(nil, q, false)); got != "a=%2F&a=1&b=2&c=&d=x%20y" {
		t.Errorf("canonical query = %q", got)
	}
}
