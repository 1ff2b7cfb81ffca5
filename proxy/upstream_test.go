package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"
	"testing/iotest"

	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/ssec-proxy/ssec-proxy/config"
)

// fillAtEOF is a body that fills its trailer in at io.EOF, as verifiedBody
// does once the client's body is verified.
type fillAtEOF struct {
	r       io.Reader
	trailer http.Header
	value   string
}

func (f *fillAtEOF) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		f.trailer["X-Amz-Checksum-Crc32c"] = []string{f.value}
	}
	return n, err
}

// TestTrailerBodyMatchesMinioGo pins trailerBody to the stream, length and
// headers that minio-go's SignV4Trailer makes, which the upstream accepts.
func TestTrailerBodyMatchesMinioGo(t *testing.T) {
	u, err := newUpstream(config.Upstream{Endpoint: "https://127.0.0.1:9000", Region: "us-east-1", AccessKey: "ak", SecretKey: "sk"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 100, trailerChunk - 1, trailerChunk, trailerChunk + 1, 3*trailerChunk + 12345} {
		data := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		mk := func(r io.Reader) (*upstreamRequest, http.Header) {
			tr := http.Header{"X-Amz-Checksum-Crc32c": {"AAAAAA=="}}
			body := &fillAtEOF{r: r, trailer: tr, value: "q83vEg=="}
			return &upstreamRequest{Method: http.MethodPut, Target: target{Bucket: "b", Key: "k"}, Query: url.Values{},
				Header: http.Header{"Content-Type": {"text/plain"}}, Body: body, Length: int64(n), Trailer: tr}, tr
		}
		ur, _ := mk(iotest.HalfReader(bytes.NewReader(data))) // short reads, as from a network
		ur.decide(plainDecision)
		got, err := u.build(context.Background(), ur)
		if err != nil {
			t.Fatal(err)
		}
		gotBody, err := io.ReadAll(got.Body)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}

		ur2, tr2 := mk(bytes.NewReader(data))
		req, _ := http.NewRequest(http.MethodPut, "https://127.0.0.1:9000/b/k", ur2.Body)
		req.Header = http.Header{"Content-Type": {"text/plain"}, "X-Amz-Content-Sha256": {"STREAMING-UNSIGNED-PAYLOAD-TRAILER"}}
		req.ContentLength = int64(n)
		want := signer.SignV4Trailer(*req, "ak", "sk", "", "us-east-1", tr2)
		wantBody, err := io.ReadAll(want.Body)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotBody, wantBody) {
			t.Errorf("%d bytes: the framed body differs from minio-go's:\n%q\n%q", n, tail(gotBody), tail(wantBody))
		}
		if got.ContentLength != want.ContentLength || got.ContentLength != int64(len(gotBody)) {
			t.Errorf("%d bytes: Content-Length %d, minio-go %d, body %d", n, got.ContentLength, want.ContentLength, len(gotBody))
		}
		for _, h := range []string{"X-Amz-Trailer", "Content-Encoding", "X-Amz-Decoded-Content-Length", "X-Amz-Content-Sha256"} {
			if g, w := got.Header.Values(h), want.Header.Values(h); len(g) != len(w) || len(g) == 0 || g[0] != w[0] {
				t.Errorf("%d bytes: %s is %q, minio-go sends %q", n, h, g, w)
			}
		}
	}
}

func tail(b []byte) []byte {
	if len(b) > 80 {
		return b[len(b)-80:]
	}
	return b
}

// TestTrailerBodyShortBody reports a body that ends before its length.
func TestTrailerBodyShortBody(t *testing.T) {
	tb := newTrailerBody(bytes.NewReader([]byte("abc")), 10, http.Header{"X-Amz-Checksum-Crc32c": {"AAAAAA=="}})
	if _, err := io.ReadAll(tb); err != io.ErrUnexpectedEOF {
		t.Fatalf("err %v, want io.ErrUnexpectedEOF", err)
	}
	tb = newTrailerBody(bytes.NewReader([]byte("abcdef")), 3, http.Header{"X-Amz-Checksum-Crc32c": {"AAAAAA=="}})
	if _, err := io.ReadAll(tb); err == nil {
		t.Fatal("a body longer than its length passed")
	}
}
