package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Validate checks the config (after SetDefaults) and returns every problem
// in one error (errors.Join of *FieldError), or nil. It does no I/O: key
// files, TLS files and the CA file are read by whoever uses them.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.listen()
	v.domain()
	v.tls()
	if c.StateDir == "" {
		v.add("state_dir", "not set, and neither XDG_STATE_HOME nor HOME is set to derive it from")
	}
	v.upstream()
	v.clients()
	ids := v.keys()
	v.rules(ids)
	switch c.Default {
	case DefaultDeny, DefaultPlaintext:
	default:
		v.add("default", "%q is not one of %s, %s", c.Default, DefaultDeny, DefaultPlaintext)
	}
	v.operations()
	return errors.Join(v.errs...)
}

type validator struct {
	c    *Config
	errs []error
}

// add records a problem with field. The message must not hold a secret.
func (v *validator) add(field, format string, args ...any) {
	line := v.c.lines[field]
	if line == 0 {
		// A missing field: point at its parent (rules[2] for rules[2].key).
		if i := strings.LastIndexAny(field, ".["); i > 0 {
			line = v.c.lines[field[:i]]
		}
	}
	v.errs = append(v.errs, &FieldError{File: v.c.Path, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// operations checks admin, shutdown_grace and the upstream's copy settings.
func (v *validator) operations() {
	c := v.c
	if c.Admin.Listen != "off" {
		if _, port, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			v.add("admin.listen", "%q is not host:port (e.g. 127.0.0.1:9464) or off", c.Admin.Listen)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			v.add("admin.listen", "port %q is not a number from 0 to 65535", port)
		}
	}
	if c.ShutdownGrace < 0 {
		v.add("shutdown_grace", "must not be negative")
	}
	if c.Upstream.StallTimeout < 0 {
		v.add("upstream.stall_timeout", "must not be negative")
	}
	switch c.ETags {
	case ETagsMD5, ETagsUpstream:
	default:
		v.add("etags", "%q is not one of %s, %s", c.ETags, ETagsMD5, ETagsUpstream)
	}
	switch c.Upstream.Copy {
	case CopyNative, CopyStream:
	default:
		v.add("upstream.copy", "%q is not one of %s, %s", c.Upstream.Copy, CopyNative, CopyStream)
	}
	if p := c.Upstream.PartSize; p < MinPartSize || p > MaxPartSize {
		v.add("upstream.part_size", "%d is outside S3's part sizes, %d (5 MiB) to %d (5 GiB)", p, MinPartSize, MaxPartSize)
	}
	for i, r := range c.Rules {
		if r.AllowPlaintextReads && !r.Encrypts() {
			v.add("rules["+strconv.Itoa(i)+"].allow_plaintext_reads", "set with encrypt: false, where every read is plaintext anyway")
		}
	}
}

func (v *validator) listen() {
	host, port, err := net.SplitHostPort(v.c.Listen)
	if err != nil {
		v.add("listen", "%q is not host:port (e.g. 127.0.0.1:8443)", v.c.Listen)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add("listen", "port %q is not a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, " /") {
		v.add("listen", "host %q is not a host name or IP address", host)
	}
}

func (v *validator) domain() {
	d := v.c.Domain
	if d == "" {
		v.add("domain", "required")
		return
	}
	if strings.Contains(d, ":") {
		v.add("domain", "%q: a domain has no scheme or port (requests for any port match)", d)
		return
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' || !isDNSLabel(label) {
			v.add("domain", "%q is not a DNS name", d)
			return
		}
	}
}

func isDNSLabel(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (v *validator) tls() {
	t := v.c.TLS
	switch t.Mode {
	case TLSFiles:
		if t.Cert == "" {
			v.add("tls.cert", "required with mode %s", TLSFiles)
		}
		if t.Key == "" {
			v.add("tls.key", "required with mode %s", TLSFiles)
		}
	case TLSAuto, TLSOff:
		if t.Cert != "" {
			v.add("tls.cert", "only used with mode %s (mode is %s)", TLSFiles, t.Mode)
		}
		if t.Key != "" {
			v.add("tls.key", "only used with mode %s (mode is %s)", TLSFiles, t.Mode)
		}
	default:
		v.add("tls.mode", "%q is not one of %s, %s, %s", t.Mode, TLSAuto, TLSFiles, TLSOff)
	}
}

func (v *validator) upstream() {
	u := v.c.Upstream
	switch {
	case u.Zone != "":
		if !knownZone(u.Zone) {
			v.add("upstream.zone", "unknown zone %q; Exoscale SOS zones: %s", u.Zone, strings.Join(Zones, ", "))
			break
		}
		if u.Endpoint != ZoneEndpoint(u.Zone) {
			v.add("upstream.endpoint", "set together with upstream.zone: use zone (endpoint %s) or endpoint, not both", ZoneEndpoint(u.Zone))
		}
		if u.Region != u.Zone {
			v.add("upstream.region", "%q differs from the zone's region %q: leave region out when zone is set", u.Region, u.Zone)
		}
	case u.Endpoint == "":
		v.add("upstream", "one of zone (an Exoscale SOS zone: %s) or endpoint is required", strings.Join(Zones, ", "))
	default:
		v.endpoint(u.Endpoint)
		if u.Region == "" {
			v.add("upstream.region", "required with upstream.endpoint (the SigV4 region)")
		}
	}
	if u.AccessKey == "" {
		v.add("upstream.access_key", "required")
	}
	if u.SecretKey == "" {
		v.add("upstream.secret_key", "required")
	}
}

func (v *validator) endpoint(e string) {
	const field = "upstream.endpoint"
	u, err := url.Parse(e)
	if err != nil {
		v.add(field, "not a URL")
		return
	}
	if u.User != nil {
		// Say nothing of the URL: the user info may hold a password.
		v.add(field, "must not hold credentials; use access_key and secret_key")
		return
	}
	switch {
	case u.Scheme == "http" && !v.c.Upstream.AllowInsecure:
		v.add(field, "plain http is not allowed: the proxy sends encryption keys upstream; use https (or set upstream.allow_insecure_upstream: true for a test upstream)")
	case u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.Opaque != "":
		v.add(field, "%q is not an absolute https URL (https://host[:port])", e)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.ForceQuery:
		v.add(field, "%q must be https://host[:port] with no path, query or fragment", e)
	case u.Hostname() == "":
		v.add(field, "%q has no host", e)
	}
}

func (v *validator) clients() {
	if v.c.clientsDefaulted {
		return // the upstream's credentials, checked there
	}
	if len(v.c.Clients) == 0 {
		v.add("clients", "at least one client is required")
	}
	first := map[string]int{}
	for i, cl := range v.c.Clients {
		p := "clients[" + strconv.Itoa(i) + "]"
		if cl.AccessKey == "" {
			v.add(p+".access_key", "required")
		} else if j, ok := first[cl.AccessKey]; ok {
			v.add(p+".access_key", "same access key as clients[%d]", j)
		} else {
			first[cl.AccessKey] = i
		}
		if cl.SecretKey == "" {
			v.add(p+".secret_key", "required")
		}
	}
}

// keys checks the key sources and returns the set of ids defined.
func (v *validator) keys() map[string]bool {
	ids := map[string]bool{}
	first := map[string]int{}
	for i, k := range v.c.Keys {
		p := "keys[" + strconv.Itoa(i) + "]"
		switch {
		case k.ID == "":
			v.add(p+".id", "required")
		case !validKeyID(k.ID):
			v.add(p+".id", "%q: a key id is letters, digits, '.', '_' and '-', at most 128", k.ID)
		default:
			if j, ok := first[k.ID]; ok {
				v.add(p+".id", "duplicate key id %q (also keys[%d])", k.ID, j)
			} else {
				first[k.ID] = i
			}
			ids[k.ID] = true
		}
		switch {
		case k.File == "" && k.Env == "":
			v.add(p, "one of file or env is required")
		case k.File != "" && k.Env != "":
			v.add(p, "both file and env are set: use one")
		case k.Env != "" && !validEnvName(k.Env):
			v.add(p+".env", "%q is not an environment variable name", k.Env)
		}
	}
	return ids
}

func validKeyID(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (v *validator) rules(ids map[string]bool) {
	type bp struct{ bucket, prefix string }
	first := map[bp]int{}
	for i, r := range v.c.Rules {
		p := "rules[" + strconv.Itoa(i) + "]"
		if r.Bucket == "" {
			v.add(p+".bucket", `required (a bucket name, or "*" for every bucket)`)
		} else if r.Bucket != "*" {
			if why := checkBucketName(r.Bucket); why != "" {
				v.add(p+".bucket", "%q is not a valid S3 bucket name: %s", r.Bucket, why)
			}
		}
		if j, ok := first[bp{r.Bucket, r.Prefix}]; ok {
			v.add(p, "same bucket %q and prefix %q as rules[%d]", r.Bucket, r.Prefix, j)
		} else {
			first[bp{r.Bucket, r.Prefix}] = i
		}
		if !r.Encrypts() {
			if r.Key != "" {
				v.add(p+".key", "set with encrypt: false; a rule that does not encrypt has no key")
			}
			if len(r.Previous) > 0 {
				v.add(p+".previous", "set with encrypt: false; a rule that does not encrypt has no previous keys")
			}
			continue
		}
		switch {
		case r.Key == "":
			v.add(p+".key", "required when the rule encrypts (or set encrypt: false)")
		case !ids[r.Key]:
			v.add(p+".key", "unknown key id %q", r.Key)
		}
		seen := map[string]bool{}
		for j, id := range r.Previous {
			q := p + ".previous[" + strconv.Itoa(j) + "]"
			switch {
			case id == "":
				v.add(q, "empty key id")
			case !ids[id]:
				v.add(q, "unknown key id %q", id)
			case id == r.Key:
				v.add(q, "%q is the rule's own key", id)
			case seen[id]:
				v.add(q, "%q listed twice", id)
			}
			seen[id] = true
		}
	}
}

// checkBucketName says why name is not a valid S3 bucket name (the rules
// for new buckets), or returns "".
func checkBucketName(name string) string {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Sprintf("%d characters; a bucket name has 3 to 63", len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return "only lowercase letters, digits, '.' and '-' are allowed"
		}
	}
	if !isAlnum(name[0]) || !isAlnum(name[len(name)-1]) {
		return "must begin and end with a letter or digit"
	}
	if strings.Contains(name, "..") {
		return "must not contain \"..\""
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return "must not be an IP address"
	}
	return ""
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// Warnings lists settings that are valid but weaken the proxy, for the
// caller to print loudly at startup and in `ssec-proxy check`.
func (c *Config) Warnings() []string {
	var w []string
	prefix := ""
	if c.Path != "" {
		prefix = c.Path + ": "
	}
	if c.Upstream.InsecureSkipVerify {
		w = append(w, prefix+"upstream.insecure_skip_verify: the upstream's TLS certificate is NOT verified; anyone on the path can read the encryption keys")
	}
	if strings.HasPrefix(c.Upstream.Endpoint, "http://") {
		w = append(w, prefix+"upstream.endpoint is plain http (allow_insecure_upstream): encryption keys cross the network in clear text")
	}
	if c.TLS.Mode == TLSOff {
		if host, _, err := net.SplitHostPort(c.Listen); err == nil && !isLoopback(host) {
			w = append(w, prefix+"tls.mode: off while listening on "+c.Listen+": requests travel in clear text on the network")
		}
	}
	return w
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
