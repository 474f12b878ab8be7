package replicate

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/naming"
)

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
	for bytes < f.cfg.MaxBatchBytes && s.cur.produceErr() == nil {
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
			s.cur.addMapping(tp, mapping{src: r.Offset, tgt: origin.Offset, origin: true})
		}
		st.pending = r.Offset + 1
		return nil
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	t := s.cur
	out, size := replica(r, f.cfg.Source, st.target, hasOrigin)
	if f.rewrite != nil {
		k, v, err := f.rewrite(ctx, tp.Topic, out.Key, out.Value)
		if permanent(err) {
			t.fail(tp, r.Offset, size, err)
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
	t.recs = append(t.recs, batchRec{topic: tp.Topic, bytes: size, ts: r.Timestamp})
	t.bytes += size
	offset := r.Offset
	t.prod.Produce(ctx, out, func(out *kgo.Record, err error) {
		s.release(cost)
		if err != nil {
			t.fail(tp, offset, len(out.Value)+len(out.Key), err)
			return
		}
		t.addMapping(tp, mapping{src: offset, tgt: out.Offset})
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
