package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

const (
	// holdLen is how many decoded bytes Body holds back until the whole
	// body is verified, so that no upstream commits an unverified body.
	holdLen = 8
	// bufSize is the bufio size for aws-chunked bodies; it bounds the
	// length of a chunk header or trailer line.
	bufSize = 4096
	// maxTrailerLines bounds the lines after the final chunk.
	maxTrailerLines = 16
	// maxEmptyReads is how many (0, nil) reads are borne in a row.
	maxEmptyReads = 100

	chunkSigExt      = "chunk-signature="
	trailerSigName   = "x-amz-trailer-signature"
	payloadAlgorithm = "AWS4-HMAC-SHA256-PAYLOAD"
	trailerAlgorithm = "AWS4-HMAC-SHA256-TRAILER"
)

var emptySum = sha256.Sum256(nil)

type bodyState uint8

const (
	stHeader  bodyState = iota // next: a chunk header line
	stData                     // inside a chunk's data
	stDataEnd                  // next: the CRLF after a chunk's data
	stTrailer                  // next: trailer lines after the final chunk
	stEnd                      // framing done: drain to EOF, check the checksum
	stDone                     // everything verified
)

// Body decodes and verifies a request body as it streams; see Auth.Body.
type Body struct {
	a         *Auth
	raw       io.Reader
	br        *bufio.Reader // aws-chunked modes only
	declen    int64
	produced  int64 // decoded bytes read so far
	chunkLeft int64
	state     bodyState
	rawEOF    bool
	empties   int
	err       error
	verified  bool

	// The held-back tail: win[:tailN] before verification, then
	// win[tailOff:tailN] is what is left to deliver.
	win     [2 * holdLen]byte
	tailN   int
	tailOff int

	sha      hash.Hash // Hex: the whole body; signed chunked: one chunk
	mac      hash.Hash // HMAC with the signing key; signed chunked only
	prevSig  [32]byte
	chunkSig [32]byte
	sum      [64]byte
	// sts is the variable end of a chunk's string to sign:
	// previous-signature \n sha256("") \n sha256(data), all hex.
	sts    [64 + 1 + 64 + 1 + 64]byte
	prefix []byte // "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n"

	ck      hash.Hash // the announced checksum: trailer or header
	ckName  string
	ckValue string
	ckOK    bool
}

// Body wraps the raw request body. For streaming modes it decodes
// aws-chunked and verifies every chunk signature (StreamingSigned*), the
// trailer checksum and the trailer signature (…TRAILER modes); for Hex it
// computes sha256 and compares at the end; for Unsigned it passes the body
// through. In every mode the length must match DecodedLength when known.
//
// Read returns io.EOF only after all verification succeeded; any failure is
// a non-EOF *s3err.Error, returned again by every later Read. The last
// bytes of the body are held back until then. When DecodedLength is
// unknown (-1, Hex or Unsigned without Content-Length) nothing marks the
// end of the body but EOF, so the caller must not commit before EOF.
func (a *Auth) Body(raw io.Reader) *Body {
	if raw == nil {
		raw = http.NoBody
	}
	b := &Body{a: a, raw: raw, declen: a.DecodedLength}
	if a.HeaderChecksum != "" {
		b.ck, b.ckName, b.ckValue = newChecksum(a.HeaderChecksum), a.HeaderChecksum, a.headerCkValue
	}
	switch a.Mode {
	case Hex:
		b.sha = sha256.New()
	case Unsigned:
	default:
		b.br = bufio.NewReaderSize(raw, bufSize)
		if a.Trailer != "" {
			b.ck, b.ckName = newChecksum(a.Trailer), a.Trailer
		}
		if a.Mode == StreamingSigned || a.Mode == StreamingSignedTrailer {
			b.sha = sha256.New()
			b.mac = hmac.New(sha256.New, a.signingKey[:])
			b.prevSig = a.seed
			b.prefix = make([]byte, 0, len(payloadAlgorithm)+len(a.date)+len(a.scope)+3)
			b.prefix = append(b.prefix, payloadAlgorithm+"\n"...)
			b.prefix = append(b.prefix, a.date...)
			b.prefix = append(b.prefix, '\n')
			b.prefix = append(b.prefix, a.scope...)
			b.prefix = append(b.prefix, '\n')
			b.sts[64] = '\n'
			copy(b.sts[65:129], emptySHA256Hex)
			b.sts[129] = '\n'
		}
	}
	return b
}

