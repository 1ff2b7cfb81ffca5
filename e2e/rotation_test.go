package e2e

// Rotation without gaps (issue 12, item 3): after a rotation (k1 current,
// k0 in previous, rekey not yet run) every copy of an object still under
// k0 works, lands under k1, and a key no rule names gets a clear error.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/lifecycle"
)

// putUnder writes an object straight to MinIO under key id ("" plaintext),
// as it was before the proxy's rules changed.
func putUnder(t *testing.T, bucket, key, id string, data []byte) {
	t.Helper()
	opts := minio.PutObjectOptions{}
	if id != "" {
		opts.ServerSideEncryption = ssec(t, id)
	}
	if _, err := direct(t).PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), opts); err != nil {
		t.Fatal(err)
	}
}

func TestRotationCopies(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	prefix := uniqueKey(t, "rotation/") + "/"
	old := randomBytes(6<<20 + 7)
	putUnder(t, "enc", prefix+"old", "k0", old)
	c := sdk(t, true)

	t.Run("awscli-copy-object", func(t *testing.T) {
		aws := find(t, program{name: "debian-awscli", path: "/usr/bin/aws", debian: true})
		runProgram(t, clientEnv(t), aws, "--endpoint-url="+env.httpsURL, "s3api", "copy-object",
			"--bucket", "enc", "--key", prefix+"cli-copy", "--copy-source", "enc/"+prefix+"old")
		assertEncrypted(t, "enc", prefix+"cli-copy", "k1", old)
	})
	t.Run("awscli-mv", func(t *testing.T) {
		aws := find(t, program{name: "debian-awscli", path: "/usr/bin/aws", debian: true})
		putUnder(t, "enc", prefix+"to-move", "k0", old[:1000])
		runProgram(t, clientEnv(t), aws, "--endpoint-url="+env.httpsURL, "s3", "mv",
			"s3://enc/"+prefix+"to-move", "s3://enc/"+prefix+"moved")
		assertEncrypted(t, "enc", prefix+"moved", "k1", old[:1000])
	})
	t.Run("sdk-copy-object", func(t *testing.T) {
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "sdk-copy"),
			CopySource: aws.String("enc/" + prefix + "old")}); err != nil {
			t.Fatal(err)
		}
		assertEncrypted(t, "enc", prefix+"sdk-copy", "k1", old)
	})
	t.Run("minio-go-copy", func(t *testing.T) {
		mc := viaProxy(t, false)
		if _, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "enc", Object: prefix + "mc-copy"},
			minio.CopySrcOptions{Bucket: "enc", Object: prefix + "old"}); err != nil {
			t.Fatal(err)
		}
		assertEncrypted(t, "enc", prefix+"mc-copy", "k1", old)
	})
	t.Run("upload-part-copy", func(t *testing.T) {
		dst := prefix + "part-copy"
		u, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(dst)})
		if err != nil {
			t.Fatal(err)
		}
		pc, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("enc"), Key: aws.String(dst), UploadId: u.UploadId,
			PartNumber: aws.Int32(1), CopySource: aws.String("enc/" + prefix + "old")})
		if err != nil {
			t.Fatalf("UploadPartCopy from a previous-key source: %v", err)
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(dst), UploadId: u.UploadId,
			MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{PartNumber: aws.Int32(1), ETag: pc.CopyPartResult.ETag}}}}); err != nil {
			t.Fatal(err)
		}
		assertEncrypted(t, "enc", dst, "k1", old)
	})
	t.Run("streamed-copy", func(t *testing.T) {
		// copy: stream (what SOS needs) reads the source as a GET would.
		mc := minioClient(t, env.streamURL)
		if _, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "enc", Object: prefix + "stream-copy"},
			minio.CopySrcOptions{Bucket: "enc", Object: prefix + "old"}); err != nil {
			t.Fatal(err)
		}
		assertEncrypted(t, "enc", prefix+"stream-copy", "k1", old)
	})
	t.Run("plaintext-source-where-allowed", func(t *testing.T) {
		putUnder(t, "enc", "legacy/"+prefix+"plain", "", []byte("legacy"))
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "from-legacy"),
			CopySource: aws.String("enc/legacy/" + prefix + "plain")}); err != nil {
			t.Fatal(err)
		}
		assertEncrypted(t, "enc", prefix+"from-legacy", "k1", []byte("legacy"))
	})
	t.Run("no-key-opens-it", func(t *testing.T) {
		putUnder(t, "enc", prefix+"alien", "k2", []byte("not under enc's keys"))
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			r := newRaw(m, "/enc/"+prefix+"alien", nil)
			r.signClient(env.httpURL, emptyHash)
			a := send(t, env.httpURL, r)
			if a.status != 403 {
				t.Errorf("%s: %v", m, a)
			}
			if m == http.MethodGet && (!strings.Contains(a.Msg, "k1, k0") || bytes.Contains(a.body, []byte("not under"))) {
				t.Errorf("GET of an object no key opens: %q, want a message naming k1, k0", a.Msg)
			}
		}
		// A copy of it: the same answer, naming the key ids tried, and
		// nothing written at the destination.
		r := newRaw(http.MethodPut, "/enc/"+prefix+"alien-copy", nil)
		r.header.Set("X-Amz-Copy-Source", "/enc/"+prefix+"alien")
		r.signClient(env.httpURL, emptyHash)
		if a := send(t, env.httpURL, r); a.status != 403 || !strings.Contains(a.Msg, "k1, k0") {
			t.Errorf("copy of an object no key opens: %d %q, want 403 naming k1, k0", a.status, a.Msg)
		}
		if _, err := direct(t).StatObject(ctx, "enc", prefix+"alien-copy", minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
			t.Errorf("the refused copy left an object: %v", err)
		}
		// partNumber reads try previous keys like GET.
		pn, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "old"), PartNumber: aws.Int32(1)})
		if err != nil {
			t.Fatalf("partNumber=1 GET of a previous-key object: %v", err)
		}
		got, _ := io.ReadAll(pn.Body)
		pn.Body.Close()
		if !bytes.Equal(got, old) {
			t.Errorf("partNumber=1 GET of a previous-key object: %d bytes, want %d", len(got), len(old))
		}
		resp, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "old"),
			ObjectAttributes: []s3types.ObjectAttributes{s3types.ObjectAttributesObjectSize}})
		if err != nil || aws.ToInt64(resp.ObjectSize) != int64(len(old)) {
			t.Errorf("GetObjectAttributes of a previous-key object: %v", err)
		}
		g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(prefix + "old"), Range: aws.String("bytes=10-19")})
		if err != nil {
			t.Fatal(err)
		}
		got, _ = io.ReadAll(g.Body)
		g.Body.Close()
		if !bytes.Equal(got, old[10:20]) {
			t.Errorf("ranged GET of a previous-key object: %q", got)
		}
	})
}

