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

// result is one contender's measurements. The JSON names are the raw
// results' (-json, rawjson.go): durations in nanoseconds, the unit in the
// name, so nothing is rounded.
type result struct {
	Name    string        `json:"name"`
	Err     string        `json:"error,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"` // contender process start -> all records visible
	Records int64         `json:"records"`    // records the source held
	Bytes   int64         `json:"bytes"`      // payload bytes (key + value) of those records
	Counted int64         `json:"counted"`    // records a read_committed consumer counted on the target (-1: not verified)
	CPU     time.Duration `json:"cpu_ns"`
	PeakRSS uint64        `json:"peak_rss_bytes"`

	LatencyN        int           `json:"latency_samples"`
	LatencyP50      time.Duration `json:"latency_p50_ns"`
	LatencyP99      time.Duration `json:"latency_p99_ns"`
	LatencyMax      time.Duration `json:"latency_max_ns"`
	LatencyRateMBps float64       `json:"latency_achieved_mb_per_s"` // achieved produce rate of the latency phase

	Replay       []replayRow   `json:"replay,omitempty"` // per depth (replay.go)
	ReplayErr    string        `json:"replay_error,omitempty"`
	ReplayRead   time.Duration `json:"replay_read_after_ns"` // checkpoints read this long after the backlog was complete
	ReplaySettle time.Duration `json:"replay_read_bound_ns"` // the bound on that wait
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
