package certs

import (
	"crypto/x509"
	"os"
	"testing"
	"time"
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

// TestEnsureRenewsALeafNearExpiry: a leaf that expires within RenewBefore
// is replaced, signed by the same CA.
func TestEnsureRenewsALeafNearExpiry(t *testing.T) {
	dir := t.TempDir()
	hosts := []string{"localhost", "127.0.0.1"}
	f, err := Ensure(dir, hosts)
	if err != nil {
		t.Fatal(err)
	}
	ca1, _ := os.ReadFile(f.CA)
	if err := IssueLeaf(dir, hosts, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	short, _, err := loadPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	if time.Until(short.NotAfter) > 25*time.Hour {
		t.Fatalf("IssueLeaf made a leaf valid until %v", short.NotAfter)
	}
	if _, err := Ensure(dir, hosts); err != nil {
		t.Fatal(err)
	}
	renewed, _, err := loadPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	if time.Until(renewed.NotAfter) < LeafValidity-2*time.Hour {
		t.Errorf("the renewed leaf expires %v; want about %v from now", renewed.NotAfter, LeafValidity)
	}
	ca2, _ := os.ReadFile(f.CA)
	if string(ca1) != string(ca2) {
		t.Error("renewing the leaf replaced the CA")
	}
}
