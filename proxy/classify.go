package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
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
	if p.req.Body == nil || !judge && rt.op != opDeleteObjects {
		return nil
	}
	limit := int64(maxSmallBody)
	if rt.op == opDeleteObjects {
		limit = maxDeleteBody
	}
	doc, err := io.ReadAll(io.LimitReader(p.req.Body, limit+1))
	if err != nil {
		return s.upstreamError(context.Background(), err, p.body)
	}
	if int64(len(doc)) > limit {
		return s3err.New(s3err.MalformedXML, "the document is larger than %d bytes", limit)
	}
	if rt.op == opDeleteObjects {
		err = checkDeleteKeys(doc)
	} else {
		err = checkAccessBody(rt.access, doc)
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

// checkDeleteKeys refuses a DeleteObjects that names a key of the proxy's
// own (the ETag index), as a DeleteObject of it is.
func checkDeleteKeys(doc []byte) error {
	var del struct {
		Objects []struct{ Key string } `xml:"Object"`
	}
	if err := xml.Unmarshal(doc, &del); err != nil {
		return s3err.New(s3err.MalformedXML, "")
	}
	for _, o := range del.Objects {
		if reservedKey(o.Key) {
			return errReserved()
		}
	}
	return nil
}

// checkAccessBody judges an ACL or public access block document: an ACL
// may grant to the owner only, a public access block must keep all four
// blocks on.
func checkAccessBody(a access, doc []byte) error {
	switch a {
	case accessACLBody:
		if len(bytes.TrimSpace(doc)) == 0 {
			return nil // the ACL is in the headers
		}
		var acp struct {
			Owner  struct{ ID string }
			Grants []struct {
				Grantee struct {
					Type         string `xml:"http://www.w3.org/2001/XMLSchema-instance type,attr"`
					ID           string
					URI          string
					EmailAddress string
				}
				Permission string
			} `xml:"AccessControlList>Grant"`
		}
		if err := xml.Unmarshal(doc, &acp); err != nil {
			return s3err.New(s3err.MalformedXML, "")
		}
		for _, g := range acp.Grants {
			if g.Grantee.ID == "" || g.Grantee.ID != acp.Owner.ID || g.Grantee.URI != "" || g.Grantee.EmailAddress != "" {
				return errAccessChange("an ACL that grants access to anyone but the owner")
			}
		}
	case accessPABBody:
		var pab struct {
			BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets bool
		}
		if err := xml.Unmarshal(doc, &pab); err != nil {
			return s3err.New(s3err.MalformedXML, "")
		}
		if !pab.BlockPublicAcls || !pab.IgnorePublicAcls || !pab.BlockPublicPolicy || !pab.RestrictPublicBuckets {
			return errAccessChange("a public access block with a block turned off")
		}
	}
	return nil
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
