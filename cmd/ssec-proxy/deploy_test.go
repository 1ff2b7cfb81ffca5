package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/ssec-proxy/ssec-proxy/config"
)

const deployDir = "../../deploy"

// deploy/prometheus holds Prometheus's own configs (rules, scrape
// configs), checked by the tests that come with them.
var notManifests = []string{filepath.Join(deployDir, "prometheus")}

// splitDocs splits a YAML file into its documents (at lines "---"),
// dropping documents that hold only comments.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(b), -1) {
		var probe any
		if err := yaml.Unmarshal([]byte(d), &probe); err == nil && probe == nil {
			continue
		}
		docs = append(docs, []byte(d))
	}
	return docs
}

// parseDeployConfig runs a config through config.Parse (defaults and
// validation) with every ${VAR} set to a placeholder and no HOME (the
// config or the environment must give state_dir, as in a container).
func parseDeployConfig(t *testing.T, name string, data []byte, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(data, name, func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		if k == "HOME" || k == "XDG_STATE_HOME" {
			return "", false
		}
		return "placeholder-" + strings.ToLower(k), true
	})
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return nil
	}
	return cfg
}

// flagsOf lists the flags of a subcommand, from its -h output; ok is false
// when there is no such subcommand.
func flagsOf(t *testing.T, sub string) (map[string]bool, bool) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{sub, "-h"}, &out, &errb)
	if errors.Is(err, errUsage) && strings.Contains(err.Error(), "unknown command") {
		return nil, false
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-(\S+)`).FindAllStringSubmatch(errb.String(), -1) {
		flags[m[1]] = true
	}
	return flags, true
}

// checkArgs checks an ssec-proxy command line (after the program name):
// the subcommand and each flag exist.
func checkArgs(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: no subcommand", where)
		return
	}
	flags, ok := flagsOf(t, args[0])
	if !ok {
		t.Errorf("%s: ssec-proxy has no subcommand %q", where, args[0])
		return
	}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Errorf("%s: %q is not a flag (ssec-proxy %s takes no arguments here)", where, a, args[0])
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !flags[name] {
			t.Errorf("%s: ssec-proxy %s has no flag -%s (it has %v)", where, args[0], name, flags)
		}
		if !hasValue {
			i++ // every flag of ours takes a value
		}
	}
}

// flagValue is the value of --name in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		n, v, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && n == name {
			if ok {
				return v
			}
			if i+1 < len(args) {
				return args[i+1]
			}
		}
	}
	return ""
}

// k8sKinds are the Kubernetes kinds deploy/ may hold, each decoded into
// its API type. A kind not listed here fails the test: add it with its type.
var k8sKinds = map[string]func() any{
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
}

// decodeK8s decodes one YAML document strictly into the API type that its
// apiVersion and kind name: an unknown or misplaced field (a typo), a
// duplicate field or a value of the wrong type is an error.
func decodeK8s(doc []byte) (any, error) {
	j, err := sigsyaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(j, &tm); err != nil {
		return nil, err
	}
	mk := k8sKinds[tm.APIVersion+"/"+tm.Kind]
	if mk == nil {
		return nil, fmt.Errorf("apiVersion %q, kind %q: not a kind the tests know (add its API type to k8sKinds)", tm.APIVersion, tm.Kind)
	}
	obj := mk()
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// k8sSet is what one directory of deploy/ declares for Kubernetes (applied
// together): its objects, and the Secrets that the `kubectl create secret`
// commands in its comments make. Secrets are never shipped as objects: a
// `kubectl apply` of the directory would overwrite the real keys.
type k8sSet struct {
	dir         string
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]map[string]bool // name → its keys
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
}

var (
	createSecret = regexp.MustCompile(`(?m)^#\s+kubectl create secret (generic|tls) (\S+)(.*)$`)
	secretKey    = regexp.MustCompile(`--from-(?:file|literal)=([^=\s]+)=`)
)

