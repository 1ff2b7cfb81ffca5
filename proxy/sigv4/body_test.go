package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"github.com/minio/minio-go/v7/pkg/signer"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func crc32Trailer(data []byte) http.Header {
	var sum [4]byte
	v := crc32.ChecksumIEEE(data)
	sum[0], sum[1], sum[2], sum[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return http.Header{trailerName: {b64(sum[:])}}
}

// trailerName is lower case, as minio-go writes trailer names on the wire.
const trailerName = "x-amz-checksum-crc32"

//lint:ignore SA1008 trailer names are lower case on the wire, as minio-go writes them
func crc32B64(data []byte) string { return crc32Trailer(data)[trailerName][0] }

// minio-go's streaming signers as the real client, for sizes around the
// chunk and hold-back boundaries, read through buffers of many sizes.
func TestMinioGoStreamingRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 7, 8, 9, 1000, 64<<10 - 1, 64 << 10, 64<<10 + 1, 64<<10 + 8, 200_000}
	bufs := []int{1, 3, 8, 9, 100, 32 << 10, 1 << 20}
	kinds := []string{"signed", "signed-trailer", "unsigned-trailer"}
	for _, kind := range kinds {
		for _, size := range sizes {
			data := pattern(size)
			var r *http.Request
			var enc []byte
			switch kind {
			case "signed":
				r, enc = signStreaming(t, data, nil, time.Now().UTC())
			case "signed-trailer":
				r, enc = signStreaming(t, data, crc32Trailer(data), time.Now().UTC())
			case "unsigned-trailer":
				r, enc = signUnsignedTrailer(t, data, crc32Trailer(data))
			}
			a, err := liveVerifier().Verify(r)
			if err != nil {
				t.Fatalf("%s %d: Verify: %v", kind, size, err)
			}
			if a.DecodedLength != int64(size) {
				t.Fatalf("%s %d: DecodedLength %d", kind, size, a.DecodedLength)
			}
			if kind != "signed" && a.Trailer != "x-amz-checksum-crc32" {
				t.Fatalf("%s: Trailer %q", kind, a.Trailer)
			}
			for _, n := range bufs {
				for _, slow := range []bool{false, true} {
					var raw io.Reader = bytes.NewReader(enc)
					if slow {
						raw = iotest.OneByteReader(raw)
					}
					b := a.Body(raw)
					got, err := readBody(b, n)
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("%s %d buf %d slow %v: %d bytes, %v", kind, size, n, slow, len(got), err)
					}
					name, value, ok := b.Checksum()
					if want := crc32B64(data); kind != "signed" && (!ok || name != "x-amz-checksum-crc32" || value != want) {
						t.Fatalf("%s %d: Checksum() = %q %q %v", kind, size, name, value, ok)
					}
				}
			}
		}
	}
}

