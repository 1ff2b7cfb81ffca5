// Command bench measures ssec-proxy against talking to the upstream
// directly (issue 6): it starts a real MinIO over TLS, the proxy (the real
// binary, so that its RSS and CPU can be read from /proc) and nginx as a
// plain TLS reverse proxy, then alternates direct and proxied runs
// (A B A B) and prints a table of medians and ratios.
//
//	go run ./bench -proxy-bin bin/ssec-proxy            # the full run (make bench)
//	go run ./bench -short -proxy-bin bin/ssec-proxy     # seconds, no timing asserted (make bench-short, CI)
//	go run ./bench -profile /tmp/prof -phases large     # the proxy in process, with pprof CPU and heap profiles
//
// Linux only (/proc). Listens on 127.0.0.1 only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssec-proxy/ssec-proxy/internal/miniotest"
)

const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
)

// proxyETags is the etags setting of the proxy's config.
var proxyETags = "md5"

type options struct {
	short     bool
	rounds    int
	large     int64 // single-stream PUT/GET size
	huge      int64 // the memory stream size
	memSize   int64 // each of the concurrent uploads
	memConc   int
	smallN    int
	smallConc int
	smallSize int64
	phases    map[string]bool
	out       string
	proxyBin  string
	profile   string
	keep      bool
	proxyEnv  []string
	putModes  []payloadMode // of the large phase; none: one unmeasured PUT, then the GETs

	// The network phase.
	link                      link
	netRounds                 int
	netLarge                  int64
	netOne, netMany, netFiles int // 4 KiB objects at 1 and at 32 clients; 64 KiB files at 8
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	o := options{}
	flag.BoolVar(&o.short, "short", false, "small sizes and one round: proves the benchmark works, asserts nothing (CI)")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds of each A/B comparison (medians are reported)")
	largeMiB := flag.Int64("large-mib", 1024, "size of the single-stream objects, MiB")
	hugeMiB := flag.Int64("huge-mib", 4096, "size of the object streamed for peak RSS, MiB")
	memMiB := flag.Int64("mem-mib", 64, "size of each concurrent upload for peak RSS, MiB")
	flag.IntVar(&o.memConc, "mem-conc", 64, "concurrent uploads for peak RSS")
	flag.IntVar(&o.smallN, "small-n", 4000, "small objects per phase")
	flag.IntVar(&o.smallConc, "small-conc", 32, "concurrent clients for small objects")
	phases := flag.String("phases", "large,small,memory,cpu,network", "phases to run")
	flag.DurationVar(&o.link.latency, "net-latency", 10*time.Millisecond, "network phase: latency added each way between the upstream and its clients")
	rateMbit := flag.Int("net-rate-mbit", 1000, "network phase: bandwidth cap each way, Mbit/s")
	flag.IntVar(&o.netRounds, "net-rounds", 3, "network phase: rounds of each A/B/C comparison")
	netLargeMiB := flag.Int64("net-large-mib", 1024, "network phase: size of the single-stream objects, MiB")
	flag.StringVar(&o.out, "out", "", "write the table here (default bench/results-<date>.md for a full run, none for -short)")
	flag.StringVar(&o.proxyBin, "proxy-bin", "", "the ssec-proxy binary (default: go build ./cmd/ssec-proxy into the work directory)")
	flag.StringVar(&o.profile, "profile", "", "run the proxy in process and write cpu.pprof and heap.pprof here (no RSS or CPU figures, no nginx)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, MinIO data)")
	flag.StringVar(&proxyETags, "etags", "md5", "the proxy's etags setting: md5 (MD5 ETags: an MD5 per upload and an index entry) or upstream")
	flag.Func("proxy-env", "`NAME=VALUE` added to the proxy's environment (repeatable; e.g. GOMAXPROCS=1, GOGC=200)", func(v string) error {
		o.proxyEnv = append(o.proxyEnv, v)
		return nil
	})
	var all []string
	for _, m := range modeNames {
		all = append(all, m.name)
	}
	putModes := flag.String("put-modes", strings.Join(all, ","), "payload modes of the large-object PUTs (\"\" measures GET only)")
	flag.Parse()
	for _, name := range strings.Split(*putModes, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		i := slices.IndexFunc(modeNames, func(m modeName) bool { return m.name == name })
		if i < 0 {
			return fmt.Errorf("-put-modes: %q is none of %s", name, strings.Join(all, ", "))
		}
		o.putModes = append(o.putModes, modeNames[i].mode)
	}
	o.large, o.huge, o.memSize, o.smallSize = *largeMiB*MiB, *hugeMiB*MiB, *memMiB*MiB, 4*KiB
	o.link.rateKBs = *rateMbit * 1000 / 8
	o.netLarge, o.netOne, o.netMany, o.netFiles = *netLargeMiB*MiB, 200, 2000, 2000
	if o.short {
		o.rounds, o.large, o.huge, o.memSize, o.memConc, o.smallN = 1, 16*MiB, 64*MiB, 4*MiB, 16, 256
		o.netRounds, o.netLarge, o.netOne, o.netMany, o.netFiles = 1, 8*MiB, 10, 64, 32
	}
	o.phases = map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		o.phases[strings.TrimSpace(p)] = true
	}
	if o.out == "" && !o.short && o.profile == "" {
		o.out = filepath.Join("bench", "results-"+time.Now().Format("20060102-1504")+".md")
	}
	if _, err := miniotest.Binary(); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dir, err := os.MkdirTemp("", "ssec-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "bench: work directory", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.profile == "" && o.proxyBin == "" {
		o.proxyBin = filepath.Join(dir, "ssec-proxy")
		cmd := exec.Command("go", "build", "-trimpath", "-o", o.proxyBin, "./cmd/ssec-proxy")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building the proxy: %w", err)
		}
	}
	withNginx := o.phases["cpu"] && o.profile == ""
	w, err := startWorld(ctx, dir, o.proxyBin, o.proxyEnv, o.profile != "", withNginx)
	if w != nil {
		defer w.stop()
	}
	noNginx := ""
	if errors.Is(err, errNoNginx) {
		noNginx = err.Error()
		fmt.Fprintln(os.Stderr, "bench:", noNginx)
		err = nil
	}
	if err != nil {
		return err
	}

	b := &bench{o: o, w: w, res: results{}, loadStart: loadAvg(), start: time.Now()}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(o.profile, "cpu.pprof"))
		if err != nil {
			return err
		}
		runtime.MemProfileRate = 64 << 10
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
			if h, err := os.Create(filepath.Join(o.profile, "heap.pprof")); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(h, 0)
				h.Close()
			}
			fmt.Fprintln(os.Stderr, "bench: profiles in", o.profile)
		}()
	}
	for _, p := range []struct {
		name string
		fn   func(context.Context) error
	}{{"large", b.largeObjects}, {"small", b.smallObjects}, {"memory", b.memory}, {"cpu", b.cpu}, {"network", b.network}} {
		if !o.phases[p.name] {
			continue
		}
		if (p.name == "memory" || p.name == "network") && o.profile != "" {
			continue
		}
		if p.name == "cpu" && (w.nginx == nil || o.profile != "") {
			continue
		}
		b.logf("phase %s (load %s)", p.name, loadAvg())
		if err := p.fn(ctx); err != nil {
			return fmt.Errorf("phase %s: %w", p.name, err)
		}
	}
	b.loadEnd = loadAvg()
	report := b.report(noNginx)
	fmt.Print(report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "bench: wrote", o.out)
	}
	return nil
}

