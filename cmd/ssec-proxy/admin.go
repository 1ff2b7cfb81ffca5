package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/metrics"
)

// Upstream probing for /readyz.
const (
	probeEvery   = 10 * time.Second
	probeTimeout = 5 * time.Second
	// probeWindow: /readyz is ready while a probe got an answer this
	// recently, so that one lost probe does not take the proxy out.
	probeWindow = 3 * probeEvery
)

// health is what /healthz and /readyz report.
type health struct {
	draining atomic.Bool  // shutting down: not ready for new work
	loaded   atomic.Bool  // a config and its keys are in effect
	lastUp   atomic.Int64 // unix nanoseconds of the last probe that got an HTTP answer
	lastErr  atomic.Pointer[string]
	window   time.Duration
}

// ready says whether the proxy should get traffic, and if not why.
func (h *health) ready(now time.Time) (bool, string) {
	switch {
	case h.draining.Load():
		return false, "shutting down"
	case !h.loaded.Load():
		return false, "config not loaded"
	}
	last := h.lastUp.Load()
	if last == 0 {
		if e := h.lastErr.Load(); e != nil {
			return false, "upstream not reachable: " + *e
		}
		return false, "upstream not probed yet"
	}
	if age := now.Sub(time.Unix(0, last)); age > h.window {
		msg := fmt.Sprintf("upstream has not answered for %s", age.Round(time.Second))
		if e := h.lastErr.Load(); e != nil {
			msg += ": " + *e
		}
		return false, msg
	}
	return true, "ready"
}

// adminHandler serves /metrics, /healthz and /readyz.
func adminHandler(m *metrics.Metrics, h *health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ok, why := h.ready(time.Now())
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	return mux
}

// startAdmin serves the admin endpoints on ln until Close.
func startAdmin(ln net.Listener, h http.Handler, log *zap.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          zap.NewStdLog(log.Named("admin")),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("admin listener stopped", zap.Error(err))
		}
	}()
	return srv
}

// prober asks the upstream of the config in effect, now and then, whether
// it answers at all: any HTTP response counts (an unauthenticated HEAD /
// gets 403 or 400), a transport error (refused, timeout, TLS) does not.
type prober struct {
	cfg     func() *config.Config
	h       *health
	m       *metrics.Metrics
	log     *zap.Logger
	timeout time.Duration

	mu     sync.Mutex
	key    string // the upstream settings client was made for
	client *http.Client
	wasUp  *bool
}

func (p *prober) httpClient(u config.Upstream) (*http.Client, error) {
	key := fmt.Sprintf("%s|%s|%t", u.Endpoint, u.CAFile, u.InsecureSkipVerify)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil && p.key == key {
		return p.client, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: u.InsecureSkipVerify} //nolint:gosec // as configured, warned at start
	if u.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream.ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream.ca_file %s: no PEM certificate", u.CAFile)
		}
		tc.RootCAs = pool
	}
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
	p.client = &http.Client{
		Transport: &http.Transport{TLSClientConfig: tc, Proxy: nil, ForceAttemptHTTP2: true, // direct, as the proxy's own requests
			MaxIdleConns: 1, IdleConnTimeout: 2 * probeEvery},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	p.key = key
	return p.client, nil
}

// probe asks once and records the result.
func (p *prober) probe(ctx context.Context) bool {
	u := p.cfg().Upstream
	start := time.Now()
	err := func() error {
		c, err := p.httpClient(u)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		base, err := url.Parse(u.Endpoint)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, base.Scheme+"://"+base.Host+"/", nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}()
	up := err == nil
	if ctx.Err() != nil {
		return up // shutting down: not the upstream's fault
	}
	p.m.Probe(up, time.Since(start))
	if up {
		p.h.lastUp.Store(time.Now().UnixNano())
		p.h.lastErr.Store(nil)
	} else {
		msg := err.Error()
		p.h.lastErr.Store(&msg)
	}
	if p.wasUp == nil || *p.wasUp != up {
		if up {
			p.log.Info("upstream answers", zap.String("upstream", u.Endpoint))
		} else {
			p.log.Warn("upstream does not answer", zap.String("upstream", u.Endpoint), zap.Error(err))
		}
		p.wasUp = &up
	}
	return up
}

// run probes now and then every interval until ctx ends.
func (p *prober) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
