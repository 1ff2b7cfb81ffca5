package sigv4

import (
	"bytes"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, name := range []string{"get-object.http", "put-object.http", "get-lifecycle.http", "streaming-put.http"} {
		raw, err := os.ReadFile("testdata/aws/" + name)
		if err != nil {
			f.Fatal(err)
		}
		for line := range strings.SplitSeq(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "Authorization: "); ok {
				f.Add(v)
			}
		}
	}
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e/20130524/r/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("a", 64))
	f.Add("AWS4-HMAC-SHA256 ,,,Credential=,SignedHeaders=;;,Signature=")
	f.Add("AWS4-ECDSA-P256-SHA256 Credential=x")
	f.Add("AWS AKIA:sig")
	f.Fuzz(func(t *testing.T, h string) {
		p, err := parseAuthorization(h)
		if err != nil {
			var e *s3err.Error
			if !errors.As(err, &e) {
				t.Fatalf("not an S3 error: %v", err)
			}
			return
		}
		if p.cred.accessKey == "" || p.cred.region == "" || !isDate(p.cred.date) {
			t.Fatalf("accepted bad credential %+v", p.cred)
		}
		host := false
		for _, n := range p.signedHeaders {
			host = host || n == "host"
			if n == "" || strings.ToLower(n) != n {
				t.Fatalf("accepted signed header %q", n)
			}
		}
		if !host {
			t.Fatal("accepted without host")
		}
	})
}

func FuzzParsePresigned(f *testing.F) {
	raw, err := os.ReadFile("testdata/aws/presigned-get.http")
	if err != nil {
		f.Fatal(err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	_, q, _ := strings.Cut(strings.Fields(line)[1], "?")
	f.Add(q)
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=604801")
	f.Add("a=%zz&b=+&&=&X-Amz-Signature")
	f.Fuzz(func(t *testing.T, raw string) {
		q := parseQuery(raw)
		_ = appendCanonicalQuery(nil, q, true)
		p, err := parsePresigned(q)
		if err != nil {
			var e *s3err.Error
			if !errors.As(err, &e) {
				t.Fatalf("not an S3 error: %v", err)
			}
			return
		}
		if p.expires < 0 || p.expires > maxPresignedAge {
			t.Fatalf("accepted expires %d", p.expires)
		}
		if p.date.Format("20060102") != p.cred.date {
			t.Fatalf("accepted date %v with credential date %s", p.date, p.cred.date)
		}
	})
}

// fuzzAuths are the streaming modes the chunk fuzzer decodes with, each
// from a real request signed by minio-go at a fixed time.
func fuzzAuths(f *testing.F) ([]*Auth, [][]byte) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	v := &Verifier{Credentials: docCreds, Now: func() time.Time { return at }}
	var auths []*Auth
	var bodies [][]byte
	data := pattern(1000)
	for _, kind := range []int{0, 1, 2} {
		d := data[:100+kind*50]
		var enc []byte
		var err error
		var a *Auth
		switch kind {
		case 0:
			r, e := signStreaming(f, d, nil, at)
			enc = e
			a, err = v.Verify(r)
		case 1:
			r, e := signStreaming(f, d, crc32Trailer(d), at)
			enc = e
			a, err = v.Verify(r)
		case 2:
			// signUnsignedTrailer signs at time.Now: verify with the live clock.
			r, e := signUnsignedTrailer(f, d, crc32Trailer(d))
			enc = e
			a, err = liveVerifier().Verify(r)
		}
		if err != nil {
			f.Fatal(err)
		}
		auths = append(auths, a)
		bodies = append(bodies, enc)
	}
	return auths, bodies
}

func FuzzChunkedReader(f *testing.F) {
	auths, bodies := fuzzAuths(f)
	for i, enc := range bodies {
		n := uint32(auths[i].DecodedLength)
		f.Add(enc, uint8(i), uint8(0), n)
		f.Add(enc[:len(enc)/2], uint8(i), uint8(7), n)
		f.Add(bytes.Replace(enc, []byte("\r\n"), []byte("\n"), 3), uint8(i), uint8(1), n)
	}
	hello := "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nx-amz-checksum-crc32:" + crc32B64([]byte("hello world")) + "\r\n\r\n"
	f.Add([]byte(hello), uint8(2), uint8(3), uint32(11))
	f.Add([]byte(strings.Replace(hello, "\r\n\r\n", "\n\r\n\r\n", 1)), uint8(2), uint8(9), uint32(11))
	f.Add([]byte("ffffffffffffffff\r\n"), uint8(2), uint8(3), uint32(1<<31))
	f.Add([]byte("0\r\n\r\n\r\n\r\n"), uint8(2), uint8(200), uint32(0))
	f.Fuzz(func(t *testing.T, body []byte, which, bufSel uint8, declen uint32) {
		a := *auths[int(which)%len(auths)]
		if a.Mode == StreamingUnsignedTrailer {
			// No signature to forge: let the fuzzer pick the length too.
			a.DecodedLength = int64(declen)
		}
		b := a.Body(bytes.NewReader(body))
		buf := make([]byte, 1+int(bufSel)%70)
		var got []byte
		for {
			n, err := b.Read(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("Read returned %d", n)
			}
			got = append(got, buf[:n]...)
			if int64(len(got)) > a.DecodedLength {
				t.Fatalf("%d bytes returned, declared %d", len(got), a.DecodedLength)
			}
			if err == io.EOF {
				if int64(len(got)) != a.DecodedLength {
					t.Fatalf("EOF after %d bytes, declared %d", len(got), a.DecodedLength)
				}
				if a.Trailer != "" {
					name, value, ok := b.Checksum()
					if !ok || name != a.Trailer || value != crc32B64(got) {
						t.Fatalf("EOF with checksum %q %q %v, data crc %08x", name, value, ok, crc32.ChecksumIEEE(got))
					}
				}
				return
			}
			if err != nil {
				var e *s3err.Error
				if !errors.As(err, &e) {
					t.Fatalf("not an S3 error: %v", err)
				}
				if int64(len(got)) >= a.DecodedLength && a.DecodedLength > 0 {
					t.Fatalf("all %d bytes delivered before %v", len(got), err)
				}
				return
			}
		}
	})
}
