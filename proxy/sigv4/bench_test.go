package sigv4

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// benchBody decodes a 1 MiB body of 64 KiB chunks through 32 KiB reads, as
// io.Copy does.
func benchBody(b *testing.B, a *Auth, enc []byte, size int) {
	buf := make([]byte, 32<<10)
	rd := bytes.NewReader(enc)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rd.Reset(enc)
		body := a.Body(rd)
		n := 0
		for {
			k, err := body.Read(buf)
			n += k
			if err != nil {
				if n != size || err.Error() != "EOF" {
					b.Fatalf("%d bytes, %v", n, err)
				}
				break
			}
		}
	}
}

func BenchmarkBodyStreamingSigned(b *testing.B) {
	data := pattern(1 << 20)
	r, enc := signStreaming(b, data, nil, time.Now().UTC())
	a, err := liveVerifier().Verify(r)
	if err != nil {
		b.Fatal(err)
	}
	benchBody(b, a, enc, len(data))
}

func BenchmarkBodyStreamingSignedTrailer(b *testing.B) {
	data := pattern(1 << 20)
	r, enc := signStreaming(b, data, crc32Trailer(data), time.Now().UTC())
	a, err := liveVerifier().Verify(r)
	if err != nil {
		b.Fatal(err)
	}
	benchBody(b, a, enc, len(data))
}

func BenchmarkBodyUnsignedTrailer(b *testing.B) {
	data := pattern(1 << 20)
	r, enc := signUnsignedTrailer(b, data, crc32Trailer(data))
	a, err := liveVerifier().Verify(r)
	if err != nil {
		b.Fatal(err)
	}
	benchBody(b, a, enc, len(data))
}

func BenchmarkBodyUnsigned(b *testing.B) {
	data := pattern(1 << 20)
	benchBody(b, &Auth{Mode: Unsigned, DecodedLength: int64(len(data))}, data, len(data))
}

// The baseline: copying the raw bytes with the same reads.
func BenchmarkBodyBaseline(b *testing.B) {
	data := pattern(1 << 20)
	buf := make([]byte, 32<<10)
	rd := bytes.NewReader(data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(data)
		for {
			if _, err := rd.Read(buf); err != nil {
				break
			}
		}
	}
}

func BenchmarkVerifyHeader(b *testing.B) {
	req := newClientReq(b, http.MethodPut, "/bucket/dir/object.bin?partNumber=3&uploadId=abc", []byte("x"))
	req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Amz-Meta-Owner", "someone")
	req = signer.SignV4(*req, docAccessKey, docSecret, "", testRegion)
	r := toServer(b, req)
	v := liveVerifier()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}
