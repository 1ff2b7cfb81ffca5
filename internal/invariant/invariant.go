// Package invariant checks the proxy's first promise on the requests it
// sends upstream, for the test suites: a write under an encrypting rule
// never leaves without that rule's key, and no request carries a key its
// rule does not name (DESIGN.md, invariants 1 and 9). RoundTripper wraps
// the proxy's upstream transport in the unit and e2e tests, so that every
// upstream request of every test is checked, not only those a test looks
// at.
package invariant

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

const (
	hKeyMD5     = "X-Amz-Server-Side-Encryption-Customer-Key-Md5"
	hCopyKeyMD5 = "X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key-Md5"
)

// metadataSubs are the object subresources whose PUT writes no data.
var metadataSubs = []string{"acl", "tagging", "retention", "legal-hold"}

// Check returns what is wrong with an upstream request under ring's rules,
// nil when nothing is. Requests for the proxy's own objects (.ssec-proxy/)
// are exempt: they carry no key by design.
func Check(ring *keystore.Keyring, r *http.Request) error {
	bucket, key, err := target(r.URL)
	if err != nil || bucket == "" || key == "" || etagindex.IsReserved(key) {
		return err
	}
	d := ring.Match(bucket, key)
	q := r.URL.Query()
	write := r.Method == http.MethodPut || r.Method == http.MethodPost && (q.Has("uploads") || q.Has("uploadId"))
	for _, sub := range metadataSubs {
		if q.Has(sub) {
			write = false
		}
	}
	sent := r.Header.Get(hKeyMD5)
	switch {
	case write && d.Deny:
		return fmt.Errorf("%s %s/%s: a write under default deny reached the upstream", r.Method, bucket, key)
	case write && d.Encrypt && sent == "":
		return fmt.Errorf("%s %s/%s: a write under an encrypting rule without its key", r.Method, bucket, key)
	}
	if sent != "" && !names(d, sent) && !clientsOwn(ring, d, sent) {
		return fmt.Errorf("%s %s/%s: carries a key its rule (%s/%s) does not name", r.Method, bucket, key, d.Bucket, d.Prefix)
	}
	if cs := r.Header.Get("X-Amz-Copy-Source"); cs != "" {
		sb, sk, err := copySource(cs)
		if err != nil {
			return fmt.Errorf("%s %s/%s: copy source %q: %v", r.Method, bucket, key, cs, err)
		}
		if etagindex.IsReserved(sk) {
			return fmt.Errorf("%s %s/%s: copies the proxy's own %s", r.Method, bucket, key, sk)
		}
		sd := ring.Match(sb, sk)
		copyKey := r.Header.Get(hCopyKeyMD5)
		switch {
		case sd.Deny:
			return fmt.Errorf("%s %s/%s: copies out of %s/%s, which default deny refuses", r.Method, bucket, key, sb, sk)
		case copyKey != "" && !names(sd, copyKey) && !clientsOwn(ring, sd, copyKey):
			return fmt.Errorf("%s %s/%s: the copy source carries a key its rule does not name", r.Method, bucket, key)
		case copyKey == "" && sd.Encrypt && !sd.AllowPlaintextReads:
			return fmt.Errorf("%s %s/%s: copies from an encrypting rule's %s/%s without its key", r.Method, bucket, key, sb, sk)
		}
	}
	return nil
}

// names reports whether the key of md5 is one the rule names (current or
// previous).
func names(d keystore.Decision, md5 string) bool {
	if !d.Encrypt {
		return false
	}
	if d.Key.MD5() == md5 {
		return true
	}
	for _, k := range d.Previous {
		if k.MD5() == md5 {
			return true
		}
	}
	return false
}

// clientsOwn reports a key that is none of the store's under a rule that
// does not encrypt: the client's own SSE-C, which passes there as sent
// (under an encrypting rule the proxy refuses it).
func clientsOwn(ring *keystore.Keyring, d keystore.Decision, md5 string) bool {
	_, stored := ring.KeyByMD5(md5)
	return !d.Encrypt && !stored
}

func target(u *url.URL) (bucket, key string, err error) {
	p := strings.TrimPrefix(u.EscapedPath(), "/")
	b, k, _ := strings.Cut(p, "/")
	if bucket, err = url.PathUnescape(b); err != nil {
		return "", "", err
	}
	key, err = url.PathUnescape(k)
	return bucket, key, err
}

func copySource(v string) (bucket, key string, err error) {
	v, _, _ = strings.Cut(strings.TrimPrefix(v, "/"), "?")
	b, k, ok := strings.Cut(v, "/")
	if !ok {
		return "", "", fmt.Errorf("no key")
	}
	if bucket, err = url.PathUnescape(b); err != nil {
		return "", "", err
	}
	key, err = url.PathUnescape(k)
	return bucket, key, err
}

// RoundTripper checks every request before it passes it on, and keeps
// what it found.
type RoundTripper struct {
	Next http.RoundTripper
	Ring func() *keystore.Keyring // the rules in force; nil: nothing is checked

	mu         sync.Mutex
	violations []string
	checked    int
}

func (rt *RoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if rt.Ring != nil {
		if ring := rt.Ring(); ring != nil {
			err := Check(ring, r)
			rt.mu.Lock()
			rt.checked++
			if err != nil {
				rt.violations = append(rt.violations, err.Error())
			}
			rt.mu.Unlock()
		}
	}
	return rt.Next.RoundTrip(r)
}

// Violations returns what was found so far, and how many requests were
// checked.
func (rt *RoundTripper) Violations() ([]string, int) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]string(nil), rt.violations...), rt.checked
}
