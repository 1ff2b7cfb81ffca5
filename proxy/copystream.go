package proxy

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// streamCopy copies by streaming: GET the source with its key, PUT (or
// UploadPart, or a multipart upload above the part size) with the
// destination's key, then answer as the copy would have. Memory stays at
// one copy buffer: the GET body is the PUT body.
func (s *Server) streamCopy(ax *authedExchange, r *http.Request, p *plan) error {
	ctx := r.Context()
	ex := ax.exchange
	cp := p.copy
	get := &upstreamRequest{
		Method: http.MethodGet,
		Target: target{Bucket: cp.src.Bucket, Key: cp.src.Key},
		Query:  url.Values{},
		Header: http.Header{},
	}
	if cp.src.VersionID != "" {
		get.Query.Set("versionId", cp.src.VersionID)
	}
	get.decide(keyOrPlain(cp.srcKey))
	for from, to := range copyConditions {
		if v := p.req.Header.Get(from); v != "" { // as prepareETags left them
			get.Header.Set(to, v)
		}
	}
	partCopy := p.req.Query.Has("uploadId")
	if rng := r.Header.Get("X-Amz-Copy-Source-Range"); rng != "" && partCopy {
		get.Header.Set("Range", rng)
	}
	src, err := s.roundTrip(ctx, ex, get, nil)
	if err != nil {
		return err
	}
	if cp.srcKey != nil && (src.StatusCode == http.StatusForbidden || src.StatusCode == http.StatusBadRequest) {
		// Under a previous key, or stored without SSE-C: read it as a
		// GET would.
		k, plain, found, err := s.sourceKey(ctx, ex, cp)
		if err != nil {
			src.Body.Close()
			return err
		}
		if found && (plain || k != cp.srcKey) {
			drain(src)
			cp.srcKey = k
			get.decide(keyOrPlain(k))
			if src, err = s.roundTrip(ctx, ex, get, nil); err != nil {
				return err
			}
		}
	}
	defer src.Body.Close()
	if src.StatusCode != http.StatusOK && src.StatusCode != http.StatusPartialContent {
		if src.StatusCode == http.StatusNotModified {
			src.StatusCode = http.StatusPreconditionFailed
		}
		return s.respond(ex, r, &plan{}, src) // the source's error, as the upstream said it
	}
	if src.ContentLength < 0 {
		return s3err.New(s3err.BadGateway, "the upstream answered the copy source without a length")
	}
	dst := p.req
	dst.dropCopySource()
	var etag string
	if partCopy {
		etag, err = s.putStream(ctx, ex, dst, src.Body, src.ContentLength)
	} else {
		if err := s.copyMetadata(ctx, ex, r, get, src, dst); err != nil {
			return err
		}
		etag, err = s.putObjectStream(ctx, ex, dst, src.Body, src.ContentLength)
	}
	if err != nil {
		return err
	}
	ex.bytesIn = src.ContentLength
	if cp.dstKey != nil {
		// The copy holds the source's data: the source's client ETag.
		srcETag := unquote(src.Header.Get("ETag"))
		client := srcETag
		if v, ok := s.clientETag(ctx, ex, cp.src.Bucket, cp.src.Key, srcETag, readKeys(cp.srcRule), true); ok {
			client = v
		}
		if !partCopy {
			s.recordETag(ctx, ex, dst.Target.Bucket, dst.Target.Key, etag, client, cp.dstKey)
			etag = quote(client)
		}
	}
	type result struct {
		XMLName      xml.Name
		ETag         string `xml:"ETag"`
		LastModified string `xml:"LastModified"`
	}
	res := result{XMLName: xml.Name{Local: "CopyObjectResult"}, ETag: etag, LastModified: time.Now().UTC().Format("2006-01-02T15:04:05.000Z")}
	if partCopy {
		res.XMLName.Local = "CopyPartResult"
	}
	if v := src.Header.Get("X-Amz-Version-Id"); v != "" && !partCopy {
		ex.w.Header().Set("X-Amz-Copy-Source-Version-Id", v)
	}
	ex.w.Header().Set("Content-Type", "application/xml")
	ex.w.Header().Set("X-Amz-Request-Id", ex.id)
	ex.w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(ex.w, xml.Header)
	return xml.NewEncoder(ex.w).Encode(res)
}
