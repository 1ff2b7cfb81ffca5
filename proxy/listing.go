package proxy

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
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

type parsedListing struct {
	objects  []listedObject
	drop     []span // reserved entries and common prefixes
	keyCount span
	count    int // KeyCount as listed
}

// maxListingBody bounds a listing page the proxy rewrites (1,000 entries
// of 1 KiB keys fit many times over).
const maxListingBody = 16 << 20

func parseListing(body []byte, urlEncoded bool) (*parsedListing, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	pl := &parsedListing{keyCount: span{-1, -1}}
	var (
		depth   int
		cur     *listedObject
		inCP    bool
		cpStart int64
		field   string // the depth-2 element being read
	)
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			return pl, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 2 && (t.Name.Local == "Contents" || t.Name.Local == "Version" || t.Name.Local == "DeleteMarker"):
				cur = &listedObject{whole: span{before, -1}, etagText: span{-1, -1}}
			case depth == 2 && t.Name.Local == "CommonPrefixes":
				inCP, cpStart = true, before
			case depth == 2 && t.Name.Local == "KeyCount":
				field = "KeyCount"
			case depth == 3:
				field = t.Name.Local
				if field == "ETag" && cur != nil {
					after := dec.InputOffset()
					cur.etagText = span{after, after}
				}
			}
		case xml.CharData:
			switch {
			case depth == 2 && field == "KeyCount":
				pl.keyCount = span{before, dec.InputOffset()}
				pl.count, _ = strconv.Atoi(strings.TrimSpace(string(t)))
			case depth == 3 && cur != nil && field == "Key":
				cur.key += string(t)
			case depth == 3 && cur != nil && field == "ETag":
				cur.etag += string(t)
				cur.etagText.end = dec.InputOffset()
			case depth == 3 && inCP && field == "Prefix":
				p := string(t)
				if urlEncoded {
					p, _ = url.QueryUnescape(p)
				}
				if reservedKey(p) || p == strings.TrimSuffix(reservedPrefix, "/") {
					inCP = false
					pl.drop = append(pl.drop, span{cpStart, -1}) // end set below
				}
			}
		case xml.EndElement:
			if depth == 2 {
				switch {
				case cur != nil:
					cur.whole.end = dec.InputOffset()
					if urlEncoded {
						cur.key, _ = url.QueryUnescape(cur.key)
					}
					cur.etag = unquote(cur.etag)
					if reservedKey(cur.key) {
						pl.drop = append(pl.drop, cur.whole)
					} else {
						pl.objects = append(pl.objects, *cur)
					}
					cur = nil
				case len(pl.drop) > 0 && pl.drop[len(pl.drop)-1].end == -1:
					pl.drop[len(pl.drop)-1].end = dec.InputOffset()
				}
				inCP = false
			}
			if depth == 2 || depth == 3 {
				field = ""
			}
			depth--
		}
	}
}

// rewriteListing returns body with client ETags and without the index.
func (s *Server) rewriteListing(ctx context.Context, ex *exchange, bucket string, q url.Values, body []byte) ([]byte, error) {
	pl, err := parseListing(body, q.Get("encoding-type") == "url")
	if err != nil {
		return nil, err
	}
	ring := ex.rt.ring
	etags := make(map[int]string) // index in pl.objects → client ETag
	var misses []int
	for i, o := range pl.objects {
		if !ex.rt.md5ETags {
			break // etags: upstream: the index is only left out
		}
		if o.etag == "" || o.etagText.start < 0 {
			continue
		}
		if !ring.Match(bucket, o.key).Encrypt {
			continue
		}
		switch v, known := s.etags.get(bucket, o.etag); {
		case v != "":
			etags[i] = v
		case !known:
			misses = append(misses, i)
		}
	}
	if len(misses) > 0 {
		s.lookupPage(ctx, ex, bucket, q, pl, misses, etags)
	}
	return splice(body, pl, etags), nil
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
		if v, ok := openETag(readKeys(d), o.etag, seal); ok {
			etags[i] = v
			s.etags.put(bucket, o.etag, v)
		}
	}
}

// splice copies body, leaving out pl.drop and putting client ETags and
// the new KeyCount in place.
func splice(body []byte, pl *parsedListing, etags map[int]string) []byte {
	type edit struct {
		span
		text string
	}
	var edits []edit
	for _, d := range pl.drop {
		if d.end > d.start {
			edits = append(edits, edit{d, ""})
		}
	}
	for i, v := range etags {
		edits = append(edits, edit{pl.objects[i].etagText, "&#34;" + v + "&#34;"})
	}
	if pl.keyCount.start >= 0 && len(pl.drop) > 0 {
		n := pl.count
		for _, d := range pl.drop {
			if d.end > d.start {
				n--
			}
		}
		edits = append(edits, edit{pl.keyCount, strconv.Itoa(max(n, 0))})
	}
	if len(edits) == 0 {
		return body
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
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
