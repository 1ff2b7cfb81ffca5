package lifecycle

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in     string
		bucket string
		prefix string
		err    string // part of the error; "" for none
	}{
		{in: "s3://backups", bucket: "backups"},
		{in: "s3://backups/", bucket: "backups"},
		{in: "s3://backups/2026/", bucket: "backups", prefix: "2026/"},
		{in: "s3://backups/logs", bucket: "backups", prefix: "logs"},
		{in: "s3://b-1.x/a//b/../c", bucket: "b-1.x", prefix: "a//b/../c"}, // taken byte for byte
		{in: "s3://b12/a%2Fb c", bucket: "b12", prefix: "a%2Fb c"},
		{in: "backups", err: "not an s3://bucket[/prefix] URL"},
		{in: "https://backups/x", err: "not an s3://bucket[/prefix] URL"},
		{in: "S3://backups", err: "not an s3://bucket[/prefix] URL"},
		{in: "s3://", err: "names no bucket"},
		{in: "s3:///prefix", err: "names no bucket"},
		{in: "s3://bad..name", err: "bucket \"bad..name\""},
		{in: "s3://-lead/x", err: "bucket \"-lead\""},
		{in: "s3://ab", err: "bucket \"ab\""},
		{in: "", err: "not an s3://bucket[/prefix] URL"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTarget(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseTarget(%q) = %+v, %v; want an error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got.Bucket != tc.bucket || got.Prefix != tc.prefix {
				t.Fatalf("ParseTarget(%q) = %+v, %v; want bucket %q prefix %q", tc.in, got, err, tc.bucket, tc.prefix)
			}
			if again, err := ParseTarget(got.String()); err != nil || again != got {
				t.Errorf("String() %q does not parse back: %+v, %v", got.String(), again, err)
			}
		})
	}
}

// rekeyReport is a rekey that met every kind of object.
func rekeyReport(dry bool) *Report {
	r := newReport(Target{Bucket: "backups"}, true, Options{Copy: config.CopyNative, Jobs: 4, DryRun: dry})
	r.Versioning = "Enabled"
	act := ActionCopied
	if dry {
		act = ActionWould
	}
	for _, res := range []Result{
		{Key: "a", Rule: "backups/", Encrypts: true, Status: StatusCurrent, KeyID: "k2"},
		{Key: "b", Rule: "backups/", Encrypts: true, Status: StatusPrevious, KeyID: "k1", Action: act},
		{Key: "c", Rule: "backups/", Encrypts: true, Status: StatusPrevious, KeyID: "k1", Action: ActionStreamed},
		{Key: "d", Rule: "backups/", Encrypts: true, Status: StatusPlaintext, Action: act},
		{Key: "z-lost", Rule: "backups/", Encrypts: true, Status: StatusUnknown, NoKeyHEAD: 400},
		{Key: "e", Rule: "backups/", Encrypts: true, Status: StatusPrevious, KeyID: "k1", Err: errors.New("copy: 500 InternalError")},
		{Key: "public/x", Rule: "backups/public/", RuleIndex: 1, Action: ActionSkipped},
		{Key: "gone", Rule: "backups/", Encrypts: true, Status: StatusGone},
	} {
		r.add(res)
	}
	return r
}

func TestRekeySummary(t *testing.T) {
	var b bytes.Buffer
	r := rekeyReport(false)
	if err := r.WriteRekeySummary(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"rekey s3://backups/ (copy: native, jobs: 4)\n",
		"  8  objects seen\n",
		"  2  re-encrypted from an older key\n",
		"  1  plaintext, encrypted\n",
		"  1  already under the current key\n",
		"  1  unreadable with any known key\n",
		"  1  skipped: rule with encrypt: false\n",
		"  1  deleted during the run\n",
		"  1  failed\n",
		"rewrites: 2 by server-side copy, 1 streamed (GET + PUT)",
		"unreadable with any known key (their key is not in the config):\n  z-lost  (rule backups/; HEAD without a key: 400)\n",
		"failed:\n  e: copy: 500 InternalError\n",
		"bucket versioning is Enabled; only the current version of each object was re-encrypted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "done: every object") || strings.Contains(out, "DRY RUN") {
		t.Errorf("summary claims success or a dry run:\n%s", out)
	}
	if r.OK() {
		t.Error("OK() with an unknown and a failed object")
	}
}

