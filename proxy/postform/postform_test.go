package postform

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"strings"
	"testing"
	"time"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
	"github.com/ssec-proxy/ssec-proxy/proxy/sigv4"
)

const (
	ak = "AKIDEXAMPLE"
	sk = "secret-key-example"
)

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func creds(a string) (string, bool) { return sk, a == ak }

func policyB64(conds string) string {
	doc := fmt.Sprintf(`{"expiration": "%s", "conditions": [%s]}`, now.Add(time.Hour).Format(time.RFC3339), conds)
	return base64.StdEncoding.EncodeToString([]byte(doc))
}

// v4Fields signs a policy as boto3's generate_presigned_post does.
func v4Fields(conds string) map[string]string {
	date := now.Format("20060102")
	cred := ak + "/" + date + "/us-east-1/s3/aws4_request"
	amzDate := now.Format("20060102T150405Z")
	pol := policyB64(conds + fmt.Sprintf(`, {"x-amz-algorithm": "AWS4-HMAC-SHA256"}, {"x-amz-credential": "%s"}, {"x-amz-date": "%s"}`, cred, amzDate))
	key := sigv4.SigningKey(sk, date, "us-east-1")
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(pol))
	return map[string]string{"policy": pol, "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": cred,
		"x-amz-date": amzDate, "x-amz-signature": hex.EncodeToString(m.Sum(nil))}
}

func v2Fields(conds string) map[string]string {
	pol := policyB64(conds)
	m := hmac.New(sha1.New, []byte(sk))
	m.Write([]byte(pol))
	return map[string]string{"policy": pol, "awsaccesskeyid": ak, "signature": base64.StdEncoding.EncodeToString(m.Sum(nil))}
}

func with(f map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range f {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func code(err error) string {
	if err == nil {
		return ""
	}
	return s3err.As(err).Code.Name
}

func TestVerifyAndCheck(t *testing.T) {
	conds := `{"bucket": "b-1"}, ["starts-with", "$key", "up/"], ["content-length-range", 1, 100]`
	v4 := with(v4Fields(conds), "key", "up/x")
	v2 := with(v2Fields(conds), "key", "up/x")
	cases := []struct {
		name   string
		fields map[string]string
		v2ok   bool
		bucket string
		verify string // code from Verify
		check  string // code from Check
	}{
		{"v4", v4, false, "b-1", "", ""},
		{"v2", v2, true, "b-1", "", ""},
		{"v2-refused", v2, false, "b-1", "AccessDenied", ""},
		{"v4-forged", with(v4, "x-amz-signature", strings.Repeat("0", 64)), false, "b-1", "SignatureDoesNotMatch", ""},
		{"v2-forged", with(v2, "signature", "AAAA"), true, "b-1", "SignatureDoesNotMatch", ""},
		{"v4-policy-swapped", with(v4, "policy", policyB64(`{"bucket": "b-1"}`)), false, "b-1", "SignatureDoesNotMatch", ""},
		{"unknown-key", with(v4, "x-amz-credential", "OTHER/"+now.Format("20060102")+"/us-east-1/s3/aws4_request"), false, "b-1", "InvalidAccessKeyId", ""},
		{"no-policy", with(v4, "policy", ""), false, "b-1", "AccessDenied", ""},
		{"wrong-bucket", v4, false, "b-2", "", "AccessDenied"},
		{"key-outside-prefix", with(v4, "key", "elsewhere/x"), false, "b-1", "", "AccessDenied"},
		{"extra-field", with(v4, "x-amz-meta-a", "1"), false, "b-1", "", "AccessDenied"},
		{"x-ignore-field", with(v4, "x-ignore-me", "1"), false, "b-1", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, p, err := Verify(tc.fields, creds, now, tc.v2ok)
			if code(err) != tc.verify {
				t.Fatalf("Verify: %v, want %q", err, tc.verify)
			}
			if err != nil {
				return
			}
			if err := p.Check(tc.fields, tc.bucket); code(err) != tc.check {
				t.Errorf("Check: %v, want %q", err, tc.check)
			}
		})
	}
	_, p, err := Verify(v4, creds, now.Add(2*time.Hour), false)
	if code(err) != "AccessDenied" || p != nil {
		t.Errorf("expired policy: %v", err)
	}
	_, p, _ = Verify(v4, creds, now, false)
	for n, want := range map[int64]string{0: "EntityTooSmall", 1: "", 100: "", 101: "EntityTooLarge"} {
		if err := p.CheckLength(n); code(err) != want {
			t.Errorf("CheckLength(%d) = %v, want %q", n, err, want)
		}
	}
}

// form builds a multipart body as Go's writer (and curl, and requests)
// does, the file last.
func form(t *testing.T, fields [][2]string, file []byte) (string, []byte) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, f := range fields {
		_ = w.WriteField(f[0], f[1])
	}
	fw, _ := w.CreateFormFile("file", "photo.jpg")
	_, _ = fw.Write(file)
	_ = w.Close()
	return w.Boundary(), b.Bytes()
}