// Checksum returns the verified trailer checksum (header name, base64
// value) once Read returned io.EOF; ok is false before or if there is none.
func (b *Body) Checksum() (name, value string, ok bool) {
	if !b.verified || !b.ckOK {
		return "", "", false
	}
	return b.ckName, b.ckValue, true
}

// Read reads decoded, verified body data; see Auth.Body.
func (b *Body) Read(p []byte) (int, error) {
	for {
		if b.err != nil {
			return 0, b.err
		}
		if b.verified {
			if b.tailOff < b.tailN {
				n := copy(p, b.win[b.tailOff:b.tailN])
				b.tailOff += n
				return n, nil
			}
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		if len(p) > holdLen {
			// Held tail first, then new data; hold the new last bytes.
			t := copy(p, b.win[:b.tailN])
			n, err := b.fill(p[t:])
			c := t + n
			if err == io.EOF {
				b.verified = true
				b.tailN, b.tailOff = 0, 0
				if c > 0 {
					return c, nil
				}
				continue
			}
			if err != nil {
				return 0, b.fail(err)
			}
			if c > holdLen {
				d := c - holdLen
				copy(b.win[:], p[d:c])
				b.tailN = holdLen
				return d, nil
			}
			copy(b.win[:], p[:c])
			b.tailN = c
			continue
		}
		// A small p: go through the window.
		n, err := b.fill(b.win[b.tailN : b.tailN+len(p)])
		c := b.tailN + n
		if err == io.EOF {
			b.verified = true
			b.tailN, b.tailOff = c, 0
			continue
		}
		if err != nil {
			return 0, b.fail(err)
		}
		if c > holdLen {
			d := c - holdLen
			copy(p, b.win[:d])
			copy(b.win[:], b.win[d:c])
			b.tailN = holdLen
			return d, nil
		}
		b.tailN = c
	}
}

// fail records err (always an *s3err.Error) and drops the held tail.
func (b *Body) fail(err error) error {
	var e *s3err.Error
	if !errors.As(err, &e) {
		e = s3err.New(s3err.InternalError, "")
	}
	b.err = e
	b.tailN, b.tailOff = 0, 0
	clear(b.win[:])
	return e
}

// fill reads decoded data into dst (len(dst) > 0). It returns io.EOF only
// once everything is verified, and makes progress or fails.
func (b *Body) fill(dst []byte) (int, error) {
	if b.br == nil {
		return b.fillPlain(dst)
	}
	return b.fillChunked(dst)
}

func errIncomplete(msg string) error {
	return s3err.New(s3err.IncompleteBody, "%s", msg)
}

// readErr maps an error of the raw body to an S3 error.
func readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errIncomplete("The request body ended early.")
	}
	return errIncomplete("Reading the request body failed.")
}

// progress counts reads that returned nothing, failing after too many.
func (b *Body) progress(n int) error {
	if n > 0 {
		b.empties = 0
		return nil
	}
	b.empties++
	if b.empties > maxEmptyReads {
		return errIncomplete("Reading the request body made no progress.")
	}
	return nil
}

