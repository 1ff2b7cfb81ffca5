package proxy

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// MD5-consistent ETags (issue 5).
//
// With SSE-C the upstream's ETag is not the MD5 of the data, and tools that
// compare the two (s3cmd, rclone) report corruption. The proxy computes the
// MD5 while it streams a write and gives clients the ETag an unencrypted
// S3 would have given. To give the same ETag in every later response, it
// keeps the pair (upstream ETag → client ETag) in the bucket itself, as
// the name of an empty object under .ssec-proxy/etags/:
//
//	.ssec-proxy/etags/<object key> <upstream etag> <sealed client etag>
//
// The client ETag is sealed (AES-GCM, a key derived from the rule's key,
// the upstream ETag as associated data), so the index does not show the
// MD5 of encrypted data to whoever can list the bucket. Entries sort with
// their object keys, so one listing of the index covers a page of a
// listing of the bucket: a listing costs one more request per page, not
// one per object. GET and HEAD look an entry up by name (cached in memory).
// Entries of overwritten objects stay behind; they never match, since the
// upstream ETag differs.
// The format, sealing and cache of the entries, and the index's reads and
// writes (etagindex.Index), are internal/etagindex's, which rekey and
// index gc (lifecycle) share; the proxy's bucket is indexObjects
// (indexstore.go).
const (
	reservedPrefix = etagindex.Reserved
	indexPrefix    = etagindex.Prefix
)

func reservedKey(key string) bool { return etagindex.IsReserved(key) }

// refusedKey is a key no client request may name (etagindex.Refused).
func refusedKey(key string) bool { return etagindex.Refused(key) }

// errReserved answers a client request for a key of the index.
func errReserved() error {
	return s3err.New(s3err.AccessDenied, "keys under %s are reserved for ssec-proxy's ETag index", reservedPrefix)
}

// unquote strips the quotes around an ETag.
func unquote(etag string) string { return strings.Trim(etag, `"`) }

func quote(etag string) string { return `"` + etag + `"` }

// multipartETag is S3's ETag of a multipart object: the MD5 of the binary
// MD5s of its parts, a dash and the part count. ok is false when a part
// ETag is not an MD5.
func multipartETag(parts []string) (string, bool) {
	h := md5.New()
	for _, p := range parts {
		b, err := hex.DecodeString(unquote(p))
		if err != nil || len(b) != md5.Size {
			return "", false
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts)), true
}

// recordETag writes the index entry for an object written through the
// proxy, and caches it. A key too long for an entry's name is not indexed:
// its later responses carry the upstream's ETag.
func (s *Server) recordETag(ctx context.Context, ex *exchange, bucket, key, upstreamETag, clientETag string, k *keystore.Key) {
	upstreamETag = unquote(upstreamETag)
	if upstreamETag == "" || clientETag == "" || k == nil {
		return
	}
	s.etags.Put(bucket, upstreamETag, clientETag)
	e, ok := etagindex.NewEntry(key, upstreamETag, clientETag, k)
	if !ok {
		return
	}
	// The entry is written behind the client's wait (this instance
	// answers the client ETag from its cache meanwhile; another sees it
	// once the PUT is done, within one upstream round trip as a rule and
	// 30 s at most), even if the client has gone. A crash loses at most
	// entries, never objects: their ETags fall back to the upstream's.
	s.indexPending.Add(1)
	wk := bucket + "\x00" + key
	s.writes.start(wk, upstreamETag)
	s.behind(ex, func(bg *exchange) {
		defer s.indexPending.Add(-1)
		defer s.writes.done(wk)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := s.index(bg).Put(ctx, bucket, e)
		if err != nil {
			s.logIndexError(bg, "writing", err.Error())
		}
		s.indexWrite(err == nil)
	})
}

// IndexObserver hears of the proxy's writes to its ETag index
// (.ssec-proxy/etags/): an Options.Observer that also implements it
// (metrics.Metrics) is told.
type IndexObserver interface {
	// IndexWrite counts one finished write of an index entry.
	IndexWrite(ok bool)
	// SetIndexPending gives the function that says how many index
	// writes are started or queued and not finished; it is called at
	// each scrape, from any goroutine, and must be quick. A later call
	// replaces it; nil reports 0.
	SetIndexPending(func() int)
	// SetCleanupsPending gives the function that says how many clean-ups
	// of index entries (of overwritten and deleted objects) wait for
	// their sweep or are under way; the same rules as SetIndexPending.
	SetCleanupsPending(func() int)
}

func (s *Server) indexWrite(ok bool) {
	if io, is := s.obs.(IndexObserver); is {
		io.IndexWrite(ok)
	}
}

// clientETag finds the client ETag of an object whose upstream ETag is
// given: from the cache, else from the index. ok is false for objects not
// written through the proxy; they keep the upstream's ETag. fresh is for
// an answer that is recorded as another object's ETag (a copy's source):
// a cached "no entry" is not believed then, since another instance may
// have written the entry since, and a copy keeps what it is given.
func (s *Server) clientETag(ctx context.Context, ex *exchange, bucket, key, upstreamETag string, keys []*keystore.Key, fresh bool) (string, bool) {
	upstreamETag = unquote(upstreamETag)
	if upstreamETag == "" || len(keys) == 0 {
		return "", false
	}
	if v, known := s.etags.Get(bucket, upstreamETag); known && (v != "" || !fresh) {
		return v, v != ""
	}
	v, _, ok, err := s.index(ex).Lookup(ctx, bucket, key, upstreamETag, keys)
	if err != nil {
		s.logIndexError(ex, "reading", err.Error())
		return "", false
	}
	s.etags.Put(bucket, upstreamETag, v) // "": none
	return v, ok
}

type errIndex string

func (e errIndex) Error() string { return "etag index: " + string(e) }

func (s *Server) logIndexError(ex *exchange, what, why string) {
	s.log.Warn("etag index "+what+" failed; the upstream's ETag is used", zap.String("request_id", ex.id), zap.String("error", why))
}
