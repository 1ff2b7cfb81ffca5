package config

import (
	"os"
	"path/filepath"
)

// SetDefaults fills the fields that were left empty. lookupEnv (nil means
// os.LookupEnv) gives XDG_STATE_HOME and HOME for StateDir. It never
// overwrites a value that is set, so Validate still sees contradictions
// (a zone and a different endpoint). Calling it twice changes nothing.
func (c *Config) SetDefaults(lookupEnv func(string) (string, bool)) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	if c.TLS.Mode == "" {
		c.TLS.Mode = TLSAuto
	}
	if c.StateDir == "" {
		c.StateDir = defaultStateDir(lookupEnv)
	}
	if c.Default == "" {
		c.Default = DefaultDeny
	}
	if c.ETags == "" {
		c.ETags = ETagsMD5
	}
	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = Duration(DefaultShutdownGrace)
	}
	if c.Upstream.Copy == "" {
		c.Upstream.Copy = CopyNative
	}
	if c.Upstream.PartSize == 0 {
		c.Upstream.PartSize = DefaultPartSize
	}
	if c.Upstream.StallTimeout == 0 {
		c.Upstream.StallTimeout = Duration(DefaultStallTimeout)
	}
	u := &c.Upstream
	if u.Zone != "" && knownZone(u.Zone) {
		if u.Endpoint == "" {
			u.Endpoint = ZoneEndpoint(u.Zone)
		}
		if u.Region == "" {
			u.Region = u.Zone
		}
	}
	if len(c.Clients) == 0 {
		c.Clients = []Client{{AccessKey: u.AccessKey, SecretKey: u.SecretKey}}
		c.clientsDefaulted = true
		for _, f := range []string{"access_key", "secret_key"} {
			if v, ok := c.FromEnv["upstream."+f]; ok {
				c.FromEnv["clients[0]."+f] = v
			}
		}
	}
}

// defaultStateDir is $XDG_STATE_HOME/ssec-proxy (when absolute, as the XDG
// spec asks), else $HOME/.local/state/ssec-proxy, else "".
func defaultStateDir(lookupEnv func(string) (string, bool)) string {
	if x, ok := lookupEnv("XDG_STATE_HOME"); ok && filepath.IsAbs(x) {
		return filepath.Join(x, "ssec-proxy")
	}
	if h, ok := lookupEnv("HOME"); ok && h != "" {
		return filepath.Join(h, ".local", "state", "ssec-proxy")
	}
	return ""
}
