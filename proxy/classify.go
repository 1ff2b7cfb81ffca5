package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// checkRequest refuses what the operation's row does not name: a query
// parameter it does not take (or one given twice), an x-amz header it
// does not take, a header an upstream gives powers of its own. Presigned
// URLs' own parameters were checked by the verifier and are not forwarded.
func (rt *route) checkRequest(q url.Values, h http.Header) error {
	names := make([]string, 0, len(q))
	for p := range q {
		names = append(names, p)
	}
	sort.Strings(names) // the same request is refused with the same words
	for _, p := range names {
		if slices.Contains(presignParams, p) {
			continue
		}
		if !rt.takesParam(p) {
			return s3err.New(s3err.InvalidArgument,
				"ssec-proxy does not recognise the query parameter %q on %s, so it does not forward the request", p, rt.op.Name)
		}
		if len(q[p]) > 1 {
			return s3err.New(s3err.InvalidArgument, "the query parameter %q is given more than once", p)
		}
	}
	if rt.op != opPostObject && isFormData(h.Get("Content-Type")) {
		// MinIO takes a bucket POST of this type for a browser form
		// upload before anything else (?delete too).
		return s3err.New(s3err.InvalidArgument, "ssec-proxy does not forward multipart/form-data bodies on %s", rt.op.Name)
	}
	hnames := make([]string, 0, len(h))
	for name := range h {
		hnames = append(hnames, textproto.CanonicalMIMEHeaderKey(name))
	}
	sort.Strings(hnames)
	for _, name := range hnames {
		if !strings.HasPrefix(name, "X-Amz-") || consumedAmzHeaders[name] {
			continue
		}
		if forbiddenAmz.allows(name) {
			return s3err.New(s3err.InvalidArgument,
				"ssec-proxy refuses the header %s: upstreams give it powers beyond S3's (unpacking archives, appending, internal metadata)", strings.ToLower(name))
		}
		if !commonAmz.allows(name) && !rt.hdr.allows(name) {
			return s3err.New(s3err.InvalidArgument,
				"ssec-proxy does not forward the header %s on %s", strings.ToLower(name), rt.op.Name)
		}
	}
	return nil
}

// upstreamQuery is the query the upstream gets: the operation's own
// parameters, nothing else.
func (rt *route) upstreamQuery(q url.Values) url.Values {
	out := url.Values{}
	for p, vv := range q {
		if slices.Contains(rt.sub, p) || slices.Contains(rt.params, p) {
			out[p] = append([]string(nil), vv...)
		}
	}
	return out
}

// forwardedHeaders are the standard request headers that reach the
// upstream. Of the x-amz headers, those the operation's row allows do
// (checkRequest refused the others). Everything else (hop-by-hop headers,
// Authorization, cookies, proxies' own) is dropped.
var forwardedHeaders = map[string]bool{
	"Cache-Control":       true,
	"Content-Disposition": true,
	"Content-Encoding":    true,
	"Content-Language":    true,
	"Content-Md5":         true,
	"Content-Type":        true,
	"Expect":              true,
	"Expires":             true,
	"If-Match":            true,
	"If-Modified-Since":   true,
	"If-None-Match":       true,
	"If-Unmodified-Since": true,
	"Range":               true,
}

// outboundHeaders reduces the client's headers to the operation's
// allow-list. Client encryption headers are kept only where no rule
// encrypts (plan refuses them before this where one does).
func (rt *route) outboundHeaders(in http.Header) http.Header {
	out := make(http.Header, len(in))
	for name, vv := range in {
		name = textproto.CanonicalMIMEHeaderKey(name)
		switch {
		case name == "Content-Encoding":
			if v := withoutAWSChunked(vv); v != "" {
				out.Set(name, v)
			}
		case forwardedHeaders[name]:
			out[name] = append([]string(nil), vv...)
		case !strings.HasPrefix(name, "X-Amz-") || consumedAmzHeaders[name] || forbiddenAmz.allows(name):
		case commonAmz.allows(name) || rt.hdr.allows(name):
			out[name] = append([]string(nil), vv...)
		}
	}
	return out
}

// withoutAWSChunked removes the aws-chunked coding, which describes only the
// client's framing, from Content-Encoding values.
func withoutAWSChunked(vv []string) string {
	var keep []string
	for _, v := range vv {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "aws-chunked") {
				keep = append(keep, c)
			}
		}
	}
	return strings.Join(keep, ",")
}

