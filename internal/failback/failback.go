// Package failback brings a failed-over flow A->B back to A once A is
// reachable again: it reconciles A's unreplicated tail (records
// acknowledged on A that never reached B: copied to B as late records, or
// quarantined), replicates what producers wrote on B during the outage
// back to A with godwit's own replicator (flow B->A, identical names,
// loop prevention), moves consumer groups back with exact translation, and
// restores the A->B flow. Every step is journaled on B and resumable.
package failback

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/naming"
)

// Tail policies.
const (
	TailRecover    = "recover"
	TailQuarantine = "quarantine"
)

// QuarantineSuffix names the topic on B that receives A's unreplicated
// tail with --tail quarantine: <target topic><QuarantineSuffix>.
const QuarantineSuffix = ".godwit-unreplicated"

// Step names, in order.
const (
	StepDetect   = "detect"
	StepPlanTail = "plan_tail"
	StepCopyTail = "copy_tail"
	StepAdvance  = "advance_progress"
	StepReverse  = "reverse"
	StepGroups   = "move_groups"
	StepRestore  = journal.StepRestore
)

// Options configure a failback.
type Options struct {
	Config *config.Config
	// Flow is the failed-over flow A->B.
	Flow *config.Flow
	// Tail is TailRecover (default) or TailQuarantine.
	Tail string
	// DryRun shows every step's plan and changes nothing.
	DryRun bool
	// Switch says producers and consumers are moving back to A now (they
	// stopped on B): wait for reverse lag 0, move the groups, restore
	// A->B. Without it the failback stops once the reverse flow caught up
	// (run it again with Switch to finish).
	Switch bool
	// Groups selects the groups to move (full match); nil: the flow's
	// groups filters. Setting it implies Switch.
	Groups *regexp.Regexp
	// Timeout bounds the wait for reverse lag 0 (default 5m).
	Timeout time.Duration
	// SourceTimeout bounds the reachability checks (default 10s).
	SourceTimeout time.Duration
	Logger        *slog.Logger
	// AfterStep, if set, is called after each step is journaled.
	AfterStep func(step string)
	// CopyHook, if set, is called after each committed tail transaction
	// (tests interrupt the copy there).
	CopyHook func(copied int64)
	Now      func() time.Time
}

type params struct {
	Topics []string `json:"topics"`
	Tail   string   `json:"tail"`
}

// The steps and the type of each one's journaled detail.
var (
	stepDetect   = journal.StepDef[*detectResult](StepDetect)
	stepPlanTail = journal.StepDef[*tailResult](StepPlanTail)
	stepCopyTail = journal.StepDef[*tailResult](StepCopyTail)
	stepAdvance  = journal.StepDef[*advanceResult](StepAdvance)
	stepReverse  = journal.StepDef[*ReverseResult](StepReverse)
	stepGroups   = journal.StepDef[*groupsResult](StepGroups)
	stepRestore  = journal.StepDef[*topicsResult](StepRestore)
)

type runner struct {
	o        Options
	log      *slog.Logger
	now      func() time.Time
	src, dst *cluster.Cluster
	scl      *kgo.Client // A
	dcl      *kgo.Client // B, manual partitioner
	// run is this run of the operation op, holding the flow's journal
	// lock; fb is the flow's failback state, p the operation's selection.
	run     *journal.Operation
	fb      *journal.FailbackState
	op      *journal.Op
	p       params
	revCfg  *config.Config
	rev     *config.Flow
	stopRev func()
	waiting string
}

