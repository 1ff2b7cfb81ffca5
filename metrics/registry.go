// Package metrics keeps ssec-proxy's counters, gauges and histograms and
// writes them in the Prometheus text exposition format (version 0.0.4).
//
// Registry is a small, dependency-free metric store: families of counters,
// gauges and histograms with fixed label names, each child made on first
// use. Metrics (proxy.go) is the set that ssec-proxy exports; it implements
// proxy.Observer.
//
// Label values must never hold a secret or an object key: callers pass
// operation names, statuses, S3 error codes, decisions and key ids only.
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Registry holds metric families, written in the order they were made.
type Registry struct {
	mu   sync.Mutex
	fams []*family
}

// NewRegistry makes an empty registry.
func NewRegistry() *Registry { return &Registry{} }

type kind int

const (
	counterKind kind = iota
	gaugeKind
	histogramKind
)

func (k kind) String() string {
	return [...]string{"counter", "gauge", "histogram"}[k]
}

type family struct {
	name    string
	help    string
	kind    kind
	labels  []string
	buckets []float64      // histograms: upper bounds, sorted, without +Inf
	fn      func() float64 // a gauge read when written, no labels

	mu       sync.Mutex
	children map[string]*child
}

// child is one labelled series of a family.
type child struct {
	values []string
	v      atomicFloat     // counter or gauge value; histogram sum
	counts []atomic.Uint64 // histogram: per bucket (not cumulative), last is +Inf
	count  atomic.Uint64   // histogram: observations
}

type atomicFloat struct{ bits atomic.Uint64 }

func (f *atomicFloat) load() float64 { return math.Float64frombits(f.bits.Load()) }

func (f *atomicFloat) store(v float64) { f.bits.Store(math.Float64bits(v)) }

