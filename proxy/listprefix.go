package proxy

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// judgePrefixes decides the common prefixes that the reserved prefix
// falls under ("." with delimiter "."): one is shown only where a key of
// the user's lies under it, which up to two listings of one key find
// (the first key under it, else the first after the reserved range).
func (s *Server) judgePrefixes(ctx context.Context, ex *exchange, bucket string, q url.Values, pl *parsedListing) error {
	if len(pl.maybe) == 0 {
		return nil
	}
	keep := pl.prefixes[:0:0]
	for i, cp := range pl.prefixes {
		if !containsInt(pl.maybe, i) {
			keep = append(keep, cp)
			continue
		}
		found, err := s.userKeyUnder(ctx, ex, bucket, kindOf(q) == listVersions, cp.prefix)
		if err != nil {
			return err
		}
		if found {
			keep = append(keep, cp)
		} else {
			pl.drop = append(pl.drop, cp.whole)
			if cp.prefix == pl.last {
				pl.lastReserved = true // nothing of the user's there: list on past the index
			}
		}
	}
	pl.prefixes, pl.maybe = keep, nil
	return nil
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// userKeyUnder reports whether bucket holds a key (or, for a versions
// listing, a version) under prefix that is not the proxy's: the first key
// under it, else the first after the reserved range. MinIO refuses the
// prefix "." (and the marker "."); there the listing starts just before
// "." instead, without a prefix.
func (s *Server) userKeyUnder(ctx context.Context, ex *exchange, bucket string, versions bool, prefix string) (bool, error) {
	for _, after := range []string{"", reservedEnd} {
		q := url.Values{"max-keys": {"1"}}
		switch {
		case prefix != ".":
			q.Set("prefix", prefix)
		case after == "":
			after = "-\U0010FFFF" // just before ".": MinIO refuses "." as a marker too
		}
		switch {
		case versions:
			q.Set("versions", "")
			if after != "" {
				q.Set("key-marker", after)
			}
		default:
			q.Set("list-type", "2")
			if after != "" {
				q.Set("start-after", after)
			}
		}
		ur := exemptRequest(http.MethodGet, target{Bucket: bucket}, q)
		resp, err := s.roundTrip(ctx, ex, ur, nil)
		if err != nil {
			return false, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxListingBody))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return false, s3err.New(s3err.BadGateway, "looking under a common prefix failed (status %d)", resp.StatusCode)
		}
		pl, err := parseListing(body, false)
		if err != nil {
			return false, s3err.New(s3err.BadGateway, "the upstream's listing page is not valid XML")
		}
		for _, o := range pl.objects {
			if strings.HasPrefix(o.key, prefix) {
				return true, nil
			}
		}
	}
	return false, nil
}
