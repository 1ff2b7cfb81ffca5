package sigv2

import (
	"testing"
	"time"
)

func BenchmarkVerifyHeader(b *testing.B) {
	r := readHTTPFile(b, "testdata/aws/upload-cname.http")
	v := verifierAt(date("Tue, 27 Mar 2007 21:06:08 +0000"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r, "static.johnsmith.net"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPresigned(b *testing.B) {
	r := readHTTPFile(b, "testdata/botocore/presigned-get-vhost-token.http")
	v := verifierAt(time.Unix(1772704800, 0))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r, "backups"); err != nil {
			b.Fatal(err)
		}
	}
}
