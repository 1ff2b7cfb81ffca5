package keystore

import (
	"os"

	"github.com/ssec-proxy/ssec-proxy/config"
)

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
