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
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/kafkautil"
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

// Report is the JSON contract of `godwit failover -o json`.
type Report struct {
	Flow       string            `json:"flow"`
	Mode       string            `json:"mode"`
	Operation  string            `json:"operation"`
	DryRun     bool              `json:"dry_run,omitempty"`
	StartedAt  time.Time         `json:"started_at"`
	FinishedAt *time.Time        `json:"finished_at"`
	Topics     []string          `json:"topics"`
	Partitions []PartitionReport `json:"partitions"`
	Groups     []GroupReport     `json:"groups"`
	RPO        RPO               `json:"rpo"`
	Steps      []journal.Step    `json:"steps"`
	Runs       []journal.Run     `json:"runs"`
	Cutover    *HookResult       `json:"cutover,omitempty"`
	Notes      []string          `json:"notes,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// PartitionReport is one source partition's position at failover.
type PartitionReport struct {
	SourceTopic      string `json:"source_topic"`
	TargetTopic      string `json:"target_topic"`
	Partition        int32  `json:"partition"`
	SourceEndOffset  int64  `json:"source_end_offset"`
	ReplicatedOffset int64  `json:"replicated_offset"`
	AtRiskRecords    int64  `json:"at_risk_records"`
	// SourceEndObservedAt is when SourceEndOffset was read (live for a
	// planned failover, the replicator's last stored observation for an
	// unplanned one).
	SourceEndObservedAt time.Time `json:"source_end_observed_at"`
	// AtRiskBytesEstimate is AtRiskRecords times the average size of the
	// partition's last replicated records (see RPO).
	AtRiskBytesEstimate int64 `json:"at_risk_bytes_estimate"`
	// AtRiskSeconds bounds the age of the oldest unreplicated record at
	// the observation: observation time minus the timestamp of the last
	// replicated record.
	AtRiskSeconds float64 `json:"at_risk_seconds"`
}

// GroupReport is one group's translated offsets on the target.
type GroupReport struct {
	Group      string           `json:"group"`
	Partitions []GroupPartition `json:"partitions"`
	// Committed says the offsets were committed on the target; Skipped
	// says why not (active members on the target, refused).
	Committed      bool                     `json:"committed"`
	Skipped        string                   `json:"skipped,omitempty"`
	OffsetsFrom    string                   `json:"offsets_from"`
	Untranslatable []offsets.Untranslatable `json:"untranslatable,omitempty"`
}

// GroupPartition is a group's offset on one target partition.
type GroupPartition struct {
	TargetTopic  string `json:"target_topic"`
	Partition    int32  `json:"partition"`
	TargetOffset int64  `json:"target_offset"`
	SourceTopic  string `json:"source_topic"`
	SourceOffset int64  `json:"source_offset"`
	Metadata     string `json:"-"`
}

// RPO sums the data at risk. Records are counted (source end last
// observed minus replicated offset); Bytes is an estimate: each
// partition's at-risk records times the average key+value+headers size
// of its last (up to ~100) replicated records on the target, godwit's
// provenance headers left out. Seconds is
// the largest AtRiskSeconds.
type RPO struct {
	Records        int64   `json:"records"`
	Bytes          int64   `json:"bytes"`
	Seconds        float64 `json:"seconds"`
	BytesEstimated bool    `json:"bytes_estimated"`
	// ObservedAt is the oldest source end-offset observation the
	// records count rests on; records the source acknowledged after it
	// are not counted (unplanned failover).
	ObservedAt *time.Time `json:"observed_at,omitempty"`
	// ObservationAgeSeconds is how much older than the operation's
	// start ObservedAt is.
	ObservationAgeSeconds float64 `json:"observation_age_seconds,omitempty"`
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
	// lcl is the journal writer's client (the flow's journal lock).
	lcl *kgo.Client
	jw  *journal.Writer
	st  *journal.FlowState
	op  *journal.Op
	run journal.Run
	seq int
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
	if r.lcl != nil {
		r.lcl.Close()
	}
}

// lock takes the flow's journal lock: from here on this run is the only
// one that can write the journal (a later run fences it).
func (r *runner) lock(ctx context.Context) error {
	f := r.o.Flow
	var err error
	if r.lcl, err = r.dst.Client(f.Name+"-failover-journal", r.log, append(journal.WriterOpts(f),
		kgo.RetryTimeout(30*time.Second), kgo.RecordDeliveryTimeout(30*time.Second))...); err != nil {
		return err
	}
	if r.jw, err = journal.Acquire(ctx, r.lcl, f); err != nil {
		return cluster.Explain(r.dst, err)
	}
	return nil
}

// checkFailback refuses a failover while a failback of the flow is under
// way (its topics are being moved back). Checked before taking the lock,
// so a refused run fences nobody, and again after it.
func (r *runner) checkFailback(ctx context.Context) error {
	f := r.o.Flow
	fb, err := journal.ReadFailbackState(ctx, r.dcl, f)
	if err != nil {
		return cluster.Explain(r.dst, err)
	}
	if op := fb.Op; op != nil && op.FinishedAt == nil {
		if _, restored := op.Done["restore"]; !restored {
			return fmt.Errorf("flow %s: failback %s is unfinished (started %s): finish it first with godwit failback -c FILE --flow %s (add --switch to move the groups and restore the flow); godwit failover status -c FILE --flow %s shows where it stopped",
				f.Name, op.ID, op.StartedAt.Format(time.RFC3339), f.Name, f.Name)
		}
	}
	return nil
}

func (r *runner) do(ctx context.Context) error {
	f := r.o.Flow
	if err := r.checkFailback(ctx); err != nil {
		return err
	}
	if !r.o.DryRun {
		if err := journal.EnsureTopic(ctx, r.dcl, f); err != nil {
			return cluster.Explain(r.dst, err)
		}
		if err := r.lock(ctx); err != nil {
			return err
		}
		if err := r.checkFailback(ctx); err != nil {
			return err
		}
	}
	// Read after the lock: no other run can commit to the journal after
	// this read without fencing this run first.
	st, err := journal.ReadFlowState(ctx, r.dcl, f)
	if err != nil {
		return cluster.Explain(r.dst, err)
	}
	r.st = st
	host, _ := os.Hostname()
	r.run = journal.Run{ID: newID(r.now()), StartedAt: r.now().UTC(), Host: host, PID: os.Getpid()}
	if st.Op != nil && st.Op.FinishedAt == nil && !r.o.DryRun {
		r.op = st.Op
		r.log.Info("continuing an interrupted failover", "operation", r.op.ID, "mode", r.op.Mode, "done", doneNames(r.op))
	} else {
		r.op = &journal.Op{ID: r.run.ID, StartedAt: r.run.StartedAt, Done: map[string]json.RawMessage{}}
	}
	r.op.Runs = append(r.op.Runs, r.run)
	if r.op.Done == nil {
		r.op.Done = map[string]json.RawMessage{}
	}
	if err := r.save(ctx, journal.Event{Step: "run", Phase: journal.PhaseRun, At: r.now().UTC(), OK: true}); err != nil {
		return err
	}

	// Detect runs in every run: the source may have come back or gone.
	var mode string
	if err := r.step(ctx, StepDetect, true, func(ctx context.Context) (any, error) {
		_, perr := r.src.Ping(ctx, r.o.SourceTimeout)
		d := detectResult{Reachable: perr == nil, Mode: Planned}
		if perr != nil {
			d.Mode, d.SourceError = Unplanned, perr.Error()
		}
		mode = d.Mode
		return d, nil
	}); err != nil {
		return err
	}
	_, marked := r.op.Done[StepMark]
	switch {
	case r.op.Mode == "":
		r.op.Mode = mode
	case r.op.Mode != mode && !marked:
		// Nothing irreversible happened yet: start over in the mode
		// that fits the source's reachability now.
		r.log.Warn("source reachability changed since the interrupted run; redoing the failover", "was", r.op.Mode, "now", mode)
		r.op.Mode, r.op.Done = mode, map[string]json.RawMessage{}
		r.op.Params = nil
	case r.op.Mode != mode:
		r.log.Warn("continuing in the mode the interrupted run chose (topics are already failed over)", "mode", r.op.Mode, "source_now", mode)
	}
	if r.op.Params == nil {
		p, err := r.selectTopics(ctx)
		if err != nil {
			return err
		}
		if len(p.Topics) == 0 {
			return fmt.Errorf("flow %s: no topics to fail over (selection matches none, or all are failed over already: %s)", f.Name, strings.Join(st.FailedOverTopics(), ", "))
		}
		b, _ := json.Marshal(p)
		r.op.Params = b
	}
	for _, name := range stepsFor(r.op.Mode) {
		if r.o.DryRun && (name == StepMark || name == StepFence || name == StepCommit || name == StepCutover) {
			continue
		}
		if err := r.step(ctx, name, false, r.stepFunc(name)); err != nil {
			return err
		}
	}
	if r.o.DryRun {
		return nil
	}
	fin := r.now().UTC()
	r.op.FinishedAt = &fin
	return r.save(ctx, journal.Event{Step: "finish", Phase: journal.PhaseFinish, At: fin, OK: true})
}

type detectResult struct {
	Reachable   bool   `json:"source_reachable"`
	Mode        string `json:"mode"`
	SourceError string `json:"source_error,omitempty"`
}

func (r *runner) params() params {
	var p params
	_ = json.Unmarshal(r.op.Params, &p)
	return p
}

func (r *runner) stepFunc(name string) func(context.Context) (any, error) {
	switch name {
	case StepWaitLag:
		return r.waitLag
	case StepFinalSync:
		return r.finalSync
	case StepAssess:
		return r.assess
	case StepMark:
		return r.mark
	case StepFence:
		return r.fence
	case StepCommit:
		return r.commitGroups
	case StepCutover:
		return r.cutover
	}
	return func(context.Context) (any, error) { return nil, fmt.Errorf("unknown step %q", name) }
}

// step runs one step unless an earlier run did it, journaling its start
// and end with timestamps; always re-runs it when again is set.
func (r *runner) step(ctx context.Context, name string, again bool, fn func(context.Context) (any, error)) error {
	if _, done := r.op.Done[name]; done && !again {
		r.log.Info("step already done by an earlier run; skipping", "step", name)
		return nil
	}
	start := r.now().UTC()
	if err := r.event(ctx, journal.Event{Step: name, Phase: journal.PhaseStart, At: start, OK: true}); err != nil {
		return err
	}
	r.log.Info("failover step", "step", name)
	detail, err := fn(ctx)
	ev := r.op.EndStep(name, r.run.ID, start, r.now().UTC(), detail, err)
	if werr := r.save(ctx, ev); werr != nil {
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
	return r.explain(r.jw.Write(ctx, nil, ev))
}

// explain names the target cluster in a write error; a fenced run's error
// already says what happened and what to do.
func (r *runner) explain(err error) error {
	if err == nil || journal.IsFenced(err) {
		return err
	}
	return cluster.Explain(r.dst, err)
}

// save writes the state (with the operation) and an event together.
func (r *runner) save(ctx context.Context, ev journal.Event) error {
	if r.o.DryRun {
		return nil
	}
	ev.Op, ev.Run, ev.Seq = r.op.ID, r.run.ID, r.seq
	r.seq++
	r.st.Op = r.op
	r.st.UpdatedAt = r.now().UTC()
	// Write with a context of its own: a step that ended because ctx
	// ended is still journaled.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return r.explain(r.jw.Write(wctx, r.st, ev))
}

func doneNames(op *journal.Op) []string {
	var out []string
	for k := range op.Done {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func newID(now time.Time) string {
	return now.UTC().Format("20060102T150405.000Z") + "-" + strconv.Itoa(os.Getpid())
}

// selectTopics picks the source topics to fail over: the flow's topics
// (listed on the source when it answers, else those with stored
// progress), matching --topics, not failed over yet, never the heartbeat
// topic.
func (r *runner) selectTopics(ctx context.Context) (params, error) {
	f := r.o.Flow
	policy := naming.For(f)
	set := map[string]bool{}
	consider := func(t string) {
		if t == naming.HeartbeatTopic || policy.Select(t) != naming.Selected || r.st.FailedOver(t) {
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

func (r *runner) groupSelected(g string) bool {
	if strings.HasPrefix(g, naming.InternalPrefix) {
		return false
	}
	if p := r.params(); p.Groups != "" {
		re, err := regexp.Compile(`^(?:` + p.Groups + `)$`)
		return err == nil && re.MatchString(g)
	}
	if r.o.Groups != nil {
		return r.o.Groups.MatchString(g)
	}
	return r.o.Flow.GroupSelected(g)
}

func (r *runner) topicSet() map[string]bool {
	set := map[string]bool{}
	for _, t := range r.params().Topics {
		set[t] = true
	}
	return set
}

// lagResult is wait_lag's and assess's detail.
type lagResult struct {
	Partitions []PartitionReport `json:"partitions"`
	RPO        RPO               `json:"rpo"`
}

// waitLag waits until every partition of the selected topics is
// replicated to the source's end offset (planned).
func (r *runner) waitLag(ctx context.Context) (any, error) {
	f := r.o.Flow
	scl, err := r.src.Client(f.Name+"-failover-lag", r.log, kgo.RetryTimeout(r.o.SourceTimeout))
	if err != nil {
		return nil, err
	}
	defer scl.Close()
	sadm := kadm.NewClient(scl)
	topics := r.params().Topics
	deadline := r.now().Add(r.o.Timeout)
	var last lagResult
	for {
		ends, err := sadm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return nil, cluster.Explain(r.src, fmt.Errorf("flow %s: list source end offsets: %w", f.Name, err))
		}
		observed := r.now().UTC()
		store, err := r.store(ctx)
		if err != nil {
			return nil, err
		}
		last = lagResult{}
		ends.Each(func(o kadm.ListedOffset) {
			p, ok := store.Progress(flowstate.TP{Topic: o.Topic, Partition: o.Partition})
			pr := PartitionReport{SourceTopic: o.Topic, TargetTopic: store.TargetTopic(o.Topic), Partition: o.Partition,
				SourceEndOffset: o.Offset, SourceEndObservedAt: observed}
			if ok {
				pr.ReplicatedOffset = p.Next
			}
			pr.AtRiskRecords = max(pr.SourceEndOffset-pr.ReplicatedOffset, 0)
			last.Partitions = append(last.Partitions, pr)
			last.RPO.Records += pr.AtRiskRecords
		})
		sortPartitions(last.Partitions)
		if last.RPO.Records == 0 || r.o.DryRun {
			return last, nil
		}
		if r.now().After(deadline) {
			var rem []string
			for _, p := range last.Partitions {
				if p.AtRiskRecords > 0 {
					rem = append(rem, fmt.Sprintf("%s[%d]=%d", p.SourceTopic, p.Partition, p.AtRiskRecords))
				}
			}
			return last, fmt.Errorf("%w (%s): %d records remain to copy: %s; is godwit replicate running for %s? re-run godwit failover to continue, or with a longer --timeout",
				ErrLagTimeout, r.o.Timeout, last.RPO.Records, strings.Join(rem, " "), f.Name)
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// groupsResult is final_offset_sync's and assess's group part.
type groupsResult struct {
	Groups []GroupReport `json:"groups"`
}

type assessResult struct {
	lagResult
	groupsResult
}

// finalSync translates the selected source groups' committed offsets
// with the final offset map (planned; lag is 0), and writes the flow's
// checkpoints one last time.
func (r *runner) finalSync(ctx context.Context) (any, error) {
	f := r.o.Flow
	// The checkpoint pass (MirrorMaker 2 checkpoints and the sync of idle
	// target groups) as the replicator runs it, once more: best effort.
	if !r.o.DryRun {
		sy := offsets.NewSyncer(offsets.Options{Flow: f, Source: r.src, Target: r.dst, Logger: r.log,
			Metrics: offsets.NewMetrics(prometheus.NewRegistry())})
		if _, err := sy.Pass(ctx); err != nil {
			r.log.Warn("final checkpoint pass failed; translating the groups anyway", "err", err)
		}
		sy.Close()
	}
	scl, err := r.src.Client(f.Name+"-failover-groups", r.log, kgo.RetryTimeout(r.o.SourceTimeout))
	if err != nil {
		return nil, err
	}
	defer scl.Close()
	sadm := kadm.NewClient(scl)
	listed, err := sadm.ListGroups(ctx)
	if err != nil {
		var se *kadm.ShardErrors
		if !errors.As(err, &se) || se.AllFailed {
			return nil, cluster.Explain(r.src, fmt.Errorf("flow %s: list source groups: %w", f.Name, err))
		}
	}
	var groups []string
	for g, lg := range listed {
		if r.groupSelected(g) && (lg.ProtocolType == "" || lg.ProtocolType == "consumer") {
			groups = append(groups, g)
		}
	}
	sort.Strings(groups)
	committed, err := offsets.FetchGroupOffsets(ctx, sadm, groups)
	if err != nil {
		return nil, cluster.Explain(r.src, err)
	}
	store, err := r.store(ctx)
	if err != nil {
		return nil, err
	}
	return groupsResult{Groups: r.translate(ctx, store, committed, offsets.FromSource)}, nil
}

// translate translates groups' source offsets on the selected topics.
func (r *runner) translate(ctx context.Context, store *offsets.Store, committed map[string]map[flowstate.TP]offsets.Committed, from string) []GroupReport {
	topics := r.topicSet()
	var all []flowstate.TP
	for _, offs := range committed {
		for tp := range offs {
			if !topics[tp.Topic] {
				delete(offs, tp)
				continue
			}
			all = append(all, tp)
		}
	}
	starts, err := store.TargetStarts(ctx, all)
	if err != nil {
		r.log.Warn("cannot list target log start offsets", "err", err)
	}
	out := []GroupReport{}
	for _, g := range sortedKeys(committed) {
		if len(committed[g]) == 0 {
			continue
		}
		res, bad := store.Translate(committed[g], starts)
		gr := GroupReport{Group: g, OffsetsFrom: from, Partitions: []GroupPartition{}, Untranslatable: bad}
		for _, t := range res {
			gr.Partitions = append(gr.Partitions, GroupPartition{TargetTopic: t.TargetTopic, Partition: t.Partition,
				TargetOffset: t.TargetOffset, SourceTopic: t.SourceTopic, SourceOffset: t.SourceOffset, Metadata: t.Metadata})
		}
		out = append(out, gr)
	}
	return out
}

// assess computes the data at risk and the groups' offsets from the
// target alone (unplanned).
func (r *runner) assess(ctx context.Context) (any, error) {
	store, err := r.store(ctx)
	if err != nil {
		return nil, err
	}
	topics := r.topicSet()
	var res assessResult
	for _, tp := range store.Partitions() {
		if !topics[tp.Topic] {
			continue
		}
		p, _ := store.Progress(tp)
		pr := PartitionReport{SourceTopic: tp.Topic, TargetTopic: p.TargetTopic, Partition: tp.Partition,
			SourceEndOffset: max(p.SourceEnd, p.Next), ReplicatedOffset: p.Next,
			SourceEndObservedAt: time.UnixMilli(p.SourceEndAt).UTC()}
		pr.AtRiskRecords = pr.SourceEndOffset - pr.ReplicatedOffset
		res.Partitions = append(res.Partitions, pr)
	}
	r.estimate(ctx, res.Partitions)
	res.RPO = sumRPO(res.Partitions)
	// Groups from the checkpoints the replicator stored on the target.
	cks, err := offsets.ReadCheckpoints(ctx, r.dcl, offsets.CheckpointsTopic(r.o.Flow.Source))
	if err != nil {
		return nil, cluster.Explain(r.dst, err)
	}
	committed := map[string]map[flowstate.TP]offsets.Committed{}
	for _, c := range cks {
		if !r.groupSelected(c.Group) {
			continue
		}
		topic, ok := store.SourceTopic(c.Topic)
		if !ok {
			continue
		}
		if committed[c.Group] == nil {
			committed[c.Group] = map[flowstate.TP]offsets.Committed{}
		}
		committed[c.Group][flowstate.TP{Topic: topic, Partition: c.Partition}] = offsets.Committed{Offset: c.Upstream, Metadata: c.Metadata}
	}
	res.Groups = r.translate(ctx, store, committed, offsets.FromCheckpoints)
	return res, nil
}

// estimate fills the bytes and seconds estimates of partitions with data
// at risk from their last replicated records on the target.
func (r *runner) estimate(ctx context.Context, ps []PartitionReport) {
	for i := range ps {
		p := &ps[i]
		if p.AtRiskRecords <= 0 {
			continue
		}
		avg, lastTS, ok := r.sampleTarget(ctx, p.TargetTopic, p.Partition)
		if !ok {
			continue
		}
		p.AtRiskBytesEstimate = int64(avg * float64(p.AtRiskRecords))
		if !lastTS.IsZero() {
			p.AtRiskSeconds = max(p.SourceEndObservedAt.Sub(lastTS).Seconds(), 0)
		}
	}
}

const sampleRecords = 100

func (r *runner) sampleTarget(ctx context.Context, topic string, part int32) (avg float64, last time.Time, ok bool) {
	adm := kadm.NewClient(r.dcl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, time.Time{}, false
	}
	e, found := ends.Lookup(topic, part)
	if !found || e.Err != nil || e.Offset <= 0 {
		return 0, time.Time{}, false
	}
	recs, err := readTail(ctx, r.dcl, topic, part, e.Offset)
	if err != nil || len(recs) == 0 {
		return 0, time.Time{}, false
	}
	var total int
	for _, rec := range recs {
		total += len(rec.Key) + len(rec.Value)
		for _, h := range rec.Headers {
			if !strings.HasPrefix(h.Key, naming.HeaderPrefix) { // godwit's provenance headers are not source bytes
				total += len(h.Key) + len(h.Value)
			}
		}
	}
	return float64(total) / float64(len(recs)), recs[len(recs)-1].Timestamp, true
}

// staleObservation: an observation of the source end offsets older than
// this at failover means the replicator had lost the source before it.
const staleObservation = 3 * time.Second

func sumRPO(ps []PartitionReport) RPO {
	var out RPO
	for _, p := range ps {
		out.Records += p.AtRiskRecords
		out.Bytes += p.AtRiskBytesEstimate
		out.Seconds = max(out.Seconds, p.AtRiskSeconds)
		if at := p.SourceEndObservedAt; !at.IsZero() && (out.ObservedAt == nil || at.Before(*out.ObservedAt)) {
			out.ObservedAt = &at
		}
	}
	out.BytesEstimated = true
	return out
}

// mark records the selected topics as failed over: from now on the
// replicator leaves them alone.
func (r *runner) mark(ctx context.Context) (any, error) {
	store, err := r.store(ctx)
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	if r.st.Topics == nil {
		r.st.Topics = map[string]journal.TopicState{}
	}
	for _, t := range r.params().Topics {
		if _, ok := r.st.Topics[t]; !ok {
			r.st.Topics[t] = journal.TopicState{TargetTopic: store.TargetTopic(t), At: now, Op: r.op.ID, Mode: r.op.Mode}
		}
	}
	return map[string]any{"topics": r.params().Topics}, nil
}

// fence bumps the epoch of every slot's transactional id: a running
// replicator's open transaction is aborted and its next commit fails, so
// its next session reads the failed-over mark before writing anything.
func (r *runner) fence(ctx context.Context) (any, error) {
	f := r.o.Flow
	if !f.ExactlyOnce() {
		return map[string]any{"fenced": 0, "note": "at-least-once flow: no transactional ids to fence; replicators drop the topics at their next refresh (refresh_interval)"}, nil
	}
	for n := range f.Slots {
		id := "godwit-" + f.Source + "-" + f.Target + "-slot-" + strconv.Itoa(n)
		cl, err := r.dst.Client(f.Name+"-failover-fence", r.log, kgo.TransactionalID(id), kgo.TransactionTimeout(60*time.Second))
		if err != nil {
			return nil, err
		}
		_, _, err = cl.ProducerID(ctx)
		cl.Close()
		if err != nil {
			return nil, cluster.Explain(r.dst, fmt.Errorf("fence transactional id %q: %w", id, err))
		}
	}
	return map[string]any{"fenced": f.Slots}, nil
}

// commitResult is commit_groups's detail.
type commitResult struct {
	Groups []GroupReport `json:"groups"`
}

// commitGroups commits the translated offsets on the target for groups
// with no active members there.
func (r *runner) commitGroups(ctx context.Context) (any, error) {
	groups := r.groups()
	adm := kadm.NewClient(r.dcl)
	names := make([]string, 0, len(groups))
	for _, g := range groups {
		names = append(names, g.Group)
	}
	// Both group protocols: a KIP-848 group with members is invisible to
	// DescribeGroups alone.
	activity, err := kafkautil.NewGroupInspector(adm).Describe(ctx, names...)
	if err != nil {
		return nil, cluster.Explain(r.dst, fmt.Errorf("describe target groups: %w", err))
	}
	for i := range groups {
		g := &groups[i]
		if len(g.Partitions) == 0 {
			g.Skipped = "no translatable offsets"
			continue
		}
		a := activity[g.Group]
		if a.Err != nil {
			g.Skipped = "cannot describe the group on the target: " + a.Err.Error()
			continue
		}
		if a.Active() {
			g.Skipped = fmt.Sprintf("active on the target (state %s, %d members): its offsets are not overwritten", a.State, a.Members)
			r.log.Warn("target group is active; not committing its translated offsets", "group", g.Group, "protocol", a.Protocol, "state", a.State)
			continue
		}
		var offs kadm.Offsets
		for _, p := range g.Partitions {
			offs.Add(kadm.Offset{Topic: p.TargetTopic, Partition: p.Partition, At: p.TargetOffset, LeaderEpoch: -1, Metadata: p.Metadata})
		}
		resp, err := adm.CommitOffsets(ctx, g.Group, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			g.Skipped = "commit refused: " + err.Error()
			continue
		}
		g.Committed = true
	}
	return commitResult{Groups: groups}, nil
}

// groups returns the translated groups of the operation.
func (r *runner) groups() []GroupReport {
	var gr groupsResult
	for _, name := range []string{StepFinalSync, StepAssess} {
		if raw, ok := r.op.Done[name]; ok {
			_ = json.Unmarshal(raw, &gr)
		}
	}
	return gr.Groups
}

func sortPartitions(ps []PartitionReport) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].SourceTopic != ps[j].SourceTopic {
			return ps[i].SourceTopic < ps[j].SourceTopic
		}
		return ps[i].Partition < ps[j].Partition
	})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// buildReport assembles the report from the operation's journaled steps.
func (r *runner) buildReport() *Report {
	rep := &Report{Flow: r.o.Flow.Name, DryRun: r.o.DryRun, Partitions: []PartitionReport{}, Groups: []GroupReport{}, Steps: []journal.Step{}, Topics: []string{}}
	if r.op == nil {
		return rep
	}
	return fromOp(r.o.Flow.Name, r.op, rep)
}

func fromOp(flow string, op *journal.Op, rep *Report) *Report {
	rep.Flow, rep.Mode, rep.Operation, rep.StartedAt, rep.FinishedAt = flow, op.Mode, op.ID, op.StartedAt, op.FinishedAt
	var p params
	_ = json.Unmarshal(op.Params, &p)
	if p.Topics != nil {
		rep.Topics = p.Topics
	}
	var lr lagResult
	for _, name := range []string{"failed:" + StepWaitLag, StepWaitLag, StepAssess} {
		if raw, ok := op.Done[name]; ok {
			_ = json.Unmarshal(raw, &lr)
		}
	}
	if lr.Partitions != nil {
		rep.Partitions = lr.Partitions
	}
	rep.RPO = sumRPO(rep.Partitions)
	var gr groupsResult
	for _, name := range []string{StepFinalSync, StepAssess} {
		if raw, ok := op.Done[name]; ok {
			_ = json.Unmarshal(raw, &gr)
		}
	}
	if raw, ok := op.Done[StepCommit]; ok {
		_ = json.Unmarshal(raw, &gr)
	}
	if gr.Groups != nil {
		rep.Groups = gr.Groups
	}
	for _, name := range []string{"failed:" + StepCutover, StepCutover} {
		if raw, ok := op.Done[name]; ok {
			var h HookResult
			if json.Unmarshal(raw, &h) == nil && h.Command != "" {
				rep.Cutover = &h
			}
		}
	}
	if raw, ok := op.Done[StepFence]; ok {
		var m map[string]any
		if json.Unmarshal(raw, &m) == nil {
			if n, ok := m["note"].(string); ok {
				rep.Notes = append(rep.Notes, n)
			}
		}
	}
	rep.Steps = append(rep.Steps, op.Steps...)
	rep.Runs = op.Runs
	if rep.Mode == Unplanned {
		if at := rep.RPO.ObservedAt; at != nil && !rep.StartedAt.IsZero() {
			age := rep.StartedAt.Sub(*at).Seconds()
			rep.RPO.ObservationAgeSeconds = max(age, 0)
			// The replicator observes the source every second while it
			// reaches it; an older observation means it lost the source
			// before this failover, and only the source knows what it
			// acknowledged since.
			if age > staleObservation.Seconds() {
				rep.Notes = append(rep.Notes, fmt.Sprintf("the source was last observed %s, %.1f s before this failover started: "+
					"records the source acknowledged after that are not in at_risk_records. If producers could still write to it "+
					"(a network partition rather than a crash), the real loss is larger; godwit failback recovers those records once the source is reachable",
					at.UTC().Format(time.RFC3339), age))
			}
		}
		rep.Notes = append(rep.Notes, "at_risk_records = source end offset last observed by the replicator (source_end_observed_at) - replicated offset; records produced after that observation are not known. rpo.bytes is an estimate (at-risk records x average size of the partition's last replicated records); rpo.seconds bounds the age of the oldest unreplicated record (observation time - timestamp of the last replicated record)")
	}
	return rep
}

// State returns the flow's failover state and the report of its current
// or last operation (nil if none), read from the target alone.
func State(ctx context.Context, cfg *config.Config, f *config.Flow) (*journal.FlowState, *Report, []journal.Event, error) {
	dst, err := cluster.New(cfg, f.Target)
	if err != nil {
		return nil, nil, nil, err
	}
	cl, err := dst.Client(f.Name+"-failover-status", nil, kgo.RetryTimeout(15*time.Second))
	if err != nil {
		return nil, nil, nil, err
	}
	defer cl.Close()
	st, err := journal.ReadFlowState(ctx, cl, f)
	if err != nil {
		return nil, nil, nil, cluster.Explain(dst, err)
	}
	evs, err := journal.ReadEvents(ctx, cl, f)
	if err != nil {
		return nil, nil, nil, cluster.Explain(dst, err)
	}
	if st.Op == nil {
		return st, nil, evs, nil
	}
	rep := fromOp(f.Name, st.Op, &Report{Partitions: []PartitionReport{}, Groups: []GroupReport{}, Steps: []journal.Step{}, Topics: []string{}})
	return st, rep, evs, nil
}
