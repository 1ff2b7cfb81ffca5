package proxy

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// target is what a request addresses: the bucket and object key exactly as
// the upstream stores them (decoded once from the client's path).
type target struct {
	Bucket string
	Key    string
	VHost  bool // the bucket came from the Host header
}

// level is how deep a request reaches: the service, a bucket, or an object.
type level int

const (
	levelService level = iota
	levelBucket
	levelObject
)

func (t target) level() level {
	switch {
	case t.Bucket == "":
		return levelService
	case t.Key == "":
		return levelBucket
	default:
		return levelObject
	}
}

// maxKeyLen is S3's limit on object key length, in bytes.
const maxKeyLen = 1024

// parseTarget finds the bucket and key of r, virtual-hosted-style when the
// Host is "<bucket>.<domain>", else path-style. The escaped path is split on
// its literal slashes before decoding, so "%2F" stays inside a key and never
// moves a key into another bucket; nothing is cleaned or normalised.
func parseTarget(r *http.Request, domain string) (target, error) {
	var t target
	path := r.URL.EscapedPath()
	if !strings.HasPrefix(path, "/") {
		return t, s3err.New(s3err.InvalidRequest, "the request path must start with /")
	}
	path = path[1:]
	if b, ok := vhostBucket(r.Host, domain); ok {
		t.Bucket, t.VHost = b, true
	} else {
		enc, rest, _ := strings.Cut(path, "/")
		b, err := url.PathUnescape(enc)
		if err != nil {
			return t, s3err.New(s3err.InvalidBucketName, "the bucket name in the path is not validly %%-encoded")
		}
		t.Bucket, path = b, rest
	}
	key, err := url.PathUnescape(path)
	if err != nil {
		return t, s3err.New(s3err.InvalidArgument, "the object key in the path is not validly %%-encoded")
	}
	t.Key = key
	if t.Bucket != "" && !validBucketName(t.Bucket) {
		return t, s3err.New(s3err.InvalidBucketName, "the specified bucket is not valid: %q", t.Bucket)
	}
	if t.Bucket == minioReserved {
		return t, errMinioBucket()
	}
	if t.Bucket == "" && t.Key != "" {
		return t, s3err.New(s3err.InvalidBucketName, "an object key needs a bucket")
	}
	return t, checkKey(t.Key)
}

// checkKey refuses object keys S3 refuses, or stores under another name.
func checkKey(key string) error {
	if len(key) > maxKeyLen {
		return s3err.New(s3err.KeyTooLongError, "")
	}
	if !utf8.ValidString(key) {
		return s3err.New(s3err.InvalidArgument, "object keys must be valid UTF-8")
	}
	return checkKeyPath(key)
}

// minioReserved is the first path segment under which MinIO serves its
// admin, health, metrics and STS APIs: a request for "bucket" minio would
// reach them signed with the upstream's credentials. MinIO refuses to
// make a bucket of that name; the proxy forwards nothing under it.
const minioReserved = "minio"

func errMinioBucket() error {
	return s3err.New(s3err.InvalidBucketName,
		"ssec-proxy does not forward requests for the bucket name %q: MinIO serves its admin APIs under /minio/", minioReserved)
}

// checkKeyPath refuses keys that S3 services do not all store as sent: a
// leading "/", an empty segment ("a//b"), or a "." or ".." segment. MinIO
// stores "//x" as "x"; a rule would then match one key and the upstream
// store another (invariant 4), so the proxy refuses them all. A trailing
// "/" (a folder marker) is fine.
func checkKeyPath(key string) error {
	if key == "" {
		return nil
	}
	segs := strings.Split(strings.TrimSuffix(key, "/"), "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return s3err.New(s3err.InvalidArgument,
				"ssec-proxy refuses object keys with a leading /, an empty segment (//) or a . or .. segment: S3 services store them under other names")
		}
	}
	return nil
}

// vhostBucket returns the bucket of a virtual-hosted-style Host
// ("<bucket>.<domain>", any port).
func vhostBucket(host, domain string) (string, bool) {
	if domain == "" {
		return "", false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	suffix := "." + strings.ToLower(domain)
	if len(host) <= len(suffix) || !strings.HasSuffix(host, suffix) {
		return "", false
	}
	return host[:len(host)-len(suffix)], true
}

// validBucketName applies S3's naming rules for buckets: 3 to 63 lower-case
// letters, digits, dots and hyphens, starting and ending with a letter or
// digit, no "..", not an IP address.
func validBucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 || strings.Contains(b, "..") || net.ParseIP(b) != nil {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || i == len(b)-1 || c != '.' && c != '-') {
			return false
		}
	}
	return true
}

type ctxKey int

const infoKey ctxKey = 0

// reqInfo is what the server learns of a request before routing it; the
// route matchers read it rather than parsing the query once per route.
type reqInfo struct {
	target target
	query  url.Values
}

func infoOf(r *http.Request) *reqInfo {
	i, _ := r.Context().Value(infoKey).(*reqInfo)
	if i == nil {
		return &reqInfo{}
	}
	return i
}

// newRouter builds the gorilla/mux router of the operation table (ops.go).
// Requests that match no row (an unknown method, a POST on an object with
// no recognised subresource) go to fallback, which answers an S3 error:
// nothing unclassified goes upstream.
func newRouter(handle func(*route) http.Handler, fallback http.Handler) *mux.Router {
	m := mux.NewRouter().SkipClean(true).UseEncodedPath()
	for i := range routes {
		rt := &routes[i]
		m.NewRoute().MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool {
			return rt.matches(r, infoOf(r))
		}).Handler(handle(rt))
	}
	m.NotFoundHandler = fallback
	m.MethodNotAllowedHandler = fallback
	return m
}
