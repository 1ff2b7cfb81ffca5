package metrics

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/ssec-proxy/ssec-proxy/proxy"
)

// oldNames are the metrics the hand-written registry exported before
// client_golang, with their types: dashboards and alerts use them, so they
// stay.
var oldNames = map[string]dto.MetricType{
	"ssec_proxy_requests_total":                                dto.MetricType_COUNTER,
	"ssec_proxy_received_bytes_total":                          dto.MetricType_COUNTER,
	"ssec_proxy_sent_bytes_total":                              dto.MetricType_COUNTER,
	"ssec_proxy_request_duration_seconds":                      dto.MetricType_HISTOGRAM,
	"ssec_proxy_upstream_duration_seconds":                     dto.MetricType_HISTOGRAM,
	"ssec_proxy_auth_failures_total":                           dto.MetricType_COUNTER,
	"ssec_proxy_rule_decisions_total":                          dto.MetricType_COUNTER,
	"ssec_proxy_requests_in_flight":                            dto.MetricType_GAUGE,
	"ssec_proxy_config_reloads_total":                          dto.MetricType_COUNTER,
	"ssec_proxy_config_last_reload_successful":                 dto.MetricType_GAUGE,
	"ssec_proxy_config_last_reload_success_timestamp_seconds":  dto.MetricType_GAUGE,
	"ssec_proxy_tls_reloads_total":                             dto.MetricType_COUNTER,
	"ssec_proxy_tls_cert_not_after_timestamp_seconds":          dto.MetricType_GAUGE,
	"ssec_proxy_upstream_probes_total":                         dto.MetricType_COUNTER,
	"ssec_proxy_upstream_up":                                   dto.MetricType_GAUGE,
	"ssec_proxy_upstream_last_probe_success_timestamp_seconds": dto.MetricType_GAUGE,
	"ssec_proxy_upstream_probe_duration_seconds":               dto.MetricType_HISTOGRAM,
	"ssec_proxy_build_info":                                    dto.MetricType_GAUGE,
	"process_start_time_seconds":                               dto.MetricType_GAUGE,
	"process_resident_memory_bytes":                            dto.MetricType_GAUGE,
	"go_goroutines":                                            dto.MetricType_GAUGE,
}

// newNames are the metrics added with client_golang (besides the Go and
// process collectors' own).
var newNames = map[string]dto.MetricType{
	"ssec_proxy_key_decisions_total":               dto.MetricType_COUNTER,
	"ssec_proxy_upstream_errors_total":             dto.MetricType_COUNTER,
	"ssec_proxy_index_writes_total":                dto.MetricType_COUNTER,
	"ssec_proxy_index_writes_pending":              dto.MetricType_GAUGE,
	"ssec_proxy_index_cleanups_pending":            dto.MetricType_GAUGE,
	"ssec_proxy_upstream_connections_opened_total": dto.MetricType_COUNTER,
	"ssec_proxy_upstream_tls_handshakes_total":     dto.MetricType_COUNTER,
	"process_cpu_seconds_total":                    dto.MetricType_COUNTER,
	"process_open_fds":                             dto.MetricType_GAUGE,
	"go_memstats_heap_alloc_bytes":                 dto.MetricType_GAUGE,
	"go_gc_duration_seconds":                       dto.MetricType_SUMMARY,
}

var sampleStats = []proxy.RequestStats{
	{Op: "PutObject", Status: 200, Decision: "encrypt", KeyID: "k1", RuleBucket: "backups", BytesIn: 100, Duration: time.Millisecond, Upstream: time.Millisecond},
	{Op: "PutObject", Status: 200, Decision: "encrypt", KeyID: "k1", RuleBucket: "backups", BytesIn: 50, Duration: time.Millisecond, Upstream: time.Millisecond},
	{Op: "GetObject", Status: 200, Decision: "encrypt", KeyID: "k0", RuleBucket: "backups", BytesOut: 150, Duration: time.Second, Upstream: 2 * time.Millisecond},
	{Op: "GetObject", Status: 200, Decision: "plaintext", RuleBucket: "backups", RulePrefix: "public/", BytesOut: 7, Duration: time.Millisecond, Upstream: time.Millisecond},
	{Op: "PutObject", Status: 403, ErrCode: "AccessDenied", Decision: "deny", Duration: time.Millisecond},
	{Op: "", Status: 403, ErrCode: "SignatureDoesNotMatch", AuthFailed: true},
	{Op: "ListObjectsV2", Status: 200, BytesOut: 10, Upstream: time.Millisecond},
	{Op: "GetObject", Status: 503, ErrCode: "ServiceUnavailable", Decision: "encrypt", KeyID: "k1", RuleBucket: "backups", Duration: 5 * time.Second},
	{Op: "GetObject", Status: 504, ErrCode: "GatewayTimeout", Decision: "encrypt", KeyID: "k1", RuleBucket: "backups", Duration: 30 * time.Second},
}