// TestRotationDuringMultipartUpload: a reload that rotates the rule's key
// in the middle of a multipart upload does not break it: the parts after
// it, on the reloaded instance and on another one with a cold cache, and
// the completion carry the key the upload was created with.
func TestRotationDuringMultipartUpload(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	beforeRotation := func(c *config.Config) {
		c.Rules = slices.Clone(c.Rules)
		for i, r := range c.Rules {
			if r.Bucket == "enc" && r.Prefix == "" {
				c.Rules[i].Key, c.Rules[i].Previous = "k0", nil
			}
		}
	}
	pbase, h := startProxy(t, beforeRotation)
	other, _ := startProxy(t, nil) // already rotated: k1, previous k0
	records := len(reservedUnder(t, "enc", ".ssec-proxy/uploads/"))
	key := uniqueKey(t, "rotation/mpu")
	parts := [][]byte{randomBytes(5 << 20), randomBytes(5 << 20), randomBytes(1234)}
	c := sdkAt(t, pbase)
	u, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(reservedUnder(t, "enc", ".ssec-proxy/uploads/")); n != records+1 {
		t.Errorf("%d upload records, want %d", n, records+1)
	}
	var done []s3types.CompletedPart
	upload := func(c *s3.Client, i int) {
		t.Helper()
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("enc"), Key: aws.String(key), UploadId: u.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(parts[i])})
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		done = append(done, s3types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	upload(c, 0)
	// The rotation: k1 becomes current, k0 previous.
	after := *env.cfg
	ring, _, err := keystore.Build(&after)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(&after, ring); err != nil {
		t.Fatal(err)
	}
	upload(c, 1)
	upload(sdkAt(t, other), 2) // another instance, which never saw the upload
	if _, err := sdkAt(t, other).CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(key),
		UploadId: u.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("complete after the rotation: %v", err)
	}
	all := bytes.Join(parts, nil)
	assertEncrypted(t, "enc", key, "k0", all)
	g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(g.Body)
	g.Body.Close()
	if !bytes.Equal(got, all) {
		t.Errorf("GET after the rotation: %d bytes, want %d", len(got), len(all))
	}
	if n := len(reservedUnder(t, "enc", ".ssec-proxy/uploads/")); n != records {
		t.Errorf("%d upload records after the completion, want %d", n, records)
	}
}

// reservedUnder lists the proxy's own objects of bucket under prefix, on
// MinIO.
func reservedUnder(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	var out []string
	for o := range direct(t).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		out = append(out, o.Key)
	}
	return out
}

