package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
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
		// lag from this instance.
		for tp := range s.active {
			part := strconv.Itoa(int(tp.Partition))
			f.m.Lag.DeleteLabelValues(f.cfg.Name, tp.Topic, part)
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

// syncPartitions aligns the consumed partitions with the flow's current
// set for this slot. Partitions without stored progress get a concrete
// start offset that is committed before any data, so a restart never
// re-resolves "latest" or a timestamp to a different place. A stopped
// partition keeps its place in the progress record but is no longer
// consumed once it reached its stop offset.
func (s *session) syncPartitions(ctx context.Context, firstRun bool) error {
	f := s.w.f
	s.partsVer = f.partsVer.Load()
	s.resync = false
	want := f.partitionsForSlot(s.w.slot)
	remove := map[string][]int32{}
	for tp, st := range s.active {
		if _, ok := want[tp]; !ok {
			delete(s.active, tp)
			f.m.AssignedParts.WithLabelValues(f.cfg.Name).Dec()
		} else if at, stopped := f.stopAt(tp); stopped {
			st.stopAt = at
			if at < 0 || st.committed >= at {
				st.halted = true
			}
		}
		if _, consumed := s.consumed[tp]; consumed && (s.active[tp] == nil || s.active[tp].halted) {
			remove[tp.Topic] = append(remove[tp.Topic], tp.Partition)
			delete(s.consumed, tp)
		}
	}
	if len(remove) > 0 && s.cons != nil {
		s.cons.RemoveConsumePartitions(remove)
	}
	var fresh, added []flowstate.TP
	for tp, info := range want {
		if _, ok := s.active[tp]; ok {
			continue
		}
		st := &partState{target: info.target, end: -1, stopAt: -1}
		if p, ok := s.stored[tp]; ok {
			st.committed, st.end, st.endAt = p.Next, p.SourceEnd, p.SourceEndAt
		} else {
			fresh = append(fresh, tp)
		}
		st.pending = st.committed
		s.active[tp] = st
		added = append(added, tp)
		f.m.AssignedParts.WithLabelValues(f.cfg.Name).Inc()
	}
	if len(fresh) > 0 {
		if err := s.resolveStart(ctx, fresh, firstRun); err != nil {
			return err
		}
		// Make the resolved start positions durable before copying.
		if err := s.commit(ctx); err != nil {
			return err
		}
	}
	if err := s.loadLimits(ctx, added); err != nil {
		return err
	}
	add := map[string]map[int32]kgo.Offset{}
	for _, tp := range added {
		st := s.active[tp]
		if at, stopped := f.stopAt(tp); stopped {
			st.stopAt = at
			if at < 0 || st.committed >= at {
				st.halted = true
				continue
			}
		}
		if add[tp.Topic] == nil {
			add[tp.Topic] = map[int32]kgo.Offset{}
		}
		add[tp.Topic][tp.Partition] = kgo.NoResetOffset().At(st.committed)
		s.consumed[tp] = struct{}{}
	}
	if s.cons == nil {
		return s.newConsumer(ctx, add)
	}
	if len(add) > 0 {
		s.cons.AddConsumePartitions(add)
	}
	return nil
}

// loadLimits reads the target topics' max.message.bytes, so the producer
// never builds a batch larger than the target accepts: a record the target
// cannot take then fails alone, and is named, instead of failing a batch
// of good records with it.
func (s *session) loadLimits(ctx context.Context, tps []flowstate.TP) error {
	f := s.w.f
	var topics []string
	s.mu.Lock()
	for _, tp := range tps {
		t := s.active[tp].target
		if _, ok := s.limits[t]; !ok {
			topics = append(topics, t)
			s.limits[t] = defaultBatchBytes
		}
	}
	s.mu.Unlock()
	if len(topics) == 0 {
		return nil
	}
	rcs, err := f.dstAdm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return kinded("metadata", cluster.Explain(f.opts.Target, fmt.Errorf("describe target topic configs: %w", err)))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rc := range rcs {
		if rc.Err != nil {
			continue
		}
		for _, c := range rc.Configs {
			if c.Key == "max.message.bytes" && c.Value != nil {
				if v, err := strconv.Atoi(*c.Value); err == nil && v >= 512 {
					s.limits[rc.Name] = int32(min(v, 1<<30))
				}
			}
		}
	}
	return nil
}

// defaultBatchBytes is Kafka's default max.message.bytes, used until a
// target topic's own value is known.
const defaultBatchBytes = 1048588

func (s *session) batchLimit(topic string) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.limits[topic]; ok {
		return v
	}
	return defaultBatchBytes
}

