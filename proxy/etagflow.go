package proxy

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// The steps of a request that keep client ETags consistent (see etag.go).

// readKeys are the keys a read under d tries, in order.
func readKeys(d keystore.Decision) []*keystore.Key {
	if !d.Encrypt {
		return nil
	}
	return append([]*keystore.Key{d.Key}, d.Previous...)
}

// maxCompleteBody bounds a CompleteMultipartUpload request: 10,000 parts
// with checksums fit in well under it.
const maxCompleteBody = 4 << 20

// prepareETags runs before the request goes upstream: it maps client part
// ETags back to the upstream's for CompleteMultipartUpload, and evaluates
// ETag conditions against client ETags.
func (s *Server) prepareETags(ctx context.Context, ax *authedExchange, r *http.Request, p *plan) (done bool, err error) {
	ex := ax.exchange
	if !ex.rt.md5ETags {
		return false, nil
	}
	switch {
	case p.etag == etagComplete && len(p.keys) > 0:
		return false, s.prepareComplete(ctx, ex, p)
	case p.etag == etagRead && len(p.keys) > 0 &&
		(r.Header.Get("If-Match") != "" || r.Header.Get("If-None-Match") != ""):
		return s.readConditions(ctx, ex, r, p)
	case p.copy != nil && p.copy.srcKey != nil &&
		(r.Header.Get("X-Amz-Copy-Source-If-Match") != "" || r.Header.Get("X-Amz-Copy-Source-If-None-Match") != ""):
		return false, s.copyConditions(ctx, ex, r, p)
	}
	return false, nil
}

// headETags asks the upstream for an object's ETag and returns it with
// the client's ETag of it (the upstream's when the index has none); fresh
// as for clientETag.
func (s *Server) headETags(ctx context.Context, ex *exchange, t target, versionID string, keys []*keystore.Key, fresh bool) (upstreamETag, clientETag string, resp *http.Response, err error) {
	hp := &plan{req: &upstreamRequest{Method: http.MethodHead, Target: t, Query: url.Values{}, Header: http.Header{}}, keys: keys}
	hp.req.decide(plainDecision)
	if versionID != "" {
		hp.req.Query.Set("versionId", versionID)
	}
	if len(keys) > 0 {
		hp.req.decide(keyed(keys[0]))
	}
	keyID := ex.keyID
	resp, err = s.send(ctx, hp, ex)
	ex.keyID = keyID
	if err != nil {
		return "", "", nil, err
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		return "", "", resp, nil
	}
	upstreamETag = unquote(resp.Header.Get("ETag"))
	clientETag = upstreamETag
	if v, ok := s.clientETag(ctx, ex, t.Bucket, t.Key, upstreamETag, keys, fresh); ok {
		clientETag = v
	}
	return upstreamETag, clientETag, resp, nil
}

// etagMatches reports whether an If-Match style list holds etag.
func etagMatches(list, etag string) bool {
	for _, v := range strings.Split(list, ",") {
		v = strings.TrimSpace(v)
		if v == "*" || unquote(strings.TrimPrefix(v, "W/")) == etag {
			return true
		}
	}
	return false
}

// readConditions evaluates If-Match and If-None-Match of a GET or HEAD
// against the client ETag, then pins the read to the version checked.
func (s *Server) readConditions(ctx context.Context, ex *exchange, r *http.Request, p *plan) (bool, error) {
	up, client, head, err := s.headETags(ctx, ex, ex.target, p.req.Query.Get("versionId"), p.keys, false)
	if err != nil {
		return false, err
	}
	if head.StatusCode != http.StatusOK {
		return false, nil // let the real request answer (404, 403…)
	}
	if m := r.Header.Get("If-Match"); m != "" && !etagMatches(m, client) {
		return false, s3err.New(s3err.PreconditionFailed, "")
	}
	if m := r.Header.Get("If-None-Match"); m != "" && etagMatches(m, client) {
		h := ex.w.Header()
		h.Set("ETag", quote(client))
		if lm := head.Header.Get("Last-Modified"); lm != "" {
			h.Set("Last-Modified", lm)
		}
		h.Set("X-Amz-Request-Id", ex.id)
		ex.w.WriteHeader(http.StatusNotModified)
		return true, nil
	}
	p.req.Header.Del("If-None-Match")
	p.req.Header.Set("If-Match", quote(up))
	return false, nil
}