// Clients differ in how they end the trailer; all of these are accepted.
func TestUnsignedTrailerFormats(t *testing.T) {
	data := []byte("hello world")
	crc := crc32B64(data)
	a := &Auth{Mode: StreamingUnsignedTrailer, DecodedLength: int64(len(data)), Trailer: "x-amz-checksum-crc32"}
	head := "b\r\nhello world\r\n"
	for name, body := range map[string]string{
		"botocore":      head + "0\r\nx-amz-checksum-crc32:" + crc + "\r\n\r\n",
		"minio-go":      head + "0\r\nx-amz-checksum-crc32:" + crc + "\n\r\n\r\n",
		"no final line": head + "0\r\nx-amz-checksum-crc32:" + crc + "\r\n",
		"spaces":        head + "0\r\nx-amz-checksum-crc32: " + crc + " \r\n\r\n",
		"extensions":    "b;foo=bar\r\nhello world\r\n0;x=y\r\nx-amz-checksum-crc32:" + crc + "\r\n\r\n",
		"upper hex":     "B\r\nhello world\r\n0\r\nX-Amz-Checksum-Crc32:" + crc + "\r\n\r\n",
	} {
		got, err := readBody(a.Body(strings.NewReader(body)), 64)
		if err != nil || string(got) != string(data) {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
}

// A corrupted or lying body fails with the exact S3 code, and the held-back
// tail is never delivered.
func TestBodyErrors(t *testing.T) {
	const size = 3*64<<10 + 1000 // three full chunks and a short one
	data := pattern(size)
	sr, signedEnc := signStreaming(t, data, nil, time.Now().UTC())
	tr, trailerEnc := signStreaming(t, data, crc32Trailer(data), time.Now().UTC())
	ur, unsignedEnc := signUnsignedTrailer(t, data, crc32Trailer(data))
	badCRC := http.Header{"x-amz-checksum-crc32": {"AAAAAA=="}}
	br, badSignedEnc := signStreaming(t, data, badCRC, time.Now().UTC())
	bur, badUnsignedEnc := signUnsignedTrailer(t, data, badCRC)

	// Offsets into the data of the second and of the last chunk.
	dataAt := func(enc []byte, header string, nth int) int {
		i := 0
		for ; nth > 0; nth-- {
			j := bytes.Index(enc[i:], []byte(header))
			if j < 0 {
				t.Fatalf("no %q", header)
			}
			i += j + len(header)
		}
		return i + bytes.Index(enc[i:], []byte("\r\n")) + 2
	}
	hdr := bytes.Index(signedEnc, []byte("\r\n")) + 2
	midSigned := dataAt(signedEnc, "10000;", 2) + 100
	lastSigned := dataAt(signedEnc, "3e8;", 1)
	midUnsigned := dataAt(unsignedEnc, "\n10000", 1) + 100
	lastUnsigned := dataAt(unsignedEnc, "\n3e8", 1) + 999

	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return c
	}
	replace := func(b []byte, old, new string) []byte {
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%q not in body", old)
		}
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	}
	lastSig := func(b []byte) string { // the final chunk's signature
		i := bytes.LastIndex(b, []byte("0;chunk-signature="))
		return string(b[i+18 : i+18+64])
	}
	tests := []struct {
		name string
		req  *http.Request
		body []byte
		code string
	}{
		{"signed ok", sr, signedEnc, ""},
		{"signed flip middle chunk", sr, flip(signedEnc, midSigned), "SignatureDoesNotMatch"},
		{"signed flip last chunk", sr, flip(signedEnc, lastSigned+500), "SignatureDoesNotMatch"},
		{"signed flip last byte", sr, flip(signedEnc, lastSigned+999), "SignatureDoesNotMatch"},
		{"signed flip chunk signature", sr, flipHex(signedEnc, hdr-10), "SignatureDoesNotMatch"},
		{"signed flip final signature", sr, replace(signedEnc, lastSig(signedEnc), strings.Repeat("0", 64)), "SignatureDoesNotMatch"},
		{"signed missing signature", sr, replace(signedEnc, "10000;chunk-signature=", "10000;chunk-signatur="), "SignatureDoesNotMatch"},
		{"signed truncated", sr, signedEnc[:len(signedEnc)-200], "IncompleteBody"},
		{"signed truncated in last data", sr, signedEnc[:lastSigned+510], "IncompleteBody"},
		{"signed no final chunk", sr, signedEnc[:lastSigned+1000+2], "IncompleteBody"},
		{"signed size lies long", sr, replace(signedEnc, "3e8;", "3f0;"), "IncompleteBody"},
		{"signed size lies short", sr, replace(signedEnc, "3e8;", "3e0;"), "IncompleteBody"},
		{"signed size not hex", sr, replace(signedEnc, "3e8;", "3g8;"), "InvalidChunkSizeError"},
		{"signed size too big", sr, replace(signedEnc, "3e8;", "140000000;"), "IncompleteBody"},
		{"signed size overflows", sr, replace(signedEnc, "3e8;", "ffffffffffffffffffff;"), "InvalidChunkSizeError"},
		{"signed oversized size line", sr, replace(signedEnc, "10000;", "10000;"+strings.Repeat("x", 5000)), "InvalidChunkSizeError"},
		{"signed garbage after end", sr, append(bytes.Clone(signedEnc), "junk"...), "InvalidChunkSizeError"},
		{"signed trailer ok", tr, trailerEnc, ""},
		{"signed trailer flip middle", tr, flip(trailerEnc, midSigned), "SignatureDoesNotMatch"},
		{"signed trailer bad crc", br, badSignedEnc, "BadDigest"},
		{"signed trailer tampered crc", tr, replace(trailerEnc, "x-amz-checksum-crc32:", "x-amz-checksum-crc32:A"), "InvalidDigest"},
		{"signed trailer other crc name", tr, replace(trailerEnc, "x-amz-checksum-crc32:", "x-amz-checksum-sha99:"), "MalformedTrailerError"},
		{"signed trailer no signature", tr, trailerEnc[:bytes.Index(trailerEnc, []byte("x-amz-trailer-signature"))], "MalformedTrailerError"},
		{"signed trailer flip trailer signature", tr, flipHex(trailerEnc, len(trailerEnc)-10), "SignatureDoesNotMatch"},
		{"unsigned ok", ur, unsignedEnc, ""},
		{"unsigned flip middle", ur, flip(unsignedEnc, midUnsigned), "BadDigest"},
		{"unsigned flip last", ur, flip(unsignedEnc, lastUnsigned), "BadDigest"},
		{"unsigned bad crc", bur, badUnsignedEnc, "BadDigest"},
		{"unsigned trailer missing", ur, replace(unsignedEnc, "x-amz-checksum-crc32:", "\r\nx-amz-checksum-crc32:"), "MalformedTrailerError"},
		{"unsigned trailer not announced", ur, replace(unsignedEnc, "x-amz-checksum-crc32:", "x-amz-checksum-crc32c:"), "MalformedTrailerError"},
		{"unsigned trailer twice", ur, replace(unsignedEnc, "x-amz-checksum-crc32:", "x-amz-checksum-crc32:AAAAAA==\nx-amz-checksum-crc32:"), "MalformedTrailerError"},
		{"unsigned size lies", ur, replace(unsignedEnc, "3e8\r\n", "3e9\r\n"), "IncompleteBody"},
		{"unsigned truncated", ur, unsignedEnc[:len(unsignedEnc)-30], "IncompleteBody"},
		{"unsigned sizes short of declared", ur, replace(unsignedEnc, "3e8\r\n"+string(data[size-1000:])+"\r\n", ""), "IncompleteBody"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := liveVerifier().Verify(tc.req)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			for _, n := range []int{5, 32 << 10} {
				b := a.Body(bytes.NewReader(tc.body))
				got, err := readBody(b, n)
				if codeOf(err) != tc.code {
					t.Fatalf("buf %d: err = %v, want %q", n, err, tc.code)
				}
				if err == nil {
					if !bytes.Equal(got, data) {
						t.Fatalf("body differs")
					}
					continue
				}
				noSecrets(t, err)
				if len(got) >= size {
					t.Fatalf("buf %d: %d bytes delivered before %v", n, len(got), err)
				}
				if _, _, ok := b.Checksum(); ok {
					t.Fatal("Checksum ok after error")
				}
				// The error sticks.
				if k, err2 := b.Read(make([]byte, 10)); k != 0 || codeOf(err2) != tc.code {
					t.Fatalf("second Read = %d, %v", k, err2)
				}
			}
		})
	}
}

