package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/certs"
)

// cmdCA prints the path of the local CA that tls.mode auto serves a
// certificate from, making the CA and certificate first if they are not
// there yet (as serve would), so that tools can be set up before the first
// start: export AWS_CA_BUNDLE=$(ssec-proxy ca --config ssec.yaml)
func cmdCA(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ca", stderr)
	cfgPath := fs.String("config", "", "the config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return fmt.Errorf("%w: ca needs --config FILE", errUsage)
	}
	cfg, err := loadForOps(*cfgPath, "state_dir", "domain", "tls.mode")
	if err != nil {
		return err
	}
	if cfg.TLS.Mode != config.TLSAuto {
		return fmt.Errorf("%s: tls.mode is %s: there is no local CA (it is made with tls.mode auto)", cfg.Path, cfg.TLS.Mode)
	}
	dir := filepath.Join(cfg.StateDir, "tls")
	f := certs.In(dir)
	if _, err := os.Stat(f.CA); errors.Is(err, os.ErrNotExist) {
		if _, err := certs.Ensure(dir, autoHosts(cfg)); err != nil {
			return fmt.Errorf("making the local CA in %s: %w", dir, err)
		}
		fmt.Fprintf(stderr, "made a new local CA and server certificate in %s\n", dir)
	}
	fmt.Fprintln(stdout, f.CA)
	return nil
}

// loadForOps loads the config for a command that needs only a few of its
// fields (ca, healthcheck). When the file references environment variables
// that are not set here (a shell without the service's secrets), it is
// parsed again with placeholders for them, unless one of fields came from
// such a variable.
func loadForOps(path string, fields ...string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err == nil {
		return cfg, nil
	}
	data, rerr := os.ReadFile(path)
	if rerr != nil {
		return nil, err
	}
	missing := map[string]bool{}
	lookup := func(k string) (string, bool) {
		if v, ok := os.LookupEnv(k); ok {
			return v, true
		}
		missing[k] = true
		return "unset-" + k, true
	}
	cfg2, err2 := config.Parse(data, path, lookup)
	if err2 != nil || len(missing) == 0 {
		return nil, err
	}
	for _, f := range fields {
		if _, ok := cfg2.FromEnv[f]; ok {
			return nil, err
		}
	}
	return cfg2, nil
}

// cmdHealthcheck asks the admin listener's /healthz; exit 0 when it
// answers 200, else 1. For container health checks (the image has no
// shell or curl).
func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("healthcheck", stderr)
	rawURL := fs.String("url", "", "the URL to ask (default: /healthz on --config's admin.listen, else http://"+config.DefaultAdminListen+"/healthz)")
	cfgPath := fs.String("config", "", "the config file whose admin.listen to ask")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	u := *rawURL
	if u == "" {
		addr := config.DefaultAdminListen
		if *cfgPath != "" {
			cfg, err := loadForOps(*cfgPath, "admin.listen")
			if err != nil {
				return err
			}
			if cfg.Admin.Listen == "off" {
				return fmt.Errorf("%s: admin.listen is off: nothing to ask", cfg.Path)
			}
			addr = dialable(cfg.Admin.Listen)
		}
		u = "http://" + addr + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: --url: %v", errUsage, err)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: %s answered %s", u, resp.Status)
	}
	fmt.Fprintf(stdout, "healthy: %s %s", u, body)
	return nil
}

// dialable turns a listen address into one to connect to: an unspecified
// host (":9464", "0.0.0.0:9464", "[::]:9464") becomes loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
