package keystore

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssec-proxy/ssec-proxy/config"
)

func TestLoadKeys(t *testing.T) {
	raw := testRaw(42)
	b64 := base64.StdEncoding.EncodeToString(raw[:])
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask
			t.Fatal(err)
		}
		return p
	}
	r31, r33 := testRaw(1), testRaw(2)
	files := map[string]string{
		"raw":         write("raw.key", raw[:], 0o600),
		"b64nl":       write("b64.key", []byte(b64+"\n"), 0o400),
		"b64crlf":     write("b64crlf.key", []byte("  "+b64+"\r\n"), 0o600),
		"rawstd":      write("rawstd.key", []byte(base64.RawStdEncoding.EncodeToString(raw[:])), 0o600),
		"url":         write("url.key", []byte(base64.URLEncoding.EncodeToString(raw[:])), 0o600),
		"rawurl":      write("rawurl.key", []byte(base64.RawURLEncoding.EncodeToString(raw[:])), 0o600),
		"31":          write("31.key", r31[:31], 0o600),
		"33":          write("33.key", append(r33[:], '\n'), 0o600),
		"b64-31":      write("b64-31.key", []byte(base64.StdEncoding.EncodeToString(raw[:31])), 0o600),
		"b64-33":      write("b64-33.key", []byte(base64.StdEncoding.EncodeToString(append(raw[:], 0))+"\n"), 0o600),
		"bad b64":     write("bad.key", []byte("this is not base64 at all!!\n"), 0o600),
		"empty":       write("empty.key", nil, 0o600),
		"0644":        write("0644.key", raw[:], 0o644),
		"0640":        write("0640.key", []byte(b64), 0o640),
		"text32":      write("text32.key", []byte("0123456789abcdef0123456789abcdef"), 0o600),
		"missing":     filepath.Join(dir, "missing.key"),
		"a directory": dir,
	}
	environ := map[string]string{
		"GOOD":     b64,
		"GOOD_WS":  " " + b64 + "\n",
		"URL":      base64.RawURLEncoding.EncodeToString(raw[:]),
		"SHORT":    base64.StdEncoding.EncodeToString(raw[:31]),
		"LONG":     base64.StdEncoding.EncodeToString(append(raw[:], 1)),
		"BAD":      "%%%not-base64%%%",
		"EMPTY":    "",
		"RAWBYTES": string(raw[:]),
	}
	lookup := func(k string) (string, bool) { v, ok := environ[k]; return v, ok }

	for _, tc := range []struct {
		name    string
		src     config.KeySource
		err     string // substring; "" means success with raw
		warning string // substring of the only warning; "" means none
	}{
		{"raw 32-byte file", config.KeySource{ID: "k", File: files["raw"]}, "", ""},
		{"base64 file with newline", config.KeySource{ID: "k", File: files["b64nl"]}, "", ""},
		{"base64 file with spaces and CRLF", config.KeySource{ID: "k", File: files["b64crlf"]}, "", ""},
		{"raw std base64 file", config.KeySource{ID: "k", File: files["rawstd"]}, "", ""},
		{"url base64 file", config.KeySource{ID: "k", File: files["url"]}, "", ""},
		{"raw url base64 file", config.KeySource{ID: "k", File: files["rawurl"]}, "", ""},
		{"31-byte file", config.KeySource{ID: "k", File: files["31"]}, `key "k": file ` + files["31"] + " holds 31 bytes: neither 32 raw bytes nor base64 of 32 bytes", ""},
		{"33-byte file", config.KeySource{ID: "k", File: files["33"]}, "holds 33 bytes", ""},
		{"base64 of 31 bytes", config.KeySource{ID: "k", File: files["b64-31"]}, "base64 decodes to 31 bytes, want 32", ""},
		{"base64 of 33 bytes", config.KeySource{ID: "k", File: files["b64-33"]}, "base64 decodes to 33 bytes, want 32", ""},
		{"bad base64 file", config.KeySource{ID: "k", File: files["bad b64"]}, "neither 32 raw bytes nor base64", ""},
		{"empty file", config.KeySource{ID: "k", File: files["empty"]}, "holds 0 bytes", ""},
		{"missing file", config.KeySource{ID: "k", File: files["missing"]}, `key "k": file ` + files["missing"] + " does not exist", ""},
		{"directory", config.KeySource{ID: "k", File: files["a directory"]}, `key "k": reading file`, ""},
		{"mode 0644 warns", config.KeySource{ID: "k", File: files["0644"]}, "", "readable by group or others (mode 0644)"},
		{"mode 0640 warns", config.KeySource{ID: "k", File: files["0640"]}, "", "(mode 0640)"},
		{"mode 0400 is fine", config.KeySource{ID: "k", File: files["b64nl"]}, "", ""},
		{"32 characters of text", config.KeySource{ID: "t", File: files["text32"]}, "", "32 characters of text"},
		{"env", config.KeySource{ID: "k", Env: "GOOD"}, "", ""},
		{"env with whitespace", config.KeySource{ID: "k", Env: "GOOD_WS"}, "", ""},
		{"env url base64", config.KeySource{ID: "k", Env: "URL"}, "", ""},
		{"env missing", config.KeySource{ID: "k", Env: "NOPE"}, `key "k": environment variable NOPE is not set`, ""},
		{"env empty", config.KeySource{ID: "k", Env: "EMPTY"}, "environment variable EMPTY is empty", ""},
		{"env short", config.KeySource{ID: "k", Env: "SHORT"}, "SHORT: base64 decodes to 31 bytes, want 32", ""},
		{"env long", config.KeySource{ID: "k", Env: "LONG"}, "base64 decodes to 33 bytes", ""},
		{"env bad base64", config.KeySource{ID: "k", Env: "BAD"}, "BAD is not valid base64 (16 characters)", ""},
		{"env raw bytes", config.KeySource{ID: "k", Env: "RAWBYTES"}, "RAWBYTES is not valid base64", ""},
		{"no source", config.KeySource{ID: "k"}, "neither file nor env", ""},
		{"both sources", config.KeySource{ID: "k", File: files["raw"], Env: "GOOD"}, "both file and env", ""},
		{"no id", config.KeySource{File: files["raw"]}, "no id", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, warnings, err := LoadKeys([]config.KeySource{tc.src}, lookup, os.ReadFile)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("LoadKeys succeeded, want %q", tc.err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err = %v, want %q", err, tc.err)
				}
				if keys != nil {
					t.Error("keys returned with an error")
				}
				for _, secret := range []string{b64, environ["BAD"], "not base64 at all", base64.StdEncoding.EncodeToString(raw[:31])} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error shows content: %v", err)
					}
				}
				assertNoBytes(t, "error", err.Error(), raw)
				return
			}
			if err != nil {
				t.Fatalf("LoadKeys: %v", err)
			}
			k := keys[tc.src.ID]
			if k == nil || k.ID() != tc.src.ID {
				t.Fatalf("keys = %v", keys)
			}
			if tc.name == "32 characters of text" {
				if r := k.Raw(); string(r[:]) != "0123456789abcdef0123456789abcdef" {
					t.Error("text key bytes wrong")
				}
			} else if k.Raw() != raw {
				t.Errorf("Raw() differs from the key written")
			}
			switch {
			case tc.warning == "" && len(warnings) > 0:
				t.Errorf("warnings = %q, want none", warnings)
			case tc.warning != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.warning)):
				t.Errorf("warnings = %q, want one with %q", warnings, tc.warning)
			}
		})
	}
}

