// Package upstreamtls is the one TLS client configuration for the S3
// upstream, shared by the proxy and the rekey/audit tools: the system roots
// plus upstream.ca_file, TLS 1.2 at least, verification off only when the
// config says insecure_skip_verify (which callers log loudly).
package upstreamtls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/ssec-proxy/ssec-proxy/config"
)

// Config returns the TLS client configuration for u.
func Config(u config.Upstream) (*tls.Config, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if u.CAFile != "" {
		pem, err := os.ReadFile(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream.ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream.ca_file: %s holds no PEM certificate", u.CAFile)
		}
	}
	return &tls.Config{
		RootCAs:            roots,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: u.InsecureSkipVerify, //nolint:gosec // opt-in, logged by the caller
	}, nil
}
