package main

// TestImage builds the repository's Dockerfile with podman and runs the
// image as the Kubernetes manifests (sidecar, gateway) run it, against the
// test MinIO.
// Registries are out of reach here, so the test makes its own stand-ins for
// the two base images: no Go image is needed (BINARY=prebuilt takes the
// binary that proxyBinary builds with the Dockerfile's flags), and the
// runtime base is a scratch image with what distroless static:nonroot
// holds that matters here: /etc/passwd and /etc/group with nonroot 65532,
// /tmp, /home/nonroot, and a CA bundle (the test MinIO's CA, where SOS's
// public CAs would be).

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/certs"
	"github.com/ssec-proxy/ssec-proxy/internal/miniotest"
)

// podman is the podman command line of the image tests: runc and cgroupfs
// (no systemd here), and a containers.conf without default ulimits (the
// sandbox refuses RLIMIT_NOFILE changes).
type podman struct {
	t    *testing.T
	env  []string
	args []string // before the subcommand
}

// needPodman finds podman and runc, or skips loudly (fails under
// SSEC_INTEGRATION=require, as CI runs it).
func needPodman(t *testing.T) *podman {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not building the image")
	}
	for _, bin := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			msg := fmt.Sprintf("no %s: the image is not built and run (scripts/deps.sh --clients installs podman and runc)", bin)
			if os.Getenv("SSEC_INTEGRATION") == "require" {
				t.Fatal("SSEC_INTEGRATION=require: " + msg)
			}
			fmt.Fprintf(os.Stderr, "\n*** cmd/ssec-proxy: SKIPPING TestImage: %s\n\n", msg)
			t.Skip("SKIPPED: " + msg)
		}
	}
	conf := filepath.Join(t.TempDir(), "containers.conf")
	if err := os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Storage of its own (vfs: plain files, nothing mounted), removed with
	// the test's directory: the build's intermediate images go with it.
	store := t.TempDir()
	return &podman{t: t, env: append(os.Environ(), "CONTAINERS_CONF="+conf), args: []string{
		"--runtime", "runc", "--cgroup-manager", "cgroupfs",
		"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"), "--storage-driver", "vfs",
	}}
}

// run runs podman with args and returns its stdout; stderr goes into the
// error.
func (p *podman) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "podman", append(slices.Clone(p.args), args...)...)
	cmd.Env = p.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("podman %s: %w\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), err
}

