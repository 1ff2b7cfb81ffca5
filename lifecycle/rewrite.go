package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

// maxCopySize is the largest object S3's CopyObject takes (5 GiB); larger
// ones are streamed.
const maxCopySize = 5 << 30

// ErrChanged: the object was rewritten by someone else during the run; it
// was left alone, and the next run looks at it again.
var ErrChanged = errors.New("the object changed during the run; run again")

// rewrite re-encrypts the object p describes with the key to, in place.
func (r *runner) rewrite(ctx context.Context, name string, p probe, to *keystore.Key) (Action, error) {
	var from encrypt.ServerSide // nil: stored plaintext
	if p.key != nil {
		from = r.keys.sse[p.key.ID()]
	}
	dst := r.keys.sse[to.ID()]
	action := ActionStreamed
	var err error
	if r.opts.Copy != config.CopyStream && p.info.Size <= maxCopySize {
		action = ActionCopied
		err = r.copyInPlace(ctx, name, p, from, dst)
		if err != nil && copyRefused(err) {
			action, err = ActionStreamed, r.stream(ctx, name, p, from, dst)
		}
	} else {
		err = r.stream(ctx, name, p, from, dst)
	}
	if err != nil {
		if isChanged(err) {
			err = ErrChanged
		}
		return ActionNone, err
	}
	// The object is written: check it even when the run is being
	// cancelled, so that the report says what happened.
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return action, r.verify(vctx, name, p.info.Size, to)
}

// copyInPlace copies the object onto itself, from the old key to the new,
// keeping metadata and tags (directives COPY), pinned to the ETag and, in a
// versioned bucket, to the version probed. The version matters beyond
// precision: MinIO (the pinned test server) writes a corrupt new version
// ("sio: unsupported version" on read) when an SSE-C object is copied onto
// itself in a versioned bucket without a source versionId; with one it
// copies correctly.
func (r *runner) copyInPlace(ctx context.Context, name string, p probe, from, to encrypt.ServerSide) error {
	_, err := r.c.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: r.target.Bucket, Object: name, Encryption: to},
		minio.CopySrcOptions{Bucket: r.target.Bucket, Object: name, VersionID: p.info.VersionID, Encryption: from, MatchETag: p.info.ETag})
	return err
}

// copyRefused reports whether the upstream refused the copy itself (400 or
// 501: SOS for a copy between SSE-C keys, an upstream that will not copy an
// object onto itself), so that streaming may succeed; a changed source,
// access denied or a missing object stand.
func copyRefused(err error) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	return er.StatusCode == http.StatusBadRequest || er.StatusCode == http.StatusNotImplemented
}

// isChanged reports a failed If-Match: someone rewrote the object.
func isChanged(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && (er.StatusCode == http.StatusPreconditionFailed || er.Code == "PreconditionFailed")
}

// stream reads the object with the old key and writes it with the new one:
// one PUT up to the part size, a multipart upload above (minio-go aborts it
// if it fails). Memory is one part: the GET body is the PUT body.
func (r *runner) stream(ctx context.Context, name string, p probe, from, to encrypt.ServerSide) error {
	info := p.info
	po := minio.PutObjectOptions{
		UserMetadata:            info.UserMetadata,
		ContentType:             info.ContentType,
		ContentEncoding:         info.ContentEncoding,
		ContentDisposition:      info.Headers.Get("Content-Disposition"),
		ContentLanguage:         info.Headers.Get("Content-Language"),
		CacheControl:            info.Headers.Get("Cache-Control"),
		Expires:                 info.Expires,
		WebsiteRedirectLocation: info.Headers.Get("X-Amz-Website-Redirect-Location"),
		ServerSideEncryption:    to,
		PartSize:                uint64(r.opts.PartSize),
	}
	if sc := info.Headers.Get("X-Amz-Storage-Class"); sc != "" && sc != "STANDARD" {
		po.StorageClass = sc
	}
	if info.UserTagCount > 0 {
		t, err := r.c.GetObjectTagging(ctx, r.target.Bucket, name, minio.GetObjectTaggingOptions{})
		switch {
		case err == nil:
			po.UserTags = t.ToMap()
		case minio.ToErrorResponse(err).Code == "NotImplemented" || statusOf(err) == http.StatusNotImplemented:
			// An upstream without tagging (SOS) has none to keep.
		default:
			return fmt.Errorf("reading the tags: %w", err)
		}
	}
	gopts := minio.GetObjectOptions{ServerSideEncryption: from, VersionID: info.VersionID}
	if info.ETag != "" {
		if err := gopts.SetMatchETag(info.ETag); err != nil {
			return err
		}
	}
	obj, err := r.c.GetObject(ctx, r.target.Bucket, name, gopts)
	if err != nil {
		return err
	}
	defer obj.Close()
	// A plain io.Reader: minio-go then streams it part by part, never
	// seeking back into the GET or reading it at offsets.
	body := struct{ io.Reader }{obj}
	if _, err := r.c.PutObject(ctx, r.target.Bucket, name, body, info.Size, po); err != nil {
		return err
	}
	return nil
}

