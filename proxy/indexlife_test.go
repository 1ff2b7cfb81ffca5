package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

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
		w.waitUntil(k, time.Now().Add(time.Second))
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
	// A write that never ends holds a sweep only until its deadline.
	w.start(k, "B")
	t0 := time.Now()
	w.waitUntil(k, t0.Add(50*time.Millisecond))
	if d := time.Since(t0); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("waited %v for a write that never ends, want the 50 ms deadline", d)
	}
}

// TestRemoveEntries: the index's entries go in one DeleteObjects, but a
// name XML cannot carry (a control character, which encoding would turn
// into U+FFFD and so name another object) goes in a DeleteObject of its
// own.
func TestRemoveEntries(t *testing.T) {
	p := newTestProxy(t)
	p.up.status, p.up.body = http.StatusOK, "<DeleteResult></DeleteResult>"
	ex := &exchange{rt: p.h.rt.Load()}
	names := []string{reservedPrefix + "etags/a up s", reservedPrefix + "etags/b\x01 up s", reservedPrefix + "etags/c up s"}
	if err := p.h.index(ex).Objects.Remove(context.Background(), "enc", names); err != nil {
		t.Fatal(err)
	}
	var posts, dels int
	for _, r := range p.up.all() {
		switch r.Method {
		case http.MethodPost:
			posts++
			if !strings.Contains(string(r.Body), "etags/a up s") || !strings.Contains(string(r.Body), "etags/c up s") || strings.Contains(string(r.Body), "etags/b") {
				t.Errorf("DeleteObjects body %s", r.Body)
			}
		case http.MethodDelete:
			dels++
			if !strings.Contains(r.Path, "b%01") {
				t.Errorf("DeleteObject of %s", r.Path)
			}
		}
	}
	if posts != 1 || dels != 1 {
		t.Errorf("%d DeleteObjects and %d DeleteObject, want one each", posts, dels)
	}
	for _, c := range []struct {
		s  string
		ok bool
	}{{"a b/ü", true}, {"tab\there", true}, {"a\x01", false}, {"a\x1f", false}, {"\xff", false}, {"\uFFFE", false}} {
		if xmlText(c.s) != c.ok {
			t.Errorf("xmlText(%q) = %v", c.s, !c.ok)
		}
	}
}

// TestForgetsAreBounded: with maxForgets clean-ups waiting (a slow
// upstream), one more holds its request until one of them is done
// (back-pressure: memory bounded), and is then taken, not dropped.
func TestForgetsAreBounded(t *testing.T) {
	p := newTestProxy(t)
	ex := &exchange{rt: p.h.rt.Load(), id: "req"}
	if !ex.rt.md5ETags {
		t.Fatal("the test config has no MD5 ETags")
	}
	obs := &hookRecorder{}
	if _, err := New(Options{Config: p.cfg, Keyring: p.h.rt.Load().ring, Observer: obs}); err != nil {
		t.Fatal(err)
	}
	for range maxForgets {
		forgetSlots <- struct{}{}
	}
	if n := obs.cleanups(); n != maxForgets {
		t.Errorf("ssec_proxy_index_cleanups_pending would say %d, want the %d held", n, maxForgets)
	}
	defer func() { // the test's own: the clean-up's went when it finished
		for len(forgetSlots) > 0 {
			<-forgetSlots
		}
	}()
	done := make(chan struct{})
	go func() {
		p.h.forgetEntries(ex, "enc", "k", "")
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("a clean-up was taken past the bound")
	case <-time.After(100 * time.Millisecond):
	}
	<-forgetSlots // one of the others is done
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the clean-up waited on after room was made")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	DrainCleanups(ctx)
	if ctx.Err() != nil {
		t.Fatal("the clean-up taken never finished")
	}
	listed := false
	for _, r := range p.up.all() {
		if r.Method == http.MethodGet && strings.Contains(r.Query, "etags%2Fk") {
			listed = true
		}
	}
	if !listed {
		t.Error("the clean-up taken after the wait did not run (no listing of k's entries)")
	}
}