// exercised is a Metrics on which every method was called, so that every
// family has a series.
func exercised(t testing.TB) *Metrics {
	m := New("test")
	for _, s := range sampleStats {
		m.ObserveRequest(s)
	}
	m.Reload(false, "sighup")
	m.Reload(true, "file")
	m.TLSReload(true)
	m.TLSCert(time.Unix(1900000000, 0))
	m.Probe(true, time.Millisecond)
	m.IndexWrite(true)
	m.IndexWrite(false)
	m.SetIndexPending(func() int { return 3 })
	m.SetCleanupsPending(func() int { return 4 })
	m.UpstreamConnOpened()
	m.UpstreamTLSHandshake(true)
	return m
}

// exportedTypes gathers m's registry: family name → type.
func exportedTypes(t testing.TB, m *Metrics) map[string]dto.MetricType {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dto.MetricType{}
	for _, f := range fams {
		out[f.GetName()] = f.GetType()
	}
	return out
}

// TestNamesStable: every metric of before client_golang is still exported
// with its type, and so are the new ones.
func TestNamesStable(t *testing.T) {
	m := exercised(t)
	got := exportedTypes(t, m)
	for _, set := range []map[string]dto.MetricType{oldNames, newNames} {
		for name, typ := range set {
			if g, ok := got[name]; !ok {
				t.Errorf("%s is not exported", name)
			} else if g != typ {
				t.Errorf("%s is a %v, want %v", name, g, typ)
			}
			if n, err := testutil.GatherAndCount(m.Registry, name); err != nil || n == 0 {
				t.Errorf("%s: %d series, %v", name, n, err)
			}
		}
	}
	// Before any request, the families that alerts and dashboards read
	// without a request having happened are there.
	fresh := exportedTypes(t, New("test"))
	for _, name := range []string{"ssec_proxy_requests_in_flight", "ssec_proxy_config_reloads_total",
		"ssec_proxy_config_last_reload_successful", "ssec_proxy_tls_reloads_total",
		"ssec_proxy_tls_cert_not_after_timestamp_seconds", "ssec_proxy_upstream_up",
		"ssec_proxy_upstream_errors_total", "ssec_proxy_index_writes_total", "ssec_proxy_index_writes_pending",
		"ssec_proxy_index_cleanups_pending", "ssec_proxy_upstream_connections_opened_total", "ssec_proxy_upstream_tls_handshakes_total",
		"ssec_proxy_build_info", "process_resident_memory_bytes", "go_goroutines"} {
		if _, ok := fresh[name]; !ok {
			t.Errorf("%s is missing before any request", name)
		}
	}
}

