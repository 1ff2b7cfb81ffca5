package lifecycle

// The integration tests run rekey and audit against a real MinIO over TLS
// (internal/miniotest) and check every object straight on MinIO. `make
// test` runs them with SSEC_INTEGRATION=require, which makes a missing
// MinIO a failure; a plain `go test` skips them with a loud message.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/miniotest"
	"github.com/ssec-proxy/ssec-proxy/internal/testenv"
	"github.com/ssec-proxy/ssec-proxy/keystore"
)

// env is the running MinIO and the test keys; nil when integration tests
// are skipped.
var env *world

type world struct {
	minio *miniotest.Server
	dir   string
	keys  map[string][]byte // key id → raw key; "kx" is in no config
	c     *minio.Client     // straight to MinIO, root user
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) (code int) {
	if ok, fail := testenv.Integration("lifecycle", "THE INTEGRATION TESTS (rekey, audit against MinIO)"); !ok {
		if fail {
			return 1
		}
		return m.Run() // the unit tests still run
	}
	dir, err := os.MkdirTemp("", "ssec-lifecycle-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if code == 0 {
			os.RemoveAll(dir)
		} else {
			fmt.Fprintln(os.Stderr, "lifecycle: MinIO's data and log are kept in", dir)
		}
	}()
	mc, err := miniotest.Start(context.Background(), filepath.Join(dir, "minio"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "lifecycle: starting MinIO:", err)
		return 1
	}
	defer mc.Stop()
	w := &world{minio: mc, dir: dir, keys: map[string][]byte{}}
	for _, id := range []string{"ka", "kb", "kc", "kx"} {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		w.keys[id] = k
		if err := testenv.WriteKey(filepath.Join(dir, id+".key"), k); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	cfg, err := w.parseConfig("", 0, "rules: [{bucket: '*', key: ka}]")
	if err != nil {
		fmt.Fprintln(os.Stderr, "lifecycle:", err)
		return 1
	}
	if w.c, err = NewClient(cfg.Upstream); err != nil {
		fmt.Fprintln(os.Stderr, "lifecycle:", err)
		return 1
	}
	env = w
	return m.Run()
}

func requireEnv(t *testing.T) {
	t.Helper()
	if env == nil {
		t.Skip("integration environment not running (no MinIO)")
	}
}

// parseConfig makes a config for the test MinIO with keys ka, kb and kc
// (never kx) and the rules given as YAML.
func (w *world) parseConfig(copyMode string, partSize int64, rules string) (*config.Config, error) {
	return w.parseConfigKeys(copyMode, partSize, []string{"ka", "kb", "kc"}, rules)
}

func (w *world) parseConfigKeys(copyMode string, partSize int64, ids []string, rules string) (*config.Config, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\n", filepath.Join(w.dir, "state"))
	fmt.Fprintf(&b, "upstream:\n  endpoint: %s\n  region: us-east-1\n  access_key: %s\n  secret_key: ${UPSTREAM_SECRET}\n  ca_file: %s\n",
		w.minio.Endpoint, w.minio.AccessKey, w.minio.CAFile)
	if copyMode != "" {
		fmt.Fprintf(&b, "  copy: %s\n", copyMode)
	}
	if partSize != 0 {
		fmt.Fprintf(&b, "  part_size: %d\n", partSize)
	}
	b.WriteString("keys:\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "  - id: %s\n    file: %s\n", id, filepath.Join(w.dir, id+".key"))
	}
	b.WriteString(rules + "\n")
	lookup := func(name string) (string, bool) {
		if name == "UPSTREAM_SECRET" {
			return w.minio.SecretKey, true
		}
		return "", false
	}
	return config.Parse([]byte(b.String()), "test.yaml", lookup)
}

// options builds the run's options from a config made by parseConfig.
func options(t *testing.T, copyMode string, partSize int64, rules string) Options {
	t.Helper()
	return optionsKeys(t, copyMode, partSize, []string{"ka", "kb", "kc"}, rules)
}

func optionsKeys(t *testing.T, copyMode string, partSize int64, ids []string, rules string) Options {
	t.Helper()
	cfg, err := env.parseConfigKeys(copyMode, partSize, ids, rules)
	if err != nil {
		t.Fatal(err)
	}
	ring, _, err := keystore.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(cfg.Upstream)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Client: c, Keyring: ring, Copy: cfg.Upstream.Copy, PartSize: cfg.Upstream.PartSize, Jobs: 4}
}

var bucketN atomic.Int64

// newBucket makes a bucket of its own for a test.
func newBucket(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("lc-%d-%s", bucketN.Add(1), strings.ToLower(string(hexRand(3))))
	if err := env.c.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	return name
}

