package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// toxiproxyVersion is the toxiproxy server scripts/deps.sh installs.
const toxiproxyVersion = "v2.5.0"

// link is the network the network phase puts between the upstream and
// everything that talks to it (the direct client and both proxies): the
// client-to-proxy leg stays on loopback, as with a sidecar or a proxy on
// the client's machine.
type link struct {
	latency time.Duration // each way
	rateKBs int           // bandwidth cap each way, KB/s (toxiproxy's unit)
}

func (l link) String() string {
	return fmt.Sprintf("toxiproxy %s: %v latency each way (RTT +%v), %.1f Gbit/s cap each way",
		toxiproxyVersion, l.latency, 2*l.latency, float64(l.rateKBs)*8/1e6)
}

func toxiproxyBinary() (string, error) {
	if p := os.Getenv("SSEC_TOXIPROXY_BIN"); p != "" {
		return p, nil
	}
	if home, err := os.UserCacheDir(); err == nil {
		p := filepath.Join(home, "ssec-proxy", "bin", "toxiproxy-server")
		if fileExists(p) {
			return p, nil
		}
	}
	return "", errors.New("no toxiproxy server: run scripts/deps.sh (go install github.com/Shopify/toxiproxy/v2/cmd/server@" + toxiproxyVersion + ") or set SSEC_TOXIPROXY_BIN")
}

// netWorld is the network phase's: toxiproxy in front of MinIO, the
// direct client through it, and one proxy for each etags setting in
// front of it.
type netWorld struct {
	direct   *endpoint
	dials    *atomic.Int64 // the direct client's connections (each a TLS handshake)
	proxies  []*netProxy
	toxiPID  int
	minioPID int
}

type netProxy struct {
	e          *endpoint
	etags      string
	metricsURL string // http://admin/metrics
	pid        int
}

func (b *bench) startNetwork(ctx context.Context, l link) (*netWorld, error) {
	bin, err := toxiproxyBinary()
	if err != nil {
		return nil, err
	}
	w := b.w
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd, done, err := w.launch(bin, "toxiproxy.log", nil, "-host", "127.0.0.1", "-port", strconv.Itoa(apiPort))
	if err != nil {
		return nil, err
	}
	w.cleanups = append(w.cleanups, func() { stopProcess(cmd, done) })
	api := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	if err := waitTCP(ctx, "https://"+api[len("http://"):], done); err != nil {
		return nil, fmt.Errorf("toxiproxy did not start: %w", err)
	}
	linkPort, err := freePort()
	if err != nil {
		return nil, err
	}
	upstream := w.minio.Endpoint[len("https://"):]
	if err := toxiAPI(ctx, api+"/proxies", map[string]any{
		"name": "upstream", "listen": fmt.Sprintf("127.0.0.1:%d", linkPort), "upstream": upstream, "enabled": true,
	}); err != nil {
		return nil, err
	}
	for _, stream := range []string{"upstream", "downstream"} {
		if err := toxiAPI(ctx, api+"/proxies/upstream/toxics", map[string]any{
			"name": "latency-" + stream, "type": "latency", "stream": stream, "toxicity": 1,
			"attributes": map[string]int{"latency": int(l.latency / time.Millisecond)},
		}); err != nil {
			return nil, err
		}
		if err := toxiAPI(ctx, api+"/proxies/upstream/toxics", map[string]any{
			"name": "bandwidth-" + stream, "type": "bandwidth", "stream": stream, "toxicity": 1,
			"attributes": map[string]int{"rate": l.rateKBs},
		}); err != nil {
			return nil, err
		}
	}
	linkURL := fmt.Sprintf("https://127.0.0.1:%d", linkPort)

	nw := &netWorld{dials: new(atomic.Int64), toxiPID: cmd.Process.Pid, minioPID: w.minioPID()}
	if nw.minioPID == 0 {
		return nil, errors.New("no MinIO process among this program's children (is SSEC_MINIO_BIN a wrapper?): its CPU cannot be read")
	}
	hc, err := newClient(w.minio.CAFile, w.pt.CA)
	if err != nil {
		return nil, err
	}
	tr := hc.Transport.(*http.Transport)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nw.dials.Add(1)
		return dial(ctx, network, addr)
	}
	nw.direct = &endpoint{name: "direct", base: linkURL, ak: w.minio.AccessKey, sk: w.minio.SecretKey, sseKey: w.key, hc: hc}
	for _, etags := range []string{"md5", "upstream"} {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		admin, err := freePort()
		if err != nil {
			return nil, err
		}
		name := "net-proxy-" + etags
		cfg, err := w.proxyConfig(name, port, fmt.Sprintf("127.0.0.1:%d", admin), linkURL, etags)
		if err != nil {
			return nil, err
		}
		cmd, done, err := w.launch(b.o.proxyBin, name+".log", b.o.proxyEnv, "serve", "--config", cfg)
		if err != nil {
			return nil, err
		}
		w.cleanups = append(w.cleanups, func() { stopProcess(cmd, done) })
		p := &netProxy{
			e:          &endpoint{name: "proxy, etags " + etags, base: fmt.Sprintf("https://127.0.0.1:%d", port), ak: clientAK, sk: clientSK, hc: w.hc},
			etags:      etags,
			metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", admin),
			pid:        cmd.Process.Pid,
		}
		if err := waitTCP(ctx, p.e.base, done); err != nil {
			return nil, fmt.Errorf("%s did not start (see %s): %w", name, filepath.Join(w.dir, name+".log"), err)
		}
		nw.proxies = append(nw.proxies, p)
	}
	return nw, nil
}

