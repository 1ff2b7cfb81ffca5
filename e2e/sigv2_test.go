package e2e

// SigV2 clients (issue 13, item 1): boto3's presigned URLs in us-east-1,
// s3cmd with signature_v2 = True. A V2 request takes the same
// classification, rules and re-signing (V4, upstream) as a V4 one.

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/ssec-proxy/ssec-proxy/config"
)

func httpsClient(t *testing.T) *http.Client {
	t.Helper()
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(t, env.caFile), MinVersion: tls.VersionTLS12}}}
}

// TestSigV2Boto3Presigned: boto3's V2 presigned PUT and GET URLs, fetched
// with a plain HTTP client, store the object under the rule's key and
// read it back.
func TestSigV2Boto3Presigned(t *testing.T) {
	buckets(t)
	key := uniqueKey(t, "sigv2/boto3")
	out := runProgram(t, clientEnv(t), "/usr/bin/python3", "testdata/boto3_presign_v2.py", "enc", key)
	lines := strings.Fields(out)
	if len(lines) != 3 || !strings.Contains(lines[0], "AWSAccessKeyId=") || !strings.Contains(lines[1], "Signature=") {
		t.Fatalf("boto3 made no V2 presigned URLs:\n%s", out)
	}
	t.Logf("boto3's default presigned GET URL is %s", map[bool]string{true: "SigV2", false: "SigV4"}[strings.Contains(lines[2], "AWSAccessKeyId=")])
	c := httpsClient(t)
	data := randomBytes(70_000)
	req, _ := http.NewRequest(http.MethodPut, lines[1], bytes.NewReader(data))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("presigned V2 PUT: %d %s", resp.StatusCode, body)
	}
	assertEncrypted(t, "enc", key, "k1", data)
	for _, u := range []string{lines[0], lines[2]} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, data) {
			t.Errorf("presigned GET %.60s…: %d, %d bytes (want %d)", u, resp.StatusCode, len(got), len(data))
		}
	}
}

// TestSigV2S3cmd: s3cmd signing every request with V2 puts (one part and
// multipart), lists and gets through the proxy.
func TestSigV2S3cmd(t *testing.T) {
	buckets(t)
	s3cmd := find(t, program{name: "s3cmd", path: "/usr/bin/s3cmd", debian: true})
	home, cfg := s3cmdConfig(t, true, 5)
	environ := append(os.Environ(), "HOME="+home)
	prefix := uniqueKey(t, "sigv2/s3cmd") + "/"
	dir := t.TempDir()
	files := map[string][]byte{"small": randomBytes(100_000), "big": randomBytes(6<<20 + 99)}
	for name, data := range files {
		src := filepath.Join(dir, name)
		writeFile(t, src, data)
		out := runAll(t, environ, s3cmd, "-c", cfg, "--no-progress", "put", src, "s3://enc/"+prefix+name)
		noneOf(t, "s3cmd put", out, "ERROR", "WARNING")
		assertEncrypted(t, "enc", prefix+name, "k1", data)
		dst := filepath.Join(dir, name+".back")
		out = runAll(t, environ, s3cmd, "-c", cfg, "--no-progress", "get", "s3://enc/"+prefix+name, dst)
		noneOf(t, "s3cmd get", out, "ERROR", "WARNING")
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
			t.Errorf("s3cmd get %s: %d bytes (%v), want %d", name, len(got), err, len(data))
		}
	}
	out := runAll(t, environ, s3cmd, "-c", cfg, "ls", "s3://enc/"+prefix)
	if !strings.Contains(out, prefix+"small") || !strings.Contains(out, prefix+"big") || strings.Contains(out, ".ssec-proxy") {
		t.Errorf("s3cmd ls:\n%s", out)
	}
}

// TestSigV2Refused: a forged or expired V2 signature stores nothing, and
// clients_sigv2: false refuses V2 with a message that says so.
func TestSigV2Refused(t *testing.T) {
	buckets(t)
	data := []byte("v2 body")
	put := func(base, sk string, presignAt time.Time) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPut, base+"/enc/"+uniqueKey(t, "sigv2/refused"), bytes.NewReader(data))
		req.Header.Set("Content-Type", "text/plain")
		if presignAt.IsZero() {
			req = signer.SignV2(*req, env.clientAK, sk, false)
		} else {
			req = signer.PreSignV2(*req, env.clientAK, sk, 60, false)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	base := env.httpURL
	before := snapshot(t)
	if resp, b := put(base, "not-the-secret", time.Time{}); resp.StatusCode != 403 || !bytes.Contains(b, []byte("SignatureDoesNotMatch")) {
		t.Errorf("forged V2: %d %s", resp.StatusCode, b)
	}
	assertNothingNew(t, before)
	if resp, b := put(base, env.clientSK, time.Time{}); resp.StatusCode != 200 {
		t.Errorf("well-signed V2 PUT: %d %s", resp.StatusCode, b)
	}
	// An expired presigned V2 URL.
	req, _ := http.NewRequest(http.MethodGet, base+"/enc/x", nil)
	req = signer.PreSignV2(*req, env.clientAK, env.clientSK, 1, false)
	q := req.URL.Query()
	q.Set("Expires", fmt.Sprint(time.Now().Add(-time.Hour).Unix()))
	req.URL.RawQuery = q.Encode()
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("expired presigned V2 GET: %v %v", resp, err)
	}
	off := false
	pbase, _ := startProxy(t, func(c *config.Config) { c.ClientsSigV2 = &off })
	before = snapshot(t)
	if resp, b := put(pbase, env.clientSK, time.Time{}); resp.StatusCode != 403 || !bytes.Contains(b, []byte("Signature Version 2 is not accepted here; sign with SigV4")) {
		t.Errorf("V2 with clients_sigv2 off: %d %s", resp.StatusCode, b)
	}
	assertNothingNew(t, before)
}
