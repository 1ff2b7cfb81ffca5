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

	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
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
	case p.hooks&hookUploadStart != 0 && resp.StatusCode == http.StatusOK && len(p.keys) > 0:
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
		s.uploadKeys.Put(t.Bucket, uploadRecord(t.Key, res.UploadID), id)
		rec := recordTag + id
		ur := &upstreamRequest{Method: http.MethodPut, Target: target{Bucket: t.Bucket, Key: uploadRecord(t.Key, res.UploadID)},
			Query: url.Values{}, Header: http.Header{}, Body: strings.NewReader(rec), Length: int64(len(rec))}
		ur.decide(exemptDecision)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		r, err := s.roundTrip(rctx, ex, ur, nil)
		if err == nil {
			drain(r)
			if r.StatusCode != http.StatusOK {
				err = s3err.New(s3err.BadGateway, "recording the upload's key failed (status %d)", r.StatusCode)
			}
		}
		if err != nil {
			// Without its record another instance could pick the wrong
			// key: the upload is aborted, not left behind unseen.
			abort := exemptRequest(http.MethodDelete, t, url.Values{"uploadId": {res.UploadID}})
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if r, aerr := s.roundTrip(actx, ex, abort, nil); aerr == nil {
				drain(r)
			}
			return err
		}
	case p.hooks&hookUploadEnd != 0 && (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent) && p.req.Query.Get("uploadId") != "":
		name := uploadRecord(t.Key, p.req.Query.Get("uploadId"))
		s.uploadKeys.Put(t.Bucket, name, "")
		ur := exemptRequest(http.MethodDelete, target{Bucket: t.Bucket, Key: name}, url.Values{})
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if r, err := s.roundTrip(rctx, ex, ur, nil); err == nil {
			drain(r)
		}
		s.forgetParts(ex, t, p.req.Query.Get("uploadId"))
	}
	return nil
}

// uploadKey is the key an upload was created with, as recorded: one of
// the keys its rule names (current or previous). An upload with no record
// (made before the proxy kept them) takes the rule's current key.
func (s *Server) uploadKey(ctx context.Context, ex *exchange, t target, uploadID string, d keystore.Decision) (*keystore.Key, error) {
	name := uploadRecord(t.Key, uploadID)
	id, known := s.uploadKeys.Get(t.Bucket, name)
	if !known {
		ur := exemptRequest(http.MethodGet, target{Bucket: t.Bucket, Key: name}, url.Values{})
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
		s.uploadKeys.Put(t.Bucket, name, id)
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

// Part records: every instance can check a CompleteMultipartUpload's part
// ETags (the MD5s the proxy answered for the parts), whichever instance
// took each part. A part's record is an empty object of the proxy's own,
//
//	.ssec-proxy/parts/<hash of key and upload id>/<part number> <upstream etag> <sealed md5>
//
// written before the part's answer (one small PUT per part of 5 MiB or
// more), read with one listing at the completion, removed after it.

const partsPrefix = reservedPrefix + "parts/"

func partsDir(key, uploadID string) string {
	sum := sha256.Sum256([]byte(key + "\x00" + uploadID))
	return partsPrefix + hex.EncodeToString(sum[:]) + "/"
}

// recordPart writes the record of an uploaded part.
func (s *Server) recordPart(ctx context.Context, ex *exchange, t target, uploadID, partNumber, upstreamETag, md5 string, k *keystore.Key) error {
	name := partsDir(t.Key, uploadID) + partNumber + " " + upstreamETag + " " + etagindex.Seal(k, upstreamETag, md5)
	ur := exemptRequest(http.MethodPut, target{Bucket: t.Bucket, Key: name}, url.Values{})
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	resp, err := s.roundTrip(rctx, ex, ur, nil)
	if err != nil {
		return err
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		return s3err.New(s3err.BadGateway, "recording the part failed (status %d)", resp.StatusCode)
	}
	return nil
}

// partMD5s reads the part records of an upload: upstream part ETag → the
// MD5 the client was answered.
func (s *Server) partMD5s(ctx context.Context, ex *exchange, t target, uploadID string, keys []*keystore.Key) (map[string]string, []string, error) {
	dir := partsDir(t.Key, uploadID)
	out := map[string]string{}
	var names []string
	token := ""
	for page := 0; page < 20; page++ {
		q := url.Values{"list-type": {"2"}, "prefix": {dir}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		resp, err := s.roundTrip(ctx, ex, exemptRequest(http.MethodGet, target{Bucket: t.Bucket}, q), nil)
		if err != nil {
			return nil, nil, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxIndexPage))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, nil, s3err.New(s3err.BadGateway, "reading the upload's part records failed (status %d)", resp.StatusCode)
		}
		pl, err := parseListing(body, false)
		if err != nil {
			return nil, nil, s3err.New(s3err.BadGateway, "the upload's part records are not a listing")
		}
		for _, name := range pl.reserved {
			names = append(names, name)
			fields := strings.Fields(strings.TrimPrefix(name, dir))
			if len(fields) != 3 {
				continue
			}
			if md5, ok := etagindex.Open(keys, fields[1], fields[2]); ok {
				out[fields[1]] = md5
			}
		}
		if !pl.truncated || pl.nextToken == "" {
			break
		}
		token = pl.nextToken
	}
	return out, names, nil
}

// forgetParts removes an upload's part records behind the client's wait.
func (s *Server) forgetParts(ex *exchange, t target, uploadID string) {
	s.behind(ex, func(bg *exchange) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, names, err := s.partMD5s(ctx, bg, t, uploadID, nil)
		if err != nil {
			s.logIndexError(bg, "removing part records", err.Error())
			return
		}
		for i := 0; i < len(names); i += 1000 {
			batch := make([]objectVersion, 0, 1000)
			for _, n := range names[i:min(i+1000, len(names))] {
				batch = append(batch, objectVersion{key: n})
			}
			if err := s.deleteOwn(ctx, bg, t.Bucket, batch); err != nil {
				s.logIndexError(bg, "removing part records", err.Error())
			}
		}
	})
}
