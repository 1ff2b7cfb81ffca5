package e2e

// Index entries live and die with their objects (issue 14, item 2), and a
// bucket emptied through the proxy can be deleted through it.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"

	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/lifecycle"
)

// entriesOf are the ETag index entries of bucket/key on MinIO.
func entriesOf(t *testing.T, bucket, key string) []string {
	t.Helper()
	return reservedUnder(t, bucket, ".ssec-proxy/etags/"+key+" ")
}

// eventually waits up to 10 s for cond (the clean-ups run behind the
// client's wait).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Errorf("after 10 s: %s", what)
}

func TestIndexEntriesFollowTheirObjects(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	c := sdk(t, true)
	prefix := uniqueKey(t, "indexlife/") + "/"
	put := func(key string, data []byte) {
		t.Helper()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("overwrite", func(t *testing.T) {
		k := prefix + "over"
		put(k, []byte("one"))
		put(k, []byte("two"))
		put(k, []byte("three"))
		eventually(t, "one entry left for an object written three times", func() bool { return len(entriesOf(t, "enc", k)) == 1 })
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String(k)})
		if err != nil || aws.ToString(h.ETag) != `"`+md5hex([]byte("three"))+`"` {
			t.Errorf("ETag after overwrites: %s (%v)", aws.ToString(h.ETag), err)
		}
	})
	t.Run("delete-object", func(t *testing.T) {
		k := prefix + "gone"
		put(k, []byte("x"))
		settle(t)
		if len(entriesOf(t, "enc", k)) != 1 {
			t.Fatal("no entry to remove")
		}
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("enc"), Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the deleted object's entry removed", func() bool { return len(entriesOf(t, "enc", k)) == 0 })
	})
	t.Run("delete-objects", func(t *testing.T) {
		ks := []string{prefix + "many-a", prefix + "many-b"}
		var ids []s3types.ObjectIdentifier
		for _, k := range ks {
			put(k, []byte(k))
			ids = append(ids, s3types.ObjectIdentifier{Key: aws.String(k)})
		}
		if _, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("enc"), Delete: &s3types.Delete{Objects: ids}}); err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			eventually(t, "the entry of "+k+" removed", func() bool { return len(entriesOf(t, "enc", k)) == 0 })
		}
	})
}

