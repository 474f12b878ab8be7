// Package offsets translates consumer-group offsets exactly from a flow's
// source cluster to its target, using the offset map the replicator writes
// on the target in the same transaction as the data; writes MirrorMaker 2
// compatible checkpoints; and commits translated offsets to idle groups on
// the target (group offset sync).
package offsets

import (
	"slices"
	"sort"

	"github.com/godwit/godwit/internal/flowstate"
)

// Run is one offset-map run (see flowstate.OffsetRun).
type Run = flowstate.OffsetRun

// PartitionIndex is the in-memory offset map of one source partition:
// runs sorted by source offset, never overlapping. Built from the flow's
// offset map topic; a later entry for the same source offsets replaces an
// earlier one (a re-copy in at-least-once mode).
type PartitionIndex struct {
	Topic       string
	TargetTopic string
	Partition   int32
	runs        []Run
	// entries are the offset map records that built the index (key and
	// highest target offset), so pruning can delete them.
	entries []entryRef
}

type entryRef struct {
	firstSource int64 // the key's source offset
	maxTarget   int64 // highest target offset any of its runs describes
}

// Runs returns the index's runs (sorted by source offset; do not modify).
func (ix *PartitionIndex) Runs() []Run { return ix.runs }

// Add inserts a run. Contiguous runs (both sides) of the same kind merge.
func (ix *PartitionIndex) Add(r Run) {
	if r.Count <= 0 {
		return
	}
	n := len(ix.runs)
	if n == 0 || r.SourceFirst > ix.runs[n-1].SourceLast() {
		if n > 0 {
			last := &ix.runs[n-1]
			if last.Origin == r.Origin && r.SourceFirst == last.SourceFirst+last.Count && r.TargetFirst == last.TargetFirst+last.Count {
				last.Count += r.Count
				return
			}
		}
		ix.runs = append(ix.runs, r)
		return
	}
	// Overlap (or out of order): r wins over what it overlaps.
	lo := sort.Search(n, func(i int) bool { return ix.runs[i].SourceLast() >= r.SourceFirst })
	hi := sort.Search(n, func(i int) bool { return ix.runs[i].SourceFirst > r.SourceLast() })
	repl := make([]Run, 0, 3)
	if lo < hi && ix.runs[lo].SourceFirst < r.SourceFirst {
		a := ix.runs[lo]
		a.Count = r.SourceFirst - a.SourceFirst
		repl = append(repl, a)
	}
	repl = append(repl, r)
	if lo < hi && ix.runs[hi-1].SourceLast() > r.SourceLast() {
		b := ix.runs[hi-1]
		d := r.SourceLast() + 1 - b.SourceFirst
		b.SourceFirst += d
		b.TargetFirst += d
		b.Count -= d
		repl = append(repl, b)
	}
	ix.runs = slices.Replace(ix.runs, lo, hi, repl...)
}

// AddEntry adds every run of an offset map entry.
func (ix *PartitionIndex) AddEntry(e *flowstate.OffsetMapEntry) {
	if len(e.Runs) == 0 {
		return
	}
	ref := entryRef{firstSource: e.Runs[0].SourceFirst, maxTarget: -1}
	for _, r := range e.Runs {
		ix.Add(r)
		ref.maxTarget = max(ref.maxTarget, r.TargetFirst+r.Count-1)
	}
	ix.entries = append(ix.entries, ref)
}

// PruneBelow drops runs (and remembered entries) that describe only
// target offsets below targetStart, the target partition's log start: the
// records are gone from the target. It returns the first source offsets
// (the keys) of the entries dropped.
func (ix *PartitionIndex) PruneBelow(targetStart int64) []int64 {
	runs := ix.runs[:0]
	for _, r := range ix.runs {
		if r.TargetFirst+r.Count > targetStart {
			runs = append(runs, r)
		}
	}
	clear(ix.runs[len(runs):])
	ix.runs = runs
	var dropped []int64
	keep := ix.entries[:0]
	for _, e := range ix.entries {
		if e.maxTarget < targetStart {
			dropped = append(dropped, e.firstSource)
			continue
		}
		keep = append(keep, e)
	}
	ix.entries = keep
	return dropped
}

// Translation is where a source group offset lands on the target.
type Translation struct {
	// Target is the target offset to commit: every source record below
	// the source offset that is on the target is before it, every one at
	// or after it is at or after it.
	Target int64
	// Unreplicated is how many source offsets the group consumed beyond
	// the replicated range (source offset - replicated end). It is an
	// upper bound of the records missing on the target: transaction
	// markers and aborted records in that range count too.
	Unreplicated int64
	// Case says which rule applied, for logs and tests.
	Case Case
}

// Case names the translation rule applied.
type Case string

// Translation cases.
const (
	// CaseAfter: the group consumed at least one mapped record; Target is
	// just after the last one.
	CaseAfter Case = "after_last_consumed"
	// CaseBeforeFirst: the group consumed no mapped record; Target is the
	// first mapped record at or after the source offset.
	CaseBeforeFirst Case = "before_first_mapped"
	// CaseEmpty: nothing is mapped for the partition; Target is the
	// target log start.
	CaseEmpty Case = "nothing_mapped"
	// CaseAhead: the group is beyond the replicated range.
	CaseAhead Case = "ahead_of_replication"
)

// Translate maps source group offset s (the next record the group would
// read) of a partition to the target. next is the end of the replicated
// range (every source offset below it is mapped or a gap), targetStart
// the target partition's log start.
//
// Rule: let L be the last mapped source offset below min(s, next). If L
// exists, T = target(L)+1; else if a mapped source offset F >= s exists
// (below next), T = target(F); else T = targetStart. T is never below
// targetStart. If s > next, the group consumed s-next source offsets the
// target does not have yet (Unreplicated).
func Translate(runs []Run, s, next, targetStart int64) Translation {
	var tr Translation
	limit := s
	if s > next {
		limit = next
		tr.Unreplicated = s - next
	}
	// i: first run starting at or after limit; runs[i-1] starts below.
	i := sort.Search(len(runs), func(i int) bool { return runs[i].SourceFirst >= limit })
	switch {
	case i > 0:
		r := runs[i-1]
		l := min(limit-1, r.SourceLast())
		tr.Target, tr.Case = r.TargetFirst+(l-r.SourceFirst)+1, CaseAfter
	case i < len(runs) && s <= next:
		tr.Target, tr.Case = runs[i].TargetFirst, CaseBeforeFirst
	default:
		tr.Target, tr.Case = targetStart, CaseEmpty
	}
	if s > next {
		tr.Case = CaseAhead
	}
	if tr.Target < targetStart {
		tr.Target = targetStart
	}
	return tr
}
