package testenv

import (
	"encoding/base64"
	"fmt"
	"slices"
	"testing"
)

func TestSecretsIn(t *testing.T) {
	k := []byte("0123456789abcdef0123456789abcdef")
	s := Secrets{Keys: map[string][]byte{"k1": k}, Secrets: map[string]string{"client secret key": "sk-12345"}}
	for text, want := range map[string][]string{
		`{"msg":"request","key_id":"k1"}`:                    nil,
		"key " + base64.StdEncoding.EncodeToString(k):        {"key k1"},
		"key " + fmt.Sprintf("%x", k):                        {"key k1"},
		"oops sk-12345":                                      {"client secret key"},
		"Authorization: AWS4-HMAC-SHA256 ..., Signature=abc": {"Signature="},
		"X-Amz-Server-Side-Encryption-Customer-Key: Zm9v":    {"x-amz-server-side-encryption-customer-key:"},
	} {
		if got := s.In(text); !slices.Equal(got, want) {
			t.Errorf("In(%q) = %q, want %q", text, got, want)
		}
	}
}