// newConsumer creates the session's source consumer at exact offsets.
// Offsets never reset on their own: an out-of-range offset is reported
// to outOfRange, which decides with the operator's interest in mind.
func (s *session) newConsumer(ctx context.Context, parts map[string]map[int32]kgo.Offset) error {
	f := s.w.f
	n := 0
	for _, ps := range parts {
		n += len(ps)
	}
	brokers, err := f.srcAdm.BrokerMetadata(ctx)
	if err != nil {
		return kinded("metadata", cluster.Explain(f.opts.Source, fmt.Errorf("flow %s: list source brokers (to size fetches): %w", f.cfg.Name, err)))
	}
	s.budget = newSlotBudget(f.cfg, f.ownedSlotCount(), len(brokers.Brokers), n)
	cl, err := f.opts.Source.Client(fmt.Sprintf("%s-slot-%d-consumer", f.cfg.Name, s.w.slot), f.log,
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records (transaction markers) are kept so progress
		// moves past them: without them a partition ending in an
		// aborted transaction would show lag forever.
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		// Fetch sizes come from the slot's share of memory_budget
		// (newSlotBudget): franz-go holds one response per broker plus
		// the one being copied. Over a high-RTT link a slot's
		// throughput is capped at about fetch bytes per round trip.
		kgo.FetchMaxBytes(s.budget.fetchBytes),
		kgo.FetchMaxPartitionBytes(s.budget.partitionBytes),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.ConsumePartitions(parts),
	)
	if err != nil {
		return err
	}
	s.cons = cl
	return nil
}

// resolveStart turns the flow's start position into offsets for
// partitions that have none stored. Only partitions present when the flow
// first runs use the configured start; partitions that appear later are
// new data and are copied from their beginning.
func (s *session) resolveStart(ctx context.Context, tps []flowstate.TP, firstRun bool) error {
	f := s.w.f
	topics := map[string]bool{}
	for _, tp := range tps {
		topics[tp.Topic] = true
	}
	start := f.cfg.Start
	if !firstRun {
		start = "earliest"
	}
	res, err := listOffsets(ctx, f, start, sortedKeys(topics))
	if err != nil {
		return kinded("metadata", cluster.Explain(f.opts.Source, fmt.Errorf("flow %s: resolve start position %q: %w", f.cfg.Name, start, err)))
	}
	for _, tp := range tps {
		off, ok := res[tp]
		if !ok {
			return kinded("metadata", fmt.Errorf("flow %s: no start offset for %s on %s", f.cfg.Name, tp, f.opts.Source))
		}
		st := s.active[tp]
		st.committed, st.pending = off, off
		s.log.Info("partition start resolved", "topic", tp.Topic, "partition", tp.Partition, "offset", off, "start", start)
	}
	return nil
}

