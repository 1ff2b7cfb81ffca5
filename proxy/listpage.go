package proxy

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// A listing page through the proxy shows nothing of the proxy's own keys
// (invariant 10): not as entries, not as common prefixes, not in its page
// markers. Where a page loses entries to the index and is truncated, the
// proxy lists on (the follow-up pages of refill) until the page holds
// what the client asked for or the listing ends, jumping over the whole
// reserved range where a page ends inside it; the page markers it answers
// are those of the last page it read, which lies past the index.

// reservedEnd sorts after every key under the reserved prefix and before
// every other key after it: a listing that starts after it has left the
// index behind.
const reservedEnd = reservedPrefix + "\U0010FFFF"

// maxRefills bounds the follow-up pages one client page costs. One jump
// leaves the index behind; the others cover common prefixes dropped on
// the way.
const maxRefills = 4

// listKind is which of the three listings a page is of.
type listKind int

const (
	listV1 listKind = iota
	listV2
	listVersions
)

func kindOf(q url.Values) listKind {
	switch {
	case q.Has("versions"):
		return listVersions
	case q.Get("list-type") == "2":
		return listV2
	}
	return listV1
}

// rewriteListing returns body with client ETags and without the index.
func (s *Server) rewriteListing(ctx context.Context, ex *exchange, bucket string, q url.Values, body []byte) ([]byte, error) {
	urlEnc := strings.EqualFold(q.Get("encoding-type"), "url")
	pl, err := parseListing(body, urlEnc)
	if err != nil {
		return nil, err
	}
	if err := s.judgePrefixes(ctx, ex, bucket, q, pl); err != nil {
		return nil, err
	}
	etags := s.pageETags(ctx, ex, bucket, q, pl)
	var tok *tokenEdit
	if kindOf(q) == listV2 {
		tok = &tokenEdit{seal: ex.rt.tokens.seal, client: ex.clientToken}
	}
	// A page marker in the reserved range (MinIO's carry what it read
	// last) is left behind like a last entry there.
	for _, name := range []string{"NextMarker", "NextKeyMarker"} {
		if v, ok := pl.next[name]; ok {
			if urlEnc {
				v, _ = url.QueryUnescape(v)
			}
			pl.lastReserved = pl.lastReserved || reservedKey(v)
		}
	}
	need := len(pl.drop)
	if pl.lastReserved && pl.truncated && need == 0 {
		need = 1 // nothing dropped, but the page ends in the index: list on past it
	}
	if need == 0 || !pl.truncated {
		return splice(body, pl, etags, nil, tok), nil
	}
	// Entries were dropped from a truncated page: list on.
	f := &followed{truncated: true, next: pl.next, last: pl.last, lastReserved: pl.lastReserved}
	if len(pl.prefixes) > 0 {
		f.lastPrefix = pl.prefixes[len(pl.prefixes)-1].prefix
	}
	kept := len(pl.objects) + len(pl.prefixes)
	for round := 0; need > 0 && f.truncated && round < maxRefills; round++ {
		page, err := s.followPage(ctx, ex, bucket, q, f, need)
		if err != nil {
			return nil, err
		}
		n := f.add(page, urlEnc)
		kept += n
		need -= page.used()
	}
	return splice(body, pl, etags, &pageEnd{f: f, kind: kindOf(q), kept: kept, tok: tok}, tok), nil
}

// used is how many entries of max-keys a page used: every entry and
// common prefix it listed, the dropped ones too.
func (pl *parsedListing) used() int {
	return len(pl.objects) + len(pl.prefixes) + len(pl.drop)
}

// followed is what the follow-up pages added, and where the listing
// stands after the last of them.
type followed struct {
	entries      bytes.Buffer // the follow-up pages' kept entries, rewritten
	truncated    bool
	next         map[string]string
	last         string
	lastReserved bool
	lastPrefix   string // the last common prefix kept, not to repeat
}

