package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/ssec-proxy/ssec-proxy/keystore"
)

// Status is which kind of key opens an object.
type Status string

// The statuses of an object.
const (
	StatusCurrent   Status = "current"   // the rule's key
	StatusPrevious  Status = "previous"  // one of the rule's previous keys
	StatusOther     Status = "other"     // a key of the config that is not the rule's key nor in its previous
	StatusPlaintext Status = "plaintext" // stored without SSE-C
	StatusUnknown   Status = "unknown"   // no known key opens it, and it is not plaintext
	StatusError     Status = "error"     // the probe failed (network, 5xx, …): see Result.Err
	StatusGone      Status = "gone"      // deleted between the listing and the probe
)

// errGone: the object was deleted since it was listed.
var errGone = errors.New("object deleted during the run")

// keys holds the minio-go SSE-C values of the config's keys, made once.
type keys struct {
	ring *keystore.Keyring
	sse  map[string]encrypt.ServerSide // key id → SSE-C headers
}

func newKeys(ring *keystore.Keyring) (*keys, error) {
	k := &keys{ring: ring, sse: map[string]encrypt.ServerSide{}}
	for _, key := range ring.Keys() {
		raw := key.Raw()
		s, err := encrypt.NewSSEC(raw[:])
		clear(raw[:])
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key.ID(), err)
		}
		k.sse[key.ID()] = s
	}
	return k, nil
}

// probe is what classify found out about one object.
type probe struct {
	status Status
	key    *keystore.Key    // the key that opens it; nil for plaintext and unknown
	info   minio.ObjectInfo // from the HEAD that succeeded (size, ETag, metadata)
	tried  map[string]bool  // key ids already tried
	// noKey is the status of the HEAD without SSE-C headers when it
	// failed (400: SSE-C object; 403 may also be a missing permission).
	noKey int
}

// classify finds which key opens bucket/name, as the package documentation
// describes. A non-nil error is errGone or a failure of the upstream.
func (k *keys) classify(ctx context.Context, c *minio.Client, bucket, name string, d keystore.Decision) (probe, error) {
	p := probe{status: StatusUnknown, tried: map[string]bool{}}
	var ruleKeys []*keystore.Key
	if d.Encrypt && d.Key != nil {
		ruleKeys = append(ruleKeys, d.Key)
		ruleKeys = append(ruleKeys, d.Previous...)
	}
	try := func(key *keystore.Key) (bool, error) {
		if p.tried[key.ID()] {
			return false, nil
		}
		p.tried[key.ID()] = true
		info, err := c.StatObject(ctx, bucket, name, minio.StatObjectOptions{ServerSideEncryption: k.sse[key.ID()]})
		if err != nil {
			return false, headError(err)
		}
		switch echoed := info.Headers.Get("X-Amz-Server-Side-Encryption-Customer-Key-Md5"); {
		case echoed == key.MD5():
		case echoed != "":
			return false, nil // answered for another key: not this one
		default:
			// No echo: make sure the object is not plaintext with the
			// SSE-C headers ignored.
			if _, err := c.StatObject(ctx, bucket, name, minio.StatObjectOptions{}); err == nil {
				return false, nil
			} else if err := headError(err); err != nil {
				return false, err
			}
		}
		p.key, p.info = key, info
		return true, nil
	}
	for i, key := range ruleKeys {
		ok, err := try(key)
		if err != nil {
			return p, err
		}
		if ok {
			p.status = StatusPrevious
			if i == 0 {
				p.status = StatusCurrent
			}
			return p, nil
		}
	}
	info, err := c.StatObject(ctx, bucket, name, minio.StatObjectOptions{})
	if err == nil {
		p.status, p.info = StatusPlaintext, info
		return p, nil
	}
	if err := headError(err); err != nil {
		return p, err
	}
	p.noKey = statusOf(err)
	for _, key := range k.ring.Keys() {
		ok, err := try(key)
		if err != nil {
			return p, err
		}
		if ok {
			p.status = StatusOther
			return p, nil
		}
	}
	return p, nil
}

// headError sorts a failed HEAD: nil for a refusal that means "not this
// key" (400, 403), errGone for 404, the error itself for anything else.
func headError(err error) error {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return err
	}
	switch er.StatusCode {
	case http.StatusBadRequest, http.StatusForbidden:
		return nil
	case http.StatusNotFound:
		return errGone
	}
	return err
}

// statusOf is the HTTP status of a minio-go error, 0 when there is none.
func statusOf(err error) int {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.StatusCode
	}
	return 0
}
