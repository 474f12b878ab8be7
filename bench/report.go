package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

type report struct {
	Preset      string
	Section     string // of -out, and the raw results' name
	P           preset
	Command     string
	Started     time.Time
	Machine     string // one line, from MachineInfo and Versions
	MachineInfo machineInfo
	Versions    versions
	Settings    runSettings
	// RawJSON is the raw results' path relative to the Markdown file
	// (empty: not written next to it).
	RawJSON    string
	LoadTime   time.Duration
	LoadMBps   float64
	Results    []result
	Contenders []*contender
	Latency    *latencyOpts
	WAN        *wanDesc
}

type wanDesc struct {
	delay            time.Duration
	listen, upstream string
}

func (r report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Preset `%s`: %d records x %d B over %d partitions (%s)\n\n", r.Preset, r.P.records, r.P.size, r.P.partitions, r.Started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Command: `%s`\n\n", r.Command)
	if r.RawJSON != "" {
		fmt.Fprintf(&b, "Raw measurements (every figure unrounded, the settings and versions, and replay per partition when measured): [`%s`](%s).\n\n", r.RawJSON, r.RawJSON)
	}
	fmt.Fprintf(&b, "Machine: %s. Both Kafka clusters ran on the same machine, and other processes may have been running.\n\n", r.Machine)
	fmt.Fprintf(&b, "Source loaded in %.2f s (%.1f MB/s, acks=all, idempotent, uncompressed random values).\n\n", r.LoadTime.Seconds(), r.LoadMBps)
	if r.WAN != nil {
		fmt.Fprintf(&b, "Backlog replication through the latency proxy (contenders read the source through %s -> %s, %v added each way = %v RTT, latency only: no bandwidth limit or loss; the target is on loopback):\n\n", r.WAN.listen, r.WAN.upstream, r.WAN.delay, 2*r.WAN.delay)
	} else {
		b.WriteString("Backlog replication (loopback):\n\n")
	}
	b.WriteString(throughputTable(r.Results))
	if r.Latency != nil {
		fmt.Fprintf(&b, "\nEnd-to-end latency at a steady %.0f MB/s for %v (first %v not measured), produce timestamp to receipt by a read_committed consumer of the target:\n\n", r.Latency.rate, r.Latency.dur, r.Latency.warmup)
		b.WriteString(latencyTable(r.Results))
	}
	if hasReplay(r.Results) {
		b.WriteString("\nReplay after failover: before each contender started, groups committed on the source at head / 50 % / 10 % of every partition's end offset; after the backlog, each group's resume offset on the target is the newest checkpoint in `<source alias>.checkpoints.internal` (read after the time in the table, counted from the moment the backlog was complete; bound: godwit 2 x its checkpoint interval (1 s) + 15 s, MM2 its checkpoint interval + 60 s (offset.flush.interval.ms: MM2 writes an offset sync delayed by offset.lag.max only at its next offset commit) + 15 s, i.e. 135 s default, 80 s tuned; earlier if every partition was already exact). Replayed = target records at or after the resume offset whose source offset (from the value) is below the group's; skipped = source records at or after the group's offset with no copy at or after the resume offset.\n\n")
		b.WriteString(replayTable(r.Results))
	}
	b.WriteString("\nContender settings:\n\n")
	for _, c := range r.Contenders {
		fmt.Fprintf(&b, "- `%s`: %s\n", c.name, c.settings)
	}
	return b.String()
}

// replaceSection writes md between the markers of section id in path,
// replacing what was there, or appends the section (creating the file).
func replaceSection(path, id, md string) error {
	begin := "<!-- bench:" + id + " begin -->"
	end := "<!-- bench:" + id + " end -->"
	block := begin + "\n" + md + "\n" + end + "\n"
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.WriteFile(path, []byte(spliceSection(string(old), begin, end, block)), 0o644)
}

func spliceSection(doc, begin, end, block string) string {
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i >= 0 && j > i {
		rest := doc[j+len(end):]
		rest = strings.TrimPrefix(rest, "\n")
		return doc[:i] + block + rest
	}
	if doc != "" && !strings.HasSuffix(doc, "\n") {
		doc += "\n"
	}
	if doc != "" {
		doc += "\n"
	}
	return doc + block
}

func hasReplay(rs []result) bool {
	for _, r := range rs {
		if len(r.Replay) > 0 || r.ReplayErr != "" {
			return true
		}
	}
	return false
}
