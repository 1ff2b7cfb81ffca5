package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// mapTransportError is the one place where a failed upstream round trip
// becomes a status: 504 when the upstream was too slow, 503 when it could
// not be reached, 502 when it could not be trusted or answered garbage.
// The messages say what happened without the upstream's raw error, which
// may quote URLs.
func mapTransportError(err error) error {
	var (
		netErr    net.Error
		opErr     *net.OpError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &certErr):
		return s3err.New(s3err.BadGateway, "the upstream's TLS certificate could not be verified; set upstream.ca_file if it is signed by a private CA")
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return s3err.New(s3err.GatewayTimeout, "")
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return s3err.New(s3err.ServiceUnavailable, "")
	}
	return s3err.New(s3err.BadGateway, "the connection to the upstream failed before it answered")
}
