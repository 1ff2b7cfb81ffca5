package lifecycle

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

// TestProbeSSECMinIO: against MinIO the probe works in a bucket that
// exists, names the one that does not, and leaves no object behind.
func TestProbeSSECMinIO(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	ok, missing := "probe-ok-"+string(hexRand(3)), "probe-missing-"+string(hexRand(3))
	if err := env.c.MakeBucket(ctx, ok, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := env.parseConfig("", 0, "rules: [{bucket: "+ok+", key: kb}, {bucket: "+missing+", key: ka}, {bucket: '*', prefix: x/, key: kc}]")
	if err != nil {
		t.Fatal(err)
	}
	ring, _, err := keystore.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := ProbeSSEC(ctx, env.c, ring)
	if len(got) != 2 {
		t.Fatalf("probes %+v, want two (the wildcard rule names no bucket)", got)
	}
	byBucket := map[string]SSECProbe{got[0].Bucket: got[0], got[1].Bucket: got[1]}
	if p := byBucket[ok]; !p.OK || p.KeyID != "kb" {
		t.Errorf("%s: %+v, want OK with kb", ok, p)
	}
	if p := byBucket[missing]; p.OK || !strings.Contains(p.Problem, "no such bucket") {
		t.Errorf("%s: %+v, want no such bucket", missing, p)
	}
	for o := range env.c.ListObjects(ctx, ok, minio.ListObjectsOptions{Prefix: ".ssec-proxy/", Recursive: true}) {
		t.Errorf("the probe left %q behind (%v)", o.Key, o.Err)
	}
}

// fakeUpstream answers as an S3 service that refuses SSE-C writes (403,
// as AWS does where the bucket blocks SSE-C) or one that ignores the
// SSE-C headers and serves the object to anyone.
type fakeUpstream struct {
	refuse bool
	mu     sync.Mutex
	obj    []byte
}

func (f *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.refuse && r.Method == http.MethodPut:
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
	case r.Method == http.MethodPut:
		f.obj, _ = io.ReadAll(r.Body)
		w.Header().Set("ETag", `"e"`)
	case r.Method == http.MethodGet:
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		w.Header().Set("ETag", `"e"`)
		_, _ = w.Write(f.obj)
	}
}

func TestProbeSSECRefusingUpstreams(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse bool
		want   string
	}{
		{"blocks-ssec", true, "may block SSE-C"},
		{"ignores-ssec", false, "ignored the SSE-C headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(&fakeUpstream{refuse: tc.refuse})
			defer srv.Close()
			dir := t.TempDir()
			ca := filepath.Join(dir, "ca.pem")
			if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "k.key"), []byte(strings.Repeat("k", 32)), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse([]byte("state_dir: "+dir+"\nupstream: {endpoint: "+srv.URL+", region: us-east-1, access_key: a, secret_key: s, ca_file: "+ca+"}\n"+
				"keys: [{id: k, file: "+dir+"/k.key}]\nrules: [{bucket: b-1, key: k}]\n"), "t.yaml", func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			ring, _, err := keystore.Build(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewClient(cfg.Upstream)
			if err != nil {
				t.Fatal(err)
			}
			got := ProbeSSEC(context.Background(), c, ring)
			if len(got) != 1 || got[0].OK || !strings.Contains(got[0].Problem, tc.want) {
				t.Fatalf("probe %+v, want a problem saying %q", got, tc.want)
			}
		})
	}
}
