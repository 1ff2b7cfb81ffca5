package main

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// newKey returns the base64 of 32 bytes from rnd.
func newKey(rnd io.Reader) (string, error) {
	var k [32]byte
	if _, err := io.ReadFull(rnd, k[:]); err != nil {
		return "", fmt.Errorf("keygen: reading randomness: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k[:]), nil
}

func cmdKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", stderr)
	out := fs.String("out", "", "write the key to this new file (mode 0600; an existing file is never overwritten) instead of stdout")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ssec-proxy keygen [--out FILE]\n\nMakes an AES-256 key for a `keys:` entry (file or env): the base64 of 32 random bytes,\nprinted on stdout, or written to a new file with --out. Back the key up before writing\nobjects with it (docs/KEYS.md).")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	k, err := newKey(rand.Reader)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = fmt.Fprintln(stdout, k)
		return err
	}
	if err := writeKeyFile(*out, k); err != nil {
		return err
	}
	raw, _ := base64.StdEncoding.DecodeString(k)
	sum := md5.Sum(raw)
	clear(raw)
	// The MD5 is what the upstream stores and `check` prints: not secret.
	_, err = fmt.Fprintf(stdout, "wrote a new key to %s (key MD5 %s); back it up before any object is written with it\n",
		*out, base64.StdEncoding.EncodeToString(sum[:]))
	return err
}

// writeKeyFile creates path (O_EXCL: never an existing file, nor through a
// symlink) with mode 0600, writes key and a newline, and syncs the file and
// its directory, so that a key reported written survives a crash. A file
// left half-written is removed.
func writeKeyFile(path, key string) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("keygen: %s already exists: not overwriting a key file (pick a new name; an id stays bound to its bytes)", path)
	}
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	// The mode of a new file is 0600 less the umask: make it exactly 0600.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := io.WriteString(f, key+"\n"); err != nil {
		return fmt.Errorf("keygen: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("keygen: syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		_ = d.Sync() // best effort: some filesystems refuse a directory sync
		d.Close()
	}
	return nil
}
