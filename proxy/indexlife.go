package proxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// Index entries live and die with their objects (issue 14). A delete
// through the proxy removes the deleted object's entries, an overwrite
// the entries of the object it replaced, both behind the client's wait;
// a DeleteBucket that finds only the proxy's own objects left removes
// them and deletes the bucket. In a versioned bucket entries stay: they
// describe versions that remain (index gc removes what no version uses).

// maxCleanups bounds the entry removals under way at once: more wait
// their turn (back-pressure, memory bounded), none is dropped.
const maxCleanups = 16

var cleanupSlots = make(chan struct{}, maxCleanups)

// underWay counts the index writes and clean-ups started and not
// finished, for DrainCleanups. (A sync.WaitGroup would not do: work is
// added while a drain waits, during a DeleteBucket or a test.)
var underWay struct {
	sync.Mutex
	n int
}

func startWork() {
	underWay.Lock()
	underWay.n++
	underWay.Unlock()
}

func endWork() {
	underWay.Lock()
	underWay.n--
	underWay.Unlock()
}

// DrainCleanups waits, up to ctx, for the index writes and clean-ups under
// way (SIGTERM; a DeleteBucket; tests).
func DrainCleanups(ctx context.Context) {
	for {
		underWay.Lock()
		n := underWay.n
		underWay.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// behind runs job after the client's answer, on an exchange of its own:
// at most maxCleanups at once in the process; one more waits for a slot
// (back-pressure: memory stays bounded however slow the upstream), none is
// dropped. DrainCleanups waits for them.
func (s *Server) behind(ex *exchange, job func(bg *exchange)) {
	startWork()
	cleanupSlots <- struct{}{}
	bg := &exchange{rt: ex.rt, id: ex.id}
	go func() {
		defer endWork()
		defer func() { <-cleanupSlots }()
		job(bg)
	}()
}

// keyWrites counts the index writes under way per bucket and key, so that
// a clean-up of a key's entries waits for them (else a delete right after
// a write could list before the write's entry lands, and leave it stale),
// and remembers the newest write of each key while a write or clean-up of
// it is under way: a clean-up that began before a newer write of its key
// was answered keeps that write's entry (else an overwrite's clean-up,
// run late, removes the entry of the overwrite after it).
type keyWrites struct {
	mu    sync.Mutex
	cond  *sync.Cond
	n     map[string]int       // entry writes under way
	users map[string]int       // writes and clean-ups under way: last is kept while any
	last  map[string]lastWrite // the newest write of the key
	seq   uint64
}

type lastWrite struct {
	seq          uint64
	upstreamETag string
}

func newKeyWrites() *keyWrites {
	w := &keyWrites{n: map[string]int{}, users: map[string]int{}, last: map[string]lastWrite{}}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// start: an entry write of k for the object of upstreamETag, answered now.
func (w *keyWrites) start(k, upstreamETag string) {
	w.mu.Lock()
	w.n[k]++
	w.users[k]++
	w.seq++
	w.last[k] = lastWrite{w.seq, upstreamETag}
	w.mu.Unlock()
}

func (w *keyWrites) done(k string) {
	w.mu.Lock()
	if w.n[k]--; w.n[k] <= 0 {
		delete(w.n, k)
	}
	w.release(k)
	w.cond.Broadcast()
	w.mu.Unlock()
}

// begin: a clean-up of k is answered now; it returns what keepOf needs.
func (w *keyWrites) begin(k string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.users[k]++
	return w.last[k].seq
}

// waitUntil waits for k's entry writes under way, until deadline.
func (w *keyWrites) waitUntil(k string, deadline time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n[k] == 0 {
		return
	}
	// A sync.Cond has no deadline: a timer wakes the waiters at it.
	t := time.AfterFunc(time.Until(deadline), func() {
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	defer t.Stop()
	for w.n[k] > 0 && time.Now().Before(deadline) {
		w.cond.Wait()
	}
}

// keepOf is the upstream ETag whose entry the clean-up of k that began at
// since keeps: its own keep, or that of a write of k answered after it
// began.
func (w *keyWrites) keepOf(k string, since uint64, keep string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if l, ok := w.last[k]; ok && l.seq > since {
		return l.upstreamETag
	}
	return keep
}

// finish: the clean-up of k is over.
func (w *keyWrites) finish(k string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.release(k)
}

func (w *keyWrites) release(k string) {
	if w.users[k]--; w.users[k] <= 0 {
		delete(w.users, k)
		delete(w.last, k)
	}
}

// versioned reports an answer from a versioned bucket.
func versioned(resp *http.Response) bool {
	return resp.Header.Get("X-Amz-Version-Id") != "" && resp.Header.Get("X-Amz-Version-Id") != "null"
}

// afterDelete removes the index entries of what a DeleteObject or
// DeleteObjects deleted, in buckets without versions.
func (s *Server) afterDelete(ex *exchange, p *plan, resp *http.Response) error {
	t := ex.target
	switch {
	case p.hooks&hookDeletes != 0 && p.hooks&hookDeleteKeys == 0 && resp.StatusCode == http.StatusNoContent && !versioned(resp) && p.req.Query.Get("versionId") == "":
		s.forgetEntries(ex, t.Bucket, t.Key, "")
	case p.hooks&hookDeleteKeys != 0 && resp.StatusCode == http.StatusOK:
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxDeleteBody+1))
		resp.Body.Close()
		if err != nil || len(body) > maxDeleteBody {
			return s3err.New(s3err.BadGateway, "reading the upstream's answer failed")
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var res struct {
			Deleted []struct {
				Key          string
				VersionID    string `xml:"VersionId"`
				DeleteMarker bool
			}
		}
		if xml.Unmarshal(body, &res) != nil {
			return nil
		}
		for _, d := range res.Deleted {
			if d.VersionID == "" && !d.DeleteMarker {
				s.forgetEntries(ex, t.Bucket, d.Key, "")
			}
		}
	}
	return nil
}

// deleteBucket runs a DeleteBucket: when the upstream says the bucket is
// not empty and what is left is only the proxy's own (index entries,
// upload records), those go and the bucket is deleted; a bucket with any
// object, version or upload of the user's stays BucketNotEmpty.
func (s *Server) deleteBucket(ctx context.Context, ex *exchange, p *plan) (*http.Response, error) {
	resp, err := s.send(ctx, p, ex)
	if err != nil || resp.StatusCode != http.StatusConflict {
		return resp, err
	}
	first, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(first))
	if !bytes.Contains(first, []byte("BucketNotEmpty")) {
		return resp, nil
	}
	// The clean-ups a purge's deletes left behind their wait come first
	// (they remove the same entries).
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	DrainCleanups(wctx)
	cancel()
	for try := 0; try < 3; try++ {
		own, userObjects, err := s.bucketContents(ctx, ex, ex.target.Bucket)
		if err != nil || userObjects {
			return resp, nil // the upstream's answer stands
		}
		for i := 0; i < len(own); i += 1000 {
			if err := s.deleteOwn(ctx, ex, ex.target.Bucket, own[i:min(i+1000, len(own))]); err != nil {
				s.log.Warn("removing the proxy's own objects of a bucket failed", zap.String("request_id", ex.id), zap.String("error", err.Error()))
				return resp, nil
			}
		}
		again, err := s.send(ctx, p, ex)
		if err != nil || again.StatusCode != http.StatusConflict {
			return again, err
		}
		// Still not empty: an upstream that settles a delete a moment
		// later (MinIO) is asked again.
		drain(again)
		time.Sleep(time.Duration(100<<try) * time.Millisecond)
	}
	return resp, nil
}

type objectVersion struct{ key, versionID string }

// maxOwnObjects bounds what a DeleteBucket removes of the proxy's own.
const maxOwnObjects = 1_000_000

// bucketContents lists every version of bucket: the proxy's own, and
// whether any other exists (then it stops).
func (s *Server) bucketContents(ctx context.Context, ex *exchange, bucket string) (own []objectVersion, user bool, err error) {
	q := url.Values{"versions": {""}, "max-keys": {"1000"}}
	for page := 0; page < maxOwnObjects/1000; page++ {
		ur := exemptRequest(http.MethodGet, target{Bucket: bucket}, q)
		resp, err := s.roundTrip(ctx, ex, ur, nil)
		if err != nil {
			return nil, false, err
		}
		var res struct {
			Entries []struct {
				Key       string
				VersionID string `xml:"VersionId"`
			} `xml:",any"`
			IsTruncated         bool
			NextKeyMarker       string
			NextVersionIDMarker string `xml:"NextVersionIdMarker"`
		}
		err = xml.NewDecoder(io.LimitReader(resp.Body, maxListingBody)).Decode(&res)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			return nil, false, s3err.New(s3err.BadGateway, "listing the bucket's versions failed (status %d)", resp.StatusCode)
		}
		for _, e := range res.Entries {
			if e.Key == "" {
				continue // not a Version or DeleteMarker
			}
			if !reservedKey(e.Key) {
				return nil, true, nil
			}
			own = append(own, objectVersion{e.Key, e.VersionID})
		}
		if !res.IsTruncated {
			return own, false, nil
		}
		q.Set("key-marker", res.NextKeyMarker)
		q.Set("version-id-marker", res.NextVersionIDMarker)
	}
	return nil, true, nil // more than it removes: the upstream's answer stands
}

// deleteOwn removes up to 1,000 of the proxy's own object versions.
func (s *Server) deleteOwn(ctx context.Context, ex *exchange, bucket string, objs []objectVersion) error {
	var b bytes.Buffer
	b.WriteString("<Delete><Quiet>true</Quiet>")
	for _, o := range objs {
		b.WriteString("<Object><Key>")
		_ = xml.EscapeText(&b, []byte(o.key))
		b.WriteString("</Key>")
		if o.versionID != "" && o.versionID != "null" {
			b.WriteString("<VersionId>")
			_ = xml.EscapeText(&b, []byte(o.versionID))
			b.WriteString("</VersionId>")
		}
		b.WriteString("</Object>")
	}
	b.WriteString("</Delete>")
	body := b.Bytes()
	h := http.Header{}
	h.Set("Content-Md5", contentMD5(body))
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	ur := &upstreamRequest{Method: http.MethodPost, Target: target{Bucket: bucket}, Query: url.Values{"delete": {""}}, Header: h,
		Body: bytes.NewReader(body), Length: int64(len(body)), Hash: sha256Hex(body)}
	ur.decide(exemptDecision)
	resp, err := s.roundTrip(ctx, ex, ur, nil)
	if err != nil {
		return err
	}
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(string(out), "<Error>") {
		return s3err.New(s3err.BadGateway, "the upstream refused to remove the proxy's own objects (status %d)", resp.StatusCode)
	}
	return nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func contentMD5(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}
