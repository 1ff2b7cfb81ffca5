package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
)

// indexObjects is the ETag index's bucket (etagindex.Objects) seen through
// this proxy: signed upstream requests of an exchange, each with an exempt
// decision (the proxy's own objects carry no object data: no SSE-C
// headers), and only under the reserved prefix.
type indexObjects struct {
	s  *Server
	ex *exchange
}

var _ etagindex.Objects = indexObjects{}

// index is the ETag index, read and written on ex's behalf.
func (s *Server) index(ex *exchange) etagindex.Index {
	return etagindex.Index{Objects: indexObjects{s, ex}}
}

// maxIndexPage bounds a page of the index listing the proxy reads (1,000
// entries of the longest names fit).
const maxIndexPage = 8 << 20

func (o indexObjects) PutEmpty(ctx context.Context, bucket, name string) error {
	return o.send(ctx, http.MethodPut, bucket, name)
}

// send sends a PUT of an empty object or a DELETE of one of the proxy's
// own objects.
func (o indexObjects) send(ctx context.Context, method, bucket, name string) error {
	if !reservedKey(name) {
		return errIndex("refusing to touch a name outside " + reservedPrefix)
	}
	ur := exemptRequest(method, target{Bucket: bucket, Key: name}, url.Values{})
	resp, err := o.s.roundTrip(ctx, o.ex, ur, nil)
	if err != nil {
		return err
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK && (method != http.MethodDelete || resp.StatusCode != http.StatusNoContent) {
		return errIndex(resp.Status)
	}
	return nil
}

// List lists with ListObjectsV2, up to opts.MaxPages pages (the upstream's
// pages: 1,000 names at most, or opts.MaxKeys); more is the last page's
// IsTruncated. Only the proxy's own names are listed.
func (o indexObjects) List(ctx context.Context, bucket string, opts etagindex.ListOptions, fn func(name string) bool) (more bool, err error) {
	if !reservedKey(opts.Prefix) {
		return false, errIndex("refusing to list outside " + reservedPrefix)
	}
	token := ""
	for page := 0; opts.MaxPages == 0 || page < opts.MaxPages; page++ {
		// URL-encoded: an entry of a key with a character XML cannot
		// hold (a control character) is listed too.
		q := url.Values{"list-type": {"2"}, "prefix": {opts.Prefix}, "encoding-type": {"url"}}
		if opts.Delimiter != "" {
			q.Set("delimiter", opts.Delimiter)
		}
		if opts.MaxKeys > 0 {
			q.Set("max-keys", strconv.Itoa(opts.MaxKeys))
		}
		if token != "" {
			q.Set("continuation-token", token)
		} else if opts.StartAfter != "" {
			q.Set("start-after", opts.StartAfter)
		}
		// Under the reserved prefix, every key is a reserved one.
		res, err := o.s.listingPage(ctx, o.ex, bucket, q)
		if err != nil {
			return false, err
		}
		for _, name := range res.reserved {
			if !fn(name) {
				return false, nil
			}
		}
		if !res.truncated {
			return false, nil
		}
		if res.nextToken == "" {
			return true, nil // truncated with no token to go on with
		}
		token = res.nextToken
	}
	return true, nil // truncated at MaxPages
}

// listingPage reads one page of a listing of bucket (q: ListObjectsV2's
// or ListObjectVersions' parameters) with the listing scanner
// (listing.go), for the proxy's own use. Keys are decoded only if the
// upstream says it URL-encoded them ("a+b" is not "a b").
func (s *Server) listingPage(ctx context.Context, ex *exchange, bucket string, q url.Values) (*parsedListing, error) {
	resp, err := s.roundTrip(ctx, ex, exemptRequest(http.MethodGet, target{Bucket: bucket}, q), nil)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIndexPage))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		return nil, errIndex("listing: " + resp.Status)
	}
	res, err := parseListing(body, bytes.Contains(body, []byte("<EncodingType>url</EncodingType>")))
	if err != nil {
		return nil, errIndex("listing: " + err.Error())
	}
	return res, nil
}

// xmlText reports whether XML 1.0 can carry s as character data.
func xmlText(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r > 0xD7FF && r < 0xE000 || r == 0xFFFE || r == 0xFFFF {
			return false
		}
	}
	return true
}

// Remove deletes the names, the proxy's own only: DeleteObjects of up to
// 1,000 at a time; one DeleteObject for a name alone, or one that XML
// cannot carry (a control character).
func (o indexObjects) Remove(ctx context.Context, bucket string, names []string) error {
	var first error
	objs := make([]objectVersion, 0, len(names))
	for _, name := range names {
		switch {
		case !reservedKey(name):
			return errIndex("refusing to touch a name outside " + reservedPrefix)
		case len(names) == 1 || !xmlText(name):
			if err := o.send(ctx, http.MethodDelete, bucket, name); err != nil && first == nil {
				first = err
			}
		default:
			objs = append(objs, objectVersion{key: name})
		}
	}
	for i := 0; i < len(objs); i += 1000 {
		if err := o.s.deleteOwn(ctx, o.ex, bucket, objs[i:min(i+1000, len(objs))]); err != nil && first == nil {
			first = err
		}
	}
	return first
}
