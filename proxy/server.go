// Package proxy is the HTTP server of ssec-proxy: it routes each S3 request
// to its operation, authenticates the client's SigV4 signature, applies the
// SSE-C rule of the request's bucket and key, re-signs the request for the
// upstream and streams bodies both ways (DESIGN.md, "Request flow").
package proxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
	"github.com/ssec-proxy/ssec-proxy/proxy/sigv2"
	"github.com/ssec-proxy/ssec-proxy/proxy/sigv4"
)

// Options configure a Server.
type Options struct {
	Config   *config.Config    // required: domain, upstream, clients
	Keyring  *keystore.Keyring // required: keys and rules
	Logger   *zap.Logger       // nil: no logging
	Observer Observer          // nil: no metrics
	Now      func() time.Time  // nil: time.Now; the clock for signature checks
	// WrapTransport, when set, wraps the transport of every upstream
	// request (the test suites' invariant check, internal/invariant);
	// nil: the transport as it is.
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Observer hears of every finished request, for metrics. It must not block.
type Observer interface {
	ObserveRequest(RequestStats)
}

// RequestStats is what an Observer learns of a request. It holds no
// secret and no object key: key ids and operation names only.
type RequestStats struct {
	Op         string        // the operation ("PutObject"…), "" when refused before routing
	Status     int           // the HTTP status answered
	ErrCode    string        // the S3 error code answered, "" on success
	AuthFailed bool          // refused by authentication
	Decision   string        // "encrypt", "plaintext", "deny", or "" for operations without a rule
	KeyID      string        // the key the upstream request carried
	RuleBucket string        // the rule that decided (keystore.Decision.Bucket): "" when none matched
	RulePrefix string        // and its prefix (keystore.Decision.Prefix)
	BytesIn    int64         // body bytes sent upstream
	BytesOut   int64         // body bytes sent to the client
	Duration   time.Duration // whole request
	Upstream   time.Duration // time to the upstream's response headers (all tries), 0 if none
}

// Server is the proxy's http.Handler.
type Server struct {
	rt    atomic.Pointer[runtime]
	etags *etagCache
	// uploadKeys caches the key id each multipart upload was created with
	// (uploads.go); "" for an upload with no record.
	uploadKeys *etagCache
	log        *zap.Logger
	obs        Observer
	now        func() time.Time
	wrap       func(http.RoundTripper) http.RoundTripper // Options.WrapTransport
	router     *mux.Router
	// indexPending counts index writes started and not finished (metrics).
	indexPending atomic.Int64
}

// runtime is everything a config determines. A request uses the runtime
// it started with, so a reload never changes a request in flight.
type runtime struct {
	domain   string
	verifier *sigv4.Verifier
	// verifierV2 checks SigV2 signatures; nil when clients_sigv2 is off.
	verifierV2 *sigv2.Verifier
	up         *upstream
	ring       *keystore.Keyring
	// streamCrossKey: copies between different keys are streamed without
	// a native try first: copy: stream, or an Exoscale zone (SOS refuses
	// them, with an error it does not document).
	streamCrossKey bool
	// allowAccess: upstream.allow_access_changes; clients may widen who
	// can reach the upstream bucket (classify.go).
	allowAccess bool
	md5ETags    bool         // config.ETagsMD5: clients see MD5 ETags (etag.go)
	partSize    int64        // of the multipart uploads the proxy makes itself
	tokens      *tokenSealer // ListObjectsV2 continuation tokens (listtoken.go)
}

// Keyring is the keyring in force (the last Reload's).
func (s *Server) Keyring() *keystore.Keyring { return s.rt.Load().ring }

// New checks the options and builds a Server.
func New(o Options) (*Server, error) {
	if o.Config == nil || o.Keyring == nil {
		return nil, errors.New("proxy: Options.Config and Options.Keyring are required")
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	// 50,000 cached ETags take about 8 MiB: memory stays bounded under a
	// soak however many objects pass.
	s := &Server{log: log, obs: o.Observer, now: o.Now, etags: newETagCache(50_000), uploadKeys: newETagCache(10_000), wrap: o.WrapTransport}
	if err := s.Reload(o.Config, o.Keyring); err != nil {
		return nil, err
	}
	s.router = newRouter(s.handle, http.HandlerFunc(s.unrouted))
	if io, ok := o.Observer.(indexObserver); ok {
		io.SetIndexPending(func() int { return int(s.indexPending.Load()) })
	}
	return s, nil
}

// Reload swaps in a new config and keyring at once. Requests in flight
// finish with the ones they started with. On error nothing changes.
func (s *Server) Reload(cfg *config.Config, ring *keystore.Keyring) error {
	if cfg == nil || ring == nil {
		return errors.New("proxy: Reload needs a config and a keyring")
	}
	up, err := newUpstream(cfg.Upstream, s.obs, s.wrap)
	if err != nil {
		return err
	}
	secrets := make(map[string]string, len(cfg.Clients))
	for _, c := range cfg.Clients {
		secrets[c.AccessKey] = c.SecretKey
	}
	creds := func(ak string) (string, bool) { sk, ok := secrets[ak]; return sk, ok }
	rt := &runtime{
		domain:         cfg.Domain,
		verifier:       &sigv4.Verifier{Credentials: creds, Now: s.now},
		up:             up,
		ring:           ring,
		streamCrossKey: cfg.Upstream.Copy == config.CopyStream || cfg.Upstream.Zone != "",
		allowAccess:    cfg.Upstream.AllowAccessChanges,
		tokens:         newTokenSealer(cfg.Upstream.SecretKey),
		md5ETags:       cfg.ETags != config.ETagsUpstream,
		partSize:       cfg.Upstream.PartSize,
	}
	if rt.partSize <= 0 {
		rt.partSize = config.DefaultPartSize
	}
	if cfg.ClientsSigV2 == nil || *cfg.ClientsSigV2 {
		rt.verifierV2 = &sigv2.Verifier{Credentials: creds, Now: s.now}
	}
	if old := s.rt.Swap(rt); old != nil {
		// Idle connections of the old transport go; busy ones finish.
		old.up.tr.CloseIdleConnections()
	}
	return nil
}

// exchange is one client request on its way through the proxy: what the
// access log reports of it.
type exchange struct {
	rt        *runtime
	id        string
	start     time.Time
	w         *responseWriter
	op        string
	target    target
	accessKey string
	keyID     string
	payload   string // the client's payload mode
	// clientToken is a ListObjectsV2's continuation token as the client
	// sent it (sealed; listtoken.go).
	clientToken string
	bytesIn     int64
	errCode     string

	authFailed bool
	decision   string
	// ruleBucket and rulePrefix name the rule that decided (metrics).
	ruleBucket, rulePrefix string
	upstream               time.Duration
}

const exchangeKey ctxKey = 1

// ServeHTTP authenticates r before anything else, then routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := s.rt.Load()
	ex := &exchange{id: newRequestID(), start: time.Now(), w: &responseWriter{ResponseWriter: w}, rt: rt}
	defer s.finish(ex)
	t, err := parseTarget(r, rt.domain)
	ex.target = t
	if err != nil {
		s.fail(ex, r, err)
		return
	}
	if isPostForm(r, t) {
		// Authenticated by its policy's signature (postobject.go).
		if err := s.servePostForm(ex, r, t); err != nil {
			s.fail(ex, r, err)
		}
		return
	}
	auth, err := s.authenticate(rt, r, t)
	if err != nil {
		ex.authFailed = true
		s.fail(ex, r, err)
		return
	}
	ex.accessKey, ex.payload = auth.AccessKey, auth.Mode.String()
	if name := unsignedAmzHeader(r.Header, auth.SignedHeaders); name != "" {
		// An x-amz-* header outside the signature could change what the
		// request does (a copy source, a checksum): S3 refuses it, so do we.
		ex.authFailed = true
		s.fail(ex, r, s3err.New(s3err.AccessDenied, "There were headers present in the request which were not signed: %s", name))
		return
	}
	ctx := context.WithValue(r.Context(), infoKey, &reqInfo{target: t, query: r.URL.Query()})
	ctx = context.WithValue(ctx, exchangeKey, &authedExchange{ex, auth})
	s.router.ServeHTTP(ex.w, r.WithContext(ctx))
}

// authenticate checks the client's signature: SigV4, or SigV2 where the
// request carries one and the config accepts it. A V2 request then takes
// the same path as a V4 one with an unsigned payload.
func (s *Server) authenticate(rt *runtime, r *http.Request, t target) (*sigv4.Auth, error) {
	if !sigv2.Is(r) {
		return rt.verifier.Verify(r)
	}
	if rt.verifierV2 == nil {
		return nil, s3err.New(s3err.AccessDenied, "Signature Version 2 is not accepted here; sign with SigV4")
	}
	vhost := ""
	if t.VHost {
		vhost = t.Bucket
	}
	a, err := rt.verifierV2.Verify(r, vhost)
	if err != nil {
		return nil, err
	}
	return sigv4.PlainAuth(r, a.AccessKey, a.SignedHeaders)
}

type authedExchange struct {
	*exchange
	auth *sigv4.Auth
}

// unrouted answers requests that match no operation: nothing unclassified
// goes upstream.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	ax, _ := r.Context().Value(exchangeKey).(*authedExchange)
	if ax == nil {
		s3err.Write(w, r, s3err.New(s3err.MethodNotAllowed, ""), "")
		return
	}
	ax.op = "Unknown"
	s.fail(ax.exchange, r, s3err.New(s3err.MethodNotAllowed,
		"ssec-proxy does not recognise %s, so it does not forward it", describeRequest(r.Method, infoOf(r))))
}

