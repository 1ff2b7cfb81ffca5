package e2e

// Several instances (issue 14, item 5): three proxies behind one nginx
// (round robin, as a team's gateway runs them), concurrent clients
// writing, overwriting, copying, deleting and reading through it. Every
// object is then checked on MinIO with its rule's key, every ETag is the
// same through every instance once the index writes have settled, and the
// index holds no stale entry after the run and an index gc.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ssec-proxy/ssec-proxy/config"
	"github.com/ssec-proxy/ssec-proxy/internal/etagindex"
	"github.com/ssec-proxy/ssec-proxy/keystore"
	"github.com/ssec-proxy/ssec-proxy/lifecycle"
	"github.com/ssec-proxy/ssec-proxy/proxy"
)

const lbConf = `daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  client_max_body_size 0;
  upstream proxies {
%[2]s  }
  server {
    listen 127.0.0.1:%[3]d;
    location / {
      proxy_pass http://proxies;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      proxy_buffering off;
    }
  }
}
`

// startLB runs nginx round robin over the bases (http://host:port) and
// returns its own base.
func startLB(t *testing.T, bases []string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("SSEC_INTEGRATION") == "require" {
			t.Fatal("nginx is not installed (scripts/deps.sh --clients installs it)")
		}
		t.Skip("*** no nginx: skipping the several-instances test")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var servers strings.Builder
	for _, b := range bases {
		fmt.Fprintf(&servers, "    server %s;\n", strings.TrimPrefix(b, "http://"))
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(lbConf, dir, servers.String(), port)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://")); err == nil {
			c.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen: %s", stderr.String())
		}
	}
}

func TestSeveralInstancesBehindALoadBalancer(t *testing.T) {
	buckets(t)
	ctx := context.Background()
	bucket := newBucket(t, "lbx-", false)
	on := true
	withRule := func(c *config.Config) {
		c.Rules = append(slices.Clone(c.Rules), config.Rule{Bucket: bucket, Key: "k1", Previous: []string{"k0"}, Encrypt: &on})
	}
	var bases []string
	for range 3 {
		b, _ := startProxy(t, withRule)
		bases = append(bases, b)
	}
	lb := minioClient(t, startLB(t, bases))

	// Four clients, each on keys of its own, in rounds of random operations.
	var mu sync.Mutex
	want := map[string][]byte{} // the objects that must be there at the end
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			mine := map[string][]byte{}
			keys := []string{}
			for i := range 25 {
				k := fmt.Sprintf("w%d/%d", w, r.IntN(8))
				switch op := r.IntN(10); {
				case op < 4 || len(keys) == 0: // write or overwrite
					data := randomBytes(100 + r.IntN(5000))
					if _, err := lb.PutObject(ctx, bucket, k, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
						errs <- fmt.Errorf("put %s: %w", k, err)
						return
					}
					if _, ok := mine[k]; !ok {
						keys = append(keys, k)
					}
					mine[k] = data
				case op < 6: // copy one of mine to another of mine
					src := keys[r.IntN(len(keys))]
					if _, ok := mine[src]; !ok {
						continue
					}
					// Past the documented window: the source's entry, written
					// behind another instance's answer, is there (a copy
					// within it takes the source's upstream ETag).
					wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					proxy.DrainCleanups(wctx)
					cancel()
					dst := fmt.Sprintf("w%d/copy-%d", w, i)
					if _, err := lb.CopyObject(ctx, minio.CopyDestOptions{Bucket: bucket, Object: dst}, minio.CopySrcOptions{Bucket: bucket, Object: src}); err != nil {
						errs <- fmt.Errorf("copy %s: %w", src, err)
						return
					}
					mine[dst] = mine[src]
					keys = append(keys, dst)
				case op < 8: // delete
					victim := keys[r.IntN(len(keys))]
					if err := lb.RemoveObject(ctx, bucket, victim, minio.RemoveObjectOptions{}); err != nil {
						errs <- fmt.Errorf("delete %s: %w", victim, err)
						return
					}
					delete(mine, victim)
				default: // read
					k := keys[r.IntN(len(keys))]
					got, err := readAll(lb.GetObject(ctx, bucket, k, minio.GetObjectOptions{}))
					if d, ok := mine[k]; ok && (err != nil || !bytes.Equal(got, d)) {
						errs <- fmt.Errorf("read %s: %d bytes, %v", k, len(got), err)
						return
					}
				}
			}
			mu.Lock()
			for k, v := range mine {
				want[k] = v
			}
			mu.Unlock()
		})
	}
	// And a multipart upload whose parts land on different instances.
	big := randomBytes(11 << 20)
	if _, err := lb.PutObject(ctx, bucket, "big", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
		t.Fatalf("multipart through the balancer: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want["big"] = big
	settle(t)
	// The documented window: an instance that read an object before its
	// entry landed believes "no entry" for etagindex.NoneTTL.
	time.Sleep(etagindex.NoneTTL)

	// Every object on MinIO, under the rule's key; nothing more.
	var listed []string
	for o := range direct(t).ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if !strings.HasPrefix(o.Key, ".ssec-proxy/") {
			listed = append(listed, o.Key)
		}
	}
	if len(listed) != len(want) {
		t.Errorf("MinIO holds %d objects, want %d", len(listed), len(want))
	}
	for k, data := range want {
		assertEncrypted(t, bucket, k, "k1", data)
	}
	// The same ETag through every instance: the data's MD5 (the multipart
	// one for big).
	for _, b := range bases {
		c := minioClient(t, b)
		for k, data := range want {
			st, err := c.StatObject(ctx, bucket, k, minio.StatObjectOptions{})
			if err != nil {
				t.Errorf("%s through %s: %v", k, b, err)
				continue
			}
			if k != "big" && st.ETag != md5hex(data) || k == "big" && !strings.HasSuffix(st.ETag, "-3") {
				t.Errorf("%s through %s: ETag %s", k, b, st.ETag)
			}
		}
	}
	// No stale entry once gc ran; one entry per object.
	cfg := *env.cfg
	withRule(&cfg)
	ring, _, err := keystore.Build(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	client, err := lifecycle.NewClient(cfg.Upstream)
	if err != nil {
		t.Fatal(err)
	}
	opts := lifecycle.Options{Client: client, Keyring: ring}
	rep, err := lifecycle.IndexGC(ctx, opts, lifecycle.Target{Bucket: bucket}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gc after the run: %d entries, %d stale removed", rep.Entries, rep.Stale)
	rep, err = lifecycle.IndexGC(ctx, opts, lifecycle.Target{Bucket: bucket}, true)
	if err != nil || rep.Stale != 0 || rep.Entries != len(want) {
		t.Errorf("after gc: %d entries (want %d), %d stale (%v)", rep.Entries, len(want), rep.Stale, err)
	}
}
