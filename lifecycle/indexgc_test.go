package lifecycle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
)

// TestIndexGC: entries whose object is gone or was overwritten (without the
// proxy), and the records of an upload that no longer exists, are stale;
// the dry run counts them and removes nothing, the run removes exactly
// them and nothing of the user's; a second run finds nothing.
func TestIndexGC(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	c := env.c
	bucket := "gc-" + string(hexRand(3))
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	opts := options(t, "", 0, rules(bucket, "ka"))
	k, err := opts.Keyring.Key("ka")
	if err != nil {
		t.Fatal(err)
	}
	put := func(name string, data []byte) string {
		t.Helper()
		info, err := c.PutObject(ctx, bucket, name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return info.ETag
	}
	entry := func(key, etag string) string {
		t.Helper()
		name := etagindex.EntryName(key, etag, etagindex.Seal(k, etag, "0123456789abcdef0123456789abcdef"))
		put(name, nil)
		return name
	}
	var want []string // the stale ones
	for _, key := range []string{"a", "b b", "c"} {
		name := entry(key, put(key, []byte(key)))
		switch key {
		case "a": // deleted without the proxy
			if err := c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			want = append(want, name)
		case "b b": // overwritten without the proxy
			put(key, []byte("other"))
			want = append(want, name)
		}
	}
	// An upload's record and a part record, of an upload that is gone.
	sum := sha256.Sum256([]byte("up\x00no-such-upload"))
	gone := hex.EncodeToString(sum[:])
	put(".ssec-proxy/uploads/"+gone, []byte("ssec-proxy upload key v1: ka"))
	put(".ssec-proxy/parts/"+gone+"/1 e s", nil)
	recordGrace = 0
	defer func() { recordGrace = 10 * time.Minute }()

	rep, err := IndexGC(ctx, opts, Target{Bucket: bucket}, true)
	if err != nil || rep.Entries != 3 || rep.Stale != 2 || rep.Records != 2 || rep.StaleRecords != 2 || rep.Removed != 0 {
		t.Fatalf("dry run: %+v (%v)", rep, err)
	}
	rep, err = IndexGC(ctx, opts, Target{Bucket: bucket}, false)
	if err != nil || rep.Removed != 4 {
		t.Fatalf("gc: %+v (%v)", rep, err)
	}
	var left []string
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		left = append(left, o.Key)
	}
	sort.Strings(left)
	for _, name := range append(want, ".ssec-proxy/uploads/"+gone) {
		for _, l := range left {
			if l == name {
				t.Errorf("%q is still there", name)
			}
		}
	}
	if len(left) != 3 { // "b b", "c" and c's entry
		t.Errorf("left after gc: %q", left)
	}
	rep, err = IndexGC(ctx, opts, Target{Bucket: bucket}, false)
	if err != nil || rep.Stale != 0 || rep.StaleRecords != 0 || rep.Removed != 0 {
		t.Errorf("a second run: %+v (%v)", rep, err)
	}
}