// listOffsets resolves a start position for every partition of topics.
func listOffsets(ctx context.Context, f *Flow, start string, topics []string) (map[flowstate.TP]int64, error) {
	var (
		lo  kadm.ListedOffsets
		err error
	)
	switch start {
	case "earliest":
		lo, err = f.srcAdm.ListStartOffsets(ctx, topics...)
	case "latest":
		lo, err = f.srcAdm.ListEndOffsets(ctx, topics...)
	default:
		lo, err = f.srcAdm.ListOffsetsAfterMilli(ctx, f.cfg.StartTime().UnixMilli(), topics...)
	}
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, err
	}
	var ends kadm.ListedOffsets
	out := map[flowstate.TP]int64{}
	for t, ps := range lo {
		for p, o := range ps {
			off := o.Offset
			if off < 0 {
				// No record at or after the timestamp: start at
				// the end.
				if ends == nil {
					if ends, err = f.srcAdm.ListEndOffsets(ctx, topics...); err != nil {
						return nil, err
					}
				}
				e, _ := ends.Lookup(t, p)
				off = e.Offset
			}
			out[flowstate.TP{Topic: t, Partition: p}] = off
		}
	}
	return out, nil
}

// batchRec is what a committed batch reports to metrics.
type batchRec struct {
	topic string
	bytes int
	ts    time.Time
}

