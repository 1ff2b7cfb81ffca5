package main

import (
	"fmt"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

// loadConfig loads and validates the config at path and builds its
// keyring. Errors name the file; warnings (key files readable by others,
// keys no rule uses) are returned for the caller to show.
func loadConfig(path string) (*config.Config, *keystore.Keyring, []string, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, nil, err
	}
	ring, warnings, err := keystore.Build(cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", cfg.Path, err)
	}
	return cfg, ring, warnings, nil
}
