package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

// DefaultJobs is how many objects a run handles at once by default.
const DefaultJobs = 4

// Options configure a run of Rekey or Audit.
type Options struct {
	Client  *minio.Client     // straight to the upstream (NewClient)
	Keyring *keystore.Keyring // the config's keys and rules
	// Copy is how Rekey rewrites an object: config.CopyNative ("" too)
	// tries a server-side copy onto itself first and streams when the
	// upstream refuses; config.CopyStream always streams (GET with the old
	// key, PUT with the new one).
	Copy string
	// PartSize is the part size of streamed rewrites above it (multipart);
	// 0 means config.DefaultPartSize. Memory per job is one part.
	PartSize int64
	Jobs     int  // objects handled at once; 0 means DefaultJobs
	DryRun   bool // Rekey: find what would be rewritten, write nothing
	// Progress receives a progress bar (carriage returns, redrawn a few
	// times a second): pass a terminal, or nil for none.
	Progress io.Writer
	// OnResult, when set, is called with each object's result as it is
	// done, one call at a time (audit --json, tests).
	OnResult func(Result)
}

// Action is what Rekey did to an object.
type Action string

// The actions of Rekey.
const (
	ActionNone     Action = ""         // nothing to do (already current, unknown, error)
	ActionSkipped  Action = "skipped"  // the rule does not encrypt, or no rule matches
	ActionCopied   Action = "copied"   // rewritten by a server-side copy onto itself
	ActionStreamed Action = "streamed" // rewritten by GET with the old key and PUT with the new one
	ActionWould    Action = "would"    // dry run: would be rewritten
)

// Result is what a run found out and did about one object.
type Result struct {
	Key       string // object key
	Rule      string // the rule's bucket/prefix, "(no rule)" when none matches
	RuleIndex int    // in the config; -1 when no rule matches
	Encrypts  bool   // the rule encrypts
	Status    Status // which kind of key opened the object (before a rewrite); "" when skipped
	KeyID     string // the key that opened it; "" for plaintext, unknown, skipped
	Size      int64
	Action    Action
	NoKeyHEAD int   // unknown objects: the status of the HEAD without a key
	Entry     bool  // rekey wrote the object's ETag index entry
	Err       error // StatusError, or a rewrite that failed
}

// Rekey rewrites every object under t that is not under its rule's current
// key (an older key, another known key, or plaintext under an encrypting
// rule) with the current key, in place, keeping its metadata and tags. It
// returns the report, and an error when the run could not finish (listing
// failed, the context was cancelled). Objects that failed or that no known
// key opens are in the report, not in the error.
func Rekey(ctx context.Context, opts Options, t Target) (*Report, error) {
	r, err := newRunner(opts, t, modeRekey)
	if err != nil {
		return nil, err
	}
	return r.run(ctx)
}

// Audit reports which key opens every object under t. It writes nothing.
func Audit(ctx context.Context, opts Options, t Target) (*Report, error) {
	r, err := newRunner(opts, t, modeAudit)
	if err != nil {
		return nil, err
	}
	return r.run(ctx)
}

type mode int

const (
	modeAudit mode = iota
	modeRekey
)

type runner struct {
	opts   Options
	target Target
	mode   mode
	keys   *keys
	c      *minio.Client
}

