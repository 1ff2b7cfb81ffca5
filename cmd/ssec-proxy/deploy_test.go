package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ssec-proxy/ssec-proxy/config"
)

const deployDir = "../../deploy"

// yamlDocs reads every document of a YAML file.
func yamlDocs(t *testing.T, file string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
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

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, x.(string))
	}
	return out
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestDeployManifests parses every YAML file under deploy/: each document is
// a Kubernetes object, a compose file or an ssec-proxy config. Every config
// (example files and the ConfigMap's) passes validation; every ssec-proxy
// command line (container args, probes, compose command and healthcheck)
// names flags that exist; the Kubernetes sidecar is a native sidecar with
// probes on /healthz and /readyz, resource requests, its config and keys
// mounted where the config says.
func TestDeployManifests(t *testing.T) {
	var files []string
	err := filepath.WalkDir(deployDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("only %d YAML files under deploy/: %v", len(files), files)
	}
	seen := map[string]int{}
	for _, f := range files {
		for _, doc := range yamlDocs(t, f) {
			switch {
			case doc["apiVersion"] != nil && doc["kind"] != nil:
				seen["kubernetes"]++
				checkKubernetes(t, f, doc)
			case doc["services"] != nil:
				seen["compose"]++
				checkCompose(t, f, doc)
			case doc["upstream"] != nil:
				seen["config"]++
				b, _ := os.ReadFile(f)
				parseDeployConfig(t, f, b, map[string]string{"HOME": "/home/test"})
			default:
				t.Errorf("%s: a document that is neither Kubernetes, compose nor an ssec-proxy config", f)
			}
		}
	}
	if seen["kubernetes"] < 2 || seen["compose"] < 1 || seen["config"] < 3 {
		t.Errorf("documents found: %v", seen)
	}
}

var configMaps = map[string]map[string]string{} // name → data, filled as they are seen

func checkKubernetes(t *testing.T, file string, doc map[string]any) {
	kind := doc["kind"].(string)
	if kind == "ConfigMap" {
		name := dig(doc, "metadata", "name").(string)
		data := map[string]string{}
		for k, v := range dig(doc, "data").(map[string]any) {
			data[k] = v.(string)
			if strings.HasSuffix(k, ".yaml") {
				// In a pod the config comes with its env from Secrets; no HOME.
				parseDeployConfig(t, file+": ConfigMap "+name+": "+k, []byte(v.(string)), nil)
			}
		}
		configMaps[name] = data
		return
	}
	pod := dig(doc, "spec", "template", "spec")
	if pod == nil {
		return
	}
	volumes := map[string]map[string]any{}
	for _, v := range dig(pod, "volumes").([]any) {
		volumes[v.(map[string]any)["name"].(string)] = v.(map[string]any)
	}
	found := false
	for _, list := range []string{"initContainers", "containers"} {
		cs, _ := dig(pod, list).([]any)
		for _, c := range cs {
			c := c.(map[string]any)
			for _, m := range c["volumeMounts"].([]any) {
				if volumes[m.(map[string]any)["name"].(string)] == nil {
					t.Errorf("%s: container %s mounts an undeclared volume %v", file, c["name"], m)
				}
			}
			if !strings.Contains(c["image"].(string), "ssec-proxy") {
				continue
			}
			found = true
			where := file + ": " + list + "/" + c["name"].(string)
			if list != "initContainers" || c["restartPolicy"] != "Always" {
				t.Errorf("%s: not a native sidecar (an init container with restartPolicy: Always)", where)
			}
			if c["command"] != nil {
				t.Errorf("%s: overrides the image's entrypoint", where)
			}
			args := strs(c["args"])
			checkArgs(t, where, args)
			if dig(c, "resources", "requests", "memory") == nil || dig(c, "resources", "requests", "cpu") == nil {
				t.Errorf("%s: no resource requests", where)
			}
			for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
				if got := dig(c, probe, "httpGet", "path"); got != path {
					t.Errorf("%s: %s on %v, want %s", where, probe, got, path)
				}
			}
			checkPodConfig(t, where, c, volumes, flagValue(args, "config"))
		}
	}
	if !found {
		t.Errorf("%s: %s without an ssec-proxy container", file, kind)
	}
}

