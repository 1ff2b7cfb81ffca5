package main

// The harness of the integration tests in this package: the ssec-proxy
// binary, built once the way the Dockerfile builds it, run as a real
// process against a real MinIO (internal/miniotest) and driven with
// minio-go. `make test` sets SSEC_INTEGRATION=require, which makes a
// missing MinIO a failure; a plain `go test` skips these tests loudly;
// `go test -short` skips them quietly.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/ssec-proxy/ssec-proxy/internal/miniotest"
	"github.com/ssec-proxy/ssec-proxy/internal/testenv"
)

var (
	testRoot string // removed after the tests

	binOnce sync.Once
	binPath string
	binErr  error

	minioOnce sync.Once
	minioSrv  *miniotest.Server
	minioErr  error
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ssec-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testRoot = dir
	code := m.Run()
	if minioSrv != nil {
		minioSrv.Stop()
		if code != 0 {
			fmt.Fprintln(os.Stderr, "MinIO log:", filepath.Join(dir, "minio", "minio.log"))
		}
	}
	if code == 0 {
		os.RemoveAll(dir)
	}
	return code
}

// dockerBuildFlags are the Dockerfile's: a static binary without paths of
// the build machine (TestDockerfile checks that the Dockerfile still says so).
var dockerBuildFlags = []string{"-trimpath", "-ldflags=-s -w"}

// proxyBinary builds ssec-proxy once, as the Dockerfile does.
func proxyBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not building the binary")
	}
	binOnce.Do(func() {
		binPath = filepath.Join(testRoot, "ssec-proxy")
		args := append([]string{"build"}, dockerBuildFlags...)
		args = append(args, "-o", binPath, ".")
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// allKeys are every key a test world wrote, for the secret scan of every
// process log.
var allKeys = struct {
	sync.Mutex
	m map[string][]byte
}{m: map[string][]byte{}}

func testSecrets() testenv.Secrets {
	allKeys.Lock()
	defer allKeys.Unlock()
	keys := make(map[string][]byte, len(allKeys.m))
	for id, k := range allKeys.m {
		keys[id] = k
	}
	s := testenv.Secrets{Keys: keys, Secrets: map[string]string{"client secret key": clientSK}}
	if minioSrv != nil {
		s.Secrets["upstream secret key"] = minioSrv.SecretKey
	}
	return s
}

// integration is testenv.Integration's answer, asked once.
var integration struct {
	sync.Once
	ok, fail bool
}

// needMinio starts the shared MinIO once, or skips (fails under
// SSEC_INTEGRATION=require) when there is no MinIO binary.
func needMinio(t *testing.T) *miniotest.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: integration test")
	}
	integration.Do(func() {
		integration.ok, integration.fail = testenv.Integration("cmd/ssec-proxy", "THE INTEGRATION TESTS")
	})
	switch {
	case integration.fail:
		t.Fatal("SSEC_INTEGRATION=require: no MinIO")
	case !integration.ok:
		t.Skip("SKIPPED: no MinIO")
	}
	minioOnce.Do(func() {
		minioSrv, minioErr = miniotest.Start(context.Background(), filepath.Join(testRoot, "minio"))
	})
	if minioErr != nil {
		t.Fatal(minioErr)
	}
	return minioSrv
}

const (
	clientAK = "cmd-test-client"
	clientSK = "cmd-test-client-secret-0123456789"
)

// world is one test's proxy setup: keys, a config file, a bucket.
type world struct {
	t      *testing.T
	mc     *miniotest.Server
	dir    string
	keys   map[string][]byte
	bucket string
	cfg    string // path of the config file
}

