package keystore

import (
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"strconv"

	"go.uber.org/zap/zapcore"
)

// KeySize is the size of an SSE-C key (AES-256).
const KeySize = 32

// Key is a named 32-byte SSE-C key. Every way of printing it (fmt with any
// verb, zap) shows the id, never the bytes; only Raw gives them out.
//
// The printing methods have value receivers so that printing a Key value,
// not only a *Key, goes through them too. The bytes sit in a closure so
// that even reflection (fmt printing a Key held in an unexported field of
// some struct, with any verb; spew-like dumpers) finds a func, not bytes: a
// pointer to an array would be dereferenced by fmt's bad-verb path.
type Key struct {
	id  string
	raw func() [KeySize]byte
	md5 string
}

// NewKey makes a key named id from raw. Keys come from NewKey or LoadKeys:
// the zero Key has no bytes, and its Raw panics.
func NewKey(id string, raw [KeySize]byte) *Key {
	sum := md5.Sum(raw[:])
	return &Key{
		id:  id,
		raw: func() [KeySize]byte { return raw },
		md5: base64.StdEncoding.EncodeToString(sum[:]),
	}
}

// ID returns the key's name from the config.
func (k *Key) ID() string { return k.id }

// Raw returns the key's bytes. Only the proxy's SSE-C header builder calls
// it; never log or return what it gives.
func (k *Key) Raw() [KeySize]byte { return k.raw() }

// MD5 returns the base64 of the MD5 of the raw key: the value of S3's
// x-amz-server-side-encryption-customer-key-MD5 header. It is not secret.
func (k *Key) MD5() string { return k.md5 }

// String returns the key's id.
func (k Key) String() string { return k.id }

// GoString returns the key's id in Go syntax, without the bytes.
func (k Key) GoString() string { return "keystore.Key{id: " + strconv.Quote(k.id) + "}" }

// Format prints the key's id whatever the verb and flags: %#v as GoString,
// %q quoted, anything else (%x included) as the plain id.
func (k Key) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, k.GoString())
	case verb == 'q':
		fmt.Fprint(f, strconv.Quote(k.id))
	default:
		fmt.Fprint(f, k.id)
	}
}

// MarshalLogObject writes the key's id and MD5 for zap.Object. A nil key
// (a Decision that does not encrypt) writes an empty object.
func (k *Key) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	if k == nil {
		return nil
	}
	enc.AddString("id", k.id)
	enc.AddString("md5", k.md5)
	return nil
}

// MarshalText returns the id, so that encoders using encoding.TextMarshaler
// or json (zap.Any, encoding/json) never see the bytes.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.id), nil }

var (
	_ fmt.Stringer            = Key{}
	_ fmt.GoStringer          = Key{}
	_ fmt.Formatter           = Key{}
	_ zapcore.ObjectMarshaler = (*Key)(nil)
)
