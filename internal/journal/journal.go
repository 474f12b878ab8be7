// Package journal keeps a flow's failover state and step journal on the
// flow's target cluster (the side that survives a failover), in the
// compacted topic godwit.<A>-<B>.journal.internal:
//
//   - partition 0, key "state": the flow's FlowState (which source topics
//     are failed over, and the current or last failover operation with
//     the result of every step done so far). The replicator reads it to
//     leave failed-over topics alone; `godwit failover` reads it to
//     continue an interrupted operation where it stopped.
//   - partition 1: one Event per step start and end, keyed
//     "<operation>/<run>/<sequence>" so compaction keeps them all: the
//     timestamped history `godwit failover status` shows.
//
// Records are JSON. Every write is a transaction of the flow's one
// transactional id (TransactionalID): a failover or failback run takes it
// with Acquire before reading the state, which fences any other run of
// the flow, so the journal has one writer at a time, enforced by Kafka.
package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
)

// Partitions of the journal topic.
const (
	StatePartition = 0
	EventPartition = 1
	partitions     = int32(2)
)

// Version of the records this godwit writes.
const Version = 1

var stateKey = []byte("state")

// FlowState is a flow's failover state.
type FlowState struct {
	Version   int       `json:"version"`
	Flow      string    `json:"flow"`
	UpdatedAt time.Time `json:"updated_at"`
	// Topics are the failed-over source topics: the replicator no longer
	// writes their target topics (producers use them on the target now).
	Topics map[string]TopicState `json:"failed_over_topics"`
	// Op is the current (unfinished) or last failover operation.
	Op *Op `json:"operation,omitempty"`
}

// TopicState says when and by which operation a topic failed over.
type TopicState struct {
	TargetTopic string    `json:"target_topic"`
	At          time.Time `json:"at"`
	Op          string    `json:"operation"`
	Mode        string    `json:"mode"`
}