func (s *k8sSet) add(t *testing.T, file string, doc []byte) {
	t.Helper()
	obj, err := decodeK8s(doc)
	if err != nil {
		t.Errorf("%s: %v", file, err)
		return
	}
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		s.configMaps[o.Name] = o
	case *appsv1.Deployment:
		s.deployments = append(s.deployments, o)
	case *corev1.Service:
		s.services = append(s.services, o)
	case *policyv1.PodDisruptionBudget:
		s.pdbs = append(s.pdbs, o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		s.hpas = append(s.hpas, o)
	}
}

func (s *k8sSet) addSecrets(text []byte) {
	for _, m := range createSecret.FindAllStringSubmatch(string(text), -1) {
		keys := map[string]bool{}
		if m[1] == "tls" {
			keys["tls.crt"], keys["tls.key"] = true, true
		}
		for _, k := range secretKey.FindAllStringSubmatch(m[3], -1) {
			keys[k[1]] = true
		}
		s.secrets[m[2]] = keys
	}
}

// loadK8sSet decodes every Kubernetes document of the YAML files in dir
// (not below it).
func loadK8sSet(t *testing.T, dir string) *k8sSet {
	t.Helper()
	s := &k8sSet{dir: dir, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]map[string]bool{}}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s.addSecrets(b)
		for _, d := range splitDocs(b) {
			var m map[string]any
			if yaml.Unmarshal(d, &m) == nil && m["apiVersion"] != nil {
				s.add(t, f, d)
			}
		}
	}
	return s
}

// proxyPod is the ssec-proxy container of a Deployment, with what its
// config says.
type proxyPod struct {
	where  string
	d      *appsv1.Deployment
	c      *corev1.Container
	init   bool // a native sidecar (an init container)
	cfg    *config.Config
	cfgRaw string            // the config file, as in the ConfigMap
	env    map[string]string // the container's env: values, and placeholders for values from Secrets
}

// proxyContainer finds the one container of d that runs the ssec-proxy image.
func proxyContainer(t *testing.T, where string, d *appsv1.Deployment) (*corev1.Container, bool) {
	t.Helper()
	var found *corev1.Container
	init := false
	pod := &d.Spec.Template.Spec
	for i := range pod.InitContainers {
		if strings.Contains(pod.InitContainers[i].Image, "ssec-proxy") {
			found, init = &pod.InitContainers[i], true
		}
	}
	for i := range pod.Containers {
		if strings.Contains(pod.Containers[i].Image, "ssec-proxy") {
			if found != nil {
				t.Fatalf("%s: more than one ssec-proxy container", where)
			}
			found = &pod.Containers[i]
		}
	}
	if found == nil {
		t.Fatalf("%s: no ssec-proxy container", where)
	}
	return found, init
}

// mountOf is the volume (and the path inside it) that holds p in c.
func mountOf(pod *corev1.PodSpec, c *corev1.Container, p string) (*corev1.Volume, *corev1.VolumeMount, string) {
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		if strings.HasPrefix(p, m.MountPath+"/") {
			for j := range pod.Volumes {
				if pod.Volumes[j].Name == m.Name {
					return &pod.Volumes[j], m, strings.TrimPrefix(p, m.MountPath+"/")
				}
			}
		}
	}
	return nil, nil, ""
}

// containerPort resolves a probe's or Service's port (a name or a number)
// among c's ports; 0 when c has no such port.
func containerPort(c *corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	return 0
}

func portOf(t *testing.T, where, hostport string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Errorf("%s: %q is not host:port", where, hostport)
	}
	return int32(n)
}

