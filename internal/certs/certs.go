// Package certs makes the local certificate authority and server
// certificates that `tls.mode: auto` and the test upstream use: an ECDSA CA
// kept in a directory, and a leaf for the given host names and addresses,
// both reused while they are valid. Private keys are written 0600.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Files are the paths of a CA and a server certificate in a directory.
type Files struct {
	CA, CAKey, Cert, Key string
}

// In names the files that Ensure keeps in dir.
func In(dir string) Files {
	return Files{
		CA:    filepath.Join(dir, "ca.crt"),
		CAKey: filepath.Join(dir, "ca.key"),
		Cert:  filepath.Join(dir, "server.crt"),
		Key:   filepath.Join(dir, "server.key"),
	}
}

// RenewBefore is how long before its expiry Ensure makes a certificate
// anew.
const RenewBefore = 30 * 24 * time.Hour

// LeafValidity is how long a leaf that Ensure makes is valid.
const LeafValidity = 397 * 24 * time.Hour

// Ensure makes (or reuses) a CA and a leaf for hosts in dir. A leaf is made
// anew when it is missing, expires within 30 days, or lacks one of hosts.
func Ensure(dir string, hosts []string) (Files, error) {
	f := In(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, err
	}
	ca, caKey, err := loadPair(f.CA, f.CAKey)
	if err != nil || time.Until(ca.NotAfter) < RenewBefore {
		if ca, caKey, err = newCA(f); err != nil {
			return f, err
		}
		_ = os.Remove(f.Cert) // signed by the old CA
	}
	leaf, _, err := loadPair(f.Cert, f.Key)
	if err == nil && time.Until(leaf.NotAfter) > RenewBefore && covers(leaf, hosts) && leaf.CheckSignatureFrom(ca) == nil {
		return f, nil
	}
	return f, newLeaf(f, ca, caKey, hosts)
}

func covers(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(c.DNSNames, h) {
			return false
		}
	}
	return true
}

func loadPair(certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("certs: not an ECDSA key")
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	return cert, key, err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func newCA(f Files) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "ssec-proxy local CA", Organization: []string{"ssec-proxy"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(f.CA, f.CAKey, der, key); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// IssueLeaf writes a leaf for hosts, valid for validity, signed by the CA
// that Ensure keeps in dir (which must exist). Ensure replaces a leaf that
// expires within RenewBefore: tests use IssueLeaf to make one that does.
func IssueLeaf(dir string, hosts []string, validity time.Duration) error {
	f := In(dir)
	ca, caKey, err := loadPair(f.CA, f.CAKey)
	if err != nil {
		return err
	}
	return issueLeaf(f, ca, caKey, hosts, validity)
}

func newLeaf(f Files, ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string) error {
	return issueLeaf(f, ca, caKey, hosts, LeafValidity)
}

func issueLeaf(f Files, ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, validity time.Duration) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "ssec-proxy", Organization: []string{"ssec-proxy"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return writePair(f.Cert, f.Key, der, key)
}

// writePair writes the certificate 0644 and the key 0600, each through a
// temporary file and a rename so that a reader never sees half a file.
func writePair(certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}