// copyConditions does the same for a copy's source conditions.
func (s *Server) copyConditions(ctx context.Context, ex *exchange, r *http.Request, p *plan) error {
	cp := p.copy
	up, client, head, err := s.headETags(ctx, ex, target{Bucket: cp.src.Bucket, Key: cp.src.Key}, cp.src.VersionID, readKeys(cp.srcRule), true)
	if err != nil {
		return err
	}
	if head.StatusCode != http.StatusOK {
		return nil
	}
	if m := r.Header.Get("X-Amz-Copy-Source-If-Match"); m != "" && !etagMatches(m, client) {
		return s3err.New(s3err.PreconditionFailed, "")
	}
	if m := r.Header.Get("X-Amz-Copy-Source-If-None-Match"); m != "" && etagMatches(m, client) {
		return s3err.New(s3err.PreconditionFailed, "")
	}
	p.req.Header.Del("X-Amz-Copy-Source-If-None-Match")
	p.req.Header.Set("X-Amz-Copy-Source-If-Match", quote(up))
	p.copy.srcClientETag = client
	return nil
}

// maxRewrittenBody bounds the small XML answers the proxy rewrites.
const maxRewrittenBody = 1 << 20

// adjustETags puts client ETags into a successful answer, and records the
// index entries of objects written through the proxy.
func (s *Server) adjustETags(ctx context.Context, ex *exchange, p *plan, resp *http.Response) error {
	ok := resp.StatusCode == http.StatusOK
	t := ex.target
	switch {
	case !ex.rt.md5ETags && p.etag != etagList:
		return nil
	case p.etag == etagList && ok:
		// A page the proxy cannot read could show the index: it is not
		// passed on (strict).
		return s.replaceBody(resp, maxListingBody, true, func(b []byte) ([]byte, error) {
			return s.rewriteListing(ctx, ex, t.Bucket, p.req.Query, b)
		})
	case len(p.keys) == 0 && p.copy == nil:
		return nil
	case p.etag == etagPut && ok && p.clientMD5() != "":
		client := p.clientMD5()
		s.recordETag(ctx, ex, t.Bucket, t.Key, resp.Header.Get("ETag"), client, p.keys[0])
		if up := unquote(resp.Header.Get("ETag")); up != "" && !versioned(resp) {
			s.forgetEntries(ex, t.Bucket, t.Key, up) // the overwritten object's
		}
		resp.Header.Set("ETag", quote(client))
	case p.etag == etagPart && ok && p.clientMD5() != "":
		// Kept to check the part lists of CompleteMultipartUpload (an
		// upstream SSE-C part ETag is random: it names one part).
		up := unquote(resp.Header.Get("ETag"))
		s.etags.Put(t.Bucket, up, p.clientMD5())
		if up != "" {
			// Before the answer: the completion may go to another instance.
			if err := s.recordPart(ctx, ex, t, p.req.Query.Get("uploadId"), p.req.Query.Get("partNumber"), up, p.clientMD5(), p.keys[0]); err != nil {
				return err
			}
		}
		resp.Header.Set("ETag", quote(p.clientMD5()))
	case p.etag == etagRead && ex.keyID != "" &&
		(ok || resp.StatusCode == http.StatusPartialContent || resp.StatusCode == http.StatusNotModified):
		if v, found := s.clientETag(ctx, ex, t.Bucket, t.Key, resp.Header.Get("ETag"), p.keys, false); found {
			resp.Header.Set("ETag", quote(v))
		}
	case p.etag == etagAttributes && ok && ex.keyID != "":
		return s.replaceBody(resp, maxRewrittenBody, false, func(b []byte) ([]byte, error) {
			return rewriteResultETag(b, "", func(up string) string {
				if v, found := s.clientETag(ctx, ex, t.Bucket, t.Key, up, p.keys, false); found {
					return v
				}
				return up
			})
		})
	case p.etag == etagComplete && ok && p.completeETag != "":
		return s.replaceBody(resp, maxRewrittenBody, false, func(b []byte) ([]byte, error) {
			return rewriteResultETag(b, "CompleteMultipartUploadResult", func(up string) string {
				s.recordETag(ctx, ex, t.Bucket, t.Key, up, p.completeETag, p.keys[0])
				if !versioned(resp) {
					s.forgetEntries(ex, t.Bucket, t.Key, up)
				}
				return p.completeETag
			})
		})
	case p.etag == etagCopy && ok && len(p.keys) > 0:
		client := p.copy.srcClientETag
		if client == "" {
			_, c, head, err := s.headETags(ctx, ex, target{Bucket: p.copy.src.Bucket, Key: p.copy.src.Key}, p.copy.src.VersionID, readKeys(p.copy.srcRule), true)
			if err != nil || head.StatusCode != http.StatusOK {
				return nil
			}
			client = c
		}
		return s.replaceBody(resp, maxRewrittenBody, false, func(b []byte) ([]byte, error) {
			return rewriteResultETag(b, "CopyObjectResult", func(up string) string {
				s.recordETag(ctx, ex, t.Bucket, t.Key, up, client, p.keys[0])
				if !versioned(resp) {
					s.forgetEntries(ex, t.Bucket, t.Key, up)
				}
				return client
			})
		})
	}
	return nil
}

