package proxy

import (
	"net/http"
	"slices"
	"strings"
)

// The operation table (DESIGN.md, "SSE-C per operation"; invariant 8).
// A request is served only when it matches one row exactly: its level and
// method, the subresources that name the operation, x-amz-copy-source
// where the row is a copy; then every query parameter must be one the
// row names and every x-amz header one the row allows. Anything else is a
// 4xx S3 error that names what was not recognised: nothing unclassified
// goes upstream.

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

// The operations other code refers to by name; every other row of the
// table makes its op from its name and class.
var (
	opListBuckets       = op{"ListBuckets", ssePass}
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
	opListObjects       = op{"ListObjects", ssePass}
	opListObjectsV2     = op{"ListObjectsV2", ssePass}
	opListVersions      = op{"ListObjectVersions", ssePass}
	opDeleteObjects     = op{"DeleteObjects", ssePass}
)

// access says what an operation may do to who can reach the upstream
// bucket (upstream.allow_access_changes).
type access int

const (
	accessNone    access = iota
	accessHeaders        // x-amz-acl and x-amz-grant-* headers are checked
	accessACLBody        // and the AccessControlPolicy body: grants to the owner only
	accessPABBody        // a PublicAccessBlockConfiguration body: all four blocks on
	accessWidens         // always widens access (a bucket policy, removing a public access block; replication, logging and notifications, which send data or events elsewhere; ownership controls, which can turn ACLs back on)
)

// etagHook is what an operation's answer needs for MD5 ETags (etag.go,
// adjustETags): the listing rewritten, the client ETag recorded or put in.
type etagHook int

const (
	etagNone       etagHook = iota
	etagList                // a listing: the index left out, client ETags put in
	etagPut                 // PutObject: the data's MD5 recorded and answered
	etagPart                // UploadPart: the part's MD5 recorded and answered
	etagRead                // GetObject, HeadObject: the client ETag answered
	etagAttributes          // GetObjectAttributes: the same, in the XML
	etagComplete            // CompleteMultipartUpload: the multipart MD5 recorded and answered
	etagCopy                // CopyObject: the source's client ETag recorded and answered
)

// hook is what else an operation needs of the proxy, beyond its SSE-C
// class and ETag hook: a row says it, the code that does it asks the row.
type hook uint16

const (
	hookFirstWrite     hook = 1 << iota // PutObject, CreateMultipartUpload: an upstream's SSE-C refusal is explained (refusedSSEC)
	hookDataBody                        // PutObject, UploadPart: object data (its length required, its MD5 the ETag)
	hookUploadStart                     // CreateMultipartUpload: the key the upload is created with is recorded (uploads.go)
	hookUploadKey                       // UploadPart, UploadPartCopy, CompleteMultipartUpload: the upload's own key
	hookUploadEnd                       // CompleteMultipartUpload, AbortMultipartUpload: the upload's records removed
	hookDeletes                         // DeleteObject, DeleteObjects: the index entries of what is deleted removed
	hookDeleteKeys                      // DeleteObjects: the keys its body names checked
	hookBucketDelete                    // DeleteBucket: the proxy's own objects removed when nothing else is left
	hookSealedTokens                    // ListObjectsV2: continuation tokens sealed (listtoken.go)
	hookSelfCopy                        // CopyObject: a copy onto itself without a change refused
	hookLifecycleRules                  // PutBucketLifecycle: rules that reach the proxy's own objects refused
)

// route is one row of the operation table.
type route struct {
	op     op
	etag   etagHook
	hooks  hook
	level  level
	method string
	sub    []string          // query parameters that name the operation; all present
	values map[string]string // required values of some of them ("list-type": "2")
	params []string          // the other query parameters the operation takes
	copy   bool              // x-amz-copy-source must be present
	form   bool              // Content-Type multipart/form-data
	hdr    *headerSet        // the x-amz headers the operation takes, besides commonAmz
	access access
	// smallBody bounds the body of an operation that takes a small XML
	// document (tagging, ACLs, configurations): an upstream that read it
	// as an object's data could never store much.
	smallBody bool
}

