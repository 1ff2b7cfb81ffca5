package main

import (
	"os"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// TestCheckProbe: check --probe writes, reads and removes one SSE-C object
// in each bucket of the encrypting rules and says how each went; a bucket
// that does not take the write fails the command.
func TestCheckProbe(t *testing.T) {
	w := newWorld(t)
	out, _, err := runCmd(t, "check", "--config", w.cfg, "--probe")
	if err != nil || !strings.Contains(out, w.bucket+" (key k1): ok") {
		t.Fatalf("check --probe: %v\n%s", err, out)
	}
	left := 0
	for range w.direct().ListObjects(t.Context(), w.bucket, minio.ListObjectsOptions{Recursive: true}) {
		left++
	}
	if left != 0 {
		t.Errorf("the probe left %d objects in %s", left, w.bucket)
	}
	// A rule for a bucket that does not exist.
	body, err := os.ReadFile(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	missing := "no-such-bucket-" + strings.ToLower(hexString(4))
	body = []byte(strings.Replace(string(body), "default: deny", "  - bucket: "+missing+"\n    key: k2\ndefault: deny", 1))
	writeFileAtomic(t, w.cfg, body)
	out, _, err = runCmd(t, "check", "--config", w.cfg, "--probe")
	if err == nil || !strings.Contains(out, "FAILED: no such bucket") || !strings.Contains(out, w.bucket+" (key k1): ok") {
		t.Errorf("check --probe with a missing bucket: err %v\n%s", err, out)
	}
	if strings.Contains(out, "BEGIN") || strings.Contains(out, w.mc.SecretKey) {
		t.Errorf("check --probe printed a secret:\n%s", out)
	}
}