// fillPlain reads a Hex or Unsigned body.
func (b *Body) fillPlain(dst []byte) (int, error) {
	if b.state == stDone {
		return 0, io.EOF
	}
	if b.declen >= 0 && b.produced == b.declen || b.rawEOF {
		if err := b.finishPlain(); err != nil {
			return 0, err
		}
		b.state = stDone
		return 0, io.EOF
	}
	if b.declen >= 0 {
		if rem := b.declen - b.produced; int64(len(dst)) > rem {
			dst = dst[:rem]
		}
	}
	n, err := b.raw.Read(dst)
	if n > 0 {
		if b.sha != nil {
			b.sha.Write(dst[:n])
		}
		if b.ck != nil {
			b.ck.Write(dst[:n])
		}
		b.produced += int64(n)
	}
	switch {
	case err == io.EOF:
		if b.declen >= 0 && b.produced < b.declen {
			return 0, errIncomplete("You did not provide the number of bytes specified by the Content-Length HTTP header.")
		}
		b.rawEOF = true
	case err != nil:
		return 0, readErr(err)
	}
	if err := b.progress(n); err != nil && !b.rawEOF {
		return 0, err
	}
	return n, nil
}

// finishPlain checks that the raw body ends here and that its hash matches.
func (b *Body) finishPlain() error {
	var one [1]byte
	for i := 0; !b.rawEOF; i++ {
		n, err := b.raw.Read(one[:])
		switch {
		case n > 0:
			return errIncomplete("The request body is longer than its Content-Length.")
		case err == io.EOF:
			b.rawEOF = true
		case err != nil:
			return readErr(err)
		case i >= maxEmptyReads:
			return errIncomplete("Reading the request body made no progress.")
		}
	}
	if b.sha != nil {
		hex.Encode(b.sts[:64], b.sha.Sum(b.sum[:0]))
		if string(b.sts[:64]) != b.a.PayloadHash {
			return s3err.New(s3err.XAmzContentSHA256Mismatch, "")
		}
	}
	return b.checkSum()
}

// fillChunked reads an aws-chunked body.
func (b *Body) fillChunked(dst []byte) (int, error) {
	for {
		switch b.state {
		case stHeader:
			if err := b.readChunkHeader(); err != nil {
				return 0, err
			}
		case stData:
			want := dst
			if int64(len(want)) > b.chunkLeft {
				want = want[:b.chunkLeft]
			}
			n, err := b.br.Read(want)
			if n > 0 {
				data := want[:n]
				if b.mac != nil {
					b.sha.Write(data)
				}
				if b.ck != nil {
					b.ck.Write(data)
				}
				b.chunkLeft -= int64(n)
				b.produced += int64(n)
				if b.chunkLeft == 0 {
					b.state = stDataEnd
				}
				b.empties = 0
				return n, nil
			}
			if err != nil {
				return 0, readErr(err)
			}
			if err := b.progress(n); err != nil {
				return 0, err
			}
		case stDataEnd:
			if err := b.readDataEnd(); err != nil {
				return 0, err
			}
			if b.mac != nil {
				if err := b.verifyChunk(b.sha.Sum(b.sum[:0])); err != nil {
					return 0, err
				}
			}
			b.state = stHeader
		case stTrailer:
			if err := b.readTrailer(); err != nil {
				return 0, err
			}
			b.state = stEnd
		case stEnd:
			if err := b.finishChunked(); err != nil {
				return 0, err
			}
			b.state = stDone
			return 0, io.EOF
		default:
			return 0, io.EOF
		}
	}
}

