// Package metrics is what ssec-proxy exports on /metrics, built on
// github.com/prometheus/client_golang with a registry of its own (never the
// global default one).
//
// Metrics is a proxy.Observer; the serve command also reports reloads,
// certificate loads, upstream probes and requests in flight to it, and the
// proxy reports its index writes (IndexObserver) and upstream connections
// (UpstreamObserver).
//
// Label values must never hold a secret or an object key: callers pass
// operation names, statuses, S3 error codes, decisions, key ids and the
// bucket and prefix of config rules only.
package metrics

import (
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ssec-proxy/ssec-proxy/proxy"
)

// IndexObserver and UpstreamObserver are the proxy's optional observer
// hooks; the assertions below keep Metrics implementing them (the proxy
// asserts its Options.Observer to them at run time: a Metrics that fell
// out of step would silently hear nothing).
type (
	IndexObserver    = proxy.IndexObserver
	UpstreamObserver = proxy.UpstreamObserver
)

var (
	_ proxy.Observer   = (*Metrics)(nil)
	_ IndexObserver    = (*Metrics)(nil)
	_ UpstreamObserver = (*Metrics)(nil)
)

// LatencyBuckets are the upper bounds, in seconds, of the latency
// histograms: from 5 ms to 5 minutes (a large object's upload is timed to
// the upstream's answer).
var LatencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

// Label values of the result labels.
const (
	success = "success"
	failure = "failure"
)

// reloadTriggers are the values of ssec_proxy_config_reloads_total's
// trigger label that the serve command uses.
var reloadTriggers = []string{"sighup", "file"}

// Metrics is the metric set of one ssec-proxy process.
type Metrics struct {
	// Registry holds every metric below and the Go and process
	// collectors. Handler serves it.
	Registry *prometheus.Registry

	req requestMetrics // observe.go

	inFlight atomic.Int64

	reloads     *prometheus.CounterVec
	reloadOK    prometheus.Gauge
	reloadLast  prometheus.Gauge
	tlsReloads  *prometheus.CounterVec
	tlsNotAfter prometheus.Gauge

	probes      *prometheus.CounterVec
	upstreamUp  prometheus.Gauge
	probeLastOK prometheus.Gauge
	probeTook   prometheus.Histogram

	indexWrites     *prometheus.CounterVec
	indexPending    scrapeFunc
	cleanupsPending scrapeFunc

	connsOpened   prometheus.Counter
	tlsHandshakes *prometheus.CounterVec
}

// New makes the metric set. version is reported in ssec_proxy_build_info.
func New(version string) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{Registry: r}
	f := factory{r}
	m.req.init(f)

	f.gaugeFunc("ssec_proxy_requests_in_flight", "Client requests being served now.",
		func() float64 { return float64(m.inFlight.Load()) })

	m.reloads = f.counterVec("ssec_proxy_config_reloads_total",
		"Config and key reloads, by result (success, failure) and trigger (sighup, file).", "result", "trigger")
	m.reloadOK = f.gauge("ssec_proxy_config_last_reload_successful",
		"1 when the last config reload succeeded (or none was tried), 0 when the proxy is running an older config.")
	m.reloadLast = f.gauge("ssec_proxy_config_last_reload_success_timestamp_seconds",
		"Unix time of the last config load that took effect (the start counts).")
	m.tlsReloads = f.counterVec("ssec_proxy_tls_reloads_total",
		"Server certificate loads after the start, by result (success, failure).", "result")
	m.tlsNotAfter = f.gauge("ssec_proxy_tls_cert_not_after_timestamp_seconds",
		"Unix time at which the served certificate expires; 0 when the proxy serves no TLS.")

	m.probes = f.counterVec("ssec_proxy_upstream_probes_total",
		"Reachability probes of the upstream, by result (up: any HTTP answer, down: no answer).", "result")
	m.upstreamUp = f.gauge("ssec_proxy_upstream_up", "1 when the last upstream probe got an HTTP answer.")
	m.probeLastOK = f.gauge("ssec_proxy_upstream_last_probe_success_timestamp_seconds",
		"Unix time of the last upstream probe that got an HTTP answer.")
	m.probeTook = f.histogram("ssec_proxy_upstream_probe_duration_seconds", "Time an upstream probe took.")

	m.indexWrites = f.counterVec("ssec_proxy_index_writes_total",
		"Writes of ETag index entries, by result (success, failure: the object is stored, later responses carry the upstream's ETag).", "result")
	f.gaugeFunc("ssec_proxy_index_writes_pending", "ETag index writes started or queued and not finished.", m.indexPending.value)
	f.gaugeFunc("ssec_proxy_index_cleanups_pending",
		"Clean-ups of ETag index entries (of overwritten and deleted objects) waiting for their sweep or under way.", m.cleanupsPending.value)

	m.connsOpened = f.counter("ssec_proxy_upstream_connections_opened_total",
		"Connections opened to the upstream.")
	m.tlsHandshakes = f.counterVec("ssec_proxy_upstream_tls_handshakes_total",
		"TLS handshakes with the upstream, by result (success, failure).", "result")

	f.gaugeVec("ssec_proxy_build_info", "Always 1; the labels name the build.", "version", "goversion").
		WithLabelValues(version, runtime.Version()).Set(1)

	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	// Series that alerts take increase() of exist from the start at 0, so
	// that the first failure is an increase.
	for _, res := range []string{success, failure} {
		for _, tr := range reloadTriggers {
			m.reloads.WithLabelValues(res, tr)
		}
		m.tlsReloads.WithLabelValues(res)
		m.indexWrites.WithLabelValues(res)
		m.tlsHandshakes.WithLabelValues(res)
	}
	m.probes.WithLabelValues("up")
	m.probes.WithLabelValues("down")

	m.reloadOK.Set(1)
	m.reloadLast.Set(unixNow())
	return m
}

