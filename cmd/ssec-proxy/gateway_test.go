package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ssec-proxy/ssec-proxy/config"
)

// measuredPeakRSS is the largest peak RSS of docs/PERFORMANCE.md's memory
// table (section 3), in bytes.
func measuredPeakRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("../../docs/PERFORMANCE.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "### 3. Memory")
	if !ok {
		t.Fatal("docs/PERFORMANCE.md has no section \"### 3. Memory\"")
	}
	sec, _, _ = strings.Cut(sec, "\n### ")
	var peak float64
	for _, m := range regexp.MustCompile(`(?m)^\|[^|]+\| ([0-9.]+) MiB \|`).FindAllStringSubmatch(sec, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		peak = max(peak, v)
	}
	if peak == 0 {
		t.Fatal("docs/PERFORMANCE.md: no peak RSS figures in section 3")
	}
	return int64(peak * (1 << 20))
}

// TestGatewayManifests: deploy/kubernetes/gateway is a Deployment of 2 or
// more replicas (the proxy as its main container, rolled one new pod at a
// time without taking one away), a Service, a PodDisruptionBudget and a
// CPU HorizontalPodAutoscaler for it, and its ConfigMap (TestDeployManifests
// checks how they refer to each other). Every replica serves one
// certificate from a Secret (tls.mode auto would give each replica its own
// CA), teams sign with their own credentials (not the SOS keys), copies
// are streamed (SOS refuses copies between keys), and the memory request
// covers the largest peak RSS measured in docs/PERFORMANCE.md.
func TestGatewayManifests(t *testing.T) {
	dir := filepath.Join(deployDir, "kubernetes", "gateway")
	s := loadK8sSet(t, dir)
	if len(s.deployments) != 1 || len(s.services) != 1 || len(s.pdbs) != 1 || len(s.hpas) != 1 || len(s.configMaps) != 1 {
		t.Fatalf("%s: %d Deployments, %d Services, %d PodDisruptionBudgets, %d HorizontalPodAutoscalers, %d ConfigMaps; want one of each",
			dir, len(s.deployments), len(s.services), len(s.pdbs), len(s.hpas), len(s.configMaps))
	}
	d := s.deployments[0]
	p := checkDeployment(t, s, d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("%s: replicas %v, want 2 or more", p.where, d.Spec.Replicas)
	}
	if p.init {
		t.Errorf("%s: the gateway is the pod's main container, not a sidecar", p.where)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("%s: a rollout may take a replica away before its successor is ready (maxUnavailable %v)", p.where, ru)
	}
	peak := resource.NewQuantity(measuredPeakRSS(t), resource.BinarySI)
	if req := p.c.Resources.Requests.Memory(); req.Cmp(*peak) < 0 {
		t.Errorf("%s: memory request %v is below the measured peak RSS %v (docs/PERFORMANCE.md)", p.where, req, peak)
	}
	cfg := p.cfg
	if cfg == nil {
		t.Fatal("the gateway's config did not parse")
	}
	if cfg.TLS.Mode != config.TLSFiles {
		t.Errorf("%s: tls.mode %s: replicas behind one Service must serve one certificate (files from a Secret)", p.where, cfg.TLS.Mode)
	}
	if len(cfg.Clients) == 0 {
		t.Errorf("%s: no clients: teams would sign with the SOS credentials", p.where)
	}
	for i, c := range cfg.Clients {
		if c.AccessKey == cfg.Upstream.AccessKey || c.SecretKey == cfg.Upstream.SecretKey {
			t.Errorf("%s: clients[%d] signs with the upstream's credentials", p.where, i)
		}
	}
	if cfg.Upstream.Copy != config.CopyStream {
		t.Errorf("%s: upstream.copy %q: SOS refuses copies between SSE-C keys (want %s)", p.where, cfg.Upstream.Copy, config.CopyStream)
	}
}
