package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/naming"
)

// The step engine: a failover or failback run takes the flow's journal
// lock, reads its state, continues the unfinished operation or starts a
// new one, and runs steps, each journaled with its start, end and detail
// and skipped by a later run once done. The commands only declare their
// steps (StepDef) and what each does.

// Operation kinds.
const (
	KindFailover = "failover"
	KindFailback = "failback"
)

// StepRestore is failback's last step: once done, the failed-over topics
// are back with the flow, so a failover may start again even while the
// failback operation has not journaled its finish.
const StepRestore = "restore"

// Options configure an Operation.
type Options struct {
	Flow *config.Flow
	// Target is the flow's target cluster, where the journal lives, and
	// Client a client of it (reads, topic creation).
	Target *cluster.Cluster
	Client *kgo.Client
	// DryRun takes no lock and writes nothing.
	DryRun bool
	Logger *slog.Logger
	Now    func() time.Time
	// AfterStep, if set, is called after each step's end is journaled
	// (tests interrupt a run there).
	AfterStep func(step string)
}

// Operation is one run of a failover or failback of a flow.
type Operation struct {
	o    Options
	kind string
	log  *slog.Logger
	lcl  *kgo.Client // the journal writer's client (the lock)
	w    *Writer
	// Op is the operation this run works on (continued or new), Run this
	// run of it.
	Op  *Op
	Run Run
	seq int
	// encode returns the records of the kind's state holding Op.
	encode func(now time.Time) ([]*kgo.Record, error)
}

// OpenFailover takes the flow's journal lock for a failover (unless dry
// run) and returns the run with the flow's state: the unfinished failover
// it continues, or a new one. It refuses while a failback of the flow is
// moving topics back. A dry run never continues an operation: it reports
// what a failover would do now.
func OpenFailover(ctx context.Context, o Options) (*Operation, *FlowState, error) {
	op := newOperation(o, KindFailover)
	if err := op.lock(ctx, guardFailover, EnsureTopic); err != nil {
		op.Close()
		return nil, nil, err
	}
	st, err := ReadFlowState(ctx, o.Client, o.Flow)
	if err != nil {
		op.Close()
		return nil, nil, cluster.Explain(o.Target, err)
	}
	if cur := st.Op; cur != nil && cur.FinishedAt == nil && !o.DryRun {
		op.continueOp(cur)
	} else {
		op.newOp("")
	}
	op.encode = func(now time.Time) ([]*kgo.Record, error) {
		st.Op, st.UpdatedAt = op.Op, now
		return op.w.Records(st)
	}
	return op, st, nil
}

// OpenFailback takes the flow's journal lock for a failback (unless dry
// run) and returns the run with the flow's failback state: the unfinished
// failback it continues (a dry run shows its remaining plan), or a new one.
// It refuses while a failover of the flow is unfinished.
func OpenFailback(ctx context.Context, o Options) (*Operation, *FailbackState, error) {
	op := newOperation(o, KindFailback)
	ensure := func(ctx context.Context, cl *kgo.Client, f *config.Flow) error {
		if err := ensureCompacted(ctx, cl, naming.FailbackTopic(f), 1); err != nil {
			return err
		}
		return EnsureTopic(ctx, cl, f)
	}
	if err := op.lock(ctx, guardFailback, ensure); err != nil {
		op.Close()
		return nil, nil, err
	}
	fb, err := ReadFailbackState(ctx, o.Client, o.Flow)
	if err != nil {
		op.Close()
		return nil, nil, cluster.Explain(o.Target, err)
	}
	if cur := fb.Op; cur != nil && cur.FinishedAt == nil {
		if o.DryRun {
			cp := *cur
			cur = &cp
		}
		op.continueOp(cur)
	} else {
		op.newOp(KindFailback)
		fb.Tail = map[string]*TailProgress{}
	}
	op.encode = func(now time.Time) ([]*kgo.Record, error) {
		fb.Op, fb.UpdatedAt = op.Op, now
		rec, err := FailbackRecord(o.Flow, fb)
		if err != nil {
			return nil, err
		}
		return []*kgo.Record{rec}, nil
	}
	return op, fb, nil
}

func newOperation(o Options, kind string) *Operation {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	now := o.Now().UTC()
	id := now.Format("20060102T150405.000Z") + "-" + strconv.Itoa(os.Getpid())
	if kind == KindFailback {
		id = FailbackOpPrefix + id
	}
	return &Operation{o: o, kind: kind, log: o.Logger, Run: Run{ID: id, StartedAt: now, Host: host, PID: os.Getpid()}}
}

// guard refuses to start: checked before the lock, so a refused run
// fences nobody, and again after it.
type guard func(ctx context.Context, cl *kgo.Client, f *config.Flow) error

