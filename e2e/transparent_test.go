package e2e

// What S3 answers directly, the proxy answers too (issue 13).

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"

	"github.com/ssec-proxy/ssec-proxy/config"
)

// multipartMD5 is S3's ETag of a multipart object of parts with these
// hex MD5s.
func multipartMD5(md5s []string) string {
	h := md5.New()
	for _, m := range md5s {
		b, _ := hex.DecodeString(m)
		h.Write(b)
	}
	return fmt.Sprintf("%x-%d", h.Sum(nil), len(md5s))
}

// TestMetadataNamesLowerCase: user metadata comes back with lower-case
// names, as S3 sends them, after a PUT and after copies with either
// metadata directive (boto3 looks up Metadata["foo"]).
func TestMetadataNamesLowerCase(t *testing.T) {
	buckets(t)
	base := env.httpURL
	src := uniqueKey(t, "meta/src")
	data := []byte("metadata")
	r := newRaw(http.MethodPut, "/enc/"+src, data)
	r.header.Set("X-Amz-Meta-MixedCase", "one")
	r.header.Set("x-amz-meta-lower", "two")
	r.signClient(base, sha256Hex(data))
	if a := send(t, base, r); a.status != 200 {
		t.Fatalf("PUT: %v", a)
	}
	copyTo := func(directive string) string {
		dst := uniqueKey(t, "meta/copy-"+strings.ToLower(directive))
		c := newRaw(http.MethodPut, "/enc/"+dst, nil)
		c.header.Set("X-Amz-Copy-Source", "/enc/"+src)
		if directive == "REPLACE" {
			c.header.Set("X-Amz-Metadata-Directive", "REPLACE")
			c.header.Set("X-Amz-Meta-MixedCase", "one")
			c.header.Set("X-Amz-Meta-Lower", "two")
		}
		c.signClient(base, emptyHash)
		if a := send(t, base, c); a.status != 200 {
			t.Fatalf("copy %s: %v", directive, a)
		}
		return dst
	}
	for _, key := range []string{src, copyTo("COPY"), copyTo("REPLACE")} {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			g := newRaw(m, "/enc/"+key, nil)
			g.signClient(base, emptyHash)
			a := send(t, base, g)
			if a.status != 200 {
				t.Fatalf("%s %s: %v", m, key, a)
			}
			for _, want := range []string{"\r\nx-amz-meta-mixedcase: one", "\r\nx-amz-meta-lower: two"} {
				if !strings.Contains(a.rawHead, want) {
					t.Errorf("%s %s: no %q in\n%s", m, key, strings.TrimSpace(want), a.rawHead)
				}
			}
		}
	}
}

