package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const (
	testAccessKey = "AKTESTACCESS"
	testSecretKey = "s3cr3t-NEVER-PRINTED"
	testLocalKey  = "local-s3cr3t-NEVER-PRINTED"
)

// env is the environment every test parses with.
func env(extra ...string) func(string) (string, bool) {
	m := map[string]string{
		"SOS_ACCESS_KEY":        testAccessKey,
		"SOS_SECRET_KEY":        testSecretKey,
		"LOCAL_SECRET":          testLocalKey,
		"KEY_DIR":               "/run/keys",
		"MEDIA_ENCRYPT":         "true",
		"AWS_ACCESS_KEY_ID":     testAccessKey,
		"AWS_SECRET_ACCESS_KEY": testSecretKey,
		"HOME":                  "/home/u",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// fieldErrors flattens err into its FieldErrors; it fails the test on any
// other kind of error.
func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("error %v (%T) is not a *FieldError", e, e)
		}
		out = append(out, fe)
	}
	walk(err)
	return out
}

func parseFile(t *testing.T, name string, lookup func(string) (string, bool)) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(data, name, lookup)
}

func TestParseValid(t *testing.T) {
	cfg, err := parseFile(t, "valid.yaml", env())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tr := true
	want := &Config{
		Path:     "valid.yaml",
		Listen:   "127.0.0.1:8443",
		Domain:   "s3.localhost",
		TLS:      TLS{Mode: TLSFiles, Cert: "/etc/ssec-proxy/tls.crt", Key: "/etc/ssec-proxy/tls.key"},
		StateDir: "/var/lib/ssec-proxy",
		Upstream: Upstream{
			Zone: "ch-gva-2", Endpoint: "https://sos-ch-gva-2.exo.io", Region: "ch-gva-2",
			AccessKey: testAccessKey, SecretKey: testSecretKey,
			Copy: CopyNative, PartSize: DefaultPartSize, StallTimeout: Duration(DefaultStallTimeout),
		},
		Clients: []Client{
			{AccessKey: "local-tool", SecretKey: testLocalKey},
			{AccessKey: "restic", SecretKey: "restic-secret-$$notexpanded"},
		},
		Keys: []KeySource{
			{ID: "backups-2026", File: "/run/secrets/backups-2026.key"},
			{ID: "backups-2025", Env: "BACKUPS_2025_KEY"},
			{ID: "shared", File: "/run/keys/shared.key"},
		},
		Rules: []Rule{
			{Bucket: "backups", Key: "backups-2026", Previous: []string{"backups-2025"}},
			{Bucket: "backups", Prefix: "public/", Encrypt: new(bool)},
			{Bucket: "*", Key: "shared"},
			{Bucket: "media.example.com", Prefix: "raw photos/2026/", Key: "shared", Encrypt: &tr},
		},
		Default: DefaultPlaintext,
		Admin:   Admin{Listen: DefaultAdminListen},
		ETags:   ETagsMD5,

		ShutdownGrace: Duration(DefaultShutdownGrace),
		FromEnv: map[string]string{
			"upstream.access_key":   "${SOS_ACCESS_KEY}",
			"upstream.secret_key":   "${SOS_SECRET_KEY}",
			"clients[0].secret_key": "${LOCAL_SECRET}",
			"keys[2].file":          "${KEY_DIR}/shared.key",
			"rules[3].encrypt":      "${MEDIA_ENCRYPT}",
		},
	}
	cfg.lines = nil
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Parse:\n got %#v\nwant %#v", cfg, want)
	}
	if !cfg.Rules[0].Encrypts() || cfg.Rules[1].Encrypts() || !cfg.Rules[3].Encrypts() {
		t.Error("Encrypts: wrong")
	}
}

func TestParseDefaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      []string
		stateDir string
	}{
		{"xdg", []string{"XDG_STATE_HOME", "/xdg/state"}, "/xdg/state/ssec-proxy"},
		{"home", nil, "/home/u/.local/state/ssec-proxy"},
		{"relative xdg ignored", []string{"XDG_STATE_HOME", "rel"}, "/home/u/.local/state/ssec-proxy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseFile(t, "minimal-endpoint.yaml", env(tc.env...))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if cfg.Listen != DefaultListen || cfg.Domain != DefaultDomain || cfg.TLS.Mode != TLSAuto ||
				cfg.Default != DefaultDeny || cfg.StateDir != tc.stateDir {
				t.Errorf("defaults: %+v", cfg)
			}
			if want := []Client{{AccessKey: testAccessKey, SecretKey: testSecretKey}}; !reflect.DeepEqual(cfg.Clients, want) {
				t.Errorf("clients = %v, want the upstream's credentials", cfg.Clients)
			}
			if cfg.FromEnv["clients[0].secret_key"] != "${AWS_SECRET_ACCESS_KEY}" {
				t.Errorf("FromEnv = %v", cfg.FromEnv)
			}
			if cfg.Upstream.Endpoint != "https://minio.internal:9000" || cfg.Upstream.Region != "us-east-1" {
				t.Errorf("upstream = %v", cfg.Upstream)
			}
			// Defaults and validation are idempotent.
			before := fmt.Sprintf("%#v", cfg)
			cfg.SetDefaults(env(tc.env...))
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate after Parse: %v", err)
			}
			if after := fmt.Sprintf("%#v", cfg); after != before {
				t.Errorf("SetDefaults twice changed the config:\n%s\n%s", before, after)
			}
		})
	}
}

func TestParseZoneDefaults(t *testing.T) {
	for _, zone := range Zones {
		t.Run(zone, func(t *testing.T) {
			y := "upstream: {zone: " + zone + ", access_key: a, secret_key: b}\n"
			cfg, err := Parse([]byte(y), "z.yaml", env())
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Upstream.Endpoint != "https://sos-"+zone+".exo.io" || cfg.Upstream.Region != zone {
				t.Errorf("upstream = %v", cfg.Upstream)
			}
		})
	}
}

func TestParseNoStateDir(t *testing.T) {
	y := "upstream: {zone: ch-dk-2, access_key: a, secret_key: b}\n"
	_, err := Parse([]byte(y), "s.yaml", func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), "s.yaml: state_dir: ") {
		t.Fatalf("err = %v, want a state_dir error", err)
	}
}

// TestParseInvalidFiles checks that each invalid file yields exactly the
// expected problems, each naming its field (and line where there is one).
func TestParseInvalidFiles(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string // "field" or "line:field"; "" field for whole-file errors
		msgs []string // substrings the joined error must hold
	}{
		{
			file: "invalid-unknown-field.yaml",
			want: []string{"6:upstream.secrt_key", "10:rules[0].prefixx"},
			msgs: []string{`invalid-unknown-field.yaml:6: upstream.secrt_key: unknown field "secrt_key"`},
		},
		{
			file: "invalid-missing-env.yaml",
			want: []string{"3:upstream.access_key", "4:upstream.secret_key", "7:keys[0].file"},
			msgs: []string{"invalid-missing-env.yaml:4: upstream.secret_key: environment variable SOS_SECRET_KEY is not set"},
		},
		{
			file: "invalid-upstream-http.yaml",
			want: []string{"2:upstream.endpoint", "1:upstream.region"},
			msgs: []string{"upstream.endpoint: plain http is not allowed"},
		},
		{
			file: "invalid-zone-and-endpoint.yaml",
			want: []string{"3:upstream.endpoint", "4:upstream.region"},
		},
		{
			file: "invalid-tls-files.yaml",
			want: []string{"1:tls.cert", "1:tls.key"},
			msgs: []string{"invalid-tls-files.yaml:1: tls.cert: required with mode files"},
		},
		{
			file: "invalid-syntax.yaml",
			want: []string{"3:"},
		},
		{
			file: "invalid-types.yaml",
			want: []string{"1:upstream", "3:rules"},
			msgs: []string{"upstream: expected a mapping, found a list", "rules: expected a list, found a mapping"},
		},
		{
			file: "invalid-many.yaml",
			want: []string{
				"2:listen", "3:domain", "5:tls.mode",
				"8:upstream.zone", "9:upstream.access_key", "10:upstream.secret_key",
				"14:clients[1].access_key", "16:clients[2].access_key", "17:clients[2].secret_key",
				"21:keys[1].id", "23:keys[2].id", "25:keys[3]", "28:keys[4]",
				"30:rules[0].bucket", "32:rules[1].bucket", "35:rules[2].key", "36:rules[3]",
				"40:rules[4].key", "41:rules[4].previous", "42:rules[5].key",
				"46:rules[6].previous[0]", "46:rules[6].previous[1]", "47:default",
			},
			msgs: []string{
				`invalid-many.yaml:35: rules[2].key: unknown key id "backups-2027"`,
				"upstream.zone: unknown zone \"ch-zrh-1\"; Exoscale SOS zones: ch-gva-2, ch-dk-2, de-fra-1, de-muc-1, at-vie-1, at-vie-2, bg-sof-1",
				`rules[3]: same bucket "backups" and prefix "" as rules[2]`,
				`clients[1].access_key: same access key as clients[0]`,
			},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cfg, err := parseFile(t, tc.file, env("SOS_ACCESS_KEY", "", "SOS_SECRET_KEY", "", "KEY_DIR", ""))
			if tc.file == "invalid-missing-env.yaml" {
				cfg, err = parseFile(t, tc.file, func(string) (string, bool) { return "", false })
			}
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with an error")
			}
			var got []string
			for _, fe := range fieldErrors(t, err) {
				got = append(got, fmt.Sprintf("%d:%s", fe.Line, fe.Field))
				if fe.File != tc.file {
					t.Errorf("File = %q in %v", fe.File, fe)
				}
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("fields:\n got %q\nwant %q\nerror:\n%v", got, want, err)
			}
			for _, m := range tc.msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error does not hold %q:\n%v", m, err)
				}
			}
			assertNoSecret(t, err.Error())
		})
	}
}