func TestReadFieldsAndFile(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	boundary, body := form(t, [][2]string{{"Key", "up/${filename}"}, {"Content-Type", "image/jpeg"}, {"x-amz-meta-Tag", "two\r\nlines"}}, data)
	br := bufio.NewReader(bytes.NewReader(body))
	f, err := ReadFields(br, boundary)
	if err != nil {
		t.Fatal(err)
	}
	if f.Fields["key"] != "up/${filename}" || f.Fields["content-type"] != "image/jpeg" || f.Fields["x-amz-meta-tag"] != "two\r\nlines" || f.FileName != "photo.jpg" {
		t.Errorf("fields %q, file name %q", f.Fields, f.FileName)
	}
	n := int64(len(body)) - f.Consumed - ClosingLen(boundary)
	got, err := io.ReadAll(FileReader(br, boundary, n))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("file: %d bytes, %v; want %d", len(got), err, len(data))
	}
}

func TestFileReaderRefuses(t *testing.T) {
	data := []byte("file data")
	boundary, body := form(t, [][2]string{{"key", "k"}}, data)
	for _, tc := range []struct {
		name string
		body []byte
		n    int
	}{
		{"field-after-file", bytes.Replace(body, []byte("\r\n--"+boundary+"--"), []byte("\r\n--"+boundary+"\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--"+boundary+"--"), 1), 0},
		{"no-closing-boundary", bytes.TrimSuffix(body, []byte("--"+boundary+"--\r\n")), 0},
		{"cut-short", body[:len(body)-30], 0},
		{"trailing-garbage", append(append([]byte{}, body...), "junk"...), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReader(bytes.NewReader(tc.body))
			f, err := ReadFields(br, boundary)
			if err != nil {
				return // refused before the file: fine
			}
			n := int64(len(tc.body)) - f.Consumed - ClosingLen(boundary)
			if n < 0 {
				return
			}
			got, err := io.ReadAll(FileReader(br, boundary, n))
			if err == nil {
				t.Errorf("accepted %q as the file", got)
			}
		})
	}
}

func TestReadFieldsRefuses(t *testing.T) {
	for name, body := range map[string]string{
		"no-boundary-first": "hello\r\n",
		"no-file":           "--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--b--\r\n",
		"duplicate-field":   "--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--b\r\nContent-Disposition: form-data; name=\"Key\"\r\n\r\nj\r\n--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--b--\r\n",
		"no-name":           "--b\r\nContent-Disposition: form-data\r\n\r\nk\r\n--b--\r\n",
		"huge-field":        "--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n" + strings.Repeat("k", MaxFields+10) + "\r\n--b--\r\n",
	} {
		if _, err := ReadFields(bufio.NewReader(strings.NewReader(body)), "b"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzReadFields(f *testing.F) {
	boundary, body := form(&testing.T{}, [][2]string{{"key", "k"}, {"policy", "p"}}, []byte("data"))
	f.Add(body, boundary)
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--b--\r\n"), "b")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		br := bufio.NewReader(bytes.NewReader(body))
		fm, err := ReadFields(br, boundary)
		if err != nil {
			return
		}
		if fm.Consumed > int64(len(body)) || fm.Consumed > MaxFields {
			t.Fatalf("consumed %d of %d", fm.Consumed, len(body))
		}
		n := int64(len(body)) - fm.Consumed - ClosingLen(boundary)
		if n < 0 {
			return
		}
		got, err := io.ReadAll(FileReader(br, boundary, n))
		if err == nil && bytes.Contains(got, []byte("\r\n--"+boundary)) {
			t.Fatalf("the file holds the boundary: %q", got)
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	f.Add(`{"expiration": "2026-12-02T13:00:00Z", "conditions": [{"bucket": "b"}, ["starts-with", "$key", ""], ["content-length-range", 0, 10]]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		p, err := ParsePolicy(base64.StdEncoding.EncodeToString([]byte(doc)))
		if err != nil {
			return
		}
		_ = p.Check(map[string]string{"key": "k"}, "b")
		_ = p.CheckLength(5)
	})
}