// Run performs (or continues) a failback of o.Flow. The report is
// returned also with an error, describing how far it got.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Tail == "" {
		o.Tail = TailRecover
	}
	if o.Tail != TailRecover && o.Tail != TailQuarantine {
		return nil, fmt.Errorf("tail policy %q: use %s or %s", o.Tail, TailRecover, TailQuarantine)
	}
	if o.Groups != nil {
		o.Switch = true
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.SourceTimeout <= 0 {
		o.SourceTimeout = 10 * time.Second
	}
	f := o.Flow
	if f.Naming != config.NamingIdentical {
		return nil, prefixedRefusal(f)
	}
	r := &runner{o: o, now: o.Now, log: o.Logger.With("component", "failback", "flow", f.Name), stopRev: func() {}}
	defer r.close()
	err := r.setup()
	if err == nil {
		err = r.do(ctx)
	}
	r.stopRev()
	rep, rerr := r.report()
	if rerr != nil {
		rep.Notes = append(rep.Notes, "the journal holds a step detail this report cannot read: "+rerr.Error())
	}
	if err != nil {
		rep.Error = err.Error()
	}
	return rep, err
}

// prefixedRefusal says why a prefixed flow cannot fail back and what to do
// instead. On B the failed-over topics are <A><sep><topic>; no godwit flow
// writes them back into A's <topic>: a prefixed B->A flow skips them
// (their prefix chain names A: the cycle rule) and an identical one would
// create <A><sep><topic> on A.
func prefixedRefusal(f *config.Flow) error {
	onB := naming.For(f).TargetTopic("<topic>")
	return fmt.Errorf("flow %s uses naming %q: godwit failback supports identical naming only, and changed nothing. "+
		"On %s the failed-over topics are named %s, and no godwit flow can copy them back into %s's <topic>: a prefixed %s->%s flow skips them (their prefix names %s: the cycle rule) and an identical one would write %s on %s; "+
		"remedy: stay on %s (producers and consumers keep using %s; godwit failover status -c FILE --flow '%s' lists the topics), "+
		"or move back by hand: stop producers on %s, copy %s on %s into <topic> on %s leaving out the records whose header godwit-origin-cluster is %s (they are on %s already), and move consumers by hand; "+
		"to fail back with godwit after the next failover, replicate %s with naming: identical",
		f.Name, f.Naming, f.Target, onB, f.Source, f.Target, f.Source, f.Source, onB, f.Source,
		f.Target, onB, f.Name,
		f.Target, onB, f.Target, f.Source, f.Source, f.Source,
		f.Name)
}

func (r *runner) close() {
	for _, c := range []*kgo.Client{r.scl, r.dcl} {
		if c != nil {
			c.Close()
		}
	}
	if r.run != nil {
		r.run.Close()
	}
}

func (r *runner) setup() error {
	o, f := r.o, r.o.Flow
	var err error
	if r.src, err = cluster.New(o.Config, f.Source); err != nil {
		return err
	}
	if r.dst, err = cluster.New(o.Config, f.Target); err != nil {
		return err
	}
	if r.scl, err = r.src.Client(f.Name+"-failback-source", r.log, kgo.RetryTimeout(30*time.Second)); err != nil {
		return err
	}
	if r.dcl, err = r.dst.Client(f.Name+"-failback", r.log, kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RetryTimeout(30*time.Second), kgo.RecordDeliveryTimeout(30*time.Second)); err != nil {
		return err
	}
	return nil
}

