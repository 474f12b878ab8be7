package workload

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// CheckConfig configures Check and WaitFor.
type CheckConfig struct {
	// Topic is the target topic. Target partition p must hold source
	// partition p.
	Topic string
	// Partitions is the number of partitions the target must have;
	// 0 means the ledger's partition count.
	Partitions int32
	// ReadCommitted reads the target read_committed (the default, see
	// ReadUncommitted).
	ReadCommitted bool
	// ReadUncommitted reads the target read_uncommitted; it takes
	// precedence over ReadCommitted. (A zero CheckConfig reads committed.)
	ReadUncommitted bool
	// IgnoreHeaders lists header keys (added by the replicator) skipped
	// when comparing headers, on both sides. An entry ending in "*" is a
	// prefix match, e.g. "godwit-*".
	IgnoreHeaders []string
	// AllowDuplicates is at-least-once mode: duplicates are counted but
	// allowed; first occurrences must still be in order and nothing lost.
	AllowDuplicates bool
	// IgnoreTimestamps skips timestamp comparison (e.g. LogAppendTime
	// targets).
	IgnoreTimestamps bool
	// OtherRunsUnexpected counts workload records of other run ids as
	// Unexpected instead of just OtherRuns.
	OtherRunsUnexpected bool
}

// PartitionReport is the per-partition part of a Report.
type PartitionReport struct {
	Expected, Found, Missing, Duplicates, OutOfOrder, Mismatched, Unexpected int64
	AbortedFound, UncertainFound, OtherRuns                                  int64
	// Target offsets read: [StartOffset, EndOffset); Records is the number
	// of data records read.
	StartOffset, EndOffset, Records int64
}

// Report is the result of comparing a target topic with a ledger.
type Report struct {
	// Expected acknowledged records, Found distinct ones of them on the target.
	Expected, Found int64
	// Missing acknowledged records; extra copies (Duplicates); records not
	// in the longest in-order run of first occurrences (OutOfOrder);
	// records whose key, value, headers or timestamp differ (Mismatched);
	// records that are not from this run's acknowledged, aborted or
	// uncertain sets, including misrouted ones (Unexpected).
	Missing, Duplicates, OutOfOrder, Mismatched, Unexpected int64
	// AbortedFound counts records of aborted source transactions on the
	// target (a failure).
	AbortedFound int64
	// UncertainFound counts records whose produce outcome was unknown to
	// the producer (not a failure: the source may have kept them).
	UncertainFound int64
	// OtherRuns counts workload records of other run ids (not a failure
	// unless CheckConfig.OtherRunsUnexpected).
	OtherRuns int64
	// DuplicatesAllowed records CheckConfig.AllowDuplicates.
	DuplicatesAllowed bool

	PerPartition map[int32]PartitionReport
	// Problems lists the first MaxProblems problems in human-readable form.
	Problems []string
	// MoreProblems counts problems left out of Problems.
	MoreProblems int
}

// MaxProblems bounds Report.Problems.
const MaxProblems = 20

// OK reports whether the target is an exact copy of the ledger.
func (r Report) OK() bool {
	return r.Missing == 0 && r.OutOfOrder == 0 && r.Mismatched == 0 &&
		r.Unexpected == 0 && r.AbortedFound == 0 && r.Found == r.Expected &&
		(r.Duplicates == 0 || r.DuplicatesAllowed)
}

// String summarises the report.
func (r Report) String() string {
	var b strings.Builder
	status := "OK"
	if !r.OK() {
		status = "FAIL"
	}
	fmt.Fprintf(&b, "%s: expected=%d found=%d missing=%d duplicates=%d out_of_order=%d mismatched=%d unexpected=%d aborted_found=%d uncertain_found=%d other_runs=%d",
		status, r.Expected, r.Found, r.Missing, r.Duplicates, r.OutOfOrder, r.Mismatched, r.Unexpected, r.AbortedFound, r.UncertainFound, r.OtherRuns)
	for _, p := range r.Problems {
		b.WriteString("\n  ")
		b.WriteString(p)
	}
	if r.MoreProblems > 0 {
		fmt.Fprintf(&b, "\n  ... and %d more", r.MoreProblems)
	}
	return b.String()
}

func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) < MaxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	} else {
		r.MoreProblems++
	}
}

func (cfg CheckConfig) readCommitted() bool { return !cfg.ReadUncommitted }

