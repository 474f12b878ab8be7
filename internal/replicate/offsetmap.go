package replicate

import (
	"cmp"
	"slices"

	"github.com/godwit/godwit/internal/flowstate"
)

// mapping is one source record's place on the target.
type mapping struct {
	src, tgt int64
	origin   bool
}

// buildRuns turns per-record mappings into runs (flowstate.OffsetRun).
func buildRuns(ms []mapping) []flowstate.OffsetRun {
	// Produce results of a partition nearly always arrive in offset
	// order: check that first (one pass, no allocation) and sort only
	// when they did not. slices.SortFunc rather than sort.Slice: no
	// reflection, no allocation.
	for i := 1; i < len(ms); i++ {
		if ms[i].src < ms[i-1].src {
			slices.SortFunc(ms, func(a, b mapping) int { return cmp.Compare(a.src, b.src) })
			break
		}
	}
	var runs []flowstate.OffsetRun
	for _, m := range ms {
		if n := len(runs); n > 0 {
			r := &runs[n-1]
			if r.Origin == m.origin && m.src == r.SourceFirst+r.Count && m.tgt == r.TargetFirst+r.Count {
				r.Count++
				continue
			}
		}
		runs = append(runs, flowstate.OffsetRun{SourceFirst: m.src, TargetFirst: m.tgt, Count: 1, Origin: m.origin})
	}
	return runs
}
