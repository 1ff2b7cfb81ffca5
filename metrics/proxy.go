package metrics

import (
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ssec-proxy/ssec-proxy/proxy"
)

// Metrics is what ssec-proxy exports on /metrics. It is a proxy.Observer;
// the serve command also reports reloads, certificate swaps, upstream
// probes and requests in flight to it.
type Metrics struct {
	Registry *Registry

	requests     *CounterVec
	bytesIn      *CounterVec
	bytesOut     *CounterVec
	duration     *HistogramVec
	upstream     *HistogramVec
	authFailures *CounterVec
	decisions    *CounterVec
	inFlight     Gauge

	reloads        *CounterVec
	reloadOK       Gauge
	reloadLast     Gauge
	tlsReloads     *CounterVec
	tlsNotAfter    Gauge
	probes         *CounterVec
	upstreamUp     Gauge
	probeLastOK    Gauge
	probeLatencies Histogram
}

var _ proxy.Observer = (*Metrics)(nil)

// LatencyBuckets are the upper bounds, in seconds, of the latency
// histograms: from 5 ms to 5 minutes (a large object's upload is timed to
// the upstream's answer).
var LatencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

// New makes the metric set. version is reported in ssec_proxy_build_info.
func New(version string) *Metrics {
	r := NewRegistry()
	m := &Metrics{Registry: r}
	m.requests = r.Counter("ssec_proxy_requests_total",
		"Client requests answered, by S3 operation (none: refused before routing) and HTTP status.", "op", "status")
	m.bytesIn = r.Counter("ssec_proxy_received_bytes_total",
		"Request body bytes received from clients and sent upstream, by operation.", "op")
	m.bytesOut = r.Counter("ssec_proxy_sent_bytes_total",
		"Response body bytes sent to clients, by operation.", "op")
	m.duration = r.Histogram("ssec_proxy_request_duration_seconds",
		"Time from a request's arrival to the end of its response, by operation.", LatencyBuckets, "op")
	m.upstream = r.Histogram("ssec_proxy_upstream_duration_seconds",
		"Time to the upstream's response headers (all tries of one request), by operation.", LatencyBuckets, "op")
	m.authFailures = r.Counter("ssec_proxy_auth_failures_total",
		"Requests refused by client authentication, by S3 error code.", "code")
	m.decisions = r.Counter("ssec_proxy_rule_decisions_total",
		"Rule decisions for requests that carry object data: encrypt (with key_id), plaintext, plaintext-read or deny.", "decision", "key_id")
	m.inFlight = r.Gauge("ssec_proxy_requests_in_flight", "Client requests being served now.").With()

	m.reloads = r.Counter("ssec_proxy_config_reloads_total",
		"Config and key reloads, by result (success, failure) and trigger (sighup, file).", "result", "trigger")
	m.reloadOK = r.Gauge("ssec_proxy_config_last_reload_successful",
		"1 when the last config reload succeeded (or none was tried), 0 when the proxy is running an older config.").With()
	m.reloadLast = r.Gauge("ssec_proxy_config_last_reload_success_timestamp_seconds",
		"Unix time of the last config load that took effect (the start counts).").With()
	m.tlsReloads = r.Counter("ssec_proxy_tls_reloads_total",
		"Server certificate loads after the start, by result (success, failure).", "result")
	m.tlsNotAfter = r.Gauge("ssec_proxy_tls_cert_not_after_timestamp_seconds",
		"Unix time at which the served certificate expires.").With()
	m.probes = r.Counter("ssec_proxy_upstream_probes_total",
		"Reachability probes of the upstream, by result (up: any HTTP answer, down: no answer).", "result")
	m.upstreamUp = r.Gauge("ssec_proxy_upstream_up", "1 when the last upstream probe got an HTTP answer.").With()
	m.probeLastOK = r.Gauge("ssec_proxy_upstream_last_probe_success_timestamp_seconds",
		"Unix time of the last upstream probe that got an HTTP answer.").With()
	m.probeLatencies = r.Histogram("ssec_proxy_upstream_probe_duration_seconds",
		"Time an upstream probe took.", LatencyBuckets).With()

	r.Gauge("ssec_proxy_build_info", "Always 1; the labels name the build.", "version", "goversion").
		With(version, runtime.Version()).Set(1)
	start := float64(time.Now().UnixNano()) / 1e9
	r.GaugeFunc("process_start_time_seconds", "Unix time the process started.", func() float64 { return start })
	r.GaugeFunc("process_resident_memory_bytes", "Resident memory size in bytes (Linux: /proc/self/statm).", residentBytes)
	r.GaugeFunc("go_goroutines", "Goroutines that currently exist.", func() float64 { return float64(runtime.NumGoroutine()) })
	m.reloadOK.Set(1)
	m.reloadLast.Set(start)
	return m
}

// ObserveRequest counts one finished request. It never blocks for long:
// each series is found under a short lock and updated atomically.
func (m *Metrics) ObserveRequest(s proxy.RequestStats) {
	op := s.Op
	if op == "" {
		op = "none"
	}
	m.requests.With(op, strconv.Itoa(s.Status)).Inc()
	m.bytesIn.With(op).Add(float64(s.BytesIn))
	m.bytesOut.With(op).Add(float64(s.BytesOut))
	m.duration.With(op).Observe(s.Duration.Seconds())
	if s.Upstream > 0 {
		m.upstream.With(op).Observe(s.Upstream.Seconds())
	}
	if s.AuthFailed {
		m.authFailures.With(s.ErrCode).Inc()
	}
	if s.Decision != "" {
		m.decisions.With(s.Decision, s.KeyID).Inc()
	}
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
func (m *Metrics) InFlightNow() int { return int(m.inFlight.Value()) }

// Reload counts a reload attempt; trigger is "sighup" or "file".
func (m *Metrics) Reload(ok bool, trigger string) {
	result := "failure"
	if ok {
		result = "success"
		m.reloadOK.Set(1)
		m.reloadLast.Set(float64(time.Now().UnixNano()) / 1e9)
	} else {
		m.reloadOK.Set(0)
	}
	m.reloads.With(result, trigger).Inc()
}

// TLSReload counts a certificate load after the start.
func (m *Metrics) TLSReload(ok bool) {
	if ok {
		m.tlsReloads.With("success").Inc()
	} else {
		m.tlsReloads.With("failure").Inc()
	}
}

// TLSCert records the expiry of the certificate now served.
func (m *Metrics) TLSCert(notAfter time.Time) {
	m.tlsNotAfter.Set(float64(notAfter.Unix()))
}

// Probe records an upstream probe.
func (m *Metrics) Probe(up bool, took time.Duration) {
	m.probeLatencies.Observe(took.Seconds())
	if up {
		m.probes.With("up").Inc()
		m.upstreamUp.Set(1)
		m.probeLastOK.Set(float64(time.Now().UnixNano()) / 1e9)
		return
	}
	m.probes.With("down").Inc()
	m.upstreamUp.Set(0)
}

// residentBytes reads the resident set size from /proc/self/statm; 0
// where there is none.
func residentBytes() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return float64(pages * uint64(os.Getpagesize()))
}