// Check reads the target topic from the start up to its current end (last
// stable offset when reading committed, else high watermark) and compares
// it with the ledger. target is a plain client for the target cluster; Check
// issues its own Fetch requests and does not consume through it. Reading
// is bounded by ctx. The error is non-nil if the target could not be read
// to its end; the report then covers what was read.
func Check(ctx context.Context, target *kgo.Client, ledger *Ledger, cfg CheckConfig) (Report, error) {
	rd := newReader(target, cfg.Topic, cfg.readCommitted())
	err := rd.catchUp(ctx)
	return evaluate(ledger.snapshot(), rd, cfg), err
}

// WaitFor reads the target incrementally (only new data each round) every
// poll until the report is OK or ctx ends, and returns the last report. If
// ctx ends first the error wraps ctx.Err() (or the last read error).
func WaitFor(ctx context.Context, target *kgo.Client, ledger *Ledger, cfg CheckConfig, poll time.Duration) (Report, error) {
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	rd := newReader(target, cfg.Topic, cfg.readCommitted())
	for {
		err := rd.catchUp(ctx)
		rep := evaluate(ledger.snapshot(), rd, cfg)
		if err == nil && rep.OK() {
			return rep, nil
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = ctx.Err()
			}
			return rep, fmt.Errorf("workload: %s did not converge: %w", cfg.Topic, err)
		case <-t.C:
		}
	}
}

type seqState struct {
	idx     int // index in acked, or -1
	aborted bool
	uncert  bool
}

func evaluate(s snapshot, rd *reader, cfg CheckConfig) Report {
	rep := Report{PerPartition: make(map[int32]PartitionReport), DuplicatesAllowed: cfg.AllowDuplicates}
	for _, n := range rd.notes {
		rep.problem("%s", n)
	}
	want := cfg.Partitions
	if want == 0 {
		want = s.partitions
	}
	if got := int32(len(rd.parts)); got < want && len(rd.parts) > 0 {
		rep.problem("target %s has %d partitions, want %d", cfg.Topic, got, want)
	}
	parts := make(map[int32]bool)
	for p := int32(0); p < s.partitions; p++ {
		parts[p] = true
	}
	for p := range rd.parts {
		parts[p] = true
	}
	order := make([]int32, 0, len(parts))
	for p := range parts {
		order = append(order, p)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })

	for _, p := range order {
		var pr PartitionReport
		var acked []Record
		seqs := make(map[int64]seqState)
		if p < s.partitions {
			acked = s.acked[p]
			for i, r := range acked {
				seqs[r.Seq] = seqState{idx: i}
			}
			for _, r := range s.aborted[p] {
				seqs[r.Seq] = seqState{idx: -1, aborted: true}
			}
			for _, r := range s.uncertain[p] {
				seqs[r.Seq] = seqState{idx: -1, uncert: true}
			}
		}
		pr.Expected = int64(len(acked))
		var recs []*kgo.Record
		if st := rd.parts[p]; st != nil {
			recs = st.records
			pr.StartOffset, pr.EndOffset, pr.Records = st.start, st.next, int64(len(recs))
		}

		seen := make([]bool, len(acked))
		var firsts []int      // ledger indexes of first occurrences, target order
		var firstRecs []int64 // their target offsets
		for _, r := range recs {
			id, ok := Identify(r.Key, r.Value)
			switch {
			case !ok:
				pr.Unexpected++
				rep.problem("partition %d offset %d: unrecognised record (key %q)", p, r.Offset, trunc(r.Key))
				continue
			case id.Run != s.run:
				pr.OtherRuns++
				if cfg.OtherRunsUnexpected {
					pr.Unexpected++
					rep.problem("partition %d offset %d: record of other run %016x", p, r.Offset, id.Run)
				}
				continue
			case id.Partition != p:
				pr.Unexpected++
				rep.problem("partition %d offset %d: record of partition %d seq %d (misrouted)", p, r.Offset, id.Partition, id.Seq)
				continue
			}
			ss, ok := seqs[id.Seq]
			switch {
			case !ok:
				pr.Unexpected++
				rep.problem("partition %d seq %d (offset %d): never produced by this run", p, id.Seq, r.Offset)
				continue
			case ss.aborted:
				pr.AbortedFound++
				rep.problem("partition %d seq %d (offset %d): record of an aborted transaction", p, id.Seq, r.Offset)
				continue
			case ss.uncert:
				pr.UncertainFound++
				continue
			}
			want := acked[ss.idx]
			if diffs := compare(want, r, cfg); len(diffs) > 0 {
				pr.Mismatched++
				rep.problem("partition %d seq %d (offset %d): %s", p, id.Seq, r.Offset, strings.Join(diffs, "; "))
			}
			if seen[ss.idx] {
				pr.Duplicates++
				if !cfg.AllowDuplicates {
					rep.problem("partition %d seq %d (offset %d): duplicate", p, id.Seq, r.Offset)
				}
				continue
			}
			seen[ss.idx] = true
			pr.Found++
			firsts = append(firsts, ss.idx)
			firstRecs = append(firstRecs, r.Offset)
		}
		inOrder := lisMembers(firsts)
		for i, ok := range inOrder {
			if !ok {
				pr.OutOfOrder++
				rep.problem("partition %d seq %d (offset %d): out of order", p, acked[firsts[i]].Seq, firstRecs[i])
			}
		}
		for i, ok := range seen {
			if !ok {
				pr.Missing++
				rep.problem("partition %d seq %d: missing", p, acked[i].Seq)
			}
		}
		rep.PerPartition[p] = pr
		rep.Expected += pr.Expected
		rep.Found += pr.Found
		rep.Missing += pr.Missing
		rep.Duplicates += pr.Duplicates
		rep.OutOfOrder += pr.OutOfOrder
		rep.Mismatched += pr.Mismatched
		rep.Unexpected += pr.Unexpected
		rep.AbortedFound += pr.AbortedFound
		rep.UncertainFound += pr.UncertainFound
		rep.OtherRuns += pr.OtherRuns
	}
	return rep
}