// followPage lists the page after f's, up to need entries, and makes it
// ready to add: prefixes judged, ETags in place.
func (s *Server) followPage(ctx context.Context, ex *exchange, bucket string, q url.Values, f *followed, need int) (*followPage, error) {
	fq := url.Values{}
	for p, vv := range q {
		fq[p] = vv
	}
	fq.Set("max-keys", strconv.Itoa(need))
	urlEnc := strings.EqualFold(q.Get("encoding-type"), "url")
	marker := func(name string) string {
		v := f.next[name]
		if urlEnc {
			v, _ = url.QueryUnescape(v)
		}
		return v
	}
	switch kind := kindOf(q); {
	case kind == listV2 && f.lastReserved:
		fq.Del("continuation-token")
		fq.Set("start-after", reservedEnd)
	case kind == listV2:
		fq.Set("continuation-token", f.next["NextContinuationToken"])
	case kind == listV1 && f.lastReserved:
		fq.Set("marker", reservedEnd)
	case kind == listV1 && f.next["NextMarker"] != "":
		fq.Set("marker", marker("NextMarker"))
	case kind == listV1:
		fq.Set("marker", f.last)
	case f.lastReserved: // versions
		fq.Set("key-marker", reservedEnd)
		fq.Del("version-id-marker")
	default:
		fq.Set("key-marker", marker("NextKeyMarker"))
		if v := marker("NextVersionIdMarker"); v != "" {
			fq.Set("version-id-marker", v)
		} else {
			fq.Del("version-id-marker")
		}
	}
	ur := exemptRequest(http.MethodGet, target{Bucket: bucket}, fq)
	resp, err := s.roundTrip(ctx, ex, ur, nil)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxListingBody+1))
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(body) > maxListingBody {
		return nil, s3err.New(s3err.BadGateway, "listing on past ssec-proxy's own keys failed (status %d)", resp.StatusCode)
	}
	pl, err := parseListing(body, urlEnc)
	if err != nil {
		return nil, s3err.New(s3err.BadGateway, "the upstream's listing page is not valid XML")
	}
	if err := s.judgePrefixes(ctx, ex, bucket, q, pl); err != nil {
		return nil, err
	}
	return &followPage{parsedListing: pl, body: body, etags: s.pageETags(ctx, ex, bucket, q, pl)}, nil
}

type followPage struct {
	*parsedListing
	body  []byte
	etags map[int]string
}

// add appends a follow-up page's kept entries (ETags rewritten) and moves
// the listing's position to the page's end; it returns how many entries
// it kept.
func (f *followed) add(p *followPage, urlEnc bool) int {
	type piece struct {
		span
		object int // index in objects, -1 for a common prefix
	}
	var pieces []piece
	for i, o := range p.objects {
		pieces = append(pieces, piece{o.whole, i})
	}
	for _, cp := range p.prefixes {
		if cp.prefix == f.lastPrefix {
			continue // listed already, on the page before
		}
		pieces = append(pieces, piece{cp.whole, -1})
		f.lastPrefix = cp.prefix
	}
	sort.Slice(pieces, func(i, j int) bool { return pieces[i].start < pieces[j].start })
	for _, pc := range pieces {
		if pc.object >= 0 {
			if v, ok := p.etags[pc.object]; ok {
				et := p.objects[pc.object].etagText
				f.entries.Write(p.body[pc.start:et.start])
				f.entries.WriteString("&#34;" + v + "&#34;")
				f.entries.Write(p.body[et.end:pc.end])
				continue
			}
		}
		f.entries.Write(p.body[pc.start:pc.end])
	}
	f.truncated, f.next = p.truncated, p.next
	if p.last != "" {
		f.last, f.lastReserved = p.last, p.lastReserved
	}
	return len(pieces)
}

// pageEnd is how a page that was listed on ends: the entries added, the
// truncation and page markers of the last page read, the new KeyCount.
type pageEnd struct {
	f    *followed
	kind listKind
	kept int
	tok  *tokenEdit
}

// tokenEdit seals V2's continuation tokens: the one answered, and the
// one the upstream echoes (the client's own, sealed, goes back instead).
type tokenEdit struct {
	seal   func(string) string
	client string
}

