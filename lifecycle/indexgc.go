package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"

	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
)

// GCReport is what IndexGC found and removed.
type GCReport struct {
	Target  Target
	DryRun  bool
	Entries int // ETag index entries under the target
	Stale   int // of them, entries no object or version with that upstream ETag uses
	// Records and StaleRecords count the upload and part records (of
	// every upload of the bucket) and those of uploads that no longer
	// exist.
	Records, StaleRecords int
	Removed               int // stale entries and records removed (0 in a dry run)
}

// gcBatch bounds the entries judged at once: memory stays at one batch of
// entries and the objects of their key range.
const gcBatch = 5000

// recordGrace spares records younger than this: their upload may be on
// its way to the listing.
var recordGrace = 10 * time.Minute

// IndexGC removes the ETag index entries under t whose object (or, in a
// versioned bucket, every version with that upstream ETag) is gone, and the
// upload and part records of uploads that no longer exist. It deletes
// nothing of the user's; with dryRun it only counts. A run can be stopped
// and started again: it looks at what is there, every time.
func IndexGC(ctx context.Context, opts Options, t Target, dryRun bool) (*GCReport, error) {
	c := opts.Client
	ix := indexOf(c)
	rep := &GCReport{Target: t, DryRun: dryRun}
	remove := func(name string) error {
		if dryRun {
			return nil
		}
		if err := ix.Objects.Remove(ctx, t.Bucket, []string{name}); err != nil {
			return fmt.Errorf("removing %s: %w", name, err)
		}
		rep.Removed++
		return nil
	}
	var batch []etagindex.Entry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		stale, err := staleEntries(ctx, c, t.Bucket, batch)
		if err != nil {
			return err
		}
		for _, e := range stale {
			rep.Stale++
			if err := remove(e.Name()); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	var judging error // of flush, not of the listing
	err := ix.Walk(ctx, t.Bucket, t.Prefix, func(e etagindex.Entry) error {
		rep.Entries++
		if batch = append(batch, e); len(batch) == gcBatch {
			judging = flush()
		}
		return judging
	})
	switch {
	case judging != nil:
		return rep, judging
	case err != nil:
		return rep, fmt.Errorf("listing the index: %w", err)
	}
	if err := flush(); err != nil {
		return rep, err
	}
	if t.Prefix != "" {
		return rep, nil // records are per bucket: a whole-bucket run judges them
	}
	live := map[string]bool{}
	for u := range c.ListIncompleteUploads(ctx, t.Bucket, "", true) {
		if u.Err != nil {
			return rep, fmt.Errorf("listing the uploads: %w", u.Err)
		}
		sum := sha256.Sum256([]byte(u.Key + "\x00" + u.UploadID))
		live[hex.EncodeToString(sum[:])] = true
	}
	for _, dir := range []string{etagindex.Reserved + "uploads/", etagindex.Reserved + "parts/"} {
		for o := range c.ListObjects(ctx, t.Bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: true}) {
			if o.Err != nil {
				return rep, fmt.Errorf("listing the records: %w", o.Err)
			}
			rep.Records++
			hash, _, _ := strings.Cut(strings.TrimPrefix(o.Key, dir), "/")
			if live[hash] || time.Since(o.LastModified) < recordGrace {
				continue
			}
			rep.StaleRecords++
			if err := remove(o.Key); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// staleEntries returns the entries (sorted by name) whose object has no
// version with their upstream ETag: one listing of the objects of the
// batch's key range.
func staleEntries(ctx context.Context, c *minio.Client, bucket string, entries []etagindex.Entry) ([]etagindex.Entry, error) {
	first, last := "", ""
	for i, e := range entries {
		if i == 0 || e.Key < first {
			first = e.Key
		}
		last = max(last, e.Key)
	}
	have := map[string]bool{} // key + " " + upstream ETag
	opts := minio.ListObjectsOptions{Recursive: true, WithVersions: true, StartAfter: before(first)}
	for o := range c.ListObjects(ctx, bucket, opts) {
		if o.Err != nil {
			return nil, fmt.Errorf("listing the objects: %w", o.Err)
		}
		if o.Key > last {
			break
		}
		if o.ETag != "" {
			have[o.Key+" "+strings.Trim(o.ETag, `"`)] = true
		}
	}
	var stale []etagindex.Entry
	for _, e := range entries {
		if !have[e.Key+" "+e.UpstreamETag] {
			stale = append(stale, e)
		}
	}
	return stale, nil
}

// before is a string that sorts just before key (a listing starts after
// it): key less its last character.
func before(key string) string {
	_, size := utf8.DecodeLastRuneInString(key)
	return key[:len(key)-size]
}

// WriteGCSummary writes what IndexGC did.
func (r *GCReport) WriteGCSummary(w io.Writer) error {
	verb := "removed"
	if r.DryRun {
		verb = "would be removed (dry run)"
	}
	_, err := fmt.Fprintf(w, "index gc %s\n  %d ETag index entries, %d stale\n  %d upload and part records, %d of uploads that no longer exist\n  %d %s\n",
		r.Target, r.Entries, r.Stale, r.Records, r.StaleRecords, map[bool]int{true: r.Stale + r.StaleRecords, false: r.Removed}[r.DryRun], verb)
	return err
}