// checkDeployment checks a Deployment of deploy/ and its ssec-proxy
// container: every reference resolves in the set (volumes, ConfigMaps,
// Secrets and their keys), the proxy runs as the image expects (no
// command, flags that exist, non-root 65532, read-only root, no
// capabilities), its config (from the ConfigMap, with the container's env)
// passes validation, its key and TLS files are in mounted Secrets, its
// state_dir on a writable volume, its probes on the admin port, its
// upstream a documented SOS zone, and the pod's grace period outlasts
// preStop and shutdown_grace.
func checkDeployment(t *testing.T, s *k8sSet, d *appsv1.Deployment) *proxyPod {
	t.Helper()
	where := s.dir + ": Deployment " + d.Name
	pod := &d.Spec.Template.Spec
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("%s: selector %v does not select the pod template's labels %v (%v)", where, d.Spec.Selector, d.Spec.Template.Labels, err)
	}
	volumes := map[string]*corev1.Volume{}
	for i, v := range pod.Volumes {
		volumes[v.Name] = &pod.Volumes[i]
		switch {
		case v.ConfigMap != nil && s.configMaps[v.ConfigMap.Name] == nil:
			t.Errorf("%s: volume %s: no ConfigMap %s in %s", where, v.Name, v.ConfigMap.Name, s.dir)
		case v.Secret != nil && s.secrets[v.Secret.SecretName] == nil:
			t.Errorf("%s: volume %s: no `kubectl create secret … %s` in %s", where, v.Name, v.Secret.SecretName, s.dir)
		}
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		for _, m := range c.VolumeMounts {
			if volumes[m.Name] == nil {
				t.Errorf("%s: container %s mounts an undeclared volume %s", where, c.Name, m.Name)
			}
		}
		for _, e := range c.Env {
			if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
				if keys := s.secrets[r.SecretKeyRef.Name]; !keys[r.SecretKeyRef.Key] {
					t.Errorf("%s: container %s: env %s: Secret %s with key %s is not made by a `kubectl create secret` line of %s (it makes %v)",
						where, c.Name, e.Name, r.SecretKeyRef.Name, r.SecretKeyRef.Key, s.dir, keys)
				}
			}
		}
	}

	c, init := proxyContainer(t, where, d)
	where += ": container " + c.Name
	p := &proxyPod{where: where, d: d, c: c, init: init, env: map[string]string{}}
	if init && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
		t.Errorf("%s: an init container without restartPolicy: Always (not a native sidecar)", where)
	}
	if len(c.Command) > 0 {
		t.Errorf("%s: overrides the image's entrypoint", where)
	}
	checkArgs(t, where, c.Args)
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("%s: no memory and CPU requests", where)
	}
	if c.Resources.Limits.Memory().Cmp(*c.Resources.Requests.Memory()) <= 0 {
		t.Errorf("%s: memory limit %v not above the request %v", where, c.Resources.Limits.Memory(), c.Resources.Requests.Memory())
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("%s: securityContext %+v: want readOnlyRootFilesystem, no privilege escalation, capabilities drop ALL", where, sc)
	}
	uid, nonRoot := int64(-1), false
	if ps := pod.SecurityContext; ps != nil {
		if ps.RunAsUser != nil {
			uid = *ps.RunAsUser
		}
		nonRoot = ps.RunAsNonRoot != nil && *ps.RunAsNonRoot
	}
	if sc != nil && sc.RunAsUser != nil {
		uid = *sc.RunAsUser
	}
	if uid != 65532 || !nonRoot {
		t.Errorf("%s: runs as uid %d (runAsNonRoot %t), want 65532, the image's user", where, uid, nonRoot)
	}

	for _, e := range c.Env {
		if e.ValueFrom != nil {
			p.env[e.Name] = "placeholder-" + strings.ToLower(e.Name)
		} else {
			p.env[e.Name] = e.Value
		}
	}
	cfgPath := flagValue(c.Args, "config")
	vol, _, rel := mountOf(pod, c, cfgPath)
	if vol == nil || vol.ConfigMap == nil || s.configMaps[vol.ConfigMap.Name] == nil {
		t.Errorf("%s: --config %s is not in a mounted ConfigMap of %s", where, cfgPath, s.dir)
		return p
	}
	raw, ok := s.configMaps[vol.ConfigMap.Name].Data[rel]
	if !ok {
		t.Errorf("%s: --config %s: ConfigMap %s has no key %s", where, cfgPath, vol.ConfigMap.Name, rel)
		return p
	}
	p.cfgRaw = raw
	// Every ${VAR} of the config must come from the container's env (no
	// placeholders from parseDeployConfig here).
	p.cfg = parseDeployConfig(t, where+": "+cfgPath, []byte(raw), p.env)
	for _, m := range regexp.MustCompile(`\$\{(\w+)\}`).FindAllStringSubmatch(raw, -1) {
		if _, ok := p.env[m[1]]; !ok {
			t.Errorf("%s: the config uses ${%s}, which the container's env does not set", where, m[1])
		}
	}
	if p.cfg == nil {
		return p
	}
	cfg := p.cfg
	inSecret := func(what, file string) {
		vol, m, rel := mountOf(pod, c, file)
		switch {
		case vol == nil || vol.Secret == nil:
			t.Errorf("%s: %s %s is not in a mounted Secret", where, what, file)
		case !m.ReadOnly:
			t.Errorf("%s: %s: the Secret %s is mounted read-write", where, what, vol.Secret.SecretName)
		case s.secrets[vol.Secret.SecretName] != nil && !s.secrets[vol.Secret.SecretName][rel]:
			t.Errorf("%s: %s %s: Secret %s gets no key %s from its `kubectl create secret` line", where, what, file, vol.Secret.SecretName, rel)
		}
	}
	for _, k := range cfg.Keys {
		if k.File != "" {
			inSecret("key "+k.ID, k.File)
		}
	}
	if cfg.TLS.Mode == config.TLSFiles {
		inSecret("tls.cert", cfg.TLS.Cert)
		inSecret("tls.key", cfg.TLS.Key)
	}
	if vol, m, _ := mountOf(pod, c, filepath.Join(cfg.StateDir, "tls", "ca.crt")); vol == nil || m.ReadOnly {
		t.Errorf("%s: state_dir %s is not on a writable volume (the root filesystem is read-only)", where, cfg.StateDir)
	}
	adminPort := portOf(t, where+": admin.listen", cfg.Admin.Listen)
	if !strings.HasPrefix(cfg.Admin.Listen, "0.0.0.0:") {
		t.Errorf("%s: admin.listen %s: the kubelet probes the pod IP", where, cfg.Admin.Listen)
	}
	for name, pr := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"livenessProbe": {c.LivenessProbe, "/healthz"}, "readinessProbe": {c.ReadinessProbe, "/readyz"}, "startupProbe": {c.StartupProbe, "/healthz"}} {
		switch {
		case pr.probe == nil && name == "startupProbe":
		case pr.probe == nil || pr.probe.HTTPGet == nil:
			t.Errorf("%s: no %s over HTTP", where, name)
		case pr.probe.HTTPGet.Path != pr.path:
			t.Errorf("%s: %s on %s, want %s", where, name, pr.probe.HTTPGet.Path, pr.path)
		case containerPort(c, pr.probe.HTTPGet.Port) != adminPort:
			t.Errorf("%s: %s on port %s = %d, not admin.listen's %d", where, name, pr.probe.HTTPGet.Port.String(), containerPort(c, pr.probe.HTTPGet.Port), adminPort)
		}
	}
	if u := cfg.Upstream; u.Endpoint != config.ZoneEndpoint(u.Region) || !slices.Contains(config.Zones, u.Region) {
		t.Errorf("%s: upstream %s, region %s: not an Exoscale SOS zone's endpoint (https://sos-<zone>.exo.io, zones %v)", where, u.Endpoint, u.Region, config.Zones)
	}
	grace := time.Duration(cfg.ShutdownGrace)
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		grace += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	tg := time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
	if pod.TerminationGracePeriodSeconds != nil {
		tg = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	}
	if tg <= grace {
		t.Errorf("%s: terminationGracePeriodSeconds (%s) is not above preStop + shutdown_grace (%s)", where, tg, grace)
	}
	return p
}

