// Package sigv4 authenticates a client's AWS Signature Version 4 request on
// the server side and decodes and verifies its body as it streams.
//
// It does no I/O beyond an http.Request and an io.Reader. Verify checks the
// request's signature (Authorization header or presigned query) and tells
// how the payload is sent; Auth.Body wraps the raw body and returns io.EOF
// only once every check (length, payload hash, chunk signatures, trailer
// checksum and signature) has passed, holding back the body's last bytes
// until then.
//
// Every error is an *s3err.Error. No error message holds a secret key, a
// signing key or a signature.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	algorithmV4A    = "AWS4-ECDSA-P256-SHA256"
	terminator      = "aws4_request"
	service         = "s3"
	iso8601         = "20060102T150405Z"
	maxPresignedAge = 7 * 24 * 60 * 60 // seconds; S3's limit for X-Amz-Expires
	defaultMaxSkew  = 15 * time.Minute
	emptySHA256Hex  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	streamingV4APrefix       = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
)

// CredentialsFunc returns the secret key for an access key.
type CredentialsFunc func(accessKey string) (secret string, ok bool)

// Verifier authenticates SigV4 requests. The zero value knows no access
// key; it is safe for concurrent use once set up.
type Verifier struct {
	// Credentials looks up secret keys; nil knows no access key.
	Credentials CredentialsFunc
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxSkew is how far a request's date may be from Now; 0 means 15 minutes.
	MaxSkew time.Duration
}

// PayloadMode is how a request's payload is signed, from x-amz-content-sha256.
type PayloadMode int

// The payload modes real clients send.
const (
	Hex                      PayloadMode = iota // a hex sha256 of the whole body
	Unsigned                                    // UNSIGNED-PAYLOAD
	StreamingSigned                             // STREAMING-AWS4-HMAC-SHA256-PAYLOAD
	StreamingSignedTrailer                      // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
	StreamingUnsignedTrailer                    // STREAMING-UNSIGNED-PAYLOAD-TRAILER
)

// String returns the x-amz-content-sha256 value of m ("hex" for Hex).
func (m PayloadMode) String() string {
	switch m {
	case Hex:
		return "hex"
	case Unsigned:
		return unsignedPayload
	case StreamingSigned:
		return streamingSigned
	case StreamingSignedTrailer:
		return streamingSignedTrailer
	case StreamingUnsignedTrailer:
		return streamingUnsignedTrailer
	}
	return "PayloadMode(" + strconv.Itoa(int(m)) + ")"
}

// Streaming reports whether the body is aws-chunked encoded.
func (m PayloadMode) Streaming() bool {
	return m == StreamingSigned || m == StreamingSignedTrailer || m == StreamingUnsignedTrailer
}

// Auth is an authenticated request: who signed it and how its body is sent.
type Auth struct {
	AccessKey     string
	Region        string // from the credential scope; the service is always s3
	Presigned     bool
	Mode          PayloadMode
	PayloadHash   string   // the lower-case hex hash when Mode == Hex
	DecodedLength int64    // body length after decoding; -1 if unknown
	Trailer       string   // lower-case trailer header name from x-amz-trailer, "" if none
	SignedHeaders []string // lower-case names of the signed headers, as listed by the client
	// HeaderChecksum is the lower-case name of an x-amz-checksum-* request
	// header (the checksum sent up front rather than as a trailer), "" if
	// none; Body verifies the data against its value.
	HeaderChecksum string
	headerCkValue  string

	signingKey [32]byte
	seed       [32]byte // the request signature: first link of the chunk chain
	date       string   // ISO 8601 basic request time, as in the string to sign
	scope      string   // date/region/s3/aws4_request
}

// credential is a parsed X-Amz-Credential: <key>/<date>/<region>/s3/aws4_request.
type credential struct {
	accessKey, date, region string
}

// authParams are the parts of an Authorization header or presigned query.
type authParams struct {
	cred          credential
	signedHeaders []string
	signature     [32]byte
}