func TestObserveRequest(t *testing.T) {
	m := exercised(t)
	q := &m.req
	for _, c := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"PutObject 200", q.requests.WithLabelValues("PutObject", "200"), 2},
		{"PutObject 403", q.requests.WithLabelValues("PutObject", "403"), 1},
		{"none 403", q.requests.WithLabelValues("none", "403"), 1},
		{"GetObject 503", q.requests.WithLabelValues("GetObject", "503"), 1},
		{"bytes in", q.bytesIn.WithLabelValues("PutObject"), 150},
		{"bytes out", q.bytesOut.WithLabelValues("GetObject"), 157},
		{"auth", q.authFailures.WithLabelValues("SignatureDoesNotMatch"), 1},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	// Every series of the decision and upstream error families, exactly.
	want := `
# HELP ssec_proxy_rule_decisions_total Rule decisions for requests that carry object data: encrypt (with key_id), plaintext, plaintext-read or deny.
# TYPE ssec_proxy_rule_decisions_total counter
ssec_proxy_rule_decisions_total{decision="deny",key_id=""} 1
ssec_proxy_rule_decisions_total{decision="encrypt",key_id="k0"} 1
ssec_proxy_rule_decisions_total{decision="encrypt",key_id="k1"} 4
ssec_proxy_rule_decisions_total{decision="plaintext",key_id=""} 1
# HELP ssec_proxy_key_decisions_total Rule decisions by the rule that made them (bucket/prefix as in the config, or default), decision and key id.
# TYPE ssec_proxy_key_decisions_total counter
ssec_proxy_key_decisions_total{decision="deny",key_id="",rule="default"} 1
ssec_proxy_key_decisions_total{decision="encrypt",key_id="k0",rule="backups/"} 1
ssec_proxy_key_decisions_total{decision="encrypt",key_id="k1",rule="backups/"} 4
ssec_proxy_key_decisions_total{decision="plaintext",key_id="",rule="backups/public/"} 1
# HELP ssec_proxy_upstream_errors_total Client requests answered with the proxy's own 502, 503 or 504 because the upstream failed (unreachable, timed out, unusable answer), by S3 error code.
# TYPE ssec_proxy_upstream_errors_total counter
ssec_proxy_upstream_errors_total{code="BadGateway"} 0
ssec_proxy_upstream_errors_total{code="GatewayTimeout"} 1
ssec_proxy_upstream_errors_total{code="ServiceUnavailable"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"ssec_proxy_rule_decisions_total", "ssec_proxy_key_decisions_total", "ssec_proxy_upstream_errors_total"); err != nil {
		t.Error(err)
	}
	// Upstream latency: observed only for requests that went upstream
	// (the refused ones and the failed GETs did not).
	for op, n := range map[string]uint64{"PutObject": 2, "GetObject": 2, "ListObjectsV2": 1, "none": 0} {
		if got := histCount(t, m, "ssec_proxy_upstream_duration_seconds", op); got != n {
			t.Errorf("upstream latency count of %s = %d, want %d", op, got, n)
		}
	}
	if got := histCount(t, m, "ssec_proxy_request_duration_seconds", "GetObject"); got != 4 {
		t.Errorf("request duration count of GetObject = %d, want 4", got)
	}
	// 0.002 s falls in the le=0.005 bucket of GetObject's upstream latency, 0.001 too.
	if got := bucket(t, m, "ssec_proxy_upstream_duration_seconds", "GetObject", 0.005); got != 2 {
		t.Errorf("GetObject upstream le=0.005: %d, want 2", got)
	}
	if got := bucket(t, m, "ssec_proxy_request_duration_seconds", "GetObject", 0.5); got != 1 {
		t.Errorf("GetObject request le=0.5: %d, want 1", got)
	}
}

// series finds the series of family name whose op label is op.
func series(t *testing.T, m *Metrics, name, op string) *dto.Metric {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					return s
				}
			}
		}
	}
	return nil
}

func histCount(t *testing.T, m *Metrics, name, op string) uint64 {
	return series(t, m, name, op).GetHistogram().GetSampleCount()
}

func bucket(t *testing.T, m *Metrics, name, op string, le float64) uint64 {
	t.Helper()
	for _, b := range series(t, m, name, op).GetHistogram().GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	t.Fatalf("%s{op=%q} has no bucket %v", name, op, le)
	return 0
}

// TestObserveRequestAllocates: once a label combination was seen,
// counting a request allocates nothing.
func TestObserveRequestAllocates(t *testing.T) {
	m := exercised(t)
	allocs := testing.AllocsPerRun(200, func() {
		for _, s := range sampleStats {
			m.ObserveRequest(s)
		}
	})
	if allocs != 0 {
		t.Errorf("ObserveRequest allocates %v times per %d requests", allocs, len(sampleStats))
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := exercised(b)
	s := sampleStats[0]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest(s)
		}
	})
}

func TestConcurrentObserve(t *testing.T) {
	m := New("test")
	ops := []string{"PutObject", "GetObject", "HeadObject", "ListObjectsV2"}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 1000 {
				m.ObserveRequest(proxy.RequestStats{Op: ops[(i+j)%len(ops)], Status: 200 + j%3, BytesIn: 2,
					Decision: "encrypt", KeyID: "k", RuleBucket: "b", Upstream: time.Millisecond})
				if j%100 == 0 {
					if _, err := m.Registry.Gather(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	var total float64
	for _, op := range ops {
		for st := 200; st < 203; st++ {
			total += testutil.ToFloat64(m.req.requests.WithLabelValues(op, strconv.Itoa(st)))
		}
	}
	if total != 8000 {
		t.Errorf("requests = %v, want 8000", total)
	}
	if n := testutil.CollectAndCount(m.req.requests); n != len(ops)*3 {
		t.Errorf("%d request series, want %d", n, len(ops)*3)
	}
	if v := testutil.ToFloat64(m.req.decisions.WithLabelValues("encrypt", "k")); v != 8000 {
		t.Errorf("decisions = %v, want 8000", v)
	}
}

// TestHooks: reloads, certificates, probes, index writes and upstream
// connections, and the series that exist at 0 before anything happened.
func TestHooks(t *testing.T) {
	m := New("test")
	before := `