// configTmpl is the config the tests start from; %[n] are filled by
// newWorld, TLS and EXTRA by the test.
const configTmpl = `listen: 127.0.0.1:0
@TLS@
state_dir: %[1]s/state
admin:
  listen: 127.0.0.1:0
shutdown_grace: @GRACE@
upstream:
  endpoint: %[2]s
  region: us-east-1
  access_key: %[3]s
  secret_key: %[4]s
  ca_file: %[5]s
clients:
  - access_key: ` + clientAK + `
    secret_key: ` + clientSK + `
keys:
  - id: k1
    file: %[1]s/k1.key
  - id: k2
    file: %[1]s/k2.key
rules:
  - bucket: %[6]s
    key: @RULEKEY@
default: deny
`

func newWorld(t *testing.T) *world {
	t.Helper()
	mc := needMinio(t)
	w := &world{t: t, mc: mc, dir: t.TempDir(), keys: map[string][]byte{}}
	for _, id := range []string{"k1", "k2"} {
		w.setKey(id, randomBytes(32))
	}
	w.bucket = "t-" + strings.ToLower(hexString(6))
	if err := w.direct().MakeBucket(context.Background(), w.bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	w.cfg = filepath.Join(w.dir, "ssec.yaml")
	w.writeConfig("tls:\n  mode: auto", "k1", "30s", "")
	return w
}

// setKey writes the key file of id (base64, as keygen prints).
func (w *world) setKey(id string, k []byte) {
	w.t.Helper()
	w.keys[id] = k
	allKeys.Lock()
	allKeys.m[fmt.Sprintf("%s (%s)", id, w.t.Name())] = k
	allKeys.Unlock()
	if err := testenv.WriteKey(filepath.Join(w.dir, id+".key"), k); err != nil {
		w.t.Fatal(err)
	}
}

// writeConfig writes the config with the given tls section, rule key,
// shutdown grace and extra YAML appended.
func (w *world) writeConfig(tlsSection, ruleKey, grace, extra string) {
	w.t.Helper()
	body := fmt.Sprintf(configTmpl, w.dir, w.mc.Endpoint, w.mc.AccessKey, w.mc.SecretKey, w.mc.CAFile, w.bucket)
	body = strings.NewReplacer("@TLS@", tlsSection, "@RULEKEY@", ruleKey, "@GRACE@", grace).Replace(body) + extra
	writeFileAtomic(w.t, w.cfg, []byte(body))
}

func writeFileAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// direct is a minio-go client straight to MinIO.
func (w *world) direct() *minio.Client {
	w.t.Helper()
	c, err := testenv.Direct(w.mc)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// ssec is the SSE-C option of key id (as held by the test).
func (w *world) ssec(id string) encrypt.ServerSide {
	w.t.Helper()
	s, err := encrypt.NewSSEC(w.keys[id])
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// readDirect reads an object straight from MinIO with key id; it fails the
// test when that key does not open it.
func (w *world) readDirect(object, id string) []byte {
	w.t.Helper()
	o, err := w.direct().GetObject(context.Background(), w.bucket, object, minio.GetObjectOptions{ServerSideEncryption: w.ssec(id)})
	if err != nil {
		w.t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		w.t.Fatalf("%s with key %s: %v", object, id, err)
	}
	return b
}

// opens says whether key id opens the object on MinIO.
func (w *world) opens(object, id string) bool {
	_, err := w.direct().StatObject(context.Background(), w.bucket, object, minio.StatObjectOptions{ServerSideEncryption: w.ssec(id)})
	return err == nil
}

// client is a minio-go client of the proxy at rawURL.
func client(t *testing.T, rawURL string, rt http.RoundTripper, secret string) *minio.Client {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(clientAK, secret, ""),
		Secure:       u.Scheme == "https",
		Transport:    rt,
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// trusting is a transport that trusts only the CAs in files (not the
// system's).
func trusting(t *testing.T, files ...string) *http.Transport {
	t.Helper()
	pool := x509.NewCertPool()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !pool.AppendCertsFromPEM(b) {
			t.Fatalf("%s: no certificate", f)
		}
	}
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
}

// proc is a running ssec-proxy process; its JSON log is parsed as it comes.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  []map[string]any
	raw  bytes.Buffer
	more chan struct{} // closed and replaced at each new line
	done chan struct{}
	err  error // of Wait, once done is closed
}

// startProxy runs `ssec-proxy serve --config cfg` and waits until it
// listens.
func startProxy(t *testing.T, cfg string) *proc {
	t.Helper()
	return startProc(t, os.Environ(), "serve", "--config", cfg, "--log-level", "debug")
}

func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, more: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(proxyBinary(t), args...)
	p.cmd.Env = env
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var entry map[string]any
			_ = json.Unmarshal(sc.Bytes(), &entry)
			p.mu.Lock()
			p.raw.Write(sc.Bytes())
			p.raw.WriteByte('\n')
			if entry != nil {
				p.log = append(p.log, entry)
			}
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
		err := p.cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		// Whatever the test was about, the process logged no secret
		// (invariant 2).
		if leaks := testSecrets().In(p.logText()); len(leaks) > 0 {
			t.Errorf("ssec-proxy %v logged secrets: %v", args, leaks)
		}
		if t.Failed() {
			t.Logf("ssec-proxy %v log:\n%s", args, p.logText())
		}
	})
	if args[0] == "serve" {
		p.waitLog("ssec-proxy listening", nil, 30*time.Second)
	}
	return p
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// waitLog waits for a log entry with message msg (and for which match, if
// given, says yes), looking at every entry since the start.
func (p *proc) waitLog(msg string, match func(map[string]any) bool, timeout time.Duration) map[string]any {
	p.t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.log); seen++ {
			e := p.log[seen]
			if e["msg"] == msg && (match == nil || match(e)) {
				p.mu.Unlock()
				return e
			}
		}
		more := p.more
		p.mu.Unlock()
		select {
		case <-more:
		case <-p.done:
			// Look at the last lines once more, then give up.
			p.mu.Lock()
			n := len(p.log)
			p.mu.Unlock()
			if seen == n {
				p.t.Fatalf("ssec-proxy exited (%v) before logging %q", p.exitErr(), msg)
			}
		case <-deadline:
			p.t.Fatalf("no log entry %q within %s", msg, timeout)
		}
	}
}

