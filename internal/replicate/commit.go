package replicate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/flowstate"
)

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
