package etagindex

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ssec-proxy/ssec-proxy/keystore"
)

// memObjects is a bucket in memory, listed as S3 lists: in order, after
// StartAfter, rolled up at Delimiter, in pages of pageSize names.
type memObjects struct {
	names    map[string]bool // bucket + "\x00" + name
	pageSize int
	lists    []ListOptions // every List asked for
	pages    int           // pages read, in all
	failList error         // List fails with it after the first page
	failPut  error
}

// newIndex is an Index over an empty memObjects, and the test's keys.
func newIndex(t *testing.T) (m *memObjects, ix Index, a, b *keystore.Key) {
	a, b = keys(t)
	m = &memObjects{names: map[string]bool{}, pageSize: 1000}
	return m, Index{m}, a, b
}

func (m *memObjects) PutEmpty(_ context.Context, bucket, name string) error {
	if m.failPut != nil {
		return m.failPut
	}
	m.names[bucket+"\x00"+name] = true
	return nil
}

func (m *memObjects) List(_ context.Context, bucket string, opts ListOptions, fn func(string) bool) error {
	m.lists = append(m.lists, opts)
	var page []string // names and common prefixes, sorted
	for k := range m.names {
		b, name, _ := strings.Cut(k, "\x00")
		if b != bucket || !strings.HasPrefix(name, opts.Prefix) || name <= opts.StartAfter {
			continue
		}
		if opts.Delimiter != "" {
			if i := strings.Index(name[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				name = "prefix:" + name[:len(opts.Prefix)+i+len(opts.Delimiter)]
			}
		}
		if !slices.Contains(page, name) {
			page = append(page, name)
		}
	}
	sort.Strings(page)
	for i, name := range page {
		if i%m.pageSize == 0 {
			if opts.MaxPages > 0 && i/m.pageSize == opts.MaxPages {
				return nil
			}
			if i > 0 && m.failList != nil {
				return m.failList
			}
			m.pages++
		}
		if strings.HasPrefix(name, "prefix:") {
			continue
		}
		if !fn(name) {
			return nil
		}
	}
	return nil
}

func (m *memObjects) Remove(_ context.Context, bucket string, names []string) error {
	for _, name := range names {
		delete(m.names, bucket+"\x00"+name)
	}
	return nil
}

func (m *memObjects) has(bucket, name string) bool { return m.names[bucket+"\x00"+name] }

const md5a, md5b = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"

func write(t *testing.T, ix Index, key, up, client string, k *keystore.Key) Entry {
	t.Helper()
	e, ok := NewEntry(key, up, client, k)
	if !ok {
		t.Fatalf("no entry for %q %q", key, up)
	}
	if err := ix.Put(context.Background(), "bk", e); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestWriteLookup: what Write writes, Lookup finds with any of the keys
// it tries, under the upstream ETag written only, in the bucket written
// only; it lists one page at most, under the prefix of that key and ETag.
func TestWriteLookup(t *testing.T) {
	m, ix, a, b := newIndex(t)
	ctx := context.Background()
	if ok, err := ix.Write(ctx, "bk", "dir/x y", "up1", md5a, a); !ok || err != nil {
		t.Fatalf("Write = %v, %v", ok, err)
	}
	v, e, ok, err := ix.Lookup(ctx, "bk", "dir/x y", "up1", []*keystore.Key{b, a})
	if !ok || err != nil || v != md5a || e.Key != "dir/x y" || e.UpstreamETag != "up1" || !m.has("bk", e.Name()) {
		t.Fatalf("Lookup = %q %+v %v %v", v, e, ok, err)
	}
	if got := m.lists[0]; got.Prefix != Prefix+"dir/x y up1 " || got.MaxPages != 1 || got.Delimiter != "" {
		t.Errorf("Lookup listed %+v", got)
	}
	for _, c := range []struct{ bucket, up string }{{"bk", "up2"}, {"other", "up1"}} {
		if _, _, ok, _ := ix.Lookup(ctx, c.bucket, "dir/x y", c.up, []*keystore.Key{a}); ok {
			t.Errorf("found an entry in %s under %s", c.bucket, c.up)
		}
	}
	if _, _, ok, _ := ix.Lookup(ctx, "bk", "dir/x y", "up1", nil); ok {
		t.Error("found an entry with no key")
	}
}

// TestLookupUnknownKey: an entry no key of the rule opens is no entry; one
// sealed under a key the rule lists later is found; of two entries, the
// one that opens is.
func TestLookupUnknownKey(t *testing.T) {
	_, ix, a, b := newIndex(t)
	ctx := context.Background()
	write(t, ix, "k", "up", md5a, a)
	if v, _, ok, err := ix.Lookup(ctx, "bk", "k", "up", []*keystore.Key{b}); ok || err != nil || v != "" {
		t.Errorf("Lookup with an unknown key = %q %v %v", v, ok, err)
	}
	if v, _, ok, _ := ix.Lookup(ctx, "bk", "k", "up", []*keystore.Key{b, a}); !ok || v != md5a {
		t.Errorf("Lookup with the previous key = %q %v", v, ok)
	}
	want := write(t, ix, "k", "up", md5b, b)
	v, e, ok, _ := ix.Lookup(ctx, "bk", "k", "up", []*keystore.Key{b})
	if !ok || v != md5b || e != want {
		t.Errorf("Lookup = %q %+v %v, want %+v", v, e, ok, want)
	}
}

// TestLookupOtherKey: the entry of another object whose key starts with
// this one's, a space and the ETag (so its name shares the listed prefix,
// and it seals under the same upstream ETag) is not this object's.
func TestLookupOtherKey(t *testing.T) {
	_, ix, a, _ := newIndex(t)
	write(t, ix, "k up x", "up", md5a, a)
	if v, e, ok, err := ix.Lookup(context.Background(), "bk", "k", "up", []*keystore.Key{a}); ok || err != nil {
		t.Errorf("found %q in the entry %+v of another object", v, e)
	}
}

// TestWriteRefuses: nothing is written for a name over 1,024 bytes, an
// empty ETag or no key; an upstream's failure is reported.
func TestWriteRefuses(t *testing.T) {
	m, ix, a, _ := newIndex(t)
	ctx := context.Background()
	long := strings.Repeat("k", MaxNameLen-len(Prefix))
	for _, c := range []struct {
		name            string
		key, up, client string
		k               *keystore.Key
	}{
		{"too long", long, "up", md5a, a},
		{"no upstream etag", "k", "", md5a, a},
		{"no client etag", "k", "up", "", a},
		{"no key", "k", "up", md5a, nil},
	} {
		if ok, err := ix.Write(ctx, "bk", c.key, c.up, c.client, c.k); ok || err != nil {
			t.Errorf("%s: Write = %v, %v", c.name, ok, err)
		}
	}
	if len(m.names) != 0 {
		t.Errorf("written: %d", len(m.names))
	}
	// The longest name that fits is written.
	e, _ := NewEntry("k", "up", md5a, a)
	fits := strings.Repeat("k", MaxNameLen-len(e.Name())+1)
	if ok, err := ix.Write(ctx, "bk", fits, "up", md5a, a); !ok || err != nil {
		t.Errorf("a name of %d bytes: Write = %v, %v", MaxNameLen, ok, err)
	}
	m.failPut = errors.New("down")
	if ok, err := ix.Write(ctx, "bk", "k", "up", md5a, a); ok || !errors.Is(err, m.failPut) {
		t.Errorf("a failed put: Write = %v, %v", ok, err)
	}
}

// TestForget: the object's entries go but the one kept; those of objects
// whose keys share its prefix ("k" and "k 2") stay; "" removes them all.
func TestForget(t *testing.T) {
	m, ix, a, _ := newIndex(t)
	ctx := context.Background()
	e1 := write(t, ix, "k", "up1", md5a, a)
	e2 := write(t, ix, "k", "up2", md5a, a)
	keep := write(t, ix, "k", "up3", md5b, a)
	other := write(t, ix, "k 2", "up1", md5a, a)
	n, err := ix.Forget(ctx, "bk", "k", "up3")
	if n != 2 || err != nil {
		t.Fatalf("Forget = %d, %v", n, err)
	}
	for _, c := range []struct {
		e    Entry
		want bool
	}{{e1, false}, {e2, false}, {keep, true}, {other, true}} {
		if m.has("bk", c.e.Name()) != c.want {
			t.Errorf("%+v there: %v, want %v", c.e, !c.want, c.want)
		}
	}
	if n, err := ix.Forget(ctx, "bk", "k", ""); n != 1 || err != nil || m.has("bk", keep.Name()) {
		t.Errorf("Forget all = %d, %v", n, err)
	}
	if !m.has("bk", other.Name()) {
		t.Error("an entry of another object went")
	}
}

// TestForgetPartial: a listing that fails part way still removes what it
// listed, and says so; it reads four pages at most.
func TestForgetPartial(t *testing.T) {
	m, ix, a, _ := newIndex(t)
	m.pageSize = 2
	for _, up := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "v1"} {
		write(t, ix, "k", up, md5a, a)
	}
	n, err := ix.Forget(context.Background(), "bk", "k", "")
	if n != 8 || err != nil || len(m.names) != 2 || m.pages != 4 {
		t.Fatalf("Forget over four pages = %d, %v; %d left, %d pages", n, err, len(m.names), m.pages)
	}
	m.failList = errors.New("listing broke")
	write(t, ix, "k", "u1", md5a, a)
	n, err = ix.Forget(context.Background(), "bk", "k", "")
	if n != 2 || !errors.Is(err, m.failList) || len(m.names) != 1 {
		t.Errorf("a failed listing: Forget = %d, %v; %d left", n, err, len(m.names))
	}
}

// TestBetween: the entries of the objects first..last only; a delimiter
// that could split an entry's fields is not sent, "/" is.
func TestBetween(t *testing.T) {
	m, ix, a, _ := newIndex(t)
	for _, k := range []string{"d/a", "d/b", "d/b c", "d/c", "d/e/f", "d/z"} {
		write(t, ix, k, "up", md5a, a)
	}
	got, err := ix.Between(context.Background(), "bk", "d/", "/", "d/b", "d/e/")
	var keys []string
	for _, e := range got {
		keys = append(keys, e.Key)
	}
	if err != nil || strings.Join(keys, ",") != "d/b c,d/b,d/c" { // in name order
		t.Errorf("Between = %q, %v", keys, err)
	}
	if o := m.lists[len(m.lists)-1]; o.Delimiter != "/" || o.Prefix != Prefix+"d/" || o.StartAfter != Prefix+"d/b" || o.MaxPages != 4 {
		t.Errorf("listed %+v", o)
	}
	for _, d := range []string{" ", "-", "a", "7"} {
		if _, err := ix.Between(context.Background(), "bk", "", d, "a", "z"); err != nil {
			t.Fatal(err)
		}
		if o := m.lists[len(m.lists)-1]; o.Delimiter != "" {
			t.Errorf("delimiter %q sent", d)
		}
	}
}

// TestWalk: every entry under the prefix, names that are not entries
// skipped; fn's error stops the walk and is returned.
func TestWalk(t *testing.T) {
	m, ix, a, _ := newIndex(t)
	ctx := context.Background()
	for _, k := range []string{"p/1", "p/2", "q/1"} {
		write(t, ix, k, "up", md5a, a)
	}
	m.names["bk\x00"+Prefix+"p/nofields"] = true
	var seen []string
	if err := ix.Walk(ctx, "bk", "p/", func(e Entry) error { seen = append(seen, e.Key); return nil }); err != nil || strings.Join(seen, ",") != "p/1,p/2" {
		t.Errorf("Walk = %q, %v", seen, err)
	}
	stop := errors.New("stop")
	n := 0
	if err := ix.Walk(ctx, "bk", "", func(Entry) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("Walk stopped = %v after %d", err, n)
	}
}
