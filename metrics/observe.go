package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ssec-proxy/ssec-proxy/proxy"
	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// requestMetrics are the metrics of client requests. ObserveRequest runs
// once per request: it finds the series it updates in caches that are
// read without a lock and without allocating; only the first request of a
// label combination takes a lock, asks the vectors and copies the cache.
type requestMetrics struct {
	requests     *prometheus.CounterVec
	bytesIn      *prometheus.CounterVec
	bytesOut     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	upstream     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	decisions    *prometheus.CounterVec // decision, key_id (the series of before the rule label)
	keyDecisions *prometheus.CounterVec // rule, decision, key_id
	upstreamErrs map[string]prometheus.Counter

	byOpStatus   cache[opStatus, *opSeries]
	byAuthCode   cache[string, prometheus.Counter]
	byDecision   cache[decisionKey, *decisionSeries]
	statusLabels cache[int, string]
}

type opStatus struct {
	op     string
	status int
}

// opSeries are the series one request of an operation and status updates.
type opSeries struct {
	requests          prometheus.Counter
	bytesIn, bytesOut prometheus.Counter
	duration          prometheus.Observer
	upstream          prometheus.Observer
}

type decisionKey struct {
	decision, keyID, ruleBucket, rulePrefix string
}

type decisionSeries struct {
	decisions, keyDecisions prometheus.Counter
}

// upstreamErrorCodes are the S3 errors the proxy answers when the upstream
// could not be reached, timed out or gave an unusable answer
// (proxy.mapTransportError).
var upstreamErrorCodes = []string{s3err.BadGateway.Name, s3err.ServiceUnavailable.Name, s3err.GatewayTimeout.Name}

// DefaultRule is the rule label of a decision that no rule made: the
// config's default (deny or plaintext) decided.
const DefaultRule = "default"

func (q *requestMetrics) init(f factory) {
	q.requests = f.counterVec("ssec_proxy_requests_total",
		"Client requests answered, by S3 operation (none: refused before routing) and HTTP status.", "op", "status")
	q.bytesIn = f.counterVec("ssec_proxy_received_bytes_total",
		"Request body bytes received from clients and sent upstream, by operation.", "op")
	q.bytesOut = f.counterVec("ssec_proxy_sent_bytes_total",
		"Response body bytes sent to clients, by operation.", "op")
	q.duration = f.histogramVec("ssec_proxy_request_duration_seconds",
		"Time from a request's arrival to the end of its response, by operation.", "op")
	q.upstream = f.histogramVec("ssec_proxy_upstream_duration_seconds",
		"Time to the upstream's response headers (all tries of one request), by operation.", "op")
	q.authFailures = f.counterVec("ssec_proxy_auth_failures_total",
		"Requests refused by client authentication, by S3 error code.", "code")
	q.decisions = f.counterVec("ssec_proxy_rule_decisions_total",
		"Rule decisions for requests that carry object data: encrypt (with key_id), plaintext, plaintext-read or deny.", "decision", "key_id")
	q.keyDecisions = f.counterVec("ssec_proxy_key_decisions_total",
		"Rule decisions by the rule that made them (bucket/prefix as in the config, or default), decision and key id.", "rule", "decision", "key_id")
	errs := f.counterVec("ssec_proxy_upstream_errors_total",
		"Client requests answered with the proxy's own 502, 503 or 504 because the upstream failed (unreachable, timed out, unusable answer), by S3 error code.", "code")
	q.upstreamErrs = make(map[string]prometheus.Counter, len(upstreamErrorCodes))
	for _, c := range upstreamErrorCodes {
		q.upstreamErrs[c] = errs.WithLabelValues(c) // at 0 from the start
	}

	q.byOpStatus.make = func(k opStatus) *opSeries {
		return &opSeries{
			requests: q.requests.WithLabelValues(k.op, q.statusLabels.get(k.status)),
			bytesIn:  q.bytesIn.WithLabelValues(k.op),
			bytesOut: q.bytesOut.WithLabelValues(k.op),
			duration: q.duration.WithLabelValues(k.op),
			upstream: q.upstream.WithLabelValues(k.op),
		}
	}
	q.byAuthCode.make = func(code string) prometheus.Counter { return q.authFailures.WithLabelValues(code) }
	q.byDecision.make = func(k decisionKey) *decisionSeries {
		rule := DefaultRule
		if k.ruleBucket != "" {
			rule = k.ruleBucket + "/" + k.rulePrefix
		}
		return &decisionSeries{
			decisions:    q.decisions.WithLabelValues(k.decision, k.keyID),
			keyDecisions: q.keyDecisions.WithLabelValues(rule, k.decision, k.keyID),
		}
	}
	q.statusLabels.make = strconv.Itoa
}

// ObserveRequest counts one finished request. It does not block (but for
// the first request of a label combination) and does not allocate.
func (m *Metrics) ObserveRequest(s proxy.RequestStats) {
	q := &m.req
	op := s.Op
	if op == "" {
		op = "none"
	}
	o := q.byOpStatus.get(opStatus{op, s.Status})
	o.requests.Inc()
	if s.BytesIn > 0 {
		o.bytesIn.Add(float64(s.BytesIn))
	}
	if s.BytesOut > 0 {
		o.bytesOut.Add(float64(s.BytesOut))
	}
	o.duration.Observe(s.Duration.Seconds())
	if s.Upstream > 0 {
		o.upstream.Observe(s.Upstream.Seconds())
	}
	if s.AuthFailed {
		q.byAuthCode.get(s.ErrCode).Inc()
	}
	if c, ok := q.upstreamErrs[s.ErrCode]; ok && s.Status >= 500 {
		c.Inc()
	}
	if s.Decision != "" {
		d := q.byDecision.get(decisionKey{s.Decision, s.KeyID, s.RuleBucket, s.RulePrefix})
		d.decisions.Inc()
		d.keyDecisions.Inc()
	}
}

// cache maps K to V. A lookup is one atomic load and a map read; a miss
// makes the value under a lock and publishes a copy of the map with it.
// Its keys are label values, whose number is bounded by the proxy's
// operations, statuses, error codes and config, so the copies are few.
type cache[K comparable, V any] struct {
	m    atomic.Pointer[map[K]V]
	mu   sync.Mutex
	make func(K) V
}

func (c *cache[K, V]) get(k K) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	return c.slow(k)
}

func (c *cache[K, V]) slow(k K) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := make(map[K]V, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	v := c.make(k)
	next[k] = v
	c.m.Store(&next)
	return v
}

func lenOf[K comparable, V any](m *map[K]V) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
