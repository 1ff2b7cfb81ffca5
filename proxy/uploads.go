package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

// A multipart upload keeps the key it was created with: its parts and its
// completion carry that key even when a reload rotated the rule's key in
// the middle (the new current key would not open the upload). The key id
// is recorded where every instance finds it: an object of the proxy's own,
// .ssec-proxy/uploads/<hash of key and upload id>, holding the key id (no
// secret), written when the upload is created and removed when it is
// completed or aborted. Each instance keeps what it learnt in memory.

const uploadsPrefix = reservedPrefix + "uploads/"

// recordTag starts a record's content: what does not is no record.
const recordTag = "ssec-proxy upload key v1: "

func uploadRecord(key, uploadID string) string {
	sum := sha256.Sum256([]byte(key + "\x00" + uploadID))
	return uploadsPrefix + hex.EncodeToString(sum[:])
}

// trackUpload records the key of an upload just created, and forgets the
// record of one completed or aborted.
func (s *Server) trackUpload(ctx context.Context, ex *exchange, p *plan, resp *http.Response) error {
	t := ex.target
	switch {
	case p.op == opCreateMultipart && resp.StatusCode == http.StatusOK && len(p.keys) > 0:
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxRewrittenBody+1))
		resp.Body.Close()
		if err != nil || len(body) > maxRewrittenBody {
			return s3err.New(s3err.BadGateway, "reading the upstream's answer failed")
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var res struct {
			UploadID string `xml:"UploadId"`
		}
		if xml.Unmarshal(body, &res) != nil || res.UploadID == "" {
			return nil // an answer without an upload: passed on as it came
		}
		id := p.keys[0].ID()
		s.uploadKeys.put(t.Bucket, uploadRecord(t.Key, res.UploadID), id)
		rec := recordTag + id
		ur := &upstreamRequest{Method: http.MethodPut, Target: target{Bucket: t.Bucket, Key: uploadRecord(t.Key, res.UploadID)},
			Query: url.Values{}, Header: http.Header{}, Body: strings.NewReader(rec), Length: int64(len(rec))}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		r, err := s.roundTrip(rctx, ex, ur, nil)
		if err != nil {
			return err // without its record another instance could pick the wrong key
		}
		drain(r)
		if r.StatusCode != http.StatusOK {
			return s3err.New(s3err.BadGateway, "recording the upload's key failed (status %d)", r.StatusCode)
		}
	case (p.op == opCompleteMultipart && resp.StatusCode == http.StatusOK || p.op.Name == "AbortMultipartUpload" && resp.StatusCode == http.StatusNoContent) && p.req.Query.Get("uploadId") != "":
		name := uploadRecord(t.Key, p.req.Query.Get("uploadId"))
		s.uploadKeys.put(t.Bucket, name, "")
		ur := &upstreamRequest{Method: http.MethodDelete, Target: target{Bucket: t.Bucket, Key: name}, Query: url.Values{}, Header: http.Header{}}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if r, err := s.roundTrip(rctx, ex, ur, nil); err == nil {
			drain(r)
		}
	}
	return nil
}

// uploadKey is the key an upload was created with, as recorded: one of
// the keys its rule names (current or previous). An upload with no record
// (made before the proxy kept them) takes the rule's current key.
func (s *Server) uploadKey(ctx context.Context, ex *exchange, t target, uploadID string, d keystore.Decision) (*keystore.Key, error) {
	name := uploadRecord(t.Key, uploadID)
	id, known := s.uploadKeys.get(t.Bucket, name)
	if !known {
		ur := &upstreamRequest{Method: http.MethodGet, Target: target{Bucket: t.Bucket, Key: name}, Query: url.Values{}, Header: http.Header{}}
		resp, err := s.roundTrip(ctx, ex, ur, nil)
		if err != nil {
			return nil, err
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			id, _ = strings.CutPrefix(string(b), recordTag) // what is not a record: none
			if id == string(b) {
				id = ""
			}
		case http.StatusNotFound:
		default:
			return nil, s3err.New(s3err.BadGateway, "reading the upload's key failed (status %d)", resp.StatusCode)
		}
		s.uploadKeys.put(t.Bucket, name, id)
	}
	if id == "" {
		return d.Key, nil
	}
	for _, k := range readKeys(d) {
		if k.ID() == id {
			return k, nil
		}
	}
	return nil, s3err.New(s3err.InvalidRequest,
		"the multipart upload was created with key %s, which the rule for s3://%s/%s no longer names: add it to the rule's previous keys to finish the upload", id, t.Bucket, keyPrefix(t.Key))
}