func TestRekeySummaryDryRun(t *testing.T) {
	var b bytes.Buffer
	r := newReport(Target{Bucket: "backups", Prefix: "2026/"}, true, Options{Copy: config.CopyStream, Jobs: 2, DryRun: true})
	r.add(Result{Key: "a", Rule: "backups/", Encrypts: true, Status: StatusPrevious, KeyID: "k1", Action: ActionWould})
	r.add(Result{Key: "b", Rule: "backups/", Encrypts: true, Status: StatusPlaintext, Action: ActionWould})
	if err := r.WriteRekeySummary(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"rekey s3://backups/2026/ (copy: stream, jobs: 2): DRY RUN, nothing was written\n",
		"  1  re-encrypted from an older key (would be)\n",
		"  1  plaintext, encrypted (would be)\n",
		"versions: the bucket is not versioned.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "rewrites:") || strings.Contains(out, "done:") {
		t.Errorf("a dry run reports rewrites or success:\n%s", out)
	}
}

func TestRekeySummaryDoneAndIncomplete(t *testing.T) {
	r := newReport(Target{Bucket: "b12"}, true, Options{Copy: config.CopyNative, Jobs: 4})
	r.Versioning = "unknown (NotImplemented)"
	r.add(Result{Key: "a", Encrypts: true, Status: StatusCurrent, KeyID: "k2"})
	var b bytes.Buffer
	_ = r.WriteRekeySummary(&b)
	if !strings.Contains(b.String(), "done: every object under an encrypting rule is under its current key.") ||
		!strings.Contains(b.String(), "bucket versioning unknown (NotImplemented); only the current version") {
		t.Errorf("summary of a clean run:\n%s", b.String())
	}
	r.Incomplete, r.Interrupted = true, 3
	b.Reset()
	_ = r.WriteRekeySummary(&b)
	if !strings.Contains(b.String(), "INCOMPLETE") || strings.Contains(b.String(), "done:") || !strings.Contains(b.String(), "  3  interrupted mid-way") {
		t.Errorf("summary of an interrupted run:\n%s", b.String())
	}
}

func TestAuditTable(t *testing.T) {
	r := newReport(Target{Bucket: "backups"}, false, Options{Jobs: 4})
	for _, res := range []Result{
		{Key: "a", Rule: "backups/", Encrypts: true, Status: StatusCurrent, KeyID: "k2"},
		{Key: "b", Rule: "backups/", Encrypts: true, Status: StatusCurrent, KeyID: "k2"},
		{Key: "c", Rule: "backups/", Encrypts: true, Status: StatusPrevious, KeyID: "k1"},
		{Key: "d", Rule: "backups/", Encrypts: true, Status: StatusPlaintext},
		{Key: "lost", Rule: "backups/", Encrypts: true, Status: StatusUnknown, NoKeyHEAD: 400},
		{Key: "public/x", Rule: "backups/public/", RuleIndex: 1, Status: StatusPlaintext},
		{Key: "zz", Rule: "(no rule)", RuleIndex: -1, Status: StatusOther, KeyID: "k9"},
	} {
		r.add(res)
	}
	var b bytes.Buffer
	if err := r.WriteAuditTable(&b); err != nil {
		t.Fatal(err)
	}
	want := `audit s3://backups/
RULE             STATUS     KEY ID  OBJECTS
backups/         current    k2      2
backups/         previous   k1      1
backups/         plaintext  -       1
backups/         unknown    -       1
backups/public/  plaintext  -       1
(no rule)        other      k9      1
total: 7 objects: 2 current, 1 previous, 1 other, 2 plaintext, 1 unknown
under encrypting rules: 2 of 5 objects under the current key (40%)
unreadable with any known key (their key is not in the config):
  lost  (rule backups/; HEAD without a key: 400)
versions: the bucket is not versioned.
`
	if b.String() != want {
		t.Errorf("audit table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestPercentNeverRoundsUpTo100(t *testing.T) {
	for _, tc := range []struct {
		n, of int
		want  string
	}{{1, 1, "100%"}, {0, 3, "0%"}, {2, 5, "40%"}, {99999, 100000, "99.9%"}, {1, 3, "33.33%"}, {0, 0, "-"}} {
		if got := percent(tc.n, tc.of); got != tc.want {
			t.Errorf("percent(%d, %d) = %q, want %q", tc.n, tc.of, got, tc.want)
		}
	}
}

func TestJSONLine(t *testing.T) {
	var b bytes.Buffer
	_ = WriteJSONLine(&b, Result{Key: "a<b>&c", Rule: "backups/", Status: StatusPrevious, KeyID: "k1"})
	_ = WriteJSONLine(&b, Result{Key: "d", Rule: "backups/", Status: StatusPlaintext})
	_ = WriteJSONLine(&b, Result{Key: "e", Rule: "backups/", Status: StatusError, Err: errors.New("boom")})
	want := `{"key":"a<b>&c","rule":"backups/","status":"previous","key_id":"k1"}
{"key":"d","rule":"backups/","status":"plaintext","key_id":""}
{"key":"e","rule":"backups/","status":"error","key_id":"","error":"boom"}
`
	if b.String() != want {
		t.Errorf("JSON lines:\n%s\nwant:\n%s", b.String(), want)
	}
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("%s: %v", line, err)
		}
	}
}

