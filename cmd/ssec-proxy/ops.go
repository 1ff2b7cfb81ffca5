package main

import (
	"context"
	"errors"
	"io"
)

// Placeholders until issue 4 (operations) lands.

func cmdCA(args []string, stdout, stderr io.Writer) error {
	return errors.New("ca: not implemented yet")
}

func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("healthcheck: not implemented yet")
}
