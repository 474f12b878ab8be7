package journal

import (
	"testing"
	"time"
)

func TestFlowStatus(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(min int) *time.Time { v := t0.Add(time.Duration(min) * time.Minute); return &v }
	op := func(start int, finish *time.Time) *Op { return &Op{StartedAt: *at(start), FinishedAt: finish} }
	topics := map[string]TopicState{"orders": {}}
	for _, c := range []struct {
		name string
		st   *FlowState
		fb   *FailbackState
		want string
	}{
		{"no journal", nil, nil, StatusActive},
		{"empty state", &FlowState{}, &FailbackState{}, StatusActive},
		{"failover unfinished", &FlowState{Topics: topics, Op: op(0, nil)}, nil, StatusFailingOver},
		{"failover unfinished before the mark", &FlowState{Op: op(0, nil)}, nil, StatusFailingOver},
		{"failed over", &FlowState{Topics: topics, Op: op(0, at(1))}, &FailbackState{}, StatusFailedOver},
		{"failing back", &FlowState{Topics: topics, Op: op(0, at(1))}, &FailbackState{Op: op(2, nil)}, StatusFailingBack},
		{"failing back, topics restored, not finished", &FlowState{Op: op(0, at(1))}, &FailbackState{Op: op(2, nil)}, StatusFailingBack},
		{"restored", &FlowState{Op: op(0, at(1))}, &FailbackState{Op: op(2, at(3))}, StatusRestored},
		{"failed over again after a failback", &FlowState{Topics: topics, Op: op(4, at(5))}, &FailbackState{Op: op(2, at(3))}, StatusFailedOver},
		{"failing over again after a failback", &FlowState{Op: op(4, nil)}, &FailbackState{Op: op(2, at(3))}, StatusFailingOver},
	} {
		if got := FlowStatus(c.st, c.fb); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
