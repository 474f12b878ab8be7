package offsets

import (
	"testing"
)

// B's partition after a failback with a recovered tail: B[0,100) came
// from A[0,100) before the failover, B[100,150) were produced on B
// (copied to A[130,180)), B[150,180) are A's recovered tail A[100,130).
var failbackRuns = []Run{
	{SourceFirst: 0, TargetFirst: 0, Count: 100, Origin: true},
	{SourceFirst: 100, TargetFirst: 130, Count: 50},
	{SourceFirst: 150, TargetFirst: 100, Count: 30, Origin: true},
}

func TestTranslateBack(t *testing.T) {
	for _, tc := range []struct {
		name          string
		s, a, replay  int64
		wantTranslate bool
	}{
		{"nothing consumed", 0, 0, 0, true},
		{"idle group from the failover", 20, 20, 0, true},
		{"consumed every A record copied before the failover", 100, 100, 0, true},
		// Consumed some B records but not the tail: on A the tail comes
		// first; never skip it, replay the B records consumed.
		{"inside B's records, tail not consumed", 120, 100, 20, true},
		{"drained", 180, 180, 0, true},
		{"everything but the last tail record", 179, 129, 50, true},
	} {
		a, replay, ok := TranslateBack(failbackRuns, tc.s)
		if a != tc.a || replay != tc.replay || ok != tc.wantTranslate {
			t.Errorf("%s: TranslateBack(%d) = %d, replay %d, %v; want %d, %d, %v", tc.name, tc.s, a, replay, ok, tc.a, tc.replay, tc.wantTranslate)
		}
	}
	if _, _, ok := TranslateBack(nil, 10); ok {
		t.Errorf("no runs: translated")
	}
}