func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{testSecretKey, testLocalKey, "SK", "s1", "s2"} {
		if len(secret) > 2 && strings.Contains(s, secret) || strings.Contains(s, ": "+secret+"\n") {
			t.Errorf("output holds secret %q:\n%s", secret, s)
		}
	}
}

// TestParseInline checks single problems, each in a small document.
func TestParseInline(t *testing.T) {
	const up = "upstream: {zone: ch-gva-2, access_key: AK, secret_key: \"${SOS_SECRET_KEY}\"}\n"
	const keys = "keys: [{id: k1, file: /k1}, {id: k2, env: K2}]\n"
	for _, tc := range []struct {
		name  string
		yaml  string
		field string // "" means valid
		msg   string
	}{
		{"valid minimal", up, "", ""},
		{"two documents", up + "---\n" + up, "", "more than one YAML document"},
		{"top level list", "- a\n", "", "expected a mapping, found a list"},
		{"unknown top-level", up + "listen_addr: x\n", "listen_addr", "unknown field"},
		{"unknown in tls", up + "tls: {mod: off}\n", "tls.mod", "unknown field"},
		{"unknown in keys", up + "keys: [{id: a, path: /x}]\n", "keys[0].path", "unknown field"},
		{"duplicate field", up + "listen: :1\nlisten: :2\n", "", "already defined"},
		{"listen no port", up + "listen: 127.0.0.1\n", "listen", "host:port"},
		{"listen bad port", up + "listen: 127.0.0.1:http\n", "listen", "port"},
		{"listen big port", up + "listen: :70000\n", "listen", "port"},
		{"listen any host", up + "listen: :8443\n", "", ""},
		{"listen ipv6", up + "listen: \"[::1]:8443\"\n", "", ""},
		{"domain with port", up + "domain: localhost:8443\n", "domain", "port"},
		{"domain bad", up + "domain: a..b\n", "domain", "DNS name"},
		{"tls off", up + "tls: {mode: off}\n", "", ""},
		{"admin off", up + "admin: {listen: off}\n", "", ""},
		{"etags upstream", up + "etags: upstream\n", "", ""},
		{"http upstream refused", "upstream: {endpoint: http://s3.local:9000, region: r, access_key: a, secret_key: b}\n", "upstream.endpoint", "plain http is not allowed"},
		{"http upstream allowed", "upstream: {endpoint: http://127.0.0.1:9000, region: r, access_key: a, secret_key: b, allow_insecure_upstream: true}\n", "", ""},
		{"etags bad", up + "etags: sha1\n", "etags", `"sha1" is not one of`},
		{"admin bad", up + "admin: {listen: nowhere}\n", "admin.listen", "host:port"},
		{"shutdown grace", up + "shutdown_grace: 2m\n", "", ""},
		{"shutdown grace negative", up + "shutdown_grace: -1s\n", "shutdown_grace", "negative"},
		{"copy stream", "upstream: {zone: ch-gva-2, access_key: a, secret_key: b, copy: stream}\n", "", ""},
		{"copy bad", "upstream: {zone: ch-gva-2, access_key: a, secret_key: b, copy: maybe}\n", "upstream.copy", `"maybe" is not one of`},
		{"part size small", "upstream: {zone: ch-gva-2, access_key: a, secret_key: b, part_size: 1000}\n", "upstream.part_size", "outside"},
		{"plaintext reads without encryption", up + keys + "rules: [{bucket: b-1, encrypt: false, allow_plaintext_reads: true}]\n", "rules[0].allow_plaintext_reads", "encrypt: false"},
		{"tls auto with cert", up + "tls: {mode: auto, cert: /c}\n", "tls.cert", "only used with mode files"},
		{"tls bad mode", up + "tls: {mode: on}\n", "tls.mode", `"on" is not one of`},
		{"zone unknown", "upstream: {zone: xx, access_key: a, secret_key: b}\n", "upstream.zone", "ch-gva-2, ch-dk-2"},
		{"zone with region", "upstream: {zone: ch-gva-2, region: ch-gva-2, access_key: a, secret_key: b}\n", "", ""},
		{"zone with other region", "upstream: {zone: ch-gva-2, region: de-fra-1, access_key: a, secret_key: b}\n", "upstream.region", "differs"},
		{"endpoint without region", "upstream: {endpoint: https://s3, access_key: a, secret_key: b}\n", "upstream.region", "required"},
		{"endpoint relative", "upstream: {endpoint: s3.example.com, region: r, access_key: a, secret_key: b}\n", "upstream.endpoint", "absolute https URL"},
		{"endpoint path", "upstream: {endpoint: https://h/x, region: r, access_key: a, secret_key: b}\n", "upstream.endpoint", "no path"},
		{"endpoint slash", "upstream: {endpoint: https://h/, region: r, access_key: a, secret_key: b}\n", "", ""},
		{"endpoint credentials", "upstream: {endpoint: \"https://u:" + testSecretKey + "@h\", region: r, access_key: a, secret_key: b}\n", "upstream.endpoint", "must not hold credentials"},
		{"endpoint ftp", "upstream: {endpoint: ftp://h, region: r, access_key: a, secret_key: b}\n", "upstream.endpoint", "https"},
		{"secret from empty env", "upstream: {zone: ch-gva-2, access_key: a, secret_key: \"${EMPTY}\"}\n", "upstream.secret_key", "required"},
		{"bad env syntax", "upstream: {zone: ch-gva-2, access_key: a, secret_key: \"${SOS SECRET}\"}\n", "upstream.secret_key", "malformed ${...}"},
		{"unterminated env", "upstream: {zone: ch-gva-2, access_key: a, secret_key: \"${SOS_SECRET_KEY\"}\n", "upstream.secret_key", "unterminated ${"},
		{"dollar without braces", "upstream: {zone: ch-gva-2, access_key: $SOS_ACCESS_KEY, secret_key: b$}\n", "", ""},
		{"clients empty key", up + "clients: [{access_key: a}]\n", "clients[0].secret_key", "required"},
		{"key id bad chars", up + "keys: [{id: \"a b\", file: /x}]\n", "keys[0].id", "letters, digits"},
		{"key env bad name", up + "keys: [{id: a, env: 1X}]\n", "keys[0].env", "not an environment variable name"},
		{"rule star", up + keys + "rules: [{bucket: \"*\", key: k1}]\n", "", ""},
		{"rule prefix any", up + keys + "rules: [{bucket: b12, prefix: \"/%2F ü..//\", key: k1}]\n", "", ""},
		{"rule no bucket", up + keys + "rules: [{key: k1}]\n", "rules[0].bucket", "required"},
		{"rule bucket short", up + keys + "rules: [{bucket: ab, key: k1}]\n", "rules[0].bucket", "3 to 63"},
		{"rule bucket ip", up + keys + "rules: [{bucket: 10.0.0.1, key: k1}]\n", "rules[0].bucket", "IP address"},
		{"rule bucket dash", up + keys + "rules: [{bucket: -abc, key: k1}]\n", "rules[0].bucket", "begin and end"},
		{"rule bucket dots", up + keys + "rules: [{bucket: a..b, key: k1}]\n", "rules[0].bucket", `".."`},
		{"rule no key", up + keys + "rules: [{bucket: b12}]\n", "rules[0].key", "required when the rule encrypts"},
		{"rule unknown key", up + keys + "rules: [{bucket: b12, key: k9}]\n", "rules[0].key", `unknown key id "k9"`},
		{"rule previous self", up + keys + "rules: [{bucket: b12, key: k1, previous: [k1]}]\n", "rules[0].previous[0]", "own key"},
		{"rule previous twice", up + keys + "rules: [{bucket: b12, key: k1, previous: [k2, k2]}]\n", "rules[0].previous[1]", "twice"},
		{"rule previous unknown", up + keys + "rules: [{bucket: b12, key: k1, previous: [k3]}]\n", "rules[0].previous[0]", "unknown key id"},
		{"rule plaintext with key", up + keys + "rules: [{bucket: b12, key: k1, encrypt: false}]\n", "rules[0].key", "encrypt: false"},
		{"rule plaintext", up + keys + "rules: [{bucket: b12, encrypt: false}]\n", "", ""},
		{"rule encrypt not bool", up + keys + "rules: [{bucket: b12, key: k1, encrypt: maybe}]\n", "", "cannot unmarshal"},
		{"rule encrypt from env", up + keys + "rules: [{bucket: b12, encrypt: \"${FALSE}\"}]\n", "", ""},
		{"rule duplicate", up + keys + "rules: [{bucket: b12, key: k1}, {bucket: b12, key: k2}]\n", "rules[1]", "same bucket"},
		{"rule same bucket other prefix", up + keys + "rules: [{bucket: b12, key: k1}, {bucket: b12, prefix: a, key: k2}]\n", "", ""},
		{"default bad", up + "default: allow\n", "default", "deny, plaintext"},
		{"default plaintext", up + "default: plaintext\n", "", ""},
		{"anchor and merge", "base: &b {zone: ch-gva-2, access_key: a}\n", "base", "unknown field"},
		{"merge key", "x: &b {zone: ch-gva-2}\n", "x", "unknown field"},
		{"alias", up + "keys: [&k {id: k1, file: /a}]\nrules: [{bucket: b12, key: k1}]\nclients: [{access_key: \"${SOS_ACCESS_KEY}\", secret_key: s}]\n", "", ""},
		{"merge into upstream", "defaults: &d {}\n", "defaults", "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), "t.yaml", env("EMPTY", "", "FALSE", "false"))
			if tc.field == "" && tc.msg == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", cfg)
			}
			assertNoSecret(t, err.Error())
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error does not hold %q:\n%v", tc.msg, err)
			}
			fes := fieldErrors(t, err)
			if len(fes) != 1 {
				t.Errorf("want one problem, got %d:\n%v", len(fes), err)
			}
			if !slices.ContainsFunc(fes, func(fe *FieldError) bool { return fe.Field == tc.field }) {
				t.Errorf("no problem with field %q in:\n%v", tc.field, err)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	for _, data := range []string{"", "# nothing\n", "---\n"} {
		_, err := Parse([]byte(data), "e.yaml", env())
		want := "e.yaml: upstream: one of zone"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", data, err, want)
		}
	}
}

