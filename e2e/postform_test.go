package e2e

// Browser form uploads (issue 13, item 6): a presigned POST that boto3
// makes is stored encrypted with the rule's key; what its policy or the
// rules refuse is refused with S3's codes, nothing stored.

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"mime/multipart"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

type presignedPost struct {
	URL    string            `json:"url"`
	Fields map[string]string `json:"fields"`
}

// postForm sends a form with fields (sorted, key first as browsers keep
// them in order) and the file last.
func postForm(t *testing.T, c *http.Client, u string, fields map[string]string, filename string, data []byte) (int, http.Header, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		_ = w.WriteField(n, fields[n])
	}
	fw, _ := w.CreateFormFile("file", filename)
	_, _ = fw.Write(data)
	_ = w.Close()
	req, _ := http.NewRequest(http.MethodPost, u, &b)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

func TestPostFormUpload(t *testing.T) {
	buckets(t)
	prefix := uniqueKey(t, "form/") + "/"
	out := runProgram(t, clientEnv(t), "/usr/bin/python3", "testdata/boto3_presign_post.py", "enc", prefix, "100000")
	var forms map[string]presignedPost
	if err := json.Unmarshal([]byte(out), &forms); err != nil || forms["v4"].URL == "" {
		t.Fatalf("boto3's presigned POST: %v\n%s", err, out)
	}
	c := httpsClient(t)
	for _, sig := range []string{"v4", "v2"} {
		pp := forms[sig]
		t.Run(sig, func(t *testing.T) {
			data := randomBytes(50_000)
			name := sig + "-photo.txt"
			status, h, body := postForm(t, c, pp.URL, pp.Fields, name, data)
			if status != 201 {
				t.Fatalf("POST: %d %s", status, body)
			}
			var res struct{ Bucket, Key, ETag string }
			if err := xml.Unmarshal(body, &res); err != nil || res.Key != prefix+name || res.Bucket != "enc" {
				t.Errorf("PostResponse %s (%v)", body, err)
			}
			if want := `"` + md5hex(data) + `"`; h.Get("ETag") != want || res.ETag != want {
				t.Errorf("ETag %q / %q, want the MD5 %s", h.Get("ETag"), res.ETag, want)
			}
			assertEncrypted(t, "enc", prefix+name, "k1", data)
			if st, err := direct(t).StatObject(t.Context(), "enc", prefix+name, minio.StatObjectOptions{ServerSideEncryption: ssec(t, "k1")}); err != nil || st.ContentType != "text/plain" {
				t.Errorf("stored Content-Type %q (%v)", st.ContentType, err)
			}

			refused := []struct {
				name   string
				fields map[string]string
				file   string
				data   []byte
				url    string
				status int
				code   string
			}{
				{"too-large", pp.Fields, "big.txt", randomBytes(100_001), pp.URL, 400, "EntityTooLarge"},
				{"empty", pp.Fields, "empty.txt", nil, pp.URL, 400, "EntityTooSmall"},
				{"key-outside-prefix", with(pp.Fields, "key", "elsewhere/${filename}"), "x.txt", data, pp.URL, 403, "AccessDenied"},
				{"content-type-outside", with(pp.Fields, "Content-Type", "image/png"), "x.txt", data, pp.URL, 403, "AccessDenied"},
				{"extra-field", with(pp.Fields, "x-amz-meta-evil", "1"), "x.txt", data, pp.URL, 403, "AccessDenied"},
				{"other-bucket", pp.Fields, "x.txt", data, strings.Replace(pp.URL, "/enc", "/plain", 1), 403, "AccessDenied"},
				{"forged-policy", with(pp.Fields, "policy", pp.Fields["policy"][:len(pp.Fields["policy"])-4]+"AAAA"), "x.txt", data, pp.URL, 403, "SignatureDoesNotMatch"},
				{"sse-field-under-an-encrypting-rule", with(pp.Fields, "x-ignore-x", "1", "x-amz-server-side-encryption", "AES256"), "x.txt", data, pp.URL, 403, "AccessDenied"},
			}
			for _, tc := range refused {
				t.Run(tc.name, func(t *testing.T) {
					before := snapshot(t)
					status, _, body := postForm(t, c, tc.url, tc.fields, tc.file, tc.data)
					var e struct{ Code string }
					_ = xml.Unmarshal(body, &e)
					if status != tc.status || e.Code != tc.code {
						t.Errorf("got %d %s, want %d %s: %s", status, e.Code, tc.status, tc.code, body)
					}
					assertNothingNew(t, before)
				})
			}
		})
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		for k := range out {
			if strings.EqualFold(k, kv[i]) {
				delete(out, k)
			}
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}
