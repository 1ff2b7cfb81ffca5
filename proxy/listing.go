package proxy

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

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

// xmlTokens reads tokens with encoding/xml: any well-formed XML.
type xmlTokens struct{ dec *xml.Decoder }

func newXMLTokens(body []byte) *xmlTokens {
	return &xmlTokens{dec: xml.NewDecoder(bytes.NewReader(body))}
}

func (x *xmlTokens) next() (token, error) {
	before := x.dec.InputOffset()
	tok, err := x.dec.Token()
	if err != nil {
		return token{}, err
	}
	t := token{before: before, after: x.dec.InputOffset()}
	switch tt := tok.(type) {
	case xml.StartElement:
		t.kind, t.name = tokStart, []byte(tt.Name.Local)
	case xml.EndElement:
		t.kind, t.name = tokEnd, []byte(tt.Name.Local)
	case xml.CharData:
		t.kind, t.text = tokText, tt
	}
	return t, nil
}

// errNotSimple sends a page to encoding/xml.
var errNotSimple = errors.New("listing: not in the subset the scanner reads")

// scanner reads the common subset of XML straight from the bytes: start
// tags (their attributes checked, not kept), end tags matched against the
// open ones, text with the five named entities and character references,
// and processing instructions. Anything else, and anything encoding/xml
// would refuse, is errNotSimple.
type scanner struct {
	body    []byte
	pos     int
	open    [][]byte // names of the open elements
	text    []byte   // reused for decoded text
	ended   bool     // the root element has closed
	pending *token   // the end of an empty-element tag, <Name/>
}

func (s *scanner) next() (token, error) {
	if t := s.pending; t != nil {
		s.pending = nil
		return *t, nil
	}
	b := s.body
	if s.pos >= len(b) {
		if len(s.open) > 0 {
			return token{}, errNotSimple // unclosed: let encoding/xml say so
		}
		return token{}, io.EOF
	}
	start := s.pos
	if b[start] != '<' {
		end := bytes.IndexByte(b[start:], '<')
		if end < 0 {
			end = len(b)
		} else {
			end += start
		}
		raw := b[start:end]
		if len(s.open) == 0 {
			// Outside the root only white space is XML.
			if len(bytes.TrimLeft(raw, " \t\n")) > 0 {
				return token{}, errNotSimple
			}
		}
		text, ok := s.decode(raw)
		if !ok {
			return token{}, errNotSimple
		}
		s.pos = end
		return token{kind: tokText, text: text, before: int64(start), after: int64(end)}, nil
	}
	if start+1 >= len(b) {
		return token{}, errNotSimple
	}
	switch b[start+1] {
	case '?':
		// <?target ...?>, the target a name: anything else is left to
		// encoding/xml.
		end := bytes.Index(b[start+2:], []byte("?>"))
		if end < 0 || !validName(b[start+2:start+2+nameLen(b[start+2:])]) {
			return token{}, errNotSimple
		}
		s.pos = start + 2 + end + 2
		pi := b[start:s.pos]
		if bytes.HasPrefix(pi, []byte("<?xml")) && !xmlDecl(pi) || slices.ContainsFunc(pi, notPlain) {
			return token{}, errNotSimple // encoding/xml checks the version, the encoding, the characters
		}
		return token{kind: tokOther, before: int64(start), after: int64(s.pos)}, nil
	case '!':
		return token{}, errNotSimple // comment, CDATA, DOCTYPE
	case '/':
		end := bytes.IndexByte(b[start:], '>')
		if end < 0 {
			return token{}, errNotSimple
		}
		name := bytes.TrimRight(b[start+2:start+end], " \t\n")
		if len(s.open) == 0 || !bytes.Equal(s.open[len(s.open)-1], name) {
			return token{}, errNotSimple
		}
		s.open = s.open[:len(s.open)-1]
		if len(s.open) == 0 {
			s.ended = true
		}
		s.pos = start + end + 1
		return token{kind: tokEnd, name: localName(name), before: int64(start), after: int64(s.pos)}, nil
	}
	if s.ended {
		return token{}, errNotSimple // a second root
	}
	// A start tag: the name, then attributes up to '>' or "/>".
	i := start + 1
	i += nameLen(b[i:])
	if i >= len(b) || !validName(b[start+1:i]) || !(b[i] == '>' || b[i] == '/' || b[i] == ' ' || b[i] == '\t' || b[i] == '\n') {
		return token{}, errNotSimple
	}
	name := b[start+1 : i]
	// Attributes: name="value" or name='value', values without '<', '&'
	// or bytes outside ASCII; then '>' or "/>".
	selfClosing := false
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return token{}, errNotSimple
		}
		if b[i] == '>' {
			break
		}
		if b[i] == '/' {
			if i+1 >= len(b) || b[i+1] != '>' {
				return token{}, errNotSimple
			}
			selfClosing, i = true, i+1
			break
		}
		n := nameLen(b[i:])
		if !validName(b[i : i+n]) {
			return token{}, errNotSimple
		}
		i = skipSpace(b, i+n)
		if i >= len(b) || b[i] != '=' {
			return token{}, errNotSimple
		}
		i = skipSpace(b, i+1)
		if i >= len(b) || b[i] != '"' && b[i] != '\'' {
			return token{}, errNotSimple
		}
		quote := b[i]
		end := bytes.IndexByte(b[i+1:], quote)
		if end < 0 || slices.ContainsFunc(b[i+1:i+1+end], func(c byte) bool { return c == '<' || c == '&' || notPlain(c) }) {
			return token{}, errNotSimple
		}
		i += 1 + end + 1
		if i < len(b) && !(b[i] == '>' || b[i] == '/' || b[i] == ' ' || b[i] == '\t' || b[i] == '\n') {
			return token{}, errNotSimple // attributes run together
		}
	}
	s.pos = i + 1
	t := token{kind: tokStart, name: localName(name), before: int64(start), after: int64(s.pos)}
	if selfClosing {
		// <Name/>: a start, then an end that takes no bytes, as
		// encoding/xml gives them.
		s.pending = &token{kind: tokEnd, name: t.name, before: t.after, after: t.after}
		if len(s.open) == 0 {
			s.ended = true
		}
		return t, nil
	}
	s.open = append(s.open, name)
	return t, nil
}