// privateACLs are the canned ACLs that give no one but the bucket's owner
// access (rclone sends x-amz-acl: private with every PUT).
var privateACLs = []string{"private", "bucket-owner-read", "bucket-owner-full-control"}

// errAccessChange refuses a request that would widen who can reach the
// upstream bucket.
func errAccessChange(what string) error {
	return s3err.New(s3err.AccessDenied,
		"ssec-proxy refuses %s: it widens who can reach the upstream bucket, around the proxy and its rules; set upstream.allow_access_changes: true to allow it", what)
}

// checkAccessHeaders refuses canned ACLs other than the private ones and
// every x-amz-grant-* header.
func checkAccessHeaders(h http.Header) error {
	for name, vv := range h {
		name = textproto.CanonicalMIMEHeaderKey(name)
		switch {
		case name == "X-Amz-Acl":
			for _, v := range vv {
				if !slices.Contains(privateACLs, strings.ToLower(strings.TrimSpace(v))) {
					return errAccessChange("the canned ACL " + strings.TrimSpace(v))
				}
			}
		case strings.HasPrefix(name, "X-Amz-Grant-"):
			return errAccessChange("the header " + strings.ToLower(name))
		}
	}
	return nil
}

// maxSmallBody bounds the XML documents of configuration writes (S3's own
// largest, a bucket policy, is 20 KiB; lifecycle rules run larger).
const maxSmallBody = 1 << 20

// maxDeleteBody bounds a DeleteObjects request: 1,000 keys of 1 KiB with
// their version ids fit.
const maxDeleteBody = 2 << 20

// checkBody applies the row's body rule once the body is planned. A
// configuration document stays small. A body that a rule must see (the
// keys a DeleteObjects names, an ACL or public access block the access
// rule judges) is read to its verified end, bounded, checked, and sent on
// as it was read.
func (s *Server) checkBody(rt *route, ax *authedExchange, p *plan) error {
	if rt.smallBody && ax.auth.DecodedLength > maxSmallBody {
		return s3err.New(s3err.MalformedXML, "%s takes an XML document of at most %d bytes", rt.op.Name, maxSmallBody)
	}
	judge := !ax.rt.allowAccess && (rt.access == accessACLBody || rt.access == accessPABBody)
	if p.req.Body == nil || !judge && rt.hooks&(hookDeleteKeys|hookLifecycleRules) == 0 {
		return nil
	}
	limit := int64(maxSmallBody)
	if rt.hooks&hookDeleteKeys != 0 {
		limit = maxDeleteBody
	}
	doc, err := io.ReadAll(io.LimitReader(p.req.Body, limit+1))
	if err != nil {
		return s.upstreamError(context.Background(), err, p.body)
	}
	if int64(len(doc)) > limit {
		return s3err.New(s3err.MalformedXML, "the document is larger than %d bytes", limit)
	}
	switch {
	case rt.hooks&hookDeleteKeys != 0:
		err = checkDeleteKeys(doc)
	case rt.hooks&hookLifecycleRules != 0:
		err = checkLifecycleRules(doc)
	case rt.access == accessACLBody && len(bytes.TrimSpace(doc)) == 0:
		// The ACL is in the headers (checked already).
	case rt.access == accessACLBody:
		err = checkAccessBody(rt.access, doc, s.upstreamOwner(ax, p))
	default:
		err = checkAccessBody(rt.access, doc, "")
	}
	if err != nil {
		return err
	}
	p.req.Body = bytes.NewReader(doc)
	if p.req.Trailer == nil {
		sum := sha256.Sum256(doc)
		p.req.Hash = hex.EncodeToString(sum[:])
	}
	return nil
}

// upstreamOwner reads the owner of the bucket or object an ACL is put on
// from the upstream's own ACL of it; "" when it cannot be read.
func (s *Server) upstreamOwner(ax *authedExchange, p *plan) string {
	q := url.Values{"acl": {""}}
	if v := p.req.Query.Get("versionId"); v != "" {
		q.Set("versionId", v)
	}
	ur := exemptRequest(http.MethodGet, ax.target, q)
	resp, err := s.roundTrip(context.Background(), ax.exchange, ur, nil)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSmallBody))
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	root, err := parseXMLDoc(body)
	if err != nil || root.name != "AccessControlPolicy" {
		return ""
	}
	for _, c := range root.children {
		if c.name == "Owner" {
			if id, ok := canonicalID(c); ok {
				return id
			}
		}
	}
	return ""
}

