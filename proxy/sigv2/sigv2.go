// Package sigv2 authenticates a client's AWS Signature Version 2 request
// (HMAC-SHA1) on the server side: an "Authorization: AWS AKID:signature"
// header, or a presigned query (AWSAccessKeyId, Expires, Signature).
//
// It does no I/O beyond an http.Request's headers and URL. Signature
// Version 2 signs no payload, no Host and only some query parameters (the
// subresources, see SignedQuery in Auth); Auth carries the decoded
// Content-MD5, when sent, for the caller to check the body against.
//
// Every error is an *s3err.Error. No error message holds a secret key, a
// signature or the string to sign (whose x-amz-* header values may hold an
// SSE-C key or a session token).
package sigv2

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

const (
	authPrefix      = "AWS "
	maxPresignedAge = 7 * 24 * time.Hour // as SigV4's X-Amz-Expires limit
	defaultMaxSkew  = 15 * time.Minute
	md5Len          = 16
	sha1Len         = 20
)

// The presigned query parameters.
const (
	paramAccessKey = "AWSAccessKeyId"
	paramExpires   = "Expires"
	paramSignature = "Signature"
)

// PresignParams returns the query parameters of a presigned V2 URL, which
// the proxy removes before it forwards the request.
func PresignParams() []string {
	return []string{paramAccessKey, paramExpires, paramSignature}
}

// CredentialsFunc returns the secret key for an access key.
type CredentialsFunc func(accessKey string) (secret string, ok bool)

// Verifier authenticates SigV2 requests. The zero value knows no access
// key; it is safe for concurrent use once set up.
type Verifier struct {
	// Credentials looks up secret keys; nil knows no access key.
	Credentials CredentialsFunc
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxSkew is how far a header-signed request's Date or x-amz-date may
	// be from Now; 0 means 15 minutes.
	MaxSkew time.Duration
}

// Auth is an authenticated request: who signed it and what the signature
// covers. Everything else of the request (Host, the other headers, the
// other query parameters, the body) is not signed.
type Auth struct {
	AccessKey string
	Presigned bool
	// Expires is when a presigned request stops being valid; zero for a
	// header-signed one.
	Expires time.Time
	// SignedHeaders are the lower-case names of the signed headers, sorted:
	// content-md5 and content-type when sent, date when it is the signed
	// time, and every x-amz-* header. For a presigned request x-amz-*,
	// content-md5 and content-type query parameters count as headers (as
	// botocore sends them) and are listed too.
	SignedHeaders []string
	// SignedQuery are the names of the signed query parameters (the
	// subresources S3 signs, see IsSubresource), sorted.
	SignedQuery []string
	// ContentMD5 is the decoded Content-MD5 (16 bytes), nil when none was
	// sent. The signature covers it, not the body: the caller must check
	// the body against it.
	ContentMD5 []byte
}

// Is reports whether r carries Signature Version 2 authentication: an
// Authorization header starting "AWS ", or AWSAccessKeyId and Signature
// query parameters.
func Is(r *http.Request) bool {
	if strings.HasPrefix(r.Header.Get("Authorization"), authPrefix) {
		return true
	}
	var key, sig bool
	for _, kv := range parseQuery(r.URL.RawQuery) {
		key = key || kv.key == paramAccessKey
		sig = sig || kv.key == paramSignature
	}
	return key && sig
}

// request is what Verify reads from a request before checking it.
type request struct {
	accessKey               string
	signature               [sha1Len]byte
	sigOK                   bool // the signature was well-formed
	date                    string
	contentMD5, contentType string
	presigned               bool
	expires                 time.Time
}

