package e2e

// Load (issue 7, "Load"): 200 concurrent minio-go clients doing mixed
// PUT/GET/HEAD/LIST/DELETE and multipart uploads through a proxy of its
// own, for SSEC_SOAK_DURATION (10 s by default; docs/RELIABILITY.md runs
// it for 2 minutes). Afterwards every object is read back through the
// proxy and straight from MinIO with its rule's key, zero unexpected
// errors are allowed, and goroutines, open files and heap must come back
// near where they were.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ssec-proxy/ssec-proxy/internal/certs"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/proxy"
)

const soakClients = 200

func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv("SSEC_SOAK_DURATION")
	if v == "" {
		return 10 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("SSEC_SOAK_DURATION: %v", err)
	}
	return d
}

// soakRule is where a client writes, and how MinIO must store it there.
type soakRule struct {
	bucket, prefix, keyID string // keyID "": plaintext
}

var soakRules = []soakRule{
	{"enc", "soak/", "k1"},
	{"mixed", "secret/soak/", "k2"},
	{"other", "star/soak/", "k2"},
	{"enc", "public/soak/", ""},
}

// soakObject is what was last written to a key: its bytes are made again
// from seed and size, so that the test holds no object in memory.
type soakObject struct {
	rule soakRule
	key  string
	seed uint64
	size int
}

func soakData(seed uint64, size int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(size)))
	b := make([]byte, size)
	for i := 0; i < size; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < size; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// procStats is what must return to its baseline after the load.
type procStats struct {
	goroutines int
	fds        int
	heap       uint64
}

func (p procStats) String() string {
	return fmt.Sprintf("%d goroutines, %d open files, %.1f MiB heap", p.goroutines, p.fds, float64(p.heap)/(1<<20))
}

func measure() procStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	ents, _ := os.ReadDir("/proc/self/fd")
	return procStats{runtime.NumGoroutine(), len(ents), m.HeapAlloc}
}

// soakCounters count operations by kind.
type soakCounters struct {
	put, get, head, list, del, multipart, bytesUp, bytesDown atomic.Int64
}

