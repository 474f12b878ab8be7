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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/replicate"
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
	StepRestore  = "restore"
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

// ReverseResult is the reverse flow's state when it caught up.
type ReverseResult struct {
	Partitions []replicate.PartitionStatus `json:"partitions"`
	Lag        int64                       `json:"lag_records"`
	// Copied counts B records written to A by the reverse flow (from its
	// offset map), LoopFiltered the records on B that came from A and
	// were therefore not copied back.
	Copied       int64 `json:"copied_records"`
	LoopFiltered int64 `json:"loop_filtered_records"`
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

type params struct {
	Topics []string `json:"topics"`
	Tail   string   `json:"tail"`
}

type runner struct {
	o        Options
	log      *slog.Logger
	now      func() time.Time
	src, dst *cluster.Cluster
	scl      *kgo.Client // A
	dcl      *kgo.Client // B, manual partitioner
	lcl      *kgo.Client // B, the journal writer's client (the flow's journal lock)
	jw       *journal.Writer
	fb       *journal.FailbackState
	op       *journal.Op
	run      journal.Run
	seq      int
	revCfg   *config.Config
	rev      *config.Flow
	stopRev  func()
	waiting  string
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
	rep := r.report()
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
		"remedy: stay on %s (producers and consumers keep using %s; godwit failover status -c FILE --flow %s lists the topics), "+
		"or move back by hand: stop producers on %s, copy %s on %s into <topic> on %s leaving out the records whose header godwit-origin-cluster is %s (they are on %s already), and move consumers by hand; "+
		"to fail back with godwit after the next failover, replicate %s with naming: identical",
		f.Name, f.Naming, f.Target, onB, f.Source, f.Target, f.Source, f.Source, onB, f.Source,
		f.Target, onB, f.Name,
		f.Target, onB, f.Target, f.Source, f.Source, f.Source,
		f.Name)
}

