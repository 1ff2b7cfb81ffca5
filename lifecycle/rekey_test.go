package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/ssec-proxy/ssec-proxy/config"
)

const partSize = config.MinPartSize // 5 MiB: the 12 MiB object is a 3-part upload

// rules for a bucket: one encrypting rule (key, previous) and a plaintext
// area public/.
func rules(bucket, key string, previous ...string) string {
	prev := ""
	if len(previous) > 0 {
		prev = ", previous: ["
		for i, p := range previous {
			if i > 0 {
				prev += ", "
			}
			prev += p
		}
		prev += "]"
	}
	return fmt.Sprintf("rules:\n  - {bucket: %s, key: %s%s}\n  - {bucket: %s, prefix: public/, encrypt: false}", bucket, key, prev, bucket)
}

// statuses runs an audit and returns each object's status and key id.
func statuses(t *testing.T, opts Options, bucket string) (map[string]string, *Report) {
	t.Helper()
	var mu sync.Mutex
	got := map[string]string{}
	opts.OnResult = func(r Result) {
		mu.Lock()
		defer mu.Unlock()
		got[r.Key] = string(r.Status) + ":" + r.KeyID
	}
	rep, err := Audit(context.Background(), opts, Target{Bucket: bucket})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	return got, rep
}

func wantStatuses(t *testing.T, when string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: audit says %s is %q, want %q", when, k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: audit saw %d objects, want %d: %v", when, len(got), len(want), got)
	}
}