// checkDeleteKeys refuses a DeleteObjects that names a key of the proxy's
// own (the ETag index), as a DeleteObject of it is, or a key that an
// upstream stores under another name (MinIO cleans "/x/../.ssec-proxy/…"
// into ".ssec-proxy/…").
func checkDeleteKeys(doc []byte) error {
	root, err := parseXMLDoc(doc)
	if err != nil || root.name != "Delete" {
		return s3err.New(s3err.MalformedXML, "")
	}
	f, err := root.fields(map[string]int{"Object": 1000, "Quiet": 1}, "Object")
	if err != nil {
		return s3err.New(s3err.MalformedXML, "")
	}
	for _, o := range f["Object"] {
		of, err := o.fields(map[string]int{"Key": 1, "VersionId": 1, "ETag": 1, "LastModifiedTime": 1, "Size": 1}, "Key")
		if err != nil {
			return s3err.New(s3err.MalformedXML, "")
		}
		key := of["Key"][0].text.String() // as sent: S3 takes it byte for byte
		if refusedKey(key) {
			return errReserved()
		}
		if err := checkKeyPath(key); err != nil {
			return err
		}
	}
	return nil
}

// checkLifecycleRules refuses a lifecycle configuration with a rule that
// would expire or move the proxy's own objects apart from the objects
// they serve: a rule whose prefix reaches .ssec-proxy/ (".", ".ssec",
// ".ssec-proxy/etags/…"), or one for small objects across the bucket (an
// index entry is empty). A rule over the whole bucket by age alone is
// allowed: an entry is as old as its object. A rule with a tag condition
// never matches the proxy's objects (they have none). The parts judged
// are read strictly; the rest is the upstream's to judge.
func checkLifecycleRules(doc []byte) error {
	root, err := parseXMLDoc(doc)
	// (BucketLifecycleConfiguration: the root some SDK releases sent, which
	// MinIO takes.)
	if err != nil || root.name != "LifecycleConfiguration" && root.name != "BucketLifecycleConfiguration" {
		return s3err.New(s3err.MalformedXML, "")
	}
	for _, rule := range root.children {
		if rule.name != "Rule" {
			return s3err.New(s3err.MalformedXML, "")
		}
		var (
			prefixes      []string
			tagged, small bool
			id            string
			filters       int
		)
		for _, c := range rule.children {
			switch c.name {
			case "ID":
				id = c.value()
			case "Prefix":
				prefixes = append(prefixes, c.text.String())
			case "Filter":
				if filters++; filters > 1 {
					return s3err.New(s3err.MalformedXML, "a lifecycle rule with more than one filter")
				}
				fp, t, sm, err := lifecycleFilter(c)
				if err != nil {
					return s3err.New(s3err.MalformedXML, "")
				}
				prefixes, tagged, small = append(prefixes, fp...), t, sm
			}
		}
		if len(prefixes) > 1 {
			return s3err.New(s3err.MalformedXML, "a lifecycle rule with more than one prefix")
		}
		prefix := strings.Join(prefixes, "")
		switch {
		case tagged:
		case prefix != "" && (strings.HasPrefix(reservedPrefix, prefix) || strings.HasPrefix(prefix, reservedPrefix)):
			return s3err.New(s3err.AccessDenied,
				"the lifecycle rule %q (prefix %q) reaches %s, ssec-proxy's own objects (its ETag index and upload records): give it a prefix that does not", id, prefix, reservedPrefix)
		case prefix == "" && small:
			return s3err.New(s3err.AccessDenied,
				"the lifecycle rule %q applies to small objects across the bucket, and so to ssec-proxy's own (empty) objects under %s before the objects they serve: give it a prefix", id, reservedPrefix)
		}
	}
	return nil
}

