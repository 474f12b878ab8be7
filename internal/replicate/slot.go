package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
)

// slotWorker replicates the source partitions hashed to one slot. It owns
// the slot's transactional ids (two in alternation, txn.go), so a new
// owner of the slot fences the old one (InitProducerID bumps the epoch and
// aborts its open transaction) before reading where the slot got to.
type slotWorker struct {
	f    *Flow
	slot int

	cancel context.CancelFunc
	done   chan struct{}
}

func newSlotWorker(f *Flow, slot int) *slotWorker {
	return &slotWorker{f: f, slot: slot, done: make(chan struct{})}
}

func (w *slotWorker) start() {
	ctx, cancel := context.WithCancel(w.f.runCtx)
	w.cancel = cancel
	go w.run(ctx)
}

func (w *slotWorker) stop() { w.cancel() }
func (w *slotWorker) wait() { <-w.done }

// txnIDs are the transactional ids of the slot's producers.
func (w *slotWorker) txnIDs() []string { return naming.SlotTransactionalIDs(w.f.cfg, w.slot) }

func (w *slotWorker) run(ctx context.Context) {
	defer close(w.done)
	log := w.f.log.With("slot", w.slot)
	for backoff := 500 * time.Millisecond; ctx.Err() == nil; backoff = min(backoff*2, 15*time.Second) {
		s := &session{w: w, log: log}
		err := s.run(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = 500 * time.Millisecond
			continue
		}
		w.f.setErr(err)
		kind := "session"
		var ke *kindError
		if errors.As(err, &ke) {
			kind = ke.kind
		}
		w.f.m.Errors.WithLabelValues(w.f.cfg.Name, kind).Inc()
		log.Warn("slot session ended; restarting from the target's committed progress", "err", err, "retry_in", backoff)
		if kafkautil.Sleep(ctx, backoff) != nil {
			return
		}
	}
}

// kindError labels an error for the errors metric.
type kindError struct {
	kind string
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

func kinded(kind string, err error) error { return &kindError{kind, err} }

// session is one incarnation of a slot worker: fence, read progress,
// consume from there, commit batches. Any error ends the session; the
// next one starts again from what the target committed, which is what
// makes retries safe.
type session struct {
	w   *slotWorker
	log *slog.Logger

	// txns are the slot's producers: two transactional ones that take
	// turns in exactly-once mode (txn.go), one otherwise; cur is the one
	// whose transaction is filling.
	txns     []*txn
	cur      *txn
	ends     []*ending // transactions closed and not yet known committed, oldest first
	cons     *kgo.Client
	partsVer int64
	resync   bool
	active   map[flowstate.TP]*partState
	consumed map[flowstate.TP]struct{}
	limits   map[string]int32                             // target topic -> max.message.bytes
	stored   map[flowstate.TP]flowstate.PartitionProgress // last committed progress
	// lastClose is when the last transaction closed.
	lastClose time.Time
	// endCtx bounds the ends of closed transactions, which run beside
	// the session goroutine; endCancel gives them up when it ends.
	endCtx    context.Context
	endCancel context.CancelFunc

	mu sync.Mutex // guards limits and unacked

	// The slot's share of memory_budget (memory.go): unacked counts
	// the bytes produced and not yet answered by the target, acked
	// wakes a produce waiting for room.
	budget  slotBudget
	unacked int64
	acked   chan struct{}
}

type partState struct {
	target    string
	stopAt    int64 // a stopped partition copies nothing from here on (-1: not stopped)
	halted    bool  // stopped and no longer consumed
	committed int64 // next source offset, committed on the target
	closed    int64 // next source offset once the transactions closed so far commit
	pending   int64 // next source offset once the open transaction commits
	end       int64 // source high watermark last seen
	endAt     int64
	lastTS    time.Time
}

func (s *session) run(ctx context.Context) (err error) {
	f := s.w.f
	s.limits = map[string]int32{}
	s.acked = make(chan struct{}, 1)
	if err := s.newTxns(ctx); err != nil {
		return err
	}
	defer s.closeTxns()
	prog, err := flowstate.ReadProgress(ctx, s.txns[0].prod, f.progressTopic, s.w.slot)
	if err != nil {
		return kinded("progress", fmt.Errorf("slot %d: read progress from %s: %w", s.w.slot, f.opts.Target, err))
	}
	// Topics failed over are the target producers' now: read the
	// journal after fencing, so a session that starts after `godwit
	// failover` fenced this slot never writes them.
	if err := f.refreshFailedOver(ctx); err != nil {
		return kinded("journal", fmt.Errorf("slot %d: read failover state from %s: %w", s.w.slot, f.opts.Target, err))
	}
	s.active = map[flowstate.TP]*partState{}
	s.consumed = map[flowstate.TP]struct{}{}
	stored := map[flowstate.TP]flowstate.PartitionProgress{}
	if prog != nil {
		for _, p := range prog.Partitions {
			stored[flowstate.TP{Topic: p.Topic, Partition: p.Partition}] = p
		}
	}
	s.stored = stored
	defer func() {
		f.m.AssignedParts.WithLabelValues(f.cfg.Name).Sub(float64(len(s.active)))
		// Another instance may own these partitions next: drop their
		// per-partition series here so dashboards do not show a stale
		// value from this instance (the lag is the observer's,
		// observer.go).
		for tp := range s.active {
			part := strconv.Itoa(int(tp.Partition))
			f.m.LastTimestamp.DeleteLabelValues(f.cfg.Name, tp.Topic, part)
		}
	}()
	defer func() {
		if s.cons != nil {
			s.cons.Close()
		}
	}()
	if err := s.syncPartitions(ctx, prog == nil); err != nil {
		return err
	}
	s.log.Debug("slot session started", "partitions", len(s.active), "had_progress", prog != nil)

	s.lastClose = f.now()
	for ctx.Err() == nil {
		if err := s.settle(); err != nil {
			return err
		}
		if v := f.partsVer.Load(); v != s.partsVer || s.resync {
			// Partitions change with nothing in flight, so a
			// partition that leaves and comes back resumes from
			// what the target committed.
			if err := s.drain(ctx); err != nil {
				return err
			}
			if err := s.syncPartitions(ctx, false); err != nil {
				return err
			}
		}
		if err := s.rebudget(ctx); err != nil {
			return err
		}
		if err := s.batch(ctx); err != nil {
			return err
		}
		// Close the transaction when it has data, or every second
		// anyway so the target keeps a fresh observation of the
		// source's end offsets (what "data at risk" is computed
		// from). The next one fills while this one commits.
		if s.dirty() || f.now().Sub(s.lastClose) >= time.Second {
			if err := s.closeTxn(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}
