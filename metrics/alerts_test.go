package metrics

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// The alert rules shipped in deploy/prometheus, and promtool's unit tests
// of them.
var (
	alertsFile     = filepath.Join("..", "deploy", "prometheus", "alerts.yaml")
	alertTestsFile = filepath.Join("..", "deploy", "prometheus", "alerts_test.yaml")
)

// ruleFile is the Prometheus rule file format, alerting rules only.
type ruleFile struct {
	Groups []struct {
		Name     string      `yaml:"name"`
		Interval string      `yaml:"interval"`
		Rules    []alertRule `yaml:"rules"`
	} `yaml:"groups"`
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f ruleFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	if err := dec.Decode(new(any)); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: more than one document (%v)", alertsFile, err)
	}
	return f
}

var metricName = regexp.MustCompile(`ssec_proxy_[a-z_]+`)

// exportedNames are the series names the exporter writes: family names,
// and for histograms their _bucket, _sum and _count series.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for name, typ := range exportedTypes(t, exercised(t)) {
		names[name] = true
		if typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_SUMMARY {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				names[name+suf] = true
			}
		}
	}
	return names
}

// unknownMetrics are the ssec_proxy_ metrics expr names that are not
// exported.
func unknownMetrics(expr string, exported map[string]bool) []string {
	var out []string
	for _, n := range metricName.FindAllString(expr, -1) {
		if !exported[n] {
			out = append(out, n)
		}
	}
	return out
}

// TestAlertRules: the rule file decodes strictly, every rule is complete,
// every metric an expression names is exported, and the alerts cover
// upstream errors, reload failures, certificate expiry and the index
// backlog.
func TestAlertRules(t *testing.T) {
	f := readRules(t)
	exported := exportedNames(t)
	if bad := unknownMetrics("rate(ssec_proxy_requests_total[5m]) / ssec_proxy_no_such_metric", exported); len(bad) != 1 || bad[0] != "ssec_proxy_no_such_metric" {
		t.Fatalf("the name check does not work: %v", bad)
	}
	if len(f.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	used := map[string]bool{}
	alerts := map[string]bool{}
	alertName := regexp.MustCompile(`^SsecProxy[A-Z][A-Za-z]+$`)
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: a name and rules are needed", g.Name)
		}
		for _, r := range g.Rules {
			if !alertName.MatchString(r.Alert) {
				t.Errorf("alert %q: not a SsecProxyCamelCase name (a recording rule?)", r.Alert)
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s: twice", r.Alert)
			}
			alerts[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: no expr", r.Alert)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for: %v", r.Alert, err)
				}
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", r.Alert)
			}
			names := metricName.FindAllString(r.Expr, -1)
			if len(names) == 0 {
				t.Errorf("%s: names no ssec_proxy_ metric", r.Alert)
			}
			for _, n := range names {
				used[n] = true
			}
			if bad := unknownMetrics(r.Expr, exported); len(bad) > 0 {
				t.Errorf("%s: names metrics the proxy does not export: %v", r.Alert, bad)
			}
		}
	}
	for _, need := range []string{
		"ssec_proxy_upstream_errors_total",
		"ssec_proxy_upstream_up",
		"ssec_proxy_config_last_reload_successful",
		"ssec_proxy_tls_reloads_total",
		"ssec_proxy_tls_cert_not_after_timestamp_seconds",
		"ssec_proxy_index_writes_pending",
		"ssec_proxy_index_cleanups_pending",
		"ssec_proxy_index_writes_total",
	} {
		if !used[need] {
			t.Errorf("no alert on %s", need)
		}
	}
	// promtool's unit tests name alerts too: each must exist.
	b, err := os.ReadFile(alertTestsFile)
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{}
	for _, m := range regexp.MustCompile(`alertname: (\S+)`).FindAllStringSubmatch(string(b), -1) {
		if !alerts[m[1]] {
			t.Errorf("%s tests an alert %s that alerts.yaml lacks", alertTestsFile, m[1])
		}
		tested[m[1]] = true
	}
	var untested []string
	for a := range alerts {
		if !tested[a] {
			untested = append(untested, a)
		}
	}
	sort.Strings(untested)
	if len(untested) > 0 {
		t.Errorf("alerts without a promtool unit test: %v", untested)
	}
}

// TestAlertRulesPromtool: Prometheus's own checker accepts the rules
// (PromQL syntax, templates) and its unit tests pass: each alert fires on
// the series that should fire it, and not before. scripts/deps.sh
// --clients installs promtool (Debian's prometheus package); without it
// the test is skipped, or fails under SSEC_INTEGRATION=require.
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		msg := "promtool not found: the alert rules are NOT checked by Prometheus (install it with scripts/deps.sh --clients)"
		if os.Getenv("SSEC_INTEGRATION") == "require" {
			t.Fatal("SSEC_INTEGRATION=require: " + msg)
		}
		t.Skip("SKIP: " + msg)
	}
	for _, args := range [][]string{
		{"check", "rules", filepath.Base(alertsFile)},
		{"test", "rules", filepath.Base(alertTestsFile)},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Dir(alertsFile)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else if !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: no SUCCESS in\n%s", strings.Join(args, " "), out)
		}
	}
}