// readLine reads one line of at most bufSize bytes, without its "\n" or
// "\r\n". It returns io.EOF alone only at a clean end of the body.
func (b *Body) readLine(code s3err.Code) ([]byte, error) {
	line, err := b.br.ReadSlice('\n')
	switch {
	case err == nil:
	case err == bufio.ErrBufferFull:
		return nil, s3err.New(code, "A line of the aws-chunked body is too long.")
	case err == io.EOF && len(line) == 0:
		return nil, io.EOF
	default:
		return nil, readErr(err)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseChunkSize parses a hex chunk size of at most 15 digits.
func parseChunkSize(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range s {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// readChunkHeader reads "hex-size[;ext...]" and starts the chunk.
func (b *Body) readChunkHeader() error {
	line, err := b.readLine(s3err.InvalidChunkSizeError)
	if err == io.EOF {
		return errIncomplete("The request body ended before its final chunk.")
	}
	if err != nil {
		return err
	}
	sizeField, ext, hasExt := bytes.Cut(line, []byte{';'})
	size, ok := parseChunkSize(sizeField)
	if !ok {
		return s3err.New(s3err.InvalidChunkSizeError, "A chunk size of the aws-chunked body is not valid.")
	}
	if b.mac != nil {
		if !hasExt || len(ext) != len(chunkSigExt)+64 || string(ext[:len(chunkSigExt)]) != chunkSigExt {
			return s3err.New(s3err.SignatureDoesNotMatch, "A chunk of the aws-chunked body has no valid chunk-signature.")
		}
		if _, err := hex.Decode(b.chunkSig[:], ext[len(chunkSigExt):]); err != nil {
			return s3err.New(s3err.SignatureDoesNotMatch, "A chunk of the aws-chunked body has no valid chunk-signature.")
		}
	}
	if size > b.declen-b.produced {
		return errIncomplete("The chunk sizes add up to more than x-amz-decoded-content-length.")
	}
	if size > 0 {
		b.chunkLeft = size
		if b.mac != nil {
			b.sha.Reset()
		}
		b.state = stData
		return nil
	}
	// The final, empty chunk.
	if b.produced != b.declen {
		return errIncomplete("The chunk sizes add up to less than x-amz-decoded-content-length.")
	}
	if b.mac != nil {
		if err := b.verifyChunk(emptySum[:]); err != nil {
			return err
		}
	}
	if b.a.Mode == StreamingSigned {
		b.state = stEnd
	} else {
		b.state = stTrailer
	}
	return nil
}

// readDataEnd reads the CRLF (or a lone LF) after a chunk's data.
func (b *Body) readDataEnd() error {
	c, err := b.br.ReadByte()
	if err != nil {
		return readErr(err)
	}
	if c == '\r' {
		if c, err = b.br.ReadByte(); err != nil {
			return readErr(err)
		}
	}
	if c != '\n' {
		return errIncomplete("A chunk of the aws-chunked body is longer than its size says.")
	}
	return nil
}

// verifyChunk checks the current chunk signature against the data hash
// and moves the chain on.
func (b *Body) verifyChunk(dataHash []byte) error {
	hex.Encode(b.sts[0:64], b.prevSig[:])
	hex.Encode(b.sts[130:194], dataHash)
	b.mac.Reset()
	b.mac.Write(b.prefix)
	b.mac.Write(b.sts[:])
	if !hmac.Equal(b.mac.Sum(b.sum[:0]), b.chunkSig[:]) {
		return s3err.New(s3err.SignatureDoesNotMatch, "A chunk signature of the aws-chunked body does not match.")
	}
	b.prevSig = b.chunkSig
	return nil
}

// readTrailer reads the trailer lines after the final chunk: the announced
// checksum and, for the signed variant, x-amz-trailer-signature. Writers
// differ in line ends and blank lines, so any of "\r\n" or "\n" ends a
// line; blank lines before the signature are skipped; the unsigned
// variant ends at the first blank line.
func (b *Body) readTrailer() error {
	signed := b.a.Mode == StreamingSignedTrailer
	malformed := s3err.MalformedTrailerError
	var (
		tline [128]byte // the trailer line as sent, for the signature
		tlen  int
		have  bool
	)
	for i := 0; ; i++ {
		if i >= maxTrailerLines {
			return s3err.New(malformed, "The trailer has too many lines.")
		}
		line, err := b.readLine(malformed)
		if err == io.EOF {
			if signed {
				return s3err.New(malformed, "The trailer has no x-amz-trailer-signature.")
			}
			break
		}
		if err != nil {
			return err
		}
		if len(line) == 0 {
			if signed {
				continue
			}
			break
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return s3err.New(malformed, "A trailer line is not of the form name:value.")
		}
		k = bytes.TrimSpace(k)
		v = bytes.TrimSpace(v)
		if signed && asciiEqualFold(k, trailerSigName) {
			if _, err := parseSignature(string(v), malformed); err != nil {
				return err
			}
			hex.Decode(b.chunkSig[:], v)
			return b.verifyTrailer(tline[:tlen])
		}
		if have {
			return s3err.New(malformed, "The trailer holds more than one header.")
		}
		if b.a.Trailer == "" || !asciiEqualFold(k, b.a.Trailer) {
			return s3err.New(malformed, "The trailer %q was not announced in x-amz-trailer.", truncate(string(k)))
		}
		want, _ := ChecksumLen(b.a.Trailer)
		if len(v) != want {
			return s3err.New(s3err.InvalidDigest, "The value of the %s trailer is not valid.", b.a.Trailer)
		}
		if _, err := base64.StdEncoding.DecodeString(string(v)); err != nil {
			return s3err.New(s3err.InvalidDigest, "The value of the %s trailer is not valid.", b.a.Trailer)
		}
		if len(line)+1 > len(tline) {
			return s3err.New(malformed, "A trailer line is too long.")
		}
		tlen = copy(tline[:], line)
		tline[tlen] = '\n'
		tlen++
		b.ckValue = string(v)
		have = true
	}
	if b.a.Trailer != "" && !have {
		return s3err.New(malformed, "The trailer announced in x-amz-trailer is missing.")
	}
	return nil
}

// verifyTrailer checks x-amz-trailer-signature over the trailer bytes.
func (b *Body) verifyTrailer(trailer []byte) error {
	if b.a.Trailer != "" && len(trailer) == 0 {
		return s3err.New(s3err.MalformedTrailerError, "The trailer announced in x-amz-trailer is missing.")
	}
	th := sha256.Sum256(trailer)
	hex.Encode(b.sts[0:64], b.prevSig[:])
	b.mac.Reset()
	b.mac.Write([]byte(trailerAlgorithm + "\n"))
	b.mac.Write([]byte(b.a.date))
	b.mac.Write([]byte{'\n'})
	b.mac.Write([]byte(b.a.scope))
	b.mac.Write([]byte{'\n'})
	b.mac.Write(b.sts[0:64])
	b.mac.Write([]byte{'\n'})
	hex.Encode(b.sts[130:194], th[:])
	b.mac.Write(b.sts[130:194])
	if !hmac.Equal(b.mac.Sum(b.sum[:0]), b.chunkSig[:]) {
		return s3err.New(s3err.SignatureDoesNotMatch, "The trailer signature of the aws-chunked body does not match.")
	}
	b.prevSig = b.chunkSig
	return nil
}

// finishChunked checks that only line ends follow the framing, then the
// trailer checksum.
func (b *Body) finishChunked() error {
	for i := 0; ; i++ {
		c, err := b.br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return readErr(err)
		}
		if c != '\r' && c != '\n' || i >= 4 {
			if b.a.Mode == StreamingSigned {
				return s3err.New(s3err.InvalidChunkSizeError, "Unexpected data after the final chunk of the aws-chunked body.")
			}
			return s3err.New(s3err.MalformedTrailerError, "Unexpected data after the trailer of the aws-chunked body.")
		}
	}
	return b.checkSum()
}

// checkSum compares the announced checksum (trailer or header) with the
// data's.
func (b *Body) checkSum() error {
	if b.ck == nil {
		return nil
	}
	var enc [64]byte
	sum := b.ck.Sum(b.sum[:0])
	n := base64.StdEncoding.EncodedLen(len(sum))
	base64.StdEncoding.Encode(enc[:n], sum)
	if string(enc[:n]) != b.ckValue {
		return s3err.New(s3err.BadDigest, "The %s you specified did not match the calculated checksum.", b.ckName)
	}
	b.ckOK = true
	return nil
}

// asciiEqualFold reports whether b equals the lower-case s, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
