package main

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

const (
	bucket      = "bench"
	region      = "us-east-1"
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// payloadMode is how a PUT body is sent and signed: the three modes the
// proxy accepts from real clients for a streamed body.
type payloadMode int

const (
	modeUnsigned       payloadMode = iota // UNSIGNED-PAYLOAD
	modeChunkedSigned                     // STREAMING-AWS4-HMAC-SHA256-PAYLOAD (64 KiB chunks)
	modeTrailer                           // STREAMING-UNSIGNED-PAYLOAD-TRAILER with x-amz-checksum-crc32c
	modeHex                               // the hex SHA-256 of the whole body, computed before sending
	modeChunkedTrailer                    // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER with x-amz-checksum-crc32c
)

func (m payloadMode) String() string {
	return [...]string{"UNSIGNED-PAYLOAD", "aws-chunked signed", "unsigned + crc32c trailer", "signed payload (hex SHA-256)",
		"aws-chunked signed + crc32c trailer"}[m]
}

type modeName struct {
	name string
	mode payloadMode
}

// modeNames are the -put-modes names, in the order of the table.
var modeNames = []modeName{{"unsigned", modeUnsigned}, {"chunked", modeChunkedSigned}, {"trailer", modeTrailer}, {"hex", modeHex}, {"chunked-trailer", modeChunkedTrailer}}

// endpoint is one way to reach MinIO: directly, through ssec-proxy, or
// through nginx. The same client code drives all three; only direct and
// nginx send the SSE-C headers themselves.
type endpoint struct {
	name   string
	base   string // https://127.0.0.1:port
	ak, sk string
	sseKey []byte // non-nil: the client sends SSE-C headers with this key
	hc     *http.Client
}

// newClient is the HTTP/1.1 client every endpoint uses: it trusts the
// given CAs and keeps enough idle connections for the concurrent phases.
func newClient(caFiles ...string) (*http.Client, error) {
	pool := x509.NewCertPool()
	for _, f := range caFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s: no certificate", f)
		}
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     128 << 10,
		ReadBufferSize:      128 << 10,
	}
	return &http.Client{Transport: tr}, nil
}

func (e *endpoint) request(ctx context.Context, method, key string, body io.Reader, size int64) (*http.Request, error) {
	u := e.base + "/" + bucket
	if key != "" {
		u += "/" + key
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	if e.sseKey != nil && key != "" {
		sum := md5.Sum(e.sseKey)
		req.Header.Set("X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256")
		req.Header.Set("X-Amz-Server-Side-Encryption-Customer-Key", base64.StdEncoding.EncodeToString(e.sseKey))
		req.Header.Set("X-Amz-Server-Side-Encryption-Customer-Key-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	}
	return req, nil
}

func (e *endpoint) do(req *http.Request, want int) error {
	resp, err := e.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s via %s: %w", req.Method, req.URL.Path, e.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("%s %s via %s: %s: %s", req.Method, req.URL.Path, e.name, resp.Status, b)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// createBucket makes the bucket (direct endpoint only).
func (e *endpoint) createBucket(ctx context.Context) error {
	req, err := e.request(ctx, http.MethodPut, "", nil, 0)
	if err != nil {
		return err
	}
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	return e.do(signer.SignV4(*req, e.ak, e.sk, "", region), http.StatusOK)
}

// put uploads size bytes of a fixed pattern under key in the given mode.
func (e *endpoint) put(ctx context.Context, key string, size int64, mode payloadMode) error {
	body := &patternReader{left: size}
	req, err := e.request(ctx, http.MethodPut, key, body, size)
	if err != nil {
		return err
	}
	switch mode {
	case modeUnsigned:
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		req = signer.SignV4(*req, e.ak, e.sk, "", region)
	case modeChunkedSigned:
		req = signer.StreamingSignV4(req, e.ak, e.sk, "", region, size, time.Now().UTC(), &sha256Hasher{sha256.New()})
	case modeTrailer:
		body.crc = crc32.New(crc32.MakeTable(crc32.Castagnoli))
		body.trailer = http.Header{"x-amz-checksum-crc32c": {"AAAAAA=="}} // the length counts in Content-Length
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		req = signer.SignV4Trailer(*req, e.ak, e.sk, "", region, body.trailer)
	case modeHex:
		req.Header.Set("X-Amz-Content-Sha256", patternSHA256(size))
		req = signer.SignV4(*req, e.ak, e.sk, "", region)
	case modeChunkedTrailer:
		body.crc = crc32.New(crc32.MakeTable(crc32.Castagnoli))
		body.trailer = http.Header{"x-amz-checksum-crc32c": {"AAAAAA=="}}
		req.Trailer = body.trailer // the signer reads the value once the body has ended
		req = signer.StreamingSignV4(req, e.ak, e.sk, "", region, size, time.Now().UTC(), &sha256Hasher{sha256.New()})
	}
	return e.do(req, http.StatusOK)
}

// get downloads key and discards it, returning the bytes read.
func (e *endpoint) get(ctx context.Context, key string) (int64, error) {
	req, err := e.request(ctx, http.MethodGet, key, nil, 0)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	req = signer.SignV4(*req, e.ak, e.sk, "", region)
	resp, err := e.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s via %s: %w", key, e.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return 0, fmt.Errorf("GET %s via %s: %s: %s", key, e.name, resp.Status, b)
	}
	buf := make([]byte, 128<<10)
	return io.CopyBuffer(io.Discard, resp.Body, buf)
}

// pattern is the data every upload sends, repeated: random, so that
// nothing on the way can compress it.
var pattern = func() []byte {
	b := make([]byte, 1<<20)
	_, _ = rand.Read(b)
	return b
}()

// patternReader yields left bytes of pattern; with crc set it fills the
// crc32c trailer at the end, as an SDK computing a checksum does.
type patternReader struct {
	left    int64
	off     int
	crc     hash.Hash32
	trailer http.Header
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		if p.crc != nil {
			p.trailer["x-amz-checksum-crc32c"] = []string{base64.StdEncoding.EncodeToString(p.crc.Sum(nil))}
			p.crc = nil
		}
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := copy(b, pattern[p.off:])
	p.off = (p.off + n) % len(pattern)
	p.left -= int64(n)
	if p.crc != nil {
		p.crc.Write(b[:n])
	}
	return n, nil
}

var patternSums sync.Map // size → hex SHA-256 of that many bytes of pattern

// patternSHA256 is the hex SHA-256 of the first size bytes the
// patternReader yields, as a client that signs its payload computes it
// before sending (not timed: a client reads its file twice).
func patternSHA256(size int64) string {
	if v, ok := patternSums.Load(size); ok {
		return v.(string)
	}
	h := sha256.New()
	_, _ = io.Copy(h, &patternReader{left: size})
	sum := hex.EncodeToString(h.Sum(nil))
	patternSums.Store(size, sum)
	return sum
}

// sha256Hasher is the hasher StreamingSignV4 wants (md5simd.Hasher).
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}