// Verify authenticates r by its Authorization header or presigned query
// (AWSAccessKeyId, Expires, Signature). vhostBucket is the bucket named by
// the Host header (virtual-hosted style, including CNAME buckets), "" for
// a path-style request: the signature covers "/" + vhostBucket + the path
// exactly as sent, and the subresources with their decoded values.
//
// A presigned request's x-amz-*, content-type and content-md5 query
// parameters are signed as headers (botocore moves headers there). A query
// that Go's url.ParseQuery would read differently (bad escapes, ';'), a
// subresource given twice or holding '&', and duplicate Date, x-amz-date,
// Content-Type or Content-MD5 headers are refused. It does not read the
// body.
func (v *Verifier) Verify(r *http.Request, vhostBucket string) (*Auth, error) {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = defaultMaxSkew
	}
	query, err := parseQueryStrict(r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	authz, hasAuthz := r.Header["Authorization"]
	presigned, v4 := false, false
	for _, kv := range query {
		switch kv.key {
		case paramAccessKey, paramSignature:
			presigned = true
		case "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature":
			v4 = true
		}
	}
	if presigned && hasAuthz || v4 || len(authz) > 1 {
		return nil, s3err.New(s3err.InvalidArgument, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified.")
	}

	var req request
	switch {
	case presigned:
		if req, err = parsePresigned(query, now()); err != nil {
			return nil, err
		}
	case hasAuthz:
		if req, err = parseAuthorization(authz[0]); err != nil {
			return nil, err
		}
		var t time.Time
		if req.date, t, err = requestDate(r.Header); err != nil {
			return nil, err
		}
		if d := now().Sub(t); d > skew || d < -skew {
			return nil, s3err.New(s3err.RequestTimeTooSkewed, "")
		}
	default:
		return nil, s3err.New(s3err.AccessDenied, "The request is not signed with Signature Version 2.")
	}

	a := &Auth{AccessKey: req.accessKey, Presigned: presigned, Expires: req.expires}
	if req.contentMD5, err = positional(r.Header, query, "Content-Md5", presigned); err != nil {
		return nil, err
	}
	if req.contentType, err = positional(r.Header, query, "Content-Type", presigned); err != nil {
		return nil, err
	}
	if req.contentMD5 != "" || r.Header["Content-Md5"] != nil {
		if a.ContentMD5, err = decodeMD5(req.contentMD5); err != nil {
			return nil, err
		}
	}
	amz := amzHeaders(r.Header, query, presigned)
	sub, err := subresources(query)
	if err != nil {
		return nil, err
	}

	var secret string
	ok := false
	if v.Credentials != nil {
		secret, ok = v.Credentials(a.AccessKey)
	}
	if !ok {
		return nil, s3err.New(s3err.InvalidAccessKeyID, "")
	}

	bp := bufPool.Get().(*[]byte)
	sts := appendStringToSign((*bp)[:0], r.Method, req.contentMD5, req.contentType, req.date, amz, rawPath(r), vhostBucket, sub)
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(sts)
	var sum [sha1Len]byte
	m.Sum(sum[:0])
	clear(sts)
	*bp = sts
	bufPool.Put(bp)
	if !hmac.Equal(sum[:], req.signature[:]) || !req.sigOK {
		return nil, s3err.New(s3err.SignatureDoesNotMatch, "")
	}

	a.SignedHeaders = signedHeaderNames(amz, req, presigned, r.Header)
	for _, kv := range sub {
		a.SignedQuery = append(a.SignedQuery, kv.key)
	}
	return a, nil
}

// parseAuthorization parses "AWS AKID:signature".
func parseAuthorization(h string) (request, error) {
	var req request
	rest, ok := strings.CutPrefix(h, authPrefix)
	rest = strings.TrimSpace(rest)
	i := strings.LastIndexByte(rest, ':')
	if !ok || i <= 0 || strings.ContainsAny(rest, " \t") {
		return req, s3err.New(s3err.InvalidArgument, "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature")
	}
	req.accessKey = rest[:i]
	req.sigOK = decodeSignature(&req.signature, rest[i+1:])
	return req, nil
}

// decodeSignature decodes a base64 HMAC-SHA1 in its one canonical
// encoding; it reports whether s was one.
func decodeSignature(dst *[sha1Len]byte, s string) bool {
	if len(s) != base64.StdEncoding.EncodedLen(sha1Len) {
		return false
	}
	var buf [sha1Len + 2]byte
	n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(s))
	if err != nil || n != sha1Len {
		return false
	}
	copy(dst[:], buf[:n])
	return true
}

