package sigv2

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ssec-proxy/ssec-proxy/proxy/s3err"
)

const (
	docAccessKey = "AKIAIOSFODNN7EXAMPLE"
	docSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

func docCreds(ak string) (string, bool) {
	if ak == docAccessKey {
		return docSecret, true
	}
	return "", false
}

func verifierAt(t time.Time) *Verifier {
	return &Verifier{Credentials: docCreds, Now: func() time.Time { return t }}
}

// readHTTP parses a request head (LF or CRLF line ends) plus body as Go's
// server would.
func readHTTP(t testing.TB, raw []byte) *http.Request {
	t.Helper()
	head, body, ok := bytes.Cut(raw, []byte("\n\n"))
	if ok {
		head = bytes.ReplaceAll(head, []byte("\n"), []byte("\r\n"))
		raw = append(append(head, "\r\n\r\n"...), body...)
	}
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("read request: %v", err)
	}
	return r
}

func readHTTPFile(t testing.TB, name string) *http.Request {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return readHTTP(t, raw)
}

// toServer writes a client request as a client would and reads it back as
// Go's server does.
func toServer(t testing.TB, req *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatalf("write request: %v", err)
	}
	r, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatalf("read request: %v", err)
	}
	return r
}

// codeOf returns the S3 code name of err, "" for nil, "non-S3" otherwise.
func codeOf(err error) string {
	if err == nil {
		return ""
	}
	var e *s3err.Error
	if !errors.As(err, &e) {
		return "non-S3: " + err.Error()
	}
	return e.Code.Name
}

// noSecrets fails if err's message holds the secret or one of sigs.
func noSecrets(t testing.TB, err error, sigs ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append(sigs, docSecret) {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q holds a secret", err)
		}
	}
}
