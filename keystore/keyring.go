// Package keystore holds the SSE-C keys and the rules that pick one for a
// bucket and object key.
//
// A Key is an id and 32 bytes; printing it in any way (fmt, zap) shows the
// id only. LoadKeys reads keys from files and environment variables.
//
// A Keyring is an immutable set of keys and rules; Store swaps keyrings
// atomically on reload. Keyring.Match picks the rule for a bucket and object
// key:
//
//   - The candidates are the rules whose bucket equals the bucket, or is
//     "*", and whose prefix the object key starts with. The comparison is
//     byte for byte, without any normalisation (no path cleaning, no
//     unescaping, no Unicode folding): the object key must be exactly the
//     one S3 stores, so "a//b", "a/../b" and "a%2Fb" are all different keys.
//   - A rule for the exact bucket beats any "*" rule, whatever their
//     prefixes. Among rules of the same kind the longest prefix wins. Two
//     rules never have the same bucket and prefix (config validation and
//     NewKeyring reject that), so the winner is unique.
//   - A rule with encrypt: false yields a plaintext Decision; a longer
//     prefix with encrypt: false carves a plaintext area out of an
//     encrypting rule (and the other way round).
//   - When no rule matches, the Decision denies the request if the config's
//     default is "deny", and lets it through in plaintext if "plaintext".
//
// This package imports only the standard library, zapcore and config.
package keystore

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ssec-proxy/ssec-proxy/config"
)

// Sentinel errors, for errors.Is.
var (
	// ErrKeyNotFound: a rule or a lookup names a key id that is not loaded.
	ErrKeyNotFound = errors.New("keystore: key not found")
)

// Decision is what the rules say about one bucket and object key.
type Decision struct {
	Bucket, Prefix string // the rule that matched; Bucket is "" when none did ("*" for a wildcard rule)
	RuleIndex      int    // index of that rule in the config, -1 when none matched
	Encrypt        bool
	Key            *Key   // the key to write with; nil when !Encrypt
	Previous       []*Key // keys to try, in order, when reading fails with Key; shared, do not modify
	Deny           bool   // no rule matched and the default is deny
	// AllowPlaintextReads: reads may return objects stored without SSE-C
	// under this encrypting rule (rules[].allow_plaintext_reads).
	AllowPlaintextReads bool
}

// RuleInfo describes a rule for display (`ssec-proxy check`): ids and MD5s,
// never key bytes.
type RuleInfo struct {
	Index    int // in the config
	Bucket   string
	Prefix   string
	Encrypt  bool
	KeyID    string   // "" when !Encrypt
	KeyMD5   string   // base64 MD5 of the key, "" when !Encrypt
	Previous []string // key ids
}

// Keyring is an immutable set of keys and rules. It is safe for concurrent
// use.
type Keyring struct {
	keys     map[string]*Key
	byMD5    map[string]*Key
	sorted   []*Key
	rules    []Decision            // one per rule, in config order
	byBucket map[string][]Decision // exact-bucket rules, longest prefix first
	star     []Decision            // "*" rules, longest prefix first
	deny     bool                  // default deny
}

