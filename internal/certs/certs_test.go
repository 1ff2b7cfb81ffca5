package certs

import (
	"crypto/x509"
	"os"
	"testing"
)

func TestEnsureMakesThenReuses(t *testing.T) {
	dir := t.TempDir()
	f, err := Ensure(dir, []string{"localhost", "127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{f.Key, f.CAKey} {
		st, err := os.Stat(k)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", k, st.Mode().Perm())
		}
	}
	first, _ := os.ReadFile(f.Cert)
	if _, err := Ensure(dir, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(f.Cert)
	if string(first) != string(again) {
		t.Error("a second Ensure with covered hosts made a new leaf; want reuse")
	}
	if _, err := Ensure(dir, []string{"localhost", "s3.localhost"}); err != nil {
		t.Fatal(err)
	}
	leaf, _, err := loadPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _, _ := loadPair(f.CA, f.CAKey)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "s3.localhost"}); err != nil {
		t.Errorf("new leaf does not verify for the new host against the kept CA: %v", err)
	}
}
