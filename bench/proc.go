package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// What the benchmark reads of a process from /proc (Linux only).

// clockTick is USER_HZ, which is 100 on every Linux the proxy runs on.
const clockTick = 100

// procCPU is the user+system CPU time of the processes so far.
func procCPU(pids ...int) (time.Duration, error) {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		// The fields after the command name, which may hold spaces.
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		// f[0] is field 3 (state): utime is field 14, stime 15.
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}

// procStatus reads a "kB" line of /proc/<pid>/status (VmHWM, VmRSS) in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// resetPeakRSS makes VmHWM start again from the current RSS
// (clear_refs 5, Linux 4.0+).
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// children are the processes whose parent is pid (nginx's workers).
func children(pid int) []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			c, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
			out = append(out, c)
		}
	}
	return out
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "?"
}

// procCounts is the read and write system calls (syscr + syscw of
// /proc/<pid>/io) and the context switches (voluntary and not, summed
// over the threads) of the processes so far. Unlike CPU time they hardly
// depend on what else the machine is doing: a change in how the proxy
// moves bytes shows in them from one run to the next.
func procCounts(pids ...int) (syscalls, switches int64) {
	for _, pid := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				name, v, _ := strings.Cut(line, ":")
				if name == "syscr" || name == "syscw" {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					syscalls += n
				}
			}
		}
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				name, v, _ := strings.Cut(line, ":")
				if name == "voluntary_ctxt_switches" || name == "nonvoluntary_ctxt_switches" {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					switches += n
				}
			}
		}
	}
	return syscalls, switches
}

// machineTicks is the time all CPUs were busy and the time that passed
// (summed over CPUs), from the first line of /proc/stat, in clock ticks.
func machineTicks() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// busyMeter measures the share of the machine's CPU time that was busy
// (steal included: time the hypervisor gave to someone else) between
// start and the call of the function it returns.
func busyMeter() func() float64 {
	b0, t0 := machineTicks()
	return func() float64 {
		b1, t1 := machineTicks()
		if t1 <= t0 {
			return 0
		}
		return float64(b1-b0) / float64(t1-t0)
	}
}
