package etagindex

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ssec-proxy/ssec-proxy/keystore"
)

// The index's reads and writes, written once for the proxy and for rekey
// and index gc: which names to list for an object or a range of them,
// which listed names are entries of which object, which entry opens, what
// an entry is named and which names are too long, which entries of an
// object go when it is deleted or overwritten. The bucket itself is an
// Objects: the proxy's are its signed, exempt upstream requests,
// lifecycle's minio-go.

// MaxNameLen is S3's limit on an object key, in bytes: an object whose
// entry's name would be longer is not indexed (its responses carry the
// upstream's ETag).
const MaxNameLen = 1024

// Pages a look-up reads at most, of up to 1,000 names each: an object's
// entries of one upstream ETag fit in the first; all the entries of an
// object (listed on its own), or of a page of a bucket listing, in four.
const (
	lookupPages  = 1
	entriesPages = 4
	rangePages   = 4
)

// Objects is what the index needs of an S3 bucket.
type Objects interface {
	// PutEmpty writes an empty object.
	PutEmpty(ctx context.Context, bucket, name string) error
	// List calls fn with the names of the objects under opts.Prefix, in
	// order, until fn returns false or the listing ends; more reports
	// that it stopped at opts.MaxPages with names after them (S3 may
	// truncate a page short of MaxKeys).
	List(ctx context.Context, bucket string, opts ListOptions, fn func(name string) bool) (more bool, err error)
	// Remove removes the objects; it tries each, and reports the first
	// failure.
	Remove(ctx context.Context, bucket string, names []string) error
}

// ListOptions says what Objects.List lists.
type ListOptions struct {
	Prefix     string
	StartAfter string // "": from the first name under Prefix
	// Delimiter, when set, rolls names up as S3 does; the common
	// prefixes are not passed to fn. "" lists every name.
	Delimiter string
	// MaxPages bounds the listing's requests, of up to 1,000 names each
	// (MaxKeys when set); 0: no bound.
	MaxPages int
	// MaxKeys, when set (1 to 1,000), is the names a page holds at most.
	MaxKeys int
}

// Entry is an index entry: an object key, its upstream ETag, and its client
// ETag sealed (Seal).
type Entry struct{ Key, UpstreamETag, Sealed string }

// Name is the entry's object name.
func (e Entry) Name() string { return EntryName(e.Key, e.UpstreamETag, e.Sealed) }

// Open opens the entry's client ETag with the first of keys that fits.
func (e Entry) Open(keys []*keystore.Key) (string, bool) { return Open(keys, e.UpstreamETag, e.Sealed) }

// ParseName is ParseEntry as an Entry.
func ParseName(name string) (Entry, bool) {
	k, up, sealed, ok := ParseEntry(name)
	return Entry{k, up, sealed}, ok
}

// NewEntry seals clientETag under k into the entry of key's object with
// that upstream ETag. ok is false when nothing is to be written: an empty
// ETag, no key, or a name over MaxNameLen.
func NewEntry(key, upstreamETag, clientETag string, k *keystore.Key) (e Entry, ok bool) {
	if upstreamETag == "" || clientETag == "" || k == nil {
		return Entry{}, false
	}
	e = Entry{key, upstreamETag, Seal(k, upstreamETag, clientETag)}
	return e, len(e.Name()) <= MaxNameLen
}

// Index reads and writes the ETag index in the buckets of Objects.
type Index struct{ Objects Objects }

// Put writes an entry (made by NewEntry).
func (ix Index) Put(ctx context.Context, bucket string, e Entry) error {
	return ix.Objects.PutEmpty(ctx, bucket, e.Name())
}

// Write writes the entry of key's object (NewEntry, then Put). written is
// false, with no error, when there is nothing to write.
func (ix Index) Write(ctx context.Context, bucket, key, upstreamETag, clientETag string, k *keystore.Key) (written bool, err error) {
	e, ok := NewEntry(key, upstreamETag, clientETag, k)
	if !ok {
		return false, nil
	}
	if err := ix.Put(ctx, bucket, e); err != nil {
		return false, err
	}
	return true, nil
}

