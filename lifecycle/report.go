package lifecycle

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Report is what a run saw and did. Key material never enters it: keys are
// named by id.
type Report struct {
	Target     Target
	Rekey      bool   // a rekey run (else an audit)
	DryRun     bool   // rekey --dry-run: nothing was written
	Copy       string // rekey: config.CopyNative or config.CopyStream
	Jobs       int
	Versioning string // the bucket's versioning status (see runner.versioning)
	Incomplete bool   // interrupted, or the listing failed: not every object was seen
	// Interrupted counts objects whose handling the cancellation cut off:
	// each is either left as it was or rewritten (a copy or upload that
	// had reached the upstream may still complete), never lost.
	Interrupted int

	Seen int // objects handled (Interrupted not included)
	// ProxyObjects counts the proxy's own objects (.ssec-proxy/: the ETag
	// index, upload records), which no run touches or counts as objects.
	ProxyObjects int
	// Entries counts the ETag index entries rekey wrote for the objects it
	// re-encrypted (so that their MD5 ETags survive).
	Entries int

	// Rekey.
	Rekeyed          int // rewritten from an older (or another known) key to the current one
	Encrypted        int // stored plaintext under an encrypting rule, now encrypted
	Current          int // already under the current key
	SkippedNoEncrypt int // under a rule with encrypt: false
	SkippedNoRule    int // no rule matches
	Copied           int // rewrites done by a server-side copy
	Streamed         int // rewrites done by GET + PUT
	Gone             int // deleted between the listing and their turn

	// Both.
	Unknown []Unreadable // no known key opens them
	Failed  []Failure    // the probe or the rewrite failed

	// Audit: objects per rule, status and key id.
	Counts map[Row]int
}

// Unreadable is an object that no known key opens.
type Unreadable struct {
	Key       string
	Rule      string
	NoKeyHEAD int // status of the HEAD without a key (400 for SSE-C; 403 may be a missing permission)
}

// Failure is an object whose probe or rewrite failed.
type Failure struct {
	Key string
	Err string
}

// Row is one line of the audit table.
type Row struct {
	RuleIndex int
	Rule      string
	Encrypts  bool // the rule encrypts
	Status    Status
	KeyID     string
}

func newReport(t Target, rekey bool, opts Options) *Report {
	return &Report{Target: t, Rekey: rekey, DryRun: rekey && opts.DryRun, Copy: opts.Copy, Jobs: opts.Jobs, Counts: map[Row]int{}}
}

// add counts one result.
func (r *Report) add(res Result) {
	r.Seen++
	if res.Status != "" && res.Status != StatusGone {
		r.Counts[Row{RuleIndex: res.RuleIndex, Rule: res.Rule, Encrypts: res.Encrypts, Status: res.Status, KeyID: res.KeyID}]++
	}
	switch {
	case res.Status == StatusGone:
		r.Gone++
	case res.Action == ActionSkipped && res.RuleIndex < 0:
		r.SkippedNoRule++
	case res.Action == ActionSkipped:
		r.SkippedNoEncrypt++
	case res.Status == StatusUnknown:
		r.Unknown = append(r.Unknown, Unreadable{Key: res.Key, Rule: res.Rule, NoKeyHEAD: res.NoKeyHEAD})
	case res.Err != nil:
		r.Failed = append(r.Failed, Failure{Key: res.Key, Err: res.Err.Error()})
	case res.Status == StatusCurrent:
		r.Current++
	case res.Action == ActionNone:
		// audit: counted in Counts only
	case res.Status == StatusPlaintext:
		r.Encrypted++
	default:
		r.Rekeyed++
	}
	if res.Entry {
		r.Entries++
	}
	switch res.Action {
	case ActionCopied:
		r.Copied++
	case ActionStreamed:
		r.Streamed++
	}
}

