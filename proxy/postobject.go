package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ssec-proxy/ssec-proxy/proxy/postform"
	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
	"github.com/ssec-proxy/ssec-proxy/proxy/sigv4"
)

// A browser form upload (POST Object, "presigned POST") carries no
// Authorization: the form's policy is signed instead. The proxy verifies
// the policy (proxy/postform), then makes of the form the PutObject it
// describes and sends that through the same table, rules and SSE-C as
// any PutObject; the file's data streams through, never buffered. The
// answer is S3's for a form: 204 (or success_action_status 200/201), or
// a 303 to success_action_redirect.

// isPostForm reports a request the form path takes: a POST on a bucket of
// multipart/form-data without an Authorization header or presigned query.
func isPostForm(r *http.Request, t target) bool {
	if r.Method != http.MethodPost || t.level() != levelBucket || r.Header.Get("Authorization") != "" {
		return false
	}
	q := r.URL.Query()
	return isFormData(r.Header.Get("Content-Type")) && !q.Has("X-Amz-Signature") && !q.Has("Signature")
}

// formHeaders are the form fields that become the PutObject's standard
// headers (S3's POST Object fields).
var formHeaders = map[string]string{
	"cache-control": "Cache-Control", "content-type": "Content-Type", "content-disposition": "Content-Disposition",
	"content-encoding": "Content-Encoding", "expires": "Expires", "acl": "X-Amz-Acl",
}

// formSigning are the fields of the form's own signature.
var formSigning = map[string]bool{"x-amz-algorithm": true, "x-amz-credential": true, "x-amz-date": true, "x-amz-signature": true}

func (s *Server) servePostForm(ex *exchange, r *http.Request, t target) error {
	ex.op = opPostObject.Name
	rt := ex.rt
	if len(r.URL.Query()) > 0 {
		return s3err.New(s3err.InvalidArgument, "a POST form upload takes no query parameters")
	}
	if r.ContentLength < 0 {
		return s3err.New(s3err.MissingContentLength, "")
	}
	boundary, err := postform.Boundary(r.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(r.Body, 64<<10)
	form, err := postform.ReadFields(br, boundary)
	if err != nil {
		return err
	}
	f := form.Fields
	now := time.Now()
	if s.now != nil {
		now = s.now()
	}
	accessKey, policy, err := postform.Verify(f, postform.Credentials(rt.verifier.Credentials), now, rt.verifierV2 != nil)
	if err != nil {
		ex.authFailed = true
		return err
	}
	ex.accessKey = accessKey
	if err := policy.Check(f, t.Bucket); err != nil {
		return err
	}
	key := strings.ReplaceAll(f["key"], "${filename}", form.FileName)
	if key == "" {
		return s3err.New(s3err.InvalidArgument, "a POST form upload needs a key field")
	}
	if err := checkKey(key); err != nil {
		return err
	}
	n := r.ContentLength - form.Consumed - postform.ClosingLen(boundary)
	if n < 0 {
		return s3err.New(postform.MalformedPOSTRequest, "the form ends before its file")
	}
	if err := policy.CheckLength(n); err != nil {
		return err
	}
	// The PutObject the form describes.
	h := http.Header{}
	for name, v := range f {
		switch {
		case formHeaders[name] != "":
			h.Set(formHeaders[name], v)
		case strings.HasPrefix(name, "x-amz-") && !formSigning[name]:
			h.Set(textproto.CanonicalMIMEHeaderKey(name), v)
		}
	}
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	tt := target{Bucket: t.Bucket, Key: key}
	put := (&http.Request{
		Method: http.MethodPut, URL: &url.URL{Path: objectPath(tt)}, Header: h, Host: r.Host,
		Body: io.NopCloser(postform.FileReader(br, boundary, n)), ContentLength: n,
	}).WithContext(r.Context())
	var signed []string
	for name := range h {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-amz-") {
			signed = append(signed, lower)
		}
	}
	auth, err := sigv4.PlainAuth(put, accessKey, signed)
	if err != nil {
		return err
	}
	// The PutObject answers into rec; the client gets the form's answer.
	rec := &recorder{header: http.Header{}}
	inner := *ex
	inner.w = &responseWriter{ResponseWriter: rec}
	inner.target = tt
	ctx := context.WithValue(put.Context(), infoKey, &reqInfo{target: tt, query: url.Values{}})
	ctx = context.WithValue(ctx, exchangeKey, &authedExchange{&inner, auth})
	s.router.ServeHTTP(inner.w, put.WithContext(ctx))
	ex.target, ex.keyID, ex.decision, ex.bytesIn, ex.errCode, ex.upstream = tt, inner.keyID, inner.decision, inner.bytesIn, inner.errCode, inner.upstream
	ex.ruleBucket, ex.rulePrefix, ex.id = inner.ruleBucket, inner.rulePrefix, inner.id
	if rec.status != http.StatusOK {
		for k, vv := range rec.header {
			ex.w.Header()[k] = vv
		}
		ex.w.WriteHeader(rec.status)
		_, _ = ex.w.Write(rec.body.Bytes())
		return nil
	}
	return s.formAnswer(ex, r, f, tt, rec.header.Get("ETag"))
}

// formAnswer is S3's answer to a form upload that stored its object.
func (s *Server) formAnswer(ex *exchange, r *http.Request, f map[string]string, t target, etag string) error {
	h := ex.w.Header()
	h.Set("X-Amz-Request-Id", ex.id)
	h.Set("ETag", etag)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	location := scheme + "://" + r.Host + encodePath(objectPath(t))
	redirect := f["success_action_redirect"]
	if redirect == "" {
		redirect = f["redirect"]
	}
	if u, err := url.Parse(redirect); redirect != "" && err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		q := u.Query()
		q.Set("bucket", t.Bucket)
		q.Set("key", t.Key)
		q.Set("etag", etag)
		u.RawQuery = q.Encode()
		h.Set("Location", u.String())
		ex.w.WriteHeader(http.StatusSeeOther)
		return nil
	}
	h.Set("Location", location)
	switch f["success_action_status"] {
	case "200":
		ex.w.WriteHeader(http.StatusOK)
	case "201":
		res := struct {
			XMLName  xml.Name `xml:"PostResponse"`
			Location string
			Bucket   string
			Key      string
			ETag     string
		}{Location: location, Bucket: t.Bucket, Key: t.Key, ETag: etag}
		body, _ := xml.Marshal(res)
		h.Set("Content-Type", "application/xml")
		h.Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)))
		ex.w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(ex.w, xml.Header)
		_, _ = ex.w.Write(body)
	default:
		ex.w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

// recorder keeps the answer of the PutObject a form became: its status,
// headers and (error) body.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.body.Len() < 64<<10 {
		w.body.Write(p)
	}
	return len(p), nil
}