// combined runs podman with args and returns its stdout and stderr together.
func (p *podman) combined(args ...string) (string, error) {
	cmd := exec.Command("podman", append(slices.Clone(p.args), args...)...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// logs is the container's output: the proxy logs on stderr, which
// podman logs passes on as its own stderr.
func (p *podman) logs(name string) string {
	out, err := p.combined("logs", name)
	if err != nil {
		return fmt.Sprintf("podman logs: %v\n%s", err, out)
	}
	return out
}

func (p *podman) must(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// baseTar is the runtime base stand-in: the files of distroless
// static-debian12:nonroot that the proxy uses.
func baseTar(t *testing.T, caPEM []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	dir := func(name string, mode int64, uid int) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: now}); err != nil {
			t.Fatal(err)
		}
	}
	file := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc", "etc/ssl", "etc/ssl/certs", "home"} {
		dir(d, 0o755, 0)
	}
	dir("tmp", 0o1777, 0)
	dir("home/nonroot", 0o700, 65532)
	file("etc/passwd", []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"))
	file("etc/group", []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"))
	file("etc/ssl/certs/ca-certificates.crt", caPEM)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lockImageTest keeps two runs of TestImage (two developers' go test, two
// packages) from using the manifest's fixed ports at once.
func lockImageTest(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "ssec-proxy-image-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

// containerLog is the container's log: its JSON lines, decoded.
func containerLog(pm *podman, name string) (string, []map[string]any) {
	out := pm.logs(name)
	var entries []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			entries = append(entries, e)
		}
	}
	return out, entries
}

func hasMsg(entries []map[string]any, msg string) bool {
	return slices.ContainsFunc(entries, func(e map[string]any) bool { return e["msg"] == msg })
}

// TestImage: the image that the Dockerfile builds (podman goes through the
// build-source stage by default; BINARY=prebuilt needs no Go image), run
// read-only as each Kubernetes manifest runs it (sidecar, then gateway),
// against MinIO.
func TestImage(t *testing.T) {
	pm := needPodman(t)
	mc := needMinio(t)
	bin := proxyBinary(t)
	lockImageTest(t)

	id := strings.ToLower(hexString(4))
	base, image := "localhost/ssec-proxy-test-base:"+id, "localhost/ssec-proxy-test:"+id
	t.Cleanup(func() { _, _ = pm.run("rmi", "-f", image, base) })

	// The runtime base stand-in, then the image from the Dockerfile.
	ca, err := os.ReadFile(mc.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	baseFile := filepath.Join(tmp, "base.tar")
	if err := os.WriteFile(baseFile, baseTar(t, ca), 0o600); err != nil {
		t.Fatal(err)
	}
	pm.must("import", "--change", "USER=65532:65532", "--change", "WORKDIR=/home/nonroot", baseFile, base)
	buildCtx := filepath.Join(tmp, "context")
	if err := os.MkdirAll(filepath.Join(buildCtx, "state"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(buildCtx, "ssec-proxy"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	dockerfile, err := filepath.Abs("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// GO_IMAGE names an image that does not exist: the build must not need it.
	pm.must("build", "--format", "docker", "--network", "host", "--pull=never", "-f", dockerfile,
		"--build-arg", "BINARY=prebuilt", "--build-arg", "GO_IMAGE=localhost/ssec-proxy-test-no-go:none",
		"--build-arg", "BASE_IMAGE="+base, "-t", image, buildCtx)
	t.Logf("image built in %s", time.Since(start).Round(time.Millisecond))

	// Without BINARY the Dockerfile builds from source, on GO_IMAGE: here a
	// stand-in without Go or a shell, so the build stops at its first RUN.
	out, err := pm.combined("build", "--format", "docker", "--pull=never", "-f", dockerfile,
		"--build-arg", "GO_IMAGE="+base, "--build-arg", "BASE_IMAGE="+base, "-t", image+"-source", filepath.Dir(dockerfile))
	if err == nil || !strings.Contains(out, "AS build-source") || !strings.Contains(out, "RUN go mod download") {
		t.Errorf("a build without BINARY did not go through the build-source stage (%v):\n%s", err, out)
	}

	var info []struct {
		Config struct {
			User       string
			Entrypoint []string
		}
		HealthCheck struct{ Test []string } `json:"Healthcheck"`
	}
	if err := json.Unmarshal([]byte(pm.must("image", "inspect", image)), &info); err != nil || len(info) != 1 {
		t.Fatalf("podman image inspect: %v", err)
	}
	ic := info[0]
	if ic.Config.User != "65532:65532" || !slices.Equal(ic.Config.Entrypoint, []string{"/usr/local/bin/ssec-proxy"}) {
		t.Errorf("image user %q, entrypoint %v", ic.Config.User, ic.Config.Entrypoint)
	}
	hc := ic.HealthCheck.Test
	if len(hc) < 2 || hc[0] != "CMD" {
		t.Fatalf("image healthcheck %v, want [CMD …] (built with --format docker?)", hc)
	}

	t.Run("sidecar", func(t *testing.T) {
		runAsManifest(t, pm, mc, image, hc[1:], filepath.Join(deployDir, "kubernetes"))
	})
	t.Run("gateway", func(t *testing.T) {
		runAsManifest(t, pm, mc, image, hc[1:], filepath.Join(deployDir, "kubernetes", "gateway"))
	})
}

// runAsManifest runs the image as the one Deployment in dir runs it: its
// config from the ConfigMap, its args, its env names (with MinIO for SOS and
// made-up team credentials), its mounts and its security context, with
// --network host. Then: a client's round trip works and is encrypted
// upstream (a direct GET without the key fails, with it works); where the
// config has its own clients, the SOS credentials are refused; the
// HEALTHCHECK command (healthcheck) passes, by podman healthcheck run and by
// exec; the process runs as 65532; there is no shell; the root filesystem
// is read-only; SIGTERM (podman stop) ends it cleanly, with exit status 0
// and the shutdown in its log; no secret reaches the log.
func runAsManifest(t *testing.T, pm *podman, mc *miniotest.Server, image string, healthcheck []string, dir string) {
	s := loadK8sSet(t, dir)
	if len(s.deployments) != 1 {
		t.Fatalf("%s: %d Deployments, want 1", dir, len(s.deployments))
	}
	pod := checkDeployment(t, s, s.deployments[0])
	if pod.cfg == nil {
		t.Fatalf("%s: no valid config", pod.where)
	}
	for _, addr := range []string{pod.cfg.Listen, pod.cfg.Admin.Listen} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("the manifest's address %s is taken on this machine (the container runs with --network host): %v", addr, err)
		}
		ln.Close()
	}
	id := strings.ToLower(hexString(4))
	name := "ssec-proxy-test-" + id
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("container log:\n%s", pm.logs(name))
		}
		_, _ = pm.run("rm", "-f", "-t", "0", name)
	})

	// The manifest's env names, with this test's values: MinIO for SOS.
	values := map[string]string{"SOS_ENDPOINT": "https://" + hostOf(t, mc.Endpoint), "SOS_REGION": "us-east-1",
		"SOS_ACCESS_KEY": mc.AccessKey, "SOS_SECRET_KEY": mc.SecretKey}
	for _, e := range pod.c.Env {
		if _, ok := values[e.Name]; ok {
			continue
		}
		switch {
		case strings.HasPrefix(e.Name, "TEAM_") && strings.HasSuffix(e.Name, "_ACCESS_KEY"):
			values[e.Name] = "team-" + id
		case strings.HasPrefix(e.Name, "TEAM_") && strings.HasSuffix(e.Name, "_SECRET_KEY"):
			values[e.Name] = "team-secret-" + hexString(12)
		default:
			t.Fatalf("the manifest sets %s, which this test does not know how to fill", e.Name)
		}
	}
	cfg, err := config.Parse([]byte(pod.cfgRaw), "ConfigMap", func(k string) (string, bool) { v, ok := values[k]; return v, ok })
	if err != nil {
		t.Fatalf("the config with this test's env: %v", err)
	}

	// What the manifest mounts: the ConfigMap's config, the Secrets (mode
	// 0440, group 65532, as defaultMode and fsGroup make them), the state
	// emptyDir.
	tmp := t.TempDir()
	dirs := map[string]string{}
	for _, m := range pod.c.VolumeMounts {
		d := filepath.Join(tmp, "vol-"+m.Name)
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, 65532, 65532); err != nil {
			t.Fatal(err)
		}
		dirs[m.MountPath] = d
	}
	hostPath := func(p string) string {
		for mp, d := range dirs {
			if strings.HasPrefix(p, mp+"/") {
				return filepath.Join(d, strings.TrimPrefix(p, mp+"/"))
			}
		}
		t.Fatalf("%s is on no mount of the manifest", p)
		return ""
	}
	secretFile := func(p string, data []byte) {
		f := hostPath(p)
		if err := os.WriteFile(f, data, 0o440); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(f, 0, 65532); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(hostPath(flagValue(pod.c.Args, "config")), []byte(pod.cfgRaw), 0o644); err != nil {
		t.Fatal(err)
	}
	keys := map[string][]byte{}
	for _, k := range cfg.Keys {
		keys[k.ID] = randomBytes(32)
		secretFile(k.File, []byte(base64.StdEncoding.EncodeToString(keys[k.ID])+"\n"))
	}
	if len(cfg.Rules) == 0 || len(keys) == 0 {
		t.Fatal("the config has no rule or key to test with")
	}
	rule := cfg.Rules[0]
	var clientCA string
	switch cfg.TLS.Mode {
	case config.TLSFiles: // the Secret's certificate, from a CA of the test's
		f, err := certs.Ensure(filepath.Join(tmp, "tls-ca"), []string{"localhost", "127.0.0.1", s.services[0].Name + ".default.svc"})
		if err != nil {
			t.Fatal(err)
		}
		for src, dst := range map[string]string{f.Cert: cfg.TLS.Cert, f.Key: cfg.TLS.Key} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			secretFile(dst, b)
		}
		clientCA = f.CA
	case config.TLSAuto: // the proxy's own CA, in the state volume
		clientCA = filepath.Join(dirs[cfg.StateDir], "tls", "ca.crt")
	default:
		t.Fatalf("tls.mode %s", cfg.TLS.Mode)
	}

	// No systemd here for podman's health check timers: the test runs the
	// check itself (podman healthcheck run, below).
	args := []string{"run", "-d", "--name", name, "--network", "host", "--log-driver", "k8s-file", "--health-interval", "disable"}
	for _, e := range pod.c.Env {
		args = append(args, "--env", e.Name+"="+values[e.Name])
	}
	for _, m := range pod.c.VolumeMounts {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		args = append(args, "--volume", dirs[m.MountPath]+":"+m.MountPath+":"+mode)
	}
	sc := pod.c.SecurityContext
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		args = append(args, "--read-only")
	}
	for _, c := range sc.Capabilities.Drop {
		args = append(args, "--cap-drop", string(c))
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		args = append(args, "--security-opt", "no-new-privileges")
	}
	args = append(args, image)
	args = append(args, pod.c.Args...)
	if !slices.Contains(args, "--read-only") {
		t.Fatal("the manifest does not make the root filesystem read-only")
	}
	pm.must(args...)

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, entries := containerLog(pm, name)
		if hasMsg(entries, "ssec-proxy listening") {
			break
		}
		if state, _ := pm.run("inspect", "-f", "{{.State.Status}}", name); strings.TrimSpace(state) == "exited" || time.Now().After(deadline) {
			t.Fatalf("the container did not come up (state %s)", strings.TrimSpace(state))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if cfg.TLS.Mode == config.TLSAuto {
		if st, err := os.Stat(clientCA); err != nil || st.Sys().(*syscall.Stat_t).Uid != 65532 {
			t.Fatalf("the proxy's CA in the state volume: %v (want it written by uid 65532)", err)
		}
	}

	// A client's round trip through the container.
	ctx := context.Background()
	direct := (&world{t: t, mc: mc}).direct()
	if err := direct.MakeBucket(ctx, rule.Bucket, minio.MakeBucketOptions{}); err != nil {
		if r := minio.ToErrorResponse(err); r.Code != "BucketAlreadyOwnedByYou" && r.Code != "BucketAlreadyExists" {
			t.Fatal(err)
		}
	}
	through := func(ak, sk string) *minio.Client {
		c, err := minio.New(dialable(cfg.Listen), &minio.Options{
			Creds:        credentials.NewStaticV4(ak, sk, ""),
			Secure:       true,
			Transport:    trusting(t, clientCA),
			Region:       "us-east-1",
			BucketLookup: minio.BucketLookupPath,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ak, sk := cfg.Upstream.AccessKey, cfg.Upstream.SecretKey
	if len(cfg.Clients) > 0 {
		ak, sk = cfg.Clients[0].AccessKey, cfg.Clients[0].SecretKey
	}
	pc := through(ak, sk)
	object := rule.Prefix + "image-test/" + id
	body := randomBytes(300 << 10)
	if _, err := pc.PutObject(ctx, rule.Bucket, object, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("PUT through the container: %v", err)
	}
	t.Cleanup(func() {
		_ = direct.RemoveObject(context.Background(), rule.Bucket, object, minio.RemoveObjectOptions{})
	})
	if got := readAll(t, pc, rule.Bucket, object, minio.GetObjectOptions{}); !bytes.Equal(got, body) {
		t.Fatalf("GET through the container: %d bytes, not what was put", len(got))
	}
	if o, err := direct.GetObject(ctx, rule.Bucket, object, minio.GetObjectOptions{}); err == nil {
		if _, err := io.ReadAll(o); err == nil {
			t.Error("MinIO serves the object without its key: it is not SSE-C encrypted")
		}
		o.Close()
	}
	w := &world{t: t, mc: mc, keys: keys}
	if got := readAll(t, direct, rule.Bucket, object, minio.GetObjectOptions{ServerSideEncryption: w.ssec(rule.Key)}); !bytes.Equal(got, body) {
		t.Errorf("a direct GET with key %s: %d bytes, not what was put", rule.Key, len(got))
	}
	ownClients := !slices.ContainsFunc(cfg.Clients, func(c config.Client) bool { return c.AccessKey == cfg.Upstream.AccessKey })
	if ownClients {
		if _, err := through(mc.AccessKey, mc.SecretKey).StatObject(ctx, rule.Bucket, object, minio.StatObjectOptions{}); err == nil {
			t.Error("the proxy takes the SOS credentials from a client, though the config names its own clients")
		}
	}

	// The image's HEALTHCHECK, as the runtime runs it, and the same command by exec.
	if out, err := pm.run("healthcheck", "run", name); err != nil {
		t.Errorf("podman healthcheck run: %v %s", err, out)
	}
	if out, err := pm.run(append([]string{"exec", name}, healthcheck...)...); err != nil || !strings.Contains(out, "healthy: ") {
		t.Errorf("exec %v: %v %q", healthcheck, err, out)
	}
	// The process's uid, seen from the host.
	pid := strings.TrimSpace(pm.must("inspect", "-f", "{{.State.Pid}}", name))
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "\nUid:\t65532\t65532\t65532\t65532\n") {
		t.Errorf("the proxy (pid %s) does not run as uid 65532: %s", pid, regexp.MustCompile(`(?m)^Uid:.*$`).FindString(string(status)))
	}
	// No shell to exec into.
	for _, sh := range []string{"/bin/sh", "sh", "/bin/bash", "/busybox/sh"} {
		if out, err := pm.run("exec", name, sh, "-c", "true"); err == nil {
			t.Errorf("exec %s in the image succeeded: %q", sh, out)
		}
	}
	// The root filesystem is read-only for the proxy too.
	if _, err := pm.run("exec", name, "/usr/local/bin/ssec-proxy", "keygen", "--out", "/usr/local/bin/probe.key"); err == nil {
		t.Error("the container's root filesystem is writable")
	}

	// SIGTERM: a clean stop, said in the log.
	stopStart := time.Now()
	pm.must("stop", "-t", "40", name)
	t.Logf("stopped in %s", time.Since(stopStart).Round(time.Millisecond))
	if code := strings.TrimSpace(pm.must("inspect", "-f", "{{.State.ExitCode}}", name)); code != "0" {
		t.Errorf("exit code %s after podman stop, want 0", code)
	}
	raw, entries := containerLog(pm, name)
	for _, msg := range []string{"shutting down: no new connections; letting requests in flight finish", "shut down: every request finished"} {
		if !hasMsg(entries, msg) {
			t.Errorf("the log lacks %q", msg)
		}
	}
	for id, k := range keys {
		if strings.Contains(raw, base64.StdEncoding.EncodeToString(k)) {
			t.Errorf("the log holds key %s", id)
		}
	}
	for _, secret := range append([]string{mc.SecretKey}, clientSecrets(cfg)...) {
		if strings.Contains(raw, secret) {
			t.Error("the log holds a secret key")
		}
	}
}

func clientSecrets(cfg *config.Config) []string {
	var out []string
	for _, c := range cfg.Clients {
		out = append(out, c.SecretKey)
	}
	return out
}

func readAll(t *testing.T, c *minio.Client, bucket, object string, opts minio.GetObjectOptions) []byte {
	t.Helper()
	o, err := c.GetObject(context.Background(), bucket, object, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("GET %s/%s: %v", bucket, object, err)
	}
	return b
}
