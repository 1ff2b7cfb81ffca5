package proxy

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// copyPlan is the source side of a CopyObject or UploadPartCopy.
type copyPlan struct {
	src copySource
	// srcRule is the source's rule, decided once when the request was
	// planned: every request the copy makes for its source (the copy, key
	// probes, ETag look-ups, a streamed copy's GET) takes its keys from it.
	srcRule keystore.Decision
	// srcClientETag is the source's client ETag, when a condition made
	// the proxy look it up.
	srcClientETag string
	srcKey        *keystore.Key // nil: the source rule stores plaintext
	dstKey        *keystore.Key // nil: the destination rule stores plaintext
}

// crossKey reports whether source and destination are under different
// keys (or one side is plaintext), which SOS refuses to copy natively.
func (c *copyPlan) crossKey() bool {
	return keyID(c.srcKey) != keyID(c.dstKey)
}

func keyID(k *keystore.Key) string {
	if k == nil {
		return ""
	}
	return k.ID()
}

// copyRefused reports whether the upstream refused a copy between keys:
// a 400 or 501 (SOS answers this for different SSE-C keys), as opposed to
// a missing source, a failed condition or access denied, which stand.
func copyRefused(resp *http.Response) bool {
	return resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusNotImplemented
}

// copyHeaders are the standard headers of an object that a copy keeps
// (metadata directive COPY) or takes from the request (REPLACE).
var copyHeaders = []string{"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Type", "Expires", "X-Amz-Website-Redirect-Location"}

// copyConditions map the copy-source conditions to those of a GET.
var copyConditions = map[string]string{
	"X-Amz-Copy-Source-If-Match":            "If-Match",
	"X-Amz-Copy-Source-If-None-Match":       "If-None-Match",
	"X-Amz-Copy-Source-If-Modified-Since":   "If-Modified-Since",
	"X-Amz-Copy-Source-If-Unmodified-Since": "If-Unmodified-Since",
}

// serveCopy runs a CopyObject or UploadPartCopy. The source may be under
// a previous key of its rule, or stored without SSE-C where the rule
// allows reading it so: when the upstream refuses the copy with the
// source rule's current key, the proxy finds the key that opens the
// source (as a read would) and copies with that one. Between different
// keys the copy streams where the upstream refuses it (or at once on SOS,
// or with copy: stream).
func (s *Server) serveCopy(ax *authedExchange, r *http.Request, p *plan) error {
	ctx, ex, cp := r.Context(), ax.exchange, p.copy
	if cp.crossKey() && ex.rt.streamCrossKey {
		return s.streamCopy(ax, r, p)
	}
	resp, err := s.send(ctx, p, ex)
	if err != nil {
		return err
	}
	if cp.srcKey != nil && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusBadRequest) {
		k, plain, found, err := s.sourceKey(ctx, ex, cp)
		if err != nil {
			resp.Body.Close()
			return err
		}
		if found && (plain || k != cp.srcKey) {
			drain(resp)
			cp.srcKey = k
			p.req.decideSource(keyOrPlain(k))
			if cp.crossKey() && ex.rt.streamCrossKey {
				return s.streamCopy(ax, r, p)
			}
			if resp, err = s.send(ctx, p, ex); err != nil {
				return err
			}
		}
	}
	if cp.crossKey() && copyRefused(resp) {
		// The upstream (SOS) does not copy between different keys: the
		// proxy copies by streaming.
		drain(resp)
		return s.streamCopy(ax, r, p)
	}
	return s.adjustAndRespond(ctx, ex, r, p, resp)
}

