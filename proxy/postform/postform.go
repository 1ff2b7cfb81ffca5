// Package postform reads and verifies S3 browser form uploads (POST
// Object, "presigned POST"): the form's fields up to its file part, the
// policy's signature (SigV4 or SigV2), its expiry and every condition.
// It does no I/O beyond the io.Reader it is given and holds no key.
package postform

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/textproto"
	"strings"
	"time"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
	"github.com/ssec-proxy/ssec-proxy/proxy/sigv4"
)

// Limits of what is read before the file.
const (
	MaxFields     = 64 << 10 // all fields together, names and values
	maxFieldCount = 100
)

// MalformedPOSTRequest is S3's answer to a form it cannot read.
var MalformedPOSTRequest = s3err.Code{Name: "MalformedPOSTRequest", Message: "The body of your POST request is not well-formed multipart/form-data.", Status: 400}

// Codes of the policy's checks.
var (
	EntityTooSmall = s3err.Code{Name: "EntityTooSmall", Message: "Your proposed upload is smaller than the minimum allowed size.", Status: 400}
	EntityTooLarge = s3err.EntityTooLarge
)

func malformed(format string, args ...any) error {
	return s3err.New(MalformedPOSTRequest, format, args...)
}

// Form is what comes before a form's file: its fields (names lower-cased:
// S3 reads them without regard to case) and the file part's name.
type Form struct {
	Fields   map[string]string
	FileName string // the file part's filename, for ${filename}
	// Consumed is how many bytes of the body the fields and the file
	// part's headers took: the file's data starts there.
	Consumed int64
}

// Boundary returns the boundary of a multipart/form-data Content-Type.
func Boundary(contentType string) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" || len(params["boundary"]) > 70 {
		return "", malformed("the Content-Type must be multipart/form-data with a boundary")
	}
	return params["boundary"], nil
}

// ReadFields reads a form's fields from br up to and including the
// headers of the part named "file", which must come last. br is left at
// the first byte of the file's data.
func ReadFields(br *bufio.Reader, boundary string) (*Form, error) {
	f := &Form{Fields: map[string]string{}}
	delim := "--" + boundary
	var n int64
	line := func() (string, error) {
		l, err := br.ReadString('\n')
		n += int64(len(l))
		if err != nil {
			return "", malformed("the form ends before its file")
		}
		if n > MaxFields {
			return "", malformed("the form's fields are larger than %d bytes", MaxFields)
		}
		return l, nil
	}
	first, err := line()
	if err != nil {
		return nil, err
	}
	if strings.TrimRight(first, "\r\n") != delim {
		return nil, malformed("the form does not start with its boundary")
	}
	for count := 0; ; count++ {
		if count > maxFieldCount {
			return nil, malformed("the form has more than %d fields", maxFieldCount)
		}
		hdr := textproto.MIMEHeader{}
		for {
			l, err := line()
			if err != nil {
				return nil, err
			}
			l = strings.TrimRight(l, "\r\n")
			if l == "" {
				break
			}
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				return nil, malformed("a part header is not a header")
			}
			hdr.Add(textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k)), strings.TrimSpace(v))
		}
		disp, params, err := mime.ParseMediaType(hdr.Get("Content-Disposition"))
		if err != nil || disp != "form-data" || params["name"] == "" {
			return nil, malformed("a part has no form-data name")
		}
		name := strings.ToLower(params["name"])
		if name == "file" {
			// The file part's own Content-Type says nothing: the object's
			// is the Content-Type field's, as S3 takes it.
			f.FileName = params["filename"]
			f.Consumed = n
			return f, nil
		}
		// A field's value runs to the next "\r\n--boundary".
		var val strings.Builder
		for {
			l, err := line()
			if err != nil {
				return nil, err
			}
			if t := strings.TrimRight(l, "\r\n"); t == delim || t == delim+"--" {
				if t == delim+"--" {
					return nil, malformed("the form has no file field")
				}
				break
			}
			val.WriteString(l)
		}
		v := strings.TrimSuffix(val.String(), "\r\n")
		if _, dup := f.Fields[name]; dup {
			return nil, s3err.New(s3err.InvalidArgument, "the form field %q is given more than once", name)
		}
		f.Fields[name] = v
	}
}

// Credentials returns the secret key of an access key.
type Credentials func(accessKey string) (secret string, ok bool)

// Policy is a form's decoded policy.
type Policy struct {
	Expiration time.Time
	conds      []condition
	minLen     int64
	maxLen     int64 // -1: no content-length-range
}

type condition struct {
	op    string // "eq" or "starts-with"
	field string // lower-case, without "$"
	value string
}