// TestRekeyKeepsETagsAndAuditCounts: objects written through the proxy
// (their ETag index entries beside them) are counted exactly by audit (the
// index is not an object), and after a rotation and a rekey, in both copy
// modes, a proxy that never saw them (cold cache) still answers their MD5
// ETags: rekey wrote the entry of every object it re-encrypted.
func TestRekeyKeepsETagsAndAuditCounts(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	for _, mode := range []string{config.CopyNative, config.CopyStream} {
		t.Run(mode, func(t *testing.T) {
			bucket := "rekx-" + strings.ToLower(string(hexRand(3)))
			if err := direct(t).MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
				t.Fatal(err)
			}
			on := true
			withRule := func(key string, previous ...string) func(*config.Config) {
				return func(c *config.Config) {
					c.Rules = append(slices.Clone(c.Rules), config.Rule{Bucket: bucket, Key: key, Previous: previous, Encrypt: &on})
				}
			}
			before, _ := startProxy(t, withRule("k0"))
			c := sdkAt(t, before)
			want := map[string]string{}
			for i, size := range []int{1000, 70_000} {
				data := randomBytes(size)
				k := fmt.Sprintf("obj-%d", i)
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(data)}); err != nil {
					t.Fatal(err)
				}
				want[k] = `"` + md5hex(data) + `"`
			}
			// A multipart object: md5 of the part MD5s.
			parts := [][]byte{randomBytes(5 << 20), randomBytes(99)}
			u, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("multi")})
			if err != nil {
				t.Fatal(err)
			}
			var done []s3types.CompletedPart
			var md5s []string
			for i, p := range parts {
				out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String("multi"), UploadId: u.UploadId,
					PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
				if err != nil {
					t.Fatal(err)
				}
				done = append(done, s3types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
				md5s = append(md5s, md5hex(p))
			}
			if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("multi"),
				UploadId: u.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: done}}); err != nil {
				t.Fatal(err)
			}
			want["multi"] = `"` + multipartMD5(md5s) + `"`
			settle(t)
			entries := len(reservedUnder(t, bucket, ".ssec-proxy/"))
			if entries != 3 {
				t.Fatalf("%d of the proxy's own objects, want 3 index entries", entries)
			}

			// The rotation.
			after := *env.cfg
			withRule("k1", "k0")(&after)
			after.Upstream.Copy = mode
			ring, _, err := keystore.Build(&after)
			if err != nil {
				t.Fatal(err)
			}
			client, err := lifecycle.NewClient(after.Upstream)
			if err != nil {
				t.Fatal(err)
			}
			opts := lifecycle.Options{Client: client, Keyring: ring, Copy: mode, PartSize: config.MinPartSize, Jobs: 2}
			rep, err := lifecycle.Audit(ctx, opts, lifecycle.Target{Bucket: bucket})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Seen != 3 || rep.ProxyObjects != 3 {
				t.Errorf("audit: %d objects and %d of the proxy's, want 3 and 3", rep.Seen, rep.ProxyObjects)
			}
			var out bytes.Buffer
			_ = rep.WriteAuditTable(&out)
			if !strings.Contains(out.String(), "0 of 3 objects under the current key") {
				t.Errorf("audit table:\n%s", out.String())
			}
			rep, err = lifecycle.Rekey(ctx, opts, lifecycle.Target{Bucket: bucket})
			if err != nil || rep.Rekeyed != 3 || rep.Entries != 3 || len(rep.Failed) > 0 {
				t.Fatalf("rekey: %v, %d re-encrypted, %d entries, failed %v", err, rep.Rekeyed, rep.Entries, rep.Failed)
			}
			if n := len(reservedUnder(t, bucket, ".ssec-proxy/")); n != 3 {
				t.Errorf("%d of the proxy's own objects after rekey, want 3 (old entries removed, new ones written)", n)
			}
			rep, _ = lifecycle.Audit(ctx, opts, lifecycle.Target{Bucket: bucket})
			if rep.Seen != 3 {
				t.Errorf("audit after rekey: %d objects", rep.Seen)
			}
			out.Reset()
			_ = rep.WriteAuditTable(&out)
			if !strings.Contains(out.String(), "3 of 3 objects under the current key (100%)") {
				t.Errorf("audit table after rekey:\n%s", out.String())
			}

			// A proxy with the rotated rules and a cold cache.
			cold, _ := startProxy(t, withRule("k1", "k0"))
			cc := sdkAt(t, cold)
			for k, etag := range want {
				if _, err := direct(t).StatObject(ctx, bucket, k, minio.StatObjectOptions{ServerSideEncryption: ssec(t, "k1")}); err != nil {
					t.Errorf("%s is not under k1 after rekey: %v", k, err)
				}
				h, err := cc.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
				if err != nil || aws.ToString(h.ETag) != etag {
					t.Errorf("%s after rekey: ETag %s (%v), want %s", k, aws.ToString(h.ETag), err, etag)
				}
			}
			l, err := cc.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
			if err != nil || len(l.Contents) != 3 {
				t.Fatalf("listing after rekey: %v", err)
			}
			for _, o := range l.Contents {
				if aws.ToString(o.ETag) != want[aws.ToString(o.Key)] {
					t.Errorf("listed %s: ETag %s, want %s", aws.ToString(o.Key), aws.ToString(o.ETag), want[aws.ToString(o.Key)])
				}
			}
		})
	}
}