// sourceKey finds the key that opens a copy source, as a HEAD of it
// would: the source rule's key, then its previous keys, then none where
// the rule allows plaintext reads (plain). found is false when none
// opens it.
func (s *Server) sourceKey(ctx context.Context, ex *exchange, cp *copyPlan) (k *keystore.Key, plain, found bool, err error) {
	d := cp.srcRule
	head := &upstreamRequest{Method: http.MethodHead, Target: target{Bucket: cp.src.Bucket, Key: cp.src.Key}, Query: url.Values{}, Header: http.Header{}}
	if cp.src.VersionID != "" {
		head.Query.Set("versionId", cp.src.VersionID)
	}
	keys := readKeys(d)
	if len(keys) == 0 {
		return nil, false, false, nil
	}
	head.decide(keyed(keys[0]))
	hp := &plan{req: head, keys: keys, plainProbe: true, allowPlain: d.AllowPlaintextReads}
	keyID, decision := ex.keyID, ex.decision
	resp, err := s.send(ctx, hp, ex)
	plain = ex.decision == "plaintext-read"
	ex.keyID, ex.decision = keyID, decision
	if err != nil {
		return nil, false, false, err // AccessDenied: stored in plaintext where the rule does not allow reading it so
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, false, false, nil
	}
	if plain {
		return nil, true, true, nil
	}
	k, ok := ex.rt.ring.KeyByMD5(head.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key-Md5"))
	return k, false, ok, nil
}

// copyMetadata fills dst's metadata and tags by the request's directives:
// COPY (the default) takes them from the source, REPLACE from the request.
func (s *Server) copyMetadata(ctx context.Context, ex *exchange, r *http.Request, get *upstreamRequest, src *http.Response, dst *upstreamRequest) error {
	if !strings.EqualFold(r.Header.Get("X-Amz-Metadata-Directive"), "REPLACE") {
		for name := range dst.Header {
			if strings.HasPrefix(name, "X-Amz-Meta-") {
				dst.Header.Del(name)
			}
		}
		for _, h := range copyHeaders {
			dst.Header.Del(h)
			if v := src.Header.Get(h); v != "" {
				dst.Header.Set(h, v)
			}
		}
		for name, vv := range src.Header {
			// Metadata an upstream gives powers to (snowball) is not
			// written again, whatever the source holds.
			if strings.HasPrefix(name, "X-Amz-Meta-") && !forbiddenAmz.allows(name) {
				dst.Header[name] = vv
			}
		}
	}
	dst.Header.Del("X-Amz-Metadata-Directive")
	replaceTags := strings.EqualFold(r.Header.Get("X-Amz-Tagging-Directive"), "REPLACE")
	dst.Header.Del("X-Amz-Tagging-Directive")
	if replaceTags {
		return nil
	}
	dst.Header.Del("X-Amz-Tagging")
	if n, _ := strconv.Atoi(src.Header.Get("X-Amz-Tagging-Count")); n == 0 {
		return nil
	}
	tags, err := s.objectTags(ctx, ex, get)
	if err != nil {
		return err
	}
	if tags != "" {
		dst.Header.Set("X-Amz-Tagging", tags)
	}
	return nil
}

// objectTags reads the source's tags as a query string for x-amz-tagging.
// An upstream without tagging (SOS) has none to copy.
func (s *Server) objectTags(ctx context.Context, ex *exchange, get *upstreamRequest) (string, error) {
	tr := exemptRequest(http.MethodGet, get.Target, url.Values{"tagging": {""}})
	if v := get.Query.Get("versionId"); v != "" {
		tr.Query.Set("versionId", v)
	}
	resp, err := s.roundTrip(ctx, ex, tr, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotImplemented {
		return "", nil
	}
	if resp.StatusCode != http.StatusOK {
		return "", s3err.New(s3err.BadGateway, "reading the copy source's tags failed with status %d", resp.StatusCode)
	}
	var t struct {
		Tags []struct {
			Key   string `xml:"Key"`
			Value string `xml:"Value"`
		} `xml:"TagSet>Tag"`
	}
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&t); err != nil {
		return "", s3err.New(s3err.BadGateway, "the copy source's tags are not valid XML")
	}
	q := url.Values{}
	for _, tag := range t.Tags {
		q.Add(tag.Key, tag.Value)
	}
	return q.Encode(), nil
}

// putObjectStream writes body (size bytes) to dst: one PUT up to the part
// size, a multipart upload above it (aborted if any part fails).
func (s *Server) putObjectStream(ctx context.Context, ex *exchange, dst *upstreamRequest, body io.Reader, size int64) (string, error) {
	partSize := ex.rt.partSize
	if size <= partSize {
		return s.putStream(ctx, ex, dst, body, size)
	}
	create := &upstreamRequest{Method: http.MethodPost, Target: dst.Target, Query: url.Values{"uploads": {""}}, Header: dst.Header.Clone()}
	create.decide(dst.sse) // the parts and the completion take the same
	resp, err := s.roundTrip(ctx, ex, create, nil)
	if err != nil {
		return "", err
	}
	var created struct {
		UploadID string `xml:"UploadId"`
	}
	err = xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || created.UploadID == "" {
		return "", s3err.New(s3err.BadGateway, "the upstream did not start the multipart upload of the copy (status %d)", resp.StatusCode)
	}
	abort := func() {
		ar := exemptRequest(http.MethodDelete, dst.Target, url.Values{"uploadId": {created.UploadID}})
		if resp, err := s.roundTrip(context.WithoutCancel(ctx), ex, ar, nil); err == nil {
			drain(resp)
		}
	}
	type part struct {
		Number int    `xml:"PartNumber"`
		ETag   string `xml:"ETag"`
	}
	var parts []part
	for n, left := 1, size; left > 0; n++ {
		chunk := min(partSize, left)
		pr := &upstreamRequest{Method: http.MethodPut, Target: dst.Target, Header: http.Header{},
			Query: url.Values{"partNumber": {strconv.Itoa(n)}, "uploadId": {created.UploadID}}}
		pr.inherit(dst)
		etag, err := s.putStream(ctx, ex, pr, io.LimitReader(body, chunk), chunk)
		if err != nil {
			abort()
			return "", err
		}
		parts = append(parts, part{n, etag})
		left -= chunk
	}
	var doc strings.Builder
	_ = xml.NewEncoder(&doc).Encode(struct {
		XMLName xml.Name `xml:"CompleteMultipartUpload"`
		Parts   []part   `xml:"Part"`
	}{Parts: parts})
	complete := &upstreamRequest{Method: http.MethodPost, Target: dst.Target, Query: url.Values{"uploadId": {created.UploadID}},
		Header: http.Header{}, Body: strings.NewReader(doc.String()), Length: int64(doc.Len())}
	complete.inherit(dst)
	resp, err = s.roundTrip(ctx, ex, complete, nil)
	if err != nil {
		abort()
		return "", err
	}
	defer resp.Body.Close()
	var done struct {
		XMLName xml.Name
		ETag    string `xml:"ETag"`
	}
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&done); resp.StatusCode != http.StatusOK || err != nil || done.XMLName.Local != "CompleteMultipartUploadResult" {
		abort()
		return "", s3err.New(s3err.BadGateway, "the upstream did not complete the multipart upload of the copy (status %d)", resp.StatusCode)
	}
	return done.ETag, nil
}

