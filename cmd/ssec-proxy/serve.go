package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/certs"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy"
)

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
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	ring, warnings, err := keystore.Build(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Path, err)
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

// serve runs the proxy on ln until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg *config.Config, ring *keystore.Keyring, ln net.Listener, log *zap.Logger) error {
	if cfg.Upstream.InsecureSkipVerify {
		log.Warn("upstream.insecure_skip_verify is set: the upstream's TLS certificate is NOT verified, and SSE-C keys may go to whoever answers")
	}
	h, err := proxy.New(proxy.Options{Config: cfg, Keyring: ring, Logger: log})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	scheme := "https"
	switch cfg.TLS.Mode {
	case "off":
		scheme = "http"
		if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
			log.Warn("tls.mode is off on a non-loopback address: S3 credentials and data cross the network in the clear", zap.String("listen", ln.Addr().String()))
		}
	case "files":
		pair, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	default: // auto
		f, err := certs.Ensure(filepath.Join(cfg.StateDir, "tls"), []string{"localhost", "127.0.0.1", "::1", "*." + cfg.Domain})
		if err != nil {
			return fmt.Errorf("tls auto: %w", err)
		}
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return fmt.Errorf("tls auto: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		log.Info("local TLS certificate", zap.String("ca", f.CA), zap.String("client_setting", "AWS_CA_BUNDLE="+f.CA))
	}
	log.Info("ssec-proxy listening", zap.String("url", scheme+"://"+ln.Addr().String()),
		zap.String("upstream", cfg.Upstream.Endpoint), zap.String("region", cfg.Upstream.Region))
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
	log.Info("shutting down: letting transfers in flight finish")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
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
