package adopt

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/godwit/godwit/internal/offsets"
)

// TestBuildRunsNeverSkips checks the takeover point and the offset map
// adoption derives from MM2 copies with re-sends, including copies
// stopped in the middle of a re-send: the takeover point is the first
// source record MM2 never copied (godwit copies nothing a second time;
// --scan tail: at most one sync interval after a late restart),
// and for every source offset s a group may have reached, the translated
// target offset is followed by a copy of every source record from s on
// (a group may replay, never skip).
func TestBuildRunsNeverSkips(t *testing.T) {
	type tc struct {
		name string
		copy []int64 // source offset of each target record, in target order
	}
	seq := func(a, b int64) []int64 {
		var out []int64
		for i := a; i < b; i++ {
			out = append(out, i)
		}
		return out
	}
	cases := []tc{
		{"in order", seq(0, 80)},
		{"re-send completed", append(seq(0, 60), seq(50, 80)...)},
		{"stopped mid re-send", append(seq(0, 60), seq(50, 55)...)},
		{"two re-sends", append(append(seq(0, 40), seq(20, 70)...), seq(65, 75)...)},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 100 {
		// A random MM2 history: copy forward, restart from an
		// earlier offset, stop anywhere.
		var c []int64
		var pos int64
		for range 2 + r.IntN(5) {
			n := int64(1 + r.IntN(40))
			c = append(c, seq(pos, pos+n)...)
			pos = max(0, pos+n-int64(r.IntN(30)))
		}
		cases = append(cases, tc{name: fmt.Sprintf("random %d", i), copy: c})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			targetEnd := int64(len(c.copy))
			copied := map[int64]bool{}
			for _, u := range c.copy {
				copied[u] = true
			}
			// Syncs as MM2 emits them: some of the copies, in order.
			var syncs []Sync
			for d, u := range c.copy {
				if d%7 == 0 {
					syncs = append(syncs, Sync{Upstream: u, Downstream: int64(d)})
				}
			}
			for _, mode := range []string{ScanTail, ScanAll} {
				from := startSync(syncs, mode)
				// What scan finds from the sync on: the in-order
				// continuation and second copies.
				next, cands := from.Upstream, map[int64][]int64{}
				for d := from.Downstream; d < targetEnd; d++ {
					u := c.copy[d]
					if u > next {
						t.Fatalf("%s: target %d holds source %d beyond the in-order position %d", mode, d, u, next)
					}
					if u == next {
						next++
					}
					cands[u] = append(cands[u], d)
				}
				anchorCands(cands, syncs, from)
				if from.Downstream > 0 { // findFloor: the target's first record
					cands[c.copy[0]] = append(cands[c.copy[0]], 0)
				}
				// --scan all is exact. --scan tail cannot see what MM2
				// copied past the highest sync before a restart: at most
				// one sync interval (7 here) is copied again.
				var again int64
				for u := next; copied[u]; u++ {
					again++
				}
				if again > 0 && (mode == ScanAll || again >= 7) {
					t.Fatalf("%s: takeover point %d, but MM2 copied source %d-%d: godwit would copy them again", mode, next, next, next+again-1)
				}
				runs := buildRuns(cands, targetEnd)
				for i := 1; i < len(runs); i++ {
					a, b := runs[i-1], runs[i]
					if b.SourceFirst <= a.SourceLast() || b.TargetFirst <= a.TargetFirst+a.Count-1 {
						t.Fatalf("%s: runs not increasing on both sides: %+v", mode, runs)
					}
				}
				for s := int64(0); s <= next; s++ {
					tr := offsets.Translate(runs, s, next, 0)
					if tr.Target > targetEnd {
						t.Fatalf("%s: group at source %d translated to %d, past godwit's first record at %d", mode, s, tr.Target, targetEnd)
					}
					seen := map[int64]bool{}
					for _, u := range c.copy[tr.Target:] {
						seen[u] = true
					}
					for u := s; u < next; u++ {
						if !seen[u] {
							t.Fatalf("%s: copy %v, runs %+v: group at source %d translated to target %d (%s) would skip source %d", mode, c.copy, runs, s, tr.Target, tr.Case, u)
						}
					}
				}
			}
		})
	}
}
