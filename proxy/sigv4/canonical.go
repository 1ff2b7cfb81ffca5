package sigv4

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// bufPool holds the buffers canonical requests are built in.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// queryPair is one decoded query parameter.
type queryPair struct {
	key, value string
}

// parseQuery splits a raw query into decoded pairs, in order. A part that
// does not decode is kept as sent.
func parseQuery(raw string) []queryPair {
	if raw == "" {
		return nil
	}
	q := make([]queryPair, 0, strings.Count(raw, "&")+1)
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		q = append(q, queryPair{key: unescapeQuery(k), value: unescapeQuery(v)})
	}
	return q
}

func unescapeQuery(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

const upperHex = "0123456789ABCDEF"

// appendURIEncode appends s encoded as SigV4 UriEncode does: every byte but
// A-Z a-z 0-9 - _ . ~ as %XX (upper-case), and '/' kept when keepSlash.
func appendURIEncode(dst []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || c == '/' && keepSlash {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
}

// canonicalURIs returns the canonical URIs to try: the decoded path encoded
// as AWS clients encode it, and the path exactly as the client sent it (S3
// neither normalises nor double-encodes). The second is "" when unknown.
func canonicalURIs(r *http.Request) [2]string {
	var raw string
	if ru := r.RequestURI; ru != "" && ru[0] == '/' {
		raw, _, _ = strings.Cut(ru, "?")
	} else {
		raw = r.URL.EscapedPath()
	}
	enc := string(appendURIEncode(make([]byte, 0, len(r.URL.Path)+16), r.URL.Path, true))
	if enc == "" {
		enc = "/"
	}
	if raw == "" {
		raw = "/"
	}
	return [2]string{enc, raw}
}

// appendCanonicalQuery appends the canonical query string: every pair
// URI-encoded, sorted by key then value; X-Amz-Signature left out when
// presigned.
func appendCanonicalQuery(dst []byte, q []queryPair, presigned bool) []byte {
	if len(q) == 0 {
		return dst
	}
	enc := make([]queryPair, 0, len(q))
	var scratch []byte
	for _, kv := range q {
		if presigned && kv.key == "X-Amz-Signature" {
			continue
		}
		scratch = appendURIEncode(scratch[:0], kv.key, false)
		k := string(scratch)
		scratch = appendURIEncode(scratch[:0], kv.value, false)
		enc = append(enc, queryPair{key: k, value: string(scratch)})
	}
	slices.SortFunc(enc, func(a, b queryPair) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	for i, kv := range enc {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, kv.key...)
		dst = append(dst, '=')
		dst = append(dst, kv.value...)
	}
	return dst
}

// headerValues returns the values of the lower-case header name in r.
// Host, Content-Length and Transfer-Encoding come from where Go's server
// keeps them.
func headerValues(r *http.Request, name string) []string {
	switch name {
	case "host":
		h := r.Host
		if h == "" {
			h = r.URL.Host
		}
		return []string{h}
	case "content-length":
		if v, ok := r.Header["Content-Length"]; ok {
			return v
		}
		if r.ContentLength >= 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
		return nil
	case "transfer-encoding":
		if v, ok := r.Header["Transfer-Encoding"]; ok {
			return v
		}
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}
		}
		return nil
	}
	var kb [64]byte
	if len(name) > len(kb) {
		return r.Header.Values(name)
	}
	k := kb[:len(name)]
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		k[i] = c
		upper = c == '-'
	}
	if v, ok := r.Header[string(k)]; ok {
		return v
	}
	return r.Header[name] // a non-canonical key set directly in the map
}

// appendTrimAll appends v without leading and trailing blanks and with
// inner runs of blanks collapsed to one space.
func appendTrimAll(dst []byte, v string) []byte {
	space := false
	start := len(dst)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' || c == '\t' {
			space = true
			continue
		}
		if space && len(dst) > start {
			dst = append(dst, ' ')
		}
		space = false
		dst = append(dst, c)
	}
	return dst
}

// appendCanonicalRequest appends the SigV4 canonical request of r.
func appendCanonicalRequest(dst []byte, r *http.Request, uri string, q []queryPair, presigned bool, signed []string, hashVal string) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, '\n')
	dst = append(dst, uri...)
	dst = append(dst, '\n')
	dst = appendCanonicalQuery(dst, q, presigned)
	dst = append(dst, '\n')
	for _, name := range signed {
		dst = append(dst, name...)
		dst = append(dst, ':')
		if name == "host" {
			h := r.Host
			if h == "" {
				h = r.URL.Host
			}
			dst = appendTrimAll(dst, h)
			dst = append(dst, '\n')
			continue
		}
		for i, v := range headerValues(r, name) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendTrimAll(dst, v)
		}
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	for i, name := range signed {
		if i > 0 {
			dst = append(dst, ';')
		}
		dst = append(dst, name...)
	}
	dst = append(dst, '\n')
	dst = append(dst, hashVal...)
	return dst
}