// batch polls and produces for up to commit_interval or max_batch_bytes.
func (s *session) batch(ctx context.Context) error {
	f := s.w.f
	deadline := f.now().Add(f.cfg.CommitInterval.D())
	bytes := 0
	for bytes < f.cfg.MaxBatchBytes && s.produceErr() == nil {
		remaining := deadline.Sub(f.now())
		if remaining <= 0 {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, remaining)
		fs := s.cons.PollRecords(pctx, 10000)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err := s.fetchErrors(ctx, fs); err != nil {
			return err
		}
		now := f.now().UnixMilli()
		var err error
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			tp := flowstate.TP{Topic: p.Topic, Partition: p.Partition}
			st := s.active[tp]
			if st == nil || err != nil {
				return
			}
			if p.HighWatermark > st.end {
				st.end, st.endAt = p.HighWatermark, now
			}
			for _, r := range p.Records {
				if err = s.copy(ctx, tp, st, r, &bytes); err != nil {
					return
				}
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// copy produces one source record to the target, unchanged except for the
// provenance headers.
func (s *session) copy(ctx context.Context, tp flowstate.TP, st *partState, r *kgo.Record, bytes *int) error {
	f := s.w.f
	if r.Offset < st.pending {
		return nil // already copied in this session
	}
	if r.Attrs.IsControl() {
		st.pending = r.Offset + 1
		return nil
	}
	if st.stopAt >= 0 && r.Offset >= st.stopAt {
		s.resync = true // stop consuming it after this batch commits
		return nil
	}
	origin, hasOrigin := naming.OriginOf(r.Headers)
	if hasOrigin && origin.Cluster == f.cfg.Target {
		// It came from the target: copying it back would loop. Where it
		// already is on the target goes into the offset map, so groups
		// translate exactly across it.
		f.m.Filtered.WithLabelValues(f.cfg.Name, "loop").Inc()
		if origin.Topic == st.target && origin.Partition == r.Partition {
			s.addMapping(tp, mapping{src: r.Offset, tgt: origin.Offset, origin: true})
		}
		st.pending = r.Offset + 1
		return nil
	}
	if f.cfg.ExactlyOnce() && !s.inTxn {
		if err := s.prod.BeginTransaction(); err != nil {
			return kinded("produce", fmt.Errorf("begin transaction: %w", err))
		}
		s.inTxn = true
	}
	out, size := replica(r, f.cfg.Source, st.target, hasOrigin)
	if f.rewrite != nil {
		k, v, err := f.rewrite(ctx, tp.Topic, out.Key, out.Value)
		if permanent(err) {
			s.fail(tp, r.Offset, size, err)
			return nil
		}
		if err != nil {
			return kinded("schema", fmt.Errorf("partition %s offset %d: %w", tp, r.Offset, err))
		}
		out.Key, out.Value = k, v
	}
	cost := int64(size) + recordMemOverhead
	if err := s.reserve(ctx, cost); err != nil {
		return err
	}
	*bytes += size
	s.batchRecs = append(s.batchRecs, batchRec{topic: tp.Topic, bytes: size, ts: r.Timestamp})
	offset := r.Offset
	s.prod.Produce(ctx, out, func(out *kgo.Record, err error) {
		s.release(cost)
		if err != nil {
			s.fail(tp, offset, len(out.Value)+len(out.Key), err)
			return
		}
		s.addMapping(tp, mapping{src: offset, tgt: out.Offset})
	})
	st.pending = r.Offset + 1
	st.lastTS = r.Timestamp
	return nil
}

// replica is the record produced to targetTopic for source record r:
// partition, key (nil stays nil), value (tombstones stay tombstones),
// headers in order and timestamp unchanged, plus the provenance headers
// unless r already has them (hasOrigin, from naming.OriginOf: the origin
// is where the record was first produced). size is r's key, value and
// header bytes, what a batch and the bytes metric count. It runs once per
// replicated record, so it is kept pure for the microbenchmark that
// guards its allocations (copy_bench_test.go).
func replica(r *kgo.Record, sourceCluster, targetTopic string, hasOrigin bool) (out *kgo.Record, size int) {
	headers := r.Headers
	if !hasOrigin {
		headers = make([]kgo.RecordHeader, 0, len(r.Headers)+4)
		headers = append(headers, r.Headers...)
		headers = naming.AppendOriginHeaders(headers, naming.Origin{
			Cluster: sourceCluster, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		})
	}
	out = &kgo.Record{
		Topic: targetTopic, Partition: r.Partition,
		Key: r.Key, Value: r.Value, Headers: headers, Timestamp: r.Timestamp,
	}
	size = len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		size += len(h.Key) + len(h.Value)
	}
	return out, size
}

func (s *session) addMapping(tp flowstate.TP, m mapping) {
	s.mu.Lock()
	if s.maps == nil {
		s.maps = map[flowstate.TP][]mapping{}
	}
	s.maps[tp] = append(s.maps[tp], m)
	s.mu.Unlock()
}

func (s *session) fail(tp flowstate.TP, offset int64, size int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures == nil {
		s.failures = map[flowstate.TP]error{}
	}
	re := &recordError{tp: tp, offset: offset, size: size, err: err}
	prev, ok := s.failures[tp].(*recordError)
	switch {
	case !ok:
		s.failures[tp] = re
	case tooLarge(err) && (!tooLarge(prev.err) || size > prev.size):
		// A refused batch fails all its records: blame the largest.
		s.failures[tp] = re
	}
	if s.firstErr == nil {
		s.firstErr = s.failures[tp]
	}
}

func (s *session) produceErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstErr
}

type recordError struct {
	tp     flowstate.TP
	offset int64
	size   int
	err    error
}

func (e *recordError) Error() string {
	return fmt.Sprintf("%s offset %d (%d bytes): %v", e.tp, e.offset, e.size, e.err)
}
func (e *recordError) Unwrap() error { return e.err }

func (s *session) dirty() bool {
	if s.inTxn {
		return true
	}
	for _, st := range s.active {
		if st.pending != st.committed {
			return true
		}
	}
	return false
}

// commit makes the open batch and the progress it reaches durable on the
// target together: one transaction in exactly-once mode; data first, then
// progress, in at-least-once mode.
func (s *session) commit(ctx context.Context) error {
	f := s.w.f
	eos := f.cfg.ExactlyOnce()
	if eos && !s.inTxn {
		if err := s.prod.BeginTransaction(); err != nil {
			return kinded("produce", fmt.Errorf("begin transaction: %w", err))
		}
		s.inTxn = true
	}
	if err := s.prod.Flush(ctx); err != nil {
		return kinded("produce", fmt.Errorf("flush: %w", err))
	}
	if err := s.checkFailures(ctx); err != nil {
		return err
	}
	now := f.now()
	p := &flowstate.Progress{Version: 1, Flow: f.cfg.Name, Slot: s.w.slot, WrittenAt: now.UnixMilli()}
	for tp, st := range s.active {
		p.Partitions = append(p.Partitions, flowstate.PartitionProgress{
			Topic: tp.Topic, TargetTopic: st.target, Partition: tp.Partition,
			Next: st.pending, SourceEnd: st.end, SourceEndAt: st.endAt,
		})
	}
	// A failed-over partition keeps its last committed position, frozen:
	// failover reads where replication stopped (and the data at risk)
	// from it, and translates groups with it, after fencing the slot.
	for tp, pp := range s.stored {
		if _, ok := s.active[tp]; !ok && f.isFailedOver(tp.Topic) {
			p.Partitions = append(p.Partitions, pp)
		}
	}
	sortProgress(p)
	val, err := flowstate.EncodeProgress(p)
	if err != nil {
		return err
	}
	// The offset map entries and the progress record go into the same
	// transaction as the data they describe.
	s.mu.Lock()
	maps := s.maps
	s.maps = nil
	s.mu.Unlock()
	var bookkeeping []*kgo.Record
	for _, tp := range sortedTPs(maps) {
		e := &flowstate.OffsetMapEntry{Version: 1, Topic: tp.Topic, TargetTopic: s.active[tp].target, Partition: tp.Partition, Runs: buildRuns(maps[tp])}
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		bookkeeping = append(bookkeeping, &kgo.Record{Topic: f.offsetMapTopic, Partition: int32(s.w.slot), Key: flowstate.OffsetMapKey(e), Value: b, Timestamp: now})
	}
	bookkeeping = append(bookkeeping, &kgo.Record{Topic: f.progressTopic, Partition: int32(s.w.slot), Key: flowstate.ProgressKey(s.w.slot), Value: val, Timestamp: now})
	if err := s.prod.ProduceSync(ctx, bookkeeping...).FirstErr(); err != nil {
		return kinded("progress", fmt.Errorf("write progress and offset map to %s: %w", f.opts.Target, err))
	}
	if eos {
		if err := s.prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
			f.m.Transactions.WithLabelValues(f.cfg.Name, "failed").Inc()
			if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
				return kinded("fenced", fmt.Errorf("slot %d was taken over by another instance: %w", s.w.slot, err))
			}
			return kinded("commit", fmt.Errorf("commit transaction on %s: %w", f.opts.Target, err))
		}
		s.inTxn = false
	}
	f.m.Transactions.WithLabelValues(f.cfg.Name, "committed").Inc()
	s.committed(now, p)
	return nil
}

