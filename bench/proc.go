package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat. It is
// 100 on every Linux architecture Go supports (the kernel fixes USER_HZ for
// the ABI regardless of CONFIG_HZ).
const clockTicks = 100

// procStat is the part of /proc/<pid>/stat the harness needs.
type procStat struct {
	PID, PPID      int
	UTime, STime   uint64 // own CPU, clock ticks
	CUTime, CSTime uint64 // CPU of waited-for children, clock ticks
	Comm           string
}

// CPU is the process's own CPU time (user + system). Reaped children's
// time (cutime/cstime) is left out: the sampler counts every descendant
// under its own pid, and adding cutime too would count it twice.
func (s procStat) CPU() time.Duration {
	return time.Duration(s.UTime+s.STime) * time.Second / clockTicks
}

// parseStat parses the contents of /proc/<pid>/stat. The comm field is in
// parentheses and may itself contain spaces and parentheses, so the fields
// after it are located from the last ')'.
func parseStat(b []byte) (procStat, error) {
	var s procStat
	open := bytes.IndexByte(b, '(')
	closeIdx := bytes.LastIndexByte(b, ')')
	if open < 0 || closeIdx < open {
		return s, fmt.Errorf("malformed stat: %q", trunc(b))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return s, fmt.Errorf("malformed stat pid: %q", trunc(b))
	}
	s.PID = pid
	s.Comm = string(b[open+1 : closeIdx])
	// fields[0] is field 3 (state) of proc(5).
	fields := strings.Fields(string(b[closeIdx+1:]))
	if len(fields) < 15 {
		return s, fmt.Errorf("stat has %d fields after comm, want >= 15", len(fields))
	}
	num := func(i int) (uint64, error) { return strconv.ParseUint(fields[i], 10, 64) }
	ppid, err := strconv.Atoi(fields[1]) // field 4
	if err != nil {
		return s, fmt.Errorf("stat ppid: %w", err)
	}
	s.PPID = ppid
	for i, dst := range map[int]*uint64{11: &s.UTime, 12: &s.STime, 13: &s.CUTime, 14: &s.CSTime} { // fields 14-17
		v, err := num(i)
		if err != nil {
			return s, fmt.Errorf("stat field %d: %w", i+3, err)
		}
		*dst = v
	}
	return s, nil
}

func trunc(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// parseVmHWM returns the VmHWM (peak resident set size) of a
// /proc/<pid>/status file, in bytes.
func parseVmHWM(b []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmHWM line %q", line)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmHWM: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no VmHWM line (kernel thread or exited process)")
}

// descendants returns root and every live process below it, given a
// pid -> ppid table.
func descendants(root int, ppid map[int]int) []int {
	children := map[int][]int{}
	for p, pp := range ppid {
		children[pp] = append(children[pp], p)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// procTable reads pid -> stat for every process in procRoot (normally /proc).
func procTable(procRoot string) map[int]procStat {
	ents, _ := os.ReadDir(procRoot)
	out := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		s, err := parseStat(b)
		if err != nil {
			continue
		}
		out[pid] = s
	}
	return out
}

// treeSampler follows a process tree: the CPU time and the peak RSS of
// every process that was ever seen in it.
type treeSampler struct {
	root     int
	procRoot string

	mu   sync.Mutex
	cpu  map[int]time.Duration // last CPU seen per pid (monotonic while alive)
	hwm  map[int]uint64        // VmHWM per pid
	done chan struct{}
	wg   sync.WaitGroup
}

func newTreeSampler(root int) *treeSampler {
	return &treeSampler{root: root, procRoot: "/proc", cpu: map[int]time.Duration{}, hwm: map[int]uint64{}, done: make(chan struct{})}
}

// Start samples every interval until Stop.
func (t *treeSampler) Start(interval time.Duration) {
	t.Sample()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-t.done:
				return
			case <-tk.C:
				t.Sample()
			}
		}
	}()
}

// Stop ends sampling after one last sample (call it while the tree still
// runs, so the final CPU counters are read).
func (t *treeSampler) Stop() {
	close(t.done)
	t.wg.Wait()
	t.Sample()
}

// Sample reads the tree once.
func (t *treeSampler) Sample() {
	tab := procTable(t.procRoot)
	pp := make(map[int]int, len(tab))
	for pid, s := range tab {
		pp[pid] = s.PPID
	}
	if _, ok := tab[t.root]; !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, pid := range descendants(t.root, pp) {
		s := tab[pid]
		if c := s.CPU(); c > t.cpu[pid] {
			t.cpu[pid] = c
		}
		b, err := os.ReadFile(filepath.Join(t.procRoot, strconv.Itoa(pid), "status"))
		if err != nil {
			continue
		}
		if h, err := parseVmHWM(b); err == nil && h > t.hwm[pid] {
			t.hwm[pid] = h
		}
	}
}

// Totals is the summed CPU and summed per-process peak RSS of every
// process seen in the tree. A descendant that lived and died between two
// samples is missed; the contenders do not fork short-lived helpers.
func (t *treeSampler) Totals() (cpu time.Duration, peakRSS uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.cpu {
		cpu += c
	}
	for _, h := range t.hwm {
		peakRSS += h
	}
	return cpu, peakRSS
}
