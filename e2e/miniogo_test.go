package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// Both transports minio-go uses: over TLS it sends its payload modes for
// HTTPS, over plain HTTP it signs every chunk.
func forEachMinioGo(t *testing.T, f func(t *testing.T, c *minio.Client)) {
	buckets(t)
	for _, tc := range []struct {
		name   string
		secure bool
	}{{"https", true}, {"http-signed-chunks", false}} {
		t.Run(tc.name, func(t *testing.T) { f(t, viaProxy(t, tc.secure)) })
	}
}

func TestMinioGoPutGetHeadListDelete(t *testing.T) {
	forEachMinioGo(t, func(t *testing.T, c *minio.Client) {
		ctx := context.Background()
		key := uniqueKey(t, "docs/")
		data := randomBytes(300 << 10)
		if _, err := c.PutObject(ctx, "enc", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ContentType: "text/plain"}); err != nil {
			t.Fatalf("put: %v", err)
		}
		assertEncrypted(t, "enc", key, "k1", data)

		got, err := readAll(c.GetObject(ctx, "enc", key, minio.GetObjectOptions{}))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get through the proxy: %v (%d bytes, want %d)", err, len(got), len(data))
		}
		st, err := c.StatObject(ctx, "enc", key, minio.StatObjectOptions{})
		if err != nil || st.Size != int64(len(data)) || st.ContentType != "text/plain" {
			t.Fatalf("stat: %v size %d type %q", err, st.Size, st.ContentType)
		}
		opts := minio.GetObjectOptions{}
		_ = opts.SetRange(1000, 1999)
		part, err := readAll(c.GetObject(ctx, "enc", key, opts))
		if err != nil || !bytes.Equal(part, data[1000:2000]) {
			t.Fatalf("ranged get: %v (%d bytes)", err, len(part))
		}
		found := false
		for o := range c.ListObjects(ctx, "enc", minio.ListObjectsOptions{Prefix: "docs/", Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			found = found || o.Key == key
		}
		if !found {
			t.Errorf("list did not show %s", key)
		}
		if err := c.RemoveObject(ctx, "enc", key, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := direct(t).StatObject(ctx, "enc", key, minio.StatObjectOptions{ServerSideEncryption: ssec(t, "k1")}); errCode(err) != "NoSuchKey" {
			t.Errorf("after delete, MinIO says %v, want NoSuchKey", err)
		}
	})
}

func TestMinioGoMultipart(t *testing.T) {
	forEachMinioGo(t, func(t *testing.T, c *minio.Client) {
		ctx := context.Background()
		key := uniqueKey(t, "big/")
		data := randomBytes(11<<20 + 12345)
		// A reader without Seek/ReadAt and a 5 MiB part size: minio-go uploads 3 parts.
		_, err := c.PutObject(ctx, "enc", key, io.MultiReader(bytes.NewReader(data)), int64(len(data)),
			minio.PutObjectOptions{PartSize: 5 << 20, DisableContentSha256: false})
		if err != nil {
			t.Fatalf("multipart put: %v", err)
		}
		assertEncrypted(t, "enc", key, "k1", data)
		st, err := direct(t).StatObject(ctx, "enc", key, minio.StatObjectOptions{ServerSideEncryption: ssec(t, "k1")})
		if err != nil || !strings.HasSuffix(strings.Trim(st.ETag, `"`), "-3") {
			t.Errorf("want a 3-part object upstream, got etag %q err %v", st.ETag, err)
		}
	})
}

func TestMinioGoCopySameKey(t *testing.T) {
	forEachMinioGo(t, func(t *testing.T, c *minio.Client) {
		ctx := context.Background()
		src, dst := uniqueKey(t, "src/"), uniqueKey(t, "dst/")
		data := randomBytes(70 << 10)
		if _, err := c.PutObject(ctx, "enc", src, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "enc", Object: dst}, minio.CopySrcOptions{Bucket: "enc", Object: src})
		if err != nil {
			t.Fatalf("copy: %v", err)
		}
		assertEncrypted(t, "enc", dst, "k1", data)
		// ComposeObject of one >5 MiB source uses UploadPartCopy.
		big := randomBytes(6 << 20)
		if _, err := c.PutObject(ctx, "enc", src+"-big", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err = c.ComposeObject(ctx, minio.CopyDestOptions{Bucket: "enc", Object: dst + "-composed"},
			minio.CopySrcOptions{Bucket: "enc", Object: src + "-big"}, minio.CopySrcOptions{Bucket: "enc", Object: src})
		if err != nil {
			t.Fatalf("compose (upload part copy): %v", err)
		}
		assertEncrypted(t, "enc", dst+"-composed", "k1", append(append([]byte{}, big...), data...))
	})
}

