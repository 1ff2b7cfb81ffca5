package etagindex

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

func keys(t *testing.T) (a, b *keystore.Key) {
	dir := t.TempDir()
	for i, id := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, id+".key"), []byte(strings.Repeat(string(rune('p'+i)), 32)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse([]byte("state_dir: "+dir+"\nupstream: {endpoint: https://127.0.0.1:1, region: r, access_key: a, secret_key: s}\n"+
		"keys: [{id: a, file: "+dir+"/a.key}, {id: b, file: "+dir+"/b.key}]\nrules: [{bucket: xyz, key: a}]\n"), "t.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ring, _, err := keystore.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, _ = ring.Key("a")
	b, _ = ring.Key("b")
	return a, b
}

// TestEntryRoundTrip: an entry names its object (spaces and all), and its
// sealed ETag opens with its key and upstream ETag only.
func TestEntryRoundTrip(t *testing.T) {
	a, b := keys(t)
	sealed := Seal(a, "up-etag", "0123456789abcdef0123456789abcdef")
	name := EntryName("dir/a key with spaces", "up-etag", sealed)
	if !IsReserved(name) || !strings.HasPrefix(name, Prefix) {
		t.Fatalf("%q is not reserved", name)
	}
	k, up, s, ok := ParseEntry(name)
	if !ok || k != "dir/a key with spaces" || up != "up-etag" || s != sealed {
		t.Fatalf("ParseEntry = %q %q %q %v", k, up, s, ok)
	}
	if v, ok := Open([]*keystore.Key{b, a}, up, s); !ok || v != "0123456789abcdef0123456789abcdef" {
		t.Errorf("Open with the key = %q %v", v, ok)
	}
	if _, ok := Open([]*keystore.Key{b}, up, s); ok {
		t.Error("opened with another key")
	}
	if _, ok := Open([]*keystore.Key{a}, "other-etag", s); ok {
		t.Error("opened under another upstream ETag")
	}
	if _, _, _, ok := ParseEntry(Prefix + "nofields"); ok {
		t.Error("parsed an entry without its fields")
	}
	if strings.Contains(name, "0123456789abcdef") {
		t.Error("the entry shows the client ETag")
	}
}

func TestIsReserved(t *testing.T) {
	for key, want := range map[string][2]bool{ // IsReserved, Refused
		".ssec-proxy/etags/a 1 2": {true, true},
		".ssec-proxy/uploads/x":   {true, true},
		".ssec-proxy/":            {true, true},
		".ssec-proxy":             {false, true}, // a file where the folder must go
		".ssec-proxy.txt":         {false, false},
		".ssec-proxyx/a":          {false, false},
		"a/.ssec-proxy":           {false, false},
		"":                        {false, false},
	} {
		if got := [2]bool{IsReserved(key), Refused(key)}; got != want {
			t.Errorf("IsReserved, Refused(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestETagCache(t *testing.T) {
	c := NewCache(20)
	if _, known := c.Get("b", "e1"); known {
		t.Fatal("empty cache knows e1")
	}
	c.Put("b", "e1", "md5")
	if v, known := c.Get("b", "e1"); !known || v != "md5" {
		t.Errorf("get e1 = %q %v", v, known)
	}
	if _, known := c.Get("other", "e1"); known {
		t.Error("buckets are not kept apart")
	}
	c.Put("b", "e2", "")
	if v, known := c.Get("b", "e2"); !known || v != "" {
		t.Errorf("a known absence: %q %v", v, known)
	}
	// An absence is believed for NoneTTL only: another instance's entry,
	// written behind its answer, must be seen within the stated window.
	c.none["b\x00e2"] = time.Now().Add(-NoneTTL)
	if _, known := c.Get("b", "e2"); known {
		t.Error("an absence older than NoneTTL is still believed")
	}
	if NoneTTL > 5*time.Second {
		t.Errorf("NoneTTL %v: the README states another instance sees an entry within seconds of its write", NoneTTL)
	}
	for i := 0; i < 100; i++ {
		c.Put("b", strings.Repeat("x", i+1), "v")
	}
	if len(c.m) > 21 {
		t.Errorf("cache grew to %d entries, bound 20", len(c.m))
	}
}