// NewKeyring builds a keyring from the config's rules and default and the
// loaded keys (LoadKeys). It checks again what the rules need (every key id
// loaded, no two rules with the same bucket and prefix, a known default),
// so that a keyring is sound even from a config that was not validated. A
// missing key id gives an error wrapping ErrKeyNotFound.
func NewKeyring(cfg *config.Config, keys map[string]*Key) (*Keyring, error) {
	k := &Keyring{
		keys:     make(map[string]*Key, len(keys)),
		byMD5:    make(map[string]*Key, len(keys)),
		byBucket: map[string][]Decision{},
	}
	for id, key := range keys {
		if key == nil || key.id != id {
			return nil, fmt.Errorf("keystore: key map entry %q does not hold the key of that id", id)
		}
		k.keys[id] = key
		k.sorted = append(k.sorted, key)
	}
	sort.Slice(k.sorted, func(i, j int) bool { return k.sorted[i].id < k.sorted[j].id })
	for _, key := range k.sorted { // the first id wins when two ids hold the same bytes
		if _, ok := k.byMD5[key.md5]; !ok {
			k.byMD5[key.md5] = key
		}
	}

	switch cfg.Default {
	case config.DefaultDeny, "":
		k.deny = true
	case config.DefaultPlaintext:
	default:
		return nil, fmt.Errorf("keystore: default %q is not %s or %s", cfg.Default, config.DefaultDeny, config.DefaultPlaintext)
	}

	var errs []error
	type bp struct{ bucket, prefix string }
	seen := map[bp]int{}
	for i, r := range cfg.Rules {
		d := Decision{Bucket: r.Bucket, Prefix: r.Prefix, RuleIndex: i, Encrypt: r.Encrypts(), AllowPlaintextReads: r.AllowPlaintextReads}
		where := fmt.Sprintf("rules[%d] (bucket %q, prefix %q)", i, r.Bucket, r.Prefix)
		if r.Bucket == "" {
			errs = append(errs, fmt.Errorf("keystore: %s: no bucket", where))
		}
		if j, dup := seen[bp{r.Bucket, r.Prefix}]; dup {
			errs = append(errs, fmt.Errorf("keystore: %s: same bucket and prefix as rules[%d]", where, j))
		}
		seen[bp{r.Bucket, r.Prefix}] = i
		if d.Encrypt {
			key, ok := k.keys[r.Key]
			if !ok {
				errs = append(errs, fmt.Errorf("keystore: %s: key %q: %w", where, r.Key, ErrKeyNotFound))
			}
			d.Key = key
			for _, id := range r.Previous {
				p, ok := k.keys[id]
				if !ok {
					errs = append(errs, fmt.Errorf("keystore: %s: previous key %q: %w", where, id, ErrKeyNotFound))
					continue
				}
				d.Previous = append(d.Previous, p)
			}
		} else if r.Key != "" || len(r.Previous) > 0 {
			errs = append(errs, fmt.Errorf("keystore: %s: a rule with encrypt: false has no key or previous keys", where))
		}
		k.rules = append(k.rules, d)
		if r.Bucket == "*" {
			k.star = append(k.star, d)
		} else {
			k.byBucket[r.Bucket] = append(k.byBucket[r.Bucket], d)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	longestFirst := func(ds []Decision) {
		sort.SliceStable(ds, func(i, j int) bool { return len(ds[i].Prefix) > len(ds[j].Prefix) })
	}
	longestFirst(k.star)
	for _, rs := range k.byBucket {
		longestFirst(rs)
	}
	return k, nil
}

// Match returns the decision for an object key in a bucket, as the package
// documentation describes. bucket and objectKey are compared byte for byte.
// It does not allocate.
func (k *Keyring) Match(bucket, objectKey string) Decision {
	rs := k.byBucket[bucket]
	for i := range rs {
		if strings.HasPrefix(objectKey, rs[i].Prefix) {
			return rs[i]
		}
	}
	for i := range k.star {
		if strings.HasPrefix(objectKey, k.star[i].Prefix) {
			return k.star[i]
		}
	}
	return Decision{RuleIndex: -1, Deny: k.deny}
}

// Rules describes the rules in config order.
func (k *Keyring) Rules() []RuleInfo {
	out := make([]RuleInfo, 0, len(k.rules))
	for _, d := range k.rules {
		ri := RuleInfo{Index: d.RuleIndex, Bucket: d.Bucket, Prefix: d.Prefix, Encrypt: d.Encrypt}
		if d.Key != nil {
			ri.KeyID, ri.KeyMD5 = d.Key.id, d.Key.md5
		}
		for _, p := range d.Previous {
			ri.Previous = append(ri.Previous, p.id)
		}
		out = append(out, ri)
	}
	return out
}

// DefaultDeny reports whether a request that no rule matches is denied.
func (k *Keyring) DefaultDeny() bool { return k.deny }

// Keys returns every loaded key, sorted by id.
func (k *Keyring) Keys() []*Key { return append([]*Key(nil), k.sorted...) }

// Key returns the key with id, or ErrKeyNotFound.
func (k *Keyring) Key(id string) (*Key, error) {
	if key, ok := k.keys[id]; ok {
		return key, nil
	}
	return nil, fmt.Errorf("keystore: key %q: %w", id, ErrKeyNotFound)
}

// KeyByMD5 finds a loaded key by its MD5 (Key.MD5, base64), e.g. the
// x-amz-server-side-encryption-customer-key-MD5 that S3 reports for an
// object. When several ids hold the same bytes, the first id wins.
func (k *Keyring) KeyByMD5(md5 string) (*Key, bool) {
	key, ok := k.byMD5[md5]
	return key, ok
}

// String describes the keyring without any key material.
func (k *Keyring) String() string {
	return fmt.Sprintf("keystore.Keyring{%d keys, %d rules, deny by default: %t}", len(k.keys), len(k.rules), k.deny)
}
