package proxy

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"

	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
	"github.com/ssec-proxy/ssec-proxy/proxy/sigv4"
)

// plan is a request ready to go upstream, with the keys to try in order.
type plan struct {
	op    op
	etag  etagHook // the row's (ops.go)
	hooks hook     // the row's
	req   *upstreamRequest
	keys  []*keystore.Key // keys[0] is in req; the rest are retried on a read that the key does not fit
	body  *verifiedBody
	// plainProbe: a read under an encrypting rule whose object may be
	// stored without SSE-C; allowPlain says whether to serve it then.
	plainProbe, allowPlain bool
	copy                   *copyPlan // CopyObject and UploadPartCopy
	completeETag           string    // the client's ETag of a multipart object being completed
	contentMD5             string    // hex of the client's Content-MD5, which the upstream checks
}

func (s *Server) plan(rt *route, ax *authedExchange, r *http.Request) (*plan, error) {
	o := rt.op
	t := ax.target
	kr := ax.rt.ring
	if o.Class == ssePostForm {
		return nil, refusePostForm()
	}
	if refusedKey(t.Key) {
		return nil, errReserved()
	}
	q := infoOf(r).query
	if err := rt.checkRequest(q, r.Header); err != nil {
		return nil, err
	}
	if rt.access != accessNone && !ax.rt.allowAccess {
		if rt.access == accessWidens {
			return nil, errAccessChange(o.Name)
		}
		if err := checkAccessHeaders(r.Header); err != nil {
			return nil, err
		}
	}
	ur := &upstreamRequest{Method: r.Method, Target: t, Query: rt.upstreamQuery(q), Header: rt.outboundHeaders(r.Header)}
	if tok := q.Get("continuation-token"); rt.hooks&hookSealedTokens != 0 && tok != "" {
		up, err := ax.rt.tokens.open(tok)
		if err != nil {
			return nil, err
		}
		ur.Query.Set("continuation-token", up)
		ax.clientToken = tok
	}
	p := &plan{op: o, etag: rt.etag, hooks: rt.hooks, req: ur}
	// The decision: none by design for operations without object data
	// (checkRequest refused their SSE headers); the client's own headers
	// where no rule encrypts; the rule's key (or the upload's) where one
	// does.
	dec := exemptDecision
	defer func() { ur.decide(dec) }() // once, whatever it is
	if o.Class != ssePass {
		dec = asSentDecision
		d := kr.Match(t.Bucket, t.Key)
		ax.decision = decisionName(d)
		ax.ruleBucket, ax.rulePrefix = d.Bucket, d.Prefix
		if d.Deny {
			return nil, denied(t.Bucket, t.Key)
		}
		if d.Encrypt {
			if hasHeaderPrefix(r.Header, sseHeaderPrefix) {
				return nil, refuseClientSSE(t.Bucket, d, false)
			}
			k := d.Key
			if uploadID := q.Get("uploadId"); uploadID != "" && rt.hooks&hookUploadKey != 0 {
				// The upload's own key, which a rotation may have made
				// previous.
				var err error
				if k, err = s.uploadKey(r.Context(), ax.exchange, t, uploadID, d); err != nil {
					return nil, err
				}
			}
			dec = keyed(k)
			p.keys = []*keystore.Key{k}
			for _, rk := range readKeys(d) {
				if rk != k {
					p.keys = append(p.keys, rk)
				}
			}
			ax.keyID = k.ID()
			p.plainProbe = o.Class == sseRead && (r.Method == http.MethodGet || r.Method == http.MethodHead)
			p.allowPlain = d.AllowPlaintextReads
		}
	}
	if o.Class == sseCopy {
		cp, err := planCopySource(kr, r.Header, ur)
		if err != nil {
			return nil, err
		}
		if refusedKey(cp.src.Key) {
			return nil, s3err.New(s3err.AccessDenied, "keys under %s are reserved for ssec-proxy's ETag index", reservedPrefix)
		}
		if len(p.keys) > 0 {
			cp.dstKey = p.keys[0]
		}
		if rt.hooks&hookSelfCopy != 0 && copiesOntoItself(cp, t, r.Header) {
			return nil, s3err.New(s3err.InvalidRequest, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
		}
		p.copy = cp
	}
	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		if err := planBody(ax, r, p); err != nil {
			return nil, err
		}
		if err := s.checkBody(rt, ax, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func planCopySource(kr *keystore.Keyring, in http.Header, ur *upstreamRequest) (*copyPlan, error) {
	cs, err := parseCopySource(in.Get("X-Amz-Copy-Source"))
	if err != nil {
		return nil, err
	}
	d := kr.Match(cs.Bucket, cs.Key)
	if d.Deny {
		return nil, denied(cs.Bucket, cs.Key)
	}
	cp := &copyPlan{src: cs, srcRule: d}
	ur.decideSource(asSentDecision) // a plaintext source: the client's own headers, if any
	if d.Encrypt {
		if hasHeaderPrefix(in, copySSEHeaderPrefix) {
			return nil, refuseClientSSE(cs.Bucket, d, true)
		}
		ur.decideSource(keyed(d.Key))
		cp.srcKey = d.Key
	}
	ur.Header.Set("X-Amz-Copy-Source", cs.String())
	return cp, nil
}

// planBody streams the client's body through its verification: the
// upstream gets the decoded bytes with their exact length, and the trailer
// checksum, if any, as its own trailer once verified.
func planBody(ax *authedExchange, r *http.Request, p *plan) error {
	a := ax.auth
	if a.DecodedLength < 0 {
		return s3err.New(s3err.MissingContentLength, "")
	}
	dataOp := p.hooks&hookDataBody != 0
	if dataOp && r.Header.Get("Content-Length") == "" && len(r.TransferEncoding) == 0 && !a.Mode.Streaming() {
		return s3err.New(s3err.MissingContentLength, "") // S3 stores no object of unknown length
	}
	if !dataOp {
		// On other requests x-amz-checksum-* headers speak of the object
		// (CompleteMultipartUpload's full-object checksum), not the body.
		a.HeaderChecksum = ""
	}
	p.body = &verifiedBody{body: a.Body(r.Body)}
	if dataOp && len(p.keys) > 0 && ax.rt.md5ETags {
		if sum, err := base64.StdEncoding.DecodeString(r.Header.Get("Content-Md5")); err == nil && len(sum) == md5.Size {
			// The upstream checks the data against Content-MD5: the
			// client's ETag is known without hashing the data again.
			p.contentMD5 = hex.EncodeToString(sum)
		} else {
			p.body.md5 = md5.New() // the client's ETag, computed as the data passes
		}
	}
	if a.DecodedLength == 0 {
		// Nothing to stream: verify the (empty) body now and send none, so
		// that the upstream sees Content-Length: 0, not a chunked body.
		_, err := io.Copy(io.Discard, p.body)
		return err
	}
	p.req.Body = p.body
	p.req.Length = a.DecodedLength
	if a.Mode == sigv4.Hex {
		p.req.Hash = a.PayloadHash
	}
	if a.Trailer != "" {
		n, ok := sigv4.ChecksumLen(a.Trailer)
		if !ok {
			return s3err.New(s3err.InvalidRequest, "the trailer %q is not a checksum ssec-proxy knows", a.Trailer)
		}
		p.req.Trailer = http.Header{a.Trailer: {string(make([]byte, n))}}
		p.body.trailer, p.body.trailerName = p.req.Trailer, a.Trailer
	}
	return nil
}

// refusePostForm answers a form upload that came with an Authorization
// header or a presigned query: a form is signed by its policy alone.
func refusePostForm() error {
	return s3err.New(s3err.InvalidRequest,
		"a browser form upload (POST) is signed by its policy and its fields; send it without an Authorization header or a presigned query")
}