// Op is one failover operation, possibly spanning several runs of
// `godwit failover` (an interrupted run is continued by the next).
type Op struct {
	ID         string     `json:"id"`
	Mode       string     `json:"mode"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Params are the operation's selection (opaque to this package).
	Params json.RawMessage `json:"params,omitempty"`
	// Done holds the result of every step completed, by step name; a
	// later run skips these.
	Done  map[string]json.RawMessage `json:"done"`
	Runs  []Run                      `json:"runs"`
	Steps []Step                     `json:"steps"`
}

// Run is one invocation of `godwit failover` working on an operation.
type Run struct {
	ID        string    `json:"id"`
	StartedAt time.Time `json:"started_at"`
	Host      string    `json:"host,omitempty"`
	PID       int       `json:"pid,omitempty"`
}

// Step is one finished step execution.
type Step struct {
	Name       string    `json:"name"`
	Run        string    `json:"run"`
	StartedAt  time.Time `json:"started_at"`
	DurationMs int64     `json:"duration_ms"`
	OK         bool      `json:"ok"`
	Error      string    `json:"error,omitempty"`
}

// FailbackOpPrefix starts the id of every failback operation, which
// tells its events from a failover's in the event partition.
const FailbackOpPrefix = "failback-"

// A flow's status, as `godwit failover status` names it.
const (
	StatusActive      = "active"       // nothing failed over
	StatusFailingOver = "failing-over" // a failover operation is unfinished
	StatusFailedOver  = "failed-over"  // topics are failed over, no failback under way
	StatusFailingBack = "failing-back" // a failback operation is unfinished
	StatusRestored    = "restored"     // the last failback finished and restored the flow
)

// FlowStatus is the flow's status from its failover state and failback
// state (either may be nil): the later of the last failover and the last
// failback operation decides.
func FlowStatus(st *FlowState, fb *FailbackState) string {
	var fo, back *Op
	if st != nil {
		fo = st.Op
	}
	if fb != nil {
		back = fb.Op
	}
	failedOver := st != nil && len(st.Topics) > 0
	switch {
	case back != nil && (fo == nil || !back.StartedAt.Before(fo.StartedAt)):
		if back.FinishedAt == nil {
			return StatusFailingBack
		}
		if failedOver {
			return StatusFailedOver
		}
		return StatusRestored
	case fo != nil && fo.FinishedAt == nil:
		return StatusFailingOver
	case failedOver:
		return StatusFailedOver
	}
	return StatusActive
}

// FailedOver reports whether a source topic is failed over. A nil state
// has no failed-over topic.
func (s *FlowState) FailedOver(topic string) bool {
	if s == nil {
		return false
	}
	_, ok := s.Topics[topic]
	return ok
}

// FailedOverTopics returns the failed-over source topics, sorted.
func (s *FlowState) FailedOverTopics() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.Topics))
	for t := range s.Topics {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Event is one journal entry: a step started or ended, or an operation
// began a run or finished.
type Event struct {
	Version    int             `json:"version"`
	Flow       string          `json:"flow"`
	Op         string          `json:"operation"`
	Run        string          `json:"run"`
	Seq        int             `json:"seq"`
	Step       string          `json:"step"`
	Phase      string          `json:"phase"` // start, end, run, finish
	At         time.Time       `json:"at"`
	DurationMs int64           `json:"duration_ms,omitempty"`
	OK         bool            `json:"ok"`
	Error      string          `json:"error,omitempty"`
	Detail     json.RawMessage `json:"detail,omitempty"`
}

// Event phases.
const (
	PhaseRun    = "run"
	PhaseStart  = "start"
	PhaseEnd    = "end"
	PhaseFinish = "finish"
)

// ErrNoJournal means the flow's journal topic does not exist.
var ErrNoJournal = errors.New("no failover journal on the target")

// ReadFlowState returns the flow's failover state from its target
// cluster (cl): an empty state if the journal topic does not exist or
// holds no state yet.
func ReadFlowState(ctx context.Context, cl *kgo.Client, f *config.Flow) (*FlowState, error) {
	s := &FlowState{Version: Version, Flow: f.Name}
	if err := readState(ctx, cl, naming.JournalTopic(f), "journal state", s, &s.Version); err != nil {
		return nil, err
	}
	if s.Topics == nil {
		s.Topics = map[string]TopicState{}
	}
	return s, nil
}

// readState decodes the last committed state record of topic into v,
// leaving v as it is when the topic or the record does not exist yet; a
// state written by a newer godwit (*version > Version) is refused.
func readState(ctx context.Context, cl *kgo.Client, topic, what string, v any, version *int) error {
	rec, err := lastState(ctx, cl, topic)
	if errors.Is(err, ErrNoJournal) || (err == nil && rec == nil) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(rec.Value, v); err != nil {
		return fmt.Errorf("%s %s: decode: %w", what, topic, err)
	}
	if *version > Version {
		return fmt.Errorf("%s %s: version %d is newer than this godwit understands; upgrade godwit", what, topic, *version)
	}
	return nil
}

func lastState(ctx context.Context, cl *kgo.Client, topic string) (*kgo.Record, error) {
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("journal %s: list start offsets: %w", topic, err)
	}
	if e, ok := starts.Lookup(topic, -1); ok && errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
		return nil, ErrNoJournal
	}
	s, ok := starts.Lookup(topic, StatePartition)
	if !ok || errors.Is(s.Err, kerr.UnknownTopicOrPartition) {
		return nil, ErrNoJournal
	}
	if s.Err != nil {
		return nil, fmt.Errorf("journal %s: list start offsets: %w", topic, s.Err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("journal %s: list end offsets: %w", topic, err)
	}
	e, ok := ends.Lookup(topic, StatePartition)
	if !ok || e.Err != nil {
		return nil, fmt.Errorf("journal %s: list end offsets: %v", topic, e.Err)
	}
	rec, err := kafkautil.LastRecord(ctx, cl, topic, StatePartition, s.Offset, e.Offset, true)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", topic, err)
	}
	return rec, nil
}

// ReadEvents returns every journal event of the flow, in write order.
func ReadEvents(ctx context.Context, cl *kgo.Client, f *config.Flow) ([]Event, error) {
	topic := naming.JournalTopic(f)
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("journal %s: list end offsets: %w", topic, err)
	}
	e, ok := ends.Lookup(topic, EventPartition)
	if !ok || errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
		return nil, nil
	}
	if e.Err != nil {
		return nil, fmt.Errorf("journal %s: list end offsets: %w", topic, e.Err)
	}
	recs, err := kafkautil.ReadRange(ctx, cl, topic, EventPartition, 0, e.Offset, true)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", topic, err)
	}
	out := make([]Event, 0, len(recs))
	for _, r := range recs {
		if r.Value == nil {
			continue
		}
		var ev Event
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			return nil, fmt.Errorf("journal %s offset %d: decode event: %w", topic, r.Offset, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// EnsureTopic creates the flow's journal topic on the target if missing
// (compacted, two partitions, replication factor from the broker default).
func EnsureTopic(ctx context.Context, cl *kgo.Client, f *config.Flow) error {
	return ensureCompacted(ctx, cl, naming.JournalTopic(f), partitions)
}

// ensureCompacted creates a compacted state topic with n partitions if it
// is missing (replication factor from the broker default), and refuses one
// with fewer partitions.
func ensureCompacted(ctx context.Context, cl *kgo.Client, topic string, n int32) error {
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("journal: describe %s: %w", topic, err)
	}
	if d, ok := details[topic]; ok && d.Err == nil {
		if len(d.Partitions) < int(n) {
			return fmt.Errorf("journal topic %s has %d partitions, want %d: delete it (it holds no data godwit can use) and run again", topic, len(d.Partitions), n)
		}
		return nil
	}
	resp, err := adm.CreateTopic(ctx, n, -1, map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.1"),
	}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("journal: create %s: %w", topic, err)
	}
	return nil
}

// ErrFenced means a later failover or failback run of the same flow took
// the journal lock: this run must stop without changing anything more.
var ErrFenced = errors.New("another godwit failover or failback of this flow is running: it took the flow's journal lock after this run did")

// WriterOpts are the client options of a journal writer: the flow's
// transactional id, and records go to the partition they name.
func WriterOpts(f *config.Flow) []kgo.Opt {
	return []kgo.Opt{
		kgo.TransactionalID(naming.JournalTransactionalID(f)),
		kgo.TransactionTimeout(60 * time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}
}

// Writer is a flow's one journal writer (see Acquire).
type Writer struct {
	cl     *kgo.Client
	flow   *config.Flow
	topic  string
	fenced error
}

// Acquire makes cl, a client built with WriterOpts(f), the flow's journal
// writer. Initialising the transactional id aborts a previous writer's
// open transaction and fences it (its next write fails with ErrFenced), so
// a run killed with -9 never blocks the next one and two runs never both
// write: whoever acquires last is the only writer. Read the state after
// Acquire: nothing committed by another run can follow that read.
func Acquire(ctx context.Context, cl *kgo.Client, f *config.Flow) (*Writer, error) {
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return nil, fmt.Errorf("flow %s: take the journal lock (init transactional id %s): %w", f.Name, naming.JournalTransactionalID(f), err)
	}
	return &Writer{cl: cl, flow: f, topic: naming.JournalTopic(f)}, nil
}

// Txn runs fn in one transaction of the writer and commits it; fn
// produces through the client it gets (ProduceSync, to see each record's
// offset). On any error the transaction is aborted. Once fenced, every
// later call returns the same ErrFenced error without touching Kafka.
func (w *Writer) Txn(ctx context.Context, fn func(ctx context.Context, cl *kgo.Client) error) error {
	if w.fenced != nil {
		return w.fenced
	}
	if err := w.cl.BeginTransaction(); err != nil {
		return w.classify(err)
	}
	if err := fn(ctx, w.cl); err != nil {
		// Abort with a context of its own: ctx may be what ended.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = w.cl.EndTransaction(actx, kgo.TryAbort)
		return w.classify(err)
	}
	if err := w.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return w.classify(fmt.Errorf("journal %s: commit: %w", w.topic, err))
	}
	return nil
}

// classify turns the broker's fencing answers into ErrFenced, with what
// to do about it.
func (w *Writer) classify(err error) error {
	if !IsFenced(err) {
		return err
	}
	w.fenced = fmt.Errorf("flow %s: %w (transactional id %s): this run stopped before changing anything more. "+
		"Let the other run finish (godwit failover status -c FILE --flow '%s' shows its steps); if it is not running any more, run the command again to continue the operation (broker: %v)",
		w.flow.Name, ErrFenced, naming.JournalTransactionalID(w.flow), w.flow.Name, err)
	return w.fenced
}

// IsFenced reports whether err says a later producer initialised the
// same transactional id (Kafka answers PRODUCER_FENCED, or
// INVALID_PRODUCER_EPOCH when the fenced producer writes again).
func IsFenced(err error) bool {
	return errors.Is(err, ErrFenced) || errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
}

// Commit writes recs in one transaction and waits for its commit.
func (w *Writer) Commit(ctx context.Context, recs ...*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	return w.Txn(ctx, func(ctx context.Context, cl *kgo.Client) error {
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("journal %s: write: %w", w.topic, err)
		}
		return nil
	})
}

// Records encodes the state and events (either may be nil/empty) as the
// records to commit.
func (w *Writer) Records(st *FlowState, evs ...Event) ([]*kgo.Record, error) {
	var recs []*kgo.Record
	for _, ev := range evs {
		ev.Version, ev.Flow = Version, w.flow.Name
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		key := ev.Op + "/" + ev.Run + "/" + strconv.Itoa(ev.Seq)
		recs = append(recs, &kgo.Record{Topic: w.topic, Partition: EventPartition, Key: []byte(key), Value: b, Timestamp: ev.At})
	}
	if st != nil {
		st.Version, st.Flow = Version, w.flow.Name
		b, err := json.Marshal(st)
		if err != nil {
			return nil, err
		}
		recs = append(recs, &kgo.Record{Topic: w.topic, Partition: StatePartition, Key: stateKey, Value: b, Timestamp: st.UpdatedAt})
	}
	return recs, nil
}

// Write commits the state and events (either may be nil/empty) in one
// transaction.
func (w *Writer) Write(ctx context.Context, st *FlowState, evs ...Event) error {
	recs, err := w.Records(st, evs...)
	if err != nil {
		return err
	}
	return w.Commit(ctx, recs...)
}

// EndStep records a finished step on the operation (its Step, and its
// result in Done so a later run skips it, or under "failed:<name>" what
// remained when it failed) and returns the end event to journal.
func (op *Op) EndStep(name, run string, start, end time.Time, detail any, err error) Event {
	s := Step{Name: name, Run: run, StartedAt: start, DurationMs: end.Sub(start).Milliseconds(), OK: err == nil}
	ev := Event{Step: name, Phase: PhaseEnd, At: end, DurationMs: s.DurationMs, OK: err == nil}
	if err != nil {
		s.Error, ev.Error = err.Error(), err.Error()
	}
	var raw json.RawMessage
	if detail != nil {
		raw, _ = json.Marshal(detail)
		ev.Detail = raw
	}
	if err == nil {
		op.Done[name] = raw
		delete(op.Done, "failed:"+name)
	} else if raw != nil {
		op.Done["failed:"+name] = raw
	}
	op.Steps = append(op.Steps, s)
	return ev
}
