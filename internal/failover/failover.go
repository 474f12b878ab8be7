// Package failover moves a flow's topics and consumer groups to the
// flow's target cluster: planned (the source answers: wait until nothing
// is left to copy, then switch) or unplanned (the source is gone: proceed
// from what the target holds and report the data at risk). Every step is
// journaled on the target (internal/journal), so an interrupted failover
// continues where it stopped when run again.
package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/offsets"
)

// Modes.
const (
	Planned   = "planned"
	Unplanned = "unplanned"
)

// Step names, in order.
const (
	StepDetect     = "detect"
	StepWaitLag    = "wait_lag"
	StepFinalSync  = "final_offset_sync"
	StepAssess     = "assess"
	StepMark       = "mark_failed_over"
	StepFence      = "fence"
	StepCommit     = "commit_groups"
	StepCutover    = "cutover"
	defaultTimeout = 5 * time.Minute
)

func stepsFor(mode string) []string {
	if mode == Planned {
		return []string{StepWaitLag, StepFinalSync, StepMark, StepFence, StepCommit, StepCutover}
	}
	return []string{StepMark, StepFence, StepAssess, StepCommit, StepCutover}
}

// The steps and the type of each one's journaled detail.
var (
	stepDetect    = journal.StepDef[*detectResult](StepDetect)
	stepWaitLag   = journal.StepDef[*lagResult](StepWaitLag)
	stepFinalSync = journal.StepDef[*groupsResult](StepFinalSync)
	stepAssess    = journal.StepDef[*assessResult](StepAssess)
	stepMark      = journal.StepDef[*topicsResult](StepMark)
	stepFence     = journal.StepDef[*fenceResult](StepFence)
	stepCommit    = journal.StepDef[*groupsResult](StepCommit)
	stepCutover   = journal.StepDef[*HookResult](StepCutover)
)

// Options configure a failover.
type Options struct {
	Config *config.Config
	Flow   *config.Flow
	// Topics selects source topics (full match); nil: every topic the flow
	// replicates (the heartbeat topic is never failed over).
	Topics *regexp.Regexp
	// Groups selects consumer groups (full match); nil: the flow's groups
	// filters.
	Groups *regexp.Regexp
	// DryRun reports what would happen, changing nothing.
	DryRun bool
	// Timeout bounds the wait for lag 0 in a planned failover (default 5m).
	Timeout time.Duration
	// SourceTimeout bounds the source reachability check (default 10s).
	SourceTimeout time.Duration
	// Exec overrides cutover.command.
	Exec   string
	Logger *slog.Logger
	// AfterStep, if set, is called after each step is journaled (tests
	// interrupt a failover there).
	AfterStep func(step string)
	Now       func() time.Time
}

// params are an operation's selection, fixed by its first run.
type params struct {
	Topics []string `json:"topics"` // source topics
	Groups string   `json:"groups,omitempty"`
}

// state of one run.
type runner struct {
	o   Options
	log *slog.Logger
	now func() time.Time
	src *cluster.Cluster
	dst *cluster.Cluster
	dcl *kgo.Client
	// run is this run of the operation op, holding the journal lock; st
	// is the flow's failover state, p the operation's selection.
	run *journal.Operation
	st  *journal.FlowState
	op  *journal.Op
	p   params
}

// ErrLagTimeout is returned when a planned failover's lag did not reach
// 0 within the timeout; the report lists what remains.
var ErrLagTimeout = errors.New("replication lag did not reach 0 in time")

// Run performs (or continues) a failover of o.Flow. The report is
// returned also with an error, describing how far it got.
func Run(ctx context.Context, o Options) (*Report, error) {
	r, err := newRunner(o)
	if err != nil {
		return nil, err
	}
	defer r.close()
	err = r.do(ctx)
	rep := r.buildReport()
	if err != nil {
		rep.Error = err.Error()
	}
	return rep, err
}

func newRunner(o Options) (*runner, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.SourceTimeout <= 0 {
		o.SourceTimeout = 10 * time.Second
	}
	r := &runner{o: o, now: o.Now, log: o.Logger.With("component", "failover", "flow", o.Flow.Name)}
	var err error
	if r.src, err = cluster.New(o.Config, o.Flow.Source); err != nil {
		return nil, err
	}
	if r.dst, err = cluster.New(o.Config, o.Flow.Target); err != nil {
		return nil, err
	}
	if r.dcl, err = r.dst.Client(o.Flow.Name+"-failover", r.log,
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryTimeout(30*time.Second),
		kgo.RecordDeliveryTimeout(30*time.Second)); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *runner) close() {
	r.dcl.Close()
	if r.run != nil {
		r.run.Close()
	}
}