// replaceBody reads a small answer (bounded), rewrites it and puts it back.
// An answer too large to be what it should is a 502; one that does not
// parse is passed on as it came, unless strict: then the rewrite's error
// is the answer (a 502 where it is not an S3 error).
func (s *Server) replaceBody(resp *http.Response, limit int64, strict bool, rewrite func([]byte) ([]byte, error)) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	resp.Body.Close()
	if err != nil {
		return s3err.New(s3err.BadGateway, "reading the upstream's answer failed")
	}
	if int64(len(body)) > limit {
		return s3err.New(s3err.BadGateway, "the upstream's answer is larger than %d bytes", limit)
	}
	switch nb, err := rewrite(body); {
	case err == nil:
		body = nb
	case strict && s3err.As(err).Code == s3err.InternalError:
		return s3err.New(s3err.BadGateway, "the upstream's answer could not be read")
	case strict:
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// rewriteResultETag replaces the <ETag> of a root element named root (any
// root but <Error> when root is "") with what replace makes of the
// upstream's, quoted where it was. An answer that is an <Error> (S3
// can answer 200 and fail) is left alone.
func rewriteResultETag(body []byte, root string, replace func(up string) string) ([]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	depth, field := 0, ""
	etag, text := "", span{-1, -1}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && (root != "" && t.Name.Local != root || t.Name.Local == "Error") {
				return body, nil
			}
			if depth == 2 {
				field = t.Name.Local
				if field == "ETag" {
					text = span{dec.InputOffset(), dec.InputOffset()}
				}
			}
		case xml.CharData:
			if depth == 2 && field == "ETag" {
				etag += string(t)
				text.end = dec.InputOffset()
			}
		case xml.EndElement:
			depth--
			field = ""
		}
	}
	if text.start < 0 {
		return body, nil
	}
	etag = strings.TrimSpace(etag)
	v := replace(unquote(etag))
	if strings.HasPrefix(etag, `"`) {
		v = "&#34;" + v + "&#34;" // quoted as it came (GetObjectAttributes' is not)
	}
	var out bytes.Buffer
	out.Write(body[:text.start])
	out.WriteString(v)
	out.Write(body[text.end:])
	return out.Bytes(), nil
}

// clientMD5 is the hex MD5 of a PutObject's or UploadPart's data: the
// client's Content-MD5 (checked by the upstream) or the one computed as the
// data passed; "" when neither is known.
func (p *plan) clientMD5() string {
	if p.contentMD5 != "" {
		return p.contentMD5
	}
	if p.body == nil {
		return ""
	}
	if sum := p.body.md5Sum(p.req.Length); sum != nil {
		return hex.EncodeToString(sum)
	}
	return ""
}
