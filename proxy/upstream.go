package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/upstreamtls"
)

// upstream sends re-signed requests to the S3 service behind the proxy over
// one shared, tuned transport.
type upstream struct {
	tr        *http.Transport // under client's RoundTripper
	base      *url.URL        // scheme and host of the endpoint
	region    string
	accessKey string
	secretKey string
	client    *http.Client
}

// UpstreamObserver hears of the proxy's connections to the upstream: an
// Options.Observer that also implements it (metrics.Metrics) is told.
type UpstreamObserver interface {
	// UpstreamConnOpened counts one new connection to the upstream
	// (a dial that succeeded, before any TLS).
	UpstreamConnOpened()
	// UpstreamTLSHandshake counts one finished TLS handshake with the
	// upstream.
	UpstreamTLSHandshake(ok bool)
}

func newUpstream(cfg config.Upstream, obs Observer, wrap func(http.RoundTripper) http.RoundTripper) (*upstream, error) {
	base, err := url.Parse(cfg.Endpoint)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("upstream.endpoint: %q is not a URL", cfg.Endpoint)
	}
	tlsConf, err := upstreamtls.Config(cfg)
	if err != nil {
		return nil, err
	}
	dial := stallDialer(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}, time.Duration(cfg.StallTimeout))
	if uo, ok := obs.(UpstreamObserver); ok {
		// Count connections and the handshakes that were verified (a
		// failed verification ends before VerifyConnection is called).
		inner := dial
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := inner(ctx, network, addr)
			if err == nil {
				uo.UpstreamConnOpened()
			}
			return c, err
		}
		if tlsConf != nil {
			tlsConf = tlsConf.Clone()
			verify := tlsConf.VerifyConnection
			tlsConf.VerifyConnection = func(cs tls.ConnectionState) error {
				var err error
				if verify != nil {
					err = verify(cs)
				}
				uo.UpstreamTLSHandshake(err == nil)
				return err
			}
		}
	}
	tr := &http.Transport{
		Proxy:                 nil, // the upstream is reached directly: keys must not pass an HTTP proxy
		DialContext:           dial,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: 2 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
		DisableCompression:    true, // bodies pass through byte for byte
		WriteBufferSize:       128 << 10,
		ReadBufferSize:        128 << 10,
	}
	var rt http.RoundTripper = tr
	if wrap != nil {
		rt = wrap(tr)
	}
	return &upstream{
		tr:        tr,
		base:      &url.URL{Scheme: base.Scheme, Host: base.Host},
		region:    cfg.Region,
		accessKey: cfg.AccessKey,
		secretKey: cfg.SecretKey,
		client: &http.Client{
			Transport: rt,
			// S3 redirects (301/307 to another region) go back to the
			// client as they are; the proxy never follows them with keys.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// upstreamRequest is what the proxy sends for one client request.
type upstreamRequest struct {
	Method  string
	Target  target
	Query   url.Values
	Header  http.Header
	Body    io.Reader // nil: no body
	Length  int64     // of Body after decoding
	Hash    string    // hex sha256 of Body when the client signed it; "" for UNSIGNED-PAYLOAD
	Trailer http.Header
	// sse and srcSSE are the decisions its SSE-C headers (and its copy
	// source's) come from (decision.go).
	sse, srcSSE sseDecision
}

// objectPath is the path-style path of t, encoded the one way that the
// signer and the transport both use (invariant 4: what the rules matched is
// what the upstream stores).
func objectPath(t target) string {
	switch {
	case t.Bucket == "":
		return "/"
	case t.Key == "":
		return "/" + t.Bucket + "/"
	}
	return "/" + t.Bucket + "/" + t.Key
}

// build makes the signed *http.Request. Signing is the last step: nothing
// touches the request after it.
func (u *upstream) build(ctx context.Context, ur *upstreamRequest) (*http.Request, error) {
	if err := ur.checkDecided(); err != nil {
		return nil, err
	}
	path := objectPath(ur.Target)
	uu := *u.base
	uu.Path = path
	uu.RawPath = encodePath(path)
	uu.RawQuery = strings.ReplaceAll(ur.Query.Encode(), "+", "%20")
	body := ur.Body
	if body == nil {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, ur.Method, uu.String(), body)
	if err != nil {
		return nil, err
	}
	// NewRequest re-parses the URL; keep the canonical encoding.
	req.URL.RawPath = uu.RawPath
	req.Header = ur.Header
	if ur.Body == nil {
		req.ContentLength = 0
	} else {
		req.ContentLength = ur.Length
	}
	if len(ur.Trailer) > 0 && ur.Body != nil {
		// The headers signer.SignV4Trailer sets, then the body framed by
		// trailerBody: the same bytes as minio-go's StreamingUnsignedV4,
		// without its per-request 64 KiB buffer and two copies of every
		// byte (docs/PERFORMANCE.md).
		for name := range ur.Trailer {
			req.Header.Add("X-Amz-Trailer", strings.ToLower(name))
		}
		if ce := req.Header.Get("Content-Encoding"); ce == "" {
			req.Header.Set("Content-Encoding", "aws-chunked")
		} else {
			req.Header.Set("Content-Encoding", "aws-chunked,"+ce)
		}
		req.Header.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(ur.Length, 10))
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		signed := signer.SignV4(*req, u.accessKey, u.secretKey, "", u.region)
		tb := newTrailerBody(ur.Body, ur.Length, ur.Trailer)
		signed.Body, signed.ContentLength = tb, tb.size
		signed.GetBody = nil
		return signed, nil
	}
	hash := ur.Hash
	if hash == "" {
		hash = "UNSIGNED-PAYLOAD"
		if ur.Body == nil {
			hash = emptySHA256
		}
	}
	req.Header.Set("X-Amz-Content-Sha256", hash)
	return signer.SignV4(*req, u.accessKey, u.secretKey, "", u.region), nil
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func (u *upstream) do(req *http.Request) (*http.Response, error) {
	return u.client.Do(req)
}

// encodePath is the one encoding of object paths sent upstream.
func encodePath(p string) string { return s3utils.EncodePath(p) }

// trailerChunk is the chunk size of the aws-chunked bodies the proxy sends
// with a checksum trailer: minio-go's, so that the stream (and its length)
// is the one its signer would make.
const trailerChunk = 64 << 10

// trailerBody frames a body of known length as aws-chunked with an
// unsigned trailer ("<hex size>\r\n<data>\r\n" per 64 KiB chunk, then
// "0\r\n", one "name:value\n" line per trailer and "\r\n\r\n"). Data is
// read straight into the caller's buffer. The trailer values are read
// after the body returned io.EOF: verifiedBody fills them in then, once
// the client's body is verified.
type trailerBody struct {
	body      io.Reader
	size      int64 // of the framed stream
	dataLeft  int64 // data bytes not yet in a chunk
	chunkLeft int64 // data bytes of the current chunk still to pass
	trailer   http.Header
	pending   []byte // framing not yet read
	scratch   [64]byte
	done      bool // the final chunk and trailer are in pending
}

func newTrailerBody(body io.Reader, length int64, trailer http.Header) *trailerBody {
	t := &trailerBody{body: body, dataLeft: length, trailer: trailer}
	full, rest := length/trailerChunk, length%trailerChunk
	t.size = full * chunkLen(trailerChunk)
	if rest > 0 {
		t.size += chunkLen(rest)
	}
	t.size += chunkLen(0)
	for name, v := range trailer {
		if len(v) > 0 {
			t.size += int64(len(name) + 1 + len(v[0]) + 1)
		}
	}
	t.size += 2
	return t
}

// chunkLen is the framed length of a chunk of n data bytes.
func chunkLen(n int64) int64 {
	return int64(len(strconv.FormatInt(n, 16))) + 2 + n + 2
}

func (t *trailerBody) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(t.pending) > 0 {
			c := copy(p[n:], t.pending)
			t.pending = t.pending[c:]
			n += c
			continue
		}
		if t.chunkLeft > 0 {
			want := p[n:]
			if int64(len(want)) > t.chunkLeft {
				want = want[:t.chunkLeft]
			}
			c, err := t.body.Read(want)
			n += c
			t.chunkLeft -= int64(c)
			if t.chunkLeft == 0 {
				t.pending = append(t.scratch[:0], "\r\n"...)
			}
			switch {
			case err == io.EOF && t.chunkLeft > 0:
				return n, io.ErrUnexpectedEOF
			case err != nil && err != io.EOF:
				return n, err
			}
			if t.chunkLeft > 0 || c == 0 {
				// Pass on what came without waiting for more.
				return n, nil
			}
			continue
		}
		if t.dataLeft > 0 {
			size := min(t.dataLeft, trailerChunk)
			t.dataLeft -= size
			t.chunkLeft = size
			t.pending = strconv.AppendInt(t.scratch[:0], size, 16)
			t.pending = append(t.pending, "\r\n"...)
			continue
		}
		if t.done {
			if n > 0 {
				return n, nil
			}
			return 0, io.EOF
		}
		// All data passed: read the body to its verified end, which
		// fills in the trailer, then frame the end.
		if err := t.drain(); err != nil {
			return n, err
		}
		end := []byte("0\r\n")
		for name, v := range t.trailer {
			if len(v) > 0 {
				end = append(end, strings.ToLower(name)...)
				end = append(end, ':')
				end = append(end, v[0]...)
				end = append(end, '\n')
			}
		}
		t.pending = append(end, "\r\n\r\n"...)
		t.done = true
	}
	return n, nil
}

// drain reads the body until io.EOF; data past its length is an error.
func (t *trailerBody) drain() error {
	var one [1]byte
	for i := 0; ; i++ {
		c, err := t.body.Read(one[:])
		switch {
		case c > 0:
			return fmt.Errorf("proxy: the request body is longer than its length")
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		case i > 100:
			return io.ErrNoProgress
		}
	}
}

func (t *trailerBody) Close() error { return nil }

// stallDialer dials connections whose writes fail when they make no
// progress for stall: an upstream that stops reading a body (or a client
// gone while the proxy waits on such an upstream) cannot hold a request
// forever. Reads have no such limit here: waiting for an answer is bounded
// by ResponseHeaderTimeout, and a stalled download by the client's side.
func stallDialer(d *net.Dialer, stall time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil || stall <= 0 {
			return c, err
		}
		return &stallConn{Conn: c, stall: stall}, nil
	}
}

type stallConn struct {
	net.Conn
	stall time.Duration
}

func (c *stallConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.stall)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
