package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// send sends the planned request. A GET or HEAD that the current key does
// not open (403) is tried again with each previous key in turn; one that
// the upstream refuses with a key (400: the object is stored without SSE-C)
// is tried once without, and served only where the rule allows plaintext
// reads.
func (s *Server) send(ctx context.Context, p *plan, ex *exchange) (*http.Response, error) {
	retry := p.req.Body == nil && (p.req.Method == http.MethodGet || p.req.Method == http.MethodHead)
	for i := 0; ; i++ {
		resp, err := s.roundTrip(ctx, ex, p.req, p.body)
		if err != nil {
			return nil, err
		}
		switch {
		case retry && resp.StatusCode == http.StatusForbidden && i+1 < len(p.keys):
			drain(resp)
			next := p.keys[i+1]
			p.req.decide(keyed(next))
		case retry && resp.StatusCode == http.StatusForbidden && len(p.keys) > 0:
			drain(resp)
			return nil, noKeyOpens(p.req.Target, p.keys)
		case p.plainProbe && resp.StatusCode == http.StatusBadRequest:
			return s.probePlaintext(ctx, p, ex, resp)
		default:
			ex.keyID = p.req.sentKeyID() // the key that opened it: what the answer is checked against
			return resp, nil
		}
	}
}

// noKeyOpens is the answer for an object that every key its rule names
// was refused for: named by key id, never a key.
func noKeyOpens(t target, keys []*keystore.Key) error {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID()
	}
	return s3err.New(s3err.AccessDenied,
		"no key in ssec-proxy's store opens s3://%s/%s: the upstream refused each key its rule names (%s); it was written with another key, or the upstream's credentials may not read it",
		t.Bucket, t.Key, strings.Join(ids, ", "))
}

// roundTrip builds, signs and sends one upstream request.
func (s *Server) roundTrip(ctx context.Context, ex *exchange, ur *upstreamRequest, body *verifiedBody) (*http.Response, error) {
	req, err := ex.rt.up.build(ctx, ur)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	resp, err := ex.rt.up.do(req)
	ex.upstream += time.Since(start)
	if err != nil {
		return nil, s.upstreamError(ctx, err, body)
	}
	return resp, nil
}

// probePlaintext asks again without SSE-C after the upstream refused the
// key with 400. When that succeeds the object is stored in plaintext under
// a rule that encrypts: served if the rule allows it, else refused. When it
// does not, the first answer stands.
func (s *Server) probePlaintext(ctx context.Context, p *plan, ex *exchange, first *http.Response) (*http.Response, error) {
	firstBody, _ := io.ReadAll(io.LimitReader(first.Body, 64<<10))
	first.Body.Close()
	first.Body = io.NopCloser(bytes.NewReader(firstBody))
	ur := *p.req
	ur.Header = p.req.Header.Clone()
	ur.decide(plainDecision)
	resp, err := s.roundTrip(ctx, ex, &ur, nil)
	if err != nil {
		return first, nil
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
		drain(resp)
		return first, nil
	}
	if !p.allowPlain {
		drain(resp)
		t := ex.target
		return nil, s3err.New(s3err.AccessDenied,
			"s3://%s/%s is stored without encryption under a rule that encrypts; set allow_plaintext_reads: true on the rule to read it, and run ssec-proxy rekey to encrypt it", t.Bucket, t.Key)
	}
	*p.req = ur // served without a key: the request that was
	ex.keyID = ""
	ex.decision = "plaintext-read"
	return resp, nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// upstreamError turns a failed round trip into the S3 error the client
// gets: the body's own verification error first (the client sent a bad
// body), then statuses for a dead, slow or untrusted upstream.
func (s *Server) upstreamError(ctx context.Context, err error, body *verifiedBody) error {
	if _, _, berr := body.state(); berr != nil {
		var e *s3err.Error
		if errors.As(berr, &e) {
			return e
		}
		return s3err.New(s3err.IncompleteBody, "the request body ended early or could not be read")
	}
	if ctx.Err() != nil {
		return errClientGone
	}
	return mapTransportError(err)
}

var errClientGone = errors.New("client went away")
