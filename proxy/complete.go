package proxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// prepareComplete reads the client's part list (bounded), puts the
// upstream's part ETags in place of the client's MD5s, and computes the
// client's multipart ETag from the client's.
func (s *Server) prepareComplete(ctx context.Context, ex *exchange, p *plan) error {
	if p.req.Body == nil {
		return nil
	}
	doc, err := io.ReadAll(io.LimitReader(p.req.Body, maxCompleteBody+1))
	if err != nil {
		return err
	}
	if len(doc) > maxCompleteBody {
		return s3err.New(s3err.MalformedXML, "the part list is larger than %d bytes", maxCompleteBody)
	}
	// The body changes below: the client's Content-MD5 is checked here,
	// and the upstream gets the MD5 of what it is sent (AWS checks it).
	if v := p.req.Header.Get("Content-Md5"); v != "" {
		if sum := md5.Sum(doc); base64.StdEncoding.EncodeToString(sum[:]) != v {
			return s3err.New(s3err.BadDigest, "")
		}
	}
	type part struct {
		number   int
		etag     string
		etagText span
	}
	var parts []part
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var cur *part
	field := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return s3err.New(s3err.MalformedXML, "")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == "Part" {
				cur = &part{etagText: span{-1, -1}}
			} else if cur != nil {
				field = t.Name.Local
				if field == "ETag" {
					cur.etagText = span{dec.InputOffset(), dec.InputOffset()}
				}
			}
		case xml.CharData:
			if cur != nil && field == "PartNumber" {
				cur.number, _ = strconv.Atoi(strings.TrimSpace(string(t)))
			}
			if cur != nil && field == "ETag" {
				cur.etag += string(t)
				cur.etagText.end = dec.InputOffset()
			}
		case xml.EndElement:
			if t.Name.Local == "Part" && cur != nil {
				parts = append(parts, *cur)
				cur = nil
			}
			field = ""
		}
	}
	upstreamParts, err := s.listUpstreamParts(ctx, ex, ex.target, p.req.Query.Get("uploadId"))
	var records map[string]string // part records, read once at the first part this instance does not know
	if err != nil {
		return err
	}
	var out bytes.Buffer
	pos := int64(0)
	clientETags := make([]string, 0, len(parts))
	for _, pt := range parts {
		client := unquote(strings.TrimSpace(pt.etag))
		clientETags = append(clientETags, client)
		up, ok := upstreamParts[pt.number]
		if !ok || pt.etagText.start < 0 {
			continue // the upstream will say InvalidPart
		}
		// The client's ETag must be that of the part it names, as S3
		// checks: the MD5 the proxy answered for the part (cached, or
		// from the part records any instance wrote), or the upstream's
		// (what a part without a record, UploadPartCopy's, was answered).
		want, _ := s.etags.Get(ex.target.Bucket, up)
		if want == "" && records == nil {
			if records, _, err = s.partMD5s(ctx, ex, ex.target, p.req.Query.Get("uploadId"), p.keys); err != nil {
				return err
			}
		}
		if want == "" {
			want = records[up]
		}
		if client != up && (want == "" || client != want) {
			return s3err.New(s3err.InvalidPart, "")
		}
		out.Write(doc[pos:pt.etagText.start])
		out.WriteString("&#34;" + up + "&#34;")
		pos = pt.etagText.end
	}
	out.Write(doc[pos:])
	if etag, ok := multipartETag(clientETags); ok {
		p.completeETag = etag
	}
	body := out.Bytes()
	sum := sha256.Sum256(body)
	p.req.Body, p.req.Length, p.req.Hash, p.req.Trailer = bytes.NewReader(body), int64(len(body)), hex.EncodeToString(sum[:]), nil
	if p.req.Header.Get("Content-Md5") != "" {
		m := md5.Sum(body)
		p.req.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(m[:]))
	}
	return nil
}

// listUpstreamParts maps part numbers to the upstream's part ETags.
func (s *Server) listUpstreamParts(ctx context.Context, ex *exchange, t target, uploadID string) (map[int]string, error) {
	out := map[int]string{}
	marker := ""
	for page := 0; page < 20; page++ {
		q := url.Values{"uploadId": {uploadID}, "max-parts": {"1000"}}
		if marker != "" {
			q.Set("part-number-marker", marker)
		}
		ur := exemptRequest(http.MethodGet, t, q) // ListParts
		resp, err := s.roundTrip(ctx, ex, ur, nil)
		if err != nil {
			return nil, err
		}
		var res struct {
			Parts []struct {
				PartNumber int    `xml:"PartNumber"`
				ETag       string `xml:"ETag"`
			} `xml:"Part"`
			IsTruncated          bool   `xml:"IsTruncated"`
			NextPartNumberMarker string `xml:"NextPartNumberMarker"`
		}
		err = xml.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&res)
		resp.Body.Close()
		if err == io.EOF {
			err = nil // no body: no parts
		}
		if resp.StatusCode == http.StatusNotFound {
			return out, nil // NoSuchUpload: the Complete itself will say so
		}
		if resp.StatusCode != http.StatusOK || err != nil {
			return nil, s3err.New(s3err.BadGateway, "listing the upload's parts failed with status %d", resp.StatusCode)
		}
		for _, pt := range res.Parts {
			out[pt.PartNumber] = unquote(pt.ETag)
		}
		if !res.IsTruncated || res.NextPartNumberMarker == "" {
			break
		}
		marker = res.NextPartNumberMarker
	}
	return out, nil
}
