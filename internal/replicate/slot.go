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
)

// slotWorker replicates the source partitions hashed to one slot. It owns
// one transactional id, so a new owner of the slot fences the old one
// (InitProducerID bumps the epoch and aborts its open transaction) before
// reading where the slot got to.
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

func (w *slotWorker) txnID() string {
	return "godwit-" + w.f.cfg.Source + "-" + w.f.cfg.Target + "-slot-" + strconv.Itoa(w.slot)
}

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

	prod, cons *kgo.Client
	partsVer   int64
	resync     bool
	active     map[flowstate.TP]*partState
	consumed   map[flowstate.TP]struct{}
	limits     map[string]int32                             // target topic -> max.message.bytes
	stored     map[flowstate.TP]flowstate.PartitionProgress // last committed progress
	inTxn      bool
	batchRecs  []batchRec

	mu       sync.Mutex
	maps     map[flowstate.TP][]mapping // where the open batch's records landed
	failures map[flowstate.TP]error     // produce failures of the open batch
	firstErr error

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
	pending   int64 // next source offset once the open batch commits
	end       int64 // source high watermark last seen
	endAt     int64
	lastTS    time.Time
}

func (s *session) run(ctx context.Context) (err error) {
	f := s.w.f
	eos := f.cfg.ExactlyOnce()
	s.limits = map[string]int32{}
	s.acked = make(chan struct{}, 1)
	// No RecordDeliveryTimeout: franz-go measures it from the record's
	// timestamp, which for replicated records is the source's and may
	// be old. Retries are bounded by the session instead.
	popts := []kgo.Opt{
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytesFn(s.batchLimit),
		// Records in flight to the target are bounded by the slot's
		// share of memory_budget (reserve, in copy), not by
		// MaxBufferedBytes: franz-go fails a record larger than that
		// outright, and the target may accept larger ones.
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.UnknownTopicRetries(5),
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
	if eos {
		popts = append(popts, kgo.TransactionalID(s.w.txnID()), kgo.TransactionTimeout(60*time.Second))
	}
	if s.prod, err = f.opts.Target.Client(fmt.Sprintf("%s-slot-%d-producer", f.cfg.Name, s.w.slot), f.log, popts...); err != nil {
		return err
	}
	defer s.prod.Close()
	if eos {
		// Fence any previous owner of this slot before reading its
		// progress: after this, nothing it had in flight can commit.
		if _, _, err := s.prod.ProducerID(ctx); err != nil {
			return kinded("fence", fmt.Errorf("slot %d: init transactional id %q on %s: %w", s.w.slot, s.w.txnID(), f.opts.Target, err))
		}
	}
	prog, err := flowstate.ReadProgress(ctx, s.prod, f.progressTopic, s.w.slot)
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

	defer func() {
		if s.inTxn {
			// Shutdown or failure with a transaction open: abort it,
			// bounded, so the next owner does not wait for the
			// transaction timeout.
			actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.prod.AbortBufferedRecords(actx)
			_ = s.prod.EndTransaction(actx, kgo.TryAbort)
			cancel()
		}
	}()
	lastCommit := f.now()
	for ctx.Err() == nil {
		if v := f.partsVer.Load(); v != s.partsVer || s.resync {
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
		// Commit when there is data, or every second anyway so the
		// target keeps a fresh observation of the source's end
		// offsets (what "data at risk" is computed from).
		if s.dirty() || f.now().Sub(lastCommit) >= time.Second {
			if err := s.commit(ctx); err != nil {
				return err
			}
			lastCommit = f.now()
		}
	}
	return nil
}