// Lookup finds the client ETag of key's object with that upstream ETag:
// the first of its entries that one of keys opens, and that entry. ok is
// false when there is none (an object not written through the proxy,
// or one whose entry no key of keys opens).
func (ix Index) Lookup(ctx context.Context, bucket, key, upstreamETag string, keys []*keystore.Key) (clientETag string, e Entry, ok bool, err error) {
	if upstreamETag == "" || len(keys) == 0 {
		return "", Entry{}, false, nil
	}
	opts := ListOptions{Prefix: Prefix + key + " " + upstreamETag + " ", MaxPages: lookupPages}
	err = ix.each(ctx, bucket, opts, "", func(f Entry) bool {
		if f.Key != key || f.UpstreamETag != upstreamETag {
			return true
		}
		clientETag, ok = f.Open(keys)
		e = f
		return !ok
	})
	if !ok {
		return "", Entry{}, false, err
	}
	return clientETag, e, true, nil
}

// EntriesOf lists the entries of several objects of a bucket at once (the
// clean-ups of the deletes and overwrites of a moment, which remove those
// Stale picks), sharing listings between neighbouring keys (Runs). On an
// error it returns those it listed before.
func (ix Index) EntriesOf(ctx context.Context, bucket string, keys []string) ([]Entry, error) {
	r := Runs{
		Base:  Prefix,
		After: func(k string) string { return Prefix + k },
		End:   func(k string) string { return Prefix + k + " \xff" },
		Owner: func(name string) (string, bool) {
			e, ok := ParseName(name)
			return e.Key, ok
		},
		Alone: func(k string) ListOptions { return ListOptions{Prefix: Prefix + k + " ", MaxPages: entriesPages} },
	}
	var out []Entry
	err := r.List(ctx, keys, func(ctx context.Context, opts ListOptions, fn func(string) bool) (bool, error) {
		return ix.Objects.List(ctx, bucket, opts, fn)
	}, func(_, name string) {
		e, _ := ParseName(name)
		out = append(out, e)
	})
	return out, err
}

// Stale is what of entries, listed before versions was (the upstream
// ETags of every version of their objects, as listed after them), no
// longer describes any version: its object is gone, or was replaced and
// no version with its ETag remains. (An entry listed was written after its
// object; if no version with its ETag is there after it, that object was
// replaced or deleted since.)
func Stale(entries []Entry, versions map[string]map[string]bool) []Entry {
	var out []Entry
	for _, e := range entries {
		if !versions[e.Key][e.UpstreamETag] {
			out = append(out, e)
		}
	}
	return out
}

// Runs finds the names that belong to a set of keys (an object's index
// entries; objects themselves) with few listings: sorted, neighbouring
// keys (a backup tool writes and deletes in key order) share a page that
// starts at the first key left, sized for the keys left; it covers every
// key whose names all come before the page's last name. While pages hold
// mostly the names of other keys (keys far apart), each key is listed on
// its own.
type Runs struct {
	Base  string                           // what every name starts with
	After func(k string) string            // a name before k's first name, after those of the keys before k
	End   func(k string) string            // a name after k's last
	Owner func(name string) (string, bool) // the key a name belongs to
	Alone func(k string) ListOptions       // how k's names are listed on their own
}

// A Lister lists names as Objects.List does.
type Lister func(ctx context.Context, opts ListOptions, fn func(name string) bool) (more bool, err error)

