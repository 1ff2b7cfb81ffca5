package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr)
	cfgPath := fs.String("config", "", "the config file to validate")
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
	return tw.Flush()
}
