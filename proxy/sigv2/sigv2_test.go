package sigv2

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

func date(s string) time.Time {
	t, err := time.Parse(time.RFC1123Z, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The AWS documentation's examples with their published signatures; see
// testdata/aws/README.md for why the bucket is johnsmith.
func TestAWSDocExamples(t *testing.T) {
	tests := []struct {
		file    string
		vhost   string
		now     time.Time
		headers []string
		query   []string
		md5     string
	}{
		{file: "get-object.http", vhost: "johnsmith", now: date("Tue, 27 Mar 2007 19:36:42 +0000"), headers: []string{"date"}},
		{file: "get-object-us-west-1.http", vhost: "awsexamplebucket1", now: date("Tue, 27 Mar 2007 19:40:00 +0000"), headers: []string{"date"}},
		{file: "put-object.http", vhost: "johnsmith", now: date("Tue, 27 Mar 2007 21:15:45 +0000"), headers: []string{"content-type", "date"}},
		{file: "list-objects.http", vhost: "johnsmith", now: date("Tue, 27 Mar 2007 19:42:41 +0000"), headers: []string{"date"}},
		{file: "get-acl.http", vhost: "johnsmith", now: date("Tue, 27 Mar 2007 19:44:46 +0000"), headers: []string{"date"}, query: []string{"acl"}},
		{file: "upload-cname.http", vhost: "static.johnsmith.net", now: date("Tue, 27 Mar 2007 21:06:08 +0000"),
			headers: []string{"content-md5", "content-type", "date", "x-amz-acl", "x-amz-meta-checksumalgorithm", "x-amz-meta-filechecksum", "x-amz-meta-reviewedby"},
			md5:     "4gJE4saaMU4BqNR0kLY+lw=="},
		{file: "list-buckets.http", now: date("Wed, 28 Mar 2007 01:29:59 +0000"), headers: []string{"date"}},
		{file: "unicode-key.http", now: date("Wed, 28 Mar 2007 01:49:49 +0000"), headers: []string{"date"}},
		{file: "presigned-get.http", vhost: "johnsmith", now: time.Unix(1175139620, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			r := readHTTPFile(t, "testdata/aws/"+tc.file)
			if !Is(r) {
				t.Error("Is = false")
			}
			a, err := verifierAt(tc.now).Verify(r, tc.vhost)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if a.AccessKey != docAccessKey || a.Presigned != strings.HasPrefix(tc.file, "presigned") {
				t.Errorf("auth = %+v", a)
			}
			if !slices.Equal(a.SignedHeaders, tc.headers) || !slices.Equal(a.SignedQuery, tc.query) {
				t.Errorf("signed headers %q, query %q; want %q, %q", a.SignedHeaders, a.SignedQuery, tc.headers, tc.query)
			}
			if got := base64.StdEncoding.EncodeToString(a.ContentMD5); got != tc.md5 {
				t.Errorf("ContentMD5 = %q, want %q", got, tc.md5)
			}
			// The same request, read as path style (or the reverse), is
			// another resource.
			other := "johnsmith"
			if tc.vhost != "" {
				other = ""
			}
			if _, err := verifierAt(tc.now).Verify(r, other); codeOf(err) != "SignatureDoesNotMatch" {
				t.Errorf("vhost %q: err = %v", other, err)
			}
		})
	}
}

// The page's DELETE example signs x-amz-date's value in the Date position
// and no x-amz-date line, against the page's own rule; the verifier
// follows the rule (empty Date, x-amz-date signed as a header).
func TestAWSDocDeleteXAmzDate(t *testing.T) {
	now := date("Tue, 27 Mar 2007 21:20:26 +0000")
	r := readHTTPFile(t, "testdata/aws/delete-object.http")
	if _, err := verifierAt(now).Verify(r, ""); codeOf(err) != "SignatureDoesNotMatch" {
		t.Fatalf("published form: err = %v", err)
	}
	sts := "DELETE\n\n\n\nx-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n/johnsmith/photos/puppy.jpg"
	r.Header.Set("Authorization", "AWS "+docAccessKey+":"+sign(sts))
	a, err := verifierAt(now).Verify(r, "")
	if err != nil {
		t.Fatalf("rule form: %v", err)
	}
	if !slices.Equal(a.SignedHeaders, []string{"x-amz-date"}) {
		t.Errorf("signed headers %q", a.SignedHeaders)
	}
	// Date is not signed when x-amz-date is: changing it changes nothing.
	r.Header.Set("Date", "Wed, 28 Mar 2007 00:00:00 +0000")
	if _, err := verifierAt(now).Verify(r, ""); err != nil {
		t.Errorf("other Date: %v", err)
	}
}

func sign(sts string) string {
	m := hmac.New(sha1.New, []byte(docSecret))
	m.Write([]byte(sts))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

type clientVector struct {
	File      string `json:"file"`
	Vhost     string `json:"vhost"`
	Now       int64  `json:"now"`
	Presigned bool   `json:"presigned"`
}

func clientVectors(t testing.TB) []clientVector {
	raw, err := os.ReadFile("testdata/clients.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []clientVector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// Requests signed by botocore's HmacV1Auth/HmacV1QueryAuth and s3cmd's
// sign_request_v2/sign_url_base_v2 (testdata/gen_clients.py).
func TestClientVectors(t *testing.T) {
	vs := clientVectors(t)
	if len(vs) < 20 {
		t.Fatalf("%d vectors", len(vs))
	}
	for _, tc := range vs {
		t.Run(tc.File, func(t *testing.T) {
			r := readHTTPFile(t, "testdata/"+tc.File)
			now := time.Unix(tc.Now, 0)
			if !Is(r) {
				t.Error("Is = false")
			}
			a, err := verifierAt(now).Verify(r, tc.Vhost)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if a.AccessKey != docAccessKey || a.Presigned != tc.Presigned || tc.Presigned && a.Expires.IsZero() {
				t.Errorf("auth = %+v", a)
			}
			if md5 := r.Header.Get("Content-Md5"); md5 != "" && base64.StdEncoding.EncodeToString(a.ContentMD5) != md5 {
				t.Errorf("ContentMD5 = %x", a.ContentMD5)
			}
			// Every signed header and subresource is covered.
			for _, name := range a.SignedHeaders {
				if name == "date" || name == "x-amz-date" {
					continue
				}
				m := r.Clone(r.Context())
				m.Header = m.Header.Clone()
				k := http.CanonicalHeaderKey(name)
				if k == "Content-Md5" {
					m.Header.Set(k, "AAAAAAAAAAAAAAAAAAAAAA==")
				} else if m.Header.Get(k) != "" {
					m.Header.Set(k, m.Header.Get(k)+"x")
				} else {
					q := m.URL.Query()
					q.Set(name, q.Get(name)+"x")
					m.URL.RawQuery = q.Encode()
					m.RequestURI = m.URL.RequestURI()
				}
				if _, err := verifierAt(now).Verify(m, tc.Vhost); codeOf(err) != "SignatureDoesNotMatch" {
					t.Errorf("changed %s: err = %v", name, err)
				}
			}
			for _, name := range a.SignedQuery {
				m := r.Clone(r.Context())
				q := m.URL.Query()
				q.Set(name, q.Get(name)+"x")
				m.URL.RawQuery = q.Encode()
				m.RequestURI = m.URL.RequestURI()
				if _, err := verifierAt(now).Verify(m, tc.Vhost); codeOf(err) != "SignatureDoesNotMatch" {
					t.Errorf("changed %s: err = %v", name, err)
				}
			}
		})
	}
}

// A presigned URL is valid until Expires, for at most a week.
func TestPresignedWindow(t *testing.T) {
	exp := time.Unix(1175139620, 0)
	tests := []struct {
		now  time.Time
		code string
		msg  string
	}{
		{exp, "", ""},
		{exp.Add(-time.Hour), "", ""},
		{exp.Add(time.Second), "AccessDenied", "Request has expired"},
		{exp.Add(-7 * 24 * time.Hour), "", ""},
		{exp.Add(-7*24*time.Hour - time.Second), "AccessDenied", "a week"},
	}
	for _, tc := range tests {
		r := readHTTPFile(t, "testdata/aws/presigned-get.http")
		_, err := verifierAt(tc.now).Verify(r, "johnsmith")
		if codeOf(err) != tc.code || err != nil && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("now %v: err = %v, want %s %q", tc.now, err, tc.code, tc.msg)
		}
	}
}

func TestVerifyErrors(t *testing.T) {
	getNow := date("Tue, 27 Mar 2007 19:36:42 +0000")
	get := func() *http.Request { return readHTTPFile(t, "testdata/aws/get-object.http") }
	pre := func() *http.Request { return readHTTPFile(t, "testdata/aws/presigned-get.http") }
	upload := func() *http.Request { return readHTTPFile(t, "testdata/aws/upload-cname.http") }
	setAuth := func(r *http.Request, v string) *http.Request { r.Header.Set("Authorization", v); return r }
	setQuery := func(r *http.Request, old, new string) *http.Request {
		r.URL.RawQuery = strings.Replace(r.URL.RawQuery, old, new, 1)
		r.RequestURI = r.URL.RequestURI()
		return r
	}
	setPath := func(r *http.Request, p string) *http.Request {
		r.RequestURI = p
		u, _ := url.ParseRequestURI(p)
		r.URL = u
		return r
	}
	const sig = "bWq2s1WEIj+Ydj0vQ697zp+IXMU="
	preNow := time.Unix(1175139620, 0).Add(-time.Minute)
	uploadNow := date("Tue, 27 Mar 2007 21:06:08 +0000")
	tests := []struct {
		name  string
		req   func() *http.Request
		vhost string
		now   time.Time
		code  string
	}{
		{"no auth", func() *http.Request { r := get(); r.Header.Del("Authorization"); return r }, "johnsmith", getNow, "AccessDenied"},
		{"no colon", func() *http.Request { return setAuth(get(), "AWS "+docAccessKey) }, "johnsmith", getNow, "InvalidArgument"},
		{"empty access key", func() *http.Request { return setAuth(get(), "AWS :"+sig) }, "johnsmith", getNow, "InvalidArgument"},
		{"lower-case aws", func() *http.Request { return setAuth(get(), "aws "+docAccessKey+":"+sig) }, "johnsmith", getNow, "InvalidArgument"},
		{"inner space", func() *http.Request { return setAuth(get(), "AWS "+docAccessKey+": "+sig) }, "johnsmith", getNow, "InvalidArgument"},
		{"two authorization headers", func() *http.Request { r := get(); r.Header.Add("Authorization", "AWS x:y"); return r }, "johnsmith", getNow, "InvalidArgument"},
		{"unknown access key", func() *http.Request { return setAuth(get(), "AWS AKIAOTHER:"+sig) }, "johnsmith", getNow, "InvalidAccessKeyId"},
		{"forged signature", func() *http.Request { return setAuth(get(), "AWS "+docAccessKey+":"+sign("GET\n\n\n\n/")) }, "johnsmith", getNow, "SignatureDoesNotMatch"},
		{"signature not base64", func() *http.Request { return setAuth(get(), "AWS "+docAccessKey+":bWq2s1WEIj+Ydj0vQ697zp+IXMU") }, "johnsmith", getNow, "SignatureDoesNotMatch"},
		{"signature too long", func() *http.Request { return setAuth(get(), "AWS "+docAccessKey+":"+sig+"AAAA") }, "johnsmith", getNow, "SignatureDoesNotMatch"},
		{"wrong bucket", get, "johnsmiths", getNow, "SignatureDoesNotMatch"},
		{"wrong key", func() *http.Request { return setPath(get(), "/photos/puppy.jpeg") }, "johnsmith", getNow, "SignatureDoesNotMatch"},
		{"key re-encoded", func() *http.Request { return setPath(get(), "/photos/puppy%2Ejpg") }, "johnsmith", getNow, "SignatureDoesNotMatch"},
		{"subresource added", func() *http.Request { return setPath(get(), "/photos/puppy.jpg?acl") }, "johnsmith", getNow, "SignatureDoesNotMatch"},
		{"other query added", func() *http.Request { return setPath(get(), "/photos/puppy.jpg?x-id=GetObject") }, "johnsmith", getNow, ""},
		{"method changed", func() *http.Request { r := get(); r.Method = http.MethodDelete; return r }, "johnsmith", getNow, "SignatureDoesNotMatch"},
		{"content-type added", func() *http.Request { r := get(); r.Header.Set("Content-Type", "text/plain"); return r }, "johnsmith", getNow, "SignatureDoesNotMatch"},
		{"x-amz header added", func() *http.Request { r := get(); r.Header.Set("X-Amz-Acl", "public-read"); return r }, "johnsmith", getNow, "SignatureDoesNotMatch"},
		{"x-amz-date added", func() *http.Request {
			r := get()
			r.Header.Set("X-Amz-Date", r.Header.Get("Date"))
			return r
		}, "johnsmith", getNow, "SignatureDoesNotMatch"},
		{"skew future", get, "johnsmith", getNow.Add(-16 * time.Minute), "RequestTimeTooSkewed"},
		{"skew past", get, "johnsmith", getNow.Add(16 * time.Minute), "RequestTimeTooSkewed"},
		{"skew within", get, "johnsmith", getNow.Add(14 * time.Minute), ""},
		{"x-amz-date skewed", func() *http.Request {
			r := get()
			r.Header.Set("X-Amz-Date", "Tue, 27 Mar 2007 18:00:00 +0000")
			return r
		}, "johnsmith", getNow, "RequestTimeTooSkewed"},
		{"no date", func() *http.Request { r := get(); r.Header.Del("Date"); return r }, "johnsmith", getNow, "AccessDenied"},
		{"bad date", func() *http.Request { r := get(); r.Header.Set("Date", "2007-03-27 19:36:42"); return r }, "johnsmith", getNow, "AccessDenied"},
		{"two dates", func() *http.Request { r := get(); r.Header.Add("Date", r.Header.Get("Date")); return r }, "johnsmith", getNow, "InvalidArgument"},
		{"upload", upload, "static.johnsmith.net", uploadNow, ""},
		{"upload meta changed", func() *http.Request {
			r := upload()
			r.Header["X-Amz-Meta-Reviewedby"] = []string{"jane@johnsmith.net", "joe@johnsmith.net"}
			return r
		}, "static.johnsmith.net", uploadNow, "SignatureDoesNotMatch"},
		{"upload meta joined", func() *http.Request {
			r := upload()
			r.Header["X-Amz-Meta-Reviewedby"] = []string{" joe@johnsmith.net,jane@johnsmith.net "}
			return r
		}, "static.johnsmith.net", uploadNow, ""},
		{"upload meta folded", func() *http.Request {
			r := upload()
			r.Header.Set("X-Amz-Meta-Filechecksum", "0x0266\r\n  1779")
			return r
		}, "static.johnsmith.net", uploadNow, "SignatureDoesNotMatch"},
		{"upload md5 changed", func() *http.Request { r := upload(); r.Header.Set("Content-Md5", "5gJE4saaMU4BqNR0kLY+lw=="); return r }, "static.johnsmith.net", uploadNow, "SignatureDoesNotMatch"},
		{"upload md5 malformed", func() *http.Request { r := upload(); r.Header.Set("Content-Md5", "4gJE4saaMU4BqNR0kLY+lw"); return r }, "static.johnsmith.net", uploadNow, "InvalidDigest"},
		{"upload md5 too short", func() *http.Request { r := upload(); r.Header.Set("Content-Md5", "4gJE4saaMU4BqNR0kLY="); return r }, "static.johnsmith.net", uploadNow, "InvalidDigest"},
		{"upload md5 empty", func() *http.Request { r := upload(); r.Header.Set("Content-Md5", ""); return r }, "static.johnsmith.net", uploadNow, "InvalidDigest"},
		{"upload two content types", func() *http.Request { r := upload(); r.Header.Add("Content-Type", "text/plain"); return r }, "static.johnsmith.net", uploadNow, "InvalidArgument"},
		{"presigned", pre, "johnsmith", preNow, ""},
		{"presigned and header", func() *http.Request {
			r := pre()
			r.Header.Set("Authorization", get().Header.Get("Authorization"))
			return r
		}, "johnsmith", preNow, "InvalidArgument"},
		{"presigned with v4 params", func() *http.Request { return setQuery(pre(), "Expires=", "X-Amz-Algorithm=AWS4-HMAC-SHA256&Expires=") }, "johnsmith", preNow, "InvalidArgument"},
		{"presigned no expires", func() *http.Request { return setQuery(pre(), "&Expires=1175139620", "") }, "johnsmith", preNow, "AccessDenied"},
		{"presigned no signature", func() *http.Request { return setQuery(pre(), "Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&", "") }, "johnsmith", preNow, "AccessDenied"},
		{"presigned empty access key", func() *http.Request { return setQuery(pre(), "AWSAccessKeyId="+docAccessKey, "AWSAccessKeyId=") }, "johnsmith", preNow, "AccessDenied"},
		{"presigned two expires", func() *http.Request { return setQuery(pre(), "Expires=", "Expires=1&Expires=") }, "johnsmith", preNow, "InvalidArgument"},
		{"presigned bad expires", func() *http.Request { return setQuery(pre(), "Expires=1175139620", "Expires=+1175139620") }, "johnsmith", preNow, "AccessDenied"},
		{"presigned expires changed", func() *http.Request { return setQuery(pre(), "Expires=1175139620", "Expires=1175139621") }, "johnsmith", preNow, "SignatureDoesNotMatch"},
		{"presigned unknown key", func() *http.Request { return setQuery(pre(), docAccessKey, "AKIAOTHER") }, "johnsmith", preNow, "InvalidAccessKeyId"},
		{"presigned forged", func() *http.Request { return setQuery(pre(), "NpgCjnDzrM", "NpgCjnDzrN") }, "johnsmith", preNow, "SignatureDoesNotMatch"},
		{"presigned plus unencoded", func() *http.Request { return setQuery(pre(), "%2B", "+") }, "johnsmith", preNow, ""},
		{"presigned x-amz param added", func() *http.Request { return setQuery(pre(), "Expires=", "x-amz-acl=public-read&Expires=") }, "johnsmith", preNow, "SignatureDoesNotMatch"},
		{"presigned content-type param added", func() *http.Request { return setQuery(pre(), "Expires=", "content-type=text%2Fhtml&Expires=") }, "johnsmith", preNow, "SignatureDoesNotMatch"},
		{"presigned header added", func() *http.Request { r := pre(); r.Header.Set("X-Amz-Acl", "public-read"); return r }, "johnsmith", preNow, "SignatureDoesNotMatch"},
		{"presigned path style", pre, "", preNow, "SignatureDoesNotMatch"},
		{"bad query escape", func() *http.Request { return setQuery(pre(), "Expires=", "versionId=%zz&Expires=") }, "johnsmith", preNow, "InvalidArgument"},
		{"semicolon in query", func() *http.Request { return setQuery(pre(), "Expires=", "versionId=a;b&Expires=") }, "johnsmith", preNow, "InvalidArgument"},
		{"subresource twice", func() *http.Request { return setPath(get(), "/photos/puppy.jpg?acl&acl") }, "johnsmith", getNow, "InvalidArgument"},
		{"ampersand in subresource value", func() *http.Request { return setPath(get(), "/photos/puppy.jpg?versionId=1%26acl") }, "johnsmith", getNow, "InvalidArgument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := verifierAt(tc.now).Verify(tc.req(), tc.vhost)
			if got := codeOf(err); got != tc.code {
				t.Fatalf("err = %v (auth %v), want %q", err, a != nil, tc.code)
			}
			noSecrets(t, err, sig, "NpgCjnDzrM")
		})
	}
}

func TestNilCredentials(t *testing.T) {
	v := &Verifier{Now: func() time.Time { return date("Tue, 27 Mar 2007 19:36:42 +0000") }}
	if _, err := v.Verify(readHTTPFile(t, "testdata/aws/get-object.http"), "johnsmith"); codeOf(err) != "InvalidAccessKeyId" {
		t.Fatalf("err = %v", err)
	}
}

// signAt signs r (path style) for a test with the string to sign given.
func signAt(r *http.Request, sts string) *http.Request {
	r.Header.Set("Authorization", "AWS "+docAccessKey+":"+sign(sts))
	return r
}

// Subresources are signed sorted by name whatever their order in the URL,
// with their values decoded; other parameters are not signed.
func TestSubresources(t *testing.T) {
	const d = "Thu, 05 Mar 2026 10:00:00 GMT"
	now, _ := http.ParseTime(d)
	sts := "PUT\n\n\n" + d + "\n/b/k?partNumber=2&response-content-disposition=attachment; filename=\"a b.txt\"&uploadId=x/y+z=&versionId"
	for _, q := range []string{
		"partNumber=2&uploadId=x%2Fy%2Bz%3D&versionId&response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22",
		"versionId=&uploadId=x/y%2Bz%3D&partNumber=2&response-content-disposition=attachment%3B+filename%3D%22a+b.txt%22",
		"max-keys=1&uploadId=x%2Fy%2Bz%3D&prefix=p&response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22&partNumber=2&versionId&x-id=UploadPart",
	} {
		r := signAt(readHTTP(t, []byte("PUT /b/k?"+q+" HTTP/1.1\nHost: s3.example.com\nDate: "+d+"\n\n")), sts)
		a, err := verifierAt(now).Verify(r, "")
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		if want := []string{"partNumber", "response-content-disposition", "uploadId", "versionId"}; !slices.Equal(a.SignedQuery, want) {
			t.Errorf("%s: SignedQuery = %q", q, a.SignedQuery)
		}
	}
	for _, q := range []string{
		"partNumber=3&uploadId=x%2Fy%2Bz%3D&versionId&response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22",
		"partNumber=2&uploadId=x%2Fy%2Bz%3D&response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22",
		"partNumber=2&uploadId=x%2Fy%2Bz%3D&versionId&response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22&tagging",
		"partNumber=2&uploadid=x%2Fy%2Bz%3D&versionId&response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22",
	} {
		r := signAt(readHTTP(t, []byte("PUT /b/k?"+q+" HTTP/1.1\nHost: s3.example.com\nDate: "+d+"\n\n")), sts)
		if _, err := verifierAt(now).Verify(r, ""); codeOf(err) != "SignatureDoesNotMatch" {
			t.Errorf("%s: err = %v", q, err)
		}
	}
}

// The path is signed as sent: %2F and %252F are not '/', and the bucket
// from the Host header makes the same resource as path style.
func TestPathAsSent(t *testing.T) {
	const d = "Thu, 05 Mar 2026 10:00:00 GMT"
	now, _ := http.ParseTime(d)
	tests := []struct {
		name, target, vhost, resource string
		ok                            bool
	}{
		{"encoded slash", "/b/a%2Fb", "", "/b/a%2Fb", true},
		{"encoded slash is not slash", "/b/a/b", "", "/b/a%2Fb", false},
		{"double encoded", "/b/a%252Fb", "", "/b/a%252Fb", true},
		{"double encoded is not single", "/b/a%2Fb", "", "/b/a%252Fb", false},
		{"unicode", "/b/%E6%97%A5%E6%9C%AC.txt", "", "/b/%E6%97%A5%E6%9C%AC.txt", true},
		{"unicode lower-case escapes", "/b/%e6%97%a5%e6%9c%ac.txt", "", "/b/%E6%97%A5%E6%9C%AC.txt", false},
		{"vhost", "/a%2Fb", "b", "/b/a%2Fb", true},
		{"vhost root", "/", "b", "/b/", true},
		{"vhost root without slash", "/", "b", "/b", false},
		{"service", "/", "", "/", true},
		{"dot segments", "/b/./k", "", "/b/./k", true},
		{"dot segments are not resolved", "/b/k", "", "/b/./k", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := signAt(readHTTP(t, []byte("GET "+tc.target+" HTTP/1.1\nHost: s3.example.com\nDate: "+d+"\n\n")), "GET\n\n\n"+d+"\n"+tc.resource)
			_, err := verifierAt(now).Verify(r, tc.vhost)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// minio-go's SignV2 and PreSignV2 as a third client, through the wire.
func TestMinioGoRoundTrip(t *testing.T) {
	data := []byte("some data")
	sum := md5.Sum(data)
	for _, tc := range []struct {
		name, path string
		vhost      bool
	}{
		// minio-go signs its own encoding of the path: send that one.
		{"path style", "/bucket/dir/a%20b%2Bc~d.txt?uploadId=abc&partNumber=7", false},
		{"vhost", "/dir/key.txt?tagging", true},
		{"unicode", "/bucket/%D0%BA%D0%BB%D1%8E%D1%87", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := "s3.example.com"
			if tc.vhost {
				host = "bucket.s3.example.com"
			}
			req, err := http.NewRequest(http.MethodPut, "http://"+host+tc.path, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("X-Amz-Meta-Note", "n")
			req = signer.SignV2(*req, docAccessKey, docSecret, tc.vhost)
			vb := ""
			if tc.vhost {
				vb = "bucket"
			}
			a, err := (&Verifier{Credentials: docCreds}).Verify(toServer(t, req), vb)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !bytes.Equal(a.ContentMD5, sum[:]) || !slices.Equal(a.SignedHeaders, []string{"content-md5", "content-type", "date", "x-amz-meta-note"}) {
				t.Errorf("auth = %+v", a)
			}
		})
	}
	t.Run("presigned", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, "http://s3.example.com/bucket/a%20b.txt?versionId=v1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req = signer.PreSignV2(*req, docAccessKey, docSecret, 3600, false)
		req.Header.Del("Expires")
		a, err := (&Verifier{Credentials: docCreds}).Verify(toServer(t, req), "")
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if !a.Presigned || !slices.Equal(a.SignedQuery, []string{"versionId"}) || time.Until(a.Expires) > time.Hour {
			t.Errorf("auth = %+v", a)
		}
	})
}

func TestIs(t *testing.T) {
	for target, want := range map[string]bool{
		"/b/k?AWSAccessKeyId=a&Signature=s":    true,
		"/b/k?AWSAccessKeyId=a&Expires=1":      false,
		"/b/k?X-Amz-Signature=a":               false,
		"/b/k?AWSAccessKeyId=a&Signature=s%zz": true,
	} {
		r := readHTTP(t, []byte("GET "+target+" HTTP/1.1\nHost: h\n\n"))
		if Is(r) != want {
			t.Errorf("Is(%s) = %v", target, !want)
		}
	}
	for h, want := range map[string]bool{
		"AWS a:b":                      true,
		"AWS4-HMAC-SHA256 Credential=": false,
		"":                             false,
	} {
		r := readHTTP(t, []byte("GET / HTTP/1.1\nHost: h\nAuthorization: "+h+"\n\n"))
		if Is(r) != want {
			t.Errorf("Is(%q) = %v", h, !want)
		}
	}
}

func TestPresignParams(t *testing.T) {
	p := PresignParams()
	if !slices.Equal(p, []string{"AWSAccessKeyId", "Expires", "Signature"}) {
		t.Fatalf("PresignParams = %q", p)
	}
	p[0] = "x"
	if PresignParams()[0] != "AWSAccessKeyId" {
		t.Fatal("PresignParams shares its slice")
	}
	for _, name := range []string{"acl", "uploadId", "versionId", "response-content-type", "delete", "select-type"} {
		if !IsSubresource(name) {
			t.Errorf("%s not a subresource", name)
		}
	}
	for _, name := range []string{"prefix", "max-keys", "AWSAccessKeyId", "Acl", "x-id"} {
		if IsSubresource(name) {
			t.Errorf("%s a subresource", name)
		}
	}
}

func TestAmzHeaders(t *testing.T) {
	h := http.Header{
		"X-Amz-Meta-B": {" two  spaces ", "x"},
		"x-amz-meta-b": {"raw key"},
		"X-Amz-Meta-A": {"fold\r\n   ed", "a \t\n\tb"},
		"Content-Type": {"t"},
	}
	got := amzHeaders(h, []queryPair{{"x-amz-meta-a", "q"}, {"X-Amz-Meta-C", "c"}, {"other", "o"}}, true)
	want := []header{{"x-amz-meta-a", "fold ed,a b,q"}, {"x-amz-meta-b", "two  spaces,x,raw key"}, {"x-amz-meta-c", "c"}}
	if !slices.Equal(got, want) {
		t.Errorf("amzHeaders = %q, want %q", got, want)
	}
	if got := amzHeaders(h, []queryPair{{"x-amz-meta-a", "q"}}, false); len(got) != 2 || got[0].value != "fold ed,a b" {
		t.Errorf("header-signed amzHeaders = %q", got)
	}
}