// exempt are the fields no condition needs to name.
var exempt = map[string]bool{"x-amz-signature": true, "signature": true, "awsaccesskeyid": true, "file": true, "policy": true}

// Verify checks the form's signature over its policy (SigV4, or SigV2
// when allowV2) and the policy's expiry, and returns the access key and
// the policy. The policy's conditions are checked by Check.
func Verify(fields map[string]string, creds Credentials, now time.Time, allowV2 bool) (string, *Policy, error) {
	b64 := fields["policy"]
	if b64 == "" {
		return "", nil, s3err.New(s3err.AccessDenied, "a POST form upload needs a policy and its signature")
	}
	var ak string
	switch {
	case fields["x-amz-algorithm"] != "":
		if fields["x-amz-algorithm"] != "AWS4-HMAC-SHA256" {
			return "", nil, s3err.New(s3err.InvalidArgument, "the form's x-amz-algorithm must be AWS4-HMAC-SHA256")
		}
		parts := strings.Split(fields["x-amz-credential"], "/")
		if len(parts) != 5 || parts[3] != "s3" || parts[4] != "aws4_request" || len(parts[1]) != 8 {
			return "", nil, s3err.New(s3err.InvalidArgument, "the form's x-amz-credential is not AKID/date/region/s3/aws4_request")
		}
		if !strings.HasPrefix(fields["x-amz-date"], parts[1]) {
			return "", nil, s3err.New(s3err.InvalidArgument, "the form's x-amz-date is not the day of its credential")
		}
		ak = parts[0]
		secret, ok := creds(ak)
		if !ok {
			return "", nil, s3err.New(s3err.InvalidAccessKeyID, "")
		}
		key := sigv4.SigningKey(secret, parts[1], parts[2])
		m := hmac.New(sha256.New, key[:])
		m.Write([]byte(b64))
		got, err := hex.DecodeString(fields["x-amz-signature"])
		if err != nil || !hmac.Equal(got, m.Sum(nil)) {
			return "", nil, s3err.New(s3err.SignatureDoesNotMatch, "")
		}
	case fields["awsaccesskeyid"] != "":
		if !allowV2 {
			return "", nil, s3err.New(s3err.AccessDenied, "Signature Version 2 is not accepted here; sign with SigV4")
		}
		ak = fields["awsaccesskeyid"]
		secret, ok := creds(ak)
		if !ok {
			return "", nil, s3err.New(s3err.InvalidAccessKeyID, "")
		}
		m := hmac.New(sha1.New, []byte(secret))
		m.Write([]byte(b64))
		got, err := base64.StdEncoding.DecodeString(fields["signature"])
		if err != nil || !hmac.Equal(got, m.Sum(nil)) {
			return "", nil, s3err.New(s3err.SignatureDoesNotMatch, "")
		}
	default:
		return "", nil, s3err.New(s3err.AccessDenied, "a POST form upload needs x-amz-credential and x-amz-signature (or AWSAccessKeyId and signature)")
	}
	p, err := ParsePolicy(b64)
	if err != nil {
		return "", nil, err
	}
	if !now.Before(p.Expiration) {
		return "", nil, s3err.New(s3err.AccessDenied, "Invalid according to Policy: Policy expired.")
	}
	return ak, p, nil
}