func (f *atomicFloat) add(v float64) {
	for {
		old := f.bits.Load()
		if f.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (r *Registry) add(f *family) *family {
	if !validName(f.name) {
		panic("metrics: invalid metric name " + strconv.Quote(f.name))
	}
	for _, l := range f.labels {
		if !validName(l) || l == "le" || strings.HasPrefix(l, "__") {
			panic("metrics: invalid label name " + strconv.Quote(l))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.fams {
		if g.name == f.name {
			panic("metrics: " + f.name + " registered twice")
		}
	}
	f.children = map[string]*child{}
	r.fams = append(r.fams, f)
	return f
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// with returns the child for values, making it on first use.
func (f *family) with(values []string) *child {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", f.name, len(f.labels), len(values)))
	}
	key := strings.Join(values, "\xff")
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.children[key]
	if !ok {
		c = &child{values: append([]string(nil), values...)}
		if f.kind == histogramKind {
			c.counts = make([]atomic.Uint64, len(f.buckets)+1)
		}
		f.children[key] = c
	}
	return c
}

// CounterVec is a family of counters.
type CounterVec struct{ f *family }

// Counter is one series of a CounterVec: a value that only goes up.
type Counter struct{ c *child }

// Counter registers a counter family. Its name should end in _total.
func (r *Registry) Counter(name, help string, labels ...string) *CounterVec {
	return &CounterVec{r.add(&family{name: name, help: help, kind: counterKind, labels: labels})}
}

// With returns the counter for the label values, in the order of the names.
func (v *CounterVec) With(values ...string) Counter { return Counter{v.f.with(values)} }

// Inc adds one.
func (c Counter) Inc() { c.c.v.add(1) }

// Add adds d, which must not be negative (a negative d is ignored).
func (c Counter) Add(d float64) {
	if d > 0 {
		c.c.v.add(d)
	}
}

// Value is the current value (for tests).
func (c Counter) Value() float64 { return c.c.v.load() }

// GaugeVec is a family of gauges.
type GaugeVec struct{ f *family }

// Gauge is one series of a GaugeVec: a value that goes up and down.
type Gauge struct{ c *child }

// Gauge registers a gauge family.
func (r *Registry) Gauge(name, help string, labels ...string) *GaugeVec {
	return &GaugeVec{r.add(&family{name: name, help: help, kind: gaugeKind, labels: labels})}
}

// GaugeFunc registers a gauge without labels whose value fn gives each
// time the registry is written. fn must be quick and safe to call from any
// goroutine.
func (r *Registry) GaugeFunc(name, help string, fn func() float64) {
	r.add(&family{name: name, help: help, kind: gaugeKind, fn: fn})
}

// With returns the gauge for the label values.
func (v *GaugeVec) With(values ...string) Gauge { return Gauge{v.f.with(values)} }

// Set sets the value.
func (g Gauge) Set(x float64) { g.c.v.store(x) }

// Add adds d (which may be negative).
func (g Gauge) Add(d float64) { g.c.v.add(d) }

// Value is the current value (for tests).
func (g Gauge) Value() float64 { return g.c.v.load() }

// HistogramVec is a family of histograms.
type HistogramVec struct{ f *family }

// Histogram is one series of a HistogramVec.
type Histogram struct {
	c       *child
	buckets []float64
}

// Histogram registers a histogram family with the given bucket upper
// bounds (sorted ascending; +Inf is implied).
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if !sort.Float64sAreSorted(buckets) {
		panic("metrics: " + name + ": buckets not sorted")
	}
	return &HistogramVec{r.add(&family{name: name, help: help, kind: histogramKind, labels: labels,
		buckets: append([]float64(nil), buckets...)})}
}

// With returns the histogram for the label values.
func (v *HistogramVec) With(values ...string) Histogram {
	return Histogram{v.f.with(values), v.f.buckets}
}

// Observe records one value.
func (h Histogram) Observe(x float64) {
	i := sort.SearchFloat64s(h.buckets, x) // first bound >= x; len(buckets) is +Inf
	h.c.counts[i].Add(1)
	h.c.v.add(x)
	h.c.count.Add(1)
}

// Count is the number of observations (for tests).
func (h Histogram) Count() uint64 { return h.c.count.Load() }

// ServeHTTP writes the registry in the text format.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", ContentType)
	_ = r.WriteText(w)
}

// WriteText writes every family in the Prometheus text exposition format:
// families in registration order, series sorted by label values.
func (r *Registry) WriteText(w io.Writer) error {
	r.mu.Lock()
	fams := append([]*family(nil), r.fams...)
	r.mu.Unlock()
	bw := bufio.NewWriter(w)
	for _, f := range fams {
		f.write(bw)
	}
	return bw.Flush()
}

func (f *family) write(w *bufio.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.kind)
	if f.fn != nil {
		fmt.Fprintf(w, "%s %s\n", f.name, formatFloat(f.fn()))
		return
	}
	f.mu.Lock()
	children := make([]*child, 0, len(f.children))
	for _, c := range f.children {
		children = append(children, c)
	}
	f.mu.Unlock()
	sort.Slice(children, func(i, j int) bool {
		a, b := children[i].values, children[j].values
		for k := range a {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return false
	})
	for _, c := range children {
		if f.kind != histogramKind {
			fmt.Fprintf(w, "%s%s %s\n", f.name, labelText(f.labels, c.values, "", ""), formatFloat(c.v.load()))
			continue
		}
		var cum uint64
		for i := range c.counts {
			cum += c.counts[i].Load()
			le := "+Inf"
			if i < len(f.buckets) {
				le = formatFloat(f.buckets[i])
			}
			fmt.Fprintf(w, "%s_bucket%s %d\n", f.name, labelText(f.labels, c.values, "le", le), cum)
		}
		// The sum and count are read after the buckets: an observation in
		// between makes count >= the +Inf bucket, never less.
		fmt.Fprintf(w, "%s_sum%s %s\n", f.name, labelText(f.labels, c.values, "", ""), formatFloat(c.v.load()))
		fmt.Fprintf(w, "%s_count%s %d\n", f.name, labelText(f.labels, c.values, "", ""), max(c.count.Load(), cum))
	}
}

func labelText(names, values []string, extraName, extraValue string) string {
	if len(names) == 0 && extraName == "" {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteString(`="`)
		b.WriteString(escapeLabel(values[i]))
		b.WriteByte('"')
	}
	if extraName != "" {
		if len(names) > 0 {
			b.WriteByte(',')
		}
		b.WriteString(extraName)
		b.WriteString(`="`)
		b.WriteString(extraValue)
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func escapeHelp(s string) string { return helpEscaper.Replace(s) }

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