func (s *Server) handle(rt *route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ax := r.Context().Value(exchangeKey).(*authedExchange)
		ax.op = rt.op.Name
		if err := s.serveOp(rt, ax, r); err != nil {
			s.fail(ax.exchange, r, err)
		}
	})
}

// serveOp runs one operation: plan the upstream request from the rules,
// send it (retrying reads with previous keys), stream the answer back.
func (s *Server) serveOp(rt *route, ax *authedExchange, r *http.Request) error {
	p, err := s.plan(rt, ax, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if done, err := s.prepareETags(ctx, ax, r, p); err != nil || done {
		return err
	}
	if p.copy != nil {
		return s.serveCopy(ax, r, p)
	}
	resp, err := s.send(ctx, p, ax.exchange)
	if err != nil {
		return err
	}
	return s.adjustAndRespond(ctx, ax.exchange, r, p, resp)
}

func (s *Server) adjustAndRespond(ctx context.Context, ex *exchange, r *http.Request, p *plan, resp *http.Response) error {
	if err := refusedSSEC(p, ex.target.Bucket, resp); err != nil {
		return err
	}
	if err := s.trackUpload(ctx, ex, p, resp); err != nil {
		resp.Body.Close()
		return err
	}
	if err := s.adjustETags(ctx, ex, p, resp); err != nil {
		resp.Body.Close()
		return err
	}
	return s.respond(ex, r, p, resp)
}

// plan is a request ready to go upstream, with the keys to try in order.
type plan struct {
	op   op
	req  *upstreamRequest
	keys []*keystore.Key // keys[0] is in req; the rest are retried on a read that the key does not fit
	body *countingBody
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
	if reservedKey(t.Key) {
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
	if tok := q.Get("continuation-token"); o == opListObjectsV2 && tok != "" {
		up, err := ax.rt.tokens.open(tok)
		if err != nil {
			return nil, err
		}
		ur.Query.Set("continuation-token", up)
		ax.clientToken = tok
	}
	p := &plan{op: o, req: ur}
	if o.Class != ssePass {
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
			if uploadID := q.Get("uploadId"); uploadID != "" && (o == opUploadPart || o == opUploadPartCopy || o == opCompleteMultipart) {
				// The upload's own key, which a rotation may have made
				// previous.
				var err error
				if k, err = s.uploadKey(r.Context(), ax.exchange, t, uploadID, d); err != nil {
					return nil, err
				}
			}
			setSSEC(ur.Header, k, false)
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
		cp, err := planCopySource(kr, r.Header, ur.Header)
		if err != nil {
			return nil, err
		}
		if reservedKey(cp.src.Key) {
			return nil, s3err.New(s3err.AccessDenied, "keys under %s are reserved for ssec-proxy's ETag index", reservedPrefix)
		}
		if len(p.keys) > 0 {
			cp.dstKey = p.keys[0]
		}
		if o == opCopyObject && copiesOntoItself(cp, t, r.Header) {
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

func planCopySource(kr *keystore.Keyring, in, out http.Header) (*copyPlan, error) {
	cs, err := parseCopySource(in.Get("X-Amz-Copy-Source"))
	if err != nil {
		return nil, err
	}
	d := kr.Match(cs.Bucket, cs.Key)
	if d.Deny {
		return nil, denied(cs.Bucket, cs.Key)
	}
	cp := &copyPlan{src: cs}
	if d.Encrypt {
		if hasHeaderPrefix(in, copySSEHeaderPrefix) {
			return nil, refuseClientSSE(cs.Bucket, d, true)
		}
		setSSEC(out, d.Key, true)
		cp.srcKey = d.Key
	}
	out.Set("X-Amz-Copy-Source", cs.String())
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
	dataOp := p.op == opPutObject || p.op == opUploadPart
	if dataOp && r.Header.Get("Content-Length") == "" && len(r.TransferEncoding) == 0 && !a.Mode.Streaming() {
		return s3err.New(s3err.MissingContentLength, "") // S3 stores no object of unknown length
	}
	if !dataOp {
		// On other requests x-amz-checksum-* headers speak of the object
		// (CompleteMultipartUpload's full-object checksum), not the body.
		a.HeaderChecksum = ""
	}
	p.body = &countingBody{body: a.Body(r.Body)}
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
			setSSEC(p.req.Header, next, false)
			ex.keyID = next.ID()
		case retry && resp.StatusCode == http.StatusForbidden && len(p.keys) > 0:
			drain(resp)
			return nil, noKeyOpens(p.req.Target, p.keys)
		case p.plainProbe && resp.StatusCode == http.StatusBadRequest:
			return s.probePlaintext(ctx, p, ex, resp)
		default:
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
func (s *Server) roundTrip(ctx context.Context, ex *exchange, ur *upstreamRequest, body *countingBody) (*http.Response, error) {
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
	plain := p.req.Header.Clone()
	for name := range plain {
		if strings.HasPrefix(name, sseHeaderPrefix) {
			plain.Del(name)
		}
	}
	ur := *p.req
	ur.Header = plain
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
func (s *Server) upstreamError(ctx context.Context, err error, body *countingBody) error {
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

// respond streams the upstream's answer to the client. SSE-C headers that
// the upstream echoes are checked against the key sent and removed.
func (s *Server) respond(ex *exchange, r *http.Request, p *plan, resp *http.Response) error {
	defer resp.Body.Close()
	h := ex.w.Header()
	if md5 := resp.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key-Md5"); md5 != "" && ex.keyID != "" {
		if !echoMatches(ex.rt.ring, ex.keyID, md5) {
			return s3err.New(s3err.BadGateway, "the upstream answered with an SSE-C key MD5 that is not the one of key %s", ex.keyID)
		}
	}
	copyResponseHeaders(h, resp.Header)
	if p.body != nil {
		if name, value, ok := p.body.checksum(); ok {
			h.Set(name, value)
		}
		ex.bytesIn, _, _ = p.body.state()
	}
	if id := resp.Header.Get("X-Amz-Request-Id"); resp.StatusCode >= 300 && id != "" && len(id) <= 64 {
		// The upstream's error body names its own request id: the header
		// (and the access log) name the same one.
		ex.id = id
	}
	h.Set("X-Amz-Request-Id", ex.id)
	ex.w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := copyBuffered(ex.w, resp.Body); err != nil {
		if resp.StatusCode < 300 {
			s.log.Warn("response body cut short", zap.String("request_id", ex.id), zap.String("error", err.Error()))
		}
		// Headers are gone: drop the connection so that the client sees a
		// broken transfer, never a short body that looks complete.
		panic(http.ErrAbortHandler)
	}
	return nil
}

func echoMatches(kr *keystore.Keyring, keyID, md5 string) bool {
	k, ok := kr.KeyByMD5(md5)
	return ok && k.ID() == keyID
}

// hopHeaders are not passed on (RFC 9110, 7.6.1), nor are the SSE-C echoes.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"X-Amz-Server-Side-Encryption-Customer-Algorithm": true,
	"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   true,
	"X-Amz-Server-Side-Encryption-Customer-Key":       true,
	"X-Amz-Request-Id": true,
}

// copyResponseHeaders passes the upstream's answer headers on. User
// metadata names go out lower-case, as S3 sends them (Go's client made
// them canonical, X-Amz-Meta-Foo; boto3 looks up Metadata["foo"]).
func copyResponseHeaders(dst, src http.Header) {
	for name, vv := range src {
		switch {
		case hopHeaders[name]:
		case strings.HasPrefix(name, "X-Amz-Meta-"):
			dst[strings.ToLower(name)] = vv
		default:
			dst[name] = vv
		}
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	return io.CopyBuffer(dst, src, *bp)
}

// fail answers with err as S3 XML (or only logs it when the client is gone
// or the response has already started).
func (s *Server) fail(ex *exchange, r *http.Request, err error) {
	if errors.Is(err, errClientGone) {
		ex.errCode = "ClientGone"
		ex.w.status = 499
		return
	}
	if ex.w.wroteHeader {
		panic(http.ErrAbortHandler)
	}
	e := s3err.Write(ex.w, r, err, ex.id)
	ex.errCode = e.Code.Name
	if e.Code == s3err.InternalError {
		s.log.Error("internal error", zap.String("request_id", ex.id), zap.String("error", err.Error()))
	}
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%X", b[:])
}

// responseWriter records the status and the bytes written.
type responseWriter struct {
	http.ResponseWriter
	status      int
	n           int64
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody is the verified request body on its way upstream. It keeps
// the first error (for the status) and, at the verified end, fills in the
// trailer checksum the upstream request carries.
type countingBody struct {
	body *sigv4.Body
	// The transport reads the body in its own goroutine, which may still be
	// at it when the upstream has answered early: what the handler reads
	// of it is behind mu.
	mu       sync.Mutex
	md5      hash.Hash // nil: not computed
	n        int64
	err      error
	sum      []byte // md5's sum at the verified end
	ckName   string // the verified checksum (trailer or header), at the end
	ckValue  string
	finished bool        // read to its verified end
	trailer  http.Header // the upstream request's trailer, filled in at the verified end
	// trailerName is the key of the one entry in trailer, as announced by
	// the client in x-amz-trailer.
	trailerName string
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += int64(n)
	if b.md5 != nil && n > 0 {
		b.md5.Write(p[:n])
	}
	switch {
	case err == io.EOF:
		name, value, ok := b.body.Checksum()
		if b.trailer != nil {
			if !ok {
				b.err = s3err.New(s3err.MalformedTrailerError, "the announced checksum trailer is missing")
				return n, b.err
			}
			b.trailer[b.trailerName] = []string{value}
		}
		if ok {
			b.ckName, b.ckValue = name, value
		}
		if b.md5 != nil && !b.finished {
			b.sum = b.md5.Sum(nil)
		}
		b.finished = true
	case err != nil && b.err == nil:
		b.err = err
	}
	return n, err
}

// state returns what the handler may know of the body: bytes read,
// whether it was read to its verified end, and the first error.
func (b *countingBody) state() (n int64, finished bool, err error) {
	if b == nil {
		return 0, false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n, b.finished, b.err
}

// checksum is the verified checksum (trailer or header) the client sent,
// which the response carries back as S3's does.
func (b *countingBody) checksum() (string, string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ckName, b.ckValue, b.ckName != ""
}

// md5Sum is the MD5 of the whole body of length bytes, once they were all
// read; nil before or when not computed. (After an upstream's 200 the
// transport may not yet have read the EOF that follows the last byte.)
func (b *countingBody) md5Sum(length int64) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sum == nil && b.md5 != nil && b.n == length && b.err == nil {
		return b.md5.Sum(nil)
	}
	return b.sum
}

func decisionName(d keystore.Decision) string {
	switch {
	case d.Deny:
		return "deny"
	case d.Encrypt:
		return "encrypt"
	}
	return "plaintext"
}

// finish reports the request to the access log and the observer.
func (s *Server) finish(ex *exchange) {
	status := ex.w.status
	if status == 0 {
		status = http.StatusOK
	}
	if s.obs != nil {
		s.obs.ObserveRequest(RequestStats{
			Op: ex.op, Status: status, ErrCode: ex.errCode, AuthFailed: ex.authFailed,
			Decision: ex.decision, KeyID: ex.keyID, RuleBucket: ex.ruleBucket, RulePrefix: ex.rulePrefix, BytesIn: ex.bytesIn, BytesOut: ex.w.n,
			Duration: time.Since(ex.start), Upstream: ex.upstream,
		})
	}
	lvl := zap.InfoLevel
	if status >= 500 {
		lvl = zap.WarnLevel
	}
	if c := s.log.Check(lvl, "request"); c != nil {
		c.Write(
			zap.String("request_id", ex.id),
			zap.String("op", ex.op),
			zap.String("bucket", ex.target.Bucket),
			zap.String("key", ex.target.Key),
			zap.String("key_id", ex.keyID),
			zap.String("access_key", ex.accessKey),
			zap.String("payload", ex.payload),
			zap.Int("status", status),
			zap.String("error", ex.errCode),
			zap.Int64("bytes_in", ex.bytesIn),
			zap.Int64("bytes_out", ex.w.n),
			zap.Duration("duration", time.Since(ex.start)),
		)
	}
}
