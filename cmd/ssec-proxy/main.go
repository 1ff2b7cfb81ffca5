// Command ssec-proxy gives every S3 tool server-side encryption with
// customer keys (SSE-C): it sits between the tool and the S3 service and
// adds the key of each request's bucket and prefix.
//
//	ssec-proxy serve   --config FILE   run the proxy
//	ssec-proxy check   --config FILE   validate the config and print the rules
//	ssec-proxy keygen                  print a new base64 AES-256 key
//	ssec-proxy demo                    run a local MinIO and the proxy to try it out
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: ssec-proxy <command> [flags]

commands:
  serve   --config FILE   run the proxy
  check   --config FILE   validate the config and print the resolved rules (key ids, never keys)
  keygen                  print a new base64-encoded 32-byte key
  demo    [--dir DIR]     run a local MinIO (TLS) and the proxy in front of it, and print client settings
  ca      --config FILE   print the path of the local CA that tls.mode auto uses
  healthcheck             exit 0 when the proxy's /healthz answers, else 1 (for container health checks)
  rekey   --config FILE s3://bucket[/prefix]   re-encrypt objects not under their rule's current key
  audit   --config FILE s3://bucket[/prefix]   report which key opens each object
  index gc --config FILE [--dry-run] s3://bucket[/prefix]   remove stale ETag index entries and upload records

Run "ssec-proxy <command> -h" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ssec-proxy:", err)
		}
		os.Exit(exitCode(err))
	}
}

// errUsage marks a command line that is off.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command", errUsage)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, args, stderr)
	case "check":
		return cmdCheck(args, stdout, stderr)
	case "keygen":
		return cmdKeygen(args, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args, stdout, stderr)
	case "ca":
		return cmdCA(args, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, args, stdout, stderr)
	case "rekey":
		return cmdRekey(ctx, args, stdout, stderr)
	case "audit":
		return cmdAudit(ctx, args, stdout, stderr)
	case "index":
		return cmdIndex(ctx, args, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ssec-proxy "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}