// verify checks that the new version opens with the new key, has the size
// of the old, and that its first byte decrypts.
func (r *runner) verify(ctx context.Context, name string, size int64, to *keystore.Key) error {
	info, err := r.c.StatObject(ctx, r.target.Bucket, name, minio.StatObjectOptions{ServerSideEncryption: r.keys.sse[to.ID()]})
	if err != nil {
		return fmt.Errorf("checking the rewritten object with key %q: %w", to.ID(), err)
	}
	if info.Size != size {
		return fmt.Errorf("the rewritten object has %d bytes, the original %d", info.Size, size)
	}
	if size == 0 {
		return nil
	}
	// Decrypt its first byte: a HEAD does not read the data, and a
	// server that wrote it wrong fails here.
	gopts := minio.GetObjectOptions{ServerSideEncryption: r.keys.sse[to.ID()], VersionID: info.VersionID}
	if err := gopts.SetRange(0, 0); err != nil {
		return err
	}
	obj, err := r.c.GetObject(ctx, r.target.Bucket, name, gopts)
	if err == nil {
		defer obj.Close()
		var one [1]byte
		_, err = io.ReadFull(obj, one[:])
	}
	if err != nil {
		return fmt.Errorf("reading back the rewritten object with key %q: %w", to.ID(), err)
	}
	return nil
}

// carryEntry writes the ETag index entry of an object rekey rewrote, so
// that clients of the proxy keep seeing the ETag they saw before (the MD5
// the old entry sealed; without one, the upstream ETag they were shown),
// and removes the old entry. It reports whether it wrote one.
func (r *runner) carryEntry(ctx context.Context, name string, p probe, d keystore.Decision, to *keystore.Key) (bool, error) {
	ix := indexOf(r.c)
	bucket, oldETag := r.target.Bucket, strings.Trim(p.info.ETag, `"`)
	keys := []*keystore.Key{d.Key}
	if p.key != nil {
		keys = append([]*keystore.Key{p.key}, d.Previous...)
	}
	client, old, found, err := ix.Lookup(ctx, bucket, name, oldETag, keys)
	if err != nil {
		return false, fmt.Errorf("reading the ETag index: %w", err)
	}
	if !found {
		client = oldETag
	}
	info, err := r.c.StatObject(ctx, bucket, name, minio.StatObjectOptions{ServerSideEncryption: r.keys.sse[to.ID()]})
	if err != nil {
		return false, fmt.Errorf("reading the rewritten object's ETag: %w", err)
	}
	// The proxy writes no entry of a key too long for one either.
	written, err := ix.Write(ctx, bucket, name, strings.Trim(info.ETag, `"`), client, to)
	if err != nil {
		return false, fmt.Errorf("writing the ETag index entry: %w", err)
	}
	if written && found {
		_ = ix.Remove(ctx, bucket, old)
	}
	return written, nil
}
