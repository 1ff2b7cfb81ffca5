package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"github.com/ssec-proxy/ssec-proxy/internal/testenv"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// The buckets of rulesYAML, made once.
var bucketsOnce sync.Once

func buckets(t *testing.T) {
	t.Helper()
	requireEnv(t)
	bucketsOnce.Do(func() {
		c := direct(t)
		for _, b := range []string{"enc", "mixed", "plain", "other"} {
			if err := c.MakeBucket(context.Background(), b, minio.MakeBucketOptions{}); err != nil {
				t.Fatalf("make bucket %s: %v", b, err)
			}
		}
	})
}

func caPool(t *testing.T, files ...string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(b)
	}
	return pool
}

func transport(t *testing.T, ca string) *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(t, ca), MinVersion: tls.VersionTLS12}}
}

// direct is a minio-go client straight to MinIO, with its root user.
func direct(t *testing.T) *minio.Client {
	t.Helper()
	c, err := testenv.Direct(env.minio)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// viaProxy is a minio-go client through the proxy, over TLS or plain HTTP
// (where minio-go signs every chunk: STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
func viaProxy(t *testing.T, secure bool) *minio.Client {
	t.Helper()
	raw := env.httpURL
	if secure {
		raw = env.httpsURL
	}
	return minioClient(t, raw)
}

// minioClient is a minio-go client of the proxy at raw (a URL).
func minioClient(t *testing.T, raw string) *minio.Client {
	t.Helper()
	u, _ := url.Parse(raw)
	secure := u.Scheme == "https"
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(env.clientAK, env.clientSK, ""),
		Secure:       secure,
		Transport:    transport(t, env.caFile),
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ssec(t *testing.T, id string) encrypt.ServerSide {
	t.Helper()
	s, err := encrypt.NewSSEC(env.keys[id])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// uniqueKey makes object keys that no other test uses.
func uniqueKey(t *testing.T, prefix string) string {
	return prefix + strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()) + "-" + string(hexRand(4))
}

func hexRand(n int) []byte {
	const digits = "0123456789abcdef"
	b := randomBytes(n)
	out := make([]byte, 2*n)
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return out
}

// assertEncrypted checks the object straight on MinIO: no read without a
// key, no read with another key, and want with the rule's key.
func assertEncrypted(t *testing.T, bucket, key, keyID string, want []byte) {
	t.Helper()
	ctx := context.Background()
	c := direct(t)
	if _, err := readAll(c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})); err == nil {
		t.Errorf("%s/%s: MinIO served it without a key: it is not SSE-C encrypted", bucket, key)
	}
	for id := range env.keys {
		if id == keyID {
			continue
		}
		if _, err := readAll(c.GetObject(ctx, bucket, key, minio.GetObjectOptions{ServerSideEncryption: ssec(t, id)})); err == nil {
			t.Errorf("%s/%s: readable with key %s, want only %s", bucket, key, id, keyID)
		}
	}
	got, err := readAll(c.GetObject(ctx, bucket, key, minio.GetObjectOptions{ServerSideEncryption: ssec(t, keyID)}))
	if err != nil {
		t.Fatalf("%s/%s: not readable with key %s: %v", bucket, key, keyID, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s/%s: with key %s MinIO returns %d bytes that differ from the %d written", bucket, key, keyID, len(got), len(want))
	}
}

// assertPlain checks that MinIO stores the object as sent, no SSE-C.
func assertPlain(t *testing.T, bucket, key string, want []byte) {
	t.Helper()
	got, err := readAll(direct(t).GetObject(context.Background(), bucket, key, minio.GetObjectOptions{}))
	if err != nil {
		t.Fatalf("%s/%s: not readable without a key: %v", bucket, key, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s/%s: stored bytes differ from those written", bucket, key)
	}
}

func readAll(o *minio.Object, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}

// errCode is the S3 error code of a minio-go error.
func errCode(err error) string {
	return minio.ToErrorResponse(err).Code
}

// newBucket makes a bucket of the test's own directly on MinIO, named
// prefix and a random suffix, with versioning on when asked.
func newBucket(t *testing.T, prefix string, versioned bool) string {
	t.Helper()
	ctx := context.Background()
	bucket := prefix + strings.ToLower(string(hexRand(3)))
	if err := direct(t).MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if versioned {
		if err := direct(t).EnableVersioning(ctx, bucket); err != nil {
			t.Fatal(err)
		}
	}
	return bucket
}
