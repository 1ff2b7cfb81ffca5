package proxy

import (
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"github.com/ssec-proxy/ssec-proxy/keystore"
)

// One decision (invariant 9). Every upstream request carries an
// sseDecision for its object and, when it copies, one for its copy source;
// decide and decideSource, which apply them, are the only code that writes
// or removes SSE-C headers, and upstream.build refuses to sign a request
// that was not given one. What a decision is comes from the rules
// (plan.go: the client's request; the requests the proxy makes itself
// take the decision of the request they serve, or are exempt).

type sseKind int

const (
	sseUndecided sseKind = iota // build refuses it
	sseKeyed                    // the SSE-C headers of key
	ssePlain                    // none: an object stored without SSE-C (a rule that reads plaintext, a probe)
	sseAsSent                   // the client's own SSE headers, where no rule encrypts
	sseExempt                   // none by design: the proxy's own objects, listings, ACLs, tags (no object data)
)

type sseDecision struct {
	kind sseKind
	key  *keystore.Key // sseKeyed
}

func keyed(k *keystore.Key) sseDecision { return sseDecision{kind: sseKeyed, key: k} }

var (
	plainDecision  = sseDecision{kind: ssePlain}
	asSentDecision = sseDecision{kind: sseAsSent}
	exemptDecision = sseDecision{kind: sseExempt}
)

// keyOrPlain is keyed(k), or plain when k is nil (a plaintext rule).
func keyOrPlain(k *keystore.Key) sseDecision {
	if k == nil {
		return plainDecision
	}
	return keyed(k)
}

// sentKeyID is the id of the key the request carries for its object ("" for
// none): what the echo check and the access log's key_id use.
func (ur *upstreamRequest) sentKeyID() string {
	if ur.sse.kind == sseKeyed {
		return ur.sse.key.ID()
	}
	return ""
}

// decide gives the request its decision for its object and applies it.
func (ur *upstreamRequest) decide(d sseDecision) {
	ur.sse = d
	applySSE(ur.Header, d, false)
}

// decideSource gives a copy its decision for the copy source.
func (ur *upstreamRequest) decideSource(d sseDecision) {
	ur.srcSSE = d
	applySSE(ur.Header, d, true)
}

// inherit gives a request the proxy makes for another (a part or the
// completion of a streamed copy's upload) that request's object decision;
// where it is the client's own headers (no rule encrypts), their copy.
func (ur *upstreamRequest) inherit(from *upstreamRequest) {
	if from.sse.kind == sseAsSent {
		for name, vv := range from.Header {
			if strings.HasPrefix(name, sseHeaderPrefix) {
				ur.Header[name] = slices.Clone(vv)
			}
		}
	}
	ur.decide(from.sse)
}

// dropCopySource makes a copy the write of its data (a streamed copy): the
// copy source, its range, its conditions and its SSE-C headers go, and
// with them its decision.
func (ur *upstreamRequest) dropCopySource() {
	for name := range ur.Header {
		if c := textproto.CanonicalMIMEHeaderKey(name); c == "X-Amz-Copy-Source" || strings.HasPrefix(c, "X-Amz-Copy-Source-") {
			delete(ur.Header, name)
		}
	}
	ur.srcSSE = sseDecision{}
}

func applySSE(h http.Header, d sseDecision, copySource bool) {
	switch d.kind {
	case sseKeyed:
		setSSEC(h, d.key, copySource)
	case ssePlain, sseExempt:
		clearSSEC(h, copySource)
	}
}

// errUndecided: a request built without a decision; a bug, never sent.
var errUndecided = errors.New("proxy: an upstream request without an SSE-C decision (invariant 9)")

// checkDecided is build's check: a decision for the object, one for a copy
// source, and no SSE-C header on an exempt request.
func (ur *upstreamRequest) checkDecided() error {
	if ur.sse.kind == sseUndecided || ur.Header.Get("X-Amz-Copy-Source") != "" && ur.srcSSE.kind == sseUndecided {
		return errUndecided
	}
	if ur.sse.kind == sseExempt && (hasHeaderPrefix(ur.Header, sseHeaderPrefix+"-Customer-") || hasHeaderPrefix(ur.Header, copySSEHeaderPrefix+"-Customer-")) {
		return errUndecided
	}
	return nil
}

// exemptRequest is a request of the proxy's own that carries no key by
// design (its own objects, listings, tags, ACLs).
func exemptRequest(method string, t target, q url.Values) *upstreamRequest {
	ur := &upstreamRequest{Method: method, Target: t, Query: q, Header: http.Header{}}
	ur.decide(exemptDecision)
	return ur
}
