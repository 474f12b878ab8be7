package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/naming"
)

// Pipelined exactly-once (docs/architecture.md, "Data plane").
//
// A slot copies through a chain of target transactions, each carrying
// records, the offset-map entries for them and the progress they reach.
// Ending a transaction costs round trips no data moves in: the
// acknowledgements of its last records, the offset-map entries (which
// need those acknowledgements: they hold target offsets), EndTxn and the
// markers the target writes. So the slot has two transactional producers
// that take turns: while transaction k ends on one, k+1 fills on the
// other, and the consumer keeps fetching throughout. Three rules keep it
// as exact as one producer:
//
//   - k+1 produces only after k's records are acknowledged (closeTxn
//     flushes before switching), so the records of a partition land on
//     the target in source order although two producers write it;
//   - k+1 commits only after k committed (end waits for its
//     predecessor); if k fails, k+1 is aborted with the session, so a
//     committed progress record never covers aborted records;
//   - a new owner fences both transactional ids before it reads the
//     slot's progress (newTxns), so nothing either producer of an old
//     owner had open can commit after that.
//
// One producer cannot do this: Kafka allows one open transaction per
// transactional id, and k+1 cannot begin before EndTxn of k returns.

// txn is one of a slot session's producers and the transaction it fills.
type txn struct {
	id   string // transactional id ("" in at-least-once mode)
	prod *kgo.Client

	// Written by produce callbacks while the transaction fills; read once
	// it is flushed.
	mu       sync.Mutex
	maps     map[flowstate.TP][]mapping // where the records landed
	failures map[flowstate.TP]error     // produce failures
	firstErr error
	bookErr  error // the progress record's failure

	// The session goroutine's own.
	filling bool       // a transaction has begun and is not closed
	recs    []batchRec // records produced, for metrics at commit
	bytes   int        // record bytes produced
	// ending is the end of the transaction last closed on prod, until
	// the session saw it succeed: prod fills again only after that.
	ending *ending
}

// ending is a closed transaction on its way to commit.
type ending struct {
	t    *txn
	done chan struct{}
	err  error     // set before done closes
	at   time.Time // when it closed
	// committedAt is when its commit returned (set before done closes):
	// the end of the replication latency of its records.
	committedAt time.Time
	p           *flowstate.Progress
	recs        []batchRec
}

// newTxns creates the session's producers and, in exactly-once mode,
// fences every previous writer of the slot.
func (s *session) newTxns(ctx context.Context) error {
	f := s.w.f
	eos := f.cfg.ExactlyOnce()
	s.endCtx, s.endCancel = context.WithCancel(ctx)
	ids := []string{""}
	if eos {
		ids = s.w.txnIDs()
	}
	names := naming.SlotProducerClients(f.cfg, s.w.slot)
	for i, id := range ids {
		// No RecordDeliveryTimeout: franz-go measures it from the
		// record's timestamp, which for replicated records is the
		// source's and may be old. Retries are bounded by the session
		// instead.
		popts := []kgo.Opt{
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerBatchMaxBytesFn(s.batchLimit),
			// Records in flight to the target are bounded by the
			// slot's share of memory_budget (reserve, in copy), not
			// by MaxBufferedBytes: franz-go fails a record larger
			// than that outright, and the target may accept larger
			// ones.
			kgo.ProducerLinger(5 * time.Millisecond),
			kgo.UnknownTopicRetries(5),
			kgo.MetadataMinAge(250 * time.Millisecond),
			// Explicit: franz-go would otherwise snappy every batch
			// (config.DefaultCompression says why none).
			kgo.ProducerBatchCompression(codec(f.cfg.Compression)),
		}
		if eos {
			popts = append(popts, kgo.TransactionalID(id), kgo.TransactionTimeout(60*time.Second))
		}
		cl, err := f.opts.Target.Client(names[i], f.log, popts...)
		if err != nil {
			return err
		}
		s.txns = append(s.txns, &txn{id: id, prod: cl})
	}
	s.cur = s.txns[0]
	if !eos {
		return nil
	}
	// Fence every previous writer of this slot before reading its
	// progress: after this, nothing it had in flight can commit.
	for _, t := range s.txns {
		if _, _, err := t.prod.ProducerID(ctx); err != nil {
			return kinded("fence", fmt.Errorf("slot %d: init transactional id %q on %s: %w", s.w.slot, t.id, f.opts.Target, err))
		}
	}
	return nil
}