// Handler serves the registry in the Prometheus exposition formats
// (text by default, others as the scraper asks).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError, // one failing collector must not hide the rest
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// InFlight wraps h to count the requests being served.
func (m *Metrics) InFlight(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.inFlight.Add(1)
		defer m.inFlight.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// InFlightNow is the number of requests being served.
func (m *Metrics) InFlightNow() int { return int(m.inFlight.Load()) }

// Reload counts a reload attempt; trigger is "sighup" or "file".
func (m *Metrics) Reload(ok bool, trigger string) {
	if ok {
		m.reloadOK.Set(1)
		m.reloadLast.Set(unixNow())
	} else {
		m.reloadOK.Set(0)
	}
	m.reloads.WithLabelValues(result(ok), trigger).Inc()
}

// TLSReload counts a certificate load after the start.
func (m *Metrics) TLSReload(ok bool) { m.tlsReloads.WithLabelValues(result(ok)).Inc() }

// TLSCert records the expiry of the certificate now served.
func (m *Metrics) TLSCert(notAfter time.Time) { m.tlsNotAfter.Set(float64(notAfter.Unix())) }

// Probe records an upstream probe.
func (m *Metrics) Probe(up bool, took time.Duration) {
	m.probeTook.Observe(took.Seconds())
	if up {
		m.probes.WithLabelValues("up").Inc()
		m.upstreamUp.Set(1)
		m.probeLastOK.Set(unixNow())
		return
	}
	m.probes.WithLabelValues("down").Inc()
	m.upstreamUp.Set(0)
}

// IndexWrite counts one finished write of an ETag index entry.
func (m *Metrics) IndexWrite(ok bool) { m.indexWrites.WithLabelValues(result(ok)).Inc() }

// SetIndexPending sets the function that ssec_proxy_index_writes_pending
// reports; nil reports 0.
func (m *Metrics) SetIndexPending(fn func() int) { m.indexPending.set(fn) }

// SetCleanupsPending sets the function that
// ssec_proxy_index_cleanups_pending reports; nil reports 0.
func (m *Metrics) SetCleanupsPending(fn func() int) { m.cleanupsPending.set(fn) }

// scrapeFunc is the function a gauge reports at each scrape, set and
// replaced at any time; unset, the gauge is 0.
type scrapeFunc struct{ fn atomic.Pointer[func() int] }

func (g *scrapeFunc) set(fn func() int) {
	if fn == nil {
		g.fn.Store(nil)
		return
	}
	g.fn.Store(&fn)
}

func (g *scrapeFunc) value() float64 {
	if fn := g.fn.Load(); fn != nil {
		return float64((*fn)())
	}
	return 0
}

// UpstreamConnOpened counts one new connection to the upstream.
func (m *Metrics) UpstreamConnOpened() { m.connsOpened.Inc() }

// UpstreamTLSHandshake counts one finished TLS handshake with the upstream.
func (m *Metrics) UpstreamTLSHandshake(ok bool) { m.tlsHandshakes.WithLabelValues(result(ok)).Inc() }

func result(ok bool) string {
	if ok {
		return success
	}
	return failure
}

func unixNow() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// factory makes metrics and registers them with r.
type factory struct{ r prometheus.Registerer }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.r.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.r.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.r.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.r.MustRegister(g)
	return g
}

func (f factory) gaugeFunc(name, help string, fn func() float64) {
	f.r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

func (f factory) histogram(name, help string) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: LatencyBuckets})
	f.r.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: LatencyBuckets}, labels)
	f.r.MustRegister(h)
	return h
}
