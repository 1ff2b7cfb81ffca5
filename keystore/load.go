package keystore

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/ssec-proxy/ssec-proxy/config"
)

// LoadKeys reads every key source. A file holds 32 raw bytes, or the base64
// (standard or URL alphabet, padded or not, surrounding whitespace ignored)
// of 32 bytes; an environment variable holds such base64. lookupEnv and
// readFile are os.LookupEnv and os.ReadFile outside tests (nil means those).
//
// The error lists every source that failed, naming the key id and the
// source and saying what is wrong (file missing, variable unset, bad base64,
// the length found), never the content. The warnings say which key files
// are readable by group or others (checked with os.Stat on the path) and
// which ids hold the same bytes. The slices readFile returns are zeroed
// after use.
func LoadKeys(srcs []config.KeySource, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (map[string]*Key, []string, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	keys := make(map[string]*Key, len(srcs))
	var warnings []string
	var errs []error
	for _, src := range srcs {
		if src.ID == "" {
			errs = append(errs, errors.New("keystore: a key has no id"))
			continue
		}
		if _, dup := keys[src.ID]; dup {
			errs = append(errs, fmt.Errorf("keystore: key %q is defined twice", src.ID))
			continue
		}
		raw, warn, err := loadKey(src, lookupEnv, readFile)
		warnings = append(warnings, warn...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		keys[src.ID] = NewKey(src.ID, raw)
		clear(raw[:])
	}
	if len(errs) > 0 {
		return nil, warnings, errors.Join(errs...)
	}
	warnings = append(warnings, sameBytes(keys)...)
	return keys, warnings, nil
}

// loadKey reads one source and returns its bytes and any warnings.
func loadKey(src config.KeySource, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (raw [KeySize]byte, warnings []string, err error) {
	switch {
	case src.File != "" && src.Env != "":
		return raw, nil, fmt.Errorf("keystore: key %q: both file and env are set", src.ID)
	case src.File != "":
		data, err := readFile(src.File)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return raw, nil, fmt.Errorf("keystore: key %q: file %s does not exist", src.ID, src.File)
			}
			return raw, nil, fmt.Errorf("keystore: key %q: reading file: %w", src.ID, err)
		}
		defer clear(data)
		if len(data) == KeySize {
			copy(raw[:], data)
			if looksLikeText(data) {
				warnings = append(warnings, fmt.Sprintf("key %q: file %s holds 32 characters of text, used as 32 raw bytes; base64 of 32 bytes is 43 or 44 characters", src.ID, src.File))
			}
		} else if r, n, ok := decodeBase64(data); ok && n == KeySize {
			raw = r
		} else if ok {
			return raw, nil, fmt.Errorf("keystore: key %q: file %s: base64 decodes to %d bytes, want %d", src.ID, src.File, n, KeySize)
		} else {
			return raw, nil, fmt.Errorf("keystore: key %q: file %s holds %d bytes: neither %d raw bytes nor base64 of %d bytes", src.ID, src.File, len(data), KeySize, KeySize)
		}
		if fi, err := os.Stat(src.File); err == nil && fi.Mode().Perm()&0o077 != 0 {
			warnings = append(warnings, fmt.Sprintf("key %q: file %s is readable by group or others (mode %04o); chmod 600 it",
				src.ID, src.File, fi.Mode().Perm()))
		}
		return raw, warnings, nil
	case src.Env != "":
		v, set := lookupEnv(src.Env)
		if !set {
			return raw, nil, fmt.Errorf("keystore: key %q: environment variable %s is not set", src.ID, src.Env)
		}
		r, n, ok := decodeBase64([]byte(v))
		switch {
		case strings.TrimSpace(v) == "":
			return raw, nil, fmt.Errorf("keystore: key %q: environment variable %s is empty", src.ID, src.Env)
		case !ok:
			return raw, nil, fmt.Errorf("keystore: key %q: environment variable %s is not valid base64 (%d characters)", src.ID, src.Env, len(v))
		case n != KeySize:
			return raw, nil, fmt.Errorf("keystore: key %q: environment variable %s: base64 decodes to %d bytes, want %d", src.ID, src.Env, n, KeySize)
		}
		return r, nil, nil
	default:
		return raw, nil, fmt.Errorf("keystore: key %q: neither file nor env is set", src.ID)
	}
}

var encodings = []*base64.Encoding{
	base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
}

// decodeBase64 decodes text, the base64 of a 32-byte key, with any of the
// usual alphabets, ignoring surrounding whitespace. It returns ok false if
// text is not base64, and otherwise n, the number of bytes decoded: the
// key is valid when n is KeySize.
func decodeBase64(text []byte) (raw [KeySize]byte, n int, ok bool) {
	text = bytes.TrimSpace(text)
	if len(text) == 0 {
		return raw, 0, false
	}
	buf := make([]byte, base64.StdEncoding.DecodedLen(len(text))+3)
	defer clear(buf)
	for _, enc := range encodings {
		n, err := enc.Decode(buf, text)
		if err != nil {
			continue
		}
		if n == KeySize {
			copy(raw[:], buf[:n])
		}
		return raw, n, true
	}
	return raw, 0, false
}

// looksLikeText reports whether data is all base64 or hex characters: a
// short text key rather than random bytes.
func looksLikeText(data []byte) bool {
	for _, c := range data {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_' || c == '=') {
			return false
		}
	}
	return true
}

// sameBytes warns about ids that name the same key bytes: KeyByMD5 cannot
// tell them apart.
func sameBytes(keys map[string]*Key) []string {
	byMD5 := map[string][]string{}
	for id, k := range keys {
		byMD5[k.md5] = append(byMD5[k.md5], id)
	}
	var warnings []string
	for _, ids := range byMD5 {
		if len(ids) > 1 {
			sort.Strings(ids)
			warnings = append(warnings, fmt.Sprintf("keys %s hold the same bytes", strings.Join(quoteAll(ids), ", ")))
		}
	}
	sort.Strings(warnings)
	return warnings
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
