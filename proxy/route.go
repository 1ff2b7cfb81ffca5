package proxy

import (
	"net"
	"net/http"
	"net/url"
	"slices"
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
	if t.Bucket == "" && t.Key != "" {
		return t, s3err.New(s3err.InvalidBucketName, "an object key needs a bucket")
	}
	if len(t.Key) > maxKeyLen {
		return t, s3err.New(s3err.KeyTooLongError, "")
	}
	if !utf8.ValidString(t.Key) {
		return t, s3err.New(s3err.InvalidArgument, "object keys must be valid UTF-8")
	}
	return t, checkKeyPath(t.Key)
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

// sseClass says how an operation is treated (DESIGN.md, "SSE-C per operation").
type sseClass int

const (
	ssePass     sseClass = iota // forwarded as is, re-signed
	sseWrite                    // destination rule's key; refused without a rule
	sseCopy                     // destination rule's key and the source rule's copy-source key
	sseRead                     // rule's key; GET/HEAD retry with previous keys
	ssePostForm                 // browser form upload: refused, it cannot carry a key
)

// op is one S3 operation as the proxy recognises it.
type op struct {
	Name  string
	Class sseClass
}

var (
	opListBuckets       = op{"ListBuckets", ssePass}
	opBucket            = op{"BucketOperation", ssePass}
	opPostObject        = op{"PostObject", ssePostForm}
	opPutObject         = op{"PutObject", sseWrite}
	opCopyObject        = op{"CopyObject", sseCopy}
	opCreateMultipart   = op{"CreateMultipartUpload", sseWrite}
	opUploadPart        = op{"UploadPart", sseWrite}
	opUploadPartCopy    = op{"UploadPartCopy", sseCopy}
	opCompleteMultipart = op{"CompleteMultipartUpload", sseWrite}
	opGetObject         = op{"GetObject", sseRead}
	opHeadObject        = op{"HeadObject", sseRead}
	opGetAttributes     = op{"GetObjectAttributes", sseRead}
	opSelectContent     = op{"SelectObjectContent", sseRead}
	opObject            = op{"ObjectOperation", ssePass} // lists of parts, deletes, ACLs, tags, retention…
	opListObjects       = op{"ListObjects", ssePass}
	opListObjectsV2     = op{"ListObjectsV2", ssePass}
	opListVersions      = op{"ListObjectVersions", ssePass}
)

// listOps are the listings whose ETags the proxy rewrites.
var listOps = map[string]bool{opListObjects.Name: true, opListObjectsV2.Name: true, opListVersions.Name: true}

// listV1Params are the query parameters of a ListObjects (V1) request: a
// bucket GET with any other parameter is another bucket operation.
var listV1Params = []string{"prefix", "delimiter", "marker", "max-keys", "encoding-type", "x-id"}

// objectSubresources are object-level query parameters that make a request
// a metadata operation (passed through) rather than a data operation.
var objectSubresources = []string{"acl", "tagging", "retention", "legal-hold", "torrent", "restore"}

// routes is the operation table, first match wins. Each route matches on the
// request's level, method, query parameters and headers.
type route struct {
	level   level
	method  string
	query   []string // parameters that must be present
	copySrc bool     // x-amz-copy-source must be present
	form    bool     // Content-Type multipart/form-data
	only    []string // when set, every query parameter must be one of these
	op      op
}

var routes = []route{
	{level: levelService, method: http.MethodGet, op: opListBuckets},
	{level: levelBucket, method: http.MethodGet, query: []string{"versions"}, op: opListVersions},
	{level: levelBucket, method: http.MethodGet, query: []string{"list-type"}, op: opListObjectsV2},
	{level: levelBucket, method: http.MethodGet, only: listV1Params, op: opListObjects},
	{level: levelBucket, method: http.MethodPost, form: true, op: opPostObject},
	{level: levelObject, method: http.MethodPut, query: []string{"partNumber", "uploadId"}, copySrc: true, op: opUploadPartCopy},
	{level: levelObject, method: http.MethodPut, query: []string{"partNumber", "uploadId"}, op: opUploadPart},
	{level: levelObject, method: http.MethodPost, query: []string{"uploads"}, op: opCreateMultipart},
	{level: levelObject, method: http.MethodPost, query: []string{"uploadId"}, op: opCompleteMultipart},
	{level: levelObject, method: http.MethodPost, query: []string{"select"}, op: opSelectContent},
	{level: levelObject, method: http.MethodGet, query: []string{"attributes"}, op: opGetAttributes},
	{level: levelObject, method: http.MethodGet, query: []string{"uploadId"}, op: opObject},
	{level: levelObject, method: http.MethodDelete, op: opObject},
}

func init() {
	for _, sub := range objectSubresources {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete} {
			routes = append(routes, route{level: levelObject, method: m, query: []string{sub}, op: opObject})
		}
	}
	routes = append(routes,
		route{level: levelObject, method: http.MethodPut, copySrc: true, op: opCopyObject},
		route{level: levelObject, method: http.MethodPut, op: opPutObject},
		route{level: levelObject, method: http.MethodGet, op: opGetObject},
		route{level: levelObject, method: http.MethodHead, op: opHeadObject},
	)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete} {
		routes = append(routes, route{level: levelBucket, method: m, op: opBucket})
	}
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

// newRouter builds the gorilla/mux router of the operation table. Requests
// that match no route (an unknown method, a POST on an object with no
// recognised subresource) get 405/400 S3 errors from the caller's fallback:
// nothing unclassified goes upstream.
func newRouter(handle func(op) http.Handler, fallback http.Handler) *mux.Router {
	m := mux.NewRouter().SkipClean(true).UseEncodedPath()
	for _, rt := range routes {
		rt := rt
		m.NewRoute().Methods(rt.method).MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool {
			return rt.matches(r)
		}).Handler(handle(rt.op))
	}
	m.NotFoundHandler = fallback
	m.MethodNotAllowedHandler = fallback
	return m
}

func (rt route) matches(r *http.Request) bool {
	info := infoOf(r)
	if info.target.level() != rt.level {
		return false
	}
	q := info.query
	for _, p := range rt.query {
		if _, ok := q[p]; !ok {
			return false
		}
	}
	if rt.copySrc && r.Header.Get("X-Amz-Copy-Source") == "" {
		return false
	}
	if rt.only != nil {
		for p := range q {
			if !slices.Contains(rt.only, p) {
				return false
			}
		}
	}
	if rt.form {
		ct := strings.ToLower(r.Header.Get("Content-Type"))
		return strings.HasPrefix(ct, "multipart/form-data")
	}
	return true
}
