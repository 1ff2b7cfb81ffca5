package main

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

// TestKeygenOut: --out writes a key file that the proxy loads (mode 0600
// whatever the umask), prints its MD5 and never the key, and refuses a
// path that exists, as a file or as a symlink (dangling or not), leaving
// what is there untouched.
func TestKeygenOut(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })

	dir := t.TempDir()
	p := filepath.Join(dir, "backups-2026.key")
	out, _, err := runCmd(t, "keygen", "--out", p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != 0o600 {
		t.Errorf("mode %v, want -rw-------", st.Mode())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	keys, _, err := keystore.LoadKeys([]config.KeySource{{ID: "backups-2026", File: p}}, nil, nil)
	if err != nil {
		t.Fatalf("the proxy does not load the key file: %v", err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != 32 {
		t.Fatalf("key file holds %d bytes of base64 (%v)", len(raw), err)
	}
	sum := md5.Sum(raw)
	if md5b64 := base64.StdEncoding.EncodeToString(sum[:]); keys["backups-2026"].MD5() != md5b64 || !strings.Contains(out, md5b64) {
		t.Errorf("printed %q; the key's MD5 is %s (keystore: %s)", out, md5b64, keys["backups-2026"].MD5())
	}
	if strings.Contains(out, strings.TrimSpace(string(b))) {
		t.Error("keygen --out printed the key")
	}

	// A second run on the same path fails and keeps the first key.
	_, _, err = runCmd(t, "keygen", "--out", p)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second keygen --out %s: %v, want an error saying it exists", p, err)
	}
	if b2, _ := os.ReadFile(p); !bytes.Equal(b2, b) {
		t.Error("an existing key file was overwritten")
	}

	// Nor through a symlink, dangling or not.
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, []byte("keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for link, to := range map[string]string{"to-file.key": target, "dangling.key": missing} {
		link = filepath.Join(dir, link)
		if err := os.Symlink(to, link); err != nil {
			t.Fatal(err)
		}
		if _, _, err := runCmd(t, "keygen", "--out", link); err == nil {
			t.Errorf("keygen --out %s (a symlink to %s) succeeded", link, to)
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "keep me\n" {
		t.Errorf("the file behind a symlink now holds %q", b)
	}
	if _, err := os.Lstat(missing); !os.IsNotExist(err) {
		t.Errorf("keygen created the target of a dangling symlink (%v)", err)
	}

	// A directory that does not exist: an error, nothing made.
	if _, _, err := runCmd(t, "keygen", "--out", filepath.Join(dir, "no", "such.key")); err == nil {
		t.Error("keygen --out into a missing directory succeeded")
	}
}
