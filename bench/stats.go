package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// percentile returns the p-th percentile (0..100) of xs by the
// nearest-rank method; xs is sorted in place. Zero for no samples.
func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
	rank := int(math.Ceil(p / 100 * float64(len(xs))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(xs) {
		rank = len(xs)
	}
	return xs[rank-1]
}

// result is one contender's measurements.
type result struct {
	Name    string
	Err     string
	Elapsed time.Duration // contender process start -> all records visible
	Records int64         // records the source held
	Bytes   int64         // payload bytes (key + value) of those records
	Counted int64         // records a read_committed consumer counted on the target (-1: not verified)
	CPU     time.Duration
	PeakRSS uint64

	LatencyN        int
	LatencyP50      time.Duration
	LatencyP99      time.Duration
	LatencyMax      time.Duration
	LatencyRateMBps float64 // achieved produce rate of the latency phase

	Replay       []replayRow // per depth (replay.go)
	ReplayErr    string
	ReplayRead   time.Duration // checkpoints read this long after the backlog was complete
	ReplaySettle time.Duration // the bound on that wait
}

func (r result) MBps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds()
}

func (r result) RecPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// CPUPerGB is CPU seconds per 10^9 payload bytes.
func (r result) CPUPerGB() float64 {
	if r.Bytes == 0 {
		return 0
	}
	return r.CPU.Seconds() / (float64(r.Bytes) / 1e9)
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func fmtMiB(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// throughputTable renders the backlog results as a Markdown table.
func throughputTable(rs []result) string {
	var b strings.Builder
	b.WriteString("| contender | time to replicate | MB/s | records/s | CPU s per GB | peak RSS | records on target (read_committed) |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		if r.Err != "" {
			fmt.Fprintf(&b, "| %s | failed: %s | | | | | |\n", r.Name, strings.ReplaceAll(r.Err, "|", "/"))
			continue
		}
		counted := "not checked"
		if r.Counted >= 0 {
			counted = fmt.Sprintf("%d", r.Counted)
		}
		fmt.Fprintf(&b, "| %s | %.2f s | %.1f | %.0f | %.1f | %s | %s |\n",
			r.Name, r.Elapsed.Seconds(), r.MBps(), r.RecPerSec(), r.CPUPerGB(), fmtMiB(r.PeakRSS), counted)
	}
	return b.String()
}

// latencyTable renders the steady-load latency results.
func latencyTable(rs []result) string {
	var b strings.Builder
	b.WriteString("| contender | samples | achieved load | p50 | p99 | max |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		if r.LatencyN == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %.1f MB/s | %s | %s | %s |\n",
			r.Name, r.LatencyN, r.LatencyRateMBps, fmtDur(r.LatencyP50), fmtDur(r.LatencyP99), fmtDur(r.LatencyMax))
	}
	return b.String()
}