# HELP ssec_proxy_config_reloads_total Config and key reloads, by result (success, failure) and trigger (sighup, file).
# TYPE ssec_proxy_config_reloads_total counter
ssec_proxy_config_reloads_total{result="failure",trigger="file"} 0
ssec_proxy_config_reloads_total{result="failure",trigger="sighup"} 0
ssec_proxy_config_reloads_total{result="success",trigger="file"} 0
ssec_proxy_config_reloads_total{result="success",trigger="sighup"} 0
# HELP ssec_proxy_config_last_reload_successful 1 when the last config reload succeeded (or none was tried), 0 when the proxy is running an older config.
# TYPE ssec_proxy_config_last_reload_successful gauge
ssec_proxy_config_last_reload_successful 1
# HELP ssec_proxy_index_writes_pending ETag index writes started or queued and not finished.
# TYPE ssec_proxy_index_writes_pending gauge
ssec_proxy_index_writes_pending 0
# HELP ssec_proxy_upstream_tls_handshakes_total TLS handshakes with the upstream, by result (success, failure).
# TYPE ssec_proxy_upstream_tls_handshakes_total counter
ssec_proxy_upstream_tls_handshakes_total{result="failure"} 0
ssec_proxy_upstream_tls_handshakes_total{result="success"} 0
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(before), "ssec_proxy_config_reloads_total",
		"ssec_proxy_config_last_reload_successful", "ssec_proxy_index_writes_pending", "ssec_proxy_upstream_tls_handshakes_total"); err != nil {
		t.Error(err)
	}

	m.Reload(false, "sighup")
	if v := testutil.ToFloat64(m.reloadOK); v != 0 {
		t.Errorf("after a failed reload: last_reload_successful = %v", v)
	}
	lastOK := testutil.ToFloat64(m.reloadLast)
	time.Sleep(2 * time.Millisecond)
	m.Reload(true, "file")
	if v := testutil.ToFloat64(m.reloadOK); v != 1 {
		t.Errorf("after a good reload: last_reload_successful = %v", v)
	}
	if v := testutil.ToFloat64(m.reloadLast); v <= lastOK {
		t.Errorf("success timestamp %v did not move past %v", v, lastOK)
	}
	m.TLSReload(false)
	m.TLSReload(true)
	m.TLSReload(true)
	notAfter := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	m.TLSCert(notAfter)
	m.Probe(false, time.Second)
	m.Probe(true, time.Millisecond)
	m.Probe(false, 2*time.Second)
	for range 3 {
		m.IndexWrite(false)
	}
	m.IndexWrite(true)
	pending := 0
	var mu sync.Mutex
	m.SetIndexPending(func() int { mu.Lock(); defer mu.Unlock(); return pending })
	m.SetCleanupsPending(func() int { mu.Lock(); defer mu.Unlock(); return 7 * pending })
	mu.Lock()
	pending = 12
	mu.Unlock()
	for range 5 {
		m.UpstreamConnOpened()
	}
	m.UpstreamTLSHandshake(true)
	m.UpstreamTLSHandshake(false)

	for _, c := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"reload failure sighup", m.reloads.WithLabelValues("failure", "sighup"), 1},
		{"reload success file", m.reloads.WithLabelValues("success", "file"), 1},
		{"reload success sighup", m.reloads.WithLabelValues("success", "sighup"), 0},
		{"tls failure", m.tlsReloads.WithLabelValues("failure"), 1},
		{"tls success", m.tlsReloads.WithLabelValues("success"), 2},
		{"not after", m.tlsNotAfter, float64(notAfter.Unix())},
		{"probes down", m.probes.WithLabelValues("down"), 2},
		{"probes up", m.probes.WithLabelValues("up"), 1},
		{"upstream up", m.upstreamUp, 0},
		{"index failure", m.indexWrites.WithLabelValues("failure"), 3},
		{"index success", m.indexWrites.WithLabelValues("success"), 1},
		{"connections", m.connsOpened, 5},
		{"handshakes ok", m.tlsHandshakes.WithLabelValues("success"), 1},
		{"handshakes failed", m.tlsHandshakes.WithLabelValues("failure"), 1},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if n, _ := testutil.GatherAndCount(m.Registry, "ssec_proxy_upstream_probe_duration_seconds"); n != 1 {
		t.Errorf("probe duration: %d series", n)
	}
	pendingWant := "# HELP ssec_proxy_index_writes_pending ETag index writes started or queued and not finished.\n" +
		"# TYPE ssec_proxy_index_writes_pending gauge\nssec_proxy_index_writes_pending 12\n"
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(pendingWant), "ssec_proxy_index_writes_pending"); err != nil {
		t.Error(err)
	}
	cleanupsWant := "# HELP ssec_proxy_index_cleanups_pending Clean-ups of ETag index entries (of overwritten and deleted objects) waiting for their sweep or under way.\n" +
		"# TYPE ssec_proxy_index_cleanups_pending gauge\nssec_proxy_index_cleanups_pending 84\n"
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(cleanupsWant), "ssec_proxy_index_cleanups_pending"); err != nil {
		t.Error(err)
	}
	m.SetIndexPending(nil)
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(strings.Replace(pendingWant, " 12", " 0", 1)),
		"ssec_proxy_index_writes_pending"); err != nil {
		t.Error(err)
	}
	m.SetCleanupsPending(nil)
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(strings.Replace(cleanupsWant, " 84", " 0", 1)),
		"ssec_proxy_index_cleanups_pending"); err != nil {
		t.Error(err)
	}

	// In flight: counted while the handler runs.
	inside := make(chan int, 1)
	h := m.InFlight(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { inside <- m.InFlightNow() }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if n := <-inside; n != 1 {
		t.Errorf("in flight while serving: %d", n)
	}
	if n := m.InFlightNow(); n != 0 {
		t.Errorf("in flight after: %d", n)
	}
}