// TestRotation is the whole procedure, in both copy modes: objects under
// key ka (one multipart), plaintext ones under the encrypting rule, one
// under kc (a known key that is not the rule's) and one under a rule with
// encrypt: false. Rotate the rule to kb with ka in previous, rekey, audit
// shows 100% under kb, a second rekey does nothing, then ka leaves the
// config and everything still reads with kb, with its metadata, content
// type and tags.
func TestRotation(t *testing.T) {
	requireEnv(t)
	for _, mode := range []string{config.CopyNative, config.CopyStream} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			bucket := newBucket(t)
			meta := map[string]string{"Color": "blue", "Owner": "ops"}
			tags := map[string]string{"project": "x", "tier": "gold"}
			objs := []object{
				{name: "a/one", data: randomBytes(1024), keyID: "ka", meta: meta, tags: tags, ctype: "text/plain"},
				{name: "a/empty", data: nil, keyID: "ka"},
				{name: "big", data: randomBytes(12 << 20), keyID: "ka", meta: meta, tags: tags, ctype: "application/x-tar"},
				{name: "odd name/ü +%2F=x", data: randomBytes(100), keyID: "ka", meta: meta},
				{name: "plain/p1", data: randomBytes(2048), meta: meta, tags: tags, ctype: "image/png"},
				{name: "plain/big", data: randomBytes(6 << 20), tags: tags},
				{name: "c/other", data: randomBytes(300), keyID: "kc", meta: meta, tags: tags},
				{name: "public/x", data: randomBytes(10)},
			}
			for _, o := range objs {
				put(t, bucket, o)
			}

			// Before the rotation: ka is current.
			got, _ := statuses(t, options(t, mode, partSize, rules(bucket, "ka")), bucket)
			wantStatuses(t, "before", got, map[string]string{
				"a/one": "current:ka", "a/empty": "current:ka", "big": "current:ka", "odd name/ü +%2F=x": "current:ka",
				"plain/p1": "plaintext:", "plain/big": "plaintext:", "c/other": "other:kc", "public/x": "plaintext:",
			})

			// Rotated: kb is the key, ka previous.
			rotated := options(t, mode, partSize, rules(bucket, "kb", "ka"))
			got, _ = statuses(t, rotated, bucket)
			wantStatuses(t, "rotated", got, map[string]string{
				"a/one": "previous:ka", "a/empty": "previous:ka", "big": "previous:ka", "odd name/ü +%2F=x": "previous:ka",
				"plain/p1": "plaintext:", "plain/big": "plaintext:", "c/other": "other:kc", "public/x": "plaintext:",
			})
			rep, err := Rekey(ctx, rotated, Target{Bucket: bucket})
			if err != nil {
				t.Fatalf("rekey: %v", err)
			}
			if rep.Seen != 8 || rep.Rekeyed != 5 || rep.Encrypted != 2 || rep.Current != 0 || rep.SkippedNoEncrypt != 1 || !rep.OK() {
				t.Errorf("rekey: seen %d, rekeyed %d, encrypted %d, current %d, skipped %d, unknown %v, failed %v; want 8, 5, 2, 0, 1, none, none",
					rep.Seen, rep.Rekeyed, rep.Encrypted, rep.Current, rep.SkippedNoEncrypt, rep.Unknown, rep.Failed)
			}
			switch mode {
			case config.CopyStream:
				if rep.Streamed != 7 || rep.Copied != 0 {
					t.Errorf("copy: stream: %d streamed, %d copied; want 7 streamed", rep.Streamed, rep.Copied)
				}
			case config.CopyNative:
				// MinIO copies between keys and onto the same object.
				if rep.Copied != 7 || rep.Streamed != 0 {
					t.Errorf("copy: native: %d copied, %d streamed; want 7 copied", rep.Copied, rep.Streamed)
				}
			}

			if mode == config.CopyStream {
				// The 12 MiB object went up in 5 MiB parts.
				info, err := env.c.StatObject(ctx, bucket, "big", minio.StatObjectOptions{ServerSideEncryption: ssec(t, "kb"), PartNumber: 1})
				if err != nil {
					t.Fatal(err)
				}
				if n := info.Headers.Get("X-Amz-Mp-Parts-Count"); n != "3" {
					t.Errorf("big: streamed in %q parts, want 3", n)
				}
			}

			_, rep = statuses(t, rotated, bucket)
			if all, cur := rep.encrypting(); all != 7 || cur != 7 {
				t.Errorf("after rekey: %d of %d objects under encrypting rules are current, want 7 of 7", cur, all)
			}

			// A second run does nothing.
			rep, err = Rekey(ctx, rotated, Target{Bucket: bucket})
			if err != nil {
				t.Fatalf("second rekey: %v", err)
			}
			if rep.Rekeyed != 0 || rep.Encrypted != 0 || rep.Current != 7 || rep.Copied+rep.Streamed != 0 {
				t.Errorf("second rekey: rekeyed %d, encrypted %d, current %d, rewrites %d; want 0, 0, 7, 0",
					rep.Rekeyed, rep.Encrypted, rep.Current, rep.Copied+rep.Streamed)
			}

			// ka (and kc) leave the config: everything still reads with kb.
			final := optionsKeys(t, mode, partSize, []string{"kb"}, rules(bucket, "kb"))
			got, rep = statuses(t, final, bucket)
			if len(rep.Unknown) != 0 {
				t.Errorf("without ka: unknown %v", rep.Unknown)
			}
			for _, o := range objs {
				want := "current:kb"
				if o.name == "public/x" {
					want = "plaintext:"
				}
				if got[o.name] != want {
					t.Errorf("without ka: %s is %q, want %q", o.name, got[o.name], want)
				}
			}
			for _, o := range objs {
				if o.name == "public/x" {
					assertContent(t, bucket, o, nil) // encrypt: false is left alone
					continue
				}
				assertUnder(t, bucket, o, "kb")
			}
		})
	}
}

