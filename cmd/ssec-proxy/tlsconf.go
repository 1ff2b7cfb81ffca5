package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/certs"
	"github.com/ssec-proxy/ssec-proxy/metrics"
)

// How often the server certificate is looked at while running.
const (
	certFilesPoll = 2 * time.Second // tls.mode files: did cert-manager (or anyone) replace the files?
	certAutoCheck = time.Hour       // tls.mode auto: is the leaf due for renewal?
)

// autoHosts are the names the tls.mode auto certificate is for.
func autoHosts(cfg *config.Config) []string {
	return []string{"localhost", "127.0.0.1", "::1", "*." + cfg.Domain}
}

// certWatcher serves a certificate that it reloads when its files change.
// Connections in progress keep the certificate they were made with; new
// handshakes get the current one (GetCertificate reads an atomic pointer).
type certWatcher struct {
	certFile, keyFile string
	// ensure, when set, runs before each look at the files: tls.mode auto
	// makes or renews the leaf there.
	ensure func() error
	log    *zap.Logger
	m      *metrics.Metrics

	cur  atomic.Pointer[tls.Certificate]
	seen [sha256.Size]byte // of the files last looked at, valid or not
}

// newCertWatcher loads the pair once; an error here stops the start.
func newCertWatcher(certFile, keyFile string, ensure func() error, log *zap.Logger, m *metrics.Metrics) (*certWatcher, error) {
	w := &certWatcher{certFile: certFile, keyFile: keyFile, ensure: ensure, log: log, m: m}
	if ensure != nil {
		if err := ensure(); err != nil {
			return nil, err
		}
	}
	pair, sum, err := w.read()
	if err != nil {
		return nil, err
	}
	w.seen = sum
	w.set(pair)
	return w, nil
}

// newTLSSource builds the certificate source of cfg's tls.mode (nil for
// off), and says where the CA is in mode auto.
func newTLSSource(cfg *config.Config, log *zap.Logger, m *metrics.Metrics) (*certWatcher, string, error) {
	switch cfg.TLS.Mode {
	case config.TLSOff:
		return nil, "", nil
	case config.TLSFiles:
		w, err := newCertWatcher(cfg.TLS.Cert, cfg.TLS.Key, nil, log, m)
		if err != nil {
			return nil, "", fmt.Errorf("tls: %w", err)
		}
		return w, "", nil
	}
	dir := filepath.Join(cfg.StateDir, "tls")
	hosts := autoHosts(cfg)
	f := certs.In(dir)
	ensure := func() error {
		_, err := certs.Ensure(dir, hosts)
		return err
	}
	w, err := newCertWatcher(f.Cert, f.Key, ensure, log, m)
	if err != nil {
		return nil, "", fmt.Errorf("tls auto (%s): %w", dir, err)
	}
	return w, f.CA, nil
}

// read reads both files and checks that they make a usable pair.
func (w *certWatcher) read() (*tls.Certificate, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	certPEM, err := os.ReadFile(w.certFile)
	if err != nil {
		return nil, sum, err
	}
	keyPEM, err := os.ReadFile(w.keyFile)
	if err != nil {
		return nil, sum, err
	}
	defer clear(keyPEM)
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	copy(sum[:], h.Sum(nil))
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, sum, fmt.Errorf("%s and %s: %w", w.certFile, w.keyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, sum, err
		}
		pair.Leaf = leaf
	}
	if time.Now().After(leaf.NotAfter) {
		return nil, sum, fmt.Errorf("%s: the certificate expired at %s", w.certFile, leaf.NotAfter.Format(time.RFC3339))
	}
	return &pair, sum, nil
}

func (w *certWatcher) set(pair *tls.Certificate) {
	w.cur.Store(pair)
	w.m.TLSCert(pair.Leaf.NotAfter)
}

// GetCertificate is tls.Config.GetCertificate.
func (w *certWatcher) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return w.cur.Load(), nil
}

// current is the certificate now served.
func (w *certWatcher) current() *tls.Certificate { return w.cur.Load() }

// check looks at the files once: a changed, valid pair replaces the one
// served; an invalid one is logged (once per content) and the one served
// stays. It reports whether the certificate changed.
func (w *certWatcher) check() (bool, error) {
	if w.ensure != nil {
		if err := w.ensure(); err != nil {
			w.log.Error("tls: could not renew the local certificate; serving the current one", zap.Error(err),
				zap.Time("not_after", w.current().Leaf.NotAfter))
			w.m.TLSReload(false)
			return false, err
		}
	}
	pair, sum, err := w.read()
	if sum == w.seen {
		return false, nil // nothing new since the last look (or still unreadable)
	}
	w.seen = sum
	if err != nil {
		w.log.Warn("tls: the certificate files changed but do not make a valid pair; still serving the previous certificate",
			zap.Error(err), zap.Time("serving_not_after", w.current().Leaf.NotAfter))
		w.m.TLSReload(false)
		return false, err
	}
	w.set(pair)
	w.m.TLSReload(true)
	w.log.Info("tls: new certificate loaded", zap.String("subject", pair.Leaf.Subject.String()),
		zap.String("serial", pair.Leaf.SerialNumber.Text(16)), zap.Time("not_after", pair.Leaf.NotAfter))
	return true, nil
}

// run checks every interval until ctx ends.
func (w *certWatcher) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = w.check()
		}
	}
}

// serverTLSConfig is the proxy's TLS: 1.2 at least, HTTP/2 and HTTP/1.1,
// the certificate from w.
func serverTLSConfig(w *certWatcher) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: w.GetCertificate,
	}
}