// List calls fn with each name of keys that list lists (a name may come
// twice), and returns the first error, after which it stops.
func (r Runs) List(ctx context.Context, keys []string, list Lister, fn func(key, name string)) error {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	take := func(name string) (ours bool) {
		if k, ok := r.Owner(name); ok && want[k] {
			fn(k, name)
			return true
		}
		return false
	}
	alone := len(keys) == 1
	for i := 0; i < len(keys); {
		if alone {
			if _, err := list(ctx, r.Alone(keys[i]), func(name string) bool { take(name); return true }); err != nil {
				return err
			}
			i++
			continue
		}
		rest := keys[i:]
		opts := ListOptions{Prefix: r.Base + commonPrefix(rest[0], rest[len(rest)-1]), StartAfter: r.After(rest[0]),
			MaxKeys: min(1000, 2*len(rest)+2), MaxPages: 1}
		// Past the greatest End of the keys left (not always the last
		// key's: "k" sorts before "k b", its entries after), every key is
		// covered.
		stop := ""
		for _, k := range rest {
			stop = max(stop, r.End(k))
		}
		n, ours, last, past := 0, 0, "", false
		var disorder error
		more, err := list(ctx, opts, func(name string) bool {
			if n > 0 && name <= last {
				// What covers a key is the order: a listing out of it
				// could make a key look covered, and absent.
				disorder = errors.New("etagindex: the upstream listed " + strconv.Quote(name) + " after " + strconv.Quote(last))
				return false
			}
			if name > stop {
				past = true // past the last key's names: every key covered
				return false
			}
			n++
			last = name
			if take(name) {
				ours++
			}
			return true
		})
		if err == nil {
			err = disorder
		}
		if err != nil {
			return err
		}
		covered := len(rest)
		if more && !past { // the keys whose names may go on past the page's last wait
			covered = 0
			for covered < len(rest) && last > r.End(rest[covered]) {
				covered++
			}
		}
		if covered == 0 {
			alone = true // the first key has more names than the page: listed on its own
			continue
		}
		i += covered
		alone = 2*ours < n
	}
	return nil
}

// commonPrefix is the longest prefix of a and b that ends on a
// character's boundary.
func commonPrefix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	for n > 0 && n < len(a) && !utf8.RuneStart(a[n]) {
		n--
	}
	return a[:n]
}

// Remove removes entries.
func (ix Index) Remove(ctx context.Context, bucket string, entries ...Entry) error {
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return ix.Objects.Remove(ctx, bucket, names)
}

// Between lists the entries of the objects from first to last (both
// included) under prefix, as a bucket listing with delimiter names them:
// the entries of one page of that listing. A delimiter that could split an
// entry's own fields (the space, the ETags' characters) is not used: then
// the entries of the objects below the page's common prefixes are listed
// too (and match none of its objects). On an error it returns those it
// listed before.
func (ix Index) Between(ctx context.Context, bucket, prefix, delimiter, first, last string) ([]Entry, error) {
	if strings.ContainsAny(delimiter, " -_0123456789abcdefABCDEF") {
		delimiter = ""
	}
	opts := ListOptions{Prefix: Prefix + prefix, Delimiter: delimiter, StartAfter: Prefix + first, MaxPages: rangePages}
	var out []Entry
	err := ix.each(ctx, bucket, opts, Prefix+last+" \xff", func(e Entry) bool {
		out = append(out, e)
		return true
	})
	return out, err
}

// Walk calls fn with every entry of the objects under prefix, in order,
// until fn returns an error, which it returns.
func (ix Index) Walk(ctx context.Context, bucket, prefix string, fn func(Entry) error) error {
	var ferr error
	err := ix.each(ctx, bucket, ListOptions{Prefix: Prefix + prefix}, "", func(e Entry) bool {
		ferr = fn(e)
		return ferr == nil
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// each lists the names opts says, and calls fn with those that are
// entries, until fn returns false or, when stopAfter is set, a name sorts
// after it.
func (ix Index) each(ctx context.Context, bucket string, opts ListOptions, stopAfter string, fn func(Entry) bool) error {
	_, err := ix.Objects.List(ctx, bucket, opts, func(name string) bool {
		if stopAfter != "" && name > stopAfter {
			return false
		}
		e, ok := ParseName(name)
		return !ok || fn(e)
	})
	return err
}