// committed updates state and metrics after a successful commit.
func (s *session) committed(now time.Time, p *flowstate.Progress) {
	f := s.w.f
	for _, pp := range p.Partitions {
		tp := flowstate.TP{Topic: pp.Topic, Partition: pp.Partition}
		st := s.active[tp]
		if st == nil {
			continue // failed over: kept frozen in the record only
		}
		st.committed = pp.Next
		s.stored[tp] = pp
		part := strconv.Itoa(int(tp.Partition))
		if st.end >= 0 {
			f.m.Lag.WithLabelValues(f.cfg.Name, tp.Topic, part).Set(float64(max(st.end-st.committed, 0)))
		}
		if !st.lastTS.IsZero() {
			f.m.LastTimestamp.WithLabelValues(f.cfg.Name, tp.Topic, part).Set(float64(st.lastTS.UnixMilli()) / 1000)
		}
	}
	if len(s.batchRecs) == 0 {
		return
	}
	lat := f.m.Latency.WithLabelValues(f.cfg.Name)
	var topic string
	var recs, bytes float64
	flush := func() {
		if recs > 0 {
			f.m.Records.WithLabelValues(f.cfg.Name, topic).Add(recs)
			f.m.Bytes.WithLabelValues(f.cfg.Name, topic).Add(bytes)
		}
	}
	for _, b := range s.batchRecs {
		if b.topic != topic {
			flush()
			topic, recs, bytes = b.topic, 0, 0
		}
		recs++
		bytes += float64(b.bytes)
		lat.Observe(now.Sub(b.ts).Seconds())
	}
	flush()
	s.batchRecs = s.batchRecs[:0]
}