func TestMinioGoPresigned(t *testing.T) {
	buckets(t)
	c := viaProxy(t, true)
	ctx := context.Background()
	key := uniqueKey(t, "presigned/")
	data := randomBytes(5000)
	putURL, err := c.PresignedPutObject(ctx, "enc", key, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: transport(t, env.caFile)}
	req, _ := http.NewRequest(http.MethodPut, putURL.String(), bytes.NewReader(data))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %s", resp.Status)
	}
	assertEncrypted(t, "enc", key, "k1", data)
	getURL, err := c.PresignedGetObject(ctx, "enc", key, 5*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = hc.Get(getURL.String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("presigned GET: %s, %d bytes", resp.Status, len(got))
	}
	// A tampered presigned URL is refused.
	resp, err = hc.Get(strings.Replace(getURL.String(), "presigned", "presignex", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("tampered presigned GET: %s, want 403", resp.Status)
	}
}

func TestRulesPlaintextDenyStarAndPrevious(t *testing.T) {
	buckets(t)
	c := viaProxy(t, true)
	ctx := context.Background()
	data := randomBytes(1000)
	put := func(bucket, key string) error {
		_, err := c.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		return err
	}
	t.Run("encrypt-false-prefix", func(t *testing.T) {
		key := uniqueKey(t, "public/")
		if err := put("enc", key); err != nil {
			t.Fatal(err)
		}
		assertPlain(t, "enc", key, data)
	})
	t.Run("encrypt-false-bucket", func(t *testing.T) {
		key := uniqueKey(t, "x/")
		if err := put("plain", key); err != nil {
			t.Fatal(err)
		}
		assertPlain(t, "plain", key, data)
	})
	t.Run("prefix-rule", func(t *testing.T) {
		key := uniqueKey(t, "secret/")
		if err := put("mixed", key); err != nil {
			t.Fatal(err)
		}
		assertEncrypted(t, "mixed", key, "k2", data)
	})
	t.Run("star-bucket", func(t *testing.T) {
		key := uniqueKey(t, "star/")
		if err := put("other", key); err != nil {
			t.Fatal(err)
		}
		assertEncrypted(t, "other", key, "k2", data)
	})
	t.Run("default-deny", func(t *testing.T) {
		key := uniqueKey(t, "elsewhere/")
		err := put("mixed", key)
		if errCode(err) != "AccessDenied" || !strings.Contains(minio.ToErrorResponse(err).Message, `"elsewhere/"`) {
			t.Fatalf("put without a rule: %v, want AccessDenied naming the prefix", err)
		}
		if _, err := direct(t).StatObject(ctx, "mixed", key, minio.StatObjectOptions{}); errCode(err) != "NoSuchKey" {
			t.Errorf("a denied put reached MinIO: %v", err)
		}
	})
	t.Run("previous-key", func(t *testing.T) {
		key := uniqueKey(t, "old/")
		// Written before a rotation: under k0, straight to MinIO.
		_, err := direct(t).PutObject(ctx, "enc", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ServerSideEncryption: ssec(t, "k0")})
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(c.GetObject(ctx, "enc", key, minio.GetObjectOptions{}))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read of a k0 object through the proxy (k1 current, k0 previous): %v", err)
		}
		if _, err := c.StatObject(ctx, "enc", key, minio.StatObjectOptions{}); err != nil {
			t.Fatalf("head of a k0 object: %v", err)
		}
	})
	t.Run("client-sse-refused", func(t *testing.T) {
		key := uniqueKey(t, "mine/")
		_, err := c.PutObject(ctx, "enc", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ServerSideEncryption: ssec(t, "k2")})
		resp := minio.ToErrorResponse(err)
		if resp.Code != "InvalidRequest" || !strings.Contains(resp.Message, "manages encryption") {
			t.Fatalf("client SSE-C under an encrypting rule: %v, want InvalidRequest", err)
		}
	})
	t.Run("client-sse-passes-where-plaintext", func(t *testing.T) {
		// The client's own key, none of the store's (the invariant check
		// would take a store key the rule does not name for the proxy's).
		key := uniqueKey(t, "own/")
		own, err := encrypt.NewSSEC(randomBytes(32))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutObject(ctx, "plain", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ServerSideEncryption: own}); err != nil {
			t.Fatal(err)
		}
		if _, err := readAll(direct(t).GetObject(ctx, "plain", key, minio.GetObjectOptions{})); err == nil {
			t.Errorf("plain/%s: MinIO served it without the client's key", key)
		}
		got, err := readAll(direct(t).GetObject(ctx, "plain", key, minio.GetObjectOptions{ServerSideEncryption: own}))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("plain/%s with the client's key: %v", key, err)
		}
	})
}
