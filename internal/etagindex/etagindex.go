// Package etagindex is the ETag index's entry format and sealing
// (proxy/etag.go says what the index is for): one empty object per
// object written through the proxy,
//
//	.ssec-proxy/etags/<object key> <upstream etag> <sealed client etag>
//
// the client ETag sealed with AES-GCM under a key derived from the rule's
// key, the upstream ETag as associated data. The proxy reads and writes
// entries; rekey writes the entry of each object it re-encrypts, and
// audit and rekey leave everything under Reserved alone.
package etagindex

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"time"

	"github.com/ssec-proxy/ssec-proxy/keystore"
)

const (
	// Reserved is the prefix of the proxy's own objects in every bucket:
	// invisible and untouchable through the proxy (invariant 10).
	Reserved = ".ssec-proxy/"
	// Prefix is the ETag index's.
	Prefix = Reserved + "etags/"
)

// IsReserved reports whether an object key is one of the proxy's own.
func IsReserved(key string) bool { return strings.HasPrefix(key, Reserved) }

// Refused reports whether a client may not name key: the proxy's own
// objects, and the name of their folder without its slash. An upstream
// that stores keys as files (MinIO) cannot hold an object ".ssec-proxy"
// beside the folder ".ssec-proxy/", so one such object would stop every
// index entry and upload record of its bucket. (One written before the
// proxy refused it is a user's object: listings show it.)
func Refused(key string) bool {
	return IsReserved(key) || key == strings.TrimSuffix(Reserved, "/")
}

// aeadOf derives the index's sealing key from a rule key.
func aeadOf(k *keystore.Key) cipher.AEAD {
	raw := k.Raw()
	h := sha256.New()
	h.Write([]byte("ssec-proxy etag index v1\x00"))
	h.Write(raw[:])
	block, err := aes.NewCipher(h.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// Seal seals a client ETag for an entry of an object under k.
func Seal(k *keystore.Key, upstreamETag, clientETag string) string {
	aead := aeadOf(k)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(clientETag)+aead.Overhead())
	_, _ = rand.Read(nonce)
	out := aead.Seal(nonce, nonce, []byte(clientETag), []byte(upstreamETag))
	return base64.RawURLEncoding.EncodeToString(out)
}

// Open opens a sealed client ETag with the first of keys that fits.
func Open(keys []*keystore.Key, upstreamETag, sealed string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return "", false
	}
	for _, k := range keys {
		aead := aeadOf(k)
		if len(b) < aead.NonceSize() {
			return "", false
		}
		if pt, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(upstreamETag)); err == nil {
			return string(pt), true
		}
	}
	return "", false
}

// EntryName is the name of the entry of an object key.
func EntryName(key, upstreamETag, sealed string) string {
	return Prefix + key + " " + upstreamETag + " " + sealed
}

// ParseEntry splits an index entry's name; the object key may hold spaces,
// the two fields after it never do.
func ParseEntry(name string) (key, upstreamETag, sealed string, ok bool) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return "", "", "", false
	}
	i := strings.LastIndexByte(rest, ' ')
	if i < 0 {
		return "", "", "", false
	}
	j := strings.LastIndexByte(rest[:i], ' ')
	if j < 0 {
		return "", "", "", false
	}
	return rest[:j], rest[j+1 : i], rest[i+1:], true
}

// Cache remembers client ETags by bucket and upstream ETag, so that
// repeated reads cost no index look-up, and for a while that an upstream
// ETag has no entry (objects written without the proxy), so that reading
// them does not cost a look-up each time. It is bounded; when full it
// drops an arbitrary tenth.
type Cache struct {
	mu   sync.Mutex
	m    map[string]string
	none map[string]time.Time // no entry, as of then
	max  int
}

// NoneTTL is how long "no entry" is believed: another instance may be
// writing the entry of an object it has just written, and its readers
// must see that entry soon after it lands (the window the README states
// adds this to the entry write's own time). Short, since what it saves is
// one index look-up per read of an object written without the proxy.
const NoneTTL = 2 * time.Second

func NewCache(max int) *Cache {
	return &Cache{m: map[string]string{}, none: map[string]time.Time{}, max: max}
}

// get returns the client ETag; known reports whether the answer (found or
// known to be absent) is cached.
func (c *Cache) Get(bucket, upstreamETag string) (clientETag string, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := bucket + "\x00" + upstreamETag
	if v, ok := c.m[k]; ok {
		return v, true
	}
	if t, ok := c.none[k]; ok && time.Since(t) < NoneTTL {
		return "", true
	}
	return "", false
}

func (c *Cache) Put(bucket, upstreamETag, clientETag string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := bucket + "\x00" + upstreamETag
	if clientETag == "" {
		c.none[k] = time.Now()
		trim(c.none, c.max)
		return
	}
	delete(c.none, k)
	c.m[k] = clientETag
	trim(c.m, c.max)
}

func trim[V any](m map[string]V, max int) {
	if len(m) <= max {
		return
	}
	n := max / 10
	for k := range m {
		if n--; n < 0 {
			break
		}
		delete(m, k)
	}
}