// emptyBucketWithEntries makes a bucket on MinIO and writes files under
// star/ (the "*" rule) through the proxy, so that it holds index entries.
func emptyBucketWithEntries(t *testing.T, name string) []byte {
	t.Helper()
	if err := direct(t).MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(3000)
	mc := viaProxy(t, true)
	for _, k := range []string{"star/a", "star/b/c"} {
		if _, err := mc.PutObject(context.Background(), name, k, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	settle(t)
	if n := len(reservedUnder(t, name, ".ssec-proxy/")); n != 2 {
		t.Fatalf("%d of the proxy's own objects, want 2 entries", n)
	}
	return data
}

// versionETag is the ETag a client reads through the proxy of a version
// of bucket/key ("": the current one).
func versionETag(t *testing.T, bucket, key, version string) string {
	t.Helper()
	st, err := viaProxy(t, true).StatObject(context.Background(), bucket, key, minio.StatObjectOptions{VersionID: version})
	if err != nil {
		t.Fatalf("stat version %q of %s: %v", version, key, err)
	}
	return st.ETag
}

func bucketGone(t *testing.T, name string) bool {
	ok, err := direct(t).BucketExists(context.Background(), name)
	return err == nil && !ok
}

func TestDeleteBucketThroughTheProxy(t *testing.T) {
	buckets(t)
	t.Run("aws-s3-rb-force", func(t *testing.T) {
		aws := find(t, program{name: "debian-awscli", path: "/usr/bin/aws", debian: true})
		name := "rbx-" + strings.ToLower(string(hexRand(3)))
		emptyBucketWithEntries(t, name)
		runProgram(t, clientEnv(t), aws, "--endpoint-url="+env.httpsURL, "s3", "rb", "--force", "s3://"+name)
		if !bucketGone(t, name) {
			t.Errorf("aws s3 rb --force left %s", name)
		}
	})
	t.Run("rclone-purge", func(t *testing.T) {
		rclone := find(t, program{name: "rclone", path: "/usr/bin/rclone", debian: true})
		name := "purgex-" + strings.ToLower(string(hexRand(3)))
		emptyBucketWithEntries(t, name)
		runAll(t, rcloneEnv(t), rclone, "purge", "ssec:"+name, "--ca-cert", env.caFile, "--retries", "1")
		if !bucketGone(t, name) {
			t.Errorf("rclone purge left %s", name)
		}
	})
	t.Run("user-object-left", func(t *testing.T) {
		name := "keepx-" + strings.ToLower(string(hexRand(3)))
		emptyBucketWithEntries(t, name)
		dir := t.TempDir()
		_ = os.WriteFile(filepath.Join(dir, "x"), []byte("x"), 0o600)
		if _, err := direct(t).PutObject(context.Background(), name, "user-object", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		r := newRaw("DELETE", "/"+name, nil)
		r.signClient(env.httpURL, emptyHash)
		wantError(t, send(t, env.httpURL, r), 409, "BucketNotEmpty")
		if n := len(reservedUnder(t, name, ".ssec-proxy/")); n != 2 {
			t.Errorf("the proxy's entries were touched: %d left, want 2", n)
		}
	})
}

// TestIndexEntriesInAVersionedBucket: in a versioned bucket an overwrite
// or a delete leaves the older versions, and their entries stay: each
// version read by its id answers its own MD5. An entry goes (index gc)
// only when no version it describes remains.
func TestIndexEntriesInAVersionedBucket(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	bucket := newBucket(t, "ver-", true)
	mc := viaProxy(t, true)
	const k = "star/v"
	var ids []string
	for _, data := range []string{"one", "two"} {
		info, err := mc.PutObject(ctx, bucket, k, strings.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		if err != nil || info.VersionID == "" {
			t.Fatalf("put %s: version %q, %v", data, info.VersionID, err)
		}
		ids = append(ids, info.VersionID)
	}
	settle(t)
	if n := len(entriesOf(t, bucket, k)); n != 2 {
		t.Fatalf("%d entries for two versions, want 2", n)
	}
	etagOf := func(version string) string { t.Helper(); return versionETag(t, bucket, k, version) }
	if etagOf(ids[0]) != md5hex([]byte("one")) || etagOf(ids[1]) != md5hex([]byte("two")) {
		t.Errorf("versions' ETags %s, %s; want the MD5s of their data", etagOf(ids[0]), etagOf(ids[1]))
	}
	ring, _, err := keystore.Build(env.cfg)
	if err != nil {
		t.Fatal(err)
	}
	client, err := lifecycle.NewClient(env.cfg.Upstream)
	if err != nil {
		t.Fatal(err)
	}
	gc := func() *lifecycle.GCReport {
		t.Helper()
		rep, err := lifecycle.IndexGC(ctx, lifecycle.Options{Client: client, Keyring: ring}, lifecycle.Target{Bucket: bucket}, false)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	// A delete marker hides the object; both versions remain, and so do
	// their entries.
	if err := mc.RemoveObject(ctx, bucket, k, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	settle(t)
	if rep := gc(); rep.Stale != 0 || len(entriesOf(t, bucket, k)) != 2 {
		t.Errorf("after a delete marker: gc removed %d, %d entries left; want 0 and 2", rep.Stale, len(entriesOf(t, bucket, k)))
	}
	// The newer version deleted: its entry goes, the older one's stays.
	if err := mc.RemoveObject(ctx, bucket, k, minio.RemoveObjectOptions{VersionID: ids[1]}); err != nil {
		t.Fatal(err)
	}
	settle(t)
	if rep := gc(); rep.Stale != 1 || len(entriesOf(t, bucket, k)) != 1 {
		t.Errorf("after deleting version two: gc removed %d, %d entries left; want 1 and 1", rep.Stale, len(entriesOf(t, bucket, k)))
	}
	if etagOf(ids[0]) != md5hex([]byte("one")) {
		t.Errorf("version one's ETag %s after the clean-up", etagOf(ids[0]))
	}
	// The last version deleted: no entry left.
	if err := mc.RemoveObject(ctx, bucket, k, minio.RemoveObjectOptions{VersionID: ids[0]}); err != nil {
		t.Fatal(err)
	}
	settle(t)
	if rep := gc(); rep.Stale != 1 || len(entriesOf(t, bucket, k)) != 0 {
		t.Errorf("after deleting the last version: gc removed %d, %d entries left; want 1 and 0", rep.Stale, len(entriesOf(t, bucket, k)))
	}
}

// TestLifecycleRulesThroughTheProxy: against MinIO, a lifecycle rule that
// would expire the proxy's own objects is refused and MinIO keeps no
// rule; one that cannot reach them is stored as sent.
func TestLifecycleRulesThroughTheProxy(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	bucket := newBucket(t, "lc-", false)
	c := sdk(t, true)
	put := func(prefix string) error {
		_, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
			Bucket: aws.String(bucket),
			LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{{
				ID: aws.String("r"), Status: s3types.ExpirationStatusEnabled,
				Filter:     &s3types.LifecycleRuleFilter{Prefix: aws.String(prefix)},
				Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(30)},
			}}},
		})
		return err
	}
	if err := put(".ssec-proxy/etags/"); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("a rule over the index: %v, want AccessDenied", err)
	}
	if lc, err := direct(t).GetBucketLifecycle(ctx, bucket); err == nil && lc != nil && len(lc.Rules) > 0 {
		t.Errorf("MinIO holds the refused rule: %+v", lc.Rules)
	}
	if err := put("logs/"); err != nil {
		t.Fatalf("a rule over logs/: %v", err)
	}
	lc, err := direct(t).GetBucketLifecycle(ctx, bucket)
	if err != nil || len(lc.Rules) != 1 || lc.Rules[0].RuleFilter.Prefix != "logs/" {
		t.Errorf("MinIO's rules after a rule over logs/: %+v (%v)", lc, err)
	}
}

// indexRequests counts the upstream requests a proxy makes for the ETag
// index's clean-ups: listings under it, listings of the user's objects
// (of their versions), DeleteObjects, and DeleteObject of one of its
// entries.
type indexRequests struct {
	next                                   http.RoundTripper
	lists, objectLists, multiDeletes, dels atomic.Int32
}

func (c *indexRequests) RoundTrip(r *http.Request) (*http.Response, error) {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && q.Has("list-type") && strings.HasPrefix(q.Get("prefix"), ".ssec-proxy/etags/"):
		c.lists.Add(1)
	case r.Method == http.MethodGet && (q.Has("list-type") || q.Has("versions")):
		c.objectLists.Add(1)
	case r.Method == http.MethodPost && q.Has("delete"):
		c.multiDeletes.Add(1)
	case r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/.ssec-proxy/"):
		c.dels.Add(1)
	}
	return c.next.RoundTrip(r)
}

