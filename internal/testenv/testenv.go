// Package testenv is what the integration test suites (e2e, lifecycle,
// cmd/ssec-proxy) share: the SSEC_INTEGRATION=require rule, a direct
// client of the test MinIO, key files as keygen writes them, and the scan
// of what a proxy logged for secrets (invariant 2). Starting MinIO (and
// its CA transport) is internal/miniotest's.
package testenv

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ssec-proxy/ssec-proxy/internal/miniotest"
)

// Integration reports whether the integration environment (the pinned
// MinIO) is there. When it is not, it says so loudly on stderr; fail is
// true when SSEC_INTEGRATION=require makes that a failure (make test, CI)
// rather than a skip (a plain go test).
func Integration(pkg, what string) (ok, fail bool) {
	if _, err := miniotest.Binary(); err != nil {
		if os.Getenv("SSEC_INTEGRATION") == "require" {
			fmt.Fprintf(os.Stderr, "%s: FAIL: %v\n", pkg, err)
			return false, true
		}
		fmt.Fprintf(os.Stderr, "\n*** %s: SKIPPING %s: %v\n*** run `make test` to install MinIO and run them.\n\n", pkg, what, err)
		return false, false
	}
	return true, false
}

// Secrets are what must never appear in a log or an error body: keys (by
// id, matched in base64, base64url and hex), secret keys (by name), and
// the markers of signatures and SSE-C key headers.
type Secrets struct {
	Keys    map[string][]byte
	Secrets map[string]string
}

// signatureMarkers show a signature or a key header in a text.
var signatureMarkers = []string{"Signature=", "X-Amz-Signature", "chunk-signature", "x-amz-server-side-encryption-customer-key:"}

// In names each secret text contains, sorted.
func (s Secrets) In(text string) []string {
	var leaks []string
	for id, k := range s.Keys {
		for _, enc := range []string{base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k), fmt.Sprintf("%x", k), string(k)} {
			if len(enc) >= 16 && strings.Contains(text, enc) {
				leaks = append(leaks, "key "+id)
				break
			}
		}
	}
	for name, v := range s.Secrets {
		if v != "" && strings.Contains(text, v) {
			leaks = append(leaks, name)
		}
	}
	lower := strings.ToLower(text)
	for _, m := range signatureMarkers {
		if strings.Contains(lower, strings.ToLower(m)) {
			leaks = append(leaks, m)
		}
	}
	sort.Strings(leaks)
	return leaks
}

// Direct is a minio-go client straight to the test MinIO (no proxy), over
// its TLS with its CA: what the tests check the stored objects with.
func Direct(mc *miniotest.Server) (*minio.Client, error) {
	u, err := url.Parse(mc.Endpoint)
	if err != nil {
		return nil, err
	}
	return minio.New(u.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(mc.AccessKey, mc.SecretKey, ""),
		Secure:    true,
		Transport: mc.Transport(),
		Region:    "us-east-1",
	})
}

// WriteKey writes a key file as `ssec-proxy keygen` prints it (base64 and
// a newline), mode 0600.
func WriteKey(path string, key []byte) error {
	return os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
}
