package etagindex

import (
	"context"
	"errors"
	"strings"

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
// object, or of a page of a bucket listing, in four.
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
	// order, until fn returns false or the listing ends.
	List(ctx context.Context, bucket string, opts ListOptions, fn func(name string) bool) error
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
	// MaxPages bounds the listing's requests, of up to 1,000 names each;
	// 0: no bound.
	MaxPages int
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

// Entries lists the entries of key's object, of every upstream ETag. On
// an error it returns those it listed before.
func (ix Index) Entries(ctx context.Context, bucket, key string) ([]Entry, error) {
	var out []Entry
	err := ix.each(ctx, bucket, ListOptions{Prefix: Prefix + key + " ", MaxPages: entriesPages}, "", func(e Entry) bool {
		if e.Key == key {
			out = append(out, e)
		}
		return true
	})
	return out, err
}

// Forget removes the entries of key's object but those of the upstream
// ETag keep ("" removes them all): after a delete, or an overwrite that
// keep is the new object's. It removes what it listed even when the
// listing failed part way, and reports how many it removed (0 when a
// removal failed: then some may be gone).
func (ix Index) Forget(ctx context.Context, bucket, key, keep string) (removed int, err error) {
	entries, err := ix.Entries(ctx, bucket, key)
	var gone []Entry
	for _, e := range entries {
		if e.UpstreamETag != keep {
			gone = append(gone, e)
		}
	}
	if len(gone) == 0 {
		return 0, err
	}
	if rerr := ix.Remove(ctx, bucket, gone...); rerr != nil {
		return 0, errors.Join(err, rerr)
	}
	return len(gone), err
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
	return ix.Objects.List(ctx, bucket, opts, func(name string) bool {
		if stopAfter != "" && name > stopAfter {
			return false
		}
		e, ok := ParseName(name)
		return !ok || fn(e)
	})
}