// checkSelectors: each Service, PodDisruptionBudget and
// HorizontalPodAutoscaler of the set points at a Deployment of the set
// (selector matching its pod labels, scaleTargetRef naming it); a
// Service's ports reach ports of the proxy container, one of them its
// listen port; the PDB lets a node drain proceed; the HPA scales on CPU,
// which the container requests.
func checkSelectors(t *testing.T, s *k8sSet, pods map[string]*proxyPod) {
	t.Helper()
	selected := func(where string, sel map[string]string) *proxyPod {
		var found []*proxyPod
		for _, p := range pods {
			if len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(p.d.Spec.Template.Labels)) {
				found = append(found, p)
			}
		}
		if len(found) != 1 {
			t.Errorf("%s: selector %v selects %d Deployments of %s, want 1", where, sel, len(found), s.dir)
			return nil
		}
		return found[0]
	}
	for _, svc := range s.services {
		where := s.dir + ": Service " + svc.Name
		p := selected(where, svc.Spec.Selector)
		if p == nil || p.cfg == nil {
			continue
		}
		listen := portOf(t, where, p.cfg.Listen)
		reachesListen := false
		for _, sp := range svc.Spec.Ports {
			cp := containerPort(p.c, sp.TargetPort)
			if cp == 0 {
				t.Errorf("%s: port %s: targetPort %s is no port of %s", where, sp.Name, sp.TargetPort.String(), p.where)
			}
			reachesListen = reachesListen || cp == listen
		}
		if !reachesListen {
			t.Errorf("%s: no port reaches the proxy's listen port %d", where, listen)
		}
		if !strings.HasPrefix(p.cfg.Listen, "0.0.0.0:") {
			t.Errorf("%s: the proxy listens on %s, out of the Service's reach", where, p.cfg.Listen)
		}
	}
	for _, pdb := range s.pdbs {
		where := s.dir + ": PodDisruptionBudget " + pdb.Name
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || pdb.Spec.Selector == nil {
			t.Errorf("%s: selector: %v", where, err)
			continue
		}
		p := selected(where, pdb.Spec.Selector.MatchLabels)
		if p == nil {
			continue
		}
		if !sel.Matches(labels.Set(p.d.Spec.Template.Labels)) {
			t.Errorf("%s: selector %v does not match %v", where, sel, p.d.Spec.Template.Labels)
		}
		replicas := int32(1)
		if p.d.Spec.Replicas != nil {
			replicas = *p.d.Spec.Replicas
		}
		if ma := pdb.Spec.MinAvailable; ma == nil || ma.Type != intstr.Int || ma.IntVal < 1 || ma.IntVal >= replicas {
			t.Errorf("%s: minAvailable %v: want a number from 1 to replicas-1 (%d replicas), so that drains can proceed", where, ma, replicas)
		}
	}
	for _, hpa := range s.hpas {
		where := s.dir + ": HorizontalPodAutoscaler " + hpa.Name
		ref := hpa.Spec.ScaleTargetRef
		var p *proxyPod
		for _, q := range pods {
			if ref.Kind == "Deployment" && ref.APIVersion == "apps/v1" && ref.Name == q.d.Name {
				p = q
			}
		}
		if p == nil {
			t.Errorf("%s: scaleTargetRef %+v is no Deployment of %s", where, ref, s.dir)
			continue
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
			t.Errorf("%s: replicas %v to %d: want at least 2", where, hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
		}
		if p.d.Spec.Replicas == nil || hpa.Spec.MinReplicas == nil || *p.d.Spec.Replicas != *hpa.Spec.MinReplicas {
			t.Errorf("%s: the Deployment's replicas %v differ from minReplicas %v", where, p.d.Spec.Replicas, hpa.Spec.MinReplicas)
		}
		cpu := false
		for _, m := range hpa.Spec.Metrics {
			if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
				m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil {
				cpu = true
			}
		}
		if !cpu {
			t.Errorf("%s: no CPU utilization metric", where)
		}
		if p.c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("%s: scales on CPU utilization, but %s requests no CPU", where, p.where)
		}
	}
}