// TestTransparentSmallDifferences: issue 13 item 5 and item 4, each as S3
// answers it.
func TestTransparentSmallDifferences(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	c := sdk(t, true)
	prefix := uniqueKey(t, "transparent/") + "/"

	// A multipart object through the proxy.
	mpKey := prefix + "multi"
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(mpKey)})
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{randomBytes(5 << 20), randomBytes(1000)}
	var done []s3types.CompletedPart
	var md5s []string
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("enc"), Key: aws.String(mpKey), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, s3types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
		md5s = append(md5s, md5hex(p))
	}
	sum := sha256.Sum256([]byte(mpKey + "\x00" + aws.ToString(up.UploadId)))
	partsDir := ".ssec-proxy/parts/" + hex.EncodeToString(sum[:]) + "/"
	if n := len(reservedUnder(t, "enc", partsDir)); n != len(parts) {
		t.Errorf("%d part records, want %d", n, len(parts))
	}
	t.Run("complete-with-a-wrong-part-etag-on-another-instance", func(t *testing.T) {
		// An instance that never saw the parts reads their records.
		other, _ := startProxy(t, nil)
		wrong := []s3types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(`"` + md5hex([]byte("other")) + `"`)}, done[1]}
		_, err := sdkAt(t, other).CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(mpKey),
			UploadId: up.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: wrong}})
		if apiCode(err) != "InvalidPart" {
			t.Errorf("Complete on another instance naming a wrong part ETag: %v, want InvalidPart", err)
		}
	})
	t.Run("complete-with-a-wrong-part-etag", func(t *testing.T) {
		wrong := []s3types.CompletedPart{done[0], {PartNumber: aws.Int32(2), ETag: aws.String(`"` + md5hex([]byte("other")) + `"`)}}
		_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(mpKey),
			UploadId: up.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: wrong}})
		if apiCode(err) != "InvalidPart" {
			t.Errorf("Complete naming a part ETag that is not the part's: %v, want InvalidPart", err)
		}
	})
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(mpKey),
		UploadId: up.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	want := multipartMD5(md5s)
	eventually(t, "the upload's part records removed after the completion", func() bool {
		return len(reservedUnder(t, "enc", partsDir)) == 0
	})
	t.Run("complete-with-a-wrong-etag-for-a-copied-part", func(t *testing.T) {
		// A part made by UploadPartCopy has no MD5 record: its ETag is the
		// upstream's, as the copy answered it, and nothing else is taken.
		k := mpKey + "-from-copy"
		cu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		cp, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("enc"), Key: aws.String(k), UploadId: cu.UploadId,
			PartNumber: aws.Int32(1), CopySource: aws.String("enc/" + mpKey)})
		if err != nil {
			t.Fatal(err)
		}
		for _, etag := range []string{md5hex([]byte("other")), md5hex(bytes.Join(parts, nil))} {
			_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(k), UploadId: cu.UploadId,
				MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(`"` + etag + `"`)}}}})
			if apiCode(err) != "InvalidPart" {
				t.Errorf("Complete naming %s for a copied part: %v, want InvalidPart", etag, err)
			}
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(k), UploadId: cu.UploadId,
			MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{PartNumber: aws.Int32(1), ETag: cp.CopyPartResult.ETag}}}}); err != nil {
			t.Errorf("Complete naming the copied part's own ETag: %v", err)
		}
		assertEncrypted(t, "enc", k, "k1", bytes.Join(parts, nil))
	})
	t.Run("attributes-etag-of-a-multipart-object", func(t *testing.T) {
		a, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String("enc"), Key: aws.String(mpKey),
			ObjectAttributes: []s3types.ObjectAttributes{s3types.ObjectAttributesEtag, s3types.ObjectAttributesObjectSize}})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Trim(aws.ToString(a.ETag), `"`); got != want {
			t.Errorf("GetObjectAttributes ETag %s, want the client's %s", got, want)
		}
	})
	t.Run("copy-onto-itself-unchanged", func(t *testing.T) {
		_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String(mpKey), CopySource: aws.String("enc/" + mpKey)})
		if apiCode(err) != "InvalidRequest" {
			t.Errorf("CopyObject onto itself: %v, want InvalidRequest", err)
		}
		_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String(mpKey), CopySource: aws.String("enc/" + mpKey),
			MetadataDirective: s3types.MetadataDirectiveReplace, Metadata: map[string]string{"changed": "yes"}})
		if err != nil {
			t.Errorf("CopyObject onto itself with new metadata: %v", err)
		}
	})
	t.Run("upload-part-copy-encoded-source", func(t *testing.T) {
		odd := prefix + "a b+c%d/ü€ x"
		data := randomBytes(6 << 20)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String(odd), Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
		dst := prefix + "part-copy"
		u, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(dst)})
		if err != nil {
			t.Fatal(err)
		}
		pc, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("enc"), Key: aws.String(dst), UploadId: u.UploadId,
			PartNumber: aws.Int32(1), CopySource: aws.String("enc/" + url.PathEscape(odd))})
		if err != nil {
			t.Fatalf("UploadPartCopy from %q: %v", odd, err)
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(dst), UploadId: u.UploadId,
			MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{PartNumber: aws.Int32(1), ETag: pc.CopyPartResult.ETag}}}}); err != nil {
			t.Fatal(err)
		}
		assertEncrypted(t, "enc", dst, "k1", data)
	})
	t.Run("error-request-id", func(t *testing.T) {
		r := newRaw(http.MethodGet, "/enc/"+prefix+"missing", nil)
		r.signClient(env.httpURL, emptyHash)
		a := send(t, env.httpURL, r)
		var e struct{ RequestId string }
		_ = xml.Unmarshal(a.body, &e)
		if a.status != 404 || e.RequestId == "" || e.RequestId != a.header.Get("X-Amz-Request-Id") {
			t.Errorf("404: body RequestId %q, header %q (%v)", e.RequestId, a.header.Get("X-Amz-Request-Id"), a)
		}
	})
}

// TestDeleteMarkerHeaders: HEAD and GET of a key whose latest version is
// a delete marker answer 404 with x-amz-delete-marker and
// x-amz-version-id, and a GET of the marker's version 405, as S3 does.
func TestDeleteMarkerHeaders(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	bucket := newBucket(t, "verx-", true)
	on := true
	pbase, _ := startProxy(t, func(c *config.Config) {
		c.Rules = append(slices.Clone(c.Rules), config.Rule{Bucket: bucket, Key: "k1", Encrypt: &on})
	})
	mc := minioClient(t, pbase)
	if _, err := mc.PutObject(ctx, bucket, "k", strings.NewReader("v1"), 2, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := mc.RemoveObject(ctx, bucket, "k", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	var marker string
	for v := range direct(t).ListObjects(ctx, bucket, minio.ListObjectsOptions{WithVersions: true}) {
		if v.IsDeleteMarker {
			marker = v.VersionID
		}
	}
	if marker == "" {
		t.Fatal("no delete marker")
	}
	for _, tc := range []struct {
		method, query string
		status        int
	}{
		{http.MethodHead, "", 404},
		{http.MethodGet, "", 404},
		{http.MethodGet, "versionId=" + marker, 405},
		{http.MethodHead, "versionId=" + marker, 405},
	} {
		r := newRaw(tc.method, "/"+bucket+"/k", nil)
		r.query = tc.query
		r.signClient(pbase, emptyHash)
		a := send(t, pbase, r)
		if a.status != tc.status || a.header.Get("X-Amz-Delete-Marker") != "true" || a.header.Get("X-Amz-Version-Id") != marker {
			t.Errorf("%s ?%s: %d, x-amz-delete-marker %q, x-amz-version-id %q; want %d, true, %s",
				tc.method, tc.query, a.status, a.header.Get("X-Amz-Delete-Marker"), a.header.Get("X-Amz-Version-Id"), tc.status, marker)
		}
	}
}
