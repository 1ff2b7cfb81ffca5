package main

import (
	"context"
	"errors"
	"io"
)

// Placeholders until issue 3 (key lifecycle) lands.

func cmdRekey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("rekey: not implemented yet")
}

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("audit: not implemented yet")
}
