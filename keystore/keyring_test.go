package keystore

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ssec-proxy/ssec-proxy/config"
)

func testKeys(ids ...string) map[string]*Key {
	m := map[string]*Key{}
	for i, id := range ids {
		m[id] = NewKey(id, testRaw(byte(i*40)))
	}
	return m
}

var no = new(bool)

// testRules exercises every matching rule; the comment is the rule index.
var testRules = []config.Rule{
	{Bucket: "backups", Key: "k2026", Previous: []string{"k2025", "k2024"}}, // 0
	{Bucket: "backups", Prefix: "public/", Encrypt: no},                     // 1
	{Bucket: "backups", Prefix: "public/secret/", Key: "k-secret"},          // 2
	{Bucket: "*", Key: "shared"},                                            // 3
	{Bucket: "*", Prefix: "tmp/", Encrypt: no},                              // 4
	{Bucket: "media", Prefix: "raw photos/", Key: "k-media"},                // 5
	{Bucket: "odd", Prefix: "a b/", Key: "k-a"},                             // 6
	{Bucket: "odd", Prefix: "100%/", Key: "k-b"},                            // 7
	{Bucket: "odd", Prefix: "c++/", Key: "k-c"},                             // 8
	{Bucket: "odd", Prefix: "ünï/", Key: "k-d"},                             // 9
	{Bucket: "odd", Prefix: "x//", Key: "k-e"},                              // 10
	{Bucket: "odd", Prefix: "../", Key: "k-f"},                              // 11
	{Bucket: "odd", Prefix: "%2F", Key: "k-g"},                              // 12
	{Bucket: "plain", Encrypt: no},                                          // 13
}

func testKeyring(t testing.TB, def string) (*Keyring, map[string]*Key) {
	t.Helper()
	keys := testKeys("k2026", "k2025", "k2024", "k-secret", "shared", "k-media", "k-a", "k-b", "k-c", "k-d", "k-e", "k-f", "k-g", "unused")
	kr, err := NewKeyring(&config.Config{Rules: testRules, Default: def}, keys)
	if err != nil {
		t.Fatal(err)
	}
	return kr, keys
}

