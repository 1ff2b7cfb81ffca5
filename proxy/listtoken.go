package proxy

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// A ListObjectsV2 continuation token is the upstream's business and may
// carry what it likes: MinIO's names the last key it read, which can be
// an entry of the ETag index. Clients get the upstream's tokens sealed
// (AES-GCM), so they can page but not read them; the proxy opens them
// again on the next request. The key is derived from the upstream's
// secret key, so every instance with the same config opens every other's
// tokens.

const tokenPrefix = "ssec1-"

type tokenSealer struct{ aead cipher.AEAD }

func newTokenSealer(upstreamSecret string) *tokenSealer {
	k := sha256.Sum256([]byte("ssec-proxy continuation tokens v1\x00" + upstreamSecret))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &tokenSealer{aead}
}

// seal makes the token a client sees of the upstream's.
func (ts *tokenSealer) seal(upstream string) string {
	nonce := make([]byte, ts.aead.NonceSize(), ts.aead.NonceSize()+len(upstream)+ts.aead.Overhead())
	_, _ = rand.Read(nonce)
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(ts.aead.Seal(nonce, nonce, []byte(upstream), []byte(tokenPrefix)))
}

// open returns the upstream's token of a client's.
func (ts *tokenSealer) open(client string) (string, error) {
	bad := s3err.New(s3err.InvalidArgument, "The continuation token provided is incorrect")
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(client, tokenPrefix))
	if err != nil || !strings.HasPrefix(client, tokenPrefix) || len(raw) < ts.aead.NonceSize() {
		return "", bad
	}
	n := ts.aead.NonceSize()
	plain, err := ts.aead.Open(nil, raw[:n], raw[n:], []byte(tokenPrefix))
	if err != nil {
		return "", bad
	}
	return string(plain), nil
}
