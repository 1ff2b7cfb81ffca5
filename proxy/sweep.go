package proxy

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
)

// The clean-ups of index entries (indexlife.go) are swept together: those
// answered within sweepWindow of each other share their listings
// (etagindex.EntriesOf; the objects' versions, for etagindex.Stale) and a
// DeleteObjects per chunk of sweepChunk keys. A backup tool that writes or
// deletes many keys in order then costs a few requests per window, not
// one listing per object: a PUT with MD5 ETags is two upstream requests
// (the object and its entry), a DELETE about one.

// sweepWindow is how long a clean-up waits for others to share its
// listing. It is behind the client's answer: what it delays is only when
// a stale entry goes (DrainCleanups waits for it).
const sweepWindow = 100 * time.Millisecond

// maxSweep is the most clean-ups one sweep takes: that many pending are
// swept at once, without waiting for the window.
const maxSweep = 1000

// sweepChunk is the most keys of a bucket one listing run takes: the
// chunks of a sweep run side by side, each on a cleanup slot of its own
// and with a deadline of its own (keys far apart cost two listings each).
const sweepChunk = 100

// maxForgets bounds the clean-ups waiting or under way in the process: one
// more holds its request's answer until there is room (back-pressure:
// memory stays bounded however slow the upstream), none is dropped.
const maxForgets = 10_000

var forgetSlots = make(chan struct{}, maxForgets)

// forget is one clean-up: the entries of bucket/key but keep's (an
// upstream ETag; "" removes them all), as of the write tracker's since.
type forget struct {
	rt                *runtime
	id                string
	bucket, key, keep string
	since             uint64
}

// sweeper holds the clean-ups of the coming sweep.
type sweeper struct {
	mu      sync.Mutex
	pending []forget
}

// forgetEntries removes, behind the client's wait, the index entries of
// bucket/key other than the one of keep ("" removes them all).
func (s *Server) forgetEntries(ex *exchange, bucket, key, keep string) {
	if !ex.rt.md5ETags || key == "" || reservedKey(key) {
		return
	}
	forgetSlots <- struct{}{}
	startWork()
	f := forget{rt: ex.rt, id: ex.id, bucket: bucket, key: key, keep: keep, since: s.writes.begin(bucket + "\x00" + key)}
	s.sweep.mu.Lock()
	s.sweep.pending = append(s.sweep.pending, f)
	var full []forget
	switch len(s.sweep.pending) {
	case 1:
		time.AfterFunc(sweepWindow, s.sweepPending)
	case maxSweep:
		full, s.sweep.pending = s.sweep.pending, nil
	}
	s.sweep.mu.Unlock()
	if full != nil {
		go s.sweepNow(full)
	}
}

// sweepBucket removes the stale entries of keys of bucket. It lists their
// entries; those a clean-up would remove (each keeps the entry of the
// newest write of its key this instance answered since it began) are
// checked against the objects' versions as listed after them
// (etagindex.Stale): an entry that a version still has stays, whichever
// instance wrote it (another instance's overwrite answered after this
// one's; a version from before versioning was suspended), and a clean-up
// that finds nothing to remove lists no objects (a new key).
func (s *Server) sweepBucket(ctx context.Context, ex *exchange, bucket string, keys []string, byKey map[string][]forget) error {
	ix := s.index(ex)
	entries, err := ix.EntriesOf(ctx, bucket, keys)
	seen := map[string]bool{}
	var maybe []etagindex.Entry
	var of []string
	for _, e := range entries {
		if seen[e.Name()] {
			continue
		}
		seen[e.Name()] = true
		for _, f := range byKey[e.Key] {
			if e.UpstreamETag != s.writes.keepOf(bucket+"\x00"+f.key, f.since, f.keep) {
				maybe = append(maybe, e)
				of = append(of, e.Key)
				break
			}
		}
	}
	if len(maybe) == 0 {
		return err
	}
	versions, partial, cerr := s.versionETags(ctx, ex, bucket, of)
	if cerr != nil {
		return errors.Join(err, cerr) // nothing removed on a doubt
	}
	maybe = slices.DeleteFunc(maybe, func(e etagindex.Entry) bool { return partial[e.Key] }) // nor here
	if stale := etagindex.Stale(maybe, versions); len(stale) > 0 {
		return errors.Join(err, ix.Remove(ctx, bucket, stale...))
	}
	return err
}

