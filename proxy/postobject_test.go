package proxy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ssec-proxy/ssec-proxy/proxy/sigv4"
)

// signedForm is a V4 POST form for bucket with extra fields, each named by
// an eq condition, and the file last.
func signedForm(t *testing.T, bucket string, extra map[string]string, file []byte) (string, []byte) {
	now := time.Now().UTC()
	date := now.Format("20060102")
	cred := testAK + "/" + date + "/us-east-1/s3/aws4_request"
	fields := map[string]string{"x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": cred, "x-amz-date": now.Format("20060102T150405Z")}
	for k, v := range extra {
		fields[k] = v
	}
	conds := []string{fmt.Sprintf(`{"bucket": %q}`, bucket)}
	for k, v := range fields {
		conds = append(conds, fmt.Sprintf(`{%q: %q}`, k, v))
	}
	doc := fmt.Sprintf(`{"expiration": %q, "conditions": [%s]}`, now.Add(time.Hour).Format(time.RFC3339), strings.Join(conds, ", "))
	fields["policy"] = base64.StdEncoding.EncodeToString([]byte(doc))
	key := sigv4.SigningKey(testSK, date, "us-east-1")
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(fields["policy"]))
	fields["x-amz-signature"] = hex.EncodeToString(m.Sum(nil))
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	fw, _ := w.CreateFormFile("file", "f.txt")
	_, _ = fw.Write(file)
	_ = w.Close()
	return w.FormDataContentType(), b.Bytes()
}

// TestPostFormAnswers: a form upload stored under its rule's key answers
// as S3 does: 204 by default, 200 or 201 (with a PostResponse) as
// success_action_status says, 303 to success_action_redirect; a form
// with an Authorization header is refused.
func TestPostFormAnswers(t *testing.T) {
	p := newTestProxy(t)
	p.up.etag = `"up-etag"`
	for _, tc := range []struct {
		name   string
		extra  map[string]string
		status int
		check  func(t *testing.T, resp *http.Response)
	}{
		{"default", map[string]string{"key": "secret/a"}, 204, nil},
		{"200", map[string]string{"key": "secret/b", "success_action_status": "200"}, 200, nil},
		{"201", map[string]string{"key": "secret/c", "success_action_status": "201"}, 201, nil},
		{"redirect", map[string]string{"key": "secret/d", "success_action_redirect": "https://example.test/done?x=1"}, 303, func(t *testing.T, resp *http.Response) {
			u, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || u.Host != "example.test" || u.Query().Get("key") != "secret/d" || u.Query().Get("bucket") != "enc" || u.Query().Get("x") != "1" {
				t.Errorf("Location %q", resp.Header.Get("Location"))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct, body := signedForm(t, "enc", tc.extra, []byte("file data"))
			n := p.up.count()
			req, _ := http.NewRequest(http.MethodPost, p.url+"/enc", bytes.NewReader(body))
			req.Header.Set("Content-Type", ct)
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if tc.check != nil {
				tc.check(t, resp)
			}
			var put *recorded
			for _, r := range p.up.all()[n:] {
				if r.Method == "PUT" && r.Path == "/enc/"+tc.extra["key"] {
					put = &r // the object's, not an index entry's
				}
			}
			if put == nil || put.Path != "/enc/"+tc.extra["key"] || string(put.Body) != "file data" || put.Header.Get(hSSEKey) != p.keyMD5["cur"] {
				t.Fatalf("upstream PUT %+v: want the file, under the rule's key", put)
			}
		})
	}
	t.Run("with-authorization", func(t *testing.T) {
		ct, body := signedForm(t, "enc", map[string]string{"key": "secret/e"}, []byte("x"))
		resp := p.do(t, "POST", "/enc", body, map[string]string{"Content-Type": ct})
		if resp.StatusCode != 400 {
			t.Errorf("a signed form POST: %d, want 400", resp.StatusCode)
		}
	})
}
