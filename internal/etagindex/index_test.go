package etagindex

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

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

func (m *memObjects) List(_ context.Context, bucket string, opts ListOptions, fn func(string) bool) (bool, error) {
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
	size := m.pageSize
	if opts.MaxKeys > 0 && opts.MaxKeys < size {
		size = opts.MaxKeys
	}
	for i, name := range page {
		if i%size == 0 {
			if opts.MaxPages > 0 && i/size == opts.MaxPages {
				return true, nil
			}
			if i > 0 && m.failList != nil {
				return false, m.failList
			}
			m.pages++
		}
		if strings.HasPrefix(name, "prefix:") {
			continue
		}
		if !fn(name) {
			return false, nil
		}
	}
	return false, nil
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

// TestEntriesOf: the entries of many objects, found with one listing when
// their keys are neighbours, one per key when they are far apart; those
// gone picks go, the others and those of other objects stay.
func TestEntriesOf(t *testing.T) {
	m, ix, a, _ := newIndex(t)
	ctx := context.Background()
	forgetAll := func(ix Index, keys []string, gone func(Entry) bool) (int, error) {
		entries, err := ix.EntriesOf(ctx, "bk", keys)
		if err != nil {
			return 0, err
		}
		stale := map[string]Entry{}
		for _, e := range entries {
			if !slices.Contains(keys, e.Key) {
				t.Errorf("an entry of %q, not one of the keys asked for", e.Key)
			}
			if gone(e) {
				stale[e.Name()] = e
			}
		}
		return len(stale), ix.Remove(ctx, "bk", slices.Collect(maps.Values(stale))...)
	}
	var keys []string
	keep := map[string]string{}
	for i := range 50 {
		k := fmt.Sprintf("d/%03d", i)
		keys = append(keys, k)
		write(t, ix, k, "new", md5a, a)
		keep[k] = "new"
		if i%2 == 0 {
			write(t, ix, k, "old", md5a, a) // an overwrite's stale entry
		}
		if i%5 == 0 {
			write(t, ix, k+"x", "old", md5a, a) // another object's, between
		}
	}
	gone := func(e Entry) bool { return e.UpstreamETag != keep[e.Key] }
	before := len(m.lists)
	n, err := forgetAll(ix, keys, gone)
	if n != 25 || err != nil {
		t.Fatalf("forgetAll = %d, %v", n, err)
	}
	if got := len(m.lists) - before; got != 1 {
		t.Errorf("%d listings for 50 neighbouring keys, want 1", got)
	}
	if o := m.lists[before]; o.Prefix != Prefix+"d/0" || o.StartAfter != Prefix+"d/000" || o.MaxPages != 1 {
		t.Errorf("listed %+v", o)
	}
	if len(m.names) != 60 {
		t.Errorf("%d names left, want the 50 kept and the 10 of other objects", len(m.names))
	}

	// Far apart: the first page is mostly other objects' entries, then each
	// key is listed on its own.
	m, ix, a, _ = newIndex(t)
	for i := range 300 {
		write(t, ix, fmt.Sprintf("f/%04d", i), "up", md5a, a)
	}
	far := []string{"f/0000", "f/0100", "f/0200", "f/0299"}
	for _, k := range far {
		write(t, ix, k, "old", md5a, a)
	}
	keep = map[string]string{"f/0000": "up", "f/0100": "up", "f/0200": "up", "f/0299": "up"}
	n, err = forgetAll(ix, far, gone)
	if n != 4 || err != nil || len(m.names) != 300 {
		t.Fatalf("far apart: forgetAll = %d, %v; %d names left", n, err, len(m.names))
	}
	if len(m.lists) > 1+len(far) {
		t.Errorf("far apart: %d listings for %d keys", len(m.lists), len(far))
	}
	for _, o := range m.lists {
		if o.MaxKeys == 0 && o.MaxPages != entriesPages {
			t.Errorf("a listing of one key read %d pages", o.MaxPages)
		}
	}

	// A key with more entries than the page: it and the keys after it
	// are listed on their own.
	m, ix, a, _ = newIndex(t)
	for i := range 20 {
		write(t, ix, "k", fmt.Sprintf("u%02d", i), md5a, a)
	}
	write(t, ix, "l", "old", md5a, a)
	write(t, ix, "m", "old", md5a, a)
	n, err = forgetAll(ix, []string{"m", "k", "l", "k"}, func(Entry) bool { return true })
	if n != 22 || err != nil || len(m.names) != 0 {
		t.Fatalf("a long key: forgetAll = %d, %v; %d names left", n, err, len(m.names))
	}

	// A key and a longer one with a space or a "(" after it: the
	// shorter's entries sort after the longer's ("Report d41d8…" after
	// "Report (1) …"), and are found too.
	m, ix, a, _ = newIndex(t)
	for _, k := range []string{"Report", "Report (1)", "a", "a b"} {
		write(t, ix, k, "d41d8cd98f00b204e9800998ecf8427e", md5a, a)
		write(t, ix, k, "0old", md5a, a)
	}
	write(t, ix, "z", "up", md5a, a) // a name after them all
	n, err = forgetAll(ix, []string{"Report", "Report (1)", "a", "a b"}, func(Entry) bool { return true })
	if n != 8 || err != nil || len(m.names) != 1 {
		t.Fatalf("keys that prefix others: forgetAll = %d, %v; %d names left", n, err, len(m.names))
	}

	// Keys whose common bytes end inside a character: the prefix stops
	// before it (S3 keys are UTF-8).
	m, ix, a, _ = newIndex(t)
	write(t, ix, "éa", "old", md5a, a)
	write(t, ix, "èa", "old", md5a, a)
	if n, err := forgetAll(ix, []string{"éa", "èa"}, func(Entry) bool { return true }); n != 2 || err != nil {
		t.Errorf("forgetAll = %d, %v", n, err)
	}
	if o := m.lists[0]; o.Prefix != Prefix {
		t.Errorf("listed under %q, which ends inside a character", o.Prefix)
	}
}

// TestStale: an entry goes when its object is gone, or when no version of
// it has the entry's upstream ETag.
func TestStale(t *testing.T) {
	es := []Entry{{"a", "u1", "s"}, {"a", "u2", "s"}, {"b", "u1", "s"}, {"c", "u1", "s"}, {"c", "u0", "s"}}
	got := Stale(es, map[string]map[string]bool{"a": {"u2": true}, "c": {"u1": true, "u0": true}})
	if len(got) != 2 || got[0] != es[0] || got[1] != es[2] {
		t.Errorf("Stale = %v", got)
	}
}

// TestEntriesOfPartial: a key listed on its own reads four pages at most;
// a listing that fails part way returns what it listed, and the error.
func TestEntriesOfPartial(t *testing.T) {
	m, ix, a, _ := newIndex(t)
	m.pageSize = 2
	for _, up := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "v1"} {
		write(t, ix, "k", up, md5a, a)
	}
	es, err := ix.EntriesOf(context.Background(), "bk", []string{"k"})
	if len(es) != 8 || err != nil || m.pages != 4 {
		t.Fatalf("EntriesOf over four pages = %d, %v; %d pages", len(es), err, m.pages)
	}
	m.failList = errors.New("listing broke")
	es, err = ix.EntriesOf(context.Background(), "bk", []string{"k"})
	if len(es) != 2 || !errors.Is(err, m.failList) {
		t.Errorf("a failed listing: EntriesOf = %d, %v", len(es), err)
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

// TestRunsOfObjects: Runs over plain object names, as the proxy lists the
// current objects of a sweep (a key's name is the key; the page starts
// after the key less its last character): every key there is found, one
// not there is not, with one listing for neighbours, and on its own when
// the page is too small for the names between.
func TestRunsOfObjects(t *testing.T) {
	m := &memObjects{names: map[string]bool{}, pageSize: 1000}
	for _, n := range []string{"a/1", "a/1-x", "a/10", "a/11", "a/2", "a/é", "b"} {
		m.names["bk\x00"+n] = true
	}
	r := Runs{
		After: func(k string) string { _, n := utf8.DecodeLastRuneInString(k); return k[:len(k)-n] },
		End:   func(k string) string { return k },
		Owner: func(name string) (string, bool) { return name, true },
		Alone: func(k string) ListOptions { return ListOptions{Prefix: k, MaxKeys: 1, MaxPages: 1} },
	}
	list := func(ctx context.Context, opts ListOptions, fn func(string) bool) (bool, error) {
		return m.List(ctx, "bk", opts, fn)
	}
	for _, c := range []struct {
		keys  []string
		found string
		lists int
	}{
		{[]string{"a/1", "a/10", "a/2", "a/3"}, "a/1,a/10,a/2", 1},
		// A page of 6 names under a/, the last of them: all covered.
		{[]string{"a/é", "a/1"}, "a/1,a/é", 1},
		// A page of 6 names, full at a/é with b after it: a/1
		// covered, then b listed on its own, since the page held
		// mostly other names.
		{[]string{"a/1", "b"}, "a/1,b", 2},
		{[]string{"a/11"}, "a/11", 1},
		{[]string{"a/3"}, "", 1},
	} {
		m.lists = nil
		var found []string
		if err := r.List(context.Background(), c.keys, list, func(k, name string) {
			if k != name {
				t.Errorf("name %q for key %q", name, k)
			}
			if !slices.Contains(found, k) {
				found = append(found, k)
			}
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Join(found, ",") != c.found || len(m.lists) != c.lists {
			t.Errorf("keys %q: found %q in %d listings, want %q in %d", c.keys, found, len(m.lists), c.found, c.lists)
		}
	}
}

// TestRunsRefuseDisorder: a shared page whose names do not increase is an
// error, not a coverage (what is not listed before a later name would be
// taken as absent: for objects, as gone).
func TestRunsRefuseDisorder(t *testing.T) {
	r := Runs{
		After: func(k string) string { return k[:len(k)-1] },
		End:   func(k string) string { return k },
		Owner: func(name string) (string, bool) { return name, true },
		Alone: func(k string) ListOptions { return ListOptions{Prefix: k, MaxKeys: 1, MaxPages: 1} },
	}
	list := func(_ context.Context, _ ListOptions, fn func(string) bool) (bool, error) {
		for _, n := range []string{"b", "c", "a"} {
			if !fn(n) {
				break
			}
		}
		return false, nil
	}
	var found []string
	err := r.List(context.Background(), []string{"a", "b", "c"}, list, func(k, _ string) { found = append(found, k) })
	if err == nil || !strings.Contains(err.Error(), "after") {
		t.Errorf("a page out of order: err %v (found %q)", err, found)
	}
}