// versionETags lists the versions of the objects of keys in bucket
// (etagindex.Runs over ListObjectVersions; a bucket without versions has
// one each): the upstream ETags of each key's versions; an object not
// there has none. partial names the keys whose versions it did not all
// see (more than a page holds: the last key of a truncated page, never
// listed whole after it), which cannot be judged.
func (s *Server) versionETags(ctx context.Context, ex *exchange, bucket string, keys []string) (etags map[string]map[string]bool, partial map[string]bool, err error) {
	etags, partial = map[string]map[string]bool{}, map[string]bool{}
	whole := map[string]bool{}
	r := etagindex.Runs{
		After: func(k string) string { // k less its last character: before k, after every key before k
			_, n := utf8.DecodeLastRuneInString(k)
			return k[:len(k)-n]
		},
		End:   func(k string) string { return k },
		Owner: func(name string) (string, bool) { return name, !reservedKey(name) },
		Alone: func(k string) etagindex.ListOptions {
			return etagindex.ListOptions{Prefix: k, MaxKeys: 100, MaxPages: 1}
		},
	}
	list := func(ctx context.Context, opts etagindex.ListOptions, fn func(string) bool) (bool, error) {
		// URL-encoded: keys with characters XML cannot hold.
		q := url.Values{"versions": {""}, "prefix": {opts.Prefix}, "encoding-type": {"url"}}
		if opts.StartAfter != "" {
			q.Set("key-marker", opts.StartAfter) // after it, as start-after
		}
		if opts.MaxKeys > 0 {
			q.Set("max-keys", strconv.Itoa(opts.MaxKeys))
		}
		res, err := s.listingPage(ctx, ex, bucket, q)
		if err != nil {
			return false, err
		}
		// Every page starts before a key's first version: a key's
		// versions in it are all of them, but for the page's last name
		// when it is truncated.
		end := ""
		if n := len(res.objects); n > 0 {
			end = res.objects[n-1].key
		}
		if n := len(res.reserved); n > 0 {
			end = max(end, res.reserved[n-1])
		}
		for _, o := range res.objects {
			if res.truncated && o.key == end {
				partial[o.key] = true
			} else {
				whole[o.key] = true
			}
		}
		// Every name of the page, in order (the index's too: they move
		// the page's end on), each once: a key's versions follow each
		// other.
		i, j, prev := 0, 0, ""
		for i < len(res.objects) || j < len(res.reserved) {
			var name string
			if j >= len(res.reserved) || i < len(res.objects) && res.objects[i].key < res.reserved[j] {
				name = res.objects[i].key
				if up := unquote(res.objects[i].etag); up != "" { // a delete marker has none
					if etags[name] == nil {
						etags[name] = map[string]bool{}
					}
					etags[name][up] = true
				}
				i++
			} else {
				name, j = res.reserved[j], j+1
			}
			if name == prev {
				continue
			}
			prev = name
			if !fn(name) {
				return false, nil
			}
		}
		return res.truncated, nil
	}
	err = r.List(ctx, keys, list, func(string, string) {})
	for k := range whole {
		delete(partial, k)
	}
	return etags, partial, err
}

// sweepPending sweeps what is pending (the window of its first is over).
func (s *Server) sweepPending() {
	s.sweep.mu.Lock()
	fs := s.sweep.pending
	s.sweep.pending = nil
	s.sweep.mu.Unlock()
	if len(fs) > 0 {
		s.sweepNow(fs)
	}
}

// writesWait bounds how long a sweep waits for this instance's entry
// writes of a key (one that is written again and again may always have
// one under way): past it the sweep goes on (an entry that lands after
// the listing is left for index gc; none is removed that is current).
const writesWait = 10 * time.Second

// sweepNow runs clean-ups: per bucket (and config) and chunk of
// sweepChunk neighbouring keys, side by side, after this instance's entry
// writes of their keys (else a delete right after a write could list
// before the write's entry lands, and leave it stale), a sweepBucket on a
// cleanup slot. A chunk's clean-ups end with it: a slow key holds only its
// own chunk.
func (s *Server) sweepNow(fs []forget) {
	type group struct {
		rt     *runtime
		bucket string
	}
	groups := map[group]map[string][]forget{}
	for _, f := range fs {
		g := group{f.rt, f.bucket}
		if groups[g] == nil {
			groups[g] = map[string][]forget{}
		}
		groups[g][f.key] = append(groups[g][f.key], f)
	}
	for g, byKey := range groups {
		keys := slices.Sorted(maps.Keys(byKey))
		for i := 0; i < len(keys); i += sweepChunk {
			chunk := keys[i:min(i+sweepChunk, len(keys))]
			go func() {
				deadline := time.Now().Add(writesWait)
				for _, k := range chunk {
					s.writes.waitUntil(g.bucket+"\x00"+k, deadline) // no slot held: the writes may need one
				}
				cleanupSlots <- struct{}{}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				ex := &exchange{rt: g.rt, id: byKey[chunk[0]][0].id}
				if err := s.sweepBucket(ctx, ex, g.bucket, chunk, byKey); err != nil {
					s.logIndexError(ex, "cleaning", err.Error())
				}
				cancel()
				<-cleanupSlots
				for _, k := range chunk {
					for range byKey[k] {
						s.writes.finish(g.bucket + "\x00" + k)
						<-forgetSlots // before endWork: drained means no slot held
						endWork()
					}
				}
			}()
		}
	}
}