// TestCleanupsShareListings: the clean-ups of many deletes and overwrites
// answered together are swept together, on MinIO: a DeleteObjects of 60
// keys costs one listing of the index, one of the objects and one
// DeleteObjects of its entries (it cost 60 listings and 60 DELETEs when
// each object's clean-up ran on its own), and overwrites by 8 clients at
// once, three per key, leave each key exactly the entry of its last write.
func TestCleanupsShareListings(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	count := &indexRequests{}
	base, _ := startProxyWith(t, nil, nil, func(next http.RoundTripper) http.RoundTripper { count.next = next; return count })
	mc := minioClient(t, base)
	prefix := uniqueKey(t, "sweep/") + "/"
	const n = 60
	key := func(i int) string { return fmt.Sprintf("%s%03d", prefix, i) }
	data := func(i, round int) []byte { return []byte(fmt.Sprintf("object %d, write %d", i, round)) }

	// 8 clients, each key written three times in a row by one of them.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				for round := range 3 {
					b := data(i, round)
					if _, err := mc.PutObject(ctx, "enc", key(i), bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	settle(t)
	if got := len(reservedUnder(t, "enc", ".ssec-proxy/etags/"+prefix)); got != n {
		t.Errorf("%d entries for %d objects written three times each, want one each", got, n)
	}
	for i := range n {
		st, err := mc.StatObject(ctx, "enc", key(i), minio.StatObjectOptions{})
		if err != nil || st.ETag != md5hex(data(i, 2)) {
			t.Fatalf("%s: ETag %q (%v), want the MD5 of its last write", key(i), st.ETag, err)
		}
	}

	count.lists.Store(0)
	count.objectLists.Store(0)
	count.multiDeletes.Store(0)
	count.dels.Store(0)
	objs := make(chan minio.ObjectInfo, n)
	for i := range n {
		objs <- minio.ObjectInfo{Key: key(i)}
	}
	close(objs)
	for e := range mc.RemoveObjects(ctx, "enc", objs, minio.RemoveObjectsOptions{}) {
		t.Fatalf("removing %s: %v", e.ObjectName, e.Err)
	}
	settle(t)
	if got := len(reservedUnder(t, "enc", ".ssec-proxy/etags/"+prefix)); got != 0 {
		t.Errorf("%d entries left after the objects were deleted", got)
	}
	// The client's own DeleteObjects is one of the multi-deletes counted.
	if l, o, m, d := count.lists.Load(), count.objectLists.Load(), count.multiDeletes.Load(), count.dels.Load(); l > 2 || o > 2 || m > 3 || d != 0 {
		t.Errorf("the clean-ups of one DeleteObjects of %d keys: %d index listings, %d object listings, %d DeleteObjects (the client's included), %d DeleteObject; want at most 2, 2, 3, 0", n, l, o, m, d)
	}
}

// TestCleanupsAcrossInstances: an object written through one instance and
// overwritten through another before the first one's clean-up ran keeps
// the entry of its last write: a clean-up removes only entries whose
// object is no longer current (each instance knows only its own writes).
func TestCleanupsAcrossInstances(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	a, _ := startProxy(t, nil)
	b, _ := startProxy(t, nil)
	ca, cb := minioClient(t, a), minioClient(t, b)
	prefix := uniqueKey(t, "across/") + "/"
	for i := range 10 {
		k := fmt.Sprintf("%s%d", prefix, i)
		first, last := []byte("through a "+k), []byte("then through b "+k)
		if _, err := ca.PutObject(ctx, "enc", k, bytes.NewReader(first), int64(len(first)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cb.PutObject(ctx, "enc", k, bytes.NewReader(last), int64(len(last)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	settle(t)
	time.Sleep(etagindex.NoneTTL) // a's "no entry" of b's writes, if it looked (it does not here)
	for i := range 10 {
		k := fmt.Sprintf("%s%d", prefix, i)
		want := md5hex([]byte("then through b " + k))
		if es := entriesOf(t, "enc", k); len(es) != 1 {
			t.Errorf("%s: %d entries, want the last write's", k, len(es))
		}
		for _, c := range []*minio.Client{ca, cb} {
			if st, err := c.StatObject(ctx, "enc", k, minio.StatObjectOptions{}); err != nil || st.ETag != want {
				t.Errorf("%s: ETag %q (%v), want %s", k, st.ETag, err, want)
			}
		}
	}
}

// TestCleanupOfAControlCharacterKey: a key with a control character (XML
// cannot carry it, so the index is listed URL-encoded) has its entry
// removed with its object, and does not keep the clean-up of the keys
// around it, which share its listing, from running.
func TestCleanupOfAControlCharacterKey(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	mc := viaProxy(t, true)
	prefix := uniqueKey(t, "ctl/") + "/"
	keys := []string{prefix + "a", prefix + "b\x01c", prefix + "d"}
	objs := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		if _, err := mc.PutObject(ctx, "enc", k, bytes.NewReader([]byte(k)), int64(len(k)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
		objs <- minio.ObjectInfo{Key: k}
	}
	close(objs)
	settle(t)
	if got := len(reservedUnder(t, "enc", ".ssec-proxy/etags/"+prefix)); got != len(keys) {
		t.Fatalf("%d entries, want %d", got, len(keys))
	}
	st, err := mc.StatObject(ctx, "enc", keys[1], minio.StatObjectOptions{})
	if err != nil || st.ETag != md5hex([]byte(keys[1])) {
		t.Errorf("the control-character key's ETag %q (%v), want its MD5", st.ETag, err)
	}
	for e := range mc.RemoveObjects(ctx, "enc", objs, minio.RemoveObjectsOptions{}) {
		t.Fatalf("removing %q: %v", e.ObjectName, e.Err)
	}
	settle(t)
	if left := reservedUnder(t, "enc", ".ssec-proxy/etags/"+prefix); len(left) != 0 {
		t.Errorf("entries left after their objects were deleted: %q", left)
	}
}

// TestIndexEntriesWithVersioningSuspended: with versioning suspended, an
// overwrite or a delete answers version "null" and its clean-up runs, but
// the versions made before the suspension remain, and so must their
// entries: a clean-up removes only entries whose ETag no version has.
func TestIndexEntriesWithVersioningSuspended(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	bucket := newBucket(t, "susp-", true)
	mc := viaProxy(t, true)
	const k = "star/s"
	put := func(data string) string {
		t.Helper()
		info, err := mc.PutObject(ctx, bucket, k, strings.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		if err != nil {
			t.Fatalf("put %s: %v", data, err)
		}
		return info.VersionID
	}
	v1 := put("one")
	if err := direct(t).SuspendVersioning(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	put("two") // the "null" version
	settle(t)
	if n := len(entriesOf(t, bucket, k)); n != 2 {
		t.Errorf("%d entries after an overwrite with versioning suspended, want both versions'", n)
	}
	etagOf := func(version string) string { t.Helper(); return versionETag(t, bucket, k, version) }
	if got := etagOf(v1); got != md5hex([]byte("one")) {
		t.Errorf("version one's ETag %s, want its MD5", got)
	}
	if got := etagOf(""); got != md5hex([]byte("two")) {
		t.Errorf("the current version's ETag %s, want its MD5", got)
	}
	// A delete: a "null" delete marker takes the place of version two;
	// version one remains, and so does its entry.
	if err := mc.RemoveObject(ctx, bucket, k, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	settle(t)
	if es := entriesOf(t, bucket, k); len(es) != 1 {
		t.Errorf("%d entries after the delete, want version one's", len(es))
	}
	if got := etagOf(v1); got != md5hex([]byte("one")) {
		t.Errorf("version one's ETag %s after the delete, want its MD5", got)
	}
}

// TestCleanupOfAKeyWithManyVersions: a key with more versions than the
// clean-up's listing page holds (100 when it is listed on its own) keeps
// the entries of the versions it did not see: a clean-up removes nothing
// of a key it could not judge whole.
func TestCleanupOfAKeyWithManyVersions(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	bucket := newBucket(t, "many-", true)
	mc := viaProxy(t, true)
	const k = "star/m"
	var first string
	for i := range 120 {
		data := fmt.Sprintf("version %d", i)
		info, err := mc.PutObject(ctx, bucket, k, strings.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = info.VersionID
		}
	}
	if err := direct(t).SuspendVersioning(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.PutObject(ctx, bucket, k, strings.NewReader("null"), 4, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	settle(t)
	if n := len(entriesOf(t, bucket, k)); n != 121 {
		t.Errorf("%d entries for 121 versions, want 121", n)
	}
	other, _ := startProxy(t, nil) // no cache of the entries
	st, err := minioClient(t, other).StatObject(ctx, bucket, k, minio.StatObjectOptions{VersionID: first})
	if err != nil || st.ETag != md5hex([]byte("version 0")) {
		t.Errorf("the oldest version's ETag %q (%v), want its MD5", st.ETag, err)
	}
}
