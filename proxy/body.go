package proxy

import (
	"hash"
	"io"
	"net/http"
	"sync"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
	"github.com/ssec-proxy/ssec-proxy/proxy/sigv4"
)

// verifiedBody is the verified request body on its way upstream. It keeps
// the first error (for the status) and, at the verified end, fills in the
// trailer checksum the upstream request carries.
type verifiedBody struct {
	body *sigv4.Body
	// The transport reads the body in its own goroutine, which may still be
	// at it when the upstream has answered early: what the handler reads
	// of it is behind mu.
	mu       sync.Mutex
	md5      hash.Hash // nil: not computed
	n        int64
	err      error
	sum      []byte // md5's sum at the verified end
	ckName   string // the verified checksum (trailer or header), at the end
	ckValue  string
	finished bool        // read to its verified end
	trailer  http.Header // the upstream request's trailer, filled in at the verified end
	// trailerName is the key of the one entry in trailer, as announced by
	// the client in x-amz-trailer.
	trailerName string
}

func (b *verifiedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += int64(n)
	if b.md5 != nil && n > 0 {
		b.md5.Write(p[:n])
	}
	switch {
	case err == io.EOF:
		name, value, ok := b.body.Checksum()
		if b.trailer != nil {
			if !ok {
				b.err = s3err.New(s3err.MalformedTrailerError, "the announced checksum trailer is missing")
				return n, b.err
			}
			b.trailer[b.trailerName] = []string{value}
		}
		if ok {
			b.ckName, b.ckValue = name, value
		}
		if b.md5 != nil && !b.finished {
			b.sum = b.md5.Sum(nil)
		}
		b.finished = true
	case err != nil && b.err == nil:
		b.err = err
	}
	return n, err
}

// state returns what the handler may know of the body: bytes read,
// whether it was read to its verified end, and the first error.
func (b *verifiedBody) state() (n int64, finished bool, err error) {
	if b == nil {
		return 0, false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n, b.finished, b.err
}

// checksum is the verified checksum (trailer or header) the client sent,
// which the response carries back as S3's does.
func (b *verifiedBody) checksum() (string, string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ckName, b.ckValue, b.ckName != ""
}

// md5Sum is the MD5 of the whole body of length bytes, once they were all
// read; nil before or when not computed. (After an upstream's 200 the
// transport may not yet have read the EOF that follows the last byte.)
func (b *verifiedBody) md5Sum(length int64) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sum == nil && b.md5 != nil && b.n == length && b.err == nil {
		return b.md5.Sum(nil)
	}
	return b.sum
}
