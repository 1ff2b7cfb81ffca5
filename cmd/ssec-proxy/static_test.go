package main

import (
	"debug/elf"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// exitCodeOf runs a program with an empty environment and returns its
// exit code.
func exitCodeOf(t *testing.T, bin string, args ...string) int {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		t.Logf("%s %v: exit %d: %s", filepath.Base(bin), args, ee.ExitCode(), out)
		return ee.ExitCode()
	}
	t.Fatalf("%s %v: %v", bin, args, err)
	return -1
}

// TestStaticBinary: the binary built as the Dockerfile builds it needs no
// dynamic loader or shared library (it runs on a distroless/static base
// with no libc), and runs with an empty environment: keygen, serve with
// its state in the configured state_dir, healthcheck (0 when up, 1 when
// not), and /readyz says 503 while the upstream does not answer.
func TestStaticBinary(t *testing.T) {
	bin := proxyBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it is not static", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries: %v", libs)
	}
	f.Close()

	if code := exitCodeOf(t, bin, "keygen"); code != 0 {
		t.Errorf("keygen with an empty environment: exit %d", code)
	}
	if code := exitCodeOf(t, bin, "healthcheck", "--url", "http://127.0.0.1:1/healthz", "--timeout", "2s"); code != 1 {
		t.Errorf("healthcheck of nothing: exit %d, want 1", code)
	}
	if code := exitCodeOf(t, bin, "healthcheck", "--bogus"); code != 2 {
		t.Errorf("healthcheck --bogus: exit %d, want 2", code)
	}

	// serve with nothing in the environment: no HOME, no XDG_STATE_HOME;
	// the upstream is a closed port, so the proxy is live but not ready.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k.key"), []byte(base64Std(randomBytes(32))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ssec.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
state_dir: %[1]s/state
admin:
  listen: 127.0.0.1:0
upstream:
  endpoint: https://127.0.0.1:1
  region: us-east-1
  access_key: a
  secret_key: b
keys:
  - id: k
    file: %[1]s/k.key
rules:
  - bucket: "*"
    key: k
`, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, []string{}, "serve", "--config", cfg)
	if _, err := os.Stat(filepath.Join(dir, "state", "tls", "ca.crt")); err != nil {
		t.Errorf("no CA in state_dir: %v", err)
	}
	admin := p.admin()
	if code := exitCodeOf(t, bin, "healthcheck", "--url", admin+"/healthz"); code != 0 {
		t.Errorf("healthcheck of a running proxy: exit %d, want 0", code)
	}
	p.waitLog("upstream does not answer", nil, 10*time.Second)
	resp, err := http.Get(admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "upstream not reachable") {
		t.Errorf("/readyz with a dead upstream: %d %s, want 503 naming the upstream", resp.StatusCode, b)
	}
	p.stop()
}