// lock takes the flow's journal lock: from here on this run is the only
// one that can write the journal (a later run fences it). Read the state
// after it: no other run can commit after that read without fencing this
// run first.
func (op *Operation) lock(ctx context.Context, g guard, ensure func(context.Context, *kgo.Client, *config.Flow) error) error {
	f, dst := op.o.Flow, op.o.Target
	if err := g(ctx, op.o.Client, f); err != nil {
		return op.explainRead(err)
	}
	if op.o.DryRun {
		return nil
	}
	if err := ensure(ctx, op.o.Client, f); err != nil {
		return cluster.Explain(dst, err)
	}
	var err error
	if op.lcl, err = dst.Client(f.Name+"-"+op.kind+"-journal", op.log, append(WriterOpts(f),
		kgo.RetryTimeout(30*time.Second), kgo.RecordDeliveryTimeout(30*time.Second))...); err != nil {
		return err
	}
	if op.w, err = Acquire(ctx, op.lcl, f); err != nil {
		return cluster.Explain(dst, err)
	}
	if err := g(ctx, op.o.Client, f); err != nil {
		return op.explainRead(err)
	}
	return nil
}

// refusal is a guard's answer: the flow's other operation is unfinished.
type refusal struct{ error }

func (op *Operation) explainRead(err error) error {
	var r refusal
	if errors.As(err, &r) {
		return r.error
	}
	return cluster.Explain(op.o.Target, err)
}

// guardFailover refuses a failover while a failback of the flow is under
// way (its topics are being moved back).
func guardFailover(ctx context.Context, cl *kgo.Client, f *config.Flow) error {
	fb, err := ReadFailbackState(ctx, cl, f)
	if err != nil {
		return err
	}
	if op := fb.Op; op != nil && op.FinishedAt == nil {
		if _, restored := op.Done[StepRestore]; !restored {
			return refusal{fmt.Errorf("flow %s: failback %s is unfinished (started %s): finish it first with godwit failback -c FILE --flow '%s' (add --switch to move the groups and restore the flow); godwit failover status -c FILE --flow '%s' shows where it stopped",
				f.Name, op.ID, op.StartedAt.Format(time.RFC3339), f.Name, f.Name)}
		}
	}
	return nil
}

// guardFailback refuses to start a failback while the flow's last
// failover is unfinished (groups not moved, hook not run: finish it
// first). An unfinished failback is continued regardless.
func guardFailback(ctx context.Context, cl *kgo.Client, f *config.Flow) error {
	fb, err := ReadFailbackState(ctx, cl, f)
	if err != nil {
		return err
	}
	if fb.Op != nil && fb.Op.FinishedAt == nil {
		return nil
	}
	st, err := ReadFlowState(ctx, cl, f)
	if err != nil {
		return err
	}
	if op := st.Op; op != nil && op.FinishedAt == nil {
		return refusal{fmt.Errorf("flow %s: failover %s is unfinished (started %s): finish it first with godwit failover -c FILE --flow '%s', then fail back; godwit failover status -c FILE --flow '%s' shows where it stopped",
			f.Name, op.ID, op.StartedAt.Format(time.RFC3339), f.Name, f.Name)}
	}
	return nil
}

func (op *Operation) continueOp(cur *Op) {
	op.Op = cur
	if op.Op.Done == nil {
		op.Op.Done = map[string]json.RawMessage{}
	}
	op.log.Info("continuing an unfinished "+op.kind, "operation", cur.ID, "mode", cur.Mode, "done", slices.Sorted(maps.Keys(cur.Done)))
	op.Op.Runs = append(op.Op.Runs, op.Run)
}

func (op *Operation) newOp(mode string) {
	op.Op = &Op{ID: op.Run.ID, Mode: mode, StartedAt: op.Run.StartedAt, Done: map[string]json.RawMessage{}}
	op.Op.Runs = append(op.Op.Runs, op.Run)
}

// Close releases the lock's client (the lock itself stays until another
// run takes it).
func (op *Operation) Close() {
	if op.lcl != nil {
		op.lcl.Close()
	}
}

// Writer is the journal writer (nil in a dry run): a kind's own
// transactions (the failback's tail copy) go through it.
func (op *Operation) Writer() *Writer { return op.w }

// Begin journals this run's start, with the operation as it is now.
func (op *Operation) Begin(ctx context.Context) error {
	return op.save(ctx, Event{Step: "run", Phase: PhaseRun, At: op.o.Now().UTC(), OK: true})
}

// Finish marks the operation finished and journals it.
func (op *Operation) Finish(ctx context.Context) error {
	if op.o.DryRun {
		return nil
	}
	fin := op.o.Now().UTC()
	op.Op.FinishedAt = &fin
	return op.save(ctx, Event{Step: "finish", Phase: PhaseFinish, At: fin, OK: true})
}

// StateRecords encodes the kind's state holding the operation as it is
// now, for a transaction of the kind's own (Writer).
func (op *Operation) StateRecords() ([]*kgo.Record, error) {
	return op.encode(op.o.Now().UTC())
}

