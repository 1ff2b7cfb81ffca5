package keystore

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// testRaw returns 32 distinct bytes derived from seed.
func testRaw(seed byte) [KeySize]byte {
	var raw [KeySize]byte
	for i := range raw {
		raw[i] = seed + byte(i)*7 + 1
	}
	return raw
}

// forbidden lists the ways the raw bytes could show up in text.
func forbidden(raw [KeySize]byte) []string {
	return []string{
		base64.StdEncoding.EncodeToString(raw[:]),
		base64.RawStdEncoding.EncodeToString(raw[:]),
		base64.URLEncoding.EncodeToString(raw[:]),
		hex.EncodeToString(raw[:]),
		strings.ToUpper(hex.EncodeToString(raw[:])),
		hex.EncodeToString(raw[:8]),
		string(raw[:8]),
		fmt.Sprint(raw[:4]),        // [1 8 15 22
		fmt.Sprint(raw[0], raw[1]), // decimal pairs
		fmt.Sprintf("%#x", raw[:8]),
		fmt.Sprintf("%d, %d, %d", raw[0], raw[1], raw[2]),
		fmt.Sprintf("0x%x, 0x%x", raw[0], raw[1]),
	}
}

func assertNoBytes(t *testing.T, what, s string, raw [KeySize]byte) {
	t.Helper()
	for _, f := range forbidden(raw) {
		if strings.Contains(s, strings.TrimSuffix(f, "]")) {
			t.Errorf("%s shows key bytes (%q): %s", what, f, s)
		}
	}
}

func TestKeyAccessors(t *testing.T) {
	raw := testRaw(3)
	k := NewKey("backups-2026", raw)
	if k.ID() != "backups-2026" || k.Raw() != raw {
		t.Fatal("ID/Raw wrong")
	}
	// MD5 of 32 zero bytes, as S3 documents compute it.
	z := NewKey("z", [KeySize]byte{})
	if got, want := z.MD5(), "cLyPS3KoaSFGi/joRB3OUQ=="; got != want {
		t.Errorf("MD5 of zeros = %s, want %s", got, want)
	}
}

func TestKeyNeverPrintsBytes(t *testing.T) {
	raw := testRaw(3)
	k := NewKey("backups-2026", raw)
	d := Decision{Bucket: "b", Encrypt: true, Key: k, Previous: []*Key{k}}
	kr := &Keyring{keys: map[string]*Key{"backups-2026": k}, sorted: []*Key{k}, rules: []Decision{d}}
	for _, tc := range []struct {
		name string
		v    any
	}{
		{"pointer", k},
		{"value", *k},
		{"decision", d},
		{"decision pointer", &d},
		{"slice", []*Key{k}},
		{"map", map[string]*Key{"x": k}},
		{"struct holding a value", struct{ K Key }{*k}},
		{"unexported field", struct{ k Key }{*k}},
		{"unexported pointer field", struct{ k *Key }{k}},
		{"unexported decision", struct{ d Decision }{d}},
		{"keyring", kr},
		{"keyring value", *kr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
				s := fmt.Sprintf(verb, tc.v)
				assertNoBytes(t, verb, s, raw)
			}
			s := fmt.Sprint(tc.v) + fmt.Sprintln(tc.v)
			assertNoBytes(t, "Sprint", s, raw)
		})
	}
	if got := fmt.Sprintf("%v %+v %s %q", k, k, k, k); got != `backups-2026 backups-2026 backups-2026 "backups-2026"` {
		t.Errorf("fmt = %s", got)
	}
	if got := fmt.Sprintf("%#v", k); got != `keystore.Key{id: "backups-2026"}` {
		t.Errorf("%%#v = %s", got)
	}
	if got := fmt.Sprintf("%v", d); !strings.Contains(got, "backups-2026") {
		t.Errorf("decision %%v = %s, want the key id", got)
	}
	// encoding/json (what zap.Any falls back to for other types) sees the id.
	j, err := json.Marshal(map[string]any{"k": k, "v": *k, "d": d})
	if err != nil {
		t.Fatal(err)
	}
	assertNoBytes(t, "json", string(j), raw)
}

func TestKeyZap(t *testing.T) {
	raw := testRaw(9)
	k := NewKey("media", raw)
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	core := zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.DebugLevel)
	log := zap.New(core)
	log.Info("key", zap.Object("key", k), zap.Object("nil", (*Key)(nil)), zap.Any("value", *k), zap.Any("any", k), zap.Stringer("s", k),
		zap.Any("decision", Decision{Key: k, Previous: []*Key{k}}), zap.Any("keys", []*Key{k}))
	_ = log.Sync()
	out := buf.String()
	assertNoBytes(t, "zap", out, raw)
	for _, want := range []string{`"nil":{}`, `"value":"media"`, `"any":{"id":"media"`, `"s":"media"`} {
		if !strings.Contains(out, want) {
			t.Errorf("zap output lacks %s: %s", want, out)
		}
	}
	if !strings.Contains(out, `"key":{"id":"media","md5":"`+k.MD5()+`"}`) {
		t.Errorf("zap output lacks id and md5: %s", out)
	}

	// The encoder directly, as the brief asks.
	e := zapcore.NewJSONEncoder(zapcore.EncoderConfig{})
	b, err := e.EncodeEntry(zapcore.Entry{Time: time.Unix(0, 0)}, []zapcore.Field{zap.Object("k", k)})
	if err != nil {
		t.Fatal(err)
	}
	assertNoBytes(t, "zap encoder", b.String(), raw)
}
