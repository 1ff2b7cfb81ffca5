package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/ssec-proxy/ssec-proxy/internal/miniotest"
)

// verdict says whether a target is met; in a short run nothing is judged.
func (b *bench) verdict(ok bool, target string) string {
	switch {
	case b.o.short:
		return target + " (short run: not judged)"
	case ok:
		return target + " **met**"
	}
	return target + " **MISSED**"
}

func size(n int64) string {
	if n >= GiB && n%GiB == 0 {
		return fmt.Sprintf("%d GiB", n/GiB)
	}
	if n >= MiB {
		return fmt.Sprintf("%d MiB", n/MiB)
	}
	return fmt.Sprintf("%d KiB", n/KiB)
}

func (b *bench) report(noNginx string) string {
	var sb strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	m := func(name string) float64 { v, _ := b.res.median(name); return v }
	has := func(name string) bool { _, ok := b.res.median(name); return ok }
	host, _ := os.Hostname()

	kind := "full"
	if b.o.short {
		kind = "short (-short: sizes and rounds cut down, timings not judged)"
	}
	p("# ssec-proxy benchmark, %s\n\n", time.Now().Format("2006-01-02 15:04 MST"))
	p("- run: %s; %d round(s) per comparison, alternating A B A B; every figure is the median\n", kind, b.o.rounds)
	p("- machine: %s, %d CPUs (%s), %s/%s, %s\n", host, runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	p("- load average (1, 5, 15 min): %s at the start, %s at the end\n", b.loadStart, b.loadEnd)
	p("- upstream: MinIO %s over TLS on 127.0.0.1, one drive; client: Go net/http + minio-go's signer, HTTP/1.1 over TLS\n", "("+shortVersion()+")")
	if b.w.proxyCmd != nil {
		p("- proxy: the ssec-proxy binary (%s), tls.mode files, log level info, etags %s", b.o.proxyBin, proxyETags)
		if len(b.o.proxyEnv) > 0 {
			p(", environment %s", strings.Join(b.o.proxyEnv, " "))
		}
		p("\n")
	} else {
		p("- proxy: in process (profiling run: no RSS or CPU figures)\n")
	}
	p("\n")

	if has("large/get/direct") {
		p("## 1. Large objects: one stream of %s (MB/s)\n\n", size(b.o.large))
		p("| operation | payload mode | direct | proxy | ratio | proxy CPU s/GiB | MinIO CPU s/GiB direct / proxied | machine busy direct / proxied | target ≥ 0.95 |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n")
		for _, mode := range b.o.putModes {
			pre := fmt.Sprintf("large/put/%d/", mode)
			d, x := m(pre+"direct"), m(pre+"proxy")
			p("| PUT | %s | %.0f | %.0f | %.2f | %s | %s / %s | %s / %s | %s |\n", mode, d, x, x/d, cpuCell(b, pre+"cpu"),
				cpuCell(b, pre+"direct/minio-cpu"), cpuCell(b, pre+"proxy/minio-cpu"),
				pct(m(pre+"direct/busy")), pct(m(pre+"proxy/busy")), b.verdict(x/d >= 0.95, "≥ 0.95"))
		}
		d, x := m("large/get/direct"), m("large/get/proxy")
		p("| GET | — | %.0f | %.0f | %.2f | %s | %s / %s | %s / %s | %s |\n\n", d, x, x/d, cpuCell(b, "large/get/cpu"),
			cpuCell(b, "large/get/direct/minio-cpu"), cpuCell(b, "large/get/proxy/minio-cpu"),
			pct(m("large/get/direct/busy")), pct(m("large/get/proxy/busy")), b.verdict(x/d >= 0.95, "≥ 0.95"))
		p("*Machine busy* is the share of all CPUs' time that was not idle during the transfer (from `/proc/stat`, steal included): near 100 %%, the client, MinIO and the proxy are waiting for each other's CPU.\n\n")
	}

	if has("small/put/direct/ops") {
		p("## 2. Small objects: %d × %s at %d concurrent clients\n\n", b.o.smallN, size(b.o.smallSize), b.o.smallConc)
		p("| operation | direct ops/s | proxy ops/s | ratio | p50 direct | p50 proxy | added p50 | p99 direct | p99 proxy | targets: ratio ≥ 0.85, added p50 < 1 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, op := range []string{"put", "get"} {
			pre := "small/" + op + "/"
			d, x := m(pre+"direct/ops"), m(pre+"proxy/ops")
			d50, x50 := m(pre+"direct/p50"), m(pre+"proxy/p50")
			p("| %s | %.0f | %.0f | %.2f | %.2f ms | %.2f ms | %+.2f ms | %.2f ms | %.2f ms | %s; %s |\n", strings.ToUpper(op), d, x, x/d,
				d50, x50, x50-d50, m(pre+"direct/p99"), m(pre+"proxy/p99"),
				b.verdict(x/d >= 0.85, "ratio"), b.verdict(x50-d50 < 1, "p50"))
		}
		if has("small1/get/direct/p50") {
			p("\nOne client, no concurrency (p50): ")
			for _, op := range []string{"put", "get"} {
				pre := "small1/" + op + "/"
				d, x := m(pre+"direct/p50"), m(pre+"proxy/p50")
				p("%s %.2f ms direct, %.2f ms proxied (%+.2f ms). ", strings.ToUpper(op), d, x, x-d)
			}
			p("\n")
		}
		p("\nCPU per operation (µs): ")
		for _, op := range []string{"put", "get"} {
			pre := "small/" + op + "/"
			p("%s: MinIO %.0f direct, %.0f proxied; ssec-proxy %s. ", strings.ToUpper(op), m(pre+"direct/minio-us"), m(pre+"proxy/minio-us"), cpuCell(b, pre+"proxy-us"))
		}
		p("\n\n")
	}

	if has("mem/conc-put") {
		p("## 3. Memory: the proxy's peak RSS (VmHWM, reset before each case)\n\n")
		p("| case | peak RSS | target |\n|---|---:|---|\n")
		for _, sz := range []int64{b.o.large, b.o.huge} {
			n := fmt.Sprintf("%d", sz/MiB)
			judge := sz == b.o.huge
			for _, op := range []string{"put", "get"} {
				v := m("mem/" + op + "/" + n)
				t := "—"
				if judge {
					t = b.verdict(v < 64, "< 64 MiB")
				}
				p("| one %s stream, %s | %.1f MiB | %s |\n", size(sz), strings.ToUpper(op), v, t)
			}
		}
		p("| %d concurrent %s uploads | %.1f MiB | %s |\n", b.o.memConc, size(b.o.memSize), m("mem/conc-put"), b.verdict(m("mem/conc-put") < 256, "< 256 MiB"))
		p("| %d concurrent %s downloads | %.1f MiB | — |\n\n", b.o.memConc, size(b.o.memSize), m("mem/conc-get"))
	}

	if has("cpu/put/nginx") {
		p("## 4. CPU per GiB moved: ssec-proxy beside nginx (a plain TLS reverse proxy to MinIO), %s, UNSIGNED-PAYLOAD\n\n", size(b.o.large))
		p("| transfer | ssec-proxy CPU s/GiB | nginx CPU s/GiB | ratio | direct MB/s | ssec-proxy MB/s (÷ direct) | nginx MB/s (÷ direct) | target ≤ 1.3 |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
		tp, tn := 0.0, 0.0
		for _, op := range []string{"put", "get"} {
			x, n := m("cpu/"+op+"/proxy"), m("cpu/"+op+"/nginx")
			tp, tn = tp+x, tn+n
			d, xp, np := m("cpu/"+op+"-mbps/direct"), m("cpu/"+op+"-mbps/proxy"), m("cpu/"+op+"-mbps/nginx")
			p("| %s | %.2f | %.2f | %.2f | %.0f | %.0f (%.2f) | %.0f (%.2f) | %s |\n", strings.ToUpper(op), x, n, x/n, d, xp, xp/d, np, np/d, b.verdict(x/n <= 1.3, "≤ 1.3"))
		}
		p("| PUT + GET | %.2f | %.2f | %.2f | | | | %s |\n\n", tp, tn, tp/tn, b.verdict(tp/tn <= 1.3, "≤ 1.3"))
		p("Per MiB moved, the same transfers (read and write system calls from `/proc/<pid>/io`, context switches of all threads; these hardly vary from run to run):\n\n")
		p("| transfer | ssec-proxy syscalls | nginx syscalls | ssec-proxy context switches | nginx context switches |\n|---|---:|---:|---:|---:|\n")
		for _, op := range []string{"put", "get"} {
			pre := "cpu/" + op + "/"
			p("| %s | %.0f | %.0f | %.0f | %.0f |\n", strings.ToUpper(op), m(pre+"proxy/syscalls"), m(pre+"nginx/syscalls"),
				m(pre+"proxy/switches"), m(pre+"nginx/switches"))
		}
		p("\n")
	} else if noNginx != "" {
		p("## 4. CPU per GiB moved\n\nnot measured: %s\n\n", noNginx)
	}
	if b.net != nil {
		b.networkReport(p, m)
	}
	return sb.String()
}

// networkReport is section 5: the network phase's tables, each proxy
// (etags md5 and upstream) against direct over the same link; the targets
// are judged for etags md5, the default.
func (b *bench) networkReport(p func(string, ...any), m func(string) float64) {
	d := "net/direct/"
	md5, up := "net/"+b.net.proxies[0].e.name+"/", "net/"+b.net.proxies[1].e.name+"/"
	p("## 5. Over a network: %s\n\n", b.o.link)
	p("The link is between the upstream and everything that talks to it: the direct client, and each proxy (the client to proxy leg stays on loopback, as with a sidecar). %d round(s), direct, proxy with `etags: md5`, proxy with `etags: upstream`, in turn, each round starting with the next (A B C, B C A, C A B); medians.\n\n", b.o.netRounds)
	p("| %s object | direct MB/s | proxy, etags md5 (÷ direct) | proxy, etags upstream (÷ direct) | target, etags md5 |\n|---|---:|---:|---:|---|\n", size(b.o.netLarge))
	for _, op := range []string{"put", "get"} {
		dv, mv, uv := m(d+"large/"+op), m(md5+"large/"+op), m(up+"large/"+op)
		p("| %s | %.0f | %.0f (%.2f) | %.0f (%.2f) | %s |\n", strings.ToUpper(op), dv, mv, mv/dv, uv, uv/dv, b.verdict(mv/dv >= 0.97, "≥ 0.97"))
	}
	p("\n| 4 KiB, one client | p50 direct | p50 etags md5 (added) | p50 etags upstream (added) | p99 direct | p99 etags md5 | p99 etags upstream | target: added p50, etags md5 |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, op := range []string{"put", "get", "delete"} {
		k := "one/" + op + "/"
		dv, mv, uv := m(d+k+"p50"), m(md5+k+"p50"), m(up+k+"p50")
		p("| %s | %.2f ms | %.2f ms (%+.2f) | %.2f ms (%+.2f) | %.2f ms | %.2f ms | %.2f ms | %s |\n", strings.ToUpper(op), dv, mv, mv-dv, uv, uv-dv,
			m(d+k+"p99"), m(md5+k+"p99"), m(up+k+"p99"), b.verdict(mv-dv < 1, "< 1 ms"))
	}
	p("\n| 4 KiB, 32 clients | direct ops/s | etags md5 (÷ direct) | etags upstream (÷ direct) | machine busy: direct / md5 / upstream | target, etags md5 |\n|---|---:|---:|---:|---:|---|\n")
	for _, op := range []string{"put", "get", "delete"} {
		k := "many/" + op
		dv, mv, uv := m(d+k), m(md5+k), m(up+k)
		p("| %s | %.0f | %.0f (%.2f) | %.0f (%.2f) | %s / %s / %s | %s |\n", strings.ToUpper(op), dv, mv, mv/dv, uv, uv/dv,
			pct(m(d+k+"/busy")), pct(m(md5+k+"/busy")), pct(m(up+k+"/busy")), b.verdict(mv/dv >= 0.95, "≥ 0.95"))
	}
	dv, mv, uv := m(d+"files"), m(md5+"files"), m(up+"files")
	p("| %d × 64 KiB PUT at 8 clients, wall time | %.2f s | %.2f s (%.2f×) | %.2f s (%.2f×) | | %s |\n\n", b.o.netFiles, dv, mv, mv/dv, uv, uv/dv, b.verdict(mv/dv <= 1.05, "≤ 1.05×"))
	p("Where the CPU of the runs with many clients went, per operation: the clients (this program), toxiproxy, MinIO and the proxy, from `/proc/<pid>/stat`, read before each run and after it, once the proxy has no index write or clean-up under way (`ssec_proxy_index_writes_pending`, `ssec_proxy_index_cleanups_pending`) and 500 ms more have passed (every endpoint pauses so). *CPU-bound ceiling* is what this machine's %d CPUs could do at that cost if nothing else limited; it counts the clients and toxiproxy, so it is this rig's ceiling, not a deployment's.\n\n", runtime.NumCPU())
	p("| run | CPU µs per op: clients | toxiproxy | MinIO | ssec-proxy | all | CPU-bound ceiling, ops/s | measured ops/s |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, op := range []string{"put", "get", "delete", "files"} {
		for _, e := range []struct{ label, pre string }{{"direct", d}, {"etags md5", md5}, {"etags upstream", up}} {
			k, label := e.pre+"many/"+op, strings.ToUpper(op)+" 4 KiB, 32 clients, "
			if op == "files" {
				k, label = e.pre+"files", "64 KiB files, 8 clients, "
			}
			all := 0.0
			cells := make([]string, len(cpuParts))
			for i, part := range cpuParts {
				v := m(k + "/cpu/" + part)
				all += v
				cells[i] = fmt.Sprintf("%.0f", v)
			}
			if e.pre == d {
				cells[3] = "—"
			}
			ceiling := "—" // a run too short for the clock's 10 ms ticks
			if all > 0 {
				ceiling = fmt.Sprintf("%.0f", float64(runtime.NumCPU())*1e6/all)
			}
			measured := m(k)
			if op == "files" {
				measured = float64(b.o.netFiles) / m(k)
			}
			p("| %s%s | %s | %.0f | %s | %.0f |\n", label, e.label, strings.Join(cells, " | "), all, ceiling, measured)
		}
	}
	p("\n")
	// The pool a client needs is a connection per request under way; the
	// proxy with etags md5 adds one request behind each of its writes (the
	// entry) and the sweeps' few per 100 ms (listings, DeleteObjects),
	// etags upstream none.
	p("Upstream TLS handshakes over the small-object runs (4 KiB at 1 and 32 clients, the 64 KiB files at 8): the direct client's connections (each one handshake), the proxies' `ssec_proxy_upstream_tls_handshakes_total`.\n\n")
	p("| | direct | etags md5 | etags upstream | targets: the connections the pool needs: etags upstream ≤ 1.1 × direct, etags md5 ≤ 3 × direct (the index requests behind the writes) |\n|---|---:|---:|---:|---|\n")
	dh, mh, uh := m(d+"handshakes-total"), m(md5+"handshakes-total"), m(up+"handshakes-total")
	p("| handshakes | %.0f | %.0f | %.0f | %s; %s |\n", dh, mh, uh, b.verdict(uh <= 1.1*dh, "upstream"), b.verdict(mh <= 3*dh, "md5"))
	p("| per 1,000 requests | %.1f | %.1f | %.1f | |\n\n", m(d+"handshakes"), m(md5+"handshakes"), m(up+"handshakes"))
}

func pct(v float64) string { return fmt.Sprintf("%.0f %%", 100*v) }

func cpuCell(b *bench, name string) string {
	v, ok := b.res.median(name)
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.2f", v)
}

func shortVersion() string {
	v := strings.TrimPrefix(minioVersion, "v0.0.0-")
	if len(v) > 14 {
		return v[:14]
	}
	return v
}

var minioVersion = miniotest.Version