func TestMatch(t *testing.T) {
	kr, keys := testKeyring(t, config.DefaultDeny)
	krPlain, _ := testKeyring(t, config.DefaultPlaintext)
	empty, err := NewKeyring(&config.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		kr       *Keyring
		bucket   string
		key      string
		rule     int    // -1: none
		keyID    string // "" means no encryption
		previous []string
		deny     bool
	}{
		{"bucket rule, empty prefix", kr, "backups", "2026/01/db.dump", 0, "k2026", []string{"k2025", "k2024"}, false},
		{"empty object key", kr, "backups", "", 0, "k2026", []string{"k2025", "k2024"}, false},
		{"encrypt false under encrypting rule", kr, "backups", "public/index.html", 1, "", nil, false},
		{"prefix itself", kr, "backups", "public/", 1, "", nil, false},
		{"longest prefix wins", kr, "backups", "public/secret/x", 2, "k-secret", nil, false},
		{"prefix without its slash", kr, "backups", "public", 0, "k2026", []string{"k2025", "k2024"}, false},
		{"case matters", kr, "backups", "Public/x", 0, "k2026", []string{"k2025", "k2024"}, false},
		{"star for another bucket", kr, "other", "a/b", 3, "shared", nil, false},
		{"star empty key", kr, "other", "", 3, "shared", nil, false},
		{"star longest prefix", kr, "other", "tmp/x", 4, "", nil, false},
		{"exact bucket beats star prefix", kr, "backups", "tmp/x", 0, "k2026", []string{"k2025", "k2024"}, false},
		{"exact bucket without match falls back to star", kr, "media", "cooked/x.jpg", 3, "shared", nil, false},
		{"exact bucket with match", kr, "media", "raw photos/x.jpg", 5, "k-media", nil, false},
		{"exact bucket no match falls to star prefix", kr, "media", "tmp/x", 4, "", nil, false},
		{"space", kr, "odd", "a b/c d", 6, "k-a", nil, false},
		{"space not plus", kr, "odd", "a+b/c", 3, "shared", nil, false},
		{"percent", kr, "odd", "100%/x", 7, "k-b", nil, false},
		{"percent encoded not decoded", kr, "odd", "100%25/x", 3, "shared", nil, false},
		{"plus", kr, "odd", "c++/x", 8, "k-c", nil, false},
		{"plus not space", kr, "odd", "c  /x", 3, "shared", nil, false},
		{"unicode", kr, "odd", "ünï/x", 9, "k-d", nil, false},
		{"unicode not normalised (NFD)", kr, "odd", "u\u0308nï/x", 3, "shared", nil, false},
		{"double slash", kr, "odd", "x//y", 10, "k-e", nil, false},
		{"single slash not cleaned", kr, "odd", "x/y", 3, "shared", nil, false},
		{"dot dot", kr, "odd", "../etc/passwd", 11, "k-f", nil, false},
		{"dot dot not cleaned", kr, "odd", "a/../x//y", 3, "shared", nil, false},
		{"encoded slash literal", kr, "odd", "%2Fx", 12, "k-g", nil, false},
		{"slash not encoded", kr, "odd", "/x", 3, "shared", nil, false},
		{"plaintext bucket", kr, "plain", "anything", 13, "", nil, false},
		{"bucket case matters", kr, "Backups", "x", 3, "shared", nil, false},
		{"star bucket name is not special", kr, "*", "x", 3, "shared", nil, false},
		{"no rule, deny", empty, "b", "k", -1, "", nil, true},
		{"no rule, plaintext", func() *Keyring {
			k, err := NewKeyring(&config.Config{Default: config.DefaultPlaintext}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return k
		}(), "b", "k", -1, "", nil, false},
		{"plaintext default, rule still applies", krPlain, "backups", "x", 0, "k2026", []string{"k2025", "k2024"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.kr.Match(tc.bucket, tc.key)
			if d.RuleIndex != tc.rule {
				t.Errorf("RuleIndex = %d, want %d (%+v)", d.RuleIndex, tc.rule, d)
			}
			if d.Deny != tc.deny {
				t.Errorf("Deny = %t", d.Deny)
			}
			if tc.rule >= 0 {
				r := testRules[tc.rule]
				if d.Bucket != r.Bucket || d.Prefix != r.Prefix {
					t.Errorf("Bucket, Prefix = %q, %q; want rule %d's", d.Bucket, d.Prefix, tc.rule)
				}
			} else if d.Bucket != "" || d.Prefix != "" || d.Encrypt || d.Key != nil {
				t.Errorf("no-match decision = %+v", d)
			}
			if d.Encrypt != (tc.keyID != "") {
				t.Errorf("Encrypt = %t", d.Encrypt)
			}
			switch {
			case tc.keyID == "" && d.Key != nil:
				t.Errorf("Key = %v, want nil", d.Key)
			case tc.keyID != "" && (d.Key == nil || d.Key.ID() != tc.keyID || d.Key.MD5() != keys[tc.keyID].MD5()):
				t.Errorf("Key = %v, want %s", d.Key, tc.keyID)
			}
			var prev []string
			for _, p := range d.Previous {
				prev = append(prev, p.ID())
			}
			if !reflect.DeepEqual(prev, tc.previous) {
				t.Errorf("Previous = %v, want %v", prev, tc.previous)
			}
		})
	}
}

func TestNewKeyringErrors(t *testing.T) {
	keys := testKeys("a", "b")
	for _, tc := range []struct {
		name    string
		cfg     config.Config
		keys    map[string]*Key
		want    string
		notFind bool // wraps ErrKeyNotFound
	}{
		{"unknown key", config.Config{Rules: []config.Rule{{Bucket: "b12", Key: "zz"}}}, keys, `rules[0] (bucket "b12", prefix ""): key "zz"`, true},
		{"no key", config.Config{Rules: []config.Rule{{Bucket: "b12"}}}, keys, `key ""`, true},
		{"unknown previous", config.Config{Rules: []config.Rule{{Bucket: "b12", Key: "a", Previous: []string{"b", "c"}}}}, keys, `previous key "c"`, true},
		{"duplicate", config.Config{Rules: []config.Rule{{Bucket: "b12", Key: "a"}, {Bucket: "b12", Key: "b"}}}, keys, "same bucket and prefix as rules[0]", false},
		{"no bucket", config.Config{Rules: []config.Rule{{Key: "a"}}}, keys, "no bucket", false},
		{"plaintext with key", config.Config{Rules: []config.Rule{{Bucket: "b12", Encrypt: no, Key: "a"}}}, keys, "encrypt: false", false},
		{"bad default", config.Config{Default: "allow"}, keys, `default "allow"`, false},
		{"key under wrong id", config.Config{}, map[string]*Key{"x": NewKey("y", testRaw(0))}, `entry "x"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := NewKeyring(&tc.cfg, tc.keys)
			if err == nil {
				t.Fatalf("NewKeyring succeeded: %v", kr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			if errors.Is(err, ErrKeyNotFound) != tc.notFind {
				t.Errorf("errors.Is(err, ErrKeyNotFound) = %t", !tc.notFind)
			}
		})
	}
}

func TestKeyringAccessors(t *testing.T) {
	kr, keys := testKeyring(t, config.DefaultDeny)
	got := kr.Keys()
	if len(got) != len(keys) {
		t.Fatalf("Keys() has %d keys, want %d", len(got), len(keys))
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].ID() >= got[i].ID() {
			t.Errorf("Keys() not sorted: %v", got)
		}
	}
	got[0] = nil // a copy
	if kr.Keys()[0] == nil {
		t.Error("Keys() shares its slice")
	}
	for id, k := range keys {
		if f, ok := kr.KeyByMD5(k.MD5()); !ok || f != k {
			t.Errorf("KeyByMD5(%s of %s) = %v, %t", k.MD5(), id, f, ok)
		}
		if f, err := kr.Key(id); err != nil || f != k {
			t.Errorf("Key(%s) = %v, %v", id, f, err)
		}
	}
	if _, ok := kr.KeyByMD5("nope"); ok {
		t.Error("KeyByMD5 of an unknown MD5 found a key")
	}
	if _, err := kr.Key("nope"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Key(nope) err = %v", err)
	}
	if !kr.DefaultDeny() {
		t.Error("DefaultDeny false")
	}
	rules := kr.Rules()
	if len(rules) != len(testRules) {
		t.Fatalf("Rules() has %d", len(rules))
	}
	want0 := RuleInfo{Index: 0, Bucket: "backups", Encrypt: true, KeyID: "k2026", KeyMD5: keys["k2026"].MD5(), Previous: []string{"k2025", "k2024"}}
	if !reflect.DeepEqual(rules[0], want0) {
		t.Errorf("Rules()[0] = %+v, want %+v", rules[0], want0)
	}
	want1 := RuleInfo{Index: 1, Bucket: "backups", Prefix: "public/"}
	if !reflect.DeepEqual(rules[1], want1) {
		t.Errorf("Rules()[1] = %+v, want %+v", rules[1], want1)
	}
	if s := kr.String(); !strings.Contains(s, "14 keys, 14 rules") {
		t.Errorf("String() = %s", s)
	}
}

func TestKeyByMD5SameBytes(t *testing.T) {
	raw := testRaw(7)
	keys := map[string]*Key{"b": NewKey("b", raw), "a": NewKey("a", raw)}
	kr, err := NewKeyring(&config.Config{}, keys)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := kr.KeyByMD5(keys["a"].MD5()); k.ID() != "a" {
		t.Errorf("KeyByMD5 = %s, want the first id", k)
	}
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	raw := testRaw(11)
	path := filepath.Join(dir, "a.key")
	if err := os.WriteFile(path, raw[:], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSEC_BUILD_KEY", "  "+b64(testRaw(12))+"\n")
	cfg := &config.Config{
		Keys: []config.KeySource{{ID: "a", File: path}, {ID: "b", Env: "SSEC_BUILD_KEY"}, {ID: "c", Env: "SSEC_BUILD_KEY"}},
		Rules: []config.Rule{
			{Bucket: "b12", Key: "a", Previous: []string{"b"}},
		},
		Default: config.DefaultDeny,
	}
	kr, warnings, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d := kr.Match("b12", "x"); d.Key.Raw() != raw || d.Previous[0].Raw() != testRaw(12) {
		t.Error("Build: wrong keys")
	}
	want := []string{"mode 0644", `keys "b", "c" hold the same bytes`, `key "c" is not used by any rule`}
	if len(warnings) != len(want) {
		t.Fatalf("warnings = %q", warnings)
	}
	for i, w := range want {
		if !strings.Contains(warnings[i], w) {
			t.Errorf("warnings[%d] = %q, want %q", i, warnings[i], w)
		}
	}

	cfg.Keys[0].File = filepath.Join(dir, "missing")
	if _, _, err := Build(cfg); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Build with a missing file: %v", err)
	}
	cfg.Keys[0].File = path
	cfg.Rules[0].Key = "zz"
	if _, _, err := Build(cfg); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Build with an unknown key id: %v", err)
	}
}

// TestBuildFromConfigFile goes from a parsed config file to a keyring.
func TestBuildFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.key")
	if err := os.WriteFile(path, []byte(b64(testRaw(1))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := `
upstream: {zone: ch-gva-2, access_key: a, secret_key: b}
keys: [{id: k, file: "${KEYFILE}"}]
rules: [{bucket: "*", key: k}, {bucket: pub, encrypt: false}]
`
	env := map[string]string{"KEYFILE": path, "HOME": "/h"}
	cfg, err := config.Parse([]byte(y), "t.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	kr, warnings, err := Build(cfg)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Build: %v %q", err, warnings)
	}
	if d := kr.Match("pub", "x"); d.Encrypt || d.RuleIndex != 1 {
		t.Errorf("pub: %+v", d)
	}
	if d := kr.Match("any", "x"); !d.Encrypt || d.Key.ID() != "k" {
		t.Errorf("any: %+v", d)
	}
}

func FuzzMatch(f *testing.F) {
	for _, r := range testRules {
		f.Add(r.Bucket, r.Prefix+"x")
	}
	f.Add("odd", "")
	f.Add("", "")
	f.Add("backups", "public/secret")
	f.Add("odd", "\xff\xfe/../")
	kr, _ := testKeyring(f, config.DefaultDeny)
	f.Fuzz(func(t *testing.T, bucket, key string) {
		d := kr.Match(bucket, key)
		// The reference: a plain scan of every rule.
		best := -1
		for i, r := range testRules {
			if r.Bucket != bucket && r.Bucket != "*" || !strings.HasPrefix(key, r.Prefix) {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			b := testRules[best]
			exact, bestExact := r.Bucket == bucket && r.Bucket != "*", b.Bucket == bucket && b.Bucket != "*"
			if exact && !bestExact || exact == bestExact && len(r.Prefix) > len(b.Prefix) {
				best = i
			}
		}
		if d.RuleIndex != best {
			t.Fatalf("Match(%q, %q) = rule %d, reference says %d", bucket, key, d.RuleIndex, best)
		}
		if best < 0 {
			if !d.Deny || d.Encrypt || d.Key != nil {
				t.Fatalf("no match: %+v", d)
			}
			return
		}
		r := testRules[best]
		if d.Deny || d.Encrypt != r.Encrypts() || (d.Key != nil) != d.Encrypt || d.Encrypt && d.Key.ID() != r.Key {
			t.Fatalf("Match(%q, %q) = %+v for rule %+v", bucket, key, d, r)
		}
		if !strings.HasPrefix(key, d.Prefix) || !utf8.ValidString(d.Prefix) {
			t.Fatalf("prefix %q", d.Prefix)
		}
	})
}

// benchRules makes n rules over a handful of buckets with nested prefixes.
func benchKeyring(b *testing.B, n int) *Keyring {
	keys := testKeys("k")
	var rules []config.Rule
	for i := 0; i < n; i++ {
		bucket := fmt.Sprintf("bucket-%d", i%5)
		if i%10 == 9 {
			bucket = "*"
		}
		prefix := strings.Repeat(fmt.Sprintf("d%d/", i%7), i/10) + fmt.Sprintf("p%d/", i)
		rules = append(rules, config.Rule{Bucket: bucket, Prefix: prefix, Key: "k"})
	}
	rules = append(rules, config.Rule{Bucket: "bucket-0", Key: "k"})
	kr, err := NewKeyring(&config.Config{Rules: rules}, keys)
	if err != nil {
		b.Fatal(err)
	}
	return kr
}

func BenchmarkMatch(b *testing.B) {
	kr := benchKeyring(b, 50)
	for _, bc := range []struct{ name, bucket, key string }{
		{"exact fallback", "bucket-0", "some/deep/object/key.bin"},
		{"star", "other", "d2/d2/d2/d2/p29/x"},
		{"no match", "nope", "x"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = kr.Match(bc.bucket, bc.key)
			}
		})
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	kr, _ := testKeyring(t, config.DefaultDeny)
	for _, k := range [][2]string{{"backups", "public/secret/x"}, {"other", "tmp/x"}, {"none", ""}, {"odd", "ünï/x"}} {
		if n := testing.AllocsPerRun(100, func() { _ = kr.Match(k[0], k[1]) }); n != 0 {
			t.Errorf("Match(%q, %q) allocates %v times", k[0], k[1], n)
		}
	}
}

func b64(raw [KeySize]byte) string { return base64.StdEncoding.EncodeToString(raw[:]) }