// lifecycleFilter reads a rule's <Filter> (with its <And>): its prefixes,
// whether it has a tag condition (a tag with a key: MinIO takes one
// without a key for no condition), and whether it limits objects to a
// size below a bound.
func lifecycleFilter(f *xmlNode) (prefixes []string, tagged, small bool, err error) {
	fields, err := f.fields(map[string]int{"Prefix": 1, "Tag": 1, "And": 1, "ObjectSizeLessThan": 1, "ObjectSizeGreaterThan": 1})
	if err != nil {
		return nil, false, false, err
	}
	for _, and := range fields["And"] {
		af, err := and.fields(map[string]int{"Prefix": 1, "Tag": 0, "ObjectSizeLessThan": 1, "ObjectSizeGreaterThan": 1})
		if err != nil {
			return nil, false, false, err
		}
		for name, v := range af {
			fields[name] = append(fields[name], v...)
		}
	}
	for _, p := range fields["Prefix"] {
		prefixes = append(prefixes, p.text.String())
	}
	for _, tag := range fields["Tag"] {
		tf, err := tag.fields(map[string]int{"Key": 1, "Value": 1})
		if err != nil {
			return nil, false, false, err
		}
		for _, k := range tf["Key"] {
			tagged = tagged || k.text.Len() > 0
		}
	}
	return prefixes, tagged, len(fields["ObjectSizeLessThan"]) > 0, nil
}

// checkAccessBody judges an ACL or public access block document: an ACL
// may grant to the owner only (owner: the bucket's or object's real owner,
// as the upstream names it; "" when unknown, and then no ACL document
// passes), a public access block must keep all four blocks on.
func checkAccessBody(a access, doc []byte, owner string) error {
	root, err := parseXMLDoc(doc)
	if err != nil {
		return s3err.New(s3err.MalformedXML, "")
	}
	switch a {
	case accessACLBody:
		if root.name != "AccessControlPolicy" {
			return s3err.New(s3err.MalformedXML, "")
		}
		f, err := root.fields(map[string]int{"Owner": 1, "AccessControlList": 1}, "Owner", "AccessControlList")
		if err != nil {
			return s3err.New(s3err.MalformedXML, "")
		}
		if id, ok := canonicalID(f["Owner"][0]); !ok || owner == "" || id != owner {
			return errAccessChange("an ACL whose owner is not the upstream's owner")
		}
		grants, err := f["AccessControlList"][0].fields(map[string]int{"Grant": 0})
		if err != nil {
			return s3err.New(s3err.MalformedXML, "")
		}
		for _, g := range grants["Grant"] {
			gf, err := g.fields(map[string]int{"Grantee": 1, "Permission": 1}, "Grantee", "Permission")
			if err != nil {
				return s3err.New(s3err.MalformedXML, "")
			}
			grantee := gf["Grantee"][0]
			id, ok := canonicalID(grantee)
			if !ok || grantee.attrs["type"] != "CanonicalUser" || id != owner {
				return errAccessChange("an ACL that grants access to anyone but the owner")
			}
		}
	case accessPABBody:
		names := []string{"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"}
		schema := map[string]int{}
		for _, n := range names {
			schema[n] = 1
		}
		if root.name != "PublicAccessBlockConfiguration" {
			return s3err.New(s3err.MalformedXML, "")
		}
		f, err := root.fields(schema, names...)
		if err != nil {
			return errAccessChange("a public access block that does not set each of its four blocks once")
		}
		for _, n := range names {
			if f[n][0].value() != "true" {
				return errAccessChange("a public access block with a block turned off")
			}
		}
	}
	return nil
}

// canonicalID is the one <ID> of an Owner or Grantee that names no one
// else (no URI, no e-mail address).
func canonicalID(n *xmlNode) (string, bool) {
	f, err := n.fields(map[string]int{"ID": 1, "DisplayName": 1}, "ID")
	if err != nil {
		return "", false
	}
	return f["ID"][0].value(), true
}

// describeRequest names what a request was, for the refusal of one that
// matches no operation: the method, the level and the query parameters
// (names only; a presigned URL's own are left out).
func describeRequest(method string, info *reqInfo) string {
	where := [...]string{"the service", "a bucket", "an object"}[info.target.level()]
	var names []string
	for p := range info.query {
		if !slices.Contains(presignParams, p) && !slices.Contains(anyParams, p) {
			names = append(names, p)
		}
	}
	if len(names) == 0 {
		return method + " on " + where
	}
	sort.Strings(names)
	return method + " on " + where + " with ?" + strings.Join(names, "&")
}

// isFormData reports whether a Content-Type is multipart/form-data (as a
// server parses it: any case, parameters, spaces).
func isFormData(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.Contains(strings.ToLower(ct), "multipart/form-data")
	}
	return mt == "multipart/form-data"
}
