package sigv2

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// bufPool holds the buffers strings to sign are built in.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// subresourceNames are the query parameters S3's Signature Version 2
// signs: the S3 documentation's list and the ones botocore, minio-go and
// s3cmd sign besides.
var subresourceNames = map[string]bool{
	"accelerate": true, "acl": true, "analytics": true, "cors": true, "delete": true,
	"encryption": true, "inventory": true, "legal-hold": true, "lifecycle": true,
	"location": true, "logging": true, "metrics": true, "notification": true,
	"object-lock": true, "partNumber": true, "policy": true, "replication": true,
	"requestPayment": true, "response-cache-control": true,
	"response-content-disposition": true, "response-content-encoding": true,
	"response-content-language": true, "response-content-type": true,
	"response-expires": true, "restore": true, "retention": true, "select": true,
	"select-type": true, "storageClass": true, "tagging": true, "torrent": true,
	"uploadId": true, "uploads": true, "versionId": true, "versioning": true,
	"versions": true, "website": true,
}

// IsSubresource reports whether the query parameter name (decoded, case
// as sent) is one Signature Version 2 signs. Any other query parameter of
// a V2 request is not covered by its signature.
func IsSubresource(name string) bool { return subresourceNames[name] }

// queryPair is one decoded query parameter.
type queryPair struct {
	key, value string
}

// parseQuery splits a raw query into decoded pairs, in order; a part that
// does not decode is kept as sent.
func parseQuery(raw string) []queryPair {
	q, _ := splitQuery(raw)
	return q
}

// parseQueryStrict is parseQuery that refuses a query with a part Go's
// url.ParseQuery would drop (a bad escape or a ';'), since what is signed
// and what the proxy forwards would then differ.
func parseQueryStrict(raw string) ([]queryPair, error) {
	q, ok := splitQuery(raw)
	if !ok {
		return nil, s3err.New(s3err.InvalidArgument, "The query string is not valid URL encoding.")
	}
	return q, nil
}

func splitQuery(raw string) ([]queryPair, bool) {
	if raw == "" {
		return nil, true
	}
	good := true
	q := make([]queryPair, 0, strings.Count(raw, "&")+1)
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		if strings.IndexByte(part, ';') >= 0 {
			good = false
		}
		k, v, _ := strings.Cut(part, "=")
		dk, ok1 := unescapeQuery(k)
		dv, ok2 := unescapeQuery(v)
		good = good && ok1 && ok2
		q = append(q, queryPair{key: dk, value: dv})
	}
	return q, good
}

func unescapeQuery(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s, false
	}
	return u, true
}

// subresources returns the signed query parameters, sorted by name. A
// subresource given twice, or whose value holds '&' (which would read as
// another subresource in the string to sign), is refused.
func subresources(q []queryPair) ([]queryPair, error) {
	var sub []queryPair
	for _, kv := range q {
		if !subresourceNames[kv.key] {
			continue
		}
		if strings.IndexByte(kv.value, '&') >= 0 {
			return nil, s3err.New(s3err.InvalidArgument, "The value of the query parameter %s holds '&', which Signature Version 2 cannot sign unambiguously.", kv.key)
		}
		sub = append(sub, kv)
	}
	slices.SortFunc(sub, func(a, b queryPair) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(sub); i++ {
		if sub[i].key == sub[i-1].key {
			return nil, s3err.New(s3err.InvalidArgument, "The query parameter %s appears more than once.", sub[i].key)
		}
	}
	return sub, nil
}

// header is one canonical x-amz-* header: lower-case name, values joined.
type header struct {
	name, value string
}

// amzHeaders returns the canonical x-amz-* headers of r, sorted by name:
// values unfolded and trimmed, several values (or header lines) of one
// name joined with ','. A presigned request's x-amz-* query parameters
// count too, after the headers of the same name.
func amzHeaders(h http.Header, q []queryPair, presigned bool) []header {
	type src struct {
		name string // lower-cased
		key  string // as it is in h or q
		vals []string
	}
	var srcs []src
	for name, vv := range h {
		if lower := strings.ToLower(name); strings.HasPrefix(lower, "x-amz-") {
			srcs = append(srcs, src{lower, name, vv})
		}
	}
	// Several map keys may lower-case alike (a key set without
	// canonicalisation): order those by the key as it is in the map,
	// never by the map's iteration order.
	slices.SortFunc(srcs, func(a, b src) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	if presigned {
		for _, kv := range q {
			if lower := strings.ToLower(kv.key); strings.HasPrefix(lower, "x-amz-") {
				srcs = append(srcs, src{lower, kv.key, []string{kv.value}})
			}
		}
		slices.SortStableFunc(srcs, func(a, b src) int { return strings.Compare(a.name, b.name) })
	}
	var out []header
	var b []byte
	for i := 0; i < len(srcs); {
		j := i
		b = b[:0]
		n := 0
		for ; j < len(srcs) && srcs[j].name == srcs[i].name; j++ {
			for _, v := range srcs[j].vals {
				if n > 0 {
					b = append(b, ',')
				}
				b = appendValue(b, v)
				n++
			}
		}
		out = append(out, header{srcs[i].name, string(b)})
		i = j
	}
	return out
}

// appendValue appends v trimmed of blanks, with each line fold (CR or LF
// and the blanks around it) as one space.
func appendValue(dst []byte, v string) []byte {
	v = strings.Trim(v, " \t\r\n")
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\r' && c != '\n' {
			dst = append(dst, c)
			continue
		}
		for len(dst) > 0 && (dst[len(dst)-1] == ' ' || dst[len(dst)-1] == '\t') {
			dst = dst[:len(dst)-1]
		}
		for i+1 < len(v) && strings.IndexByte(" \t\r\n", v[i+1]) >= 0 {
			i++
		}
		dst = append(dst, ' ')
	}
	return dst
}

// rawPath returns the request path exactly as the client sent it.
func rawPath(r *http.Request) string {
	var p string
	if ru := r.RequestURI; ru != "" && ru[0] == '/' {
		p, _, _ = strings.Cut(ru, "?")
	} else {
		p = r.URL.EscapedPath()
	}
	if p == "" {
		p = "/"
	}
	return p
}

// appendStringToSign appends the V2 string to sign:
//
//	Method \n Content-MD5 \n Content-Type \n Date \n
//	x-amz-name:value \n ... [/vhostBucket]path[?sub[=value]&...]
func appendStringToSign(dst []byte, method, contentMD5, contentType, date string, amz []header, path, vhostBucket string, sub []queryPair) []byte {
	dst = append(dst, method...)
	dst = append(dst, '\n')
	dst = append(dst, contentMD5...)
	dst = append(dst, '\n')
	dst = append(dst, contentType...)
	dst = append(dst, '\n')
	dst = append(dst, date...)
	dst = append(dst, '\n')
	for _, h := range amz {
		dst = append(dst, h.name...)
		dst = append(dst, ':')
		dst = append(dst, h.value...)
		dst = append(dst, '\n')
	}
	if vhostBucket != "" {
		dst = append(dst, '/')
		dst = append(dst, vhostBucket...)
	}
	dst = append(dst, path...)
	for i, kv := range sub {
		if i == 0 {
			dst = append(dst, '?')
		} else {
			dst = append(dst, '&')
		}
		dst = append(dst, kv.key...)
		if kv.value != "" {
			dst = append(dst, '=')
			dst = append(dst, kv.value...)
		}
	}
	return dst
}
