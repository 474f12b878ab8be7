package replicate

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/flowstate"
)

// dirty reports whether the transaction being filled carries anything:
// records, or source positions that moved without a record (control
// records, records filtered as loops).
func (s *session) dirty() bool {
	if s.cur.filling {
		return true
	}
	for _, st := range s.active {
		if st.pending != st.closed {
			return true
		}
	}
	return false
}

// commit makes everything copied so far and the progress it reaches
// durable on the target, and waits for it: used where the session needs
// a durable point (start positions resolved, records lost to retention)
// rather than the pipeline's next one.
func (s *session) commit(ctx context.Context) error {
	if err := s.closeTxn(ctx); err != nil {
		return err
	}
	return s.drain(ctx)
}

// progress is the slot's progress once the transaction being filled
// commits.
func (s *session) progress(now time.Time) *flowstate.Progress {
	f := s.w.f
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
	return p
}

// mapRecords takes the offset-map entries of t's acknowledged records, as
// records for the same transaction as the data they describe.
func (s *session) mapRecords(t *txn, now time.Time) ([]*kgo.Record, error) {
	f := s.w.f
	t.mu.Lock()
	maps := t.maps
	t.maps = nil
	t.mu.Unlock()
	var out []*kgo.Record
	for _, tp := range sortedTPs(maps) {
		target := ""
		if st := s.active[tp]; st != nil {
			target = st.target
		}
		e := &flowstate.OffsetMapEntry{Version: 1, Topic: tp.Topic, TargetTopic: target, Partition: tp.Partition, Runs: buildRuns(maps[tp])}
		b, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		out = append(out, &kgo.Record{Topic: f.offsetMapTopic, Partition: int32(s.w.slot), Key: flowstate.OffsetMapKey(e), Value: b, Timestamp: now})
	}
	return out, nil
}

// committed updates state and metrics after a transaction committed at
// at: p is the progress it carried, recs the records it copied.
func (s *session) committed(at time.Time, p *flowstate.Progress, recs []batchRec) {
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
	if len(recs) == 0 {
		return
	}
	lat := f.m.Latency.WithLabelValues(f.cfg.Name)
	var topic string
	var n, bytes float64
	flush := func() {
		if n > 0 {
			f.m.Records.WithLabelValues(f.cfg.Name, topic).Add(n)
			f.m.Bytes.WithLabelValues(f.cfg.Name, topic).Add(bytes)
		}
	}
	for _, b := range recs {
		if b.topic != topic {
			flush()
			topic, n, bytes = b.topic, 0, 0
		}
		n++
		bytes += float64(b.bytes)
		lat.Observe(at.Sub(b.ts).Seconds())
	}
	flush()
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