func trunc(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// compare returns how got differs from want.
func compare(want Record, got *kgo.Record, cfg CheckConfig) []string {
	var d []string
	if !sameBytes(want.Key, got.Key) {
		d = append(d, fmt.Sprintf("key differs (want %s, got %s)", show(want.Key), show(got.Key)))
	}
	if !sameBytes(want.Value, got.Value) {
		d = append(d, fmt.Sprintf("value differs (want %s, got %s)", show(want.Value), show(got.Value)))
	}
	wh, gh := filterHeaders(want.Headers, cfg.IgnoreHeaders), filterHeaders(got.Headers, cfg.IgnoreHeaders)
	if !sameHeaders(wh, gh) {
		d = append(d, fmt.Sprintf("headers differ (want %s, got %s)", showHeaders(wh), showHeaders(gh)))
	}
	if !cfg.IgnoreTimestamps && want.Timestamp.UnixMilli() != got.Timestamp.UnixMilli() {
		d = append(d, fmt.Sprintf("timestamp differs (want %d, got %d)", want.Timestamp.UnixMilli(), got.Timestamp.UnixMilli()))
	}
	return d
}

// sameBytes distinguishes nil (null) from empty: a tombstone must stay a
// tombstone and a null key must stay null.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func show(b []byte) string {
	if b == nil {
		return "null"
	}
	if len(b) > 40 {
		return fmt.Sprintf("%q...(%d bytes)", b[:40], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func ignored(key string, ignore []string) bool {
	for _, ig := range ignore {
		if p, ok := strings.CutSuffix(ig, "*"); ok {
			if strings.HasPrefix(key, p) {
				return true
			}
		} else if key == ig {
			return true
		}
	}
	return false
}

func filterHeaders(hs []kgo.RecordHeader, ignore []string) []kgo.RecordHeader {
	if len(ignore) == 0 {
		return hs
	}
	out := make([]kgo.RecordHeader, 0, len(hs))
	for _, h := range hs {
		if !ignored(h.Key, ignore) {
			out = append(out, h)
		}
	}
	return out
}

// sameHeaders compares headers in order. Header values are compared by
// bytes: the Kafka record format cannot be relied on to keep a null header
// value distinct from an empty one across clients.
func sameHeaders(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func showHeaders(hs []kgo.RecordHeader) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("%s=%s", h.Key, show(h.Value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// lisMembers marks the members of one longest strictly increasing
// subsequence of xs (O(n log n)); the others are out of order.
func lisMembers(xs []int) []bool {
	tails := []int{} // index into xs of the smallest tail of each length
	prev := make([]int, len(xs))
	for i, x := range xs {
		j := sort.Search(len(tails), func(k int) bool { return xs[tails[k]] >= x })
		if j > 0 {
			prev[i] = tails[j-1]
		} else {
			prev[i] = -1
		}
		if j == len(tails) {
			tails = append(tails, i)
		} else {
			tails[j] = i
		}
	}
	in := make([]bool, len(xs))
	if len(tails) > 0 {
		for i := tails[len(tails)-1]; i >= 0; i = prev[i] {
			in[i] = true
		}
	}
	return in
}
