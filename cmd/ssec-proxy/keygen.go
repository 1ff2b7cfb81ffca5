package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
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
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ssec-proxy keygen > backups.key\n\nPrints the base64 of 32 random bytes: an AES-256 key for a `keys:` entry (file or env).")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	k, err := newKey(rand.Reader)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, k)
	return err
}