func TestLoadKeysAll(t *testing.T) {
	raw := testRaw(5)
	b64 := base64.StdEncoding.EncodeToString(raw[:])
	lookup := func(k string) (string, bool) {
		if k == "A" || k == "B" {
			return b64, true
		}
		return "", false
	}
	readFile := func(name string) ([]byte, error) {
		if name == "/fake/raw" {
			return append([]byte(nil), raw[:]...), nil // LoadKeys zeroes what it reads
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}

	// Every problem is reported, not only the first.
	_, _, err := LoadKeys([]config.KeySource{
		{ID: "a", Env: "A"},
		{ID: "x", Env: "X"},
		{ID: "y", File: "/fake/y"},
		{ID: "a", Env: "B"},
	}, lookup, readFile)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`key "x": environment variable X is not set`, `key "y": file /fake/y does not exist`, `key "a" is defined twice`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err lacks %q:\n%v", want, err)
		}
	}

	// Two ids with the same bytes: a warning. A fake readFile: no mode check.
	keys, warnings, err := LoadKeys([]config.KeySource{{ID: "a", Env: "A"}, {ID: "b", File: "/fake/raw"}}, lookup, readFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || len(warnings) != 1 || warnings[0] != `keys "a", "b" hold the same bytes` {
		t.Errorf("keys %v, warnings %q", keys, warnings)
	}

	// nil functions mean the real ones.
	t.Setenv("SSEC_TEST_KEY", b64)
	keys, _, err = LoadKeys([]config.KeySource{{ID: "e", Env: "SSEC_TEST_KEY"}}, nil, nil)
	if err != nil || keys["e"].Raw() != raw {
		t.Fatalf("LoadKeys with nil funcs: %v", err)
	}
}

func TestLoadKeysWrapsReadError(t *testing.T) {
	boom := errors.New("boom")
	_, _, err := LoadKeys([]config.KeySource{{ID: "k", File: "/x"}}, nil, func(string) ([]byte, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want it to wrap the read error", err)
	}
}
