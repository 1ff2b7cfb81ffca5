package proxy

import (
	"context"
	"fmt"
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

// TestOperationTable pins DESIGN.md's table: how each request is
// recognised, and what is refused because it is recognised only in part
// (issue 11: subresources on methods S3 does not define for them, copies
// disguised as subresources, unknown parameters and headers).
func TestOperationTable(t *testing.T) {
	copySrc := map[string]string{"X-Amz-Copy-Source": "/b-1/src"}
	cases := []struct {
		name, method, path string
		header             map[string]string
		want               string // op name; "" for no route
		refused            string // the S3 error code checkRequest answers, "" when served
	}{
		{"ListBuckets", "GET", "/", nil, "ListBuckets", ""},
		{"ListObjectsV2", "GET", "/b-1?list-type=2&prefix=a", nil, "ListObjectsV2", ""},
		{"ListObjectsV2-list-type-3", "GET", "/b-1?list-type=3", nil, "ListObjects", "InvalidArgument"},
		{"ListObjectsV1", "GET", "/b-1?prefix=a&marker=b&delimiter=%2F", nil, "ListObjects", ""},
		{"ListObjectsV1-bare", "GET", "/b-1", nil, "ListObjects", ""},
		{"ListObjectsV1-unknown-param", "GET", "/b-1?prefix=a&metadata=true", nil, "ListObjects", "InvalidArgument"},
		{"ListObjectsV1-repeated-param", "GET", "/b-1?prefix=a&prefix=b", nil, "ListObjects", "InvalidArgument"},
		{"ListObjectsV2-minio-metadata", "GET", "/b-1?list-type=2&metadata=true", nil, "ListObjectsV2", "InvalidArgument"},
		{"ListObjectVersions", "GET", "/b-1?versions&prefix=a", nil, "ListObjectVersions", ""},
		{"GetBucketLocation", "GET", "/b-1?location", nil, "GetBucketLocation", ""},
		{"ListMultipartUploads", "GET", "/b-1?uploads", nil, "ListMultipartUploads", ""},
		{"ListenBucketNotification-minio", "GET", "/b-1?events=s3:ObjectCreated:*", nil, "ListObjects", "InvalidArgument"},
		{"CreateBucket", "PUT", "/b-1", nil, "CreateBucket", ""},
		{"CreateBucket-unknown-header", "PUT", "/b-1", map[string]string{"X-Amz-Meta-X": "y"}, "CreateBucket", "InvalidArgument"},
		{"PutBucketPolicy", "PUT", "/b-1?policy", nil, "PutBucketPolicy", ""},
		{"DeleteBucketPublicAccessBlock", "DELETE", "/b-1?publicAccessBlock", nil, "DeletePublicAccessBlock", ""},
		{"DeleteObjects", "POST", "/b-1?delete", nil, "DeleteObjects", ""},
		{"PostForm", "POST", "/b-1", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, "PostObject", ""},
		{"POST-bucket-not-form", "POST", "/b-1", nil, "", ""},
		{"PutObject", "PUT", "/b-1/k", nil, "PutObject", ""},
		{"PutObject-x-id", "PUT", "/b-1/k?x-id=PutObject", nil, "PutObject", ""},
		{"PutObject-meta", "PUT", "/b-1/k", map[string]string{"X-Amz-Meta-Owner": "me", "X-Amz-Storage-Class": "STANDARD"}, "PutObject", ""},
		{"PutObject-restore", "PUT", "/b-1/k?restore", nil, "PutObject", "InvalidArgument"},
		{"PutObject-torrent", "PUT", "/b-1/k?torrent", nil, "PutObject", "InvalidArgument"},
		{"PutObject-versionId", "PUT", "/b-1/k?versionId=v", nil, "PutObject", "InvalidArgument"},
		{"PutObject-snowball", "PUT", "/b-1/k.tar", map[string]string{"X-Amz-Meta-Snowball-Auto-Extract": "true"}, "PutObject", "InvalidArgument"},
		{"PutObject-minio-snowball-prefix", "PUT", "/b-1/k.tar", map[string]string{"X-Amz-Meta-Minio-Snowball-Prefix": "x"}, "PutObject", "InvalidArgument"},
		{"PutObject-append", "PUT", "/b-1/k", map[string]string{"X-Amz-Write-Offset-Bytes": "0"}, "PutObject", "InvalidArgument"},
		{"PutObject-unknown-amz", "PUT", "/b-1/k", map[string]string{"X-Amz-Foo": "1"}, "PutObject", "InvalidArgument"},
		{"PutObject-copy-directive-without-copy", "PUT", "/b-1/k", map[string]string{"X-Amz-Metadata-Directive": "REPLACE"}, "PutObject", "InvalidArgument"},
		{"CopyObject", "PUT", "/b-1/k", copySrc, "CopyObject", ""},
		{"CopyObject-as-retention", "PUT", "/b-1/k?retention", copySrc, "PutObjectRetention", "InvalidArgument"},
		{"CopyObject-as-legal-hold", "PUT", "/b-1/k?legal-hold", copySrc, "PutObjectLegalHold", "InvalidArgument"},
		{"CopyObject-as-restore", "PUT", "/b-1/k?restore", copySrc, "CopyObject", "InvalidArgument"},
		{"CopyObject-as-tagging", "PUT", "/b-1/k?tagging", copySrc, "PutObjectTagging", "InvalidArgument"},
		{"CopyObject-as-acl", "PUT", "/b-1/k?acl", copySrc, "PutObjectAcl", "InvalidArgument"},
		{"CreateMultipartUpload", "POST", "/b-1/k?uploads", nil, "CreateMultipartUpload", ""},
		{"CreateMultipartUpload-copy", "POST", "/b-1/k?uploads", copySrc, "CreateMultipartUpload", "InvalidArgument"},
		{"UploadPart", "PUT", "/b-1/k?partNumber=1&uploadId=u", nil, "UploadPart", ""},
		{"UploadPart-meta", "PUT", "/b-1/k?partNumber=1&uploadId=u", map[string]string{"X-Amz-Meta-A": "b"}, "UploadPart", "InvalidArgument"},
		{"UploadPartCopy", "PUT", "/b-1/k?partNumber=1&uploadId=u", map[string]string{"X-Amz-Copy-Source": "b-1/src"}, "UploadPartCopy", ""},
		{"CompleteMultipartUpload", "POST", "/b-1/k?uploadId=u", nil, "CompleteMultipartUpload", ""},
		{"AbortMultipartUpload", "DELETE", "/b-1/k?uploadId=u", nil, "AbortMultipartUpload", ""},
		{"ListParts", "GET", "/b-1/k?uploadId=u", nil, "ListParts", ""},
		{"GetObject", "GET", "/b-1/k", nil, "GetObject", ""},
		{"GetObject-version-part", "GET", "/b-1/k?versionId=v&partNumber=2", nil, "GetObject", ""},
		{"GetObject-response-headers", "GET", "/b-1/k?response-content-type=text/plain", nil, "GetObject", ""},
		{"GetObject-restore", "GET", "/b-1/k?restore", nil, "GetObject", "InvalidArgument"},
		{"GetObject-torrent", "GET", "/b-1/k?torrent", nil, "GetObject", "InvalidArgument"},
		{"GetObject-lambda", "GET", "/b-1/k?lambdaArn=x", nil, "GetObject", "InvalidArgument"},
		{"GetObject-copy-source", "GET", "/b-1/k", copySrc, "GetObject", "InvalidArgument"},
		{"HeadObject", "HEAD", "/b-1/k", nil, "HeadObject", ""},
		{"HeadObject-acl", "HEAD", "/b-1/k?acl", nil, "HeadObject", "InvalidArgument"},
		{"GetObjectAttributes", "GET", "/b-1/k?attributes", map[string]string{"X-Amz-Object-Attributes": "ETag"}, "GetObjectAttributes", ""},
		{"SelectObjectContent", "POST", "/b-1/k?select&select-type=2", nil, "SelectObjectContent", ""},
		{"SelectObjectContent-type-1", "POST", "/b-1/k?select&select-type=1", nil, "", ""},
		{"PutObjectTagging", "PUT", "/b-1/k?tagging", nil, "PutObjectTagging", ""},
		{"GetObjectAcl", "GET", "/b-1/k?acl", nil, "GetObjectAcl", ""},
		{"DeleteObjectAcl", "DELETE", "/b-1/k?acl", nil, "DeleteObject", "InvalidArgument"},
		{"DeleteObject", "DELETE", "/b-1/k", nil, "DeleteObject", ""},
		{"DeleteObject-retention", "DELETE", "/b-1/k?retention", nil, "DeleteObject", "InvalidArgument"},
		{"RestoreObject", "POST", "/b-1/k?restore", nil, "", ""},
		{"POST-object-retention", "POST", "/b-1/k?retention", nil, "", ""},
		{"unknown-POST-on-object", "POST", "/b-1/k", nil, "", ""},
		{"PATCH", "PATCH", "/b-1/k", nil, "", ""},
		{"PUT-service", "PUT", "/", nil, "", ""},
		{"POST-service-sts", "POST", "/?Action=AssumeRole", nil, "", ""},
		{"ListBuckets-unknown", "GET", "/?acl", nil, "ListBuckets", "InvalidArgument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got *route
			m := newRouter(func(rt *route) http.Handler {
				return http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got = rt })
			}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got = nil }))
			r := httptest.NewRequest(tc.method, "http://localhost"+tc.path, nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			tg, err := parseTarget(r, "localhost")
			if err != nil {
				t.Fatal(err)
			}
			q := r.URL.Query()
			r = r.WithContext(context.WithValue(r.Context(), infoKey, &reqInfo{target: tg, query: q}))
			m.ServeHTTP(httptest.NewRecorder(), r)
			name := ""
			if got != nil {
				name = got.op.Name
			}
			if name != tc.want {
				t.Fatalf("%s %s → %q, want %q", tc.method, tc.path, name, tc.want)
			}
			if got == nil {
				return
			}
			err = got.checkRequest(q, r.Header)
			code := ""
			if err != nil {
				code = s3err.As(err).Code.Name
			}
			if code != tc.refused {
				t.Errorf("%s %s (%s): checkRequest = %v, want %q", tc.method, tc.path, name, err, tc.refused)
			}
		})
	}
}

// TestRouteTableShape guards the table itself: every row's op is named,
// no two rows with the same level and method take the same
// subresources (the second could never match), and a row without
// subresources comes after every row of its level and method that has
// some (else it would take their requests); a form upload's row, told by
// its Content-Type, comes before them all on purpose.
func TestRouteTableShape(t *testing.T) {
	seen := map[string]bool{}
	for i, rt := range routes {
		if rt.op.Name == "" {
			t.Errorf("row %d has no name", i)
		}
		id := fmt.Sprintf("%d %s %v copy=%v form=%v %v", rt.level, rt.method, rt.sub, rt.copy, rt.form, rt.values)
		if seen[id] {
			t.Errorf("row %d (%s) repeats %s", i, rt.op.Name, id)
		}
		seen[id] = true
		if len(rt.sub) > 0 || rt.copy || rt.form {
			continue // a form upload is told by its Content-Type, and comes first
		}
		for _, later := range routes[i+1:] {
			if later.level == rt.level && later.method == rt.method && (len(later.sub) > 0 || later.copy) {
				t.Errorf("%s (no subresource) comes before %s", rt.op.Name, later.op.Name)
			}
		}
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