// TestHandler: /metrics serves this registry (not the global one) in the
// text format, gzipped when asked, with the Go and process collectors.
func TestHandler(t *testing.T) {
	m := exercised(t)
	global := prometheus.NewCounter(prometheus.CounterOpts{Name: "ssec_test_global_total", Help: "x"})
	prometheus.MustRegister(global)
	defer prometheus.Unregister(global)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	out := rec.Body.String()
	for _, want := range []string{
		`ssec_proxy_requests_total{op="PutObject",status="200"} 2`,
		`ssec_proxy_build_info{goversion="go`,
		`,version="test"} 1`,
		`ssec_proxy_upstream_duration_seconds_bucket{op="GetObject",le="+Inf"} 2`,
		`ssec_proxy_tls_cert_not_after_timestamp_seconds 1.9e+09`,
		"\ngo_goroutines ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(out, "ssec_test_global_total") {
		t.Error("/metrics serves the global registry")
	}
	if !regexp.MustCompile(`(?m)^process_resident_memory_bytes [1-9]`).MatchString(out) {
		t.Error("process_resident_memory_bytes is not positive")
	}

	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec = httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", rec.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	unz, err := io.ReadAll(zr)
	if err != nil || !strings.Contains(string(unz), "ssec_proxy_requests_total") {
		t.Errorf("gzipped body: %v", err)
	}
}

// TestLabelNames: the only labels are the ones documented (operation,
// status, codes, decisions, key ids, rules, fixed words), none that could
// carry an object key or a secret.
func TestLabelNames(t *testing.T) {
	m := exercised(t)
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"op": true, "status": true, "code": true, "decision": true, "key_id": true,
		"rule": true, "result": true, "trigger": true, "version": true, "goversion": true,
		"le": true, "quantile": true} // go_info's version, go_gc_duration_seconds' quantile
	var bad []string
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if !allowed[l.GetName()] {
					bad = append(bad, f.GetName()+"/"+l.GetName())
				}
			}
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("unexpected labels: %v", bad)
	}
}
