package metrics

import (
	"bytes"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssec-proxy/ssec-proxy/proxy"
)

func text(t *testing.T, r *Registry) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestExpositionFormat pins the exact text: HELP and TYPE lines, sorted
// series, label escaping, cumulative histogram buckets with +Inf, _sum and
// _count.
func TestExpositionFormat(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("x_requests_total", "Requests.\nTwo lines \\ here.", "op", "status")
	c.With("PutObject", "200").Add(2)
	c.With("GetObject", "404").Inc()
	c.With(`we"ird`+"\n"+`\x`, "500").Inc()
	g := r.Gauge("x_up", "Up.")
	g.With().Set(1)
	h := r.Histogram("x_seconds", "Latency.", []float64{0.1, 1}, "op")
	for _, v := range []float64{0.05, 0.1, 0.5, 3} {
		h.With("GetObject").Observe(v)
	}
	r.GaugeFunc("x_fn", "A function.", func() float64 { return 42.5 })
	want := `# HELP x_requests_total Requests.\nTwo lines \\ here.
# TYPE x_requests_total counter
x_requests_total{op="GetObject",status="404"} 1
x_requests_total{op="PutObject",status="200"} 2
x_requests_total{op="we\"ird\n\\x",status="500"} 1
# HELP x_up Up.
# TYPE x_up gauge
x_up 1
# HELP x_seconds Latency.
# TYPE x_seconds histogram
x_seconds_bucket{op="GetObject",le="0.1"} 2
x_seconds_bucket{op="GetObject",le="1"} 3
x_seconds_bucket{op="GetObject",le="+Inf"} 4
x_seconds_sum{op="GetObject"} 3.65
x_seconds_count{op="GetObject"} 4
# HELP x_fn A function.
# TYPE x_fn gauge
x_fn 42.5
`
	if got := text(t, r); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestRegistryPanicsOnMisuse(t *testing.T) {
	for name, f := range map[string]func(r *Registry){
		"bad name":        func(r *Registry) { r.Counter("1x", "") },
		"bad label":       func(r *Registry) { r.Counter("x", "", "a-b") },
		"le label":        func(r *Registry) { r.Histogram("x", "", nil, "le") },
		"twice":           func(r *Registry) { r.Counter("x", ""); r.Gauge("x", "") },
		"label count":     func(r *Registry) { r.Counter("x", "", "a").With() },
		"unsorted bucket": func(r *Registry) { r.Histogram("x", "", []float64{2, 1}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f(NewRegistry())
		})
	}
}

func TestConcurrentUpdates(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("c_total", "", "k")
	h := r.Histogram("h", "", []float64{1}, "k")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				c.With("a").Add(0.5)
				h.With("a").Observe(2)
				if j%100 == 0 {
					_ = r.WriteText(&bytes.Buffer{})
				}
			}
		}()
	}
	wg.Wait()
	if v := c.With("a").Value(); v != 4000 {
		t.Errorf("counter = %v, want 4000", v)
	}
	if n := h.With("a").Count(); n != 8000 {
		t.Errorf("histogram count = %d, want 8000", n)
	}
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$`)

// checkFormat is a small parser of the text format: every line is a
// HELP, a TYPE or a sample of a family whose TYPE came before.
func checkFormat(t *testing.T, s string) {
	t.Helper()
	typed := map[string]string{}
	for i, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "):
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line)
			if len(f) != 4 {
				t.Errorf("line %d: %q", i+1, line)
				continue
			}
			typed[f[2]] = f[3]
		default:
			m := sampleLine.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("line %d is not a sample: %q", i+1, line)
				continue
			}
			name := m[1]
			base := name
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suf); ok && typed[b] == "histogram" {
					base = b
				}
			}
			if typed[base] == "" {
				t.Errorf("line %d: sample of %s before its TYPE", i+1, name)
			}
		}
	}
}

func TestObserveRequest(t *testing.T) {
	m := New("test")
	for _, s := range []proxy.RequestStats{
		{Op: "PutObject", Status: 200, Decision: "encrypt", KeyID: "k1", BytesIn: 100, Duration: time.Millisecond, Upstream: time.Millisecond},
		{Op: "PutObject", Status: 200, Decision: "encrypt", KeyID: "k1", BytesIn: 50, Duration: time.Millisecond, Upstream: time.Millisecond},
		{Op: "GetObject", Status: 200, Decision: "encrypt", KeyID: "k1", BytesOut: 150, Duration: time.Second, Upstream: 2 * time.Millisecond},
		{Op: "PutObject", Status: 403, ErrCode: "AccessDenied", Decision: "deny", Duration: time.Millisecond},
		{Op: "", Status: 403, ErrCode: "SignatureDoesNotMatch", AuthFailed: true},
		{Op: "ListObjectsV2", Status: 200, BytesOut: 10, Upstream: time.Millisecond},
	} {
		m.ObserveRequest(s)
	}
	m.Reload(false, "sighup")
	m.Reload(true, "file")
	m.TLSReload(true)
	m.Probe(true, time.Millisecond)
	rec := httptest.NewRecorder()
	m.Registry.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Errorf("Content-Type %q", ct)
	}
	out := rec.Body.String()
	checkFormat(t, out)
	for _, want := range []string{
		`ssec_proxy_requests_total{op="PutObject",status="200"} 2`,
		`ssec_proxy_requests_total{op="PutObject",status="403"} 1`,
		`ssec_proxy_requests_total{op="none",status="403"} 1`,
		`ssec_proxy_received_bytes_total{op="PutObject"} 150`,
		`ssec_proxy_sent_bytes_total{op="GetObject"} 150`,
		`ssec_proxy_auth_failures_total{code="SignatureDoesNotMatch"} 1`,
		`ssec_proxy_rule_decisions_total{decision="encrypt",key_id="k1"} 3`,
		`ssec_proxy_rule_decisions_total{decision="deny",key_id=""} 1`,
		`ssec_proxy_upstream_duration_seconds_count{op="PutObject"} 2`,
		`ssec_proxy_upstream_duration_seconds_bucket{op="GetObject",le="0.005"} 1`,
		`ssec_proxy_request_duration_seconds_bucket{op="GetObject",le="0.5"} 0`,
		`ssec_proxy_config_reloads_total{result="failure",trigger="sighup"} 1`,
		`ssec_proxy_config_reloads_total{result="success",trigger="file"} 1`,
		`ssec_proxy_config_last_reload_successful 1`,
		`ssec_proxy_tls_reloads_total{result="success"} 1`,
		`ssec_proxy_upstream_up 1`,
		`ssec_proxy_build_info{version="test",goversion="go`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// A denied request carried no upstream time: no upstream observation.
	if strings.Contains(out, `ssec_proxy_upstream_duration_seconds_count{op="none"}`) {
		t.Error("a request refused before routing has an upstream latency")
	}
	if !regexp.MustCompile(`(?m)^process_resident_memory_bytes [1-9]`).MatchString(out) {
		t.Error("process_resident_memory_bytes is not positive")
	}
}