// checkPodConfig finds the config file that --config names in the
// container's ConfigMap mount, and checks that its key files are in a
// mounted Secret and that the probes' port is the admin port.
func checkPodConfig(t *testing.T, where string, c map[string]any, volumes map[string]map[string]any, cfgPath string) {
	mountOf := func(p string) (map[string]any, string) {
		for _, m := range c["volumeMounts"].([]any) {
			m := m.(map[string]any)
			mp := m["mountPath"].(string)
			if strings.HasPrefix(p, mp+"/") {
				return volumes[m["name"].(string)], strings.TrimPrefix(p, mp+"/")
			}
		}
		return nil, ""
	}
	vol, rel := mountOf(cfgPath)
	cmName, _ := dig(vol, "configMap", "name").(string)
	data, ok := configMaps[cmName][rel]
	if !ok {
		t.Errorf("%s: --config %s is not a key of a mounted ConfigMap", where, cfgPath)
		return
	}
	cfg := parseDeployConfig(t, where+": "+cfgPath, []byte(data), nil)
	if cfg == nil {
		return
	}
	for _, k := range cfg.Keys {
		if k.File == "" {
			continue
		}
		if vol, _ := mountOf(k.File); dig(vol, "secret", "secretName") == nil {
			t.Errorf("%s: key %s's file %s is not in a mounted Secret", where, k.ID, k.File)
		}
	}
	if vol, _ := mountOf(filepath.Join(cfg.StateDir, "tls", "ca.crt")); vol == nil {
		t.Errorf("%s: state_dir %s is not on a volume (the root filesystem is read-only)", where, cfg.StateDir)
	}
	_, port, _ := strings.Cut(cfg.Admin.Listen, ":")
	var ports []string
	for _, p := range c["ports"].([]any) {
		p := p.(map[string]any)
		if dig(c, "readinessProbe", "httpGet", "port") == p["name"] {
			ports = append(ports, strings.TrimSpace(strings.Trim(strings.ReplaceAll(string(mustJSON(p["containerPort"])), `"`, ""), " ")))
		}
	}
	if len(ports) != 1 || ports[0] != port {
		t.Errorf("%s: the probes' port %v is not admin.listen's %s", where, ports, port)
	}
	if !strings.HasPrefix(cfg.Admin.Listen, "0.0.0.0:") {
		t.Errorf("%s: admin.listen %s: the kubelet probes the pod IP", where, cfg.Admin.Listen)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func checkCompose(t *testing.T, file string, doc map[string]any) {
	found := false
	for name, s := range doc["services"].(map[string]any) {
		s := s.(map[string]any)
		if img, _ := s["image"].(string); !strings.Contains(img, "ssec-proxy") {
			continue
		}
		found = true
		where := file + ": services." + name
		args := strs(s["command"])
		checkArgs(t, where+".command", args)
		test := strs(dig(s, "healthcheck", "test"))
		if len(test) < 2 || test[0] != "CMD" || !strings.HasSuffix(test[1], "/ssec-proxy") {
			t.Errorf("%s.healthcheck.test = %v, want [CMD /…/ssec-proxy healthcheck …]", where, test)
		} else {
			checkArgs(t, where+".healthcheck", test[2:])
		}
		// The config file mounted at --config exists next to the compose file.
		cfgPath := flagValue(args, "config")
		mounted := false
		for _, v := range strs(s["volumes"]) {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && parts[1] == cfgPath {
				mounted = true
				if _, err := os.Stat(filepath.Join(filepath.Dir(file), parts[0])); err != nil {
					t.Errorf("%s: the config mounted at %s: %v", where, cfgPath, err)
				}
			}
		}
		if !mounted {
			t.Errorf("%s: nothing is mounted at --config %s", where, cfgPath)
		}
	}
	if !found {
		t.Errorf("%s: no ssec-proxy service", file)
	}
}

// TestDockerfile: the build is static and trimmed as the tests build it
// (dockerBuildFlags), the runtime is non-root, and ENTRYPOINT, CMD and
// HEALTHCHECK run subcommands and flags that exist.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	var build, user string
	exec := map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
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