func TestMergeKeys(t *testing.T) {
	y := `
upstream:
  <<: &creds
    access_key: ${SOS_ACCESS_KEY}
    secret_key: ${SOS_SECRET_KEY}
  zone: ch-gva-2
clients:
  - *creds
  - {<<: *creds, access_key: other}
`
	cfg, err := Parse([]byte(y), "m.yaml", env())
	if err != nil {
		t.Fatal(err)
	}
	want := []Client{{testAccessKey, testSecretKey}, {"other", testSecretKey}}
	if cfg.Upstream.SecretKey != testSecretKey || !reflect.DeepEqual(cfg.Clients, want) {
		t.Errorf("got %#v %#v", cfg.Upstream, cfg.Clients)
	}

	// An unknown field inside an anchor is reported, once.
	y = "upstream: &u {zone: ch-gva-2, access_key: a, secret_key: b, bogus: 1}\nclients: [*u]\n"
	_, err = Parse([]byte(y), "m.yaml", env())
	if err == nil || !strings.Contains(err.Error(), "upstream.bogus") {
		t.Fatalf("err = %v", err)
	}
}

func TestExpand(t *testing.T) {
	lookup := env("A", "1", "B_2", "two", "E", "")
	for _, tc := range []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${A}", "1", ""},
		{"x${A}y${B_2}z", "x1ytwoz", ""},
		{"${E}", "", ""},
		{"$A", "$A", ""},
		{"$$", "$$", ""},
		{"$${A}", "$${A}", ""},
		{"a$", "a$", ""},
		{"$", "$", ""},
		{"${", "", "unterminated"},
		{"${}", "", "malformed"},
		{"${1A}", "", "malformed"},
		{"${A-b}", "", "malformed"},
		{"${NOPE}", "", "NOPE is not set"},
		{"ü${A}ü", "ü1ü", ""},
	} {
		got, err := expand(tc.in, lookup)
		if got != tc.want || !strings.Contains(err, tc.err) || (tc.err == "") != (err == "") {
			t.Errorf("expand(%q) = %q, %q; want %q, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestSecretsNotPrinted(t *testing.T) {
	cfg, err := parseFile(t, "valid.yaml", env())
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{cfg, *cfg, cfg.Upstream, &cfg.Upstream, cfg.Clients, cfg.Clients[0]} {
			s := fmt.Sprintf(verb, v)
			if strings.Contains(s, testSecretKey) || strings.Contains(s, testLocalKey) {
				t.Errorf("%s of %T shows a secret: %s", verb, v, s)
			}
		}
	}
	if s := cfg.Upstream.String(); !strings.Contains(s, "SecretKey:"+Redacted) || !strings.Contains(s, testAccessKey) {
		t.Errorf("Upstream.String() = %s", s)
	}
}

func TestLoad(t *testing.T) {
	if _, err := Load(filepath.Join("testdata", "does-not-exist.yaml")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "a")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "b")
	t.Setenv("HOME", "/home/x")
	cfg, err := Load(filepath.Join("testdata", "minimal-endpoint.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Path != filepath.Join("testdata", "minimal-endpoint.yaml") || cfg.Upstream.SecretKey != "b" {
		t.Errorf("Load: %v", cfg)
	}
}

func TestFieldErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    FieldError
		want string
	}{
		{FieldError{"f.yaml", 7, "a.b", "m"}, "f.yaml:7: a.b: m"},
		{FieldError{"f.yaml", 0, "a.b", "m"}, "f.yaml: a.b: m"},
		{FieldError{"", 0, "a.b", "m"}, "a.b: m"},
		{FieldError{"", 3, "", "m"}, "line 3: m"},
		{FieldError{"f.yaml", 3, "", "m"}, "f.yaml:3: m"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%#v.Error() = %q, want %q", tc.e, got, tc.want)
		}
	}
}