// ParsePolicy decodes a base64 policy document.
func ParsePolicy(b64 string) (*Policy, error) {
	bad := func(why string) error {
		return s3err.New(s3err.InvalidArgument, "Invalid Policy: %s", why)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, bad("not base64")
	}
	var doc struct {
		Expiration string            `json:"expiration"`
		Conditions []json.RawMessage `json:"conditions"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, bad("not a policy document")
	}
	p := &Policy{maxLen: -1}
	if p.Expiration, err = time.Parse(time.RFC3339Nano, doc.Expiration); err != nil {
		return nil, bad("the expiration is not an ISO 8601 time")
	}
	for _, c := range doc.Conditions {
		var obj map[string]string
		if json.Unmarshal(c, &obj) == nil {
			if len(obj) != 1 {
				return nil, bad("a condition object must name one field")
			}
			for k, v := range obj {
				p.conds = append(p.conds, condition{"eq", strings.ToLower(strings.TrimPrefix(k, "$")), v})
			}
			continue
		}
		var arr []json.RawMessage
		if json.Unmarshal(c, &arr) != nil || len(arr) != 3 {
			return nil, bad("a condition is neither an object nor a list of three")
		}
		var op string
		if json.Unmarshal(arr[0], &op) != nil {
			return nil, bad("a condition's operator is not a string")
		}
		switch strings.ToLower(op) {
		case "eq", "starts-with":
			var field, value string
			if json.Unmarshal(arr[1], &field) != nil || json.Unmarshal(arr[2], &value) != nil || !strings.HasPrefix(field, "$") {
				return nil, bad("a condition must be [op, \"$field\", \"value\"]")
			}
			p.conds = append(p.conds, condition{strings.ToLower(op), strings.ToLower(field[1:]), value})
		case "content-length-range":
			var lo, hi int64
			if json.Unmarshal(arr[1], &lo) != nil || json.Unmarshal(arr[2], &hi) != nil || lo < 0 || hi < lo || p.maxLen >= 0 {
				return nil, bad("content-length-range must be one pair of sizes")
			}
			p.minLen, p.maxLen = lo, hi
		default:
			return nil, bad(fmt.Sprintf("unknown condition %q", op))
		}
	}
	return p, nil
}

// Check checks every condition against the fields and the bucket of the
// request, and that every field (but the exempt ones and x-ignore-*) is
// named by a condition, as S3 does.
func (p *Policy) Check(fields map[string]string, bucket string) error {
	named := map[string]bool{}
	sawBucket := false
	for _, c := range p.conds {
		v, ok := fields[c.field]
		if c.field == "bucket" {
			v, ok, sawBucket = bucket, true, true
		}
		named[c.field] = true
		if !ok {
			return failed(c)
		}
		switch c.op {
		case "eq":
			if v != c.value {
				return failed(c)
			}
		case "starts-with":
			if c.field == "content-type" {
				// S3 takes a comma-separated Content-Type as several.
				for _, part := range strings.Split(v, ",") {
					if !strings.HasPrefix(strings.TrimSpace(part), c.value) {
						return failed(c)
					}
				}
			} else if !strings.HasPrefix(v, c.value) {
				return failed(c)
			}
		}
	}
	if !sawBucket {
		return s3err.New(s3err.AccessDenied, "Invalid according to Policy: the policy names no bucket")
	}
	for name := range fields {
		if !exempt[name] && !strings.HasPrefix(name, "x-ignore-") && !named[name] {
			return s3err.New(s3err.AccessDenied, "Invalid according to Policy: Extra input fields: %s", name)
		}
	}
	return nil
}

func failed(c condition) error {
	return s3err.New(s3err.AccessDenied, "Invalid according to Policy: Policy Condition failed: [%q, \"$%s\", %q]", c.op, c.field, c.value)
}

// CheckLength checks the file's size against content-length-range.
func (p *Policy) CheckLength(n int64) error {
	if p.maxLen < 0 {
		return nil
	}
	if n < p.minLen {
		return s3err.New(EntityTooSmall, "")
	}
	if n > p.maxLen {
		return s3err.New(EntityTooLarge, "")
	}
	return nil
}

// FileReader returns the file's data: exactly n bytes of br, then the
// closing "\r\n--boundary--" (and an optional CRLF) before EOF. A boundary
// inside the data (a field after the file) or any other ending is an
// error, returned instead of the data's final EOF, so that nothing
// downstream commits a file the form did not hold.
func FileReader(br *bufio.Reader, boundary string, n int64) io.Reader {
	return &fileReader{br: br, left: n, delim: []byte("\r\n--" + boundary)}
}

type fileReader struct {
	br    *bufio.Reader
	left  int64
	delim []byte
	tail  []byte // the data's last len(delim)-1 bytes, for a boundary split across reads
	err   error
}

func (f *fileReader) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.left == 0 {
		f.err = f.end()
		return 0, f.err
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.br.Read(p)
	f.left -= int64(n)
	window := append(f.tail, p[:n]...)
	if bytes.Contains(window, f.delim) {
		f.err = malformed("the file must be the last field of the form")
		return 0, f.err
	}
	if keep := len(f.delim) - 1; len(window) > keep {
		f.tail = append(f.tail[:0], window[len(window)-keep:]...)
	} else {
		f.tail = append(f.tail[:0], window...)
	}
	if err == io.EOF {
		if f.left > 0 {
			f.err = malformed("the form ends inside its file")
			return n, f.err
		}
		err = nil
	}
	return n, err
}

// end checks what follows the data: the closing boundary.
func (f *fileReader) end() error {
	rest, err := io.ReadAll(io.LimitReader(f.br, int64(len(f.delim))+5))
	if err != nil {
		return malformed("the form could not be read to its end")
	}
	close := append(append([]byte{}, f.delim...), '-', '-')
	if !bytes.Equal(rest, close) && !bytes.Equal(rest, append(close, '\r', '\n')) {
		return malformed("the form does not end with its closing boundary after the file")
	}
	return io.EOF
}

// ClosingLen is the length of the closing delimiter a form's body ends
// with after the file: the file's size is the body's rest less it.
func ClosingLen(boundary string) int64 { return int64(len("\r\n--" + boundary + "--\r\n")) }