// checkFailures stops partitions whose records the target refused for a
// reason retrying cannot fix, and ends the session so the batch is redone
// without them. Nothing is skipped: a stopped partition's progress stays
// before the refused record.
func (s *session) checkFailures(ctx context.Context) error {
	s.mu.Lock()
	failures, first := s.failures, s.firstErr
	s.mu.Unlock()
	if first == nil {
		return nil
	}
	f := s.w.f
	for tp, err := range failures {
		var re *recordError
		if !errors.As(err, &re) || !partitionFatal(re.err) {
			continue
		}
		st := s.active[tp]
		target := ""
		if st != nil {
			target = st.target
		}
		if tooLarge(re.err) && target != "" {
			// The batch may have been built against a stale limit:
			// stop only if the record alone exceeds the target's
			// current limit; otherwise the next session, which
			// re-reads limits, splits the batch.
			s.mu.Lock()
			delete(s.limits, target)
			s.mu.Unlock()
			if err := s.loadLimits(ctx, []flowstate.TP{tp}); err == nil && int32(re.size+recordOverhead) <= s.batchLimit(target) {
				s.log.Warn("target refused a batch as too large; retrying with the target's current max.message.bytes", "topic", tp.Topic, "partition", tp.Partition, "target_topic", target, "limit", s.batchLimit(target))
				continue
			}
		}
		msg := fmt.Errorf("flow %s: partition %s stopped: record at source offset %d (%d bytes) refused by target topic %q on %s: %w%s",
			f.cfg.Name, tp, re.offset, re.size, target, f.opts.Target, re.err, s.remedy(ctx, target, re.err))
		if permanent(re.err) {
			msg = fmt.Errorf("flow %s: partition %s stopped: record at source offset %d (%d bytes) cannot be written to target topic %q: %w; fix the cause, then restart godwit",
				f.cfg.Name, tp, re.offset, re.size, target, re.err)
		}
		f.markStopped(tp, msg, re.offset)
		kind := "produce"
		switch {
		case errors.Is(re.err, kerr.MessageTooLarge), errors.Is(re.err, kerr.RecordListTooLarge):
			kind = "record_too_large"
		case errors.Is(re.err, kerr.TopicAuthorizationFailed):
			kind = "authorization"
		case permanent(re.err):
			kind = "schema"
		}
		f.m.Errors.WithLabelValues(f.cfg.Name, kind).Inc()
		s.log.Error("partition stopped; other partitions continue", "topic", tp.Topic, "partition", tp.Partition, "err", msg)
	}
	return kinded("produce", fmt.Errorf("produce to %s: %w", f.opts.Target, first))
}

// recordOverhead bounds the bytes a record batch adds around one record
// (batch header, record framing, godwit's provenance headers).
const recordOverhead = 256

func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// permanent reports an error that says retrying cannot fix it (a record
// the rewriter cannot make valid on the target).
func permanent(err error) bool {
	var p interface{ Permanent() bool }
	return err != nil && errors.As(err, &p) && p.Permanent()
}

// partitionFatal reports produce errors that retrying cannot fix.
func partitionFatal(err error) bool {
	if permanent(err) {
		return true
	}
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.TopicAuthorizationFailed,
		kerr.InvalidRecord, kerr.CorruptMessage, kerr.PolicyViolation, kerr.InvalidTopicException, kerr.InvalidRequiredAcks} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *session) remedy(ctx context.Context, target string, err error) string {
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		limit := "its max.message.bytes"
		rc, derr := s.w.f.dstAdm.DescribeTopicConfigs(ctx, target)
		if derr == nil {
			if r, err := rc.On(target, nil); err == nil {
				for _, c := range r.Configs {
					if c.Key == "max.message.bytes" && c.Value != nil {
						limit = "max.message.bytes=" + *c.Value
					}
				}
			}
		}
		return fmt.Sprintf(" (target limit %s); raise max.message.bytes on the target topic, then restart godwit", limit)
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return "; grant godwit's principal Write on the target topic (docs/security.md), then restart godwit"
	}
	return "; fix the cause, then restart godwit"
}

