package e2e

// What S3 answers directly, the proxy answers too (issue 13).

import (
	"net/http"
	"strings"
	"testing"
)

// TestMetadataNamesLowerCase: user metadata comes back with lower-case
// names, as S3 sends them, after a PUT and after copies with either
// metadata directive (boto3 looks up Metadata["foo"]).
func TestMetadataNamesLowerCase(t *testing.T) {
	buckets(t)
	base := env.httpURL
	src := uniqueKey(t, "meta/src")
	data := []byte("metadata")
	r := newRaw(http.MethodPut, "/enc/"+src, data)
	r.header.Set("X-Amz-Meta-MixedCase", "one")
	r.header.Set("x-amz-meta-lower", "two")
	r.signClient(base, sha256Hex(data))
	if a := send(t, base, r); a.status != 200 {
		t.Fatalf("PUT: %v", a)
	}
	copyTo := func(directive string) string {
		dst := uniqueKey(t, "meta/copy-"+strings.ToLower(directive))
		c := newRaw(http.MethodPut, "/enc/"+dst, nil)
		c.header.Set("X-Amz-Copy-Source", "/enc/"+src)
		if directive == "REPLACE" {
			c.header.Set("X-Amz-Metadata-Directive", "REPLACE")
			c.header.Set("X-Amz-Meta-MixedCase", "one")
			c.header.Set("X-Amz-Meta-Lower", "two")
		}
		c.signClient(base, emptyHash)
		if a := send(t, base, c); a.status != 200 {
			t.Fatalf("copy %s: %v", directive, a)
		}
		return dst
	}
	for _, key := range []string{src, copyTo("COPY"), copyTo("REPLACE")} {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			g := newRaw(m, "/enc/"+key, nil)
			g.signClient(base, emptyHash)
			a := send(t, base, g)
			if a.status != 200 {
				t.Fatalf("%s %s: %v", m, key, a)
			}
			for _, want := range []string{"\r\nx-amz-meta-mixedcase: one", "\r\nx-amz-meta-lower: two"} {
				if !strings.Contains(a.rawHead, want) {
					t.Errorf("%s %s: no %q in\n%s", m, key, strings.TrimSpace(want), a.rawHead)
				}
			}
		}
	}
}