// TestDryRunChangesNothing: --dry-run counts what it would rewrite and
// writes nothing: every object keeps its key and its ETag.
func TestDryRunChangesNothing(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	bucket := newBucket(t)
	objs := []object{
		{name: "o1", data: randomBytes(500), keyID: "ka"},
		{name: "o2", data: randomBytes(500)},
		{name: "o3", data: randomBytes(500), keyID: "kb"},
	}
	etags := map[string]string{}
	for _, o := range objs {
		put(t, bucket, o)
		info, err := env.c.StatObject(ctx, bucket, o.name, minio.StatObjectOptions{ServerSideEncryption: sseOrNil(t, o.keyID)})
		if err != nil {
			t.Fatal(err)
		}
		etags[o.name] = info.ETag
	}
	opts := options(t, config.CopyNative, 0, rules(bucket, "kb", "ka"))
	opts.DryRun = true
	rep, err := Rekey(ctx, opts, Target{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rekeyed != 1 || rep.Encrypted != 1 || rep.Current != 1 || rep.Copied+rep.Streamed != 0 {
		t.Errorf("dry run: would rekey %d, would encrypt %d, current %d, rewrites %d; want 1, 1, 1, 0", rep.Rekeyed, rep.Encrypted, rep.Current, rep.Copied+rep.Streamed)
	}
	for _, o := range objs {
		info, err := env.c.StatObject(ctx, bucket, o.name, minio.StatObjectOptions{ServerSideEncryption: sseOrNil(t, o.keyID)})
		if err != nil {
			t.Errorf("%s: no longer opens as written: %v", o.name, err)
			continue
		}
		if info.ETag != etags[o.name] {
			t.Errorf("%s: ETag changed from %s to %s: the dry run wrote it", o.name, etags[o.name], info.ETag)
		}
	}
}

func sseOrNil(t *testing.T, id string) encrypt.ServerSide {
	if id == "" {
		return nil
	}
	return ssec(t, id)
}

// TestInterruptedRekeyResumes cancels a rekey after a few objects (writes
// in flight are cut off, some mid-upload), checks that every object still
// reads, under ka or kb, with its content, then runs rekey again: it
// finishes, and nothing is lost.
func TestInterruptedRekeyResumes(t *testing.T) {
	requireEnv(t)
	for _, mode := range []string{config.CopyNative, config.CopyStream} {
		t.Run(mode, func(t *testing.T) {
			bucket := newBucket(t)
			var objs []object
			for i := range 30 {
				o := object{name: fmt.Sprintf("obj-%02d", i), data: randomBytes(4096 + i), keyID: "ka", tags: map[string]string{"i": fmt.Sprint(i)}}
				if i%10 == 3 {
					o.data = randomBytes(11 << 20) // multipart when streamed
				}
				objs = append(objs, o)
				put(t, bucket, o)
			}
			opts := options(t, mode, partSize, rules(bucket, "kb", "ka"))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n := 0
			opts.OnResult = func(Result) {
				if n++; n == 8 {
					cancel()
				}
			}
			rep, err := Rekey(ctx, opts, Target{Bucket: bucket})
			if !errors.Is(err, context.Canceled) || rep == nil || !rep.Incomplete {
				t.Fatalf("interrupted rekey: err %v, report %+v; want context.Canceled and an incomplete report", err, rep)
			}
			done := rep.Rekeyed
			if done < 8 || done >= 30 {
				t.Errorf("interrupted rekey rewrote %d objects, want from 8 to 29", done)
			}
			// Halfway: each object opens with ka or kb, intact.
			for _, o := range objs {
				ok := false
				for _, id := range []string{"kb", "ka"} {
					if _, err := env.c.StatObject(context.Background(), bucket, o.name, minio.StatObjectOptions{ServerSideEncryption: ssec(t, id)}); err == nil {
						assertContent(t, bucket, o, ssec(t, id))
						ok = true
						break
					}
				}
				if !ok {
					t.Errorf("%s: opens with neither ka nor kb after the interruption", o.name)
				}
			}
			opts.OnResult = nil
			rep, err = Rekey(context.Background(), opts, Target{Bucket: bucket})
			if err != nil {
				t.Fatalf("second rekey: %v", err)
			}
			// A write the cancellation cut off may still have landed: it
			// counts as current now.
			if rep.Rekeyed > 30-done || rep.Current+rep.Rekeyed != 30 || !rep.OK() {
				t.Errorf("second rekey: rekeyed %d (after %d), current %d, unknown %v, failed %v; want all 30 done", rep.Rekeyed, done, rep.Current, rep.Unknown, rep.Failed)
			}
			for _, o := range objs {
				assertUnder(t, bucket, o, "kb")
			}
		})
	}
}

// TestAuditUnknownKey: an object under a key that is not in the config is
// "unknown", listed by name, and makes the report not OK; rekey leaves it.
func TestAuditUnknownKey(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	bucket := newBucket(t)
	lost := object{name: "lost", data: randomBytes(64), keyID: "kx"}
	put(t, bucket, lost)
	put(t, bucket, object{name: "fine", data: randomBytes(64), keyID: "kb"})
	opts := options(t, "", 0, rules(bucket, "kb", "ka"))
	got, rep := statuses(t, opts, bucket)
	wantStatuses(t, "audit", got, map[string]string{"lost": "unknown:", "fine": "current:kb"})
	if len(rep.Unknown) != 1 || rep.Unknown[0].Key != "lost" || rep.OK() {
		t.Errorf("audit: unknown %v, OK %t; want [lost], false", rep.Unknown, rep.OK())
	}
	rep, err := Rekey(ctx, opts, Target{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Unknown) != 1 || rep.Current != 1 || rep.OK() {
		t.Errorf("rekey: unknown %v, current %d, OK %t; want [lost], 1, false", rep.Unknown, rep.Current, rep.OK())
	}
	assertUnder(t, bucket, lost, "kx")
}

// TestPrefixLimitsTheRun: s3://bucket/prefix touches only that prefix.
func TestPrefixLimitsTheRun(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	bucket := newBucket(t)
	in := object{name: "logs/a", data: randomBytes(10), keyID: "ka"}
	out := object{name: "data/a", data: randomBytes(10), keyID: "ka"}
	put(t, bucket, in)
	put(t, bucket, out)
	rep, err := Rekey(ctx, options(t, "", 0, rules(bucket, "kb", "ka")), Target{Bucket: bucket, Prefix: "logs/"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seen != 1 || rep.Rekeyed != 1 {
		t.Errorf("seen %d, rekeyed %d; want 1, 1", rep.Seen, rep.Rekeyed)
	}
	assertUnder(t, bucket, in, "kb")
	assertUnder(t, bucket, out, "ka")
}

// TestVersionedBucketOnlyCurrentVersion: in a versioned bucket rekey
// rewrites the current version (as a new version), says so in the report,
// and leaves older versions under their key.
func TestVersionedBucketOnlyCurrentVersion(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	bucket := newBucket(t)
	if err := env.c.EnableVersioning(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	v1 := object{name: "doc", data: randomBytes(100), keyID: "ka"}
	put(t, bucket, v1)
	old, err := env.c.StatObject(ctx, bucket, "doc", minio.StatObjectOptions{ServerSideEncryption: ssec(t, "ka")})
	if err != nil {
		t.Fatal(err)
	}
	v2 := object{name: "doc", data: randomBytes(200), keyID: "ka"}
	put(t, bucket, v2)
	rep, err := Rekey(ctx, options(t, "", 0, rules(bucket, "kb", "ka")), Target{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seen != 1 || rep.Rekeyed != 1 || rep.Versioning != "Enabled" {
		t.Errorf("seen %d, rekeyed %d, versioning %q; want 1, 1, Enabled (failed: %v)", rep.Seen, rep.Rekeyed, rep.Versioning, rep.Failed)
	}
	var b bytes.Buffer
	_ = rep.WriteRekeySummary(&b)
	if !strings.Contains(b.String(), "only the current version of each object was re-encrypted") {
		t.Errorf("the summary does not say that only current versions were re-encrypted:\n%s", b.String())
	}
	assertUnder(t, bucket, v2, "kb")
	got, err := readAll(env.c.GetObject(ctx, bucket, "doc", minio.GetObjectOptions{ServerSideEncryption: ssec(t, "ka"), VersionID: old.VersionID}))
	if err != nil || !bytes.Equal(got, v1.data) {
		t.Errorf("the older version no longer reads with ka: %v", err)
	}
}
