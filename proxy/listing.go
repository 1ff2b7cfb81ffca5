package proxy

import (
	"context"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
)

// A listing response (ListObjects, ListObjectsV2, ListObjectVersions) is
// rewritten in place, byte for byte but for what changes: entries under the
// proxy's reserved prefix are dropped (KeyCount follows), and the ETag of
// each object written through the proxy becomes its client ETag.

type span struct{ start, end int64 }

type listedObject struct {
	key      string
	etag     string // upstream, unquoted
	etagText span   // the character data of <ETag>
	whole    span   // the <Contents>/<Version>/<DeleteMarker> element
}

type listedPrefix struct {
	prefix string // decoded
	whole  span
}

type parsedListing struct {
	objects  []listedObject
	prefixes []listedPrefix // the common prefixes kept
	drop     []span         // reserved entries and common prefixes
	reserved []string       // the keys of the reserved entries (the ETag index's)
	// maybe are common prefixes that the reserved prefix falls under
	// (".", ".ssec-" for delimiters "." and "-"): shown only where a key
	// of the user's shares them (judgePrefixes), by index in prefixes.
	maybe    []int
	keyCount span
	count    int // KeyCount as listed

	truncated bool   // IsTruncated
	truncText span   // the character data of <IsTruncated>
	nextToken string // NextContinuationToken
	// next holds the page markers (NextMarker, NextKeyMarker,
	// NextVersionIdMarker, NextContinuationToken) as listed, still
	// URL-encoded where the listing is; nextSpans their whole elements.
	next      map[string]string
	nextSpans []span
	// tokenText and echoText are the character data of
	// <NextContinuationToken> and <ContinuationToken>: V2's tokens are
	// the upstream's, sealed before a client sees them (listtoken.go).
	tokenText, echoText span
	// last is the greatest key or common prefix on the page (decoded), and
	// lastReserved whether it is the proxy's.
	last         string
	lastReserved bool
	entriesEnd   int64 // the end of the last entry element, -1 if none
	rootEnd      int64 // where the root element's end tag starts
}

// isNextMarker names the page markers of the three listings.
func isNextMarker(name string) bool {
	return name == "NextMarker" || name == "NextKeyMarker" || name == "NextVersionIdMarker" || name == "NextContinuationToken"
}

// maxListingBody bounds a listing page the proxy rewrites (1,000 entries
// of 1 KiB keys fit many times over).
const maxListingBody = 16 << 20

// parseListing finds the entries, ETags and KeyCount of a listing page.
// A byte scanner reads the XML that S3 services send (the common subset:
// no comments, DTDs or CDATA, no carriage returns in text); a page outside
// that subset, or one encoding/xml would refuse, is read again by
// encoding/xml, 3 to 6 times slower (BenchmarkListingRewrite,
// BenchmarkIndexPage). Both feed the same tokens to the same reading
// (FuzzParseListingScanner holds them to the same result).
func parseListing(body []byte, urlEncoded bool) (*parsedListing, error) {
	pl, err := readListing(&scanner{body: body}, urlEncoded)
	if err == errNotSimple {
		return readListing(newXMLTokens(body), urlEncoded)
	}
	return pl, err
}

// A token is what the reading of a listing needs of one XML token: its
// kind, the element's local name (start and end), the text (character
// data, entities decoded) and where it starts and ends in the body.
type token struct {
	kind          tokenKind
	name          []byte // a part of the body, or of encoding/xml's token
	text          []byte
	before, after int64
}

type tokenKind int

const (
	tokOther tokenKind = iota // a processing instruction: no part of the reading
	tokStart
	tokEnd
	tokText
)

type tokenSource interface {
	next() (token, error) // io.EOF at the end
}