// results holds every sample by name; the report takes medians.
type results map[string][]float64

func (r results) add(name string, v float64) { r[name] = append(r[name], v) }

func (r results) median(name string) (float64, bool) {
	v := r[name]
	if len(v) == 0 {
		return 0, false
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

type bench struct {
	o                  options
	w                  *world
	res                results
	loadStart, loadEnd string
	start              time.Time
	net                *netWorld // the network phase's, once it ran
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: %6.1fs "+format+"\n", append([]any{time.Since(b.start).Seconds()}, args...)...)
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// proxyCPU is the proxy process's CPU time; zero in process (it would
// count the client too).
func (b *bench) proxyCPU() time.Duration {
	if b.w.proxyCmd == nil {
		return 0
	}
	d, _ := procCPU(b.w.proxyPID())
	return d
}

// minioCPU is MinIO's CPU time so far.
func (b *bench) minioCPU() time.Duration {
	pid := b.w.minioPID()
	if pid == 0 {
		return 0
	}
	d, _ := procCPU(pid)
	return d
}

// 1. Large objects: one stream, each payload mode, direct vs proxy.
func (b *bench) largeObjects(ctx context.Context) error {
	size := b.o.large
	eps := []*endpoint{b.w.direct, b.w.proxy}
	if len(b.o.putModes) == 0 {
		for _, e := range eps {
			if err := e.put(ctx, "large/"+e.name, size, modeUnsigned); err != nil {
				return err
			}
		}
	}
	for _, mode := range b.o.putModes {
		for r := 0; r < b.o.rounds; r++ {
			for _, e := range eps {
				c0, m0 := b.proxyCPU(), b.minioCPU()
				busy := busyMeter()
				t0 := time.Now()
				if err := e.put(ctx, "large/"+e.name, size, mode); err != nil {
					return err
				}
				d := time.Since(t0)
				b.res.add(fmt.Sprintf("large/put/%d/%s/busy", mode, e.name), busy())
				b.res.add(fmt.Sprintf("large/put/%d/%s", mode, e.name), mbps(size, d))
				b.res.add(fmt.Sprintf("large/put/%d/%s/minio-cpu", mode, e.name), (b.minioCPU()-m0).Seconds()/(float64(size)/GiB))
				if e == b.w.proxy && b.w.proxyCmd != nil {
					b.res.add(fmt.Sprintf("large/put/%d/cpu", mode), (b.proxyCPU()-c0).Seconds()/(float64(size)/GiB))
				}
				b.logf("PUT %s %s: %.0f MB/s", mode, e.name, mbps(size, d))
			}
		}
	}
	for r := 0; r < b.o.rounds; r++ {
		for _, e := range eps {
			c0, m0 := b.proxyCPU(), b.minioCPU()
			busy := busyMeter()
			t0 := time.Now()
			n, err := e.get(ctx, "large/"+e.name)
			if err != nil {
				return err
			}
			b.res.add("large/get/"+e.name+"/busy", busy())
			if n != size {
				return fmt.Errorf("GET via %s: %d bytes, want %d", e.name, n, size)
			}
			d := time.Since(t0)
			b.res.add("large/get/"+e.name, mbps(size, d))
			b.res.add("large/get/"+e.name+"/minio-cpu", (b.minioCPU()-m0).Seconds()/(float64(size)/GiB))
			if e == b.w.proxy && b.w.proxyCmd != nil {
				b.res.add("large/get/cpu", (b.proxyCPU()-c0).Seconds()/(float64(size)/GiB))
			}
			b.logf("GET %s: %.0f MB/s", e.name, mbps(size, d))
		}
	}
	return nil
}

// 2. Small objects: smallN PUTs then GETs at smallConc clients.
func (b *bench) smallObjects(ctx context.Context) error {
	for r := 0; r < b.o.rounds; r++ {
		for _, op := range []string{"put", "get"} {
			for _, e := range []*endpoint{b.w.direct, b.w.proxy} {
				c0, m0 := b.proxyCPU(), b.minioCPU()
				ops, lat, err := b.concurrent(ctx, e, op, b.o.smallN, b.o.smallConc, b.o.smallSize, "small/"+e.name+"/")
				if err != nil {
					return err
				}
				perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.o.smallN) }
				b.res.add("small/"+op+"/"+e.name+"/minio-us", perOp(b.minioCPU()-m0))
				if e == b.w.proxy && b.w.proxyCmd != nil {
					b.res.add("small/"+op+"/proxy-us", perOp(b.proxyCPU()-c0))
				}
				b.res.add("small/"+op+"/"+e.name+"/ops", ops)
				b.res.add("small/"+op+"/"+e.name+"/p50", percentile(lat, 0.50))
				b.res.add("small/"+op+"/"+e.name+"/p99", percentile(lat, 0.99))
				b.logf("small %s %s: %.0f ops/s, p50 %.2f ms, p99 %.2f ms", op, e.name, ops, percentile(lat, 0.5), percentile(lat, 0.99))
			}
		}
		// One client: the latency a request gains from the proxy itself,
		// without 32 requests queueing on two cores.
		n := min(b.o.smallN, 500)
		for _, op := range []string{"put", "get"} {
			for _, e := range []*endpoint{b.w.direct, b.w.proxy} {
				_, lat, err := b.concurrent(ctx, e, op, n, 1, b.o.smallSize, "small/"+e.name+"/")
				if err != nil {
					return err
				}
				b.res.add("small1/"+op+"/"+e.name+"/p50", percentile(lat, 0.50))
				b.logf("one client %s %s: p50 %.2f ms", op, e.name, percentile(lat, 0.5))
			}
		}
	}
	return nil
}

// concurrent runs n operations at conc clients and returns ops/s and
// every latency in ms.
func (b *bench) concurrent(ctx context.Context, e *endpoint, op string, n, conc int, size int64, prefix string) (float64, []float64, error) {
	lat := make([]float64, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	t0 := time.Now()
	for c := 0; c < conc; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				key := fmt.Sprintf("%s%05d", prefix, i)
				s := time.Now()
				var err error
				switch op {
				case "put":
					err = e.put(ctx, key, size, modeUnsigned)
				case "delete":
					err = e.del(ctx, key)
				default:
					var got int64
					if got, err = e.get(ctx, key); err == nil && got != size {
						err = fmt.Errorf("GET %s via %s: %d bytes, want %d", key, e.name, got, size)
					}
				}
				if err != nil {
					errs <- err
					next.Store(int64(n))
					return
				}
				lat[i] = float64(time.Since(s).Microseconds()) / 1000
			}
		}()
	}
	wg.Wait()
	d := time.Since(t0)
	select {
	case err := <-errs:
		return 0, nil, err
	default:
	}
	return float64(n) / d.Seconds(), lat, nil
}