// markers writes the page markers of the last page read, those of the
// listing's kind, when it is truncated.
func (e *pageEnd) markers() string {
	if !e.f.truncated {
		return ""
	}
	var names []string
	switch e.kind {
	case listV1:
		names = []string{"NextMarker"}
	case listV2:
		names = []string{"NextContinuationToken"}
	case listVersions:
		names = []string{"NextKeyMarker", "NextVersionIdMarker"}
	}
	var b strings.Builder
	for _, n := range names {
		if v, ok := e.f.next[n]; ok {
			if n == "NextContinuationToken" && e.tok != nil {
				v = e.tok.seal(v)
			}
			b.WriteString("<" + n + ">" + escapeText(v) + "</" + n + ">")
		}
	}
	return b.String()
}

func escapeText(v string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(v))
	return b.String()
}

// pageETags finds the client ETags of a page's objects: from the cache,
// else from the index entries that sort with them.
func (s *Server) pageETags(ctx context.Context, ex *exchange, bucket string, q url.Values, pl *parsedListing) map[int]string {
	etags := make(map[int]string) // index in pl.objects → client ETag
	if !ex.rt.md5ETags {
		return etags // etags: upstream: the index is only left out
	}
	ring := ex.rt.ring
	var misses []int
	for i, o := range pl.objects {
		if o.etag == "" || o.etagText.start < 0 {
			continue
		}
		if !ring.Match(bucket, o.key).Encrypt {
			continue
		}
		switch v, known := s.etags.Get(bucket, o.etag); {
		case v != "":
			etags[i] = v
		case !known:
			misses = append(misses, i)
		}
	}
	if len(misses) > 0 {
		s.lookupPage(ctx, ex, bucket, q, pl, misses, etags)
	}
	return etags
}

// splice copies body, leaving out pl.drop and putting client ETags and
// the new KeyCount in place; with end, the page was listed on: the
// follow-up entries go after its last entry, and its truncation and page
// markers become those of the last page read.
func splice(body []byte, pl *parsedListing, etags map[int]string, end *pageEnd, tok *tokenEdit) []byte {
	type edit struct {
		span
		text string
	}
	var edits []edit
	if end != nil {
		// First: an edit that starts where this insertion is must come
		// after it (the sort is stable).
		at := pl.entriesEnd
		if at < 0 {
			at = pl.rootEnd
		}
		if at >= 0 {
			edits = append(edits, edit{span{at, at}, end.f.entries.String() + end.markers()})
		}
	}
	dropped := 0
	for _, d := range pl.drop {
		if d.end > d.start {
			edits = append(edits, edit{d, ""})
			dropped++
		}
	}
	for i, v := range etags {
		edits = append(edits, edit{pl.objects[i].etagText, "&#34;" + v + "&#34;"})
	}
	if end != nil {
		for _, sp := range pl.nextSpans {
			edits = append(edits, edit{sp, ""})
		}
		if pl.truncText.start >= 0 {
			edits = append(edits, edit{pl.truncText, strconv.FormatBool(end.f.truncated)})
		}
	}
	if tok != nil {
		if pl.echoText.start >= 0 {
			edits = append(edits, edit{pl.echoText, escapeText(tok.client)})
		}
		if pl.tokenText.start >= 0 && end == nil { // with end, markers() writes it
			edits = append(edits, edit{pl.tokenText, tok.seal(pl.nextToken)})
		}
	}
	if pl.keyCount.start >= 0 && (dropped > 0 || end != nil) {
		n := max(pl.count-dropped, 0)
		if end != nil {
			n = end.kept
		}
		edits = append(edits, edit{pl.keyCount, strconv.Itoa(n)})
	}
	if len(edits) == 0 {
		return body
	}
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var out bytes.Buffer
	out.Grow(len(body))
	pos := int64(0)
	for _, e := range edits {
		if e.start < pos {
			continue // inside a dropped entry
		}
		out.Write(body[pos:e.start])
		out.WriteString(e.text)
		pos = e.end
	}
	out.Write(body[pos:])
	return out.Bytes()
}