// composeFile is the part of the compose specification that deploy/compose
// uses; a field outside it (a typo, or a field the tests do not check yet)
// fails the strict decode.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]*struct{}      `yaml:"volumes"`
}

type composeService struct {
	Image           string            `yaml:"image"`
	Build           string            `yaml:"build"`
	Command         []string          `yaml:"command"`
	Entrypoint      []string          `yaml:"entrypoint"`
	Environment     map[string]string `yaml:"environment"`
	Volumes         []string          `yaml:"volumes"`
	ReadOnly        bool              `yaml:"read_only"`
	CapDrop         []string          `yaml:"cap_drop"`
	SecurityOpt     []string          `yaml:"security_opt"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	Healthcheck     *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		StartPeriod string   `yaml:"start_period"`
		Retries     int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	Restart     string `yaml:"restart"`
	NetworkMode string `yaml:"network_mode"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

func decodeCompose(doc []byte) (*composeFile, error) {
	var cf composeFile
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&cf); err != nil {
		return nil, err
	}
	return &cf, nil
}

// checkCompose: the file decodes strictly; the ssec-proxy service runs
// flags that exist, read-only, without capabilities, with a health check
// that runs `ssec-proxy healthcheck`, its config mounted at --config from a
// file beside the compose file, a stop grace above shutdown_grace; the
// services that depend on it and the volumes it names exist.
func checkCompose(t *testing.T, file string, doc []byte) {
	t.Helper()
	cf, err := decodeCompose(doc)
	if err != nil {
		t.Errorf("%s: %v", file, err)
		return
	}
	found := false
	for name, s := range cf.Services {
		for dep := range s.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("%s: services.%s depends on %s, which is not a service", file, name, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				if _, ok := cf.Volumes[src]; !ok {
					t.Errorf("%s: services.%s mounts volume %s, not declared under volumes", file, name, src)
				}
			}
		}
		if !strings.Contains(s.Image, "ssec-proxy") {
			continue
		}
		found = true
		where := file + ": services." + name
		checkArgs(t, where+".command", s.Command)
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 || s.Healthcheck.Test[0] != "CMD" || path.Base(s.Healthcheck.Test[1]) != "ssec-proxy" {
			t.Errorf("%s.healthcheck: want test [CMD /…/ssec-proxy healthcheck …]", where)
		} else {
			checkArgs(t, where+".healthcheck", s.Healthcheck.Test[2:])
		}
		if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) {
			t.Errorf("%s: read_only %t, cap_drop %v: want read-only without capabilities", where, s.ReadOnly, s.CapDrop)
		}
		cfgPath := flagValue(s.Command, "config")
		var cfgFile string
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && parts[1] == cfgPath {
				cfgFile = filepath.Join(filepath.Dir(file), parts[0])
			}
		}
		if cfgFile == "" {
			t.Errorf("%s: nothing is mounted at --config %s", where, cfgPath)
			continue
		}
		b, err := os.ReadFile(cfgFile)
		if err != nil {
			t.Errorf("%s: the config mounted at %s: %v", where, cfgPath, err)
			continue
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = v
		}
		if cfg := parseDeployConfig(t, cfgFile, b, env); cfg != nil {
			if stop, err := time.ParseDuration(s.StopGracePeriod); err != nil || stop <= time.Duration(cfg.ShutdownGrace) {
				t.Errorf("%s: stop_grace_period %q is not above shutdown_grace %s", where, s.StopGracePeriod, time.Duration(cfg.ShutdownGrace))
			}
		}
	}
	if !found {
		t.Errorf("%s: no ssec-proxy service", file)
	}
}