func (r *runner) do(ctx context.Context) error {
	f := r.o.Flow
	if _, err := r.dst.Ping(ctx, r.o.SourceTimeout); err != nil {
		return fmt.Errorf("flow %s: target %s does not answer: %w", f.Name, f.Target, err)
	}
	if _, err := r.src.Ping(ctx, r.o.SourceTimeout); err != nil {
		return fmt.Errorf("flow %s: failback needs the old primary %s reachable: %w", f.Name, f.Source, err)
	}
	// The flow's journal lock: fences any other (crashed or running)
	// failback or failover of this flow and aborts its open copy.
	var err error
	r.run, r.fb, err = journal.OpenFailback(ctx, journal.Options{Flow: f, Target: r.dst, Client: r.dcl,
		DryRun: r.o.DryRun, Logger: r.log, Now: r.now, AfterStep: r.o.AfterStep})
	if err != nil {
		return err
	}
	r.op = r.run.Op
	if err := r.decodeParams(); err != nil {
		return err
	}
	if r.op.Params == nil {
		st, err := journal.ReadFlowState(ctx, r.dcl, f)
		if err != nil {
			return cluster.Explain(r.dst, err)
		}
		topics := st.FailedOverTopics()
		if len(topics) == 0 {
			return fmt.Errorf("flow %s: no topic is failed over (godwit failover status -c FILE --flow '%s'): nothing to fail back", f.Name, f.Name)
		}
		r.p = params{Topics: topics, Tail: r.o.Tail}
		if err := r.op.SetParams(r.p); err != nil {
			return err
		}
	} else if r.p.Tail != r.o.Tail {
		r.log.Warn("continuing with the tail policy the operation started with", "tail", r.p.Tail, "asked", r.o.Tail)
	}
	if err := r.run.Begin(ctx); err != nil {
		return err
	}
	if r.revCfg, r.rev, err = ReverseFlow(r.o.Config, f, r.params().Topics); err != nil {
		return err
	}
	if err := stepDetect.Redo(ctx, r.run, r.detect); err != nil {
		return err
	}
	for _, s := range []struct {
		name string
		run  func(context.Context) error
	}{
		{StepPlanTail, func(ctx context.Context) error { return stepPlanTail.Run(ctx, r.run, r.planTail) }},
		{StepCopyTail, func(ctx context.Context) error { return stepCopyTail.Run(ctx, r.run, r.copyTail) }},
		{StepAdvance, func(ctx context.Context) error { return stepAdvance.Run(ctx, r.run, r.advance) }},
		{StepReverse, func(ctx context.Context) error { return stepReverse.Redo(ctx, r.run, r.reverse) }},
		{StepGroups, func(ctx context.Context) error { return stepGroups.Run(ctx, r.run, r.moveGroups) }},
		{StepRestore, func(ctx context.Context) error { return stepRestore.Run(ctx, r.run, r.restore) }},
	} {
		if s.name == StepGroups && !r.o.Switch {
			r.waiting = waitingForSwitch(f)
			return nil
		}
		if err := s.run(ctx); err != nil {
			return err
		}
	}
	return r.run.Finish(ctx)
}

func waitingForSwitch(f *config.Flow) string {
	return "the reverse flow caught up; producers and consumers are still on " + f.Target +
		": stop them there and run godwit failback again with --switch (or --groups RE) to move the groups and restore " + f.Name
}

// decodeParams reads the operation's selection, fixed by its first run.
func (r *runner) decodeParams() error {
	r.p = params{}
	if err := r.op.DecodeParams(&r.p); err != nil {
		return fmt.Errorf("flow %s: %w", r.o.Flow.Name, err)
	}
	if r.p.Tail == "" {
		r.p.Tail = TailRecover
	}
	return nil
}

func (r *runner) params() params { return r.p }

type detectResult struct {
	FailedOver []string `json:"failed_over_topics"`
	Topics     []string `json:"topics"`
}

// detect checks the journal: the operation's topics must still be failed
// over (or already restored by this operation).
func (r *runner) detect(ctx context.Context) (*detectResult, error) {
	st, err := journal.ReadFlowState(ctx, r.dcl, r.o.Flow)
	if err != nil {
		return nil, cluster.Explain(r.dst, err)
	}
	restored := stepRestore.Done(r.op)
	for _, t := range r.params().Topics {
		if !st.FailedOver(t) && !restored {
			return nil, fmt.Errorf("topic %s is no longer failed over (journal on %s) but this failback did not restore it: another operation changed the flow; inspect godwit failover status", t, r.o.Flow.Target)
		}
	}
	return &detectResult{FailedOver: st.FailedOverTopics(), Topics: r.params().Topics}, nil
}

// explain names the target cluster in a write error; a fenced run's error
// already says what happened and what to do.
func (r *runner) explain(err error) error {
	if err == nil || journal.IsFenced(err) {
		return err
	}
	return cluster.Explain(r.dst, err)
}
