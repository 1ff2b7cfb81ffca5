package upstreamtls

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/certs"
)

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	f, err := certs.Ensure(dir, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Config(config.Upstream{CAFile: f.CA})
	if err != nil || c.InsecureSkipVerify || c.MinVersion != 0x0303 {
		t.Fatalf("config %+v, %v", c, err)
	}
	bad := filepath.Join(dir, "bad.pem")
	_ = os.WriteFile(bad, []byte("not pem"), 0o600)
	if _, err := Config(config.Upstream{CAFile: bad}); err == nil || !strings.Contains(err.Error(), "upstream.ca_file") {
		t.Errorf("a CA file without PEM: %v", err)
	}
	if _, err := Config(config.Upstream{CAFile: filepath.Join(dir, "missing")}); err == nil {
		t.Error("a missing CA file was accepted")
	}
}