// isNameByte reports the ASCII bytes of XML names; a name with others
// goes to encoding/xml.
func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':'
}

// notPlain reports the bytes the scanner leaves to encoding/xml in tags:
// beyond ASCII, and control characters but tab and line feed.
func notPlain(c byte) bool { return c >= 0x80 || c < 0x20 && c != '\t' && c != '\n' }

// xmlDecl reports the XML declarations S3 services send.
func xmlDecl(pi []byte) bool {
	switch string(pi) {
	case `<?xml version="1.0"?>`, `<?xml version="1.0" encoding="UTF-8"?>`, `<?xml version="1.0" encoding="utf-8"?>`:
		return true
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n') {
		i++
	}
	return i
}

func nameLen(b []byte) int {
	n := 0
	for n < len(b) && isNameByte(b[n]) {
		n++
	}
	return n
}

// validName reports a name the scanner reads as encoding/xml does: it
// starts with a letter or '_', and has no colon or one with text on both
// sides (prefix:local).
func validName(name []byte) bool {
	if len(name) == 0 || !('a' <= name[0] && name[0] <= 'z' || 'A' <= name[0] && name[0] <= 'Z' || name[0] == '_') {
		return false
	}
	i := bytes.IndexByte(name, ':')
	return i < 0 || i < len(name)-1 && bytes.IndexByte(name[i+1:], ':') < 0
}

func localName(name []byte) []byte {
	if i := bytes.IndexByte(name, ':'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// decode returns the text of raw with its entities replaced; ok is false
// for what the scanner leaves to encoding/xml (carriage returns, which XML
// turns into line feeds, other control characters, other entities).
func (s *scanner) decode(raw []byte) ([]byte, bool) {
	var special, high, bracket bool
	for _, c := range raw {
		switch {
		case c >= 0x80:
			high = true
		case c == '&' || c < 0x20 && c != '\t' && c != '\n':
			special = true
		case c == ']':
			bracket = true
		}
	}
	if bracket && bytes.Contains(raw, []byte("]]>")) || high && !validUTF8Text(raw) {
		return nil, false
	}
	if !special {
		return raw, true
	}
	out := s.text[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c < 0x20 && c != '\t' && c != '\n' {
			return nil, false
		}
		if c != '&' {
			out = append(out, c)
			continue
		}
		end := bytes.IndexByte(raw[i:], ';')
		if end < 0 {
			return nil, false
		}
		ref := string(raw[i+1 : i+end])
		i += end
		switch ref {
		case "lt":
			out = append(out, '<')
		case "gt":
			out = append(out, '>')
		case "amp":
			out = append(out, '&')
		case "apos":
			out = append(out, '\'')
		case "quot":
			out = append(out, '"')
		default:
			r, ok := charRef(ref)
			if !ok {
				return nil, false
			}
			out = utf8.AppendRune(out, r)
		}
	}
	s.text = out
	return out, true
}

// validUTF8Text reports UTF-8 whose characters XML allows (encoding/xml
// refuses the others).
func validUTF8Text(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 || !xmlChar(r) {
			return false
		}
		b = b[n:]
	}
	return true
}

func xmlChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// charRef reads "#34" or "#x22"; ok is false for anything else and for
// characters XML does not allow.
func charRef(ref string) (rune, bool) {
	num, ok := strings.CutPrefix(ref, "#")
	if !ok || num == "" {
		return 0, false
	}
	base := 10
	if h, ok := strings.CutPrefix(num, "x"); ok {
		num, base = h, 16
	}
	if num == "" || num[0] == '+' || num[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(num, base, 32)
	if err != nil {
		return 0, false
	}
	r := rune(n)
	return r, xmlChar(r)
}

// lookupPage reads the index entries that sort with the page's missing
// objects: one listing of the index, a few pages at most.
func (s *Server) lookupPage(ctx context.Context, ex *exchange, bucket string, q url.Values, pl *parsedListing, misses []int, etags map[int]string) {
	first, last := pl.objects[misses[0]].key, pl.objects[misses[0]].key
	for _, i := range misses {
		first, last = min(first, pl.objects[i].key), max(last, pl.objects[i].key)
	}
	delimiter := q.Get("delimiter")
	if strings.ContainsAny(delimiter, " -_0123456789abcdefABCDEF") {
		delimiter = "" // it could split an entry's own fields
	}
	entries, err := s.listIndex(ctx, ex, bucket, indexPrefix+q.Get("prefix"), delimiter,
		indexPrefix+first, indexPrefix+last+" \xff", 4)
	if err != nil {
		s.logIndexError(ex, "reading", err.Error())
	}
	sealed := make(map[string]string, len(entries))
	for _, e := range entries {
		sealed[e.key+" "+e.upstreamETag] = e.sealed
	}
	for _, i := range misses {
		o := pl.objects[i]
		seal, ok := sealed[o.key+" "+o.etag]
		if !ok {
			s.etags.put(bucket, o.etag, "") // written without the proxy
			continue
		}
		d := ex.rt.ring.Match(bucket, o.key)
		if v, ok := etagindex.Open(readKeys(d), o.etag, seal); ok {
			etags[i] = v
			s.etags.put(bucket, o.etag, v)
		}
	}
}
