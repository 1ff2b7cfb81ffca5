package invariant

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

func ring(t *testing.T) *keystore.Keyring {
	dir := t.TempDir()
	for i, id := range []string{"cur", "old", "other"} {
		if err := os.WriteFile(filepath.Join(dir, id+".key"), []byte(strings.Repeat(string(rune('a'+i)), 32)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	yml := "state_dir: " + dir + "\nupstream: {endpoint: https://127.0.0.1:1, region: us-east-1, access_key: a, secret_key: s}\n" +
		"keys: [{id: cur, file: " + dir + "/cur.key}, {id: old, file: " + dir + "/old.key}, {id: other, file: " + dir + "/other.key}]\n" +
		"rules: [{bucket: enc, key: cur, previous: [old]}, {bucket: enc, prefix: public/, encrypt: false}, {bucket: src, key: other}, {bucket: legacy, key: cur, allow_plaintext_reads: true}]\n"
	cfg, err := config.Parse([]byte(yml), "t.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := keystore.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func withKey(t *testing.T, r *keystore.Keyring, h http.Header, id string, copySource bool) {
	k, err := r.Key(id)
	if err != nil {
		t.Fatal(err)
	}
	raw := k.Raw()
	sse, _ := encrypt.NewSSEC(raw[:])
	if copySource {
		sse = encrypt.SSECopy(sse)
	}
	sse.Marshal(h)
}

// TestCheck: the check fails a request built without its key (and the
// other shapes of invariant 1), and passes the ones the proxy makes.
func TestCheck(t *testing.T) {
	r := ring(t)
	cases := []struct {
		name, method, url string
		key, copyKey      string // key ids sent, "" none
		copySource        string
		bad               bool
	}{
		{"put-with-key", "PUT", "/enc/secret/x", "cur", "", "", false},
		{"put-without-key", "PUT", "/enc/secret/x", "", "", "", true},
		{"put-with-previous-key (an upload's)", "PUT", "/enc/secret/x?partNumber=2&uploadId=u", "old", "", "", false},
		{"put-with-another-rules-key", "PUT", "/enc/secret/x", "other", "", "", true},
		{"create-upload-without-key", "POST", "/enc/secret/x?uploads", "", "", "", true},
		{"complete-without-key", "POST", "/enc/secret/x?uploadId=u", "", "", "", true},
		{"plaintext-rule", "PUT", "/enc/public/x", "", "", "", false},
		{"plaintext-rule-with-a-store-key", "PUT", "/enc/public/x", "cur", "", "", true},
		{"no-rule-put", "PUT", "/nope/x", "", "", "", true},
		{"tagging-without-key", "PUT", "/enc/secret/x?tagging", "", "", "", false},
		{"proxy-own-object", "PUT", "/enc/.ssec-proxy/etags/x%201%202", "", "", "", false},
		{"get-with-previous-key", "GET", "/enc/secret/x", "old", "", "", false},
		{"get-with-wrong-key", "GET", "/enc/secret/x", "other", "", "", true},
		{"copy-with-both-keys", "PUT", "/enc/secret/y", "cur", "other", "/src/k", false},
		{"copy-without-source-key", "PUT", "/enc/secret/y", "cur", "", "/src/k", true},
		{"copy-with-wrong-source-key", "PUT", "/enc/secret/y", "cur", "cur", "/src/k", true},
		{"copy-from-plaintext-allowed", "PUT", "/enc/secret/y", "cur", "", "/legacy/k", false},
		{"copy-out-of-denied", "PUT", "/enc/secret/y", "cur", "", "/nope/k", true},
		{"copy-of-the-index", "PUT", "/enc/secret/y", "cur", "", "/enc/.ssec-proxy/etags/x", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "https://up"+tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.key != "" {
				withKey(t, r, req.Header, tc.key, false)
			}
			if tc.copySource != "" {
				req.Header.Set("X-Amz-Copy-Source", tc.copySource)
			}
			if tc.copyKey != "" {
				withKey(t, r, req.Header, tc.copyKey, true)
			}
			err = Check(r, req)
			if (err != nil) != tc.bad {
				t.Errorf("Check = %v, want a violation: %v", err, tc.bad)
			}
		})
	}
}

// TestClientsOwnKey: a client's own SSE-C key (none of the store's) passes
// where no rule encrypts, as the design says; under an encrypting rule it
// is a violation.
func TestClientsOwnKey(t *testing.T) {
	r := ring(t)
	for _, tc := range []struct {
		url string
		bad bool
	}{{"/enc/public/x", false}, {"/enc/secret/x", true}} {
		req, _ := http.NewRequest("PUT", "https://up"+tc.url, nil)
		sse, _ := encrypt.NewSSEC([]byte(strings.Repeat("z", 32)))
		sse.Marshal(req.Header)
		if err := Check(r, req); (err != nil) != tc.bad {
			t.Errorf("%s: Check = %v, want a violation: %v", tc.url, err, tc.bad)
		}
	}
}

type nopTransport struct{ n int }

func (t *nopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n++
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
}

// TestRoundTripperRecords: the transport the test suites wrap around the
// upstream records a keyless write under an encrypting rule as a
// violation (the suites fail on it), counts what it checked, and still
// passes every request on.
func TestRoundTripperRecords(t *testing.T) {
	r := ring(t)
	next := &nopTransport{}
	rt := &RoundTripper{Next: next, Ring: func() *keystore.Keyring { return r }}
	good, _ := http.NewRequest("PUT", "https://up/enc/secret/x", nil)
	withKey(t, r, good.Header, "cur", false)
	bad, _ := http.NewRequest("PUT", "https://up/enc/secret/y", nil)
	for _, req := range []*http.Request{good, bad} {
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
	}
	v, checked := rt.Violations()
	if checked != 2 || next.n != 2 {
		t.Errorf("checked %d, passed on %d; want 2 and 2", checked, next.n)
	}
	if len(v) != 1 || !strings.Contains(v[0], "secret/y") {
		t.Errorf("violations %q, want one naming enc/secret/y", v)
	}
	for _, s := range v {
		if strings.Contains(s, strings.Repeat("a", 32)) {
			t.Errorf("a violation shows key material: %q", s)
		}
	}
}
