// Package lifecycle re-encrypts objects under their rule's current key
// (rekey) and reports which key opens each object (audit). Both talk to the
// upstream directly with minio-go, with the keys of the keystore; they do
// not go through the proxy.
//
// # Which key opens an object
//
// S3 keeps no record of an SSE-C key, only its MD5, and does not reveal it
// without the key. The one reliable test is to ask: a HEAD with the SSE-C
// headers of a key answers 200 only when that key opened the object, and
// echoes the key's MD5 (x-amz-server-side-encryption-customer-key-MD5). A
// wrong key gives 403 (MinIO: AccessDenied); SSE-C headers on an object
// stored without SSE-C give 400 (MinIO, AWS); no SSE-C headers on an SSE-C
// object give 400. So an object is probed, in this order:
//
//  1. HEAD with the rule's current key, then with each of its previous keys:
//     200 echoing that key's MD5 opens it. A 200 without the echo is
//     ambiguous (an upstream that ignores SSE-C headers on a plaintext
//     object would answer so): it counts only when a HEAD without a key
//     then fails.
//  2. HEAD without SSE-C headers: 200 means the object is stored without
//     SSE-C (plaintext, or encrypted by the service's own keys, SSE-S3 or
//     SSE-SOS, which need nothing from the client).
//  3. HEAD with every other key of the config: one that opens it is
//     reported as "other" (not this rule's key, but a known one).
//  4. Nothing opened it: "unknown".
//
// A 400 or 403 moves on to the next probe; a 404 means the object was
// deleted since it was listed; any other answer (5xx, network) is an error
// for that object, never a classification.
//
// # Rewriting in place
//
// A PUT or a copy onto the same key replaces the object atomically, at its
// end: until the new version is fully written the old one stays, so an
// interrupted rekey loses nothing and a new run picks up what is left (an
// object already under the current key is left alone). The copy source is
// pinned by its ETag (x-amz-copy-source-if-match, or If-Match on the GET),
// so an object rewritten by someone else meanwhile is not overwritten with
// its older content: it is reported as changed, for the next run.
package lifecycle

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/upstreamtls"
)

// Target is what a run covers: the objects of Bucket whose key starts with
// Prefix.
type Target struct {
	Bucket string
	Prefix string
}

// String returns the target as an s3:// URL.
func (t Target) String() string { return "s3://" + t.Bucket + "/" + t.Prefix }

// ParseTarget reads "s3://bucket", "s3://bucket/" or "s3://bucket/prefix".
// The prefix is taken byte for byte as written (no unescaping, no path
// cleaning: the rules match object keys exactly so), and is a plain string
// prefix: "s3://b/logs" covers "logs/x" and "logs-old/y".
func ParseTarget(s string) (Target, error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return Target{}, fmt.Errorf("%q is not an s3://bucket[/prefix] URL", s)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return Target{}, fmt.Errorf("%q names no bucket (s3://bucket[/prefix])", s)
	}
	if err := s3utils.CheckValidBucketName(bucket); err != nil {
		return Target{}, fmt.Errorf("%q: bucket %q: %v", s, bucket, err)
	}
	return Target{Bucket: bucket, Prefix: prefix}, nil
}

// NewClient makes a minio-go client straight to the upstream of cfg, with
// its credentials, trusting its ca_file, path-style. Keys never pass an
// HTTP proxy: the transport ignores HTTP(S)_PROXY.
func NewClient(cfg config.Upstream) (*minio.Client, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("upstream.endpoint: %q is not a URL", cfg.Endpoint)
	}
	if u.Scheme != "https" {
		return nil, errors.New("upstream.endpoint: SSE-C needs https")
	}
	tlsConf, err := upstreamtls.Config(cfg)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: 2 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
		DisableCompression:    true,
	}
	return minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       true,
		Transport:    tr,
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
	})
}
