package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/metrics"
	"github.com/ssec-proxy/ssec-proxy/proxy"
)

// version is set at build time (-ldflags "-X main.version=…"); else the
// module version from the build info.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	cfgPath := fs.String("config", "", "the config file (YAML, see README)")
	logFormat := fs.String("log-format", "json", "json or console")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return fmt.Errorf("%w: serve needs --config FILE", errUsage)
	}
	log, err := newLogger(*logFormat, *logLevel, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	cfg, ring, warnings, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	return serve(ctx, cfg, ring, ln, log)
}

// serve runs the proxy on ln, and the admin listener, until ctx ends; then
// it stops accepting, lets requests in flight finish for up to
// cfg.ShutdownGrace (a second SIGINT/SIGTERM cuts that short) and closes.
// While it runs, SIGHUP and changes to the config or key files reload them,
// and the server certificate is renewed (tls.mode auto) or reloaded when its
// files change (tls.mode files).
func serve(ctx context.Context, cfg *config.Config, ring *keystore.Keyring, ln net.Listener, log *zap.Logger) error {
	defer ln.Close()
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	m := metrics.New(buildVersion())
	h, err := proxy.New(proxy.Options{Config: cfg, Keyring: ring, Logger: log, Observer: m})
	if err != nil {
		return err
	}
	// Workers (reload, certificate, probe) stop with bg; the servers are
	// shut down below.
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()

	certs, caFile, err := newTLSSource(cfg, log, m)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           m.InFlight(h),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	scheme := "https"
	switch cfg.TLS.Mode {
	case config.TLSOff:
		// cfg.Warnings (logged above) says so when the address is not
		// loopback. HTTP/2 without TLS (h2c) is not offered.
		scheme = "http"
	case config.TLSAuto:
		log.Info("local TLS certificate authority: trust this CA in your S3 tools",
			zap.String("ca", caFile), zap.String("client_setting", "AWS_CA_BUNDLE="+caFile))
		fallthrough
	default:
		srv.TLSConfig = serverTLSConfig(certs)
		leaf := certs.current().Leaf
		log.Info("server certificate", zap.Strings("dns_names", leaf.DNSNames), zap.Int("ip_addresses", len(leaf.IPAddresses)),
			zap.Time("not_after", leaf.NotAfter), zap.String("mode", cfg.TLS.Mode))
		every := certFilesPoll
		if cfg.TLS.Mode == config.TLSAuto {
			every = certAutoCheck
		}
		go certs.run(bg, every)
	}

	hl := &health{window: probeWindow}
	hl.loaded.Store(true)
	rl := newReloader(cfg, h, log, m)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go rl.run(bg, hup, configPoll)
	pr := &prober{cfg: rl.config, h: hl, m: m, log: log, timeout: probeTimeout}
	go pr.run(bg, probeEvery)

	var admin *http.Server
	if cfg.Admin.Listen != "off" {
		aln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			return fmt.Errorf("admin.listen %s: %w", cfg.Admin.Listen, err)
		}
		admin = startAdmin(aln, adminHandler(m, hl), log)
		defer admin.Close()
		log.Info("admin listening", zap.String("url", "http://"+aln.Addr().String()),
			zap.Strings("paths", []string{"/metrics", "/healthz", "/readyz"}))
	}

	log.Info("ssec-proxy listening", zap.String("url", scheme+"://"+ln.Addr().String()),
		zap.String("upstream", cfg.Upstream.Endpoint), zap.String("region", cfg.Upstream.Region),
		zap.String("version", buildVersion()))
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return shutdown(srv, hl, m, time.Duration(rl.config().ShutdownGrace), log)
}

// shutdown stops accepting at once, waits for requests in flight up to
// grace (or a second SIGINT/SIGTERM), then closes what is left.
func shutdown(srv *http.Server, hl *health, m *metrics.Metrics, grace time.Duration, log *zap.Logger) error {
	hl.draining.Store(true)
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	log.Info("shutting down: no new connections; letting requests in flight finish",
		zap.Int("in_flight", m.InFlightNow()), zap.Duration("grace", grace))
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	go func() {
		select {
		case <-again:
			log.Warn("second signal: closing now")
			cancel()
		case <-sctx.Done():
		}
	}()
	start := time.Now()
	err := srv.Shutdown(sctx)
	// The index clean-ups that requests left behind their clients' wait
	// finish within the same grace.
	proxy.DrainCleanups(sctx)
	if err == nil {
		log.Info("shut down: every request finished", zap.Duration("took", time.Since(start)))
		return nil
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Warn("shutdown grace over: closing the connections still open", zap.Int("in_flight", m.InFlightNow()),
		zap.Duration("grace", grace))
	_ = srv.Close()
	return nil
}

func newLogger(format, level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("%w: --log-level: %v", errUsage, err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "time"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("%w: --log-format must be json or console, not %q", errUsage, format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), lvl)), nil
}
