package failback

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/journal"
)

// Report is the JSON contract of `godwit failback -o json`.
type Report struct {
	Flow        string                 `json:"flow"`
	ReverseFlow string                 `json:"reverse_flow"`
	Operation   string                 `json:"operation"`
	Tail        string                 `json:"tail_policy"`
	DryRun      bool                   `json:"dry_run,omitempty"`
	StartedAt   time.Time              `json:"started_at"`
	FinishedAt  *time.Time             `json:"finished_at"`
	Topics      []string               `json:"topics"`
	TailParts   []journal.TailProgress `json:"tail_partitions"`
	TailRecords TailCount              `json:"tail"`
	Reverse     *ReverseResult         `json:"reverse,omitempty"`
	Groups      []GroupReport          `json:"groups"`
	Restored    []string               `json:"restored_topics"`
	Steps       []journal.Step         `json:"steps"`
	Runs        []journal.Run          `json:"runs"`
	Waiting     string                 `json:"waiting,omitempty"`
	Notes       []string               `json:"notes,omitempty"`
	Error       string                 `json:"error,omitempty"`
}

// TailCount sums the tail: records to copy (planned: end - from, an upper
// bound that includes transaction markers), copied (counted), filtered
// (records that came from B, never copied back).
type TailCount struct {
	Planned  int64 `json:"planned_offsets"`
	Copied   int64 `json:"copied_records"`
	Filtered int64 `json:"filtered_records"`
}

// GroupReport is one group moved from B to A.
type GroupReport struct {
	Group      string           `json:"group"`
	Partitions []GroupPartition `json:"partitions"`
	Committed  bool             `json:"committed"`
	Skipped    string           `json:"skipped,omitempty"`
}

// GroupPartition is one partition's translation B -> A.
type GroupPartition struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	BOffset     int64  `json:"b_offset"`
	AOffset     int64  `json:"a_offset"`
	Replay      int64  `json:"replay_records"`
	Untranslate string `json:"untranslatable,omitempty"`
	Metadata    string `json:"-"`
}

// State returns the flow's failback state and the report of its current
// or last failback operation (nil if none), read from the target alone.
func State(ctx context.Context, cfg *config.Config, f *config.Flow) (*journal.FailbackState, *Report, error) {
	dst, err := cluster.New(cfg, f.Target)
	if err != nil {
		return nil, nil, err
	}
	cl, err := dst.Client(f.Name+"-failback-status", nil, kgo.RetryTimeout(15*time.Second))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	fb, err := journal.ReadFailbackState(ctx, cl, f)
	if err != nil {
		return nil, nil, cluster.Explain(dst, err)
	}
	if fb.Op == nil {
		return fb, nil, nil
	}
	r := &runner{o: Options{Config: cfg, Flow: f, Tail: TailRecover}, fb: fb, op: fb.Op}
	if err := r.decodeParams(); err != nil {
		return nil, nil, fmt.Errorf("flow %s: failback state on %s: %w", f.Name, f.Target, err)
	}
	if fb.Op.FinishedAt == nil && stepReverse.Done(fb.Op) && !stepGroups.Done(fb.Op) {
		r.waiting = waitingForSwitch(f)
	}
	rep, err := r.report()
	if err != nil {
		return nil, nil, fmt.Errorf("flow %s: failback state on %s: %w", f.Name, f.Target, err)
	}
	return fb, rep, nil
}

// report builds the report from the operation's journaled steps; an error
// names a step detail it could not decode (what it could is filled in).
func (r *runner) report() (*Report, error) {
	rep := &Report{Flow: r.o.Flow.Name, DryRun: r.o.DryRun, Tail: r.o.Tail, Topics: []string{}, TailParts: []journal.TailProgress{},
		Groups: []GroupReport{}, Restored: []string{}, Steps: []journal.Step{}, Waiting: r.waiting}
	if r.rev != nil {
		rep.ReverseFlow = r.rev.Name
	} else {
		rep.ReverseFlow = r.o.Flow.Target + "->" + r.o.Flow.Source
	}
	if r.op == nil {
		return rep, nil
	}
	p := r.params()
	rep.Operation, rep.StartedAt, rep.FinishedAt, rep.Tail = r.op.ID, r.op.StartedAt, r.op.FinishedAt, p.Tail
	if p.Topics != nil {
		rep.Topics = p.Topics
	}
	if r.fb != nil {
		tr := r.tailResult()
		if tr.Partitions != nil {
			rep.TailParts = tr.Partitions
		}
		rep.TailRecords = tr.Count
	}
	var errs []error
	rr, _, err := stepReverse.Latest(r.op)
	rep.Reverse = rr
	errs = append(errs, err)
	if g, ok, err := stepGroups.Result(r.op); ok && g.Groups != nil {
		rep.Groups = g.Groups
	} else {
		errs = append(errs, err)
	}
	if t, ok, err := stepRestore.Result(r.op); ok && t.Topics != nil {
		rep.Restored = t.Topics
	} else {
		errs = append(errs, err)
	}
	rep.Steps = append(rep.Steps, r.op.Steps...)
	rep.Runs = r.op.Runs
	if !r.o.Flow.ExactlyOnce() {
		rep.Notes = append(rep.Notes, "at-least-once flow: stop the "+r.o.Flow.Name+" replicator during failback (its progress cannot be fenced; a running one may copy the tail again: duplicates, never loss)")
	}
	rep.Notes = append(rep.Notes, "tail.planned_offsets is end - from per partition (an upper bound: it includes transaction markers); copied_records and filtered_records are counted")
	return rep, errors.Join(errs...)
}

// TailOf returns a failback operation's tail policy and counts: from rep
// when it is that operation's report, else from the operation's copy_tail
// (or plan_tail) end events (nil counts: none journaled).
func TailOf(op string, rep *Report, evs []journal.Event) (string, *TailCount) {
	if rep != nil && op == rep.Operation {
		if len(rep.TailParts) == 0 && rep.TailRecords == (TailCount{}) {
			return rep.Tail, nil
		}
		return rep.Tail, &rep.TailRecords
	}
	policy := TailRecover
	var out *TailCount
	for _, step := range []journal.StepDef[*tailResult]{stepPlanTail, stepCopyTail} {
		for _, e := range evs {
			if e.Step != string(step) || e.Phase != journal.PhaseEnd || e.Detail == nil {
				continue
			}
			d, err := step.Decode(e.Detail)
			if err != nil {
				continue
			}
			out = &d.Count
			for _, p := range d.Partitions {
				if strings.HasSuffix(p.To, QuarantineSuffix) {
					policy = TailQuarantine
				}
			}
		}
	}
	return policy, out
}