func (r *runner) close() {
	for _, c := range []*kgo.Client{r.scl, r.dcl, r.lcl} {
		if c != nil {
			c.Close()
		}
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

// checkFailover refuses to start a failback while the flow's last
// failover is unfinished (groups not moved, hook not run: finish it
// first). Checked before taking the lock, so a refused run fences nobody,
// and again after it. An unfinished failback is continued regardless.
func (r *runner) checkFailover(ctx context.Context) error {
	f := r.o.Flow
	fb, err := journal.ReadFailbackState(ctx, r.dcl, f)
	if err != nil {
		return cluster.Explain(r.dst, err)
	}
	if fb.Op != nil && fb.Op.FinishedAt == nil {
		return nil
	}
	st, err := journal.ReadFlowState(ctx, r.dcl, f)
	if err != nil {
		return cluster.Explain(r.dst, err)
	}
	if op := st.Op; op != nil && op.FinishedAt == nil {
		return fmt.Errorf("flow %s: failover %s is unfinished (started %s): finish it first with godwit failover -c FILE --flow %s, then fail back; godwit failover status -c FILE --flow %s shows where it stopped",
			f.Name, op.ID, op.StartedAt.Format(time.RFC3339), f.Name, f.Name)
	}
	return nil
}

// explain names the target cluster in a write error; a fenced run's error
// already says what happened and what to do.
func (r *runner) explain(err error) error {
	if err == nil || journal.IsFenced(err) {
		return err
	}
	return cluster.Explain(r.dst, err)
}

func (r *runner) do(ctx context.Context) error {
	f := r.o.Flow
	if _, err := r.dst.Ping(ctx, r.o.SourceTimeout); err != nil {
		return fmt.Errorf("flow %s: target %s does not answer: %w", f.Name, f.Target, err)
	}
	if _, err := r.src.Ping(ctx, r.o.SourceTimeout); err != nil {
		return fmt.Errorf("flow %s: failback needs the old primary %s reachable: %w", f.Name, f.Source, err)
	}
	if !r.o.DryRun {
		if err := journal.EnsureFailbackTopic(ctx, r.dcl, f); err != nil {
			return cluster.Explain(r.dst, err)
		}
		if err := journal.EnsureTopic(ctx, r.dcl, f); err != nil {
			return cluster.Explain(r.dst, err)
		}
	}
	if err := r.checkFailover(ctx); err != nil {
		return err
	}
	if !r.o.DryRun {
		// The flow's journal lock: fences any other (crashed or running)
		// failback or failover of this flow and aborts its open copy.
		var err error
		if r.lcl, err = r.dst.Client(f.Name+"-failback-journal", r.log, append(journal.WriterOpts(f),
			kgo.RetryTimeout(30*time.Second), kgo.RecordDeliveryTimeout(30*time.Second))...); err != nil {
			return err
		}
		if r.jw, err = journal.Acquire(ctx, r.lcl, f); err != nil {
			return cluster.Explain(r.dst, err)
		}
		if err := r.checkFailover(ctx); err != nil {
			return err
		}
	}
	// Read after the lock: no other run can commit after this read
	// without fencing this run first.
	fb, err := journal.ReadFailbackState(ctx, r.dcl, f)
	if err != nil {
		return cluster.Explain(r.dst, err)
	}
	r.fb = fb
	host, _ := os.Hostname()
	r.run = journal.Run{ID: journal.FailbackOpPrefix + r.now().UTC().Format("20060102T150405.000Z") + "-" + strconv.Itoa(os.Getpid()), StartedAt: r.now().UTC(), Host: host, PID: os.Getpid()}
	if fb.Op != nil && fb.Op.FinishedAt == nil {
		r.op = fb.Op
		if r.o.DryRun {
			cp := *fb.Op
			r.op = &cp
		}
		r.log.Info("continuing an unfinished failback", "operation", r.op.ID)
	} else {
		r.op = &journal.Op{ID: r.run.ID, Mode: "failback", StartedAt: r.run.StartedAt, Done: map[string]json.RawMessage{}}
		r.fb.Tail = map[string]*journal.TailProgress{}
	}
	if r.op.Done == nil {
		r.op.Done = map[string]json.RawMessage{}
	}
	r.op.Runs = append(r.op.Runs, r.run)
	if r.op.Params == nil {
		st, err := journal.ReadFlowState(ctx, r.dcl, f)
		if err != nil {
			return cluster.Explain(r.dst, err)
		}
		topics := st.FailedOverTopics()
		if len(topics) == 0 {
			return fmt.Errorf("flow %s: no topic is failed over (godwit failover status -c FILE --flow %s): nothing to fail back", f.Name, f.Name)
		}
		b, _ := json.Marshal(params{Topics: topics, Tail: r.o.Tail})
		r.op.Params = b
	} else if p := r.params(); p.Tail != r.o.Tail {
		r.log.Warn("continuing with the tail policy the operation started with", "tail", p.Tail, "asked", r.o.Tail)
	}
	if err := r.save(ctx, nil, journal.Event{Step: "run", Phase: journal.PhaseRun, At: r.now().UTC(), OK: true}); err != nil {
		return err
	}
	if r.revCfg, r.rev, err = ReverseFlow(r.o.Config, f, r.params().Topics); err != nil {
		return err
	}
	if err := r.step(ctx, StepDetect, true, r.detect); err != nil {
		return err
	}
	for _, s := range []struct {
		name  string
		again bool
		fn    func(context.Context) (any, error)
	}{
		{StepPlanTail, false, r.planTail},
		{StepCopyTail, false, r.copyTail},
		{StepAdvance, false, r.advance},
		{StepReverse, true, r.reverse},
		{StepGroups, false, r.moveGroups},
		{StepRestore, false, r.restore},
	} {
		if s.name == StepGroups && !r.o.Switch {
			r.waiting = waitingForSwitch(f)
			return nil
		}
		if err := r.step(ctx, s.name, s.again, s.fn); err != nil {
			return err
		}
	}
	if r.o.DryRun {
		return nil
	}
	fin := r.now().UTC()
	r.op.FinishedAt = &fin
	return r.save(ctx, nil, journal.Event{Step: "finish", Phase: journal.PhaseFinish, At: fin, OK: true})
}

func waitingForSwitch(f *config.Flow) string {
	return "the reverse flow caught up; producers and consumers are still on " + f.Target +
		": stop them there and run godwit failback again with --switch (or --groups RE) to move the groups and restore " + f.Name
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
	_, reversed := fb.Op.Done[StepReverse]
	_, moved := fb.Op.Done[StepGroups]
	if fb.Op.FinishedAt == nil && reversed && !moved {
		r.waiting = waitingForSwitch(f)
	}
	return fb, r.report(), nil
}

func (r *runner) params() params {
	var p params
	_ = json.Unmarshal(r.op.Params, &p)
	if p.Tail == "" {
		p.Tail = TailRecover
	}
	return p
}

// step runs a step unless done (or again), journaling start and end.
func (r *runner) step(ctx context.Context, name string, again bool, fn func(context.Context) (any, error)) error {
	if _, done := r.op.Done[name]; done && !again {
		r.log.Info("step already done by an earlier run; skipping", "step", name)
		return nil
	}
	start := r.now().UTC()
	if err := r.event(ctx, journal.Event{Step: name, Phase: journal.PhaseStart, At: start, OK: true}); err != nil {
		return err
	}
	r.log.Info("failback step", "step", name, "dry_run", r.o.DryRun)
	detail, err := fn(ctx)
	ev := r.op.EndStep(name, r.run.ID, start, r.now().UTC(), detail, err)
	if werr := r.save(ctx, nil, ev); werr != nil {
		if journal.IsFenced(err) { // werr says it again
			return err
		}
		return errors.Join(err, werr)
	}
	if err == nil && r.o.AfterStep != nil {
		r.o.AfterStep(name)
	}
	return err
}

func (r *runner) event(ctx context.Context, ev journal.Event) error {
	if r.o.DryRun {
		return nil
	}
	ev.Op, ev.Run, ev.Seq = r.op.ID, r.run.ID, r.seq
	r.seq++
	return r.explain(r.jw.WriteEvents(ctx, ev))
}

// save commits the failback state, with extra records (tail data), and
// the events in one transaction of the journal writer.
func (r *runner) save(ctx context.Context, extra []*kgo.Record, evs ...journal.Event) error {
	if r.o.DryRun {
		return nil
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	r.fb.Op = r.op
	r.fb.UpdatedAt = r.now().UTC()
	rec, err := journal.FailbackRecord(r.o.Flow, r.fb)
	if err != nil {
		return err
	}
	for i := range evs {
		evs[i].Op, evs[i].Run, evs[i].Seq = r.op.ID, r.run.ID, r.seq
		r.seq++
	}
	evRecs, err := r.jw.Records(nil, evs...)
	if err != nil {
		return err
	}
	recs := append(append(extra, rec), evRecs...)
	if err := r.jw.Commit(wctx, recs...); err != nil {
		if journal.IsFenced(err) {
			return err
		}
		return cluster.Explain(r.dst, fmt.Errorf("failback: write state: %w", err))
	}
	return nil
}

type detectResult struct {
	FailedOver []string `json:"failed_over_topics"`
	Topics     []string `json:"topics"`
}

// detect checks the journal: the operation's topics must still be failed
// over (or already restored by this operation).
func (r *runner) detect(ctx context.Context) (any, error) {
	st, err := journal.ReadFlowState(ctx, r.dcl, r.o.Flow)
	if err != nil {
		return nil, cluster.Explain(r.dst, err)
	}
	_, restored := r.op.Done[StepRestore]
	for _, t := range r.params().Topics {
		if !st.FailedOver(t) && !restored {
			return nil, fmt.Errorf("topic %s is no longer failed over (journal on %s) but this failback did not restore it: another operation changed the flow; inspect godwit failover status", t, r.o.Flow.Target)
		}
	}
	return detectResult{FailedOver: st.FailedOverTopics(), Topics: r.params().Topics}, nil
}

// tailResult is plan_tail's and copy_tail's detail.
type tailResult struct {
	Partitions []journal.TailProgress `json:"partitions"`
	Count      TailCount              `json:"count"`
}

func (r *runner) tailResult() tailResult {
	var out tailResult
	keys := make([]string, 0, len(r.fb.Tail))
	for k := range r.fb.Tail {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := r.fb.Tail[keys[i]], r.fb.Tail[keys[j]]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	for _, k := range keys {
		t := *r.fb.Tail[k]
		out.Partitions = append(out.Partitions, t)
		out.Count.Planned += t.End - t.From
		out.Count.Copied += t.Copied
		out.Count.Filtered += t.Filtered
	}
	return out
}

// planTail fixes, per failed-over partition, A's tail: from the frozen
// replicated offset (A->B progress on B) to A's last stable offset now.
func (r *runner) planTail(ctx context.Context) (any, error) {
	f := r.o.Flow
	store := offsets.NewStore(f, r.dcl)
	if err := store.Refresh(ctx); err != nil {
		return nil, cluster.Explain(r.dst, err)
	}
	topics := r.params().Topics
	ends, err := kadm.NewClient(r.scl).ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, cluster.Explain(r.src, fmt.Errorf("flow %s: list end offsets on %s: %w", f.Name, f.Source, err))
	}
	tail := map[string]*journal.TailProgress{}
	ends.Each(func(o kadm.ListedOffset) {
		p, _ := store.Progress(flowstate.TP{Topic: o.Topic, Partition: o.Partition})
		to := store.TargetTopic(o.Topic)
		if r.params().Tail == TailQuarantine {
			to += QuarantineSuffix
		}
		t := &journal.TailProgress{Topic: o.Topic, Partition: o.Partition, To: to, From: p.Next, End: max(o.Offset, p.Next), Next: p.Next}
		tail[journal.TailKey(o.Topic, o.Partition)] = t
	})
	r.fb.Tail = tail
	return r.tailResult(), nil
}

const tailTxnRecords = 500

// copyTail copies every planned tail in transactions of the failback
// transactional id, each committing the records and the tail's new
// position together.
func (r *runner) copyTail(ctx context.Context) (any, error) {
	if r.o.DryRun {
		return r.tailResult(), nil
	}
	f := r.o.Flow
	quarantine := r.params().Tail == TailQuarantine
	if quarantine {
		if err := r.ensureQuarantine(ctx); err != nil {
			return r.tailResult(), err
		}
	}
	keys := make([]string, 0, len(r.fb.Tail))
	for k := range r.fb.Tail {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t := r.fb.Tail[k]
		for t.Next < t.End {
			hi := min(t.Next+tailTxnRecords, t.End)
			recs, err := kafkautil.ReadRange(ctx, r.scl, t.Topic, t.Partition, t.Next, hi, true)
			if err != nil {
				return r.tailResult(), cluster.Explain(r.src, fmt.Errorf("read tail %s[%d] %d..%d: %w", t.Topic, t.Partition, t.Next, hi, err))
			}
			var out []*kgo.Record
			var filtered int64
			for _, rec := range recs {
				if rec.Attrs.IsControl() {
					continue
				}
				origin, has := naming.OriginOf(rec.Headers)
				if has && origin.Cluster == f.Target {
					filtered++ // came from B: never copied back
					continue
				}
				headers := rec.Headers
				if !has {
					headers = append(append(make([]kgo.RecordHeader, 0, len(rec.Headers)+4), rec.Headers...), naming.OriginHeaders(naming.Origin{
						Cluster: f.Source, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset})...)
				}
				out = append(out, &kgo.Record{Topic: t.To, Partition: rec.Partition, Key: rec.Key, Value: rec.Value, Headers: headers, Timestamp: rec.Timestamp})
			}
			// The records, their offset-map entries (recover: they are in
			// the flow's target topic) and the tail's new position commit
			// together; t changes only once they did.
			before := *t
			err = r.jw.Txn(ctx, func(ctx context.Context, cl *kgo.Client) error {
				res := cl.ProduceSync(ctx, out...)
				if err := res.FirstErr(); err != nil {
					return fmt.Errorf("copy tail %s[%d] to %s: %w", t.Topic, t.Partition, t.To, err)
				}
				var extra []*kgo.Record
				var ms []offsets.Run
				for i, pr := range res {
					if i == 0 && t.Copied == 0 {
						t.TargetFirst = pr.Record.Offset
					}
					t.TargetLast = pr.Record.Offset
					src, _ := naming.OriginOf(pr.Record.Headers)
					if !quarantine {
						n := len(ms)
						if n > 0 && ms[n-1].SourceFirst+ms[n-1].Count == src.Offset && ms[n-1].TargetFirst+ms[n-1].Count == pr.Record.Offset {
							ms[n-1].Count++
						} else {
							ms = append(ms, offsets.Run{SourceFirst: src.Offset, TargetFirst: pr.Record.Offset, Count: 1})
						}
					}
				}
				if len(ms) > 0 && origOnly(out, f.Source) {
					e := &flowstate.OffsetMapEntry{Version: 1, Topic: t.Topic, TargetTopic: t.To, Partition: t.Partition, Runs: ms}
					b, _ := json.Marshal(e)
					extra = append(extra, &kgo.Record{Topic: naming.OffsetMapTopic(f), Partition: int32(flowstate.SlotOf(flowstate.TP{Topic: t.Topic, Partition: t.Partition}, f.Slots)),
						Key: flowstate.OffsetMapKey(e), Value: b, Timestamp: r.now()})
				}
				t.Next = hi
				t.Copied += int64(len(out))
				t.Filtered += filtered
				r.fb.Op = r.op
				r.fb.UpdatedAt = r.now().UTC()
				st, err := journal.FailbackRecord(f, r.fb)
				if err != nil {
					return err
				}
				extra = append(extra, st)
				if err := cl.ProduceSync(ctx, extra...).FirstErr(); err != nil {
					return fmt.Errorf("write tail progress: %w", err)
				}
				return nil
			})
			if err != nil {
				*t = before
				return r.tailResult(), r.explain(err)
			}
			if r.o.CopyHook != nil {
				r.o.CopyHook(t.Copied)
			}
		}
	}
	return r.tailResult(), nil
}

// origOnly reports whether every record's origin is the flow's source
// (so the origin offsets are source offsets of the partition copied).
func origOnly(recs []*kgo.Record, source string) bool {
	for _, rec := range recs {
		if o, ok := naming.OriginOf(rec.Headers); !ok || o.Cluster != source {
			return false
		}
	}
	return true
}

func (r *runner) ensureQuarantine(ctx context.Context) error {
	parts := map[string]int32{}
	for _, t := range r.fb.Tail {
		parts[t.To] = max(parts[t.To], t.Partition+1)
	}
	adm := kadm.NewClient(r.dcl)
	for topic, n := range parts {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return cluster.Explain(r.dst, err)
		}
		if d, ok := td[topic]; ok && d.Err == nil {
			continue
		}
		resp, err := adm.CreateTopic(ctx, n, -1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return cluster.Explain(r.dst, fmt.Errorf("create quarantine topic %s: %w", topic, err))
		}
	}
	return nil
}

// advance moves the A->B progress of the tail partitions past the tail
// (it is on B now, or quarantined), so the restored flow does not copy
// it again. Written through each slot's transactional id: a running
// replicator's session is fenced and re-reads it.
func (r *runner) advance(ctx context.Context) (any, error) {
	f := r.o.Flow
	bySlot := map[int][]*journal.TailProgress{}
	for _, t := range r.fb.Tail {
		s := flowstate.SlotOf(flowstate.TP{Topic: t.Topic, Partition: t.Partition}, f.Slots)
		bySlot[s] = append(bySlot[s], t)
	}
	out := map[string]int64{}
	for _, ts := range bySlot {
		for _, t := range ts {
			out[journal.TailKey(t.Topic, t.Partition)] = t.End
		}
	}
	if r.o.DryRun {
		return map[string]any{"replicated_offset": out}, nil
	}
	for slot, ts := range bySlot {
		var err error
		for attempt := range 8 {
			if err = r.advanceSlot(ctx, slot, ts); err == nil {
				break
			}
			r.log.Warn("advancing the slot's progress failed; retrying", "slot", slot, "attempt", attempt+1, "err", err)
			if sleep(ctx, time.Duration(attempt+1)*200*time.Millisecond) != nil {
				return nil, ctx.Err()
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return map[string]any{"replicated_offset": out}, nil
}

func (r *runner) advanceSlot(ctx context.Context, slot int, ts []*journal.TailProgress) error {
	f := r.o.Flow
	eos := f.ExactlyOnce()
	opts := []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}
	if eos {
		opts = append(opts, kgo.TransactionalID("godwit-"+f.Source+"-"+f.Target+"-slot-"+strconv.Itoa(slot)), kgo.TransactionTimeout(60*time.Second))
	}
	cl, err := r.dst.Client(f.Name+"-failback-advance", r.log, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if eos {
		if _, _, err := cl.ProducerID(ctx); err != nil {
			return cluster.Explain(r.dst, fmt.Errorf("fence slot %d: %w", slot, err))
		}
	}
	topic := naming.ProgressTopic(f)
	prog, err := flowstate.ReadProgress(ctx, cl, topic, slot)
	if err != nil {
		return cluster.Explain(r.dst, err)
	}
	if prog == nil {
		prog = &flowstate.Progress{Version: 1, Flow: f.Name, Slot: slot}
	}
	for _, t := range ts {
		found := false
		for i := range prog.Partitions {
			pp := &prog.Partitions[i]
			if pp.Topic == t.Topic && pp.Partition == t.Partition {
				pp.Next, pp.SourceEnd = max(pp.Next, t.End), max(pp.SourceEnd, t.End)
				found = true
			}
		}
		if !found {
			prog.Partitions = append(prog.Partitions, flowstate.PartitionProgress{Topic: t.Topic, TargetTopic: naming.For(f).TargetTopic(t.Topic),
				Partition: t.Partition, Next: t.End, SourceEnd: t.End, SourceEndAt: r.now().UnixMilli()})
		}
	}
	sort.Slice(prog.Partitions, func(i, j int) bool {
		a, b := prog.Partitions[i], prog.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	prog.WrittenAt = r.now().UnixMilli()
	b, err := json.Marshal(prog)
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: topic, Partition: int32(slot), Key: []byte("slot-" + strconv.Itoa(slot)), Value: b, Timestamp: r.now()}
	if eos {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
	}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		if eos {
			_ = cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort)
		}
		return cluster.Explain(r.dst, err)
	}
	if eos {
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return cluster.Explain(r.dst, err)
		}
	}
	return nil
}

// ReverseFlow returns the B->A flow that replicates topics back: the
// config's own if it has one (it must use identical naming and select the
// topics), else one derived from A->B (identical naming, start earliest,
// same delivery and slots, no heartbeats, no ACL sync).
func ReverseFlow(cfg *config.Config, f *config.Flow, topics []string) (*config.Config, *config.Flow, error) {
	name := f.Target + "->" + f.Source
	if rf, ok := cfg.Flows[name]; ok {
		if rf.Naming != config.NamingIdentical {
			return nil, nil, fmt.Errorf("flow %s in the config uses naming %q; failback needs identical naming for the reverse flow: set naming: identical or remove it (failback then derives one)", name, rf.Naming)
		}
		pol := naming.For(rf)
		for _, t := range topics {
			if why := pol.Select(t); why != naming.Selected {
				return nil, nil, fmt.Errorf("flow %s in the config does not replicate %s (%s): add it to its topics or remove the flow (failback then derives one)", name, t, why)
			}
		}
		return cfg, rf, nil
	}
	if cfg.Path() == "" {
		return nil, nil, fmt.Errorf("cannot derive flow %s: the config was not loaded from a file; define flow %s (naming: identical) in it", name, name)
	}
	data, err := os.ReadFile(cfg.Path())
	if err != nil {
		return nil, nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("derive flow %s: %w", name, err)
	}
	flows, _ := doc["flows"].(map[string]any)
	if flows == nil {
		return nil, nil, fmt.Errorf("derive flow %s: no flows in %s", name, cfg.Path())
	}
	quoted := make([]any, 0, len(topics))
	for _, t := range topics {
		quoted = append(quoted, regexp.QuoteMeta(t))
	}
	flows[name] = map[string]any{
		"naming": config.NamingIdentical, "topics": quoted, "start": config.StartEarliest,
		"delivery": f.Delivery, "slots": f.Slots, "heartbeats": false, "sync_acls": false,
		"sync_group_offsets": false, "max_batch_bytes": f.MaxBatchBytes, "memory_budget": int64(f.MemoryBudget),
		"commit_interval": f.CommitInterval.D().String(), "refresh_interval": f.RefreshInterval.D().String(),
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, nil, err
	}
	rc, err := config.Parse(cfg.Path(), out)
	if err != nil {
		return nil, nil, fmt.Errorf("derive flow %s: %w", name, err)
	}
	return rc, rc.Flows[name], nil
}

// reverse runs the B->A flow in this process until every partition of the
// topics is copied to B's end offset (lag 0), bounded by Timeout. The
// flow keeps running until the groups moved (or the run ends).
func (r *runner) reverse(ctx context.Context) (any, error) {
	topics := r.params().Topics
	if !r.o.DryRun {
		r.startReverse()
	}
	deadline := r.now().Add(r.o.Timeout)
	dadm := kadm.NewClient(r.dcl)
	for {
		ends, err := dadm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return nil, cluster.Explain(r.dst, err)
		}
		st, err := replicate.Status(ctx, r.revCfg, r.rev)
		if err != nil {
			return nil, err
		}
		res := &ReverseResult{Partitions: []replicate.PartitionStatus{}}
		want := map[flowstate.TP]int64{}
		ends.Each(func(o kadm.ListedOffset) { want[flowstate.TP{Topic: o.Topic, Partition: o.Partition}] = o.Offset })
		for _, p := range st.Partitions {
			tp := flowstate.TP{Topic: p.SourceTopic, Partition: p.Partition}
			if end, ok := want[tp]; ok {
				p.SourceEndOffset = end
				p.LagRecords = max(end-p.ReplicatedOffset, 0)
				res.Partitions = append(res.Partitions, p)
				res.Lag += p.LagRecords
				delete(want, tp)
			}
		}
		for tp, end := range want { // not started yet
			res.Partitions = append(res.Partitions, replicate.PartitionStatus{SourceTopic: tp.Topic, TargetTopic: tp.Topic, Partition: tp.Partition, SourceEndOffset: end, LagRecords: end})
			res.Lag += end
		}
		sort.Slice(res.Partitions, func(i, j int) bool {
			a, b := res.Partitions[i], res.Partitions[j]
			if a.SourceTopic != b.SourceTopic {
				return a.SourceTopic < b.SourceTopic
			}
			return a.Partition < b.Partition
		})
		if res.Lag == 0 || r.o.DryRun {
			r.countReverse(ctx, res)
			return res, nil
		}
		if r.now().After(deadline) {
			return res, fmt.Errorf("reverse flow %s: lag did not reach 0 within %s (%d records remain); are producers still writing on %s? run godwit failback again to continue",
				r.rev.Name, r.o.Timeout, res.Lag, r.o.Flow.Target)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return res, err
		}
	}
}

// countReverse counts, from the reverse flow's offset map on A, the
// records it copied and those it left out as coming from A.
func (r *runner) countReverse(ctx context.Context, res *ReverseResult) {
	store := offsets.NewStore(r.rev, r.scl)
	if err := store.Refresh(ctx); err != nil {
		return
	}
	for _, p := range res.Partitions {
		ix := store.Index(flowstate.TP{Topic: p.SourceTopic, Partition: p.Partition})
		if ix == nil {
			continue
		}
		for _, run := range ix.Runs() {
			if run.Origin {
				res.LoopFiltered += run.Count
			} else {
				res.Copied += run.Count
			}
		}
	}
}

func (r *runner) startReverse() {
	r.stopRev()
	log := r.log.With("reverse", r.rev.Name)
	src, err1 := cluster.New(r.revCfg, r.rev.Source)
	dst, err2 := cluster.New(r.revCfg, r.rev.Target)
	if err1 != nil || err2 != nil {
		return
	}
	fl := replicate.NewFlow(replicate.Options{Flow: r.rev, Source: src, Target: dst, Logger: log, Metrics: replicate.NewMetrics(prometheus.NewRegistry())})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fl.Run(ctx); err != nil {
			log.Error("reverse flow stopped", "err", err)
		}
	}()
	r.stopRev = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
		r.stopRev = func() {}
	}
}