func ssec(t *testing.T, id string) encrypt.ServerSide {
	t.Helper()
	s, err := encrypt.NewSSEC(env.keys[id])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func hexRand(n int) []byte {
	const digits = "0123456789abcdef"
	b := randomBytes(n)
	out := make([]byte, 2*n)
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return out
}

// object is what a test wrote, to check it after a run.
type object struct {
	name  string
	data  []byte
	keyID string // "" for plaintext
	meta  map[string]string
	tags  map[string]string
	ctype string
}

// put writes o straight to MinIO, with its key (none when keyID is ""),
// user metadata, content type and headers, and tags.
func put(t *testing.T, bucket string, o object) {
	t.Helper()
	opts := minio.PutObjectOptions{
		UserMetadata:       o.meta,
		UserTags:           o.tags,
		ContentType:        o.ctype,
		ContentEncoding:    "identity",
		ContentDisposition: `attachment; filename="x.bin"`,
		CacheControl:       "max-age=60",
		PartSize:           5 << 20,
	}
	if o.keyID != "" {
		opts.ServerSideEncryption = ssec(t, o.keyID)
	}
	if _, err := env.c.PutObject(context.Background(), bucket, o.name, bytes.NewReader(o.data), int64(len(o.data)), opts); err != nil {
		t.Fatalf("put %s/%s: %v", bucket, o.name, err)
	}
}

// assertUnder checks o straight on MinIO: readable with keyID and no other
// test key (nor without a key), same bytes, metadata, content type, the
// other headers and tags as written.
func assertUnder(t *testing.T, bucket string, o object, keyID string) {
	t.Helper()
	ctx := context.Background()
	if _, err := env.c.StatObject(ctx, bucket, o.name, minio.StatObjectOptions{}); err == nil {
		t.Errorf("%s: MinIO answers a HEAD without a key: not SSE-C encrypted", o.name)
	}
	for id := range env.keys {
		if id == keyID {
			continue
		}
		// HEAD, not GET: MinIO answers a GET of an empty SSE-C object
		// with any key (there is nothing to decrypt), but a HEAD checks
		// the key.
		if _, err := env.c.StatObject(ctx, bucket, o.name, minio.StatObjectOptions{ServerSideEncryption: ssec(t, id)}); err == nil {
			t.Errorf("%s: opens with key %s, want only %s", o.name, id, keyID)
		}
		if len(o.data) == 0 {
			continue
		}
		if _, err := readAll(env.c.GetObject(ctx, bucket, o.name, minio.GetObjectOptions{ServerSideEncryption: ssec(t, id)})); err == nil {
			t.Errorf("%s: readable with key %s, want only %s", o.name, id, keyID)
		}
	}
	assertContent(t, bucket, o, ssec(t, keyID))
}

// assertContent checks o's bytes, metadata and tags, read with sse (nil:
// no key).
func assertContent(t *testing.T, bucket string, o object, sse encrypt.ServerSide) {
	t.Helper()
	ctx := context.Background()
	obj, err := env.c.GetObject(ctx, bucket, o.name, minio.GetObjectOptions{ServerSideEncryption: sse})
	if err != nil {
		t.Fatalf("%s: %v", o.name, err)
	}
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("%s: not readable: %v", o.name, err)
	}
	info, err := obj.Stat()
	obj.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, o.data) {
		t.Errorf("%s: %d bytes that differ from the %d written", o.name, len(got), len(o.data))
	}
	for k, v := range o.meta {
		if g := info.UserMetadata[k]; g != v {
			t.Errorf("%s: metadata %s = %q, want %q (all: %v)", o.name, k, g, v, info.UserMetadata)
		}
	}
	if len(info.UserMetadata) != len(o.meta) {
		t.Errorf("%s: metadata %v, want %v", o.name, info.UserMetadata, o.meta)
	}
	want := o.ctype
	if want == "" {
		want = "application/octet-stream"
	}
	if info.ContentType != want {
		t.Errorf("%s: content type %q, want %q", o.name, info.ContentType, want)
	}
	for h, v := range map[string]string{"Content-Disposition": `attachment; filename="x.bin"`, "Cache-Control": "max-age=60", "Content-Encoding": "identity"} {
		if g := info.Metadata.Get(h); g != v {
			t.Errorf("%s: %s %q, want %q", o.name, h, g, v)
		}
	}
	tags, err := env.c.GetObjectTagging(ctx, bucket, o.name, minio.GetObjectTaggingOptions{})
	if err != nil {
		t.Fatalf("%s: tags: %v", o.name, err)
	}
	gotTags := tags.ToMap()
	if len(gotTags) != len(o.tags) {
		t.Errorf("%s: tags %v, want %v", o.name, gotTags, o.tags)
	}
	for k, v := range o.tags {
		if gotTags[k] != v {
			t.Errorf("%s: tag %s = %q, want %q", o.name, k, gotTags[k], v)
		}
	}
}

func readAll(o *minio.Object, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}
