package offsets

// Translation from a failback's reverse flow back to the old primary: the
// other direction of Translate (index.go). A failback's reverse flow B->A
// maps B offsets (its source) to A offsets (its target), and a group
// moving back from B to A needs the A position of its B offset.

// TranslateBack maps a group's offset s on B (it consumed every B record
// below s) to A through the reverse flow's runs. On A, records that came
// from A (copied to B before the failover, or the recovered tail) are at
// their original offsets and B's records after them, so the order can
// differ from B's. The result is the position after the last consumed
// record on A, lowered to the first record the group has not consumed if
// one lies before it (never skip); replay counts consumed records at or
// after the result (0 when what the group consumed is a prefix on A).
func TranslateBack(runs []Run, s int64) (a, replay int64, ok bool) {
	a = -1
	for _, r := range runs {
		if r.SourceFirst < s {
			l := min(s-1, r.SourceLast())
			a = max(a, r.TargetFirst+(l-r.SourceFirst)+1)
		}
	}
	if a < 0 { // consumed nothing mapped: the first mapped record at or after s
		for _, r := range runs {
			if r.SourceLast() >= s {
				t := r.TargetFirst + max(s-r.SourceFirst, 0)
				if a < 0 || t < a {
					a = t
				}
			}
		}
		return a, 0, a >= 0
	}
	for _, r := range runs {
		if r.SourceLast() >= s {
			first := max(s, r.SourceFirst)
			if t := r.TargetFirst + (first - r.SourceFirst); t < a {
				a = t
			}
		}
	}
	for _, r := range runs {
		if r.SourceFirst < s {
			last := r.TargetFirst + (min(s-1, r.SourceLast()) - r.SourceFirst)
			if last >= a {
				replay += last - max(a, r.TargetFirst) + 1
			}
		}
	}
	return a, replay, true
}