// OK reports whether the run saw every object and every one is readable:
// no failure, none unknown. A rekey that is OK (and not a dry run) left
// every object under an encrypting rule under its current key.
func (r *Report) OK() bool {
	return !r.Incomplete && len(r.Unknown) == 0 && len(r.Failed) == 0
}

// sortLists orders the object lists by key, for stable output.
func (r *Report) sortLists() {
	sort.Slice(r.Unknown, func(i, j int) bool { return r.Unknown[i].Key < r.Unknown[j].Key })
	sort.Slice(r.Failed, func(i, j int) bool { return r.Failed[i].Key < r.Failed[j].Key })
}

// WriteRekeySummary writes the summary of a rekey run.
func (r *Report) WriteRekeySummary(w io.Writer) error {
	r.sortLists()
	var b strings.Builder
	head := fmt.Sprintf("rekey %s (copy: %s, jobs: %d)", r.Target, r.Copy, r.Jobs)
	would := ""
	if r.DryRun {
		head += ": DRY RUN, nothing was written"
		would = " (would be)"
	}
	fmt.Fprintln(&b, head)
	width := len(fmt.Sprint(r.Seen + r.Interrupted))
	line := func(n int, what string) { fmt.Fprintf(&b, "  %*d  %s\n", width, n, what) }
	line(r.Seen, "objects seen")
	line(r.Rekeyed, "re-encrypted from an older key"+would)
	line(r.Encrypted, "plaintext, encrypted"+would)
	line(r.Current, "already under the current key")
	line(len(r.Unknown), "unreadable with any known key")
	line(r.SkippedNoEncrypt, "skipped: rule with encrypt: false")
	if r.SkippedNoRule > 0 {
		line(r.SkippedNoRule, "skipped: no rule matches")
	}
	if r.Gone > 0 {
		line(r.Gone, "deleted during the run")
	}
	if len(r.Failed) > 0 {
		line(len(r.Failed), "failed")
	}
	if r.Interrupted > 0 {
		line(r.Interrupted, "interrupted mid-way (each either rewritten or left as it was)")
	}
	if r.Copied+r.Streamed > 0 {
		fmt.Fprintf(&b, "  rewrites: %d by server-side copy, %d streamed (GET + PUT); %d ETag index entries carried over\n", r.Copied, r.Streamed, r.Entries)
	}
	if r.ProxyObjects > 0 {
		fmt.Fprintf(&b, "  (%d of ssec-proxy's own objects under .ssec-proxy/ left alone)\n", r.ProxyObjects)
	}
	r.writeLists(&b)
	fmt.Fprintln(&b, versionNote(r.Versioning, "re-encrypted"))
	switch {
	case r.Incomplete:
		fmt.Fprintln(&b, "INCOMPLETE: not every object was seen; run rekey again to finish (objects already current are skipped).")
	case r.DryRun:
	case len(r.Unknown) == 0 && len(r.Failed) == 0:
		fmt.Fprintln(&b, "done: every object under an encrypting rule is under its current key.")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) writeLists(b *strings.Builder) {
	if len(r.Unknown) > 0 {
		fmt.Fprintln(b, "unreadable with any known key (their key is not in the config):")
		for _, u := range r.Unknown {
			fmt.Fprintf(b, "  %s  (rule %s; HEAD without a key: %d)\n", u.Key, u.Rule, u.NoKeyHEAD)
		}
	}
	if len(r.Failed) > 0 {
		fmt.Fprintln(b, "failed:")
		for _, f := range r.Failed {
			fmt.Fprintf(b, "  %s: %s\n", f.Key, f.Err)
		}
	}
}

// versionNote says that only current versions were looked at.
func versionNote(status, verb string) string {
	switch {
	case status == "Enabled" || status == "Suspended":
		return fmt.Sprintf("versions: bucket versioning is %s; only the current version of each object was %s, older versions keep the key they were written with.", status, verb)
	case strings.HasPrefix(status, "unknown"):
		return fmt.Sprintf("versions: bucket versioning %s; only the current version of each object was %s.", status, verb)
	}
	return "versions: the bucket is not versioned."
}

// statusOrder sorts the audit table's rows within a rule.
var statusOrder = map[Status]int{StatusCurrent: 0, StatusPrevious: 1, StatusOther: 2, StatusPlaintext: 3, StatusUnknown: 4, StatusError: 5}

// WriteAuditTable writes the audit's table (objects per rule, status and
// key id) and its totals.
func (r *Report) WriteAuditTable(w io.Writer) error {
	r.sortLists()
	rows := make([]Row, 0, len(r.Counts))
	for row := range r.Counts {
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.RuleIndex != b.RuleIndex {
			return uint(a.RuleIndex) < uint(b.RuleIndex) // "(no rule)", -1, last
		}
		if statusOrder[a.Status] != statusOrder[b.Status] {
			return statusOrder[a.Status] < statusOrder[b.Status]
		}
		return a.KeyID < b.KeyID
	})
	var b strings.Builder
	fmt.Fprintf(&b, "audit %s\n", r.Target)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tSTATUS\tKEY ID\tOBJECTS")
	total := map[Status]int{}
	for _, row := range rows {
		id := row.KeyID
		if id == "" {
			id = "-"
		}
		n := r.Counts[row]
		total[row.Status] += n
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", row.Rule, row.Status, id, n)
	}
	_ = tw.Flush()
	fmt.Fprintf(&b, "total: %d objects: %d current, %d previous, %d other, %d plaintext, %d unknown",
		r.Seen-r.Gone, total[StatusCurrent], total[StatusPrevious], total[StatusOther], total[StatusPlaintext], total[StatusUnknown])
	if total[StatusError] > 0 {
		fmt.Fprintf(&b, ", %d errors", total[StatusError])
	}
	fmt.Fprintln(&b)
	if r.ProxyObjects > 0 {
		fmt.Fprintf(&b, "(and %d of ssec-proxy's own objects under .ssec-proxy/: the ETag index and upload records, not counted)\n", r.ProxyObjects)
	}
	enc, cur := r.encrypting()
	if enc > 0 {
		fmt.Fprintf(&b, "under encrypting rules: %d of %d objects under the current key (%s)\n", cur, enc, percent(cur, enc))
	}
	r.writeLists(&b)
	fmt.Fprintln(&b, versionNote(r.Versioning, "audited"))
	if r.Incomplete {
		fmt.Fprintln(&b, "INCOMPLETE: not every object was seen.")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// encrypting counts the objects seen under encrypting rules, and those of
// them under the current key. Plaintext objects under a rule with
// encrypt: false are not in either.
func (r *Report) encrypting() (all, current int) {
	for row, n := range r.Counts {
		if !row.Encrypts {
			continue
		}
		all += n
		if row.Status == StatusCurrent {
			current += n
		}
	}
	return all, current
}

func percent(n, of int) string {
	if of == 0 {
		return "-"
	}
	p := float64(n) * 100 / float64(of)
	if n < of && p > 99.9 {
		return "99.9%" // never round up to a 100% that is not
	}
	return fmt.Sprintf("%.4g%%", p)
}

// jsonLine is one object of audit --json.
type jsonLine struct {
	Key    string `json:"key"`
	Rule   string `json:"rule"`
	Status Status `json:"status"`
	KeyID  string `json:"key_id"`
	Error  string `json:"error,omitempty"`
}

// WriteJSONLine writes res as one line of JSON:
// {"key":…, "rule":…, "status":"current|previous|other|plaintext|unknown|error", "key_id":…}.
func WriteJSONLine(w io.Writer, res Result) error {
	l := jsonLine{Key: res.Key, Rule: res.Rule, Status: res.Status, KeyID: res.KeyID}
	if res.Err != nil {
		l.Error = res.Err.Error()
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(l)
}