// putStream sends one PUT (an object or a part) of exactly size bytes and
// returns its ETag.
func (s *Server) putStream(ctx context.Context, ex *exchange, dst *upstreamRequest, body io.Reader, size int64) (string, error) {
	ur := *dst
	ur.Method = http.MethodPut
	ur.Body, ur.Length, ur.Hash, ur.Trailer = body, size, "", nil
	if size == 0 {
		ur.Body = nil
	}
	resp, err := s.roundTrip(ctx, ex, &ur, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return "", s3err.New(s3err.BadGateway, "the upstream refused the streamed copy's write (status %d: %s)", resp.StatusCode, upstreamCode(b))
	}
	return resp.Header.Get("ETag"), nil
}

// upstreamCode is the <Code> of an S3 error body, for messages.
func upstreamCode(body []byte) string {
	var e struct {
		Code string `xml:"Code"`
	}
	if xml.Unmarshal(body, &e) != nil || e.Code == "" {
		return "no S3 error code"
	}
	return fmt.Sprintf("%.64s", e.Code)
}

// refusedSSEC explains an upstream's refusal of the first SSE-C write of
// an object (PutObject, CreateMultipartUpload): AWS answers 403
// AccessDenied where the bucket blocks SSE-C (new buckets, since April
// 2026), other services 400 or 501. The client gets the upstream's status
// and code with a message that says what to check; other answers, nil.
func refusedSSEC(p *plan, bucket string, resp *http.Response) error {
	first := p.hooks&hookFirstWrite != 0
	st := resp.StatusCode
	if !first || len(p.keys) == 0 || st != http.StatusForbidden && st != http.StatusNotImplemented && st != http.StatusBadRequest {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	resp.Body.Close()
	var e struct{ Code, Message string }
	_ = xml.Unmarshal(b, &e)
	if st == http.StatusBadRequest && !mentionsEncryption(e.Code+" "+e.Message) {
		resp.Body = io.NopCloser(bytes.NewReader(b)) // another 400: passed on as it came
		return nil
	}
	code := s3err.Code{Name: fmt.Sprintf("%.64s", e.Code), Status: st}
	if code.Name == "" {
		code.Name = http.StatusText(st)
	}
	hint := "if the bucket blocks SSE-C (AWS blocks it on new buckets since April 2026), allow it with put-bucket-encryption and BlockedEncryptionTypes NONE; otherwise check that the upstream credentials may write there"
	if st != http.StatusForbidden {
		hint = "the upstream does not take SSE-C writes there, so no rule that encrypts can be used with it"
	}
	return s3err.New(code, "the upstream refused the SSE-C write to bucket %q (%d %s: %.200s): %s; ssec-proxy check --probe tests each bucket",
		bucket, st, code.Name, e.Message, hint)
}

func mentionsEncryption(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "encrypt") || strings.Contains(s, "sse") || strings.Contains(s, "customer")
}

// copiesOntoItself reports a CopyObject of an object onto itself that
// changes nothing S3 counts (metadata, storage class, website redirect,
// encryption): S3 refuses it, and so does the proxy. The keys are the
// rules': the same rule on both sides sends the same key.
func copiesOntoItself(cp *copyPlan, t target, h http.Header) bool {
	if cp.src.Bucket != t.Bucket || cp.src.Key != t.Key || cp.src.VersionID != "" {
		return false
	}
	if strings.EqualFold(h.Get("X-Amz-Metadata-Directive"), "REPLACE") || h.Get("X-Amz-Storage-Class") != "" ||
		h.Get("X-Amz-Website-Redirect-Location") != "" || hasHeaderPrefix(h, sseHeaderPrefix) {
		return false
	}
	return keyID(cp.srcKey) == keyID(cp.dstKey)
}
