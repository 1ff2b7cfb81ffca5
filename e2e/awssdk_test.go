package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
)

// sdk is an aws-sdk-go-v2 S3 client with default settings (checksums
// "when supported": PutObject and UploadPart go as
// STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer), pointed at the
// proxy. Virtual-hosted style reaches <bucket>.localhost.
func sdk(t *testing.T, pathStyle bool) *s3.Client {
	t.Helper()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: caPool(t, env.caFile), MinVersion: tls.VersionTLS12},
		// <bucket>.localhost is the proxy too.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
	}
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(env.clientAK, env.clientSK, ""),
		HTTPClient:  &http.Client{Transport: tr},
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(env.httpsURL)
		o.UsePathStyle = pathStyle
	})
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestAWSSDKObjects(t *testing.T) {
	buckets(t)
	for _, style := range []struct {
		name string
		path bool
	}{{"path-style", true}, {"virtual-hosted", false}} {
		t.Run(style.name, func(t *testing.T) {
			c := sdk(t, style.path)
			ctx := context.Background()
			key := uniqueKey(t, "sdk/")
			data := randomBytes(200 << 10)
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
				t.Fatalf("put: %v", err)
			}
			assertEncrypted(t, "enc", key, "k1", data)
			g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			got, err := io.ReadAll(g.Body)
			g.Body.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("get: %v, %d bytes", err, len(got))
			}
			h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String(key)})
			if err != nil || aws.ToInt64(h.ContentLength) != int64(len(data)) {
				t.Fatalf("head: %v", err)
			}
			if h.SSECustomerKeyMD5 != nil {
				t.Errorf("head: the SSE-C key MD5 reached the client; the proxy removes it")
			}
			r, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(key), Range: aws.String("bytes=10-19")})
			if err != nil {
				t.Fatal(err)
			}
			got, _ = io.ReadAll(r.Body)
			r.Body.Close()
			if !bytes.Equal(got, data[10:20]) {
				t.Errorf("ranged get returned %d wrong bytes", len(got))
			}
			l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("enc"), Prefix: aws.String(key)})
			if err != nil || len(l.Contents) != 1 {
				t.Fatalf("list: %v, %d objects", err, len(l.Contents))
			}
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("enc"), Key: aws.String(key)}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAWSSDKMultipartAndPartCopy(t *testing.T) {
	buckets(t)
	c := sdk(t, true)
	ctx := context.Background()
	key := uniqueKey(t, "mpu/")
	parts := [][]byte{randomBytes(5 << 20), randomBytes(5 << 20), randomBytes(1234)}
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(key),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		n := int32(i + 1)
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("enc"), Key: aws.String(key), UploadId: cr.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(p), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
		if err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		if up.ChecksumCRC32 == nil {
			t.Errorf("part %d: no CRC32 in the response, want the one the client sent", n)
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(n), ETag: up.ETag, ChecksumCRC32: up.ChecksumCRC32})
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("enc"), Key: aws.String(key), UploadId: cr.UploadId})
	if err != nil || len(lp.Parts) != 3 {
		t.Fatalf("list parts: %v", err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(key),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("complete: %v", err)
	}
	whole := bytes.Join(parts, nil)
	assertEncrypted(t, "enc", key, "k1", whole)

	// UploadPartCopy of the first 5 MiB into a new object, then abort
	// another upload.
	dst := key + "-copy"
	cr2, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(dst)})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("enc"), Key: aws.String(dst), UploadId: cr2.UploadId,
		PartNumber: aws.Int32(1), CopySource: aws.String("enc/" + key), CopySourceRange: aws.String("bytes=0-5242879")})
	if err != nil {
		t.Fatalf("upload part copy: %v", err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(dst),
		UploadId: cr2.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: pc.CopyPartResult.ETag}}}}); err != nil {
		t.Fatalf("complete copy: %v", err)
	}
	assertEncrypted(t, "enc", dst, "k1", whole[:5<<20])

	cr3, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(key + "-aborted")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String(key + "-aborted"), UploadId: cr3.UploadId}); err != nil {
		t.Fatalf("abort: %v", err)
	}
}

func TestAWSSDKCopyObjectAndBuckets(t *testing.T) {
	buckets(t)
	c := sdk(t, true)
	ctx := context.Background()
	bucket := "sdk-" + string(hexRand(4))
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range lb.Buckets {
		found = found || aws.ToString(b.Name) == bucket
	}
	if !found {
		t.Errorf("list buckets misses %s", bucket)
	}
	// No rule covers the new bucket, and the default is deny.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("x"), Body: strings.NewReader("x")})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("put into a bucket with no rule: %v, want AccessDenied", err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("delete bucket: %v", err)
	}

	key := uniqueKey(t, "copy/")
	data := randomBytes(10000)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	odd := key + "/with space+plus%percent/ünï/~x=y&z"
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String(odd), CopySource: aws.String("enc/" + key)}); err != nil {
		t.Fatalf("copy: %v", err)
	}
	assertEncrypted(t, "enc", odd, "k1", data)
	g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(odd)})
	if err != nil {
		t.Fatalf("get of an odd key: %v", err)
	}
	got, _ := io.ReadAll(g.Body)
	g.Body.Close()
	if !bytes.Equal(got, data) {
		t.Error("odd key: content differs")
	}
}

// A checksum the client computes up front travels as a header; the proxy
// verifies it and answers with it, and refuses a body that does not match.
func TestAWSSDKChecksumHeader(t *testing.T) {
	buckets(t)
	c := sdk(t, true)
	ctx := context.Background()
	key := uniqueKey(t, "ck/")
	data := randomBytes(1000)
	sum := crc32.ChecksumIEEE(data)
	good := base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String(key), Body: bytes.NewReader(data), ChecksumCRC32: aws.String(good)})
	if err != nil {
		t.Fatalf("put with a CRC32 header: %v", err)
	}
	if aws.ToString(out.ChecksumCRC32) != good {
		t.Errorf("response CRC32 = %q, want %q", aws.ToString(out.ChecksumCRC32), good)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String(key + "-bad"), Body: bytes.NewReader(data), ChecksumCRC32: aws.String("AAAAAA==")})
	if apiCode(err) != "BadDigest" {
		t.Errorf("put with a wrong CRC32: %v, want BadDigest", err)
	}
	if _, err := direct(t).StatObject(ctx, "enc", key+"-bad", minio.StatObjectOptions{ServerSideEncryption: ssec(t, "k1")}); errCode(err) != "NoSuchKey" {
		t.Errorf("a body with a wrong checksum was committed: %v", err)
	}
}

func TestAWSSDKPresigned(t *testing.T) {
	buckets(t)
	c := sdk(t, true)
	ps := s3.NewPresignClient(c)
	ctx := context.Background()
	key := uniqueKey(t, "sdk-presigned/")
	data := randomBytes(3000)
	put, err := ps.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: transport(t, env.caFile)}
	req, _ := http.NewRequest(put.Method, put.URL, bytes.NewReader(data))
	for k, v := range put.SignedHeader {
		if k != "Host" {
			req.Header[k] = v
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("presigned put: %s %s", resp.Status, body)
	}
	assertEncrypted(t, "enc", key, "k1", data)
	get, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	resp, err = hc.Get(get.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("presigned get: %s", resp.Status)
	}
}
