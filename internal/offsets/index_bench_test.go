package offsets

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/godwit/godwit/internal/flowstate"
)

// runSize is the records per run of the benchmark indexes: one commit of
// a partition at 1 KiB records and the default 1 MiB batch.
const runSize = 1000

// benchIndex builds the offset map of a partition replicated exactly
// once for n commits: each commit is one run, and godwit's transaction
// marker after it is a one-offset gap on the target.
func benchIndex(n int) *PartitionIndex {
	ix := &PartitionIndex{Topic: "orders.v1", TargetTopic: "us-west-2.orders.v1", Partition: 17}
	ix.runs = make([]Run, 0, n)
	for i := range int64(n) {
		ix.Add(Run{SourceFirst: i * runSize, TargetFirst: i * (runSize + 1), Count: runSize})
	}
	if len(ix.runs) != n {
		panic(fmt.Sprintf("benchIndex: %d runs, want %d", len(ix.runs), n))
	}
	return ix
}

var benchSizes = []int{10_000, 1_000_000}

// BenchmarkIndexAdd measures appending to a partition's in-memory offset
// map (PartitionIndex.Add) as the store does when it reads new offset-map
// entries: "new-run" a commit after godwit's marker (the usual case),
// "merge" one contiguous on both sides (extends the last run), "recopy"
// an at-least-once re-copy of the last commit to new target offsets
// (replaces the last run).
func BenchmarkIndexAdd(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("new-run/runs=%d", n), func(b *testing.B) {
			ix := benchIndex(n)
			// Millions of iterations would grow the index by gigabytes:
			// it goes back to n runs every 64Ki appends, keeping its
			// capacity, so this measures the append, not slice growth
			// (amortised O(1), paid once as a real index grows).
			const reset = 1 << 16
			b.ReportAllocs()
			for b.Loop() {
				if len(ix.runs) == n+reset {
					ix.runs = ix.runs[:n]
				}
				last := ix.runs[len(ix.runs)-1]
				ix.Add(Run{SourceFirst: last.SourceFirst + runSize, TargetFirst: last.TargetFirst + runSize + 1, Count: runSize})
			}
			if len(ix.runs) <= n {
				b.Fatalf("%d runs after appending to %d", len(ix.runs), n)
			}
		})
		b.Run(fmt.Sprintf("merge/runs=%d", n), func(b *testing.B) {
			ix := benchIndex(n)
			b.ReportAllocs()
			for b.Loop() {
				last := ix.runs[len(ix.runs)-1]
				ix.Add(Run{SourceFirst: last.SourceFirst + last.Count, TargetFirst: last.TargetFirst + last.Count, Count: runSize})
			}
			if len(ix.runs) != n {
				b.Fatalf("%d runs after merging into %d", len(ix.runs), n)
			}
		})
		b.Run(fmt.Sprintf("recopy/runs=%d", n), func(b *testing.B) {
			ix := benchIndex(n)
			b.ReportAllocs()
			for b.Loop() {
				last := ix.runs[len(ix.runs)-1]
				ix.Add(Run{SourceFirst: last.SourceFirst, TargetFirst: last.TargetFirst + 5*runSize, Count: runSize})
			}
			if len(ix.runs) != n {
				b.Fatalf("%d runs after re-copying the last of %d", len(ix.runs), n)
			}
		})
	}
}

// BenchmarkIndexLoadEntry measures what the store does per offset-map
// record it reads: decode the JSON value and add its runs.
func BenchmarkIndexLoadEntry(b *testing.B) {
	ix := benchIndex(10_000)
	e := &flowstate.OffsetMapEntry{Version: 1, Topic: ix.Topic, TargetTopic: ix.TargetTopic, Partition: ix.Partition,
		Runs: []Run{{SourceFirst: 10_000 * runSize, TargetFirst: 10_000 * (runSize + 1), Count: runSize}}}
	val, err := json.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(val)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := flowstate.DecodeOffsetMapEntry(val)
		if err != nil {
			b.Fatal(err)
		}
		ix.AddEntry(e) // the same range again: replaces, so the index stays at its size
	}
	if len(ix.runs) != 10_001 {
		b.Fatalf("%d runs, want 10001", len(ix.runs))
	}
}

// BenchmarkTranslate measures translating one group offset (Translate,
// a binary search over the partition's runs) at offsets spread over the
// whole replicated range.
func BenchmarkTranslate(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("runs=%d", n), func(b *testing.B) {
			runs := benchIndex(n).Runs()
			next := int64(n) * runSize
			// Group offsets spread over the range (a fixed LCG, so every
			// run of the benchmark asks the same questions).
			qs := make([]int64, 4096)
			x := uint64(42)
			for i := range qs {
				x = x*6364136223846793005 + 1442695040888963407
				qs[i] = int64(x>>1) % (next + 1)
			}
			b.ReportAllocs()
			var i int
			var sum int64
			for b.Loop() {
				s := qs[i&(len(qs)-1)]
				i++
				tr := Translate(runs, s, next, 0)
				// Exact by construction: source s lands after s/runSize
				// markers (one per full run consumed before it).
				if want := s + (s-1)/runSize; s > 0 && tr.Target != want {
					b.Fatalf("Translate(%d) = %d, want %d", s, tr.Target, want)
				}
				sum += tr.Target
			}
			if sum == 0 {
				b.Fatal("no translations")
			}
		})
	}
}