// closeTxns ends the session's producers: transactions still ending are
// given up, open ones aborted, bounded, so the next owner does not wait
// for the transaction timeout.
func (s *session) closeTxns() {
	if s.endCancel != nil {
		s.endCancel()
	}
	for _, e := range s.ends {
		<-e.done
	}
	actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, t := range s.txns {
		if t.id != "" {
			// A no-op on a producer with no transaction open.
			_ = t.prod.AbortBufferedRecords(actx)
			_ = t.prod.EndTransaction(actx, kgo.TryAbort)
		}
		t.prod.Close()
	}
}

// begin makes sure the transaction being filled is open, once the
// producer's previous transaction committed.
func (s *session) begin(ctx context.Context) error {
	t := s.cur
	if t.filling {
		return nil
	}
	if t.ending != nil {
		if err := s.settleThrough(ctx, t.ending); err != nil {
			return err
		}
	}
	if t.id != "" {
		if err := t.prod.BeginTransaction(); err != nil {
			return kinded("produce", fmt.Errorf("begin transaction: %w", err))
		}
	}
	t.filling = true
	return nil
}

// closeTxn closes the transaction being filled: its progress record goes
// with its data, its data is flushed and checked, and its end (offset map
// entries, commit) goes on in the background while the other producer
// fills the next one. In at-least-once mode the progress follows the
// acknowledged data, and nothing overlaps.
func (s *session) closeTxn(ctx context.Context) error {
	f := s.w.f
	eos := f.cfg.ExactlyOnce()
	if err := s.begin(ctx); err != nil {
		return err
	}
	t := s.cur
	now := f.now()
	p := s.progress(now)
	val, err := flowstate.EncodeProgress(p)
	if err != nil {
		return err
	}
	prec := &kgo.Record{Topic: f.progressTopic, Partition: int32(s.w.slot), Key: flowstate.ProgressKey(s.w.slot), Value: val, Timestamp: now}
	if eos {
		// The progress record depends on source positions only: it
		// is produced with the data, not a round trip after it.
		t.prod.Produce(ctx, prec, func(_ *kgo.Record, err error) {
			if err != nil {
				t.mu.Lock()
				t.bookErr = err
				t.mu.Unlock()
			}
		})
	}
	if err := t.prod.Flush(ctx); err != nil {
		return kinded("produce", fmt.Errorf("flush: %w", err))
	}
	if err := s.checkFailures(ctx, t); err != nil {
		return err
	}
	t.mu.Lock()
	berr := t.bookErr
	t.mu.Unlock()
	if berr != nil {
		return kinded("progress", fmt.Errorf("write progress to %s: %w", f.opts.Target, berr))
	}
	book, err := s.mapRecords(t, now)
	if err != nil {
		return err
	}
	if !eos {
		book = append(book, prec)
	}
	for _, st := range s.active {
		st.closed = st.pending
	}
	e := &ending{t: t, done: make(chan struct{}), at: now, p: p, recs: t.recs}
	var prev *ending
	if n := len(s.ends); n > 0 {
		prev = s.ends[n-1]
	}
	s.ends = append(s.ends, e)
	t.ending, t.filling, t.recs, t.bytes = e, false, nil, 0
	s.lastClose = now
	if !eos {
		e.err = s.end(s.endCtx, e, prev, book)
		e.committedAt = f.now()
		close(e.done)
		return s.settleThrough(ctx, e)
	}
	go func() {
		e.err = s.end(s.endCtx, e, prev, book)
		e.committedAt = f.now()
		close(e.done)
	}()
	for i, x := range s.txns {
		if x == t {
			s.cur = s.txns[(i+1)%len(s.txns)]
		}
	}
	return nil
}

