package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ssec-proxy/ssec-proxy/internal/invariant"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy"
)

// Every proxy the e2e tests start sends its upstream requests through an
// invariant check (internal/invariant): a write under an encrypting rule
// without its key, or a key its rule does not name, fails the whole run,
// whichever test made the request.
var checks struct {
	sync.Mutex
	all []*invariant.RoundTripper
}

// checked returns the WrapTransport of a proxy whose rules h() gives
// (set once the proxy is made).
func checked(h **proxy.Server) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper {
		rt := &invariant.RoundTripper{Next: next, Ring: func() *keystore.Keyring {
			if *h == nil {
				return nil
			}
			return (*h).Keyring()
		}}
		checks.Lock()
		checks.all = append(checks.all, rt)
		checks.Unlock()
		return rt
	}
}

// invariantViolations reports, at the end of the run, what the checks
// found; false when something was.
func invariantViolations() bool {
	checks.Lock()
	defer checks.Unlock()
	total, bad := 0, 0
	for _, rt := range checks.all {
		v, n := rt.Violations()
		total += n
		for _, s := range v {
			bad++
			fmt.Fprintln(os.Stderr, "e2e: FAIL: invariant:", s)
		}
	}
	fmt.Fprintf(os.Stderr, "e2e: invariant check: %d upstream requests checked, %d violations\n", total, bad)
	return bad == 0 && total > 0
}

// settle waits for what the proxies in this process left behind their
// clients' wait (index writes and clean-ups): a test that reads the index
// on MinIO, or through another instance, looks after it.
func settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proxy.DrainCleanups(ctx)
	if ctx.Err() != nil {
		t.Fatal("the proxies' index writes did not finish in 30 s")
	}
}
