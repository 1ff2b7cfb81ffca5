package proxy

import (
	"net/http"
	"testing"
)

func TestOutboundHeaders(t *testing.T) {
	in := http.Header{
		"Authorization":                   {"AWS4-HMAC-SHA256 Credential=x, Signature=secret"},
		"X-Amz-Content-Sha256":            {"STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
		"X-Amz-Date":                      {"20260101T000000Z"},
		"X-Amz-Decoded-Content-Length":    {"5"},
		"X-Amz-Trailer":                   {"x-amz-checksum-crc32"},
		"X-Amz-Security-Token":            {"token"},
		"Content-Encoding":                {"aws-chunked,gzip"},
		"Content-Type":                    {"text/plain"},
		"Content-Md5":                     {"abc"},
		"X-Amz-Meta-Owner":                {"me"},
		"X-Amz-Sdk-Checksum-Algorithm":    {"CRC32"},
		"Connection":                      {"keep-alive"},
		"Cookie":                          {"a=b"},
		"Expect":                          {"100-continue"},
		"X-Forwarded-For":                 {"1.2.3.4"},
		"x-amz-server-side-encryption":    {"AES256"},
		"X-Amz-Copy-Source-If-None-Match": {"*"},
	}
	out := routeOf(opCopyObject).outboundHeaders(in)
	want := map[string]string{
		"Content-Encoding":                "gzip",
		"Content-Type":                    "text/plain",
		"Content-Md5":                     "abc",
		"X-Amz-Meta-Owner":                "me",
		"X-Amz-Sdk-Checksum-Algorithm":    "CRC32",
		"Expect":                          "100-continue",
		"X-Amz-Server-Side-Encryption":    "AES256",
		"X-Amz-Copy-Source-If-None-Match": "*",
	}
	for k, v := range want {
		if got := out.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(out) != len(want) {
		t.Errorf("forwarded %d headers, want %d: %v", len(out), len(want), out)
	}
	if got := routeOf(opPutObject).outboundHeaders(http.Header{"Content-Encoding": {"aws-chunked"}}); len(got) != 0 {
		t.Errorf("Content-Encoding aws-chunked alone should vanish, got %v", got)
	}
}

// routeOf is the table's row of o.
func routeOf(o op) *route {
	for i := range routes {
		if routes[i].op == o {
			return &routes[i]
		}
	}
	panic("no route for " + o.Name)
}

func TestParseCopySource(t *testing.T) {
	cases := []struct {
		in, bucket, key, version, canonical string
		bad                                 bool
	}{
		{in: "b-1/k", bucket: "b-1", key: "k", canonical: "/b-1/k"},
		{in: "/b-1/a%20b%2Bc", bucket: "b-1", key: "a b+c", canonical: "/b-1/a%20b%2Bc"},
		{in: "b-1/a+b", bucket: "b-1", key: "a+b", canonical: "/b-1/a%2Bb"},
		{in: "b-1/%C3%BC/x?versionId=v1", bucket: "b-1", key: "ü/x", version: "v1", canonical: "/b-1/%C3%BC/x?versionId=v1"},
		{in: "b-1/%C3%BC//x", bad: true},
		{in: "b-1/../x", bad: true},
		{in: "b-1", bad: true},
		{in: "b-1/", bad: true},
		{in: "B_1/k", bad: true},
		{in: "b-1/%zz", bad: true},
	}
	for _, tc := range cases {
		cs, err := parseCopySource(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted, want an error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if cs.Bucket != tc.bucket || cs.Key != tc.key || cs.VersionID != tc.version || cs.String() != tc.canonical {
			t.Errorf("%q → %+v %q, want %s %q %s %q", tc.in, cs, cs.String(), tc.bucket, tc.key, tc.version, tc.canonical)
		}
	}
}

func TestKeyPrefix(t *testing.T) {
	for in, want := range map[string]string{"a/b/c": "a/b/", "c": "", "a/": "a/", "": ""} {
		if got := keyPrefix(in); got != want {
			t.Errorf("keyPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}