func readListing(src tokenSource, urlEncoded bool) (*parsedListing, error) {
	pl := &parsedListing{keyCount: span{-1, -1}, truncText: span{-1, -1}, entriesEnd: -1, rootEnd: -1,
		tokenText: span{-1, -1}, echoText: span{-1, -1}}
	var (
		depth      int
		cur        *listedObject
		inCP       bool
		cpStart    int64
		field      []byte // the depth-2 or -3 element being read
		fieldStart int64  // where the depth-2 field's start tag begins
		fieldText  span   // the depth-2 field's content
		// The text of a <Prefix> in <CommonPrefixes> and of the depth-2
		// fields read (KeyCount, IsTruncated, the page markers), gathered
		// to their end tags: a processing instruction or a comment may
		// split it into several tokens.
		prefix, text []byte
	)
	decode := func(v string) string {
		if urlEncoded {
			// A name that does not decode is judged as it came: the
			// index's own entries then still read as reserved.
			if d, err := url.QueryUnescape(v); err == nil {
				return d
			}
		}
		return v
	}
	seen := func(key string, reserved bool) {
		if key >= pl.last {
			pl.last, pl.lastReserved = key, reserved
		}
	}
	for {
		t, err := src.next()
		if err == io.EOF {
			return pl, nil
		}
		if err != nil {
			return nil, err
		}
		switch t.kind {
		case tokStart:
			depth++
			switch {
			case depth == 2 && (string(t.name) == "Contents" || string(t.name) == "Version" || string(t.name) == "DeleteMarker"):
				cur = &listedObject{whole: span{t.before, -1}, etagText: span{-1, -1}}
			case depth == 2 && string(t.name) == "CommonPrefixes":
				inCP, cpStart, prefix = true, t.before, prefix[:0]
			case depth == 2 && (string(t.name) == "KeyCount" || string(t.name) == "IsTruncated" ||
				string(t.name) == "ContinuationToken" || isNextMarker(string(t.name))):
				field, text = t.name, text[:0]
				fieldStart, fieldText = t.before, span{t.after, t.after}
				if string(field) == "KeyCount" {
					pl.keyCount = span{-1, -1}
				}
			case depth == 3:
				field = t.name
				if string(field) == "ETag" && cur != nil {
					cur.etagText = span{t.after, t.after}
				}
			}
		case tokText:
			switch {
			case depth == 2 && string(field) == "KeyCount":
				if pl.keyCount.start < 0 {
					pl.keyCount.start = t.before
				}
				pl.keyCount.end = t.after
				text = append(text, t.text...)
			case depth == 2 && field != nil:
				text = append(text, t.text...) // IsTruncated, the page markers
			case depth == 3 && cur != nil && string(field) == "Key":
				cur.key += string(t.text)
			case depth == 3 && cur != nil && string(field) == "ETag":
				cur.etag += string(t.text)
				cur.etagText.end = t.after
			case depth == 3 && inCP && string(field) == "Prefix":
				prefix = append(prefix, t.text...)
			}
		case tokEnd:
			if depth == 2 && field != nil {
				fieldText.end = t.before
				v := string(text)
				switch name := string(field); {
				case name == "KeyCount":
					pl.count, _ = strconv.Atoi(strings.TrimSpace(v))
				case name == "IsTruncated":
					pl.truncated, pl.truncText = strings.TrimSpace(v) == "true", fieldText
				case name == "ContinuationToken":
					pl.echoText = fieldText
				default:
					if pl.next == nil {
						pl.next = map[string]string{}
					}
					pl.next[name] = v
					pl.nextSpans = append(pl.nextSpans, span{fieldStart, t.after})
					if name == "NextContinuationToken" {
						pl.nextToken, pl.tokenText = v, fieldText
					}
				}
			}
			if depth == 2 {
				switch {
				case cur != nil:
					cur.whole.end = t.after
					cur.key = decode(cur.key)
					cur.etag = unquote(cur.etag)
					if reservedKey(cur.key) {
						pl.drop = append(pl.drop, cur.whole)
						pl.reserved = append(pl.reserved, cur.key)
					} else {
						pl.objects = append(pl.objects, *cur)
					}
					seen(cur.key, reservedKey(cur.key))
					pl.entriesEnd = t.after
					cur = nil
				case inCP:
					p := decode(string(prefix))
					whole := span{cpStart, t.after}
					switch {
					case reservedKey(p):
						pl.drop = append(pl.drop, whole)
					case strings.HasPrefix(reservedPrefix, p):
						pl.maybe = append(pl.maybe, len(pl.prefixes))
						pl.prefixes = append(pl.prefixes, listedPrefix{p, whole})
					default:
						pl.prefixes = append(pl.prefixes, listedPrefix{p, whole})
					}
					seen(p, reservedKey(p))
					pl.entriesEnd = t.after
				}
				inCP = false
			}
			if depth == 1 {
				pl.rootEnd = t.before
			}
			if depth == 2 || depth == 3 {
				field = nil
			}
			depth--
		}
	}
}

func (s *Server) lookupPage(ctx context.Context, ex *exchange, bucket string, q url.Values, pl *parsedListing, misses []int, etags map[int]string) {
	first, last := pl.objects[misses[0]].key, pl.objects[misses[0]].key
	for _, i := range misses {
		first, last = min(first, pl.objects[i].key), max(last, pl.objects[i].key)
	}
	entries, err := s.index(ex).Between(ctx, bucket, q.Get("prefix"), q.Get("delimiter"), first, last)
	if err != nil {
		s.logIndexError(ex, "reading", err.Error())
	}
	found := make(map[string]etagindex.Entry, len(entries))
	for _, e := range entries {
		found[e.Key+" "+e.UpstreamETag] = e
	}
	for _, i := range misses {
		o := pl.objects[i]
		e, ok := found[o.key+" "+o.etag]
		if !ok {
			s.etags.Put(bucket, o.etag, "") // written without the proxy
			continue
		}
		d := ex.rt.ring.Match(bucket, o.key)
		if v, ok := e.Open(readKeys(d)); ok {
			etags[i] = v
			s.etags.Put(bucket, o.etag, v)
		}
	}
}
