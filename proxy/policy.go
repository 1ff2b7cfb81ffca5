package proxy

import (
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// Header name prefixes of the encryption headers a client may send.
const (
	sseHeaderPrefix     = "X-Amz-Server-Side-Encryption"
	copySSEHeaderPrefix = "X-Amz-Copy-Source-Server-Side-Encryption"
)

// presignParams are the query parameters of a presigned URL; the proxy
// signs the upstream request in its header instead.
var presignParams = []string{
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Content-Sha256",
	"AWSAccessKeyId", "Expires", "Signature", // SigV2 (proxy/sigv2)
}

// hasHeaderPrefix reports whether h holds a header whose canonical name
// starts with prefix.
func hasHeaderPrefix(h http.Header, prefix string) bool {
	for name := range h {
		if strings.HasPrefix(textproto.CanonicalMIMEHeaderKey(name), prefix) {
			return true
		}
	}
	return false
}

// refuseClientSSE answers a request that brings its own encryption headers
// into a prefix whose rule encrypts.
func refuseClientSSE(bucket string, d keystore.Decision, copySource bool) error {
	what := "the x-amz-server-side-encryption headers"
	if copySource {
		what = "the x-amz-copy-source-server-side-encryption headers"
	}
	return s3err.New(s3err.InvalidRequest,
		"ssec-proxy manages encryption for s3://%s/%s (key %s): remove %s from the request",
		bucket, d.Prefix, d.Key.ID(), what)
}

// denied is the answer for an object with no rule under default deny.
func denied(bucket, key string) error {
	return s3err.New(s3err.AccessDenied,
		"ssec-proxy has no rule for bucket %q and key prefix %q, and its default is deny: add a rule for it", bucket, keyPrefix(key))
}

// keyPrefix is the part of key up to and including its last "/", which is
// how a missing rule is named without echoing a whole object key.
func keyPrefix(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i+1]
	}
	return ""
}

// setSSEC adds the SSE-C headers for key, or for the copy source.
func setSSEC(h http.Header, key *keystore.Key, copySource bool) {
	raw := key.Raw()
	sse, err := encrypt.NewSSEC(raw[:])
	if err != nil { // a Key always holds 32 bytes
		panic("keystore.Key with a raw key of the wrong length")
	}
	if copySource {
		sse = encrypt.SSECopy(sse)
	}
	sse.Marshal(h)
}

// clearSSEC removes the SSE-C headers (or the copy source's): a request
// to an object stored without SSE-C. With setSSEC the only code that
// writes them.
func clearSSEC(h http.Header, copySource bool) {
	prefix := sseHeaderPrefix + "-Customer-"
	if copySource {
		prefix = copySSEHeaderPrefix + "-Customer-"
	}
	for name := range h {
		if strings.HasPrefix(textproto.CanonicalMIMEHeaderKey(name), prefix) {
			delete(h, name)
		}
	}
}

// copySource is the bucket and key named by x-amz-copy-source
// ("[/]bucket/key[?versionId=v]", URL-encoded).
type copySource struct {
	Bucket, Key, VersionID string
}

func parseCopySource(v string) (copySource, error) {
	var cs copySource
	v = strings.TrimPrefix(v, "/")
	path, query, _ := strings.Cut(v, "?")
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return cs, s3err.New(s3err.InvalidArgument, "x-amz-copy-source: the query is not valid")
		}
		cs.VersionID = q.Get("versionId")
	}
	encBucket, encKey, ok := strings.Cut(path, "/")
	if !ok || encBucket == "" || encKey == "" {
		return cs, s3err.New(s3err.InvalidArgument, "x-amz-copy-source must name a bucket and a key")
	}
	var err error
	if cs.Bucket, err = url.PathUnescape(encBucket); err != nil || !validBucketName(cs.Bucket) {
		return cs, s3err.New(s3err.InvalidArgument, "x-amz-copy-source: the bucket name is not valid")
	}
	if cs.Bucket == minioReserved {
		return cs, errMinioBucket()
	}
	if cs.Key, err = url.PathUnescape(encKey); err != nil {
		return cs, s3err.New(s3err.InvalidArgument, "x-amz-copy-source: the key is not validly %%-encoded")
	}
	return cs, checkKeyPath(cs.Key)
}

// String is the canonical header value for the upstream.
func (cs copySource) String() string {
	v := objectPath(target{Bucket: cs.Bucket, Key: cs.Key})
	v = encodePath(v)
	if cs.VersionID != "" {
		v += "?versionId=" + url.QueryEscape(cs.VersionID)
	}
	return v
}

// unsignedAmzHeader returns the first x-amz-* header of h (lower-case) that
// is not among the signed headers, "" if all are signed.
func unsignedAmzHeader(h http.Header, signed []string) string {
	for name := range h {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-amz-") && !slices.Contains(signed, lower) {
			return lower
		}
	}
	return ""
}
