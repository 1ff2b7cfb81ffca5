package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ssec-proxy/ssec-proxy/lifecycle"
)

const rekeyUsage = `usage: ssec-proxy rekey --config FILE [--jobs N] [--dry-run] s3://bucket[/prefix]

Re-encrypts, in place, every object under s3://bucket[/prefix] that is not
under its rule's current key: objects under a previous key (or another key of
the config), and objects stored plaintext under a rule that encrypts. Metadata,
content type and tags are kept. Talks to the upstream directly (not through the
proxy). Idempotent and resumable: run it again after an interruption.
Exit status 1 when an object failed or no known key opens it (listed).

`

const auditUsage = `usage: ssec-proxy audit --config FILE [--json] s3://bucket[/prefix]

Reports which key opens every object under s3://bucket[/prefix]: current,
previous (a key id in the rule's previous list), other (another key of the
config), plaintext, or unknown. Writes nothing. With --json, one JSON line per
object on stdout and the table on stderr.
Exit status 1 when an object is unreadable with every known key.

`

func cmdRekey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rekey", stderr)
	cfgPath := fs.String("config", "", "the config file (keys, rules, upstream)")
	jobs := fs.Int("jobs", lifecycle.DefaultJobs, "objects handled at once")
	dryRun := fs.Bool("dry-run", false, "only report what would be re-encrypted")
	fs.Usage = func() { fmt.Fprint(stderr, rekeyUsage); fs.PrintDefaults() }
	target, err := parseTargetArgs(fs, args)
	if err != nil {
		return err
	}
	if *jobs < 1 || *jobs > 256 {
		return fmt.Errorf("%w: --jobs %d: want 1 to 256", errUsage, *jobs)
	}
	opts, err := lifecycleOptions(*cfgPath, "rekey", stderr)
	if err != nil {
		return err
	}
	opts.Jobs, opts.DryRun = *jobs, *dryRun
	rep, runErr := lifecycle.Rekey(ctx, opts, target)
	if rep != nil {
		if err := rep.WriteRekeySummary(stdout); err != nil {
			return err
		}
	}
	if runErr != nil {
		return fmt.Errorf("rekey: %w", runErr)
	}
	if !rep.OK() {
		return fmt.Errorf("rekey: %d objects unreadable with any known key, %d failed (listed above)", len(rep.Unknown), len(rep.Failed))
	}
	return nil
}

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit", stderr)
	cfgPath := fs.String("config", "", "the config file (keys, rules, upstream)")
	asJSON := fs.Bool("json", false, "one JSON line per object on stdout; the table goes to stderr")
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage); fs.PrintDefaults() }
	target, err := parseTargetArgs(fs, args)
	if err != nil {
		return err
	}
	opts, err := lifecycleOptions(*cfgPath, "audit", stderr)
	if err != nil {
		return err
	}
	table := stdout
	var writeErr error
	if *asJSON {
		table = stderr
		opts.OnResult = func(res lifecycle.Result) {
			if writeErr == nil {
				writeErr = lifecycle.WriteJSONLine(stdout, res)
			}
		}
	}
	rep, runErr := lifecycle.Audit(ctx, opts, target)
	if rep != nil {
		if err := rep.WriteAuditTable(table); err != nil {
			return err
		}
	}
	if runErr == nil {
		// The index: how many entries, how many stale (a dry run of gc).
		if gc, err := lifecycle.IndexGC(ctx, opts, target, true); err == nil {
			fmt.Fprintf(table, "ETag index: %d entries, %d stale; %d upload and part records, %d stale (ssec-proxy index gc removes the stale ones)\n",
				gc.Entries, gc.Stale, gc.Records, gc.StaleRecords)
		}
	}
	switch {
	case runErr != nil:
		return fmt.Errorf("audit: %w", runErr)
	case writeErr != nil:
		return fmt.Errorf("audit: writing JSON: %w", writeErr)
	case len(rep.Unknown) > 0:
		return fmt.Errorf("audit: %d objects unreadable with every known key", len(rep.Unknown))
	case len(rep.Failed) > 0:
		return fmt.Errorf("audit: %d objects could not be checked", len(rep.Failed))
	}
	return nil
}

