package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/tags"
)

// Copies between rules with different keys (or plaintext on one side):
// natively where the upstream copies between keys (MinIO), and by
// streaming through the proxy (upstream.copy: stream, what SOS needs).
// Metadata, content type and tags are kept as the directives say.
func TestCrossKeyCopy(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	for _, mode := range []struct{ name, url string }{{"native", env.httpsURL}, {"stream", env.streamURL}} {
		t.Run(mode.name, func(t *testing.T) {
			c := minioClient(t, mode.url)
			for _, size := range []int{1024, 12<<20 + 5} { // one PUT; multipart with 5 MiB parts in stream mode
				data := randomBytes(size)
				src := uniqueKey(t, "xsrc/")
				tg, _ := tags.NewTags(map[string]string{"team": "ops", "tier": "gold"}, true)
				_, err := c.PutObject(ctx, "enc", src, bytes.NewReader(data), int64(size), minio.PutObjectOptions{
					ContentType: "application/x-custom", UserMetadata: map[string]string{"Owner": "alice"}, UserTags: tg.ToMap(),
				})
				if err != nil {
					t.Fatalf("put source: %v", err)
				}
				for _, dst := range []struct {
					bucket, key, keyID string
				}{
					{"mixed", uniqueKey(t, "secret/") + "-to-k2", "k2"},
					{"plain", uniqueKey(t, "x/") + "-to-plain", ""},
				} {
					info, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: dst.bucket, Object: dst.key},
						minio.CopySrcOptions{Bucket: "enc", Object: src})
					if err != nil {
						t.Fatalf("copy %d bytes to %s: %v", size, dst.bucket, err)
					}
					if info.ETag == "" {
						t.Error("copy result without an ETag")
					}
					if dst.keyID == "" {
						assertPlain(t, dst.bucket, dst.key, data)
					} else {
						assertEncrypted(t, dst.bucket, dst.key, dst.keyID, data)
					}
					st, err := c.StatObject(ctx, dst.bucket, dst.key, minio.StatObjectOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if st.ContentType != "application/x-custom" || st.UserMetadata["Owner"] != "alice" {
						t.Errorf("metadata not kept: type %q, meta %v", st.ContentType, st.UserMetadata)
					}
					got, err := c.GetObjectTagging(ctx, dst.bucket, dst.key, minio.GetObjectTaggingOptions{})
					if err != nil || got.ToMap()["tier"] != "gold" || len(got.ToMap()) != 2 {
						t.Errorf("tags not kept: %v %v", got, err)
					}
				}
				// And back, plaintext to encrypted, replacing the metadata.
				back := uniqueKey(t, "back/")
				_, err = c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "enc", Object: back, ReplaceMetadata: true,
					UserMetadata: map[string]string{"Owner": "bob", "Content-Type": "text/plain"}},
					minio.CopySrcOptions{Bucket: "plain", Object: uniqueKey(t, "x/")})
				if errCode(err) != "NoSuchKey" {
					t.Errorf("copy from a missing source: %v, want NoSuchKey", err)
				}
			}
		})
	}
}

// UploadPartCopy from a source under another key, streamed.
func TestCrossKeyUploadPartCopy(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	for _, mode := range []struct{ name, url string }{{"native", env.httpsURL}, {"stream", env.streamURL}} {
		t.Run(mode.name, func(t *testing.T) {
			c := minioClient(t, mode.url)
			data := randomBytes(6 << 20)
			src := uniqueKey(t, "secret/")
			if _, err := c.PutObject(ctx, "mixed", src, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			small := randomBytes(1000)
			src2 := uniqueKey(t, "pc/")
			if _, err := c.PutObject(ctx, "enc", src2, bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			dst := uniqueKey(t, "composed/")
			_, err := c.ComposeObject(ctx, minio.CopyDestOptions{Bucket: "enc", Object: dst},
				minio.CopySrcOptions{Bucket: "mixed", Object: src}, minio.CopySrcOptions{Bucket: "enc", Object: src2})
			if err != nil {
				t.Fatalf("compose across keys: %v", err)
			}
			assertEncrypted(t, "enc", dst, "k1", append(append([]byte{}, data...), small...))
		})
	}
}

// A plaintext object under an encrypting rule is refused, unless the rule
// allows plaintext reads (for migrations).
func TestPlaintextReads(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	data := []byte("written before the proxy")
	d := direct(t)
	for _, key := range []string{"legacy/old.txt", "docs/old-plain.txt"} {
		if _, err := d.PutObject(ctx, "enc", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c := viaProxy(t, true)
	got, err := readAll(c.GetObject(ctx, "enc", "legacy/old.txt", minio.GetObjectOptions{}))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("allowed plaintext read: %v", err)
	}
	if _, err := c.StatObject(ctx, "enc", "legacy/old.txt", minio.StatObjectOptions{}); err != nil {
		t.Errorf("allowed plaintext head: %v", err)
	}
	_, err = readAll(c.GetObject(ctx, "enc", "docs/old-plain.txt", minio.GetObjectOptions{}))
	if resp := minio.ToErrorResponse(err); resp.Code != "AccessDenied" || !bytes.Contains([]byte(resp.Message), []byte("allow_plaintext_reads")) {
		t.Errorf("plaintext read without permission: %v, want AccessDenied naming allow_plaintext_reads", err)
	}
	// A HEAD has no body to explain itself: the status says it.
	hc := &http.Client{Transport: transport(t, env.caFile)}
	u, _ := c.PresignedHeadObject(ctx, "enc", "docs/old-plain.txt", 60e9, nil)
	resp, err := hc.Head(u.String())
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("HEAD of a plaintext object without permission: %s, want 403", resp.Status)
	}
}