// parseCredential parses key/date/region/service/aws4_request. The access
// key is what precedes the last four fields, so it may itself hold '/'.
func parseCredential(s string, code s3err.Code) (credential, error) {
	var c credential
	parts := strings.Split(s, "/")
	if len(parts) < 5 {
		return c, s3err.New(code, "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
	}
	n := len(parts)
	c.accessKey = strings.Join(parts[:n-4], "/")
	c.date, c.region = parts[n-4], parts[n-3]
	svc, term := parts[n-2], parts[n-1]
	switch {
	case c.accessKey == "":
		return c, s3err.New(code, "The Credential has an empty access key.")
	case !isDate(c.date):
		return c, s3err.New(code, "Error parsing the X-Amz-Credential parameter; incorrect date format %q. This date in the credential must be in the format \"yyyyMMdd\".", c.date)
	case c.region == "":
		return c, s3err.New(code, "The Credential has an empty region.")
	case svc != service:
		return c, s3err.New(code, "Error parsing the X-Amz-Credential parameter; incorrect service %q. This endpoint belongs to \"s3\".", svc)
	case term != terminator:
		return c, s3err.New(code, "Error parsing the X-Amz-Credential parameter; incorrect terminal %q. This endpoint uses \"aws4_request\".", term)
	}
	return c, nil
}

func isDate(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseSignedHeaders splits a SignedHeaders list; names must be non-empty
// and lower-case, and host must be among them.
func parseSignedHeaders(s string, code s3err.Code) ([]string, error) {
	if s == "" {
		return nil, s3err.New(code, "SignedHeaders is empty.")
	}
	names := strings.Split(s, ";")
	host := false
	for _, n := range names {
		if n == "" {
			return nil, s3err.New(code, "SignedHeaders holds an empty header name.")
		}
		for i := 0; i < len(n); i++ {
			c := n[i]
			if c >= 'A' && c <= 'Z' || c <= ' ' || c >= 0x7f || c == ':' {
				return nil, s3err.New(code, "SignedHeaders must be lower-case header names.")
			}
		}
		if n == "host" {
			host = true
		}
	}
	if !host {
		return nil, s3err.New(code, "The host header must be signed.")
	}
	return names, nil
}

// parseSignature decodes a 64-digit hex signature.
func parseSignature(s string, code s3err.Code) ([32]byte, error) {
	var sig [32]byte
	if len(s) != 64 {
		return sig, s3err.New(code, "The signature must be 64 hexadecimal digits.")
	}
	if _, err := hex.Decode(sig[:], []byte(s)); err != nil {
		return sig, s3err.New(code, "The signature must be 64 hexadecimal digits.")
	}
	return sig, nil
}

// parseAuthorization parses an Authorization header value:
// "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
func parseAuthorization(h string) (authParams, error) {
	var p authParams
	malformed := s3err.AuthorizationHeaderMalformed
	alg, rest, _ := strings.Cut(strings.TrimLeft(h, " "), " ")
	switch alg {
	case algorithm:
	case algorithmV4A:
		return p, s3err.New(s3err.NotImplemented, "Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported.")
	default:
		return p, s3err.New(malformed, "Unsupported authorization type; only AWS4-HMAC-SHA256 is supported.")
	}
	var cred, signed, sig string
	var seen [3]bool
	for f := range strings.SplitSeq(rest, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return p, s3err.New(malformed, "The authorization header is malformed; %q is not of the form key=value.", truncate(k))
		}
		var i int
		switch k {
		case "Credential":
			i, cred = 0, v
		case "SignedHeaders":
			i, signed = 1, v
		case "Signature":
			i, sig = 2, v
		default:
			return p, s3err.New(malformed, "The authorization header is malformed; unknown field %q.", truncate(k))
		}
		if seen[i] {
			return p, s3err.New(malformed, "The authorization header is malformed; %s appears twice.", k)
		}
		seen[i] = true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return p, s3err.New(malformed, "The authorization header is malformed; it needs Credential, SignedHeaders and Signature.")
	}
	var err error
	if p.cred, err = parseCredential(cred, malformed); err != nil {
		return p, err
	}
	if p.signedHeaders, err = parseSignedHeaders(signed, malformed); err != nil {
		return p, err
	}
	if p.signature, err = parseSignature(sig, malformed); err != nil {
		return p, err
	}
	return p, nil
}

// truncate shortens client text quoted in an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// presignParams are the X-Amz-* query parameters of a presigned URL.
type presignParams struct {
	authParams
	date    time.Time
	expires int64
}

// parsePresigned parses the presigned query parameters from the decoded
// query pairs.
func parsePresigned(q []queryPair) (presignParams, error) {
	var p presignParams
	qe := s3err.AuthorizationQueryParametersError
	get := func(name string) (string, error) {
		v, n := "", 0
		for _, kv := range q {
			if kv.key == name {
				v = kv.value
				n++
			}
		}
		switch n {
		case 0:
			return "", s3err.New(qe, "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		case 1:
			return v, nil
		}
		return "", s3err.New(qe, "The query parameter %s appears more than once.", name)
	}
	var vals [6]string
	for i, name := range [...]string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		v, err := get(name)
		if err != nil {
			return p, err
		}
		vals[i] = v
	}
	if vals[0] != algorithm {
		return p, s3err.New(qe, "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\".")
	}
	var err error
	if p.cred, err = parseCredential(vals[1], qe); err != nil {
		return p, err
	}
	if p.date, err = time.Parse(iso8601, vals[2]); err != nil {
		return p, s3err.New(qe, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\".")
	}
	if vals[2][:8] != p.cred.date {
		return p, s3err.New(qe, "Invalid credential date %q. This date is not the same as X-Amz-Date: %q.", p.cred.date, vals[2][:8])
	}
	p.expires, err = strconv.ParseInt(vals[3], 10, 64)
	switch {
	case err != nil:
		return p, s3err.New(qe, "X-Amz-Expires should be a number.")
	case p.expires < 0:
		return p, s3err.New(qe, "X-Amz-Expires must be non-negative.")
	case p.expires > maxPresignedAge:
		return p, s3err.New(qe, "X-Amz-Expires must be less than a week (in seconds) that is 604800.")
	}
	if p.signedHeaders, err = parseSignedHeaders(vals[4], qe); err != nil {
		return p, err
	}
	if p.signature, err = parseSignature(vals[5], qe); err != nil {
		return p, err
	}
	return p, nil
}

// parsePayloadMode maps an x-amz-content-sha256 value to its mode.
func parsePayloadMode(v string) (PayloadMode, string, error) {
	switch v {
	case unsignedPayload:
		return Unsigned, "", nil
	case streamingSigned:
		return StreamingSigned, "", nil
	case streamingSignedTrailer:
		return StreamingSignedTrailer, "", nil
	case streamingUnsignedTrailer:
		return StreamingUnsignedTrailer, "", nil
	}
	if strings.HasPrefix(v, streamingV4APrefix) {
		return 0, "", s3err.New(s3err.NotImplemented, "Signature Version 4A streaming payloads are not supported.")
	}
	if len(v) == 64 && isHex(v) {
		return Hex, strings.ToLower(v), nil
	}
	return 0, "", s3err.New(s3err.InvalidArgument, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.")
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// isPresigned reports whether the query carries SigV4 query authentication.
func isPresigned(q []queryPair) bool {
	for _, kv := range q {
		switch kv.key {
		case "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature":
			return true
		}
	}
	return false
}

// Verify authenticates r by its Authorization header or presigned query
// (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
// X-Amz-SignedHeaders, X-Amz-Signature). It does not read the body.
func (v *Verifier) Verify(r *http.Request) (*Auth, error) {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = defaultMaxSkew
	}
	query := parseQuery(r.URL.RawQuery)
	authz := r.Header.Get("Authorization")
	presigned := isPresigned(query)

	var (
		p       authParams
		reqTime time.Time
		hashVal string
	)
	switch {
	case presigned && authz != "":
		return nil, s3err.New(s3err.InvalidArgument, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified.")
	case presigned:
		pp, err := parsePresigned(query)
		if err != nil {
			return nil, err
		}
		p, reqTime = pp.authParams, pp.date
		hashVal = unsignedPayload
		if hv, ok := r.Header["X-Amz-Content-Sha256"]; ok && len(hv) > 0 {
			hashVal = hv[0]
		}
		t := now()
		if reqTime.Sub(t) > skew {
			return nil, s3err.New(s3err.AccessDenied, "Request is not valid yet")
		}
		if t.Sub(reqTime) > time.Duration(pp.expires)*time.Second {
			return nil, s3err.New(s3err.AccessDenied, "Request has expired")
		}
	case authz != "":
		var err error
		if p, err = parseAuthorization(authz); err != nil {
			return nil, err
		}
		if reqTime, err = headerDate(r.Header); err != nil {
			return nil, err
		}
		if d := reqTime.Format("20060102"); d != p.cred.date {
			return nil, s3err.New(s3err.AuthorizationHeaderMalformed, "Invalid credential date %q. This date is not the same as X-Amz-Date: %q.", p.cred.date, d)
		}
		hv, ok := r.Header["X-Amz-Content-Sha256"]
		if !ok || len(hv) == 0 {
			return nil, s3err.New(s3err.InvalidRequest, "Missing required header for this request: x-amz-content-sha256")
		}
		hashVal = hv[0]
		if d := now().Sub(reqTime); d > skew || d < -skew {
			return nil, s3err.New(s3err.RequestTimeTooSkewed, "")
		}
	default:
		return nil, s3err.New(s3err.AccessDenied, "The request is not signed; Signature Version 4 is required.")
	}

	a := &Auth{
		AccessKey:     p.cred.accessKey,
		Region:        p.cred.region,
		Presigned:     presigned,
		DecodedLength: r.ContentLength,
		SignedHeaders: p.signedHeaders,
	}
	var err error
	if a.Mode, a.PayloadHash, err = parsePayloadMode(hashVal); err != nil {
		return nil, err
	}
	if a.Mode.Streaming() {
		dl := r.Header.Get("X-Amz-Decoded-Content-Length")
		if dl == "" {
			return nil, s3err.New(s3err.MissingContentLength, "You must provide the x-amz-decoded-content-length header with a streaming payload.")
		}
		n, err := strconv.ParseInt(dl, 10, 64)
		if err != nil || n < 0 {
			return nil, s3err.New(s3err.InvalidArgument, "x-amz-decoded-content-length is not a valid length.")
		}
		a.DecodedLength = n
	}
	if a.Mode == StreamingSignedTrailer || a.Mode == StreamingUnsignedTrailer {
		if t := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Amz-Trailer"))); t != "" {
			if _, ok := ChecksumLen(t); !ok {
				return nil, s3err.New(s3err.InvalidRequest, "The value specified in the x-amz-trailer header is not supported.")
			}
			a.Trailer = t
		}
	}
	if err := a.headerChecksum(r.Header); err != nil {
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

	a.date = reqTime.UTC().Format(iso8601)
	a.scope = p.cred.date + "/" + p.cred.region + "/" + service + "/" + terminator
	a.signingKey = deriveKey(secret, p.cred.date, p.cred.region)

	uris := canonicalURIs(r)
	for i, uri := range uris {
		if uri == "" || i > 0 && uri == uris[0] {
			continue
		}
		if sig := a.requestSignature(r, uri, query, presigned, p.signedHeaders, hashVal); hmac.Equal(sig[:], p.signature[:]) {
			a.seed = p.signature
			return a, nil
		}
	}
	return nil, s3err.New(s3err.SignatureDoesNotMatch, "")
}

// headerDate returns the request time from X-Amz-Date, else Date.
func headerDate(h http.Header) (time.Time, error) {
	if v := h.Get("X-Amz-Date"); v != "" {
		t, err := time.Parse(iso8601, v)
		if err != nil {
			return t, s3err.New(s3err.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
		}
		return t, nil
	}
	if v := h.Get("Date"); v != "" {
		t, err := http.ParseTime(v)
		if err != nil {
			return t, s3err.New(s3err.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
		}
		return t.UTC(), nil
	}
	return time.Time{}, s3err.New(s3err.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
}

// SigningKey is the SigV4 signing key of secret for one day (yyyymmdd),
// region and s3: what a POST form's policy is signed with.
func SigningKey(secret, date, region string) [32]byte { return deriveKey(secret, date, region) }

// deriveKey computes the SigV4 signing key for one day, region and s3.
func deriveKey(secret, date, region string) [32]byte {
	k := hmacSum([]byte("AWS4"+secret), date)
	k = hmacSum(k[:], region)
	k = hmacSum(k[:], service)
	return hmacSum(k[:], terminator)
}

func hmacSum(key []byte, data string) [32]byte {
	var out [32]byte
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	m.Sum(out[:0])
	return out
}

// requestSignature computes the signature of r's canonical request with
// the given canonical URI.
func (a *Auth) requestSignature(r *http.Request, uri string, query []queryPair, presigned bool, signed []string, hashVal string) [32]byte {
	bp := bufPool.Get().(*[]byte)
	buf := appendCanonicalRequest((*bp)[:0], r, uri, query, presigned, signed, hashVal)
	crHash := sha256.Sum256(buf)

	buf = buf[:0]
	buf = append(buf, algorithm...)
	buf = append(buf, '\n')
	buf = append(buf, a.date...)
	buf = append(buf, '\n')
	buf = append(buf, a.scope...)
	buf = append(buf, '\n')
	buf = hex.AppendEncode(buf, crHash[:])

	var sig [32]byte
	m := hmac.New(sha256.New, a.signingKey[:])
	m.Write(buf)
	m.Sum(sig[:0])
	*bp = buf
	bufPool.Put(bp)
	return sig
}

// PlainAuth is the Auth of a request whose signature another scheme
// checked (SigV2): its body is plain (UNSIGNED-PAYLOAD, no aws-chunked),
// of the request's Content-Length, and an x-amz-checksum-* header, if
// any, is verified against it as the data passes.
func PlainAuth(r *http.Request, accessKey string, signedHeaders []string) (*Auth, error) {
	a := &Auth{AccessKey: accessKey, Mode: Unsigned, DecodedLength: r.ContentLength, SignedHeaders: signedHeaders}
	if err := a.headerChecksum(r.Header); err != nil {
		return nil, err
	}
	return a, nil
}

// headerChecksum finds the one x-amz-checksum-<algorithm> request header,
// if any. A trailer and a header checksum together, or two header
// checksums, are refused as S3 does.
func (a *Auth) headerChecksum(h http.Header) error {
	for name, vv := range h {
		lower := strings.ToLower(name)
		n, ok := ChecksumLen(lower)
		if !ok {
			continue
		}
		if a.HeaderChecksum != "" || a.Trailer != "" || len(vv) != 1 {
			return s3err.New(s3err.InvalidRequest, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		v := strings.TrimSpace(vv[0])
		if len(v) != n {
			return s3err.New(s3err.InvalidRequest, "Value for %s header is invalid.", lower)
		}
		if _, err := base64.StdEncoding.DecodeString(v); err != nil {
			return s3err.New(s3err.InvalidRequest, "Value for %s header is invalid.", lower)
		}
		a.HeaderChecksum, a.headerCkValue = lower, v
	}
	return nil
}
