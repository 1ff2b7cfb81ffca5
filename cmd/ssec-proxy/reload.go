package main

import (
	"context"
	"crypto/sha256"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/metrics"
)

// configPoll is how often the config file and the key files are looked at.
const configPoll = 2 * time.Second

// swapper takes a new config and keyring: proxy.Server.Reload.
type swapper interface {
	Reload(*config.Config, *keystore.Keyring) error
}

// reloader reloads the config and keys on SIGHUP and when the config file,
// a key file or the upstream CA file changes. A new config is loaded and
// validated, and its keys built, before anything changes; on any error the
// config in effect stays, the log says why and a metric counts it.
// Requests in flight finish with the config they started with (the proxy
// swaps atomically).
type reloader struct {
	path string
	srv  swapper
	log  *zap.Logger
	m    *metrics.Metrics

	cur atomic.Pointer[config.Config] // in effect

	mu   sync.Mutex                   // one reload at a time
	seen map[string][sha256.Size]byte // watched file → content hash at the last look
}

func newReloader(cfg *config.Config, srv swapper, log *zap.Logger, m *metrics.Metrics) *reloader {
	r := &reloader{path: cfg.Path, srv: srv, log: log, m: m}
	r.cur.Store(cfg)
	r.seen = r.fingerprints(cfg)
	return r
}

// config is the config in effect.
func (r *reloader) config() *config.Config { return r.cur.Load() }

// watched are the files whose change triggers a reload.
func watched(cfg *config.Config) []string {
	files := []string{cfg.Path}
	for _, k := range cfg.Keys {
		if k.File != "" {
			files = append(files, k.File)
		}
	}
	if cfg.Upstream.CAFile != "" {
		files = append(files, cfg.Upstream.CAFile)
	}
	sort.Strings(files)
	return files
}

// fingerprints hashes each watched file (a missing one hashes as empty
// with a marker). Key bytes are hashed and dropped at once.
func (r *reloader) fingerprints(cfg *config.Config) map[string][sha256.Size]byte {
	fp := make(map[string][sha256.Size]byte)
	for _, f := range watched(cfg) {
		b, err := os.ReadFile(f)
		if err != nil {
			fp[f] = sha256.Sum256([]byte("\x00unreadable: " + err.Error()))
			continue
		}
		fp[f] = sha256.Sum256(b)
		clear(b)
	}
	return fp
}

// changed reports whether a watched file differs from the last look.
func (r *reloader) changed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.fingerprints(r.config())
	for f, sum := range now {
		if r.seen[f] != sum {
			return true
		}
	}
	return false
}

// reload loads, validates and swaps in the config file's current content.
// trigger ("sighup", "file") goes to the metric.
func (r *reloader) reload(trigger string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.config()
	// Look at the files before loading: a change made while loading is
	// seen at the next poll.
	fpBefore := r.fingerprints(old)
	cfg, ring, err := r.load()
	if err != nil {
		r.seen = fpBefore // do not retry the same content every poll
		r.m.Reload(false, trigger)
		r.log.Error("reload failed: keeping the config in effect", zap.String("trigger", trigger), zap.Error(err))
		return err
	}
	if err := r.srv.Reload(cfg, ring); err != nil {
		r.seen = fpBefore
		r.m.Reload(false, trigger)
		r.log.Error("reload failed: keeping the config in effect", zap.String("trigger", trigger), zap.Error(err))
		return err
	}
	r.cur.Store(cfg)
	r.seen = r.fingerprints(cfg)
	for f, sum := range fpBefore { // files watched before and after: as loaded
		if _, ok := r.seen[f]; ok {
			r.seen[f] = sum
		}
	}
	r.m.Reload(true, trigger)
	for _, field := range restartOnly(old, cfg) {
		r.log.Warn("reload: this setting changed but takes effect only at a restart", zap.String("field", field))
	}
	rules := ring.Rules()
	r.log.Info("config reloaded", zap.String("trigger", trigger), zap.String("config", cfg.Path),
		zap.Int("keys", len(ring.Keys())), zap.Int("rules", len(rules)), zap.String("upstream", cfg.Upstream.Endpoint))
	return nil
}

func (r *reloader) load() (*config.Config, *keystore.Keyring, error) {
	cfg, ring, warnings, err := loadConfig(r.path)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range warnings {
		r.log.Warn(w)
	}
	for _, w := range cfg.Warnings() {
		r.log.Warn(w)
	}
	return cfg, ring, nil
}

// restartOnly lists the settings that differ between a and b and that the
// running process cannot change: its listeners and server certificate.
func restartOnly(a, b *config.Config) []string {
	var fields []string
	add := func(changed bool, field string) {
		if changed {
			fields = append(fields, field)
		}
	}
	add(a.Listen != b.Listen, "listen")
	add(a.TLS.Mode != b.TLS.Mode, "tls.mode")
	add(a.TLS.Cert != b.TLS.Cert, "tls.cert")
	add(a.TLS.Key != b.TLS.Key, "tls.key")
	add(a.Admin.Listen != b.Admin.Listen, "admin.listen")
	if b.TLS.Mode == config.TLSAuto {
		add(a.StateDir != b.StateDir, "state_dir")
		add(a.Domain != b.Domain, "domain (the certificate's names)")
	}
	return fields
}

// run reloads on each value of hup and when a watched file changes (looked
// at every poll), until ctx ends.
func (r *reloader) run(ctx context.Context, hup <-chan os.Signal, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.log.Info("SIGHUP: reloading the config and keys")
			_ = r.reload("sighup")
		case <-t.C:
			if r.path != "" && r.changed() {
				r.log.Info("a config or key file changed: reloading")
				_ = r.reload("file")
			}
		}
	}
}