// count is the number of log entries with msg.
func (p *proc) count(msg string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.log {
		if e["msg"] == msg {
			n++
		}
	}
	return n
}

func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// url is the proxy's URL, as it logged it.
func (p *proc) url() string {
	return p.waitLog("ssec-proxy listening", nil, time.Second)["url"].(string)
}

// admin is the admin listener's URL.
func (p *proc) admin() string {
	return p.waitLog("admin listening", nil, time.Second)["url"].(string)
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit error.
func (p *proc) wait(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(timeout):
		p.t.Fatalf("ssec-proxy still running after %s", timeout)
		return nil
	}
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	if err := p.wait(30 * time.Second); err != nil {
		p.t.Fatalf("ssec-proxy exited with %v after SIGTERM", err)
	}
}

// metrics scrapes /metrics into "name{labels}" → value.
func (p *proc) metrics() map[string]float64 {
	p.t.Helper()
	resp, err := http.Get(p.admin() + "/metrics")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	return parseMetrics(p.t, resp.Body)
}

var metricLine = regexp.MustCompile(`^([^ {]+(?:\{.*\})?) (\S+)$`)

func parseMetrics(t *testing.T, r io.Reader) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		g := metricLine.FindStringSubmatch(line)
		if g == nil {
			t.Fatalf("not a metric line: %q", line)
		}
		v, err := strconv.ParseFloat(g[2], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		m[g[1]] = v
	}
	return m
}

// servedCert is the certificate the server at addr presents to a new
// connection (not verified).
func servedCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // looking, not trusting
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func hexString(n int) string { return fmt.Sprintf("%x", randomBytes(n)) }

// refused says whether a TCP connection to addr is refused.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}
