package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"

	"github.com/ssec-proxy/ssec-proxy/config"
)

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// Every response for an object written through the proxy carries the ETag
// an unencrypted S3 would have given: PUT, GET, HEAD and the listings.
func TestETagsAreMD5(t *testing.T) {
	buckets(t)
	c := sdk(t, true)
	ctx := context.Background()
	prefix := uniqueKey(t, "etag/") + "/"
	data := randomBytes(100_000)
	want := `"` + md5hex(data) + `"`
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "one"), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(put.ETag) != want {
		t.Errorf("PUT ETag %s, want %s", aws.ToString(put.ETag), want)
	}
	// On MinIO the ETag is not the MD5.
	st, err := direct(t).StatObject(ctx, "enc", prefix+"one", minio.StatObjectOptions{ServerSideEncryption: ssec(t, "k1")})
	if err != nil || `"`+st.ETag+`"` == want {
		t.Fatalf("upstream ETag %q (err %v): the test needs SSE-C ETags that differ from the MD5", st.ETag, err)
	}
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "one")})
	if err != nil || aws.ToString(h.ETag) != want {
		t.Errorf("HEAD ETag %s (%v), want %s", aws.ToString(h.ETag), err, want)
	}
	g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "one"), Range: aws.String("bytes=0-9")})
	if err != nil || aws.ToString(g.ETag) != want {
		t.Errorf("ranged GET ETag %s (%v), want %s", aws.ToString(g.ETag), err, want)
	}
	if g != nil {
		g.Body.Close()
	}

	// A multipart object: md5 of the part MD5s, dash, count.
	parts := [][]byte{randomBytes(5 << 20), randomBytes(777)}
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "multi")})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	h5 := md5.New()
	for i, p := range parts {
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "multi"), UploadId: cr.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(up.ETag) != `"`+md5hex(p)+`"` {
			t.Errorf("part %d ETag %s, want its MD5", i+1, aws.ToString(up.ETag))
		}
		s := md5.Sum(p)
		h5.Write(s[:])
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag})
	}
	wantMulti := `"` + hex.EncodeToString(h5.Sum(nil)) + `-2"`
	co, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "multi"),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		t.Fatalf("complete: %v", err)
	}
	if aws.ToString(co.ETag) != wantMulti {
		t.Errorf("Complete ETag %s, want %s", aws.ToString(co.ETag), wantMulti)
	}
	assertEncrypted(t, "enc", prefix+"multi", "k1", bytes.Join(parts, nil))

	// A copy has its source's ETag.
	cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "copy"), CopySource: aws.String("enc/" + prefix + "one")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(cp.CopyObjectResult.ETag) != want {
		t.Errorf("copy ETag %s, want %s", aws.ToString(cp.CopyObjectResult.ETag), want)
	}

	// Listings: V2, V1, versions — and no trace of the index.
	wantByKey := map[string]string{prefix + "one": want, prefix + "multi": wantMulti, prefix + "copy": want}
	l2, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("enc"), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	checkList := func(name string, keys, etags []string) {
		t.Helper()
		if len(keys) != len(wantByKey) {
			t.Errorf("%s: %d entries, want %d: %v", name, len(keys), len(wantByKey), keys)
		}
		for i, k := range keys {
			if wantByKey[k] != etags[i] {
				t.Errorf("%s: %s has ETag %s, want %s", name, k, etags[i], wantByKey[k])
			}
		}
	}
	var keys, etags []string
	for _, o := range l2.Contents {
		keys, etags = append(keys, aws.ToString(o.Key)), append(etags, aws.ToString(o.ETag))
	}
	checkList("ListObjectsV2", keys, etags)
	if aws.ToInt32(l2.KeyCount) != 3 {
		t.Errorf("KeyCount %d, want 3", aws.ToInt32(l2.KeyCount))
	}
	l1, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("enc"), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	keys, etags = nil, nil
	for _, o := range l1.Contents {
		keys, etags = append(keys, aws.ToString(o.Key)), append(etags, aws.ToString(o.ETag))
	}
	checkList("ListObjects", keys, etags)
	lv, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("enc"), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	keys, etags = nil, nil
	for _, o := range lv.Versions {
		keys, etags = append(keys, aws.ToString(o.Key)), append(etags, aws.ToString(o.ETag))
	}
	checkList("ListObjectVersions", keys, etags)
	top, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("enc"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range top.CommonPrefixes {
		if strings.HasPrefix(aws.ToString(p.Prefix), ".ssec-proxy") {
			t.Errorf("the ETag index shows in a listing: %s", aws.ToString(p.Prefix))
		}
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(".ssec-proxy/etags/x")}); apiCode(err) != "AccessDenied" {
		t.Errorf("reading the index through the proxy: %v, want AccessDenied", err)
	}

	// Conditions speak of the client's ETags.
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "one"), IfMatch: aws.String(want)}); err != nil {
		t.Errorf("If-Match with the MD5 ETag: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "one"), IfMatch: aws.String(`"` + st.ETag + `"`)}); apiCode(err) != "PreconditionFailed" {
		t.Errorf("If-Match with the upstream's ETag: %v, want PreconditionFailed", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "one"), IfNoneMatch: aws.String(want)}); err == nil || !strings.Contains(err.Error(), "304") {
		t.Errorf("If-None-Match with the MD5 ETag: %v, want 304 Not Modified", err)
	}
	wantByKey[prefix+"copy2"] = want
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "copy2"), CopySource: aws.String("enc/" + prefix + "one"), CopySourceIfMatch: aws.String(want)})
	if err != nil {
		t.Errorf("copy with x-amz-copy-source-if-match of the MD5 ETag: %v", err)
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "copy3"), CopySource: aws.String("enc/" + prefix + "one"), CopySourceIfMatch: aws.String(`"nope"`)})
	if apiCode(err) != "PreconditionFailed" {
		t.Errorf("copy with a failing source condition: %v, want PreconditionFailed", err)
	}

	// Another proxy instance (its own, empty cache) finds the same ETags in
	// the index kept in the bucket.
	settle(t) // the entries are written behind the first instance's answers
	other := minioClient(t, env.streamURL)
	ost, err := other.StatObject(ctx, "enc", prefix+"multi", minio.StatObjectOptions{})
	if err != nil || `"`+ost.ETag+`"` != wantMulti {
		t.Errorf("another instance's HEAD: ETag %q (%v), want %s", ost.ETag, err, wantMulti)
	}
	n := 0
	for o := range other.ListObjects(ctx, "enc", minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if `"`+o.ETag+`"` != wantByKey[o.Key] {
			t.Errorf("another instance's listing: %s has %q, want %s", o.Key, o.ETag, wantByKey[o.Key])
		}
		n++
	}
	if n != 4 { // one, multi, copy, copy2
		t.Errorf("another instance listed %d objects, want 4", n)
	}

	// Objects written without the proxy keep the upstream's ETag.
	if _, err := direct(t).PutObject(ctx, "enc", prefix+"direct", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ServerSideEncryption: ssec(t, "k1")}); err != nil {
		t.Fatal(err)
	}
	dst, _ := direct(t).StatObject(ctx, "enc", prefix+"direct", minio.StatObjectOptions{ServerSideEncryption: ssec(t, "k1")})
	hd, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "direct")})
	if err != nil || aws.ToString(hd.ETag) != `"`+dst.ETag+`"` {
		t.Errorf("object written without the proxy: ETag %s, want the upstream's %s", aws.ToString(hd.ETag), dst.ETag)
	}
	r, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "one")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !bytes.Equal(got, data) {
		t.Error("content differs")
	}
}