// parsePresigned reads AWSAccessKeyId, Expires and Signature, and checks
// that the URL has not expired and expires within a week.
func parsePresigned(q []queryPair, now time.Time) (request, error) {
	var req request
	req.presigned = true
	var vals [3]string
	for i, name := range [...]string{paramAccessKey, paramExpires, paramSignature} {
		n := 0
		for _, kv := range q {
			if kv.key == name {
				vals[i] = kv.value
				n++
			}
		}
		switch {
		case n == 0:
			return req, s3err.New(s3err.AccessDenied, "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
		case n > 1:
			return req, s3err.New(s3err.InvalidArgument, "The query parameter %s appears more than once.", name)
		}
	}
	req.accessKey, req.date = vals[0], vals[1]
	if req.accessKey == "" {
		return req, s3err.New(s3err.AccessDenied, "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
	}
	exp, ok := parseEpoch(vals[1])
	if !ok {
		return req, s3err.New(s3err.AccessDenied, "Invalid date (should be seconds since epoch): %s", truncate(vals[1]))
	}
	req.expires = time.Unix(exp, 0).UTC()
	switch {
	case now.After(req.expires):
		return req, s3err.New(s3err.AccessDenied, "Request has expired")
	case req.expires.Sub(now) > maxPresignedAge:
		return req, s3err.New(s3err.AccessDenied, "Request expires more than a week from now; a presigned URL is valid for at most 604800 seconds.")
	}
	// A '+' left unencoded in the URL decodes to a space: the signature
	// is base64, so it can only have been a '+'.
	req.sigOK = decodeSignature(&req.signature, strings.ReplaceAll(vals[2], " ", "+"))
	return req, nil
}

// parseEpoch parses seconds since the epoch: 1 to 12 decimal digits.
func parseEpoch(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 12 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// dateLayouts are the formats a Date or x-amz-date header may use: those
// of RFC 2616 (http.ParseTime), with a numeric zone as the AWS examples
// and s3cmd send it, and ISO 8601 basic as SigV4 clients send x-amz-date.
var dateLayouts = []string{time.RFC1123Z, "20060102T150405Z"}

// requestDate returns the Date position of the string to sign ("" when
// x-amz-date is present, which then is signed as an x-amz header) and the
// request time.
func requestDate(h http.Header) (string, time.Time, error) {
	name := "X-Amz-Date"
	vv := h[name]
	if len(vv) == 0 {
		name = "Date"
		vv = h[name]
	}
	if len(vv) != 1 {
		if len(vv) > 1 {
			return "", time.Time{}, s3err.New(s3err.InvalidArgument, "The %s header appears more than once.", name)
		}
		return "", time.Time{}, s3err.New(s3err.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
	}
	v := strings.TrimSpace(vv[0])
	t, err := http.ParseTime(v)
	for _, layout := range dateLayouts {
		if err == nil {
			break
		}
		t, err = time.Parse(layout, v)
	}
	if err != nil {
		return "", time.Time{}, s3err.New(s3err.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
	}
	if name == "X-Amz-Date" {
		v = ""
	}
	return v, t, nil
}

// positional returns the value of the header name (canonical form) for
// its position in the string to sign; a presigned request may carry it as
// a lower-case query parameter instead, as botocore does.
func positional(h http.Header, q []queryPair, name string, presigned bool) (string, error) {
	vv := h[name]
	if len(vv) == 0 && presigned {
		lower := strings.ToLower(name)
		for _, kv := range q {
			if kv.key == lower {
				vv = append(vv, kv.value)
			}
		}
	}
	switch len(vv) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(vv[0]), nil
	}
	return "", s3err.New(s3err.InvalidArgument, "The %s header appears more than once.", name)
}

// decodeMD5 decodes a Content-MD5 value: base64 of 16 bytes.
func decodeMD5(v string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) != md5Len {
		return nil, s3err.New(s3err.InvalidDigest, "")
	}
	return b, nil
}

// signedHeaderNames lists the signed header names for Auth.
func signedHeaderNames(amz []header, req request, presigned bool, h http.Header) []string {
	names := make([]string, 0, len(amz)+3)
	if req.contentMD5 != "" {
		names = append(names, "content-md5")
	}
	if req.contentType != "" {
		names = append(names, "content-type")
	}
	if !presigned && req.date != "" && len(h["Date"]) > 0 {
		names = append(names, "date")
	}
	for _, a := range amz {
		names = append(names, a.name)
	}
	slices.Sort(names)
	return names
}

// truncate shortens client text quoted in an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