// Hex and unsigned bodies: hash and length checks.
func TestPlainBody(t *testing.T) {
	data := pattern(70_000)
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	tests := []struct {
		name   string
		mode   PayloadMode
		declen int64
		body   []byte
		code   string
	}{
		{"hex ok", Hex, int64(len(data)), data, ""},
		{"hex unknown length", Hex, -1, data, ""},
		{"hex flipped", Hex, int64(len(data)), flipAt(data, len(data)-1), "XAmzContentSHA256Mismatch"},
		{"hex flipped unknown length", Hex, -1, flipAt(data, 5), "XAmzContentSHA256Mismatch"},
		{"hex short", Hex, int64(len(data)), data[:len(data)-1], "IncompleteBody"},
		{"hex long", Hex, int64(len(data) - 1), data, "IncompleteBody"},
		{"unsigned ok", Unsigned, int64(len(data)), data, ""},
		{"unsigned short", Unsigned, int64(len(data)), data[:100], "IncompleteBody"},
		{"unsigned long", Unsigned, 10, data, "IncompleteBody"},
		{"unsigned unknown length", Unsigned, -1, data, ""},
	}
	for _, tc := range tests {
		for _, n := range []int{3, 8, 9, 4096, 1 << 20} {
			a := &Auth{Mode: tc.mode, PayloadHash: hexSum, DecodedLength: tc.declen}
			got, err := readBody(a.Body(bytes.NewReader(tc.body)), n)
			if codeOf(err) != tc.code {
				t.Fatalf("%s buf %d: err = %v, want %q", tc.name, n, err, tc.code)
			}
			if err == nil && !bytes.Equal(got, tc.body) {
				t.Fatalf("%s: body differs", tc.name)
			}
			if err != nil && tc.declen >= 0 && int64(len(got)) >= tc.declen {
				t.Fatalf("%s: %d bytes delivered before error", tc.name, len(got))
			}
		}
	}
}

// flipHex changes the hex digit at i into another hex digit (a flip of a
// bit could make it no digit at all, a malformed rather than a wrong
// signature).
func flipHex(b []byte, i int) []byte {
	c := bytes.Clone(b)
	if c[i] == '0' {
		c[i] = '1'
	} else {
		c[i] = '0'
	}
	return c
}

