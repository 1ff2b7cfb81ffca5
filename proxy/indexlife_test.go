package proxy

import "testing"

// TestKeyWritesKeepTheNewest: a clean-up of a key's entries that began
// before a newer write of the key was answered keeps that write's entry,
// whatever order the clean-ups run in (three overwrites in a row, each
// clean-up run after the last write, left no entry at all: the e2e
// "overwrite" case failed in CI on it), and what the tracker remembers
// goes when nothing of the key is under way.
func TestKeyWritesKeepTheNewest(t *testing.T) {
	w := newKeyWrites()
	const k = "b\x00key"
	settle := func(k string, since uint64, keep string) string { // as a sweep does
		w.wait(k)
		defer w.finish(k)
		return w.keepOf(k, since, keep)
	}
	var since []uint64
	for _, up := range []string{"U1", "U2", "U3"} {
		w.start(k, up) // the overwrite's entry
		since = append(since, w.begin(k))
	}
	for range 3 {
		w.done(k)
	}
	for i, own := range []string{"U3", "U1", "U2"} { // any order
		j := map[string]int{"U1": 0, "U2": 1, "U3": 2}[own]
		if got := settle(k, since[j], own); got != "U3" {
			t.Errorf("clean-up %d of the write of %s keeps %s, want U3", i, own, got)
		}
	}
	// A delete's clean-up, then a write before the clean-up ran.
	s := w.begin(k)
	w.start(k, "U9")
	w.done(k)
	if got := settle(k, s, ""); got != "U9" {
		t.Errorf("a delete's clean-up keeps %q, want the later write's U9", got)
	}
	// Nothing newer: the clean-up's own keep.
	w.start(k, "A")
	s = w.begin(k)
	w.done(k)
	if got := settle(k, s, "A"); got != "A" {
		t.Errorf("keeps %q, want A", got)
	}
	if len(w.n)+len(w.users)+len(w.last) != 0 {
		t.Errorf("left behind: %v %v %v", w.n, w.users, w.last)
	}
}
