package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// TestMeasureRSS sizes the Kubernetes resource requests in
// deploy/kubernetes: it runs the proxy under a small load (CONC clients,
// each putting and getting OBJ_MIB objects for SECONDS) and reports its
// resident memory (VmRSS at the end, VmHWM the peak) and CPU time. Run it
// with
//
//	SSEC_MEASURE=1 go test -run TestMeasureRSS -v ./cmd/ssec-proxy
//
// (SSEC_MEASURE_CONC, SSEC_MEASURE_OBJ_MIB, SSEC_MEASURE_SECONDS change
// the load).
func TestMeasureRSS(t *testing.T) {
	if os.Getenv("SSEC_MEASURE") == "" {
		t.Skip("a measurement, not a test: set SSEC_MEASURE=1")
	}
	conc, objMiB, seconds := envInt("SSEC_MEASURE_CONC", 8), envInt("SSEC_MEASURE_OBJ_MIB", 16), envInt("SSEC_MEASURE_SECONDS", 20)
	w := newWorld(t)
	w.writeConfig("tls:\n  mode: auto", "k1", "30s", "")
	p := startProxy(t, w.cfg)
	pid := p.cmd.Process.Pid
	idle := procStatus(t, pid)
	caFile := w.dir + "/state/tls/ca.crt"
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bytesMoved int64
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client(t, p.url(), trusting(t, caFile), clientSK)
			body := randomBytes(objMiB << 20)
			for n := 0; ctx.Err() == nil; n++ {
				obj := fmt.Sprintf("m-%d-%d", i, n%4)
				if _, err := c.PutObject(ctx, w.bucket, obj, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{DisableMultipart: true}); err != nil {
					continue
				}
				o, err := c.GetObject(ctx, w.bucket, obj, minio.GetObjectOptions{})
				if err != nil {
					continue
				}
				k, _ := io.Copy(io.Discard, o)
				o.Close()
				mu.Lock()
				bytesMoved += int64(len(body)) + k
				mu.Unlock()
			}
		}()
	}
	peak := map[string]int{}
	for ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		for k, v := range procStatus(t, pid) {
			peak[k] = max(peak[k], v)
		}
	}
	wg.Wait()
	end := procStatus(t, pid)
	cpu := procCPU(t, pid)
	resp, err := http.Get(p.admin() + "/metrics")
	if err == nil {
		resp.Body.Close()
	}
	t.Logf("load: %d clients, %d MiB objects, %ds: %.0f MiB moved (%.1f MiB/s)", conc, objMiB, seconds,
		float64(bytesMoved)/(1<<20), float64(bytesMoved)/(1<<20)/float64(seconds))
	t.Logf("RSS idle %d MiB; under load peak VmRSS %d MiB, VmHWM %d MiB; after %d MiB; CPU %.1fs user+sys (%.2f cores)",
		idle["VmRSS"]>>10, peak["VmRSS"]>>10, end["VmHWM"]>>10, end["VmRSS"]>>10, cpu, cpu/float64(seconds))
	p.stop()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// procStatus reads the kB values of /proc/pid/status.
func procStatus(t *testing.T, pid int) map[string]int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			m[k], _ = strconv.Atoi(f[0])
		}
	}
	return m
}

// procCPU is the user+system CPU seconds of pid.
func procCPU(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return float64(ut+st) / 100 // USER_HZ
}
