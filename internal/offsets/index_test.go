package offsets

import (
	"reflect"
	"testing"

	"github.com/godwit/godwit/internal/flowstate"
)

func run(sf, tf, n int64) Run { return Run{SourceFirst: sf, TargetFirst: tf, Count: n} }
func originRun(sf, tf, n int64) Run {
	return Run{SourceFirst: sf, TargetFirst: tf, Count: n, Origin: true}
}

func TestTranslate(t *testing.T) {
	// Source 0..9 copied in two transactions (target marker at 5);
	// source 10 is a transaction marker, 11..13 aborted, 14 marker;
	// 15..19 copied after the target's marker at 11 and another at 17.
	txn := []Run{run(0, 0, 5), run(5, 6, 5), run(15, 12, 5)}
	// Compacted source: 0, 3, 4, 9 survive.
	compacted := []Run{run(0, 0, 1), run(3, 1, 2), run(9, 3, 1)}
	// Replication started at source 100 (start: latest), target log
	// start 0.
	late := []Run{run(100, 0, 10)}
	// Active-active identical: source 0..4 originated on the target
	// (already at target 0..4), 5..7 copied to target 6..8.
	origin := []Run{originRun(0, 0, 5), run(5, 6, 3)}
	for _, c := range []struct {
		name           string
		runs           []Run
		s, next, start int64
		want           int64
		unrepl         int64
		wantCase       Case
	}{
		{"empty partition at 0", nil, 0, 0, 0, 0, 0, CaseEmpty},
		{"nothing mapped, target start moved", nil, 0, 0, 7, 7, 0, CaseEmpty},
		{"nothing mapped, group ahead", nil, 5, 0, 0, 0, 5, CaseAhead},
		{"at start", txn, 0, 20, 0, 0, 0, CaseBeforeFirst},
		{"one consumed", txn, 1, 20, 0, 1, 0, CaseAfter},
		{"end of first run", txn, 5, 20, 0, 5, 0, CaseAfter},    // target 5 is a marker: the consumer skips it
		{"first of second run", txn, 6, 20, 0, 7, 0, CaseAfter}, // consumed source 5 = target 6
		{"at source marker", txn, 10, 20, 0, 11, 0, CaseAfter},  // consumed source 9 = target 10
		{"inside aborted range", txn, 12, 20, 0, 11, 0, CaseAfter},
		{"after aborted range", txn, 15, 20, 0, 11, 0, CaseAfter}, // next record read: source 15 = target 12
		{"inside third run", txn, 17, 20, 0, 14, 0, CaseAfter},
		{"at replicated end", txn, 20, 20, 0, 17, 0, CaseAfter},
		{"ahead of replication", txn, 25, 20, 0, 17, 5, CaseAhead},
		{"ahead, range ends in gap", txn, 25, 22, 0, 17, 3, CaseAhead},
		{"compacted: at 1 (gap 1..2)", compacted, 1, 10, 0, 1, 0, CaseAfter},
		{"compacted: at 3", compacted, 3, 10, 0, 1, 0, CaseAfter},
		{"compacted: at 4", compacted, 4, 10, 0, 2, 0, CaseAfter},
		{"compacted: at 6", compacted, 6, 10, 0, 3, 0, CaseAfter},
		{"compacted: at 10", compacted, 10, 10, 0, 4, 0, CaseAfter},
		{"below replicated range", late, 40, 110, 0, 0, 0, CaseBeforeFirst},
		{"below replicated range, start above", late, 40, 110, 3, 3, 0, CaseBeforeFirst},
		{"first of late range", late, 100, 110, 0, 0, 0, CaseBeforeFirst},
		{"inside late range", late, 105, 110, 0, 5, 0, CaseAfter},
		{"pruned below target start", txn, 3, 20, 6, 6, 0, CaseAfter},
		{"origin: inside", origin, 3, 8, 0, 3, 0, CaseAfter},
		{"origin: last origin consumed", origin, 5, 8, 0, 5, 0, CaseAfter},
		{"origin: copied after origin", origin, 6, 8, 0, 7, 0, CaseAfter},
		{"origin: end", origin, 8, 8, 0, 9, 0, CaseAfter},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Translate(c.runs, c.s, c.next, c.start)
			want := Translation{Target: c.want, Unreplicated: c.unrepl, Case: c.wantCase}
			if got != want {
				t.Fatalf("Translate(s=%d, next=%d, start=%d) = %+v, want %+v", c.s, c.next, c.start, got, want)
			}
		})
	}
}

