package lifecycle

import (
	"bytes"
	"context"
	"errors"

	"github.com/minio/minio-go/v7"

	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
)

// minioObjects is the ETag index's bucket (etagindex.Objects) through
// minio-go, straight to the upstream.
type minioObjects struct{ c *minio.Client }

var _ etagindex.Objects = minioObjects{}

// indexOf is the ETag index through c.
func indexOf(c *minio.Client) etagindex.Index { return etagindex.Index{Objects: minioObjects{c}} }

func (o minioObjects) PutEmpty(ctx context.Context, bucket, name string) error {
	_, err := o.c.PutObject(ctx, bucket, name, bytes.NewReader(nil), 0, minio.PutObjectOptions{})
	return err
}

// listPage is the number of names of a page of minio-go's listing (the
// S3 default, which minio-go asks for unless opts.MaxKeys is set):
// opts.MaxPages counts them.
const listPage = 1000

// List lists with minio-go, every name under the prefix (rekey and index
// gc ask for no delimiter).
func (o minioObjects) List(ctx context.Context, bucket string, opts etagindex.ListOptions, fn func(name string) bool) (more bool, err error) {
	if opts.Delimiter != "" {
		return false, errors.New("lifecycle: the index is listed without a delimiter")
	}
	// Cancelled when fn stops the listing: minio-go's goroutine ends.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n, page := 0, listPage
	if opts.MaxKeys > 0 {
		page = opts.MaxKeys
	}
	for obj := range o.c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: opts.Prefix, StartAfter: opts.StartAfter, Recursive: true, MaxKeys: opts.MaxKeys}) {
		if obj.Err != nil {
			return false, obj.Err
		}
		if !fn(obj.Key) {
			return false, nil
		}
		if n++; opts.MaxPages > 0 && n >= opts.MaxPages*page {
			return true, nil // maybe more: minio-go does not say
		}
	}
	return false, nil
}

// Remove removes each name (RemoveObject).
func (o minioObjects) Remove(ctx context.Context, bucket string, names []string) error {
	var first error
	for _, name := range names {
		if err := o.c.RemoveObject(ctx, bucket, name, minio.RemoveObjectOptions{}); err != nil && first == nil {
			first = err
		}
	}
	return first
}
