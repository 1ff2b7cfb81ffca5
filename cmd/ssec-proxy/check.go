package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/lifecycle"
)

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr)
	cfgPath := fs.String("config", "", "the config file to validate")
	probe := fs.Bool("probe", false, "also try one SSE-C write and read in each bucket an encrypting rule names (the object is removed again)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return fmt.Errorf("%w: check needs --config FILE", errUsage)
	}
	cfg, ring, warnings, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "config %s is valid\nupstream %s (region %s)\nlisten %s (tls %s)\n\n",
		cfg.Path, cfg.Upstream.Endpoint, cfg.Upstream.Region, cfg.Listen, cfg.TLS.Mode)
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BUCKET\tPREFIX\tENCRYPT\tKEY ID\tKEY MD5\tPREVIOUS")
	for _, r := range ring.Rules() {
		enc, id, md5 := "no", "-", "-"
		if r.Encrypt {
			enc, id, md5 = "yes", r.KeyID, r.KeyMD5
		}
		prev := strings.Join(r.Previous, ",")
		if prev == "" {
			prev = "-"
		}
		prefix := r.Prefix
		if prefix == "" {
			prefix = "(all)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Bucket, prefix, enc, id, md5, prev)
	}
	fmt.Fprintf(tw, "(no rule)\t\t%s\t\t\t\n", map[string]string{"deny": "deny", "plaintext": "no"}[cfg.Default])
	if err := tw.Flush(); err != nil || !*probe {
		return err
	}
	return probeBuckets(cfg, ring, stdout)
}

// probeBuckets runs check --probe: one SSE-C write and read per bucket of
// the encrypting rules, reported per bucket; an error when any failed.
func probeBuckets(cfg *config.Config, ring *keystore.Keyring, stdout io.Writer) error {
	client, err := lifecycle.NewClient(cfg.Upstream)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results := lifecycle.ProbeSSEC(ctx, client, ring)
	fmt.Fprintln(stdout, "\nSSE-C probe (one object written, read and removed per bucket):")
	failed := 0
	for _, p := range results {
		if p.OK {
			fmt.Fprintf(stdout, "  %s (key %s): ok\n", p.Bucket, p.KeyID)
			continue
		}
		failed++
		fmt.Fprintf(stdout, "  %s (key %s): FAILED: %s\n", p.Bucket, p.KeyID, p.Problem)
	}
	if len(results) == 0 {
		fmt.Fprintln(stdout, "  no encrypting rule names a bucket (wildcard rules are not probed)")
	}
	if failed > 0 {
		return fmt.Errorf("the SSE-C probe failed in %d of %d buckets", failed, len(results))
	}
	return nil
}