// TestTranslateExactness checks the defining property on generated maps:
// every mapped source record below s lands before T, every one at or
// after s lands at or after T.
func TestTranslateExactness(t *testing.T) {
	var runs []Run
	var src, tgt int64
	for i := range 200 {
		n := int64(i%7 + 1)
		runs = append(runs, run(src, tgt, n))
		src += n + int64(i%3)     // source gaps: markers, aborted, compacted
		tgt += n + 1 + int64(i%2) // target gaps: godwit's markers, other writers
	}
	next := src
	for s := int64(0); s <= next+3; s++ {
		tr := Translate(runs, s, next, 0)
		for _, r := range runs {
			for k := range r.Count {
				so, to := r.SourceFirst+k, r.TargetFirst+k
				if so < s && to >= tr.Target {
					t.Fatalf("s=%d: consumed source %d (target %d) is not before T=%d", s, so, to, tr.Target)
				}
				if so >= s && to < tr.Target {
					t.Fatalf("s=%d: unconsumed source %d (target %d) is before T=%d", s, so, to, tr.Target)
				}
			}
		}
	}
}

func TestIndexAdd(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []Run
		want []Run
	}{
		{"append", []Run{run(0, 0, 2), run(3, 3, 1)}, []Run{run(0, 0, 2), run(3, 3, 1)}},
		{"merge contiguous", []Run{run(0, 0, 2), run(2, 2, 3)}, []Run{run(0, 0, 5)}},
		{"no merge across target gap", []Run{run(0, 0, 2), run(2, 3, 3)}, []Run{run(0, 0, 2), run(2, 3, 3)}},
		{"no merge of origin with copied", []Run{run(0, 0, 2), originRun(2, 2, 3)}, []Run{run(0, 0, 2), originRun(2, 2, 3)}},
		{"later entry replaces same range", []Run{run(0, 0, 5), run(0, 10, 5)}, []Run{run(0, 10, 5)}},
		{"later entry splits an earlier run", []Run{run(0, 0, 10), run(3, 20, 2)}, []Run{run(0, 0, 3), run(3, 20, 2), run(5, 5, 5)}},
		{"later entry covers several", []Run{run(0, 0, 3), run(4, 4, 3), run(8, 8, 3), run(2, 30, 7)}, []Run{run(0, 0, 2), run(2, 30, 7), run(9, 9, 2)}},
		{"out of order", []Run{run(5, 5, 2), run(0, 0, 2)}, []Run{run(0, 0, 2), run(5, 5, 2)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ix PartitionIndex
			for _, r := range c.in {
				ix.Add(r)
			}
			if !reflect.DeepEqual(ix.Runs(), c.want) {
				t.Fatalf("runs = %+v, want %+v", ix.Runs(), c.want)
			}
		})
	}
}

func TestPruneBelow(t *testing.T) {
	var ix PartitionIndex
	ix.AddEntry(&flowstate.OffsetMapEntry{Runs: []Run{run(0, 0, 5)}})
	ix.AddEntry(&flowstate.OffsetMapEntry{Runs: []Run{run(5, 6, 5)}})
	ix.AddEntry(&flowstate.OffsetMapEntry{Runs: []Run{run(10, 12, 5)}})
	dropped := ix.PruneBelow(8)
	if !reflect.DeepEqual(dropped, []int64{0}) {
		t.Fatalf("dropped %v, want [0]", dropped)
	}
	if want := []Run{run(5, 6, 5), run(10, 12, 5)}; !reflect.DeepEqual(ix.Runs(), want) {
		t.Fatalf("runs = %+v, want %+v", ix.Runs(), want)
	}
	if got := Translate(ix.Runs(), 2, 15, 8); got.Target != 8 {
		t.Fatalf("translation below the pruned range = %d, want the target log start 8", got.Target)
	}
}