// end writes a closed transaction's offset-map entries and commits it,
// once its predecessor committed. It runs beside the session goroutine
// and touches only its own producer.
func (s *session) end(ctx context.Context, e, prev *ending, book []*kgo.Record) error {
	f := s.w.f
	t := e.t
	// After the predecessor: the offset map then lists the entries in
	// the order they were copied, as with one producer.
	if prev != nil {
		select {
		case <-prev.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if prev.err != nil {
			// Its records follow the failed one's on the target and
			// its progress covers them: it is aborted with the session.
			return fmt.Errorf("not committed: the transaction before it failed: %w", prev.err)
		}
	}
	if len(book) > 0 {
		if err := t.prod.ProduceSync(ctx, book...).FirstErr(); err != nil {
			return kinded("progress", fmt.Errorf("write progress and offset map to %s: %w", f.opts.Target, err))
		}
	}
	if t.id == "" {
		return nil
	}
	if err := t.prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		f.m.Transactions.WithLabelValues(f.cfg.Name, "failed").Inc()
		if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
			return kinded("fenced", fmt.Errorf("slot %d was taken over by another instance: %w", s.w.slot, err))
		}
		return kinded("commit", fmt.Errorf("commit transaction on %s: %w", f.opts.Target, err))
	}
	return nil
}

// settleThrough waits for the closed transactions up to and including e
// to commit, oldest first, and applies each: its progress becomes the
// committed state. The first failure ends the session.
func (s *session) settleThrough(ctx context.Context, e *ending) error {
	for len(s.ends) > 0 {
		x := s.ends[0]
		select {
		case <-x.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if x.err != nil {
			return x.err
		}
		s.ends = s.ends[1:]
		s.settled(x)
		if x == e {
			return nil
		}
	}
	return nil
}

// settle applies the transactions that have committed, without waiting.
func (s *session) settle() error {
	for len(s.ends) > 0 {
		select {
		case <-s.ends[0].done:
		default:
			return nil
		}
		if err := s.settleThrough(context.Background(), s.ends[0]); err != nil {
			return err
		}
	}
	return nil
}

// drain waits until every closed transaction committed.
func (s *session) drain(ctx context.Context) error {
	if n := len(s.ends); n > 0 {
		return s.settleThrough(ctx, s.ends[n-1])
	}
	return nil
}

func (s *session) settled(e *ending) {
	if e.t.ending == e {
		e.t.ending = nil
		if e.t.recs == nil {
			e.t.recs = e.recs[:0] // reuse the slice for the producer's next transaction
		}
	}
	s.w.f.m.Transactions.WithLabelValues(s.w.f.cfg.Name, "committed").Inc()
	s.committed(e.committedAt, e.p, e.recs)
}

func (t *txn) addMapping(tp flowstate.TP, m mapping) {
	t.mu.Lock()
	if t.maps == nil {
		t.maps = map[flowstate.TP][]mapping{}
	}
	t.maps[tp] = append(t.maps[tp], m)
	t.mu.Unlock()
}

func (t *txn) fail(tp flowstate.TP, offset int64, size int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failures == nil {
		t.failures = map[flowstate.TP]error{}
	}
	re := &recordError{tp: tp, offset: offset, size: size, err: err}
	prev, ok := t.failures[tp].(*recordError)
	switch {
	case !ok:
		t.failures[tp] = re
	case tooLarge(err) && (!tooLarge(prev.err) || size > prev.size):
		// A refused batch fails all its records: blame the largest.
		t.failures[tp] = re
	}
	if t.firstErr == nil {
		t.firstErr = t.failures[tp]
	}
}

func (t *txn) produceErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.firstErr
}

// codec is the producer codec for a flow's compression setting (validated
// by config: none, gzip, snappy, lz4, zstd).
func codec(name string) kgo.CompressionCodec {
	switch name {
	case config.CompressionGzip:
		return kgo.GzipCompression()
	case config.CompressionSnappy:
		return kgo.SnappyCompression()
	case config.CompressionLZ4:
		return kgo.Lz4Compression()
	case config.CompressionZstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}