// parseTargetArgs parses flags and the one s3:// URL, which may stand
// before, between or after the flags.
func parseTargetArgs(fs *flag.FlagSet, args []string) (lifecycle.Target, error) {
	parse := func(a []string) error {
		if err := fs.Parse(a); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return nil
	}
	if err := parse(args); err != nil {
		return lifecycle.Target{}, err
	}
	if fs.NArg() == 0 {
		return lifecycle.Target{}, fmt.Errorf("%w: %s needs s3://bucket[/prefix]", errUsage, fs.Name())
	}
	raw := fs.Arg(0)
	if err := parse(fs.Args()[1:]); err != nil {
		return lifecycle.Target{}, err
	}
	if fs.NArg() > 0 {
		return lifecycle.Target{}, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	t, err := lifecycle.ParseTarget(raw)
	if err != nil {
		return lifecycle.Target{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	return t, nil
}

// lifecycleOptions loads the config and its keys and makes the client to
// the upstream. Warnings go to stderr; key ids only, never keys.
func lifecycleOptions(cfgPath, cmd string, stderr io.Writer) (lifecycle.Options, error) {
	if cfgPath == "" {
		return lifecycle.Options{}, fmt.Errorf("%w: %s needs --config FILE", errUsage, cmd)
	}
	cfg, ring, warnings, err := loadConfig(cfgPath)
	if err != nil {
		return lifecycle.Options{}, err
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if cfg.Upstream.InsecureSkipVerify {
		fmt.Fprintln(stderr, "WARNING: upstream.insecure_skip_verify is set: the upstream's certificate is not verified, and keys go to whoever answers")
	}
	client, err := lifecycle.NewClient(cfg.Upstream)
	if err != nil {
		return lifecycle.Options{}, err
	}
	return lifecycle.Options{
		Client:   client,
		Keyring:  ring,
		Copy:     cfg.Upstream.Copy,
		PartSize: cfg.Upstream.PartSize,
		Progress: terminal(stderr),
	}, nil
}

// terminal returns w when it is a terminal (a character device), for the
// progress bar; nil otherwise (a file, a pipe, a test buffer).
func terminal(w io.Writer) io.Writer {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return w
}

const indexUsage = `usage: ssec-proxy index gc --config FILE [--dry-run] s3://bucket[/prefix]

Removes the ETag index entries under s3://bucket[/prefix] whose object (every
version with that ETag) is gone, and, for a whole bucket, the records of
multipart uploads that no longer exist. Removes nothing of the user's. A run can
be stopped and started again. --dry-run counts and removes nothing.

`

func cmdIndex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "gc" {
		fmt.Fprint(stderr, indexUsage)
		return fmt.Errorf("%w: index needs the subcommand gc", errUsage)
	}
	fs := newFlags("index gc", stderr)
	cfgPath := fs.String("config", "", "the config file (keys, rules, upstream)")
	dry := fs.Bool("dry-run", false, "count what is stale, remove nothing")
	fs.Usage = func() { fmt.Fprint(stderr, indexUsage); fs.PrintDefaults() }
	target, err := parseTargetArgs(fs, args[1:])
	if err != nil {
		return err
	}
	opts, err := lifecycleOptions(*cfgPath, "index gc", stderr)
	if err != nil {
		return err
	}
	rep, err := lifecycle.IndexGC(ctx, opts, target, *dry)
	if rep != nil {
		if werr := rep.WriteGCSummary(stdout); werr != nil {
			return werr
		}
	}
	if err != nil {
		return fmt.Errorf("index gc: %w", err)
	}
	return nil
}
