package keystore

import (
	"os"
	"sync/atomic"

	"github.com/ssec-proxy/ssec-proxy/config"
)

// Store holds the current Keyring; Swap replaces it atomically (on reload)
// while requests keep using the one they loaded. The zero Store holds nil.
type Store struct {
	p atomic.Pointer[Keyring]
}

// NewStore returns a Store holding k.
func NewStore(k *Keyring) *Store {
	s := &Store{}
	s.p.Store(k)
	return s
}

// Load returns the current keyring. A request should call it once and use
// that keyring throughout, so that a reload never changes keys mid-request.
func (s *Store) Load() *Keyring { return s.p.Load() }

// Swap makes k the current keyring.
func (s *Store) Swap(k *Keyring) { s.p.Store(k) }

// Build loads cfg's keys from the real environment and filesystem and
// builds the keyring. The warnings are LoadKeys's, plus one for each key
// that no rule uses.
func Build(cfg *config.Config) (*Keyring, []string, error) {
	keys, warnings, err := LoadKeys(cfg.Keys, os.LookupEnv, os.ReadFile)
	if err != nil {
		return nil, warnings, err
	}
	k, err := NewKeyring(cfg, keys)
	if err != nil {
		return nil, warnings, err
	}
	used := map[string]bool{}
	for _, d := range k.rules {
		if d.Key != nil {
			used[d.Key.id] = true
		}
		for _, p := range d.Previous {
			used[p.id] = true
		}
	}
	for _, key := range k.sorted {
		if !used[key.id] {
			warnings = append(warnings, "key \""+key.id+"\" is not used by any rule")
		}
	}
	return k, warnings, nil
}
