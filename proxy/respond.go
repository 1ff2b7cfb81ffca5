package proxy

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// respond streams the upstream's answer to the client. SSE-C headers that
// the upstream echoes are checked against the key sent and removed.
func (s *Server) respond(ex *exchange, r *http.Request, p *plan, resp *http.Response) error {
	defer resp.Body.Close()
	h := ex.w.Header()
	if md5 := resp.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key-Md5"); md5 != "" && ex.keyID != "" {
		if !echoMatches(ex.rt.ring, ex.keyID, md5) {
			return s3err.New(s3err.BadGateway, "the upstream answered with an SSE-C key MD5 that is not the one of key %s", ex.keyID)
		}
	}
	copyResponseHeaders(h, resp.Header)
	if p.body != nil {
		if name, value, ok := p.body.checksum(); ok {
			h.Set(name, value)
		}
		ex.bytesIn, _, _ = p.body.state()
	}
	if id := resp.Header.Get("X-Amz-Request-Id"); resp.StatusCode >= 300 && id != "" && len(id) <= 64 {
		// The upstream's error body names its own request id: the header
		// (and the access log) name the same one.
		ex.id = id
	}
	h.Set("X-Amz-Request-Id", ex.id)
	ex.w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := copyBuffered(ex.w, resp.Body); err != nil {
		if resp.StatusCode < 300 {
			s.log.Warn("response body cut short", zap.String("request_id", ex.id), zap.String("error", err.Error()))
		}
		// Headers are gone: drop the connection so that the client sees a
		// broken transfer, never a short body that looks complete.
		panic(http.ErrAbortHandler)
	}
	return nil
}

func echoMatches(kr *keystore.Keyring, keyID, md5 string) bool {
	k, ok := kr.KeyByMD5(md5)
	return ok && k.ID() == keyID
}

// hopHeaders are not passed on (RFC 9110, 7.6.1), nor are the SSE-C echoes.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"X-Amz-Server-Side-Encryption-Customer-Algorithm": true,
	"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   true,
	"X-Amz-Server-Side-Encryption-Customer-Key":       true,
	"X-Amz-Request-Id": true,
}

// copyResponseHeaders passes the upstream's answer headers on. User
// metadata names go out lower-case, as S3 sends them (Go's client made
// them canonical, X-Amz-Meta-Foo; boto3 looks up Metadata["foo"]).
func copyResponseHeaders(dst, src http.Header) {
	for name, vv := range src {
		switch {
		case hopHeaders[name]:
		case strings.HasPrefix(name, "X-Amz-Meta-"):
			dst[strings.ToLower(name)] = vv
		default:
			dst[name] = vv
		}
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	return io.CopyBuffer(dst, src, *bp)
}

// fail answers with err as S3 XML (or only logs it when the client is gone
// or the response has already started).
func (s *Server) fail(ex *exchange, r *http.Request, err error) {
	if errors.Is(err, errClientGone) {
		ex.errCode = "ClientGone"
		ex.w.status = 499
		return
	}
	if ex.w.wroteHeader {
		panic(http.ErrAbortHandler)
	}
	e := s3err.Write(ex.w, r, err, ex.id)
	ex.errCode = e.Code.Name
	if e.Code == s3err.InternalError {
		s.log.Error("internal error", zap.String("request_id", ex.id), zap.String("error", err.Error()))
	}
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%X", b[:])
}

// responseWriter records the status and the bytes written.
type responseWriter struct {
	http.ResponseWriter
	status      int
	n           int64
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