// TestDeployManifests reads every YAML file under deploy/: each document
// is a Kubernetes object (decoded strictly into its API type), a compose
// file (strictly, into the fields it uses) or an ssec-proxy config (which
// passes validation). Each directory's Kubernetes objects are checked as a
// set: references resolve, probes and ports line up with the config in the
// ConfigMap, selectors select the pods.
func TestDeployManifests(t *testing.T) {
	var files []string
	dirs := map[string]bool{}
	err := filepath.WalkDir(deployDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && slices.Contains(notManifests, p) {
			return filepath.SkipDir
		}
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d YAML files under deploy/: %v", len(files), files)
	}
	seen := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range splitDocs(b) {
			var m map[string]any
			if err := yaml.Unmarshal(doc, &m); err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			switch {
			case m["apiVersion"] != nil || m["kind"] != nil:
				seen["kubernetes"]++
				dirs[filepath.Dir(f)] = true
			case m["services"] != nil:
				seen["compose"]++
				checkCompose(t, f, doc)
			case m["upstream"] != nil:
				seen["config"]++
				parseDeployConfig(t, f, doc, map[string]string{"HOME": "/home/test"})
			default:
				t.Errorf("%s: a document that is neither Kubernetes, compose nor an ssec-proxy config", f)
			}
		}
	}
	if seen["kubernetes"] < 7 || seen["compose"] < 1 || seen["config"] < 3 {
		t.Errorf("documents found: %v", seen)
	}
	for dir := range dirs {
		s := loadK8sSet(t, dir)
		pods := map[string]*proxyPod{}
		for _, d := range s.deployments {
			pods[d.Name] = checkDeployment(t, s, d)
		}
		checkSelectors(t, s, pods)
	}
}

