package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/upstreamtls"
)

// upstream sends re-signed requests to the S3 service behind the proxy over
// one shared, tuned transport.
type upstream struct {
	base      *url.URL // scheme and host of the endpoint
	region    string
	accessKey string
	secretKey string
	client    *http.Client
}

func newUpstream(cfg config.Upstream) (*upstream, error) {
	base, err := url.Parse(cfg.Endpoint)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("upstream.endpoint: %q is not a URL", cfg.Endpoint)
	}
	tlsConf, err := upstreamtls.Config(cfg)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy: nil, // the upstream is reached directly: keys must not pass an HTTP proxy
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: 2 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
		DisableCompression:    true, // bodies pass through byte for byte
		WriteBufferSize:       128 << 10,
		ReadBufferSize:        128 << 10,
	}
	return &upstream{
		base:      &url.URL{Scheme: base.Scheme, Host: base.Host},
		region:    cfg.Region,
		accessKey: cfg.AccessKey,
		secretKey: cfg.SecretKey,
		client: &http.Client{
			Transport: tr,
			// S3 redirects (301/307 to another region) go back to the
			// client as they are; the proxy never follows them with keys.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// upstreamRequest is what the proxy sends for one client request.
type upstreamRequest struct {
	Method  string
	Target  target
	Query   url.Values
	Header  http.Header
	Body    io.Reader // nil: no body
	Length  int64     // of Body after decoding
	Hash    string    // hex sha256 of Body when the client signed it; "" for UNSIGNED-PAYLOAD
	Trailer http.Header
}

// objectPath is the path-style path of t, encoded the one way that the
// signer and the transport both use (invariant 4: what the rules matched is
// what the upstream stores).
func objectPath(t target) string {
	switch {
	case t.Bucket == "":
		return "/"
	case t.Key == "":
		return "/" + t.Bucket + "/"
	}
	return "/" + t.Bucket + "/" + t.Key
}

// build makes the signed *http.Request. Signing is the last step: nothing
// touches the request after it.
func (u *upstream) build(ctx context.Context, ur *upstreamRequest) (*http.Request, error) {
	path := objectPath(ur.Target)
	uu := *u.base
	uu.Path = path
	uu.RawPath = encodePath(path)
	uu.RawQuery = strings.ReplaceAll(ur.Query.Encode(), "+", "%20")
	body := ur.Body
	if body == nil {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, ur.Method, uu.String(), body)
	if err != nil {
		return nil, err
	}
	// NewRequest re-parses the URL; keep the canonical encoding.
	req.URL.RawPath = uu.RawPath
	req.Header = ur.Header
	if ur.Body == nil {
		req.ContentLength = 0
	} else {
		req.ContentLength = ur.Length
	}
	if len(ur.Trailer) > 0 {
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
		return signer.SignV4Trailer(*req, u.accessKey, u.secretKey, "", u.region, ur.Trailer), nil
	}
	hash := ur.Hash
	if hash == "" {
		hash = "UNSIGNED-PAYLOAD"
		if ur.Body == nil {
			hash = emptySHA256
		}
	}
	req.Header.Set("X-Amz-Content-Sha256", hash)
	return signer.SignV4(*req, u.accessKey, u.secretKey, "", u.region), nil
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func (u *upstream) do(req *http.Request) (*http.Response, error) {
	return u.client.Do(req)
}

// encodePath is the one encoding of object paths sent upstream.
func encodePath(p string) string { return s3utils.EncodePath(p) }