// toxiAPI posts a JSON document to toxiproxy's API.
func toxiAPI(ctx context.Context, url string, doc any) error {
	body, _ := json.Marshal(doc)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("toxiproxy %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("toxiproxy %s: %s: %s", url, resp.Status, b)
	}
	return nil
}

// metrics reads the proxy's metrics, each summed over its labels.
func (p *netProxy) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		name, _, _ = strings.Cut(name, "{")
		out[name] += v
	}
	return out, sc.Err()
}

// handshakes reads the proxy's upstream TLS handshakes (successful and
// failed).
func (p *netProxy) handshakes(ctx context.Context) (float64, error) {
	m, err := p.metrics(ctx)
	return m["ssec_proxy_upstream_tls_handshakes_total"], err
}

// settle waits until the proxy has no index write or clean-up waiting or
// under way.
func (p *netProxy) settle(ctx context.Context) error {
	for deadline := time.Now().Add(time.Minute); ; {
		m, err := p.metrics(ctx)
		if err != nil {
			return err
		}
		writes, ok1 := m["ssec_proxy_index_writes_pending"]
		cleanups, ok2 := m["ssec_proxy_index_cleanups_pending"]
		if !ok1 || !ok2 {
			return fmt.Errorf("%s: its metrics show no index backlog (a binary older than ssec_proxy_index_cleanups_pending?)", p.e.name)
		}
		if writes == 0 && cleanups == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: index writes or clean-ups still pending after a minute", p.e.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// cpuPerOp records, under name+"/cpu/", each process's CPU per operation
// of a run of n that began at c0, read once the proxy p (nil: direct) has
// no index write or clean-up under way and 500 ms more have passed, so
// that the figures include what the run left behind (the entries, the
// clean-ups) and the next run starts on a quiet machine, whichever
// endpoint it is.
func (nw *netWorld) cpuPerOp(ctx context.Context, b *bench, name string, p *netProxy, c0 cpuSample, n int) error {
	if p != nil {
		if err := p.settle(ctx); err != nil {
			return err
		}
	}
	time.Sleep(500 * time.Millisecond) // every endpoint's next run starts as quiet
	c1, err := nw.cpu(p)
	if err != nil {
		return err
	}
	for i, part := range cpuParts {
		b.res.add(name+"/cpu/"+part, float64((c1[i]-c0[i]).Microseconds())/float64(n))
	}
	return nil
}

// cpuSample is the CPU time so far of each process that serves a run:
// the clients (this process), toxiproxy, MinIO and the proxy (zero for
// direct).
type cpuSample [4]time.Duration

var cpuParts = [4]string{"clients", "toxiproxy", "minio", "proxy"}

func (nw *netWorld) cpu(p *netProxy) (cpuSample, error) {
	var c cpuSample
	pids := []int{os.Getpid(), nw.toxiPID, nw.minioPID}
	if p != nil {
		pids = append(pids, p.pid)
	}
	for i, pid := range pids {
		d, err := procCPU(pid)
		if err != nil {
			return c, err
		}
		c[i] = d
	}
	return c, nil
}

// del deletes key (204, or 404 through nothing).
func (e *endpoint) del(ctx context.Context, key string) error {
	req, err := e.request(ctx, http.MethodDelete, key, nil, 0)
	if err != nil {
		return err
	}
	req.Header.Del("X-Amz-Server-Side-Encryption-Customer-Algorithm") // a DELETE takes no SSE-C headers
	req.Header.Del("X-Amz-Server-Side-Encryption-Customer-Key")
	req.Header.Del("X-Amz-Server-Side-Encryption-Customer-Key-Md5")
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	return e.do(signer.SignV4(*req, e.ak, e.sk, "", region), http.StatusNoContent)
}

// 5. The network phase: the same link between the upstream and the
// direct client, and between the upstream and each proxy; A B C A B C.
func (b *bench) network(ctx context.Context) error {
	nw, err := b.startNetwork(ctx, b.o.link)
	if err != nil {
		return err
	}
	b.net = nw
	eps := []*endpoint{nw.direct}
	proxyOf := map[*endpoint]*netProxy{}
	for _, p := range nw.proxies {
		eps = append(eps, p.e)
		proxyOf[p.e] = p
	}
	// Connections and handshakes are counted over the small-object runs.
	count := func() ([]float64, error) {
		out := []float64{float64(nw.dials.Load())}
		for _, p := range nw.proxies {
			h, err := p.handshakes(ctx)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", p.metricsURL, err)
			}
			out = append(out, h)
		}
		return out, nil
	}
	requests := 0
	var handshakes []float64
	for r := 0; r < b.o.netRounds; r++ {
		// Each round starts with the next endpoint (A B C, B C A, C A B),
		// so that going first (after the large objects) falls on each in
		// turn. Who follows whom does not rotate (B always follows A
		// within a round): after every many-client run each endpoint
		// waits until the machine is quiet (cpuPerOp).
		order := slices.Concat(eps[r%len(eps):], eps[:r%len(eps)])
		for _, e := range order {
			pre := "net/" + e.name + "/"
			for _, op := range []string{"put", "get"} {
				t0 := time.Now()
				var n int64
				if op == "put" {
					err = e.put(ctx, "net/large/"+e.name, b.o.netLarge, modeUnsigned)
					n = b.o.netLarge
				} else {
					n, err = e.get(ctx, "net/large/"+e.name)
				}
				if err != nil {
					return err
				}
				if n != b.o.netLarge {
					return fmt.Errorf("GET via %s: %d bytes, want %d", e.name, n, b.o.netLarge)
				}
				b.res.add(pre+"large/"+op, mbps(n, time.Since(t0)))
				b.logf("network %s %s %s: %.0f MB/s", size(n), strings.ToUpper(op), e.name, mbps(n, time.Since(t0)))
			}
		}
		before, err := count()
		if err != nil {
			return err
		}
		for _, e := range order {
			pre := "net/" + e.name + "/"
			for _, run := range []struct {
				name string
				n    int
				conc int
			}{{"one", b.o.netOne, 1}, {"many", b.o.netMany, 32}} {
				for _, op := range []string{"put", "get", "delete"} {
					busy := busyMeter()
					var c0 cpuSample
					if run.conc > 1 {
						if c0, err = nw.cpu(proxyOf[e]); err != nil {
							return err
						}
					}
					ops, lat, err := b.concurrent(ctx, e, op, run.n, run.conc, 4*KiB, "net/small/"+e.name+"/")
					if err != nil {
						return err
					}
					b.res.add(pre+run.name+"/"+op+"/busy", busy())
					if run.conc > 1 {
						if err := nw.cpuPerOp(ctx, b, pre+"many/"+op, proxyOf[e], c0, run.n); err != nil {
							return err
						}
					}
					requests += run.n
					if run.conc == 1 {
						b.res.add(pre+"one/"+op+"/p50", percentile(lat, 0.50))
						b.res.add(pre+"one/"+op+"/p99", percentile(lat, 0.99))
						b.logf("network 4 KiB %s %s, one client: p50 %.2f ms, p99 %.2f ms", strings.ToUpper(op), e.name, percentile(lat, 0.5), percentile(lat, 0.99))
					} else {
						b.res.add(pre+"many/"+op, ops)
						b.logf("network 4 KiB %s %s, 32 clients: %.0f ops/s", strings.ToUpper(op), e.name, ops)
					}
				}
			}
			c0, err := nw.cpu(proxyOf[e])
			if err != nil {
				return err
			}
			t0 := time.Now()
			if _, _, err := b.concurrent(ctx, e, "put", b.o.netFiles, 8, 64*KiB, "net/files/"+e.name+"/"); err != nil {
				return err
			}
			took := time.Since(t0)
			requests += b.o.netFiles
			b.res.add(pre+"files", took.Seconds())
			b.logf("network %d × 64 KiB PUT %s, 8 clients: %.2f s", b.o.netFiles, e.name, took.Seconds())
			if err := nw.cpuPerOp(ctx, b, pre+"files", proxyOf[e], c0, b.o.netFiles); err != nil {
				return err
			}
		}
		after, err := count()
		if err != nil {
			return err
		}
		if handshakes == nil {
			handshakes = make([]float64, len(after))
		}
		for i := range after {
			handshakes[i] += after[i] - before[i]
		}
	}
	// requests counts every endpoint's; each endpoint made a third.
	per := float64(requests) / float64(len(eps))
	for i, e := range eps {
		b.res.add("net/"+e.name+"/handshakes", handshakes[i]/per*1000)
		b.res.add("net/"+e.name+"/handshakes-total", handshakes[i])
	}
	return nil
}