// fetchErrors handles per-partition fetch errors: authorization stops the
// topic's partitions, retention loss is counted and recorded, and the rest
// are retried by the client.
func (s *session) fetchErrors(ctx context.Context, fs kgo.Fetches) error {
	f := s.w.f
	var out error
	fs.EachError(func(topic string, partition int32, err error) {
		if out != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		tp := flowstate.TP{Topic: topic, Partition: partition}
		switch {
		case errors.Is(err, kerr.TopicAuthorizationFailed):
			for atp := range s.active {
				if atp.Topic == topic {
					f.markStoppedHere(atp, fmt.Errorf("flow %s: source topic %q on %s: not authorized to read (grant godwit's principal Read and Describe on it, then restart godwit): %w", f.cfg.Name, topic, f.opts.Source, err))
				}
			}
			f.m.Errors.WithLabelValues(f.cfg.Name, "authorization").Inc()
			s.log.Error("source topic not readable; its partitions stopped, others continue", "topic", topic, "err", err)
			s.resync = true // stop consuming the topic's partitions
		case errors.Is(err, kerr.OffsetOutOfRange):
			out = s.outOfRange(ctx, tp, err)
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			s.log.Debug("source partition unknown (deleted?)", "topic", topic, "partition", partition)
		default:
			f.m.Errors.WithLabelValues(f.cfg.Name, "fetch").Inc()
			s.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
		}
	})
	return out
}

// outOfRange handles a source offset that no longer exists. Below the log
// start, retention deleted records before godwit copied them: they are
// gone from the source and cannot be copied, so the loss is counted and
// logged as an error and replication continues from the log start. Above
// the end, the source went backwards (topic recreated, unclean election):
// the partition stops for an operator to decide.
func (s *session) outOfRange(ctx context.Context, tp flowstate.TP, ferr error) error {
	f := s.w.f
	st := s.active[tp]
	if st == nil {
		return nil
	}
	starts, err := f.srcAdm.ListStartOffsets(ctx, tp.Topic)
	if err != nil {
		return kinded("fetch", fmt.Errorf("%s: offset out of range and start offsets unavailable: %w", tp, err))
	}
	so, _ := starts.Lookup(tp.Topic, tp.Partition)
	if st.pending < so.Offset {
		lost := so.Offset - st.pending
		f.m.LostToRetention.WithLabelValues(f.cfg.Name, tp.Topic).Add(float64(lost))
		s.log.Error("source records deleted by retention before they were replicated; continuing from the log start",
			"topic", tp.Topic, "partition", tp.Partition, "from", st.pending, "to", so.Offset, "lost_records", lost,
			"hint", "replication fell further behind than the source's retention; add capacity or raise retention")
		st.pending = so.Offset
		if err := s.commit(ctx); err != nil {
			return err
		}
		return kinded("retention_loss", fmt.Errorf("%s: resuming at log start %d after %d records lost to retention", tp, so.Offset, lost))
	}
	f.markStoppedHere(tp, fmt.Errorf("flow %s: source partition %s on %s no longer has offset %d (its end is lower: topic recreated or unclean leader election?): %w; inspect both sides, then restart godwit",
		f.cfg.Name, tp, f.opts.Source, st.pending, ferr))
	s.resync = true
	return nil
}

func sortedTPs[V any](m map[flowstate.TP]V) []flowstate.TP {
	out := make([]flowstate.TP, 0, len(m))
	for tp := range m {
		out = append(out, tp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

func sortProgress(p *flowstate.Progress) {
	sort.Slice(p.Partitions, func(i, j int) bool {
		a, b := p.Partitions[i], p.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
}