// With Content-MD5 the proxy takes the client's MD5 (the upstream checks
// it) instead of hashing the data again; a wrong one is refused upstream.
func TestETagFromContentMD5(t *testing.T) {
	buckets(t)
	c := sdk(t, true)
	ctx := context.Background()
	data := randomBytes(70_000)
	sum := md5.Sum(data)
	key := uniqueKey(t, "cmd5/")
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String(key), Body: bytes.NewReader(data),
		ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ETag) != `"`+md5hex(data)+`"` {
		t.Errorf("ETag %s, want the MD5", aws.ToString(out.ETag))
	}
	other := md5.Sum([]byte("other"))
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String(key + "-bad"), Body: bytes.NewReader(data),
		ContentMD5: aws.String(base64.StdEncoding.EncodeToString(other[:]))})
	if code := apiCode(err); code != "BadDigest" {
		t.Errorf("a wrong Content-MD5: %v, want BadDigest", err)
	}
	if _, err := direct(t).StatObject(ctx, "enc", key+"-bad", minio.StatObjectOptions{ServerSideEncryption: ssec(t, "k1")}); errCode(err) != "NoSuchKey" {
		t.Errorf("an object with a wrong Content-MD5 was stored: %v", err)
	}
}

// etags: upstream turns the MD5 ETags off: the upstream's ETag, no index.
func TestETagsUpstreamMode(t *testing.T) {
	buckets(t)
	base, _ := startProxy(t, func(c *config.Config) { c.ETags = config.ETagsUpstream })
	c := minioClient(t, base)
	ctx := context.Background()
	data := randomBytes(5000)
	key := uniqueKey(t, "upetag/")
	info, err := c.PutObject(ctx, "enc", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := direct(t).StatObject(ctx, "enc", key, minio.StatObjectOptions{ServerSideEncryption: ssec(t, "k1")})
	if err != nil || info.ETag != st.ETag || st.ETag == md5hex(data) {
		t.Errorf("PUT ETag %q, upstream %q (%v): want the upstream's, not the MD5", info.ETag, st.ETag, err)
	}
	for o := range direct(t).ListObjects(ctx, "enc", minio.ListObjectsOptions{Prefix: indexPrefixForTest + key, Recursive: true}) {
		t.Errorf("an index entry was written: %s", o.Key)
	}
}

const indexPrefixForTest = ".ssec-proxy/etags/"
