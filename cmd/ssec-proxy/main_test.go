package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssec-proxy/ssec-proxy/config"
)

func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestKeygen(t *testing.T) {
	out, _, err := runCmd(t, "keygen")
	if err != nil {
		t.Fatal(err)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if err != nil || len(k) != 32 {
		t.Fatalf("keygen printed %q: %v, %d bytes", out, err, len(k))
	}
	out2, _, _ := runCmd(t, "keygen")
	if out2 == out {
		t.Error("two keygen runs printed the same key")
	}
}

func writeConfig(t *testing.T, body string) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, 32)
	if err := os.WriteFile(filepath.Join(dir, "k.key"), []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
		t.Fatal(err)
	}
	body = strings.ReplaceAll(body, "DIR", dir)
	p := filepath.Join(dir, "ssec.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, key
}

func TestCheckPrintsKeyIDsAndMD5sNeverKeys(t *testing.T) {
	t.Setenv("TEST_SOS_SECRET", "sos-secret-value")
	p, key := writeConfig(t, `
state_dir: DIR/state
upstream:
  zone: de-fra-1
  access_key: EXO123
  secret_key: ${TEST_SOS_SECRET}
keys:
  - id: backups-2026
    file: DIR/k.key
rules:
  - bucket: backups
    key: backups-2026
  - bucket: backups
    prefix: public/
    encrypt: false
`)
	out, _, err := runCmd(t, "check", "--config", p)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(key)
	for _, want := range []string{"https://sos-de-fra-1.exo.io", "backups-2026", base64.StdEncoding.EncodeToString(sum[:]), "public/"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{base64.StdEncoding.EncodeToString(key), "sos-secret-value"} {
		if strings.Contains(out, secret) {
			t.Errorf("check printed a secret:\n%s", out)
		}
	}
}

func TestCheckRejectsBadConfigNamingFileAndField(t *testing.T) {
	p, _ := writeConfig(t, `
state_dir: DIR/state
upstream:
  zone: ch-gva-2
  access_key: a
  secret_key: b
keys:
  - id: k
    file: DIR/k.key
rules:
  - bucket: backups
    key: nope
`)
	_, _, err := runCmd(t, "check", "--config", p)
	if err == nil || !strings.Contains(err.Error(), "ssec.yaml") || !strings.Contains(err.Error(), "rules[0].key") {
		t.Fatalf("err = %v, want one naming the file and rules[0].key", err)
	}
	// A key file of the wrong length names the key and the file.
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "k.key"), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	p2 := strings.Replace(p, "ssec.yaml", "ok.yaml", 1)
	b, _ := os.ReadFile(p)
	_ = os.WriteFile(p2, bytes.Replace(b, []byte("key: nope"), []byte("key: k"), 1), 0o600)
	_, _, err = runCmd(t, "check", "--config", p2)
	if err == nil || !strings.Contains(err.Error(), "k.key") {
		t.Fatalf("err = %v, want one naming the key file", err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"serve"}, {"check"}, {"keygen", "extra"}} {
		_, _, err := runCmd(t, args...)
		if !errors.Is(err, errUsage) || exitCode(err) != 2 {
			t.Errorf("%v: err = %v, want a usage error (exit 2)", args, err)
		}
	}
}

// TestDeployExamplesAreValid runs every example config through the loader
// and validation.
func TestDeployExamplesAreValid(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example configs under deploy/examples")
	}
	env := map[string]string{"SOS_ACCESS_KEY": "a", "SOS_SECRET_KEY": "b", "AWS_ACCESS_KEY_ID": "a",
		"AWS_SECRET_ACCESS_KEY": "b", "SSEC_CLIENT_SECRET": "c", "HOME": t.TempDir()}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse(b, f, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