// TestValidateInCode checks a Config built in code, without a file.
func TestValidateInCode(t *testing.T) {
	c := &Config{Upstream: Upstream{Zone: "de-muc-1", AccessKey: "a", SecretKey: "b"}}
	c.SetDefaults(env())
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Rules = []Rule{{Bucket: "b12", Key: "nope"}}
	err := c.Validate()
	if err == nil || err.Error() != `rules[0].key: unknown key id "nope"` {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("upstream: {<<: [*x]}"))
	lookup := env("EMPTY", "", "FALSE", "false")
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml", lookup)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one", cfg, err)
		}
		if err != nil {
			_ = err.Error()
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate after a successful Parse: %v", err)
		}
	})
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"none", "tls: {mode: off}\nlisten: 127.0.0.1:1\n", nil},
		{"tls off localhost", "tls: {mode: off}\nlisten: localhost:1\n", nil},
		{"tls off on all", "tls: {mode: off}\nlisten: :1\n", []string{"w.yaml: tls.mode: off while listening on :1"}},
		{"insecure", "upstream: {insecure_skip_verify: true}\n", []string{"w.yaml: upstream.insecure_skip_verify: the upstream's TLS certificate is NOT verified"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(tc.yaml, "upstream: {", "upstream: {zone: ch-gva-2, access_key: a, secret_key: b, ", 1)
			if !strings.Contains(y, "upstream:") {
				y += "upstream: {zone: ch-gva-2, access_key: a, secret_key: b}\n"
			}
			cfg, err := Parse([]byte(y), "w.yaml", env())
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Warnings()
			if len(got) != len(tc.want) {
				t.Fatalf("Warnings() = %q, want %q", got, tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("Warnings()[%d] = %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}
