package replicate

import (
	"reflect"
	"testing"

	"github.com/godwit/godwit/internal/flowstate"
)

func TestBuildRuns(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []mapping
		want []flowstate.OffsetRun
	}{
		{"empty", nil, nil},
		{"contiguous", []mapping{{10, 100, false}, {11, 101, false}, {12, 102, false}},
			[]flowstate.OffsetRun{{SourceFirst: 10, TargetFirst: 100, Count: 3}}},
		{"unsorted input", []mapping{{12, 102, false}, {10, 100, false}, {11, 101, false}},
			[]flowstate.OffsetRun{{SourceFirst: 10, TargetFirst: 100, Count: 3}}},
		{"source gap (marker)", []mapping{{10, 100, false}, {12, 101, false}},
			[]flowstate.OffsetRun{{SourceFirst: 10, TargetFirst: 100, Count: 1}, {SourceFirst: 12, TargetFirst: 101, Count: 1}}},
		{"target gap (other writer)", []mapping{{10, 100, false}, {11, 105, false}},
			[]flowstate.OffsetRun{{SourceFirst: 10, TargetFirst: 100, Count: 1}, {SourceFirst: 11, TargetFirst: 105, Count: 1}}},
		{"origin records form their own runs", []mapping{{10, 100, false}, {11, 50, true}, {12, 51, true}, {13, 101, false}},
			[]flowstate.OffsetRun{{SourceFirst: 10, TargetFirst: 100, Count: 1}, {SourceFirst: 11, TargetFirst: 50, Count: 2, Origin: true}, {SourceFirst: 13, TargetFirst: 101, Count: 1}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := buildRuns(c.in); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("buildRuns = %+v, want %+v", got, c.want)
			}
		})
	}
}