func TestRenderProgress(t *testing.T) {
	for _, tc := range []struct {
		done, listed int64
		listingDone  bool
		want         string
	}{
		{3, 10, false, "rekey: 3 objects done, 10 listed so far…"},
		{0, 0, true, "rekey: 0 objects done, 0 listed so far…"},
		{5, 10, true, "rekey: [=====     ] 5/10 objects (50%)"},
		{10, 10, true, "rekey: [==========] 10/10 objects (100%)"},
	} {
		if got := renderProgress("rekey", tc.done, tc.listed, tc.listingDone, 10); got != tc.want {
			t.Errorf("renderProgress(%d, %d, %t) = %q, want %q", tc.done, tc.listed, tc.listingDone, got, tc.want)
		}
	}
}

// TestProgressDrawsAndClears: the bar is drawn on the writer while the run
// goes, and the line is cleared at the end; no writer, nothing drawn.
func TestProgressDrawsAndClears(t *testing.T) {
	var b syncBuf
	p := newProgress(&b, "audit")
	p.listed.Add(4)
	p.listingDone.Store(true)
	p.done.Add(2)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(b.String(), "2/4 objects"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no bar drawn: %q", b.String())
		}
	}
	p.stop()
	p.stop() // twice is fine
	if !strings.HasSuffix(b.String(), "\r\033[K") {
		t.Errorf("the bar is not cleared at the end: %q", b.String())
	}
	newProgress(nil, "audit").stop()
}

func TestNewRunnerChecksOptions(t *testing.T) {
	if _, err := newRunner(Options{}, Target{Bucket: "b12"}, modeAudit); err == nil {
		t.Error("no client and no keyring: no error")
	}
	ring, err := keystore.NewKeyring(&config.Config{Default: config.DefaultDeny}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(config.Upstream{Endpoint: "https://127.0.0.1:1", Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts Options
		err  string
	}{
		{Options{Copy: "fast"}, `copy mode "fast"`},
		{Options{PartSize: 1 << 20}, "part size 1048576"},
		{Options{}, ""},
	} {
		tc.opts.Client, tc.opts.Keyring = c, ring
		r, err := newRunner(tc.opts, Target{Bucket: "b12"}, modeRekey)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%+v: %v", tc.opts, err)
		case tc.err == "" && (r.opts.Jobs != DefaultJobs || r.opts.PartSize != config.DefaultPartSize || r.opts.Copy != config.CopyNative):
			t.Errorf("defaults: jobs %d, part size %d, copy %q", r.opts.Jobs, r.opts.PartSize, r.opts.Copy)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%+v: error %v, want %q", tc.opts, err, tc.err)
		}
	}
}

func TestNewClientRefusesPlainHTTP(t *testing.T) {
	if _, err := NewClient(config.Upstream{Endpoint: "http://127.0.0.1:9000", Region: "us-east-1"}); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("http endpoint: %v, want an error asking for https", err)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