func newRunner(opts Options, t Target, m mode) (*runner, error) {
	if opts.Client == nil || opts.Keyring == nil {
		return nil, errors.New("lifecycle: Options need a Client and a Keyring")
	}
	if opts.Jobs <= 0 {
		opts.Jobs = DefaultJobs
	}
	if opts.PartSize == 0 {
		opts.PartSize = config.DefaultPartSize
	}
	if opts.PartSize < config.MinPartSize || opts.PartSize > config.MaxPartSize {
		return nil, fmt.Errorf("lifecycle: part size %d is not between %d and %d", opts.PartSize, config.MinPartSize, config.MaxPartSize)
	}
	switch opts.Copy {
	case "":
		opts.Copy = config.CopyNative
	case config.CopyNative, config.CopyStream:
	default:
		return nil, fmt.Errorf("lifecycle: copy mode %q is not %s or %s", opts.Copy, config.CopyNative, config.CopyStream)
	}
	k, err := newKeys(opts.Keyring)
	if err != nil {
		return nil, err
	}
	return &runner{opts: opts, target: t, mode: m, keys: k, c: opts.Client}, nil
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	rep := newReport(r.target, r.mode == modeRekey, r.opts)
	rep.Versioning = r.versioning(ctx)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	prog := newProgress(r.opts.Progress, map[mode]string{modeAudit: "audit", modeRekey: "rekey"}[r.mode])
	defer prog.stop()

	objects := make(chan minio.ObjectInfo)
	results := make(chan Result)
	var listErr error
	proxyObjects := 0
	go func() {
		defer close(objects)
		for obj := range r.c.ListObjects(ctx, r.target.Bucket, minio.ListObjectsOptions{Prefix: r.target.Prefix, Recursive: true}) {
			if obj.Err != nil {
				listErr = obj.Err
				return
			}
			if etagindex.IsReserved(obj.Key) {
				proxyObjects++ // the proxy's own: not an object of the user's
				continue
			}
			prog.listed.Add(1)
			select {
			case objects <- obj:
			case <-ctx.Done():
				return
			}
		}
		prog.listingDone.Store(true)
	}()
	var wg sync.WaitGroup
	for range r.opts.Jobs {
		wg.Go(func() {
			for obj := range objects {
				if ctx.Err() != nil {
					continue // drain: the run stops
				}
				results <- r.one(ctx, obj)
			}
		})
	}
	go func() { wg.Wait(); close(results) }()
	for res := range results {
		if ctx.Err() != nil && res.Err != nil {
			rep.Interrupted++ // cut off mid-way by the cancellation: left as it was
			continue
		}
		rep.add(res)
		prog.done.Add(1)
		if r.opts.OnResult != nil {
			r.opts.OnResult(res)
		}
	}
	// results is closed: the lister is done, listErr is settled.
	rep.ProxyObjects = proxyObjects
	prog.stop()
	if err := ctx.Err(); err != nil {
		rep.Incomplete = true
		return rep, fmt.Errorf("%s interrupted after %d objects: %w", map[mode]string{modeAudit: "audit", modeRekey: "rekey"}[r.mode], rep.Seen, context.Cause(ctx))
	}
	if listErr != nil {
		rep.Incomplete = true
		return rep, fmt.Errorf("listing %s: %w", r.target, listErr)
	}
	return rep, nil
}

// versioning is the bucket's versioning status: "Enabled", "Suspended", ""
// (never enabled), or "unknown (…)" when the upstream does not say (SOS).
func (r *runner) versioning(ctx context.Context) string {
	v, err := r.c.GetBucketVersioning(ctx, r.target.Bucket)
	if err != nil {
		code := minio.ToErrorResponse(err).Code
		if code == "" {
			code = "no answer"
		}
		return "unknown (" + code + ")"
	}
	return v.Status
}

// one handles one listed object.
func (r *runner) one(ctx context.Context, obj minio.ObjectInfo) Result {
	d := r.keys.ring.Match(r.target.Bucket, obj.Key)
	res := Result{Key: obj.Key, Rule: RuleLabel(d), RuleIndex: d.RuleIndex, Encrypts: d.Encrypt, Size: obj.Size}
	if r.mode == modeRekey && !d.Encrypt {
		res.Action = ActionSkipped
		return res
	}
	p, err := r.keys.classify(ctx, r.c, r.target.Bucket, obj.Key, d)
	switch {
	case errors.Is(err, errGone):
		res.Status = StatusGone
		return res
	case err != nil:
		res.Status, res.Err = StatusError, err
		return res
	}
	res.Status, res.NoKeyHEAD = p.status, p.noKey
	if p.key != nil {
		res.KeyID = p.key.ID()
	}
	if p.status != StatusUnknown {
		res.Size = p.info.Size
	}
	if r.mode != modeRekey {
		return res
	}
	switch p.status {
	case StatusPrevious, StatusOther, StatusPlaintext:
	default:
		return res
	}
	if r.opts.DryRun {
		res.Action = ActionWould
		return res
	}
	res.Action, res.Err = r.rewrite(ctx, obj.Key, p, d.Key)
	if res.Err == nil {
		// The rewrite gave the object a new upstream ETag: its entry in
		// the ETag index follows.
		vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		res.Entry, res.Err = r.carryEntry(vctx, obj.Key, p, d, d.Key)
		cancel()
	}
	return res
}

// RuleLabel names a rule in reports: "bucket/prefix" ("*/prefix" for a
// wildcard rule), "(no rule)" when none matched.
func RuleLabel(d keystore.Decision) string {
	if d.RuleIndex < 0 {
		return "(no rule)"
	}
	return d.Bucket + "/" + d.Prefix
}