func (r *runner) do(ctx context.Context) error {
	f := r.o.Flow
	var err error
	r.run, r.st, err = journal.OpenFailover(ctx, journal.Options{Flow: f, Target: r.dst, Client: r.dcl,
		DryRun: r.o.DryRun, Logger: r.log, Now: r.now, AfterStep: r.o.AfterStep})
	if err != nil {
		return err
	}
	r.op = r.run.Op
	if err := r.op.DecodeParams(&r.p); err != nil {
		return fmt.Errorf("flow %s: %w", f.Name, err)
	}
	if err := r.run.Begin(ctx); err != nil {
		return err
	}

	// Detect runs in every run: the source may have come back or gone.
	var mode string
	if err := stepDetect.Redo(ctx, r.run, func(ctx context.Context) (*detectResult, error) {
		_, perr := r.src.Ping(ctx, r.o.SourceTimeout)
		d := &detectResult{Reachable: perr == nil, Mode: Planned}
		if perr != nil {
			d.Mode, d.SourceError = Unplanned, perr.Error()
		}
		mode = d.Mode
		return d, nil
	}); err != nil {
		return err
	}
	marked := stepMark.Done(r.op)
	switch {
	case r.op.Mode == "":
		r.op.Mode = mode
	case r.op.Mode != mode && !marked:
		// Nothing irreversible happened yet: start over in the mode
		// that fits the source's reachability now.
		r.log.Warn("source reachability changed since the interrupted run; redoing the failover", "was", r.op.Mode, "now", mode)
		r.op.Mode, r.op.Done = mode, map[string]json.RawMessage{}
		r.op.Params, r.p = nil, params{}
	case r.op.Mode != mode:
		r.log.Warn("continuing in the mode the interrupted run chose (topics are already failed over)", "mode", r.op.Mode, "source_now", mode)
	}
	if r.op.Params == nil {
		p, err := r.selectTopics(ctx)
		if err != nil {
			return err
		}
		if len(p.Topics) == 0 {
			return fmt.Errorf("flow %s: no topics to fail over (selection matches none, or all are failed over already: %s)", f.Name, strings.Join(r.st.FailedOverTopics(), ", "))
		}
		if err := r.op.SetParams(p); err != nil {
			return err
		}
		r.p = p
	}
	for _, name := range stepsFor(r.op.Mode) {
		if r.o.DryRun && (name == StepMark || name == StepFence || name == StepCommit || name == StepCutover) {
			continue
		}
		if err := r.step(ctx, name); err != nil {
			return err
		}
	}
	return r.run.Finish(ctx)
}

type detectResult struct {
	Reachable   bool   `json:"source_reachable"`
	Mode        string `json:"mode"`
	SourceError string `json:"source_error,omitempty"`
}

func (r *runner) params() params { return r.p }

// step runs the named step unless an earlier run did it.
func (r *runner) step(ctx context.Context, name string) error {
	switch name {
	case StepWaitLag:
		return stepWaitLag.Run(ctx, r.run, r.waitLag)
	case StepFinalSync:
		return stepFinalSync.Run(ctx, r.run, r.finalSync)
	case StepAssess:
		return stepAssess.Run(ctx, r.run, r.assess)
	case StepMark:
		return stepMark.Run(ctx, r.run, r.mark)
	case StepFence:
		return stepFence.Run(ctx, r.run, r.fence)
	case StepCommit:
		return stepCommit.Run(ctx, r.run, r.commitGroups)
	case StepCutover:
		return stepCutover.Run(ctx, r.run, r.cutover)
	}
	return fmt.Errorf("unknown step %q", name)
}

// selectTopics picks the source topics to fail over: the flow's topics
// (listed on the source when it answers, else those with stored
// progress), matching --topics, not failed over yet, never a heartbeat
// topic.
func (r *runner) selectTopics(ctx context.Context) (params, error) {
	f := r.o.Flow
	policy := naming.For(f)
	set := map[string]bool{}
	consider := func(t string) {
		if policy.Heartbeat(t) || policy.Select(t) != naming.Selected || r.st.FailedOver(t) {
			return
		}
		if r.o.Topics != nil && !r.o.Topics.MatchString(t) {
			return
		}
		set[t] = true
	}
	if r.op.Mode == Planned {
		scl, err := r.src.Client(f.Name+"-failover", r.log, kgo.RetryTimeout(r.o.SourceTimeout))
		if err != nil {
			return params{}, err
		}
		defer scl.Close()
		td, err := kadm.NewClient(scl).ListTopics(ctx)
		if err != nil {
			return params{}, cluster.Explain(r.src, fmt.Errorf("flow %s: list source topics: %w", f.Name, err))
		}
		for t, d := range td {
			if d.Err == nil {
				consider(t)
			}
		}
	} else {
		store, err := r.store(ctx)
		if err != nil {
			return params{}, err
		}
		for _, tp := range store.Partitions() {
			consider(tp.Topic)
		}
	}
	p := params{Topics: make([]string, 0, len(set))}
	for t := range set {
		p.Topics = append(p.Topics, t)
	}
	sort.Strings(p.Topics)
	if r.o.Groups != nil {
		p.Groups = r.o.Groups.String()
	}
	return p, nil
}

func (r *runner) store(ctx context.Context) (*offsets.Store, error) {
	s := offsets.NewStore(r.o.Flow, r.dcl)
	if err := s.Refresh(ctx); err != nil {
		if errors.Is(err, offsets.ErrNotRun) {
			return nil, fmt.Errorf("flow %s: %w (nothing was replicated: there is nothing to fail over)", r.o.Flow.Name, err)
		}
		return nil, cluster.Explain(r.dst, err)
	}
	return s, nil
}

func (r *runner) topicSet() map[string]bool {
	set := map[string]bool{}
	for _, t := range r.params().Topics {
		set[t] = true
	}
	return set
}
