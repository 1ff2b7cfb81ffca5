package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

func TestParseTarget(t *testing.T) {
	cases := []struct {
		name, host, path string
		bucket, key      string
		vhost            bool
		errCode          string
	}{
		{name: "service", host: "localhost:8443", path: "/"},
		{name: "bucket", host: "localhost", path: "/backups", bucket: "backups"},
		{name: "bucket-slash", host: "localhost", path: "/backups/", bucket: "backups"},
		{name: "object", host: "localhost", path: "/backups/a/b.txt", bucket: "backups", key: "a/b.txt"},
		{name: "space-and-plus", host: "localhost", path: "/b-1/a%20b+c", bucket: "b-1", key: "a b+c"},
		{name: "percent", host: "localhost", path: "/b-1/100%25", bucket: "b-1", key: "100%"},
		{name: "encoded-slash-stays-in-key", host: "localhost", path: "/b-1/a%2Fb", bucket: "b-1", key: "a/b"},
		{name: "leading-slash-refused", host: "localhost", path: "/b-1//x", errCode: "InvalidArgument"},
		{name: "double-slash-refused", host: "localhost", path: "/b-1/x//y", errCode: "InvalidArgument"},
		{name: "dot-dot-refused", host: "localhost", path: "/b-1/a/../b", errCode: "InvalidArgument"},
		{name: "dot-refused", host: "localhost", path: "/b-1/a/./b", errCode: "InvalidArgument"},
		{name: "encoded-dot-dot-refused", host: "localhost", path: "/b-1/a/%2E%2E/b", errCode: "InvalidArgument"},
		{name: "encoded-double-slash-refused", host: "localhost", path: "/b-1/a%2F%2Fb", errCode: "InvalidArgument"},
		{name: "vhost-leading-slash-refused", host: "b-1.localhost", path: "//x", errCode: "InvalidArgument"},
		{name: "folder-marker", host: "localhost", path: "/b-1/dir/", bucket: "b-1", key: "dir/"},
		{name: "dots-inside-names", host: "localhost", path: "/b-1/a..b/.c/d.", bucket: "b-1", key: "a..b/.c/d."},
		{name: "unicode", host: "localhost", path: "/b-1/%C3%BC%E2%82%AC", bucket: "b-1", key: "ü€"},
		{name: "vhost", host: "backups.localhost:8443", path: "/a/b", bucket: "backups", key: "a/b", vhost: true},
		{name: "vhost-dotted-bucket", host: "my.backups.localhost", path: "/k", bucket: "my.backups", key: "k", vhost: true},
		{name: "vhost-bucket-only", host: "backups.LOCALHOST:1", path: "/", bucket: "backups", vhost: true},
		{name: "vhost-other-domain-is-path-style", host: "s3.example.com", path: "/b-1/k", bucket: "b-1", key: "k"},
		{name: "bucket-with-encoded-slash", host: "localhost", path: "/bu%2Fck/k", errCode: "InvalidBucketName"},
		{name: "bucket-upper", host: "localhost", path: "/Backups/k", errCode: "InvalidBucketName"},
		{name: "bucket-short", host: "localhost", path: "/ab/k", errCode: "InvalidBucketName"},
		{name: "bucket-ip", host: "localhost", path: "/192.168.1.1/k", errCode: "InvalidBucketName"},
		{name: "bucket-dotdot", host: "localhost", path: "/a..b/k", errCode: "InvalidBucketName"},
		{name: "invalid-utf8", host: "localhost", path: "/b-1/%FF", errCode: "InvalidArgument"},
		{name: "key-too-long", host: "localhost", path: "/b-1/" + strings.Repeat("k", 1025), errCode: "KeyTooLongError"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://x"+tc.path, nil)
			r.Host = tc.host
			got, err := parseTarget(r, "localhost")
			if tc.errCode != "" {
				if err == nil || s3err.As(err).Code.Name != tc.errCode {
					t.Fatalf("err = %v, want %s", err, tc.errCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Bucket != tc.bucket || got.Key != tc.key || got.VHost != tc.vhost {
				t.Errorf("got %+v, want bucket %q key %q vhost %v", got, tc.bucket, tc.key, tc.vhost)
			}
		})
	}
}

// TestOperationTable pins DESIGN.md's table: how each request is recognised.
func TestOperationTable(t *testing.T) {
	cases := []struct {
		name, method, path string
		header             map[string]string
		want               string // op name, "" for no route
	}{
		{"ListBuckets", "GET", "/", nil, "ListBuckets"},
		{"ListObjectsV2", "GET", "/b-1?list-type=2&prefix=a", nil, "ListObjectsV2"},
		{"ListObjectsV1", "GET", "/b-1?prefix=a&marker=b&delimiter=%2F", nil, "ListObjects"},
		{"ListObjectsV1-bare", "GET", "/b-1", nil, "ListObjects"},
		{"ListObjectVersions", "GET", "/b-1?versions&prefix=a", nil, "ListObjectVersions"},
		{"GetBucketLocation", "GET", "/b-1?location", nil, "BucketOperation"},
		{"ListMultipartUploads", "GET", "/b-1?uploads", nil, "BucketOperation"},
		{"CreateBucket", "PUT", "/b-1", nil, "BucketOperation"},
		{"DeleteObjects", "POST", "/b-1?delete", nil, "BucketOperation"},
		{"PostForm", "POST", "/b-1", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, "PostObject"},
		{"PutObject", "PUT", "/b-1/k", nil, "PutObject"},
		{"PutObject-x-id", "PUT", "/b-1/k?x-id=PutObject", nil, "PutObject"},
		{"CopyObject", "PUT", "/b-1/k", map[string]string{"X-Amz-Copy-Source": "/b-1/src"}, "CopyObject"},
		{"CreateMultipartUpload", "POST", "/b-1/k?uploads", nil, "CreateMultipartUpload"},
		{"UploadPart", "PUT", "/b-1/k?partNumber=1&uploadId=u", nil, "UploadPart"},
		{"UploadPartCopy", "PUT", "/b-1/k?partNumber=1&uploadId=u", map[string]string{"X-Amz-Copy-Source": "b-1/src"}, "UploadPartCopy"},
		{"CompleteMultipartUpload", "POST", "/b-1/k?uploadId=u", nil, "CompleteMultipartUpload"},
		{"AbortMultipartUpload", "DELETE", "/b-1/k?uploadId=u", nil, "ObjectOperation"},
		{"ListParts", "GET", "/b-1/k?uploadId=u", nil, "ObjectOperation"},
		{"GetObject", "GET", "/b-1/k", nil, "GetObject"},
		{"GetObject-version-part", "GET", "/b-1/k?versionId=v&partNumber=2", nil, "GetObject"},
		{"HeadObject", "HEAD", "/b-1/k", nil, "HeadObject"},
		{"GetObjectAttributes", "GET", "/b-1/k?attributes", nil, "GetObjectAttributes"},
		{"SelectObjectContent", "POST", "/b-1/k?select&select-type=2", nil, "SelectObjectContent"},
		{"PutObjectTagging", "PUT", "/b-1/k?tagging", nil, "ObjectOperation"},
		{"GetObjectAcl", "GET", "/b-1/k?acl", nil, "ObjectOperation"},
		{"DeleteObject", "DELETE", "/b-1/k", nil, "ObjectOperation"},
		{"unknown-POST-on-object", "POST", "/b-1/k", nil, ""},
		{"PATCH", "PATCH", "/b-1/k", nil, ""},
		{"PUT-service", "PUT", "/", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			m := newRouter(func(o op) http.Handler {
				return http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got = o.Name })
			}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got = "" }))
			r := httptest.NewRequest(tc.method, "http://localhost"+tc.path, nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			tg, err := parseTarget(r, "localhost")
			if err != nil {
				t.Fatal(err)
			}
			r = r.WithContext(context.WithValue(r.Context(), infoKey, &reqInfo{target: tg, query: r.URL.Query()}))
			got = "unset"
			m.ServeHTTP(httptest.NewRecorder(), r)
			if got != tc.want {
				t.Errorf("%s %s → %q, want %q", tc.method, tc.path, got, tc.want)
			}
		})
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"/", "/b-1/k", "/b-1//a/../b", "/b-1/%2F%2E%2E", "/bu%2Fck/x", "/b-1/%C3%BC"} {
		f.Add("localhost", s)
		f.Add("b-1.localhost:9", s)
	}
	f.Fuzz(func(t *testing.T, host, path string) {
		r, err := http.NewRequest(http.MethodGet, "http://x/", nil)
		if err != nil {
			t.Skip()
		}
		r.URL.RawPath, r.URL.Path = "", ""
		if err := r.URL.UnmarshalBinary([]byte("http://x" + path)); err != nil || !strings.HasPrefix(path, "/") {
			t.Skip()
		}
		r.Host = host
		tg, err := parseTarget(r, "localhost")
		if err != nil {
			return
		}
		// What the rules match is what goes upstream (invariant 4): the
		// upstream path decodes back to exactly the bucket and key.
		if tg.Bucket != "" && !validBucketName(tg.Bucket) {
			t.Fatalf("invalid bucket %q accepted", tg.Bucket)
		}
		up := objectPath(tg)
		if want := "/" + tg.Bucket + "/" + tg.Key; tg.Bucket != "" && tg.Key != "" && up != want {
			t.Fatalf("upstream path %q, want %q", up, want)
		}
	})
}