// moveGroups translates the selected groups' committed offsets on B to A
// through the reverse flow's offset map and commits them on A for groups
// with no active members on either side.
func (r *runner) moveGroups(ctx context.Context) (any, error) {
	f := r.o.Flow
	topics := map[string]bool{}
	for _, t := range r.params().Topics {
		topics[t] = true
	}
	dadm, sadm := kadm.NewClient(r.dcl), kadm.NewClient(r.scl)
	listed, err := dadm.ListGroups(ctx)
	if err != nil {
		var se *kadm.ShardErrors
		if !errors.As(err, &se) || se.AllFailed {
			return nil, cluster.Explain(r.dst, fmt.Errorf("list groups on %s: %w", f.Target, err))
		}
	}
	var groups []string
	for g, lg := range listed {
		if strings.HasPrefix(g, naming.InternalPrefix) || (lg.ProtocolType != "" && lg.ProtocolType != "consumer") {
			continue
		}
		if r.o.Groups != nil && !r.o.Groups.MatchString(g) || r.o.Groups == nil && !f.GroupSelected(g) {
			continue
		}
		groups = append(groups, g)
	}
	sort.Strings(groups)
	committed, err := offsets.FetchGroupOffsets(ctx, dadm, groups)
	if err != nil {
		return nil, cluster.Explain(r.dst, err)
	}
	store := offsets.NewStore(r.rev, r.scl)
	if err := store.Refresh(ctx); err != nil && !errors.Is(err, offsets.ErrNotRun) {
		return nil, cluster.Explain(r.src, err)
	}
	out := []GroupReport{}
	var names []string
	for _, g := range groups {
		gr := GroupReport{Group: g, Partitions: []GroupPartition{}}
		for tp, c := range committed[g] {
			if !topics[tp.Topic] {
				continue
			}
			gp := GroupPartition{Topic: tp.Topic, Partition: tp.Partition, BOffset: c.Offset, Metadata: c.Metadata}
			p, ok := store.Progress(tp)
			ix := store.Index(tp)
			switch {
			case !ok || p.Next < c.Offset:
				gp.Untranslate = "the reverse flow has not copied this far"
			case ix == nil:
				gp.Untranslate = "nothing mapped on this partition"
			default:
				var ok bool
				gp.AOffset, gp.Replay, ok = Translate(ix.Runs(), c.Offset)
				if !ok {
					gp.Untranslate = "nothing mapped on this partition"
				}
			}
			gr.Partitions = append(gr.Partitions, gp)
		}
		if len(gr.Partitions) == 0 {
			continue
		}
		sort.Slice(gr.Partitions, func(i, j int) bool {
			a, b := gr.Partitions[i], gr.Partitions[j]
			if a.Topic != b.Topic {
				return a.Topic < b.Topic
			}
			return a.Partition < b.Partition
		})
		out = append(out, gr)
		names = append(names, g)
	}
	if len(names) == 0 || r.o.DryRun {
		return map[string]any{"groups": out}, nil
	}
	// Both group protocols on both clusters: a KIP-848 group with members
	// is invisible to DescribeGroups alone.
	onB, errB := kafkautil.NewGroupInspector(dadm).Describe(ctx, names...)
	if errB != nil {
		return nil, cluster.Explain(r.dst, fmt.Errorf("describe groups on %s: %w", f.Target, errB))
	}
	onA, errA := kafkautil.NewGroupInspector(sadm).Describe(ctx, names...)
	if errA != nil {
		return nil, cluster.Explain(r.src, fmt.Errorf("describe groups on %s: %w", f.Source, errA))
	}
	var stillOnB []string
	for i := range out {
		g := &out[i]
		if b := onB[g.Group]; b.Err != nil || b.Active() {
			why := fmt.Sprintf("state %s, %d members", b.State, b.Members)
			if b.Err != nil {
				why = "cannot describe it: " + b.Err.Error()
			}
			g.Skipped = "consumers may still be active on " + f.Target + " (" + why + "): stop them and run failback again"
			stillOnB = append(stillOnB, g.Group)
			continue
		}
		if a := onA[g.Group]; a.Err != nil || a.Active() {
			why := fmt.Sprintf("state %s, %d members", a.State, a.Members)
			if a.Err != nil {
				why = "cannot describe it: " + a.Err.Error()
			}
			g.Skipped = "active on " + f.Source + " (" + why + "): its offsets are not overwritten"
			continue
		}
		var offs kadm.Offsets
		for _, p := range g.Partitions {
			if p.Untranslate == "" {
				offs.Add(kadm.Offset{Topic: p.Topic, Partition: p.Partition, At: p.AOffset, LeaderEpoch: -1, Metadata: p.Metadata})
			}
		}
		if len(offs) == 0 {
			g.Skipped = "no translatable offsets"
			continue
		}
		resp, err := sadm.CommitOffsets(ctx, g.Group, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			g.Skipped = "commit refused: " + err.Error()
			continue
		}
		g.Committed = true
	}
	if len(stillOnB) > 0 {
		// Not restoring yet: the next run moves them once they stopped.
		return map[string]any{"groups": out}, fmt.Errorf("groups still consuming on %s: %s; stop them there and run godwit failback --switch again (the other groups are committed on %s)",
			f.Target, strings.Join(stillOnB, ", "), f.Source)
	}
	return map[string]any{"groups": out}, nil
}