// TestDecodeK8sStrict: the strict decode that TestDeployManifests relies
// on rejects a misspelt field, a field in the wrong place, a duplicate and
// a value of the wrong type, and accepts the manifest as it is.
func TestDecodeK8sStrict(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", "gateway", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeK8s(b); err != nil {
		t.Fatalf("the manifest itself: %v", err)
	}
	for name, edit := range map[string][2]string{
		"misspelt field":  {"readinessProbe:", "readinesProbe:"},
		"misplaced field": {"      terminationGracePeriodSeconds: 40", "      containers_grace: 40"},
		"wrong type":      {"containerPort: 8443", "containerPort: eighty"},
		"duplicate field": {"  replicas: 2\n", "  replicas: 2\n  replicas: 3\n"},
		"unknown kind":    {"kind: Deployment", "kind: Deploymnet"},
	} {
		bad := strings.Replace(string(b), edit[0], edit[1], 1)
		if bad == string(b) {
			t.Fatalf("%s: %q is not in the manifest", name, edit[0])
		}
		if _, err := decodeK8s([]byte(bad)); err == nil {
			t.Errorf("%s (%q → %q): decoded without an error", name, edit[0], edit[1])
		}
	}
	cb, err := os.ReadFile(filepath.Join(deployDir, "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeCompose(cb); err != nil {
		t.Fatalf("compose.yaml itself: %v", err)
	}
	if _, err := decodeCompose([]byte(strings.Replace(string(cb), "read_only:", "readonly:", 1))); err == nil {
		t.Error("compose: a misspelt field decoded without an error")
	}
}

