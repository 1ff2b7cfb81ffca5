package lifecycle

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/ssec-proxy/ssec-proxy/keystore"
)

// SSECProbe is what one bucket answered to the probe of ProbeSSEC.
type SSECProbe struct {
	Bucket string
	KeyID  string // the key written with: the bucket's first encrypting rule's
	OK     bool
	// Problem says what failed and what to do; "" when OK.
	Problem string
}

// probePrefix is where probe objects live: under the proxy's reserved
// prefix, so no client sees one even while it exists.
const probePrefix = ".ssec-proxy/probe/"

// ProbeSSEC tries, in each bucket that an encrypting rule names, one
// SSE-C write and read with the rule's key, checks that a read without the
// key is refused (the upstream really encrypted it), and removes the
// object again. Wildcard rules ("*") name no bucket to try.
func ProbeSSEC(ctx context.Context, c *minio.Client, ring *keystore.Keyring) []SSECProbe {
	keyOf := map[string]string{}
	for _, r := range ring.Rules() {
		if r.Encrypt && r.Bucket != "*" {
			if _, ok := keyOf[r.Bucket]; !ok {
				keyOf[r.Bucket] = r.KeyID
			}
		}
	}
	buckets := make([]string, 0, len(keyOf))
	for b := range keyOf {
		buckets = append(buckets, b)
	}
	sort.Strings(buckets)
	out := make([]SSECProbe, 0, len(buckets))
	for _, b := range buckets {
		p := SSECProbe{Bucket: b, KeyID: keyOf[b]}
		k, err := ring.Key(p.KeyID)
		if err == nil {
			err = probeBucket(ctx, c, b, k)
		}
		if err != nil {
			p.Problem = err.Error()
		} else {
			p.OK = true
		}
		out = append(out, p)
	}
	return out
}

func probeBucket(ctx context.Context, c *minio.Client, bucket string, k *keystore.Key) error {
	raw := k.Raw()
	sse, err := encrypt.NewSSEC(raw[:])
	if err != nil {
		return err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	name := probePrefix + hex.EncodeToString(id[:])
	data := []byte("ssec-proxy SSE-C probe " + name)
	_, err = c.PutObject(ctx, bucket, name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ServerSideEncryption: sse})
	if err != nil {
		return writeRefusal(bucket, err)
	}
	defer func() {
		_ = c.RemoveObject(context.WithoutCancel(ctx), bucket, name, minio.RemoveObjectOptions{})
	}()
	o, err := c.GetObject(ctx, bucket, name, minio.GetObjectOptions{ServerSideEncryption: sse})
	if err == nil {
		var got []byte
		got, err = io.ReadAll(o)
		o.Close()
		if err == nil && !bytes.Equal(got, data) {
			err = errors.New("the object read back differs from the one written")
		}
	}
	if err != nil {
		return fmt.Errorf("the SSE-C write worked but the read with the same key failed: %s", describe(err))
	}
	if o, err := c.GetObject(ctx, bucket, name, minio.GetObjectOptions{}); err == nil {
		_, err = io.ReadAll(o)
		o.Close()
		if err == nil {
			return errors.New("the upstream serves the object without the key: it ignored the SSE-C headers and stored it unencrypted; do not use it with encrypting rules")
		}
	}
	return nil
}

// writeRefusal explains an upstream's refusal of an SSE-C write.
func writeRefusal(bucket string, err error) error {
	r := minio.ToErrorResponse(err)
	switch {
	case r.StatusCode == http.StatusForbidden:
		return fmt.Errorf("the SSE-C write was refused (%s): the bucket may block SSE-C (AWS blocks it on new buckets since April 2026: allow it with put-bucket-encryption and BlockedEncryptionTypes NONE), or the upstream credentials may not write to %q", describe(err), bucket)
	case r.StatusCode == http.StatusNotImplemented || r.StatusCode == http.StatusBadRequest:
		return fmt.Errorf("the upstream does not accept SSE-C writes (%s): encrypting rules cannot be used with it", describe(err))
	case r.StatusCode == http.StatusNotFound:
		return fmt.Errorf("no such bucket (%s)", describe(err))
	}
	return fmt.Errorf("the SSE-C write failed: %s", describe(err))
}

// describe names an upstream error by status and code, with its message.
func describe(err error) string {
	r := minio.ToErrorResponse(err)
	if r.StatusCode == 0 {
		return err.Error()
	}
	return fmt.Sprintf("%d %s: %s", r.StatusCode, r.Code, r.Message)
}