// step runs one step unless an earlier run did it (always when again),
// journaling its start and its end with the detail fn returns.
func (op *Operation) step(ctx context.Context, name string, again bool, fn func(context.Context) (any, error)) error {
	if _, done := op.Op.Done[name]; done && !again {
		op.log.Info("step already done by an earlier run; skipping", "step", name)
		return nil
	}
	start := op.o.Now().UTC()
	if err := op.event(ctx, Event{Step: name, Phase: PhaseStart, At: start, OK: true}); err != nil {
		return err
	}
	op.log.Info(op.kind+" step", "step", name, "dry_run", op.o.DryRun)
	detail, err := fn(ctx)
	ev := op.Op.EndStep(name, op.Run.ID, start, op.o.Now().UTC(), detail, err)
	if werr := op.save(ctx, ev); werr != nil {
		if IsFenced(err) { // werr says it again
			return err
		}
		return errors.Join(err, werr)
	}
	if err == nil && op.o.AfterStep != nil {
		op.o.AfterStep(name)
	}
	return err
}

// event journals an event alone.
func (op *Operation) event(ctx context.Context, ev Event) error {
	if op.o.DryRun {
		return nil
	}
	ev.Op, ev.Run, ev.Seq = op.Op.ID, op.Run.ID, op.seq
	op.seq++
	return op.explain(op.w.Write(ctx, nil, ev))
}

// save commits the kind's state (holding the operation) and an event in
// one transaction. It writes with a context of its own: a step that ended
// because ctx ended is still journaled.
func (op *Operation) save(ctx context.Context, ev Event) error {
	if op.o.DryRun {
		return nil
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	ev.Op, ev.Run, ev.Seq = op.Op.ID, op.Run.ID, op.seq
	op.seq++
	recs, err := op.encode(op.o.Now().UTC())
	if err != nil {
		return err
	}
	evs, err := op.w.Records(nil, ev)
	if err != nil {
		return err
	}
	return op.explain(op.w.Commit(wctx, append(recs, evs...)...))
}

// explain names the target cluster in a write error; a fenced run's error
// already says what happened and what to do.
func (op *Operation) explain(err error) error {
	if err == nil || IsFenced(err) {
		return err
	}
	return cluster.Explain(op.o.Target, err)
}

// DecodeParams decodes the operation's selection, fixed by its first run, into v
// (left as it is when there is none yet).
func (op *Op) DecodeParams(v any) error {
	if len(op.Params) == 0 {
		return nil
	}
	if err := json.Unmarshal(op.Params, v); err != nil {
		return fmt.Errorf("operation %s: decode its parameters: %w (the journal holds a record this godwit cannot read)", op.ID, err)
	}
	return nil
}

// SetParams fixes the operation's selection.
func (op *Op) SetParams(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	op.Params = b
	return nil
}

// A StepDef names a step and the type of its detail: what the step's end
// event carries and the operation keeps in Done for later runs and reports.
// T is a pointer: a nil result journals no detail.
type StepDef[T any] string

// Run runs the step in op unless an earlier run did it.
func (s StepDef[T]) Run(ctx context.Context, op *Operation, fn func(context.Context) (T, error)) error {
	return op.step(ctx, string(s), false, detail(fn))
}

// Redo runs the step in op whether or not an earlier run did it (a check
// whose answer may have changed since).
func (s StepDef[T]) Redo(ctx context.Context, op *Operation, fn func(context.Context) (T, error)) error {
	return op.step(ctx, string(s), true, detail(fn))
}

// Done reports whether the step is done in op.
func (s StepDef[T]) Done(op *Op) bool {
	_, ok := op.Done[string(s)]
	return ok
}

// Result decodes the detail the step's success left in op (ok false
// when it is not done or left none).
func (s StepDef[T]) Result(op *Op) (v T, ok bool, err error) {
	return s.decodeDone(op, string(s))
}

// Failed decodes the detail the step's last failure left in op.
func (s StepDef[T]) Failed(op *Op) (v T, ok bool, err error) {
	return s.decodeDone(op, "failed:"+string(s))
}

// Latest is Result if the step is done, else Failed.
func (s StepDef[T]) Latest(op *Op) (v T, ok bool, err error) {
	if v, ok, err = s.Result(op); ok || err != nil {
		return v, ok, err
	}
	return s.Failed(op)
}

func (s StepDef[T]) decodeDone(op *Op, key string) (v T, ok bool, err error) {
	raw, found := op.Done[key]
	if !found || len(raw) == 0 || string(raw) == "null" {
		return v, false, nil
	}
	v, err = s.Decode(raw)
	return v, err == nil, err
}

// Decode decodes a detail of the step (from Done or an end event).
func (s StepDef[T]) Decode(raw json.RawMessage) (T, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("step %s: decode its detail: %w", string(s), err)
	}
	return v, nil
}

// detail turns a typed step function into the engine's: a nil pointer
// journals no detail.
func detail[T any](fn func(context.Context) (T, error)) func(context.Context) (any, error) {
	return func(ctx context.Context) (any, error) {
		v, err := fn(ctx)
		if rv := reflect.ValueOf(v); !rv.IsValid() || (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Map || rv.Kind() == reflect.Slice) && rv.IsNil() {
			return nil, err
		}
		return v, err
	}
}
