package sigv4

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

const (
	docAccessKey = "AKIAIOSFODNN7EXAMPLE"
	docSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testRegion   = "ch-gva-2"
)

var docTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func docCreds(ak string) (string, bool) {
	if ak == docAccessKey {
		return docSecret, true
	}
	return "", false
}

// docVerifier verifies requests as of the AWS documentation's examples.
func docVerifier() *Verifier {
	return &Verifier{Credentials: docCreds, Now: func() time.Time { return docTime }}
}

// liveVerifier verifies requests minio-go signs now.
func liveVerifier() *Verifier { return &Verifier{Credentials: docCreds} }

// readHTTP parses a request head (LF or CRLF line ends) plus body as Go's
// server would.
func readHTTP(t testing.TB, raw []byte) *http.Request {
	t.Helper()
	head, body, ok := bytes.Cut(raw, []byte("\n\n"))
	if ok {
		head = bytes.ReplaceAll(head, []byte("\n"), []byte("\r\n"))
		raw = append(append(head, "\r\n\r\n"...), body...)
	}
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("read request: %v", err)
	}
	return r
}

func readHTTPFile(t testing.TB, name string) *http.Request {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return readHTTP(t, raw)
}

// toServer sends a client request over a pipe-less wire: it writes req as
// a client would and reads it back as Go's server does. The returned
// request's body is the raw (encoded) body.
func toServer(t testing.TB, req *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatalf("write request: %v", err)
	}
	r, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatalf("read request: %v", err)
	}
	return r
}

// sha256Hasher satisfies minio-go's md5simd.Hasher with crypto/sha256.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

func newHasher() sha256Hasher { return sha256Hasher{sha256.New()} }

// newClientReq makes a client PUT of data to path on s3.example.com.
func newClientReq(t testing.TB, method, path string, data []byte) *http.Request {
	t.Helper()
	var body io.Reader
	if data != nil {
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, "http://s3.example.com"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// signStreaming returns a server request signed by minio-go with
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] and its encoded body.
func signStreaming(t testing.TB, data []byte, trailer http.Header, at time.Time) (*http.Request, []byte) {
	t.Helper()
	req := newClientReq(t, http.MethodPut, "/bucket/some%20key.bin", data)
	req.Header.Set("x-amz-storage-class", "STANDARD")
	if trailer != nil {
		req.Trailer = trailer
	}
	req = signer.StreamingSignV4(req, docAccessKey, docSecret, "", testRegion, int64(len(data)), at, newHasher())
	return splitBody(t, toServer(t, req))
}

// signUnsignedTrailer returns a server request signed by minio-go with
// STREAMING-UNSIGNED-PAYLOAD-TRAILER and its encoded body.
func signUnsignedTrailer(t testing.TB, data []byte, trailer http.Header) (*http.Request, []byte) {
	t.Helper()
	req := newClientReq(t, http.MethodPut, "/bucket/key+with~odd$chars", data)
	req.Header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailer)
	req = signer.SignV4Trailer(*req, docAccessKey, docSecret, "", testRegion, trailer)
	return splitBody(t, toServer(t, req))
}

func splitBody(t testing.TB, r *http.Request) (*http.Request, []byte) {
	t.Helper()
	enc, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	r.Body = io.NopCloser(bytes.NewReader(enc))
	return r, enc
}

// readBody reads b through a buffer of size n and returns what was
// delivered and the first non-EOF error.
func readBody(b *Body, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		k, err := b.Read(buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// codeOf returns the S3 code name of err, "" for nil, "non-S3" otherwise.
func codeOf(err error) string {
	if err == nil {
		return ""
	}
	var e *s3err.Error
	if !errors.As(err, &e) {
		return "non-S3: " + err.Error()
	}
	return e.Code.Name
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// noSecrets fails if err's message holds a secret or signature.
func noSecrets(t testing.TB, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append(secrets, docSecret) {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q holds a secret", err)
		}
	}
}