func flipAt(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x80
	return c
}

// A reader that fails mid-body gives IncompleteBody, not its own error.
func TestBodyReadError(t *testing.T) {
	data := pattern(1000)
	a := &Auth{Mode: Unsigned, DecodedLength: 2000}
	_, err := readBody(a.Body(io.MultiReader(bytes.NewReader(data), iotest.ErrReader(io.ErrClosedPipe))), 100)
	if codeOf(err) != "IncompleteBody" {
		t.Fatalf("err = %v", err)
	}
	a = &Auth{Mode: StreamingUnsignedTrailer, DecodedLength: 2000}
	_, err = readBody(a.Body(iotest.ErrReader(io.ErrClosedPipe)), 100)
	if codeOf(err) != "IncompleteBody" {
		t.Fatalf("err = %v", err)
	}
}

// Streaming with a trailer and no x-amz-trailer: an unannounced trailer is
// refused, none at all is fine.
func TestTrailerNotAnnounced(t *testing.T) {
	a := &Auth{Mode: StreamingUnsignedTrailer, DecodedLength: 2}
	if got, err := readBody(a.Body(strings.NewReader("2\r\nhi\r\n0\r\n\r\n")), 64); err != nil || string(got) != "hi" {
		t.Fatalf("%q %v", got, err)
	}
	_, err := readBody(a.Body(strings.NewReader("2\r\nhi\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n")), 64)
	if codeOf(err) != "MalformedTrailerError" {
		t.Fatalf("err = %v", err)
	}
}

// The signed request for a streaming body pins the decoded length: a
// client cannot raise it without breaking the seed signature.
func TestDecodedLengthSigned(t *testing.T) {
	r, _ := signStreaming(t, pattern(10), nil, time.Now().UTC())
	r.Header.Set("X-Amz-Decoded-Content-Length", "11")
	if _, err := liveVerifier().Verify(r); codeOf(err) != "SignatureDoesNotMatch" {
		t.Fatalf("err = %v", err)
	}
}

// A checksum sent up front as a header (UNSIGNED-PAYLOAD with
// x-amz-checksum-crc32, as aws-sdk-go-v2 does for seekable bodies) is
// verified like a trailer: a mismatch is BadDigest, and the tail is held.
func TestHeaderChecksum(t *testing.T) {
	data := pattern(70_000)
	for _, tc := range []struct {
		name, value, code string
		body              []byte
	}{
		{"match", crc32B64(data), "", data},
		{"mismatch", crc32B64(data), "BadDigest", flipAt(data, len(data)-1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newClientReq(t, http.MethodPut, "/bucket/k", tc.body)
			req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
			req.Header.Set("X-Amz-Checksum-Crc32", tc.value)
			req = signer.SignV4(*req, docAccessKey, docSecret, "", testRegion)
			sr := toServer(t, req)
			a, err := liveVerifier().Verify(sr)
			if err != nil {
				t.Fatal(err)
			}
			if a.HeaderChecksum != "x-amz-checksum-crc32" {
				t.Fatalf("HeaderChecksum = %q", a.HeaderChecksum)
			}
			b := a.Body(sr.Body)
			got, err := readBody(b, 4096)
			if codeOf(err) != tc.code {
				t.Fatalf("err = %v, want %q", err, tc.code)
			}
			name, value, ok := b.Checksum()
			if tc.code == "" && (!ok || name != "x-amz-checksum-crc32" || value != tc.value || !bytes.Equal(got, data)) {
				t.Errorf("Checksum() = %q %q %v; %d bytes", name, value, ok, len(got))
			}
			if tc.code != "" && (ok || len(got) >= len(data)) {
				t.Errorf("after a mismatch: checksum ok=%v, %d of %d bytes delivered", ok, len(got), len(data))
			}
		})
	}
	t.Run("with-trailer-refused", func(t *testing.T) {
		req := newClientReq(t, http.MethodPut, "/bucket/k", data)
		req.Header.Set("X-Amz-Checksum-Crc32c", "AAAAAA==")
		req.Header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailer)
		req = signer.SignV4Trailer(*req, docAccessKey, docSecret, "", testRegion, crc32Trailer(data))
		if _, err := liveVerifier().Verify(toServer(t, req)); codeOf(err) != "InvalidRequest" {
			t.Errorf("err = %v, want InvalidRequest", err)
		}
	})
}