// Translate maps a group's offset s on B (it consumed every B record
// below s) to A through the reverse flow's runs. On A, records that came
// from A (copied to B before the failover, or the recovered tail) are at
// their original offsets and B's records after them, so the order can
// differ from B's. The result is the position after the last consumed
// record on A, lowered to the first record the group has not consumed if
// one lies before it (never skip); replay counts consumed records at or
// after the result (0 when what the group consumed is a prefix on A).
func Translate(runs []offsets.Run, s int64) (a, replay int64, ok bool) {
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

// restore stops the reverse flow and clears the failed-over mark: the
// A->B replicator picks the topics up again from their (advanced)
// progress.
func (r *runner) restore(ctx context.Context) (any, error) {
	r.stopRev()
	if r.o.DryRun {
		return map[string]any{"topics": r.params().Topics}, nil
	}
	st, err := journal.ReadFlowState(ctx, r.dcl, r.o.Flow)
	if err != nil {
		return nil, cluster.Explain(r.dst, err)
	}
	restored := st.Restore(r.params().Topics)
	st.UpdatedAt = r.now().UTC()
	if err := r.jw.Write(ctx, st); err != nil {
		return nil, r.explain(err)
	}
	return map[string]any{"topics": restored}, nil
}

func (r *runner) report() *Report {
	rep := &Report{Flow: r.o.Flow.Name, DryRun: r.o.DryRun, Tail: r.o.Tail, Topics: []string{}, TailParts: []journal.TailProgress{},
		Groups: []GroupReport{}, Restored: []string{}, Steps: []journal.Step{}, Waiting: r.waiting}
	if r.rev != nil {
		rep.ReverseFlow = r.rev.Name
	} else {
		rep.ReverseFlow = r.o.Flow.Target + "->" + r.o.Flow.Source
	}
	if r.op == nil {
		return rep
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
	for _, name := range []string{"failed:" + StepReverse, StepReverse} {
		if raw, ok := r.op.Done[name]; ok {
			var rr ReverseResult
			if json.Unmarshal(raw, &rr) == nil {
				rep.Reverse = &rr
			}
		}
	}
	if raw, ok := r.op.Done[StepGroups]; ok {
		var g struct {
			Groups []GroupReport `json:"groups"`
		}
		if json.Unmarshal(raw, &g) == nil && g.Groups != nil {
			rep.Groups = g.Groups
		}
	}
	if raw, ok := r.op.Done[StepRestore]; ok {
		var g struct {
			Topics []string `json:"topics"`
		}
		if json.Unmarshal(raw, &g) == nil && g.Topics != nil {
			rep.Restored = g.Topics
		}
	}
	rep.Steps = append(rep.Steps, r.op.Steps...)
	rep.Runs = r.op.Runs
	if !r.o.Flow.ExactlyOnce() {
		rep.Notes = append(rep.Notes, "at-least-once flow: stop the "+r.o.Flow.Name+" replicator during failback (its progress cannot be fenced; a running one may copy the tail again: duplicates, never loss)")
	}
	rep.Notes = append(rep.Notes, "tail.planned_offsets is end - from per partition (an upper bound: it includes transaction markers); copied_records and filtered_records are counted")
	return rep
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