// headerSet is an allow-list of x-amz header names (canonical form), and
// of name prefixes.
type headerSet struct {
	names    map[string]bool
	prefixes []string
}

func headers(names ...string) *headerSet {
	h := &headerSet{names: map[string]bool{}}
	for _, n := range names {
		if p, ok := strings.CutSuffix(n, "*"); ok {
			h.prefixes = append(h.prefixes, p)
		} else {
			h.names[n] = true
		}
	}
	return h
}

func (h *headerSet) plus(names ...string) *headerSet {
	out := headers(names...)
	for n := range h.names {
		out.names[n] = true
	}
	out.prefixes = append(out.prefixes, h.prefixes...)
	return out
}

func (h *headerSet) allows(name string) bool {
	if h == nil {
		return false
	}
	if h.names[name] {
		return true
	}
	for _, p := range h.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// commonAmz are x-amz headers every operation may carry: the client's own
// signing and framing (consumed by the proxy, never forwarded:
// consumedAmzHeaders) and a few that only narrow what the request does.
var commonAmz = headers(
	"X-Amz-Expected-Bucket-Owner",
	"X-Amz-Request-Payer",
	"X-Amz-Sdk-Checksum-Algorithm",
)

// consumedAmzHeaders describe the client's signature and framing: the
// proxy checks them and signs and frames the upstream request itself.
var consumedAmzHeaders = map[string]bool{
	"X-Amz-Content-Sha256":         true,
	"X-Amz-Date":                   true,
	"X-Amz-Security-Token":         true,
	"X-Amz-Decoded-Content-Length": true,
	"X-Amz-Trailer":                true,
	"X-Amz-User-Agent":             true, // the SDK's name; says nothing to S3
}

// forbiddenAmz are headers the S3 API allows (user metadata) to which
// upstreams give powers of their own; they are refused on every
// operation:
//   - X-Amz-Meta-Snowball-Auto-Extract makes MinIO (and AWS Snowball)
//     unpack a tar into objects at names of the tar's choosing, each with
//     the SSE-C headers of the tar's own target; X-Amz-Meta-Minio-* are
//     its options (snowball prefix, ignore-dirs, ignore-errors) and
//     MinIO's other reserved names;
//   - X-Amz-Meta-X-Amz-Unencrypted-Content-Length/-Md5 are the names
//     MinIO keeps its own encryption metadata under.
var forbiddenAmz = headers(
	"X-Amz-Meta-Snowball-*",
	"X-Amz-Meta-Minio-*",
	"X-Amz-Meta-X-Amz-Unencrypted-*",
	"X-Amz-Write-Offset-Bytes", // MinIO's append to an existing object
)

var (
	checksumAmz = headers("X-Amz-Checksum-Crc32", "X-Amz-Checksum-Crc32c", "X-Amz-Checksum-Crc64nvme",
		"X-Amz-Checksum-Sha1", "X-Amz-Checksum-Sha256")
	grantAmz = headers("X-Amz-Acl", "X-Amz-Grant-Full-Control", "X-Amz-Grant-Read", "X-Amz-Grant-Read-Acp",
		"X-Amz-Grant-Write", "X-Amz-Grant-Write-Acp")
	// newObjectAmz are what S3 takes when it makes an object: user metadata,
	// storage class, tags, object lock, ACL and encryption.
	newObjectAmz = grantAmz.plus("X-Amz-Meta-*", "X-Amz-Storage-Class", "X-Amz-Tagging",
		"X-Amz-Website-Redirect-Location", "X-Amz-Object-Lock-Mode", "X-Amz-Object-Lock-Retain-Until-Date",
		"X-Amz-Object-Lock-Legal-Hold", "X-Amz-Server-Side-Encryption*")
	copySourceAmz = headers("X-Amz-Copy-Source", "X-Amz-Copy-Source-If-Match", "X-Amz-Copy-Source-If-None-Match",
		"X-Amz-Copy-Source-If-Modified-Since", "X-Amz-Copy-Source-If-Unmodified-Since",
		"X-Amz-Copy-Source-Server-Side-Encryption-Customer-*", "X-Amz-Source-Expected-Bucket-Owner")
	ssecAmz   = headers("X-Amz-Server-Side-Encryption-Customer-*")
	deleteAmz = headers("X-Amz-Mfa", "X-Amz-Bypass-Governance-Retention")
	configAmz = checksumAmz // the bucket and object configuration writes
)

// Query parameters of the operations that take more than a version.
var (
	responseParams = []string{"versionId", "partNumber", "response-cache-control", "response-content-disposition",
		"response-content-encoding", "response-content-language", "response-content-type", "response-expires"}
	versionParam = []string{"versionId"}
)

// anyParams are query parameters any operation may carry. x-id names the
// operation for the SDK's own logs; S3 ignores it, and so does the proxy
// (it is not forwarded).
var anyParams = []string{"x-id"}

// bucketConfigs are the bucket subresources that are read, written and
// (some) deleted as one XML document, with the access check of a write.
var bucketConfigs = []struct {
	sub    string
	delete bool
	access access
	hdr    *headerSet
	hooks  hook // of the Put row
}{
	{"acl", false, accessACLBody, grantAmz.plus(configAmz.prefixesAndNames()...), 0},
	{"policy", true, accessWidens, configAmz.plus("X-Amz-Confirm-Remove-Self-Bucket-Access"), 0},
	{"publicAccessBlock", true, accessPABBody, configAmz, 0},
	{"versioning", false, accessNone, configAmz.plus("X-Amz-Mfa"), 0},
	{"lifecycle", true, accessNone, configAmz.plus("X-Amz-Transition-Default-Minimum-Object-Size"), hookLifecycleRules},
	{"cors", true, accessNone, configAmz, 0},
	{"tagging", true, accessNone, configAmz, 0},
	{"website", true, accessNone, configAmz, 0},
	{"logging", false, accessWidens, configAmz, 0},
	{"notification", false, accessWidens, configAmz, 0},
	{"encryption", true, accessNone, configAmz, 0},
	{"object-lock", false, accessNone, configAmz.plus("X-Amz-Bucket-Object-Lock-Token"), 0},
	{"replication", true, accessWidens, configAmz.plus("X-Amz-Bucket-Object-Lock-Token"), 0},
	{"requestPayment", false, accessNone, configAmz, 0},
	{"ownershipControls", true, accessWidens, configAmz, 0},
	{"accelerate", false, accessNone, configAmz, 0},
}

// prefixesAndNames lists the set's entries in the form headers() takes.
func (h *headerSet) prefixesAndNames() []string {
	var out []string
	for n := range h.names {
		out = append(out, n)
	}
	for _, p := range h.prefixes {
		out = append(out, p+"*")
	}
	return out
}

// objectSubs are the object subresources read, written and deleted as an
// XML document.
var objectSubs = []struct {
	sub, name string // name: the operation's name without Get/Put/Delete
	delete    bool
	access    access
	hdr       *headerSet
}{
	{"acl", "ObjectAcl", false, accessACLBody, grantAmz.plus(configAmz.prefixesAndNames()...)},
	{"tagging", "ObjectTagging", true, accessNone, configAmz},
	{"retention", "ObjectRetention", false, accessNone, configAmz.plus("X-Amz-Bypass-Governance-Retention")},
	{"legal-hold", "ObjectLegalHold", false, accessNone, configAmz},
}

// routes is the operation table, first match wins: rows with
// subresources come before the row their method has without any.
var routes = buildRoutes()

func buildRoutes() []route {
	svc, bkt, obj := levelService, levelBucket, levelObject
	get, put, post, del, head := http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodHead
	rs := []route{
		{op: opListBuckets, level: svc, method: get, params: []string{"max-buckets", "continuation-token", "prefix", "bucket-region"}},

		{op: opListVersions, etag: etagList, level: bkt, method: get, sub: []string{"versions"},
			params: []string{"delimiter", "encoding-type", "key-marker", "max-keys", "prefix", "version-id-marker"},
			hdr:    headers("X-Amz-Optional-Object-Attributes")},
		{op: opListObjectsV2, etag: etagList, hooks: hookSealedTokens, level: bkt, method: get, sub: []string{"list-type"}, values: map[string]string{"list-type": "2"},
			params: []string{"continuation-token", "delimiter", "encoding-type", "fetch-owner", "max-keys", "prefix", "start-after"},
			hdr:    headers("X-Amz-Optional-Object-Attributes")},
		{op: op{"ListMultipartUploads", ssePass}, level: bkt, method: get, sub: []string{"uploads"},
			params: []string{"delimiter", "encoding-type", "key-marker", "max-uploads", "prefix", "upload-id-marker"}},
		{op: op{"GetBucketLocation", ssePass}, level: bkt, method: get, sub: []string{"location"}},
		{op: op{"GetBucketPolicyStatus", ssePass}, level: bkt, method: get, sub: []string{"policyStatus"}},
		// A form upload first, whatever its query says: MinIO takes any
		// bucket POST of multipart/form-data for one (?delete too).
		{op: opPostObject, level: bkt, method: post, form: true},
		{op: opDeleteObjects, hooks: hookDeletes | hookDeleteKeys, level: bkt, method: post, sub: []string{"delete"}, hdr: deleteAmz.plus(checksumAmz.prefixesAndNames()...)},
	}
	for _, c := range bucketConfigs {
		name := "Bucket" + strings.ToUpper(c.sub[:1]) + c.sub[1:]
		switch c.sub {
		case "object-lock":
			name = "ObjectLockConfiguration"
		case "publicAccessBlock":
			name = "PublicAccessBlock"
		}
		rs = append(rs,
			route{op: op{"Get" + name, ssePass}, level: bkt, method: get, sub: []string{c.sub}},
			route{op: op{"Put" + name, ssePass}, level: bkt, method: put, sub: []string{c.sub}, hdr: c.hdr, access: c.access, hooks: c.hooks, smallBody: true})
		if c.delete {
			a := accessNone
			if c.sub == "publicAccessBlock" || c.sub == "ownershipControls" {
				a = accessWidens // without them, public ACLs and policies work again
			}
			rs = append(rs, route{op: op{"Delete" + name, ssePass}, level: bkt, method: del, sub: []string{c.sub}, access: a})
		}
	}
	rs = append(rs,
		route{op: opListObjects, etag: etagList, level: bkt, method: get,
			params: []string{"delimiter", "encoding-type", "marker", "max-keys", "prefix"},
			hdr:    headers("X-Amz-Optional-Object-Attributes")},
		route{op: op{"HeadBucket", ssePass}, level: bkt, method: head},
		route{op: op{"CreateBucket", ssePass}, level: bkt, method: put, access: accessHeaders, smallBody: true,
			hdr: grantAmz.plus("X-Amz-Bucket-Object-Lock-Enabled", "X-Amz-Object-Ownership")},
		route{op: op{"DeleteBucket", ssePass}, hooks: hookBucketDelete, level: bkt, method: del},

		route{op: opUploadPartCopy, hooks: hookUploadKey, level: obj, method: put, sub: []string{"partNumber", "uploadId"}, copy: true,
			hdr: copySourceAmz.plus("X-Amz-Copy-Source-Range", "X-Amz-Server-Side-Encryption-Customer-*")},
		route{op: opUploadPart, etag: etagPart, hooks: hookDataBody | hookUploadKey, level: obj, method: put, sub: []string{"partNumber", "uploadId"},
			hdr: checksumAmz.plus("X-Amz-Server-Side-Encryption-Customer-*")},
	)
	for _, s := range objectSubs {
		rs = append(rs,
			route{op: op{"Get" + s.name, ssePass}, level: obj, method: get, sub: []string{s.sub}, params: versionParam},
			route{op: op{"Put" + s.name, ssePass}, level: obj, method: put, sub: []string{s.sub}, params: versionParam,
				hdr: s.hdr, access: s.access, smallBody: true})
		if s.delete {
			rs = append(rs, route{op: op{"Delete" + s.name, ssePass}, level: obj, method: del, sub: []string{s.sub}, params: versionParam})
		}
	}
	rs = append(rs,
		route{op: opCopyObject, etag: etagCopy, hooks: hookSelfCopy, level: obj, method: put, copy: true, access: accessHeaders,
			hdr: newObjectAmz.plus(append(copySourceAmz.prefixesAndNames(),
				"X-Amz-Metadata-Directive", "X-Amz-Tagging-Directive", "X-Amz-Checksum-Algorithm")...)},
		route{op: opPutObject, etag: etagPut, hooks: hookFirstWrite | hookDataBody, level: obj, method: put, access: accessHeaders,
			hdr: newObjectAmz.plus(checksumAmz.prefixesAndNames()...)},

		route{op: opCreateMultipart, hooks: hookFirstWrite | hookUploadStart, level: obj, method: post, sub: []string{"uploads"}, access: accessHeaders,
			hdr: newObjectAmz.plus("X-Amz-Checksum-Algorithm", "X-Amz-Checksum-Type")},
		route{op: opCompleteMultipart, etag: etagComplete, hooks: hookUploadKey | hookUploadEnd, level: obj, method: post, sub: []string{"uploadId"},
			hdr: checksumAmz.plus("X-Amz-Checksum-Type", "X-Amz-Mp-Object-Size", "X-Amz-Server-Side-Encryption-Customer-*")},
		route{op: opSelectContent, level: obj, method: post, sub: []string{"select", "select-type"},
			values: map[string]string{"select-type": "2"}, hdr: ssecAmz},

		route{op: op{"ListParts", ssePass}, level: obj, method: get, sub: []string{"uploadId"},
			params: []string{"max-parts", "part-number-marker", "encoding-type"}},
		route{op: opGetAttributes, etag: etagAttributes, level: obj, method: get, sub: []string{"attributes"}, params: versionParam,
			hdr: ssecAmz.plus("X-Amz-Object-Attributes", "X-Amz-Max-Parts", "X-Amz-Part-Number-Marker")},
		route{op: opGetObject, etag: etagRead, level: obj, method: get, params: responseParams, hdr: ssecAmz.plus("X-Amz-Checksum-Mode")},
		route{op: opHeadObject, etag: etagRead, level: obj, method: head, params: responseParams, hdr: ssecAmz.plus("X-Amz-Checksum-Mode")},

		route{op: op{"AbortMultipartUpload", ssePass}, hooks: hookUploadEnd, level: obj, method: del, sub: []string{"uploadId"}},
		route{op: op{"DeleteObject", ssePass}, hooks: hookDeletes, level: obj, method: del, params: versionParam,
			hdr: deleteAmz.plus("X-Amz-If-Match-Last-Modified-Time", "X-Amz-If-Match-Size")},
	)
	return rs
}

// matches reports whether r is this row's operation: level, method,
// subresources and the copy source. Its parameters and headers are
// checked after (checkRequest), so that a near miss is refused with what
// was not recognised rather than taken for another operation.
func (rt *route) matches(r *http.Request, info *reqInfo) bool {
	if info.target.level() != rt.level || r.Method != rt.method {
		return false
	}
	for _, p := range rt.sub {
		vv, ok := info.query[p]
		if !ok {
			return false
		}
		if want, ok := rt.values[p]; ok && (len(vv) != 1 || vv[0] != want) {
			return false
		}
	}
	if rt.copy && r.Header.Get("X-Amz-Copy-Source") == "" {
		return false
	}
	if rt.form {
		return isFormData(r.Header.Get("Content-Type"))
	}
	return true
}

// takesParam reports whether p is a query parameter of the operation.
func (rt *route) takesParam(p string) bool {
	return slices.Contains(rt.sub, p) || slices.Contains(rt.params, p) || slices.Contains(anyParams, p)
}