func percentile(v []float64, p float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	i := int(p*float64(len(s))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

// 3. Memory: the proxy's peak RSS (VmHWM, reset before each case).
func (b *bench) memory(ctx context.Context) error {
	pid := b.w.proxyPID()
	p := b.w.proxy
	peak := func(name string, fn func() error) error {
		if err := resetPeakRSS(pid); err != nil {
			return fmt.Errorf("resetting VmHWM: %w", err)
		}
		if err := fn(); err != nil {
			return err
		}
		hwm, err := procStatus(pid, "VmHWM")
		if err != nil {
			return err
		}
		b.res.add("mem/"+name, float64(hwm)/MiB)
		b.logf("peak RSS %s: %.1f MiB", name, float64(hwm)/MiB)
		return nil
	}
	for _, size := range []int64{b.o.large, b.o.huge} {
		name := fmt.Sprintf("%d", size/MiB)
		if err := peak("put/"+name, func() error { return p.put(ctx, "mem/stream", size, modeUnsigned) }); err != nil {
			return err
		}
		if err := peak("get/"+name, func() error {
			n, err := p.get(ctx, "mem/stream")
			if err == nil && n != size {
				err = fmt.Errorf("GET: %d bytes, want %d", n, size)
			}
			return err
		}); err != nil {
			return err
		}
	}
	if err := peak("conc-put", func() error {
		_, _, err := b.concurrent(ctx, p, "put", b.o.memConc, b.o.memConc, b.o.memSize, "mem/conc/")
		return err
	}); err != nil {
		return err
	}
	return peak("conc-get", func() error {
		_, _, err := b.concurrent(ctx, p, "get", b.o.memConc, b.o.memConc, b.o.memSize, "mem/conc/")
		return err
	})
}

// 4. CPU per GiB: the proxy beside nginx, the same PUT and GET.
func (b *bench) cpu(ctx context.Context) error {
	size := b.o.large
	gib := float64(size) / GiB
	type side struct {
		e    *endpoint
		pids func() []int
	}
	sides := []side{
		{b.w.direct, nil}, // throughput only: the reference both proxies are held to
		{b.w.proxy, func() []int { return []int{b.w.proxyPID()} }},
		{b.w.nginx, b.w.nginxPIDs},
	}
	for r := 0; r < b.o.rounds; r++ {
		for _, s := range sides {
			pids := func() []int { return nil }
			if s.pids != nil {
				pids = s.pids
			}
			c0, err := procCPU(pids()...)
			if err != nil {
				return err
			}
			sc0, sw0 := procCounts(pids()...)
			t0 := time.Now()
			if err := s.e.put(ctx, "cpu/"+s.e.name, size, modeUnsigned); err != nil {
				return err
			}
			dPut := time.Since(t0)
			c1, _ := procCPU(pids()...)
			sc1, sw1 := procCounts(pids()...)
			t1 := time.Now()
			if _, err := s.e.get(ctx, "cpu/"+s.e.name); err != nil {
				return err
			}
			dGet := time.Since(t1)
			c2, _ := procCPU(pids()...)
			sc2, sw2 := procCounts(pids()...)
			if s.pids != nil {
				b.res.add("cpu/put/"+s.e.name, (c1-c0).Seconds()/gib)
				b.res.add("cpu/get/"+s.e.name, (c2-c1).Seconds()/gib)
				mib := float64(size) / MiB
				b.res.add("cpu/put/"+s.e.name+"/syscalls", float64(sc1-sc0)/mib)
				b.res.add("cpu/get/"+s.e.name+"/syscalls", float64(sc2-sc1)/mib)
				b.res.add("cpu/put/"+s.e.name+"/switches", float64(sw1-sw0)/mib)
				b.res.add("cpu/get/"+s.e.name+"/switches", float64(sw2-sw1)/mib)
			}
			b.res.add("cpu/put-mbps/"+s.e.name, mbps(size, dPut))
			b.res.add("cpu/get-mbps/"+s.e.name, mbps(size, dGet))
			b.logf("CPU %s: PUT %.2f s/GiB (%.0f MB/s), GET %.2f s/GiB (%.0f MB/s)", s.e.name,
				(c1-c0).Seconds()/gib, mbps(size, dPut), (c2-c1).Seconds()/gib, mbps(size, dGet))
		}
	}
	return nil
}