func TestSoak(t *testing.T) {
	buckets(t)
	if testing.Short() {
		t.Skip("soak: not in -short")
	}
	dur := soakDuration(t)
	run := string(hexRand(4))

	// A proxy of its own, over TLS and plain HTTP, so that its upstream
	// connections can be dropped (Reload) before the counts are compared.
	cfg := *env.cfg
	ring, _, err := keystore.Build(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(env.logs), zap.InfoLevel))
	var h *proxy.Server
	h, err = proxy.New(proxy.Options{Config: &cfg, Keyring: ring, Logger: log, WrapTransport: checked(&h)})
	if err != nil {
		t.Fatal(err)
	}
	files, err := certs.Ensure(filepath.Join(env.dir, "proxy-tls"), []string{"localhost", "127.0.0.1", "*.localhost"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, secure := range []bool{true, false} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		scheme := "http"
		if secure {
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
			scheme = "https"
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: newDiscardLog()}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		urls = append(urls, fmt.Sprintf("%s://localhost:%d", scheme, ln.Addr().(*net.TCPAddr).Port))
	}

	// Clients, each with its own transport (its own connections).
	var transports []*http.Transport
	newClient := func(raw string) *minio.Client {
		u, _ := url.Parse(raw)
		tr := transport(t, env.caFile)
		transports = append(transports, tr)
		c, err := minio.New(u.Host, &minio.Options{
			Creds:        credentials.NewStaticV4(env.clientAK, env.clientSK, ""),
			Secure:       u.Scheme == "https",
			Transport:    tr,
			Region:       "us-east-1",
			BucketLookup: minio.BucketLookupPath,
			MaxRetries:   1, // no retries: every error counts
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	clients := make([]*minio.Client, soakClients)
	for i := range clients {
		clients[i] = newClient(urls[i%2])
	}
	before := measure()

	var (
		n       soakCounters
		errMu   sync.Mutex
		errs    []string
		errN    atomic.Int64
		objMu   sync.Mutex
		objects = map[string]*soakObject{} // bucket/key → last written
	)
	fail := func(format string, args ...any) {
		errN.Add(1)
		errMu.Lock()
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
		errMu.Unlock()
	}
	ctx := context.Background()
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for g := range soakClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[g]
			rng := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			rule := soakRules[g%len(soakRules)]
			prefix := fmt.Sprintf("%s%s/%03d/", rule.prefix, run, g)
			mine := map[string]*soakObject{} // this client's live objects
			var names []string
			put := func(key string, size int, opts minio.PutObjectOptions) {
				o := &soakObject{rule: rule, key: key, seed: rng.Uint64(), size: size}
				data := soakData(o.seed, o.size)
				var err error
				if opts.PartSize > 0 {
					// A reader without Seek: minio-go streams the parts.
					_, err = c.PutObject(ctx, rule.bucket, key, struct{ *bytes.Reader }{bytes.NewReader(data)}, int64(size), opts)
					n.multipart.Add(1)
				} else {
					_, err = c.PutObject(ctx, rule.bucket, key, bytes.NewReader(data), int64(size), opts)
					n.put.Add(1)
				}
				n.bytesUp.Add(int64(size))
				if err != nil {
					fail("client %d: put %s/%s: %v", g, rule.bucket, key, err)
					delete(mine, key) // unknown state: not verified
					return
				}
				if _, ok := mine[key]; !ok {
					names = append(names, key)
				}
				mine[key] = o
			}
			if g%20 == 0 { // ten clients upload one multipart object each
				put(prefix+"multipart", 5<<20+rng.IntN(1<<20), minio.PutObjectOptions{PartSize: 5 << 20})
			}
			for time.Now().Before(deadline) {
				live := func() (string, *soakObject) {
					for range 3 {
						if len(names) == 0 {
							return "", nil
						}
						k := names[rng.IntN(len(names))]
						if o, ok := mine[k]; ok {
							return k, o
						}
					}
					return "", nil
				}
				switch p := rng.IntN(100); {
				case p < 40 || len(mine) == 0:
					put(fmt.Sprintf("%sobj-%d", prefix, rng.IntN(1000)), 1+rng.IntN(256<<10), minio.PutObjectOptions{})
				case p < 65:
					k, o := live()
					if o == nil {
						continue
					}
					got, err := readAll(c.GetObject(ctx, rule.bucket, k, minio.GetObjectOptions{}))
					n.get.Add(1)
					n.bytesDown.Add(int64(len(got)))
					if err != nil {
						fail("client %d: get %s: %v", g, k, err)
					} else if !bytes.Equal(got, soakData(o.seed, o.size)) {
						fail("client %d: get %s: %d bytes that differ from the %d written", g, k, len(got), o.size)
					}
				case p < 75:
					k, o := live()
					if o == nil {
						continue
					}
					st, err := c.StatObject(ctx, rule.bucket, k, minio.StatObjectOptions{})
					n.head.Add(1)
					if err != nil || st.Size != int64(o.size) {
						fail("client %d: head %s: size %d err %v, want %d", g, k, st.Size, err, o.size)
					}
				case p < 90:
					seen := map[string]bool{}
					for obj := range c.ListObjects(ctx, rule.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
						if obj.Err != nil {
							fail("client %d: list: %v", g, obj.Err)
							break
						}
						seen[obj.Key] = true
					}
					n.list.Add(1)
					for k := range mine {
						if !seen[k] {
							fail("client %d: list of %s misses %s", g, prefix, k)
						}
					}
					for k := range seen {
						if _, ok := mine[k]; !ok {
							fail("client %d: list of %s shows %s, deleted or never written", g, prefix, k)
						}
					}
				default:
					k, o := live()
					if o == nil {
						continue
					}
					err := c.RemoveObject(ctx, rule.bucket, k, minio.RemoveObjectOptions{})
					n.del.Add(1)
					if err != nil {
						fail("client %d: delete %s: %v", g, k, err)
					}
					delete(mine, k)
				}
			}
			objMu.Lock()
			for k, o := range mine {
				objects[rule.bucket+"/"+k] = o
			}
			objMu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("soak: %d clients for %v: %d PUT, %d multipart, %d GET, %d HEAD, %d LIST, %d DELETE; %.1f MiB up, %.1f MiB down; %d unexpected errors",
		soakClients, dur, n.put.Load(), n.multipart.Load(), n.get.Load(), n.head.Load(), n.list.Load(), n.del.Load(),
		float64(n.bytesUp.Load())/(1<<20), float64(n.bytesDown.Load())/(1<<20), errN.Load())
	for _, e := range errs {
		t.Errorf("unexpected error: %s", e)
	}

	// Back to the baseline once the clients' idle connections close and the
	// proxy drops its idle upstream connections (Reload with the same
	// config swaps the transport).
	for _, tr := range transports {
		tr.CloseIdleConnections()
	}
	if err := h.Reload(&cfg, ring); err != nil {
		t.Fatal(err)
	}
	var after procStats
	settled := waitFor(15*time.Second, func() bool {
		after = measure()
		return after.goroutines <= before.goroutines+20 && after.fds <= before.fds+10
	})
	t.Logf("soak: before %v; after %v", before, after)
	if !settled {
		t.Errorf("not back to the baseline: before %v, after %v", before, after)
		buf := make([]byte, 1<<20)
		t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
	}
	if after.heap > before.heap+64<<20 {
		t.Errorf("heap grew from %.1f to %.1f MiB", float64(before.heap)/(1<<20), float64(after.heap)/(1<<20))
	}

	// Every object: through the proxy, and straight from MinIO with its
	// rule's key (or none); a sample also fully with assertEncrypted.
	verify(t, objects, clients[1])
	// The listing through the proxy shows exactly the live objects.
	for _, r := range soakRules {
		want := map[string]bool{}
		for _, o := range objects {
			if o.rule == r {
				want[o.key] = true
			}
		}
		got := 0
		for obj := range clients[0].ListObjects(ctx, r.bucket, minio.ListObjectsOptions{Prefix: r.prefix + run + "/", Recursive: true}) {
			if obj.Err != nil {
				t.Fatalf("list %s: %v", r.bucket, obj.Err)
			}
			got++
			if !want[obj.Key] {
				t.Errorf("list %s/%s shows %s, which is not a live object", r.bucket, r.prefix, obj.Key)
			}
		}
		if got != len(want) {
			t.Errorf("list %s/%s%s/: %d objects, want %d", r.bucket, r.prefix, run, got, len(want))
		}
	}
}

// verify reads every object back through the proxy (c) and from MinIO.
func verify(t *testing.T, objects map[string]*soakObject, c *minio.Client) {
	t.Helper()
	ctx := context.Background()
	keys := make([]string, 0, len(objects))
	for k := range objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	dc := sharedDirect(t)
	var bad atomic.Int64
	work := make(chan *soakObject)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				want := sha256.Sum256(soakData(o.seed, o.size))
				got, err := readAll(c.GetObject(ctx, o.rule.bucket, o.key, minio.GetObjectOptions{}))
				if err != nil || sha256.Sum256(got) != want {
					bad.Add(1)
					t.Errorf("%s/%s through the proxy: %v (%d bytes, want %d)", o.rule.bucket, o.key, err, len(got), o.size)
					continue
				}
				opts := minio.GetObjectOptions{}
				if o.rule.keyID != "" {
					opts.ServerSideEncryption = ssec(t, o.rule.keyID)
				}
				got, err = readAll(dc.GetObject(ctx, o.rule.bucket, o.key, opts))
				if err != nil || sha256.Sum256(got) != want {
					bad.Add(1)
					t.Errorf("%s/%s on MinIO with key %q: %v", o.rule.bucket, o.key, o.rule.keyID, err)
				}
			}
		}()
	}
	for _, k := range keys {
		work <- objects[k]
	}
	close(work)
	wg.Wait()
	// A sample, checked fully: no read without the key or with another.
	sample := 0
	for i, k := range keys {
		if i%max(1, len(keys)/40) != 0 {
			continue
		}
		o := objects[k]
		data := soakData(o.seed, o.size)
		if o.rule.keyID == "" {
			assertPlain(t, o.rule.bucket, o.key, data)
		} else {
			assertEncrypted(t, o.rule.bucket, o.key, o.rule.keyID, data)
		}
		sample++
	}
	perRule := map[string]int{}
	for _, o := range objects {
		perRule[o.rule.bucket+"/"+strings.TrimSuffix(o.rule.prefix, "soak/")+" "+o.rule.keyID]++
	}
	t.Logf("soak: verified %d objects (%d bad) through the proxy and on MinIO with their rule's key %v; %d fully with assertEncrypted/assertPlain",
		len(keys), bad.Load(), perRule, sample)
}

// TestSecurityNoSecretsInLogs runs last: everything the in-process proxies
// logged in this run holds no key (any encoding), no secret key and none of
// the signatures the tests made (TestMain also scans for markers; the
// binary's log is scanned when its test ends).
func TestSecurityNoSecretsInLogs(t *testing.T) {
	requireEnv(t)
	logs := env.logs.String()
	if logs == "" {
		t.Fatal("the proxy logged nothing")
	}
	noSecretsIn(t, "the proxy's log", logs)
	sigs.Lock()
	n := len(sigs.all)
	sigs.Unlock()
	t.Logf("scanned %d KiB of log for %d keys, 2 secret keys and %d signatures", len(logs)>>10, len(env.keys), n)
}