// TestDockerfile: the base images are build arguments defaulting to the
// real ones, the build is static and trimmed as the tests build it
// (dockerBuildFlags), the runtime is non-root, and ENTRYPOINT, CMD and
// HEALTHCHECK run subcommands and flags that exist. TestImage builds and
// runs it.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	var build, user string
	exec := map[string][]string{}
	args := map[string]string{}
	var froms []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			args[k] = v
		case "FROM":
			froms = append(froms, strings.Fields(rest)[0])
		case "RUN":
			if strings.Contains(rest, "go build") {
				build = rest
			}
		case "USER":
			user = rest
		case "ENTRYPOINT", "CMD":
			exec[instr] = jsonArgs(t, instr, rest)
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(rest, " CMD ")
			if !ok {
				t.Fatalf("HEALTHCHECK without CMD: %s", rest)
			}
			exec[instr] = jsonArgs(t, instr, cmd)
		}
	}
	// Both base images are build arguments, with the real ones as defaults;
	// the Go image's version is go.mod's.
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gover := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if gover == nil || args["GO_IMAGE"] != "docker.io/library/golang:"+string(gover[1])+"-bookworm" {
		t.Errorf("ARG GO_IMAGE=%s, want docker.io/library/golang:<go.mod's go version>-bookworm (%s)", args["GO_IMAGE"], gover)
	}
	if args["BASE_IMAGE"] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("ARG BASE_IMAGE=%s, want gcr.io/distroless/static-debian12:nonroot", args["BASE_IMAGE"])
	}
	if len(froms) == 0 || !slices.Contains(froms, "${GO_IMAGE}") || froms[len(froms)-1] != "${BASE_IMAGE}" {
		t.Errorf("FROM lines %v: want the build on ${GO_IMAGE} and the runtime (last) on ${BASE_IMAGE}", froms)
	}
	if !slices.Contains(froms, "build-${BINARY:-source}") {
		t.Errorf("FROM lines %v: the build stage must default to build-source (TestImage checks that podman goes there)", froms)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w`} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build line lacks %s: %s", want, build)
		}
	}
	if !strings.Contains(strings.Join(dockerBuildFlags, " "), "-trimpath") {
		t.Error("the tests no longer build as the Dockerfile does")
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER %q: the runtime must not be root", user)
	}
	ep := exec["ENTRYPOINT"]
	if len(ep) != 1 || path.Base(ep[0]) != "ssec-proxy" {
		t.Fatalf("ENTRYPOINT %v, want the binary alone", ep)
	}
	checkArgs(t, "Dockerfile CMD", exec["CMD"])
	hc := exec["HEALTHCHECK"]
	if len(hc) < 2 || hc[0] != ep[0] || hc[1] != "healthcheck" {
		t.Errorf("HEALTHCHECK runs %v, want %s healthcheck", hc, ep[0])
	} else {
		checkArgs(t, "Dockerfile HEALTHCHECK", hc[1:])
	}
}

func jsonArgs(t *testing.T, instr, s string) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &args); err != nil {
		t.Fatalf("%s %s: not the exec (JSON) form, which the image needs (it has no shell): %v", instr, s, err)
	}
	return args
}

// TestSystemdUnit: ExecStart's flags exist, the unit is hardened as the
// issue asks, and, where systemd-analyze is installed, the unit verifies
// and its exposure score (systemd-analyze security, 0-10) stays at 2.5 or below.
func TestSystemdUnit(t *testing.T) {
	unit := filepath.Join(deployDir, "systemd", "ssec-proxy.service")
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = append(settings[k], v)
		}
	}
	for k, v := range map[string]string{"DynamicUser": "yes", "ProtectSystem": "strict", "StateDirectory": "ssec-proxy",
		"NoNewPrivileges": "yes", "PrivateTmp": "yes", "ExecReload": "/bin/kill -HUP $MAINPID"} {
		if len(settings[k]) != 1 || settings[k][0] != v {
			t.Errorf("%s=%v, want %s", k, settings[k], v)
		}
	}
	exec0 := strings.Fields(settings["ExecStart"][0])
	if exec0[0] != "/usr/local/bin/ssec-proxy" {
		t.Fatalf("ExecStart runs %s", exec0[0])
	}
	checkArgs(t, "ExecStart", exec0[1:])
	if got := flagValue(exec0, "config"); got != "/etc/ssec-proxy/config.yaml" {
		t.Errorf("--config %s", got)
	}
	// The config shipped for the unit validates, and its key file is a
	// credential the unit loads.
	cb, err := os.ReadFile(filepath.Join(deployDir, "systemd", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseDeployConfig(t, "systemd/config.yaml", cb, map[string]string{"XDG_STATE_HOME": "/var/lib"})
	if cfg != nil {
		for _, k := range cfg.Keys {
			name := strings.TrimPrefix(k.File, "/run/credentials/ssec-proxy.service/")
			if name == k.File || !strings.Contains(strings.Join(settings["LoadCredential"], "\n"), name+":") {
				t.Errorf("key %s: file %s is not a LoadCredential of the unit", k.ID, k.File)
			}
		}
	}

	if testing.Short() {
		return
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("no systemd-analyze: not verifying the unit")
		return
	}
	// verify wants ExecStart's program to exist: point it at the test build.
	tmp := filepath.Join(t.TempDir(), "ssec-proxy.service")
	if err := os.WriteFile(tmp, bytes.ReplaceAll(b, []byte("/usr/local/bin/ssec-proxy"), []byte(proxyBinary(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", tmp).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	if out, err := exec.Command(sa, "security", "--offline=yes", "--threshold=25", tmp).CombinedOutput(); err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Errorf("systemd-analyze security: %v: %s", err, lines[len(lines)-1])
	}
}
