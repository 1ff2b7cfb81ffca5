// Package proxy is the HTTP server of ssec-proxy: it routes each S3 request
// to its operation, authenticates the client's SigV4 signature, applies the
// SSE-C rule of the request's bucket and key, re-signs the request for the
// upstream and streams bodies both ways (DESIGN.md, "Request flow").
package proxy

import (
	"context"
	"errors"
	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
	"net/http"
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
	etags *etagindex.Cache
	// uploadKeys caches the key id each multipart upload was created with
	// (uploads.go); "" for an upload with no record.
	uploadKeys *etagindex.Cache
	log        *zap.Logger
	obs        Observer
	now        func() time.Time
	wrap       func(http.RoundTripper) http.RoundTripper // Options.WrapTransport
	router     *mux.Router
	writes     *keyWrites // index writes under way, per key (indexlife.go)
	sweep      sweeper    // index clean-ups to come (sweep.go)
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
	s := &Server{log: log, obs: o.Observer, now: o.Now, etags: etagindex.NewCache(50_000), uploadKeys: etagindex.NewCache(10_000), wrap: o.WrapTransport, writes: newKeyWrites()}
	if err := s.Reload(o.Config, o.Keyring); err != nil {
		return nil, err
	}
	s.router = newRouter(s.handle, http.HandlerFunc(s.unrouted))
	if io, ok := o.Observer.(IndexObserver); ok {
		io.SetIndexPending(func() int { return int(s.indexPending.Load()) })
		io.SetCleanupsPending(func() int { return len(forgetSlots) }) // the process's, as the bound is
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
	if rt.hooks&hookBucketDelete != 0 {
		resp, err := s.deleteBucket(ctx, ax.exchange, p)
		if err != nil {
			return err
		}
		return s.adjustAndRespond(ctx, ax.exchange, r, p, resp)
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
	if err := s.afterDelete(ex, p, resp); err != nil {
		return err
	}
	if err := s.adjustETags(ctx, ex, p, resp); err != nil {
		resp.Body.Close()
		return err
	}
	return s.respond(ex, r, p, resp)
}
