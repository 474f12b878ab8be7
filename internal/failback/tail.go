package failback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/offsets"
)

// advanceResult is advance_progress's detail: the A->B replicated offset
// of each tail partition ("topic/partition") after it.
type advanceResult struct {
	ReplicatedOffset map[string]int64 `json:"replicated_offset"`
}

// tailResult is plan_tail's and copy_tail's detail.
type tailResult struct {
	Partitions []journal.TailProgress `json:"partitions"`
	Count      TailCount              `json:"count"`
}

func (r *runner) tailResult() *tailResult {
	out := &tailResult{}
	keys := slices.Collect(maps.Keys(r.fb.Tail))
	sort.Slice(keys, func(i, j int) bool {
		a, b := r.fb.Tail[keys[i]], r.fb.Tail[keys[j]]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	for _, k := range keys {
		t := *r.fb.Tail[k]
		out.Partitions = append(out.Partitions, t)
		out.Count.Planned += t.End - t.From
		out.Count.Copied += t.Copied
		out.Count.Filtered += t.Filtered
	}
	return out
}

// planTail fixes, per failed-over partition, A's tail: from the frozen
// replicated offset (A->B progress on B) to A's last stable offset now.
func (r *runner) planTail(ctx context.Context) (*tailResult, error) {
	f := r.o.Flow
	store := offsets.NewStore(f, r.dcl)
	if err := store.Refresh(ctx); err != nil {
		return nil, cluster.Explain(r.dst, err)
	}
	topics := r.params().Topics
	ends, err := kadm.NewClient(r.scl).ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, cluster.Explain(r.src, fmt.Errorf("flow %s: list end offsets on %s: %w", f.Name, f.Source, err))
	}
	tail := map[string]*journal.TailProgress{}
	ends.Each(func(o kadm.ListedOffset) {
		p, _ := store.Progress(flowstate.TP{Topic: o.Topic, Partition: o.Partition})
		to := store.TargetTopic(o.Topic)
		if r.params().Tail == TailQuarantine {
			to += QuarantineSuffix
		}
		t := &journal.TailProgress{Topic: o.Topic, Partition: o.Partition, To: to, From: p.Next, End: max(o.Offset, p.Next), Next: p.Next}
		tail[journal.TailKey(o.Topic, o.Partition)] = t
	})
	r.fb.Tail = tail
	return r.tailResult(), nil
}

const tailTxnRecords = 500

// copyTail copies every planned tail in transactions of the failback
// transactional id, each committing the records and the tail's new
// position together.
func (r *runner) copyTail(ctx context.Context) (*tailResult, error) {
	if r.o.DryRun {
		return r.tailResult(), nil
	}
	f := r.o.Flow
	quarantine := r.params().Tail == TailQuarantine
	if quarantine {
		if err := r.ensureQuarantine(ctx); err != nil {
			return r.tailResult(), err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.fb.Tail)) {
		t := r.fb.Tail[k]
		for t.Next < t.End {
			hi := min(t.Next+tailTxnRecords, t.End)
			recs, err := kafkautil.ReadRange(ctx, r.scl, t.Topic, t.Partition, t.Next, hi, true)
			if err != nil {
				return r.tailResult(), cluster.Explain(r.src, fmt.Errorf("read tail %s[%d] %d..%d: %w", t.Topic, t.Partition, t.Next, hi, err))
			}
			var out []*kgo.Record
			var filtered int64
			for _, rec := range recs {
				if rec.Attrs.IsControl() {
					continue
				}
				origin, has := naming.OriginOf(rec.Headers)
				if has && origin.Cluster == f.Target {
					filtered++ // came from B: never copied back
					continue
				}
				headers := rec.Headers
				if !has {
					headers = append(append(make([]kgo.RecordHeader, 0, len(rec.Headers)+4), rec.Headers...), naming.OriginHeaders(naming.Origin{
						Cluster: f.Source, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset})...)
				}
				out = append(out, &kgo.Record{Topic: t.To, Partition: rec.Partition, Key: rec.Key, Value: rec.Value, Headers: headers, Timestamp: rec.Timestamp})
			}
			// The records, their offset-map entries (recover: they are in
			// the flow's target topic) and the tail's new position commit
			// together; t changes only once they did.
			before := *t
			err = r.run.Writer().Txn(ctx, func(ctx context.Context, cl *kgo.Client) error {
				res := cl.ProduceSync(ctx, out...)
				if err := res.FirstErr(); err != nil {
					return fmt.Errorf("copy tail %s[%d] to %s: %w", t.Topic, t.Partition, t.To, err)
				}
				var extra []*kgo.Record
				var ms []offsets.Run
				for i, pr := range res {
					if i == 0 && t.Copied == 0 {
						t.TargetFirst = pr.Record.Offset
					}
					t.TargetLast = pr.Record.Offset
					src, _ := naming.OriginOf(pr.Record.Headers)
					if !quarantine {
						n := len(ms)
						if n > 0 && ms[n-1].SourceFirst+ms[n-1].Count == src.Offset && ms[n-1].TargetFirst+ms[n-1].Count == pr.Record.Offset {
							ms[n-1].Count++
						} else {
							ms = append(ms, offsets.Run{SourceFirst: src.Offset, TargetFirst: pr.Record.Offset, Count: 1})
						}
					}
				}
				if len(ms) > 0 && origOnly(out, f.Source) {
					e := &flowstate.OffsetMapEntry{Version: 1, Topic: t.Topic, TargetTopic: t.To, Partition: t.Partition, Runs: ms}
					b, _ := json.Marshal(e)
					extra = append(extra, &kgo.Record{Topic: naming.OffsetMapTopic(f), Partition: int32(flowstate.SlotOf(flowstate.TP{Topic: t.Topic, Partition: t.Partition}, f.Slots)),
						Key: flowstate.OffsetMapKey(e), Value: b, Timestamp: r.now()})
				}
				t.Next = hi
				t.Copied += int64(len(out))
				t.Filtered += filtered
				st, err := r.run.StateRecords()
				if err != nil {
					return err
				}
				extra = append(extra, st...)
				if err := cl.ProduceSync(ctx, extra...).FirstErr(); err != nil {
					return fmt.Errorf("write tail progress: %w", err)
				}
				return nil
			})
			if err != nil {
				*t = before
				return r.tailResult(), r.explain(err)
			}
			if r.o.CopyHook != nil {
				r.o.CopyHook(t.Copied)
			}
		}
	}
	return r.tailResult(), nil
}

// origOnly reports whether every record's origin is the flow's source
// (so the origin offsets are source offsets of the partition copied).
func origOnly(recs []*kgo.Record, source string) bool {
	for _, rec := range recs {
		if o, ok := naming.OriginOf(rec.Headers); !ok || o.Cluster != source {
			return false
		}
	}
	return true
}

func (r *runner) ensureQuarantine(ctx context.Context) error {
	parts := map[string]int32{}
	for _, t := range r.fb.Tail {
		parts[t.To] = max(parts[t.To], t.Partition+1)
	}
	adm := kadm.NewClient(r.dcl)
	for topic, n := range parts {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return cluster.Explain(r.dst, err)
		}
		if d, ok := td[topic]; ok && d.Err == nil {
			continue
		}
		resp, err := adm.CreateTopic(ctx, n, -1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return cluster.Explain(r.dst, fmt.Errorf("create quarantine topic %s: %w", topic, err))
		}
	}
	return nil
}

// advance moves the A->B progress of the tail partitions past the tail
// (it is on B now, or quarantined), so the restored flow does not copy
// it again. Written through each slot's transactional id: a running
// replicator's session is fenced and re-reads it.
func (r *runner) advance(ctx context.Context) (*advanceResult, error) {
	f := r.o.Flow
	bySlot := map[int][]*journal.TailProgress{}
	for _, t := range r.fb.Tail {
		s := flowstate.SlotOf(flowstate.TP{Topic: t.Topic, Partition: t.Partition}, f.Slots)
		bySlot[s] = append(bySlot[s], t)
	}
	out := map[string]int64{}
	for _, ts := range bySlot {
		for _, t := range ts {
			out[journal.TailKey(t.Topic, t.Partition)] = t.End
		}
	}
	if r.o.DryRun {
		return &advanceResult{ReplicatedOffset: out}, nil
	}
	for slot, ts := range bySlot {
		var err error
		for attempt := range 8 {
			if err = r.advanceSlot(ctx, slot, ts); err == nil {
				break
			}
			r.log.Warn("advancing the slot's progress failed; retrying", "slot", slot, "attempt", attempt+1, "err", err)
			if kafkautil.Sleep(ctx, time.Duration(attempt+1)*200*time.Millisecond) != nil {
				return nil, ctx.Err()
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return &advanceResult{ReplicatedOffset: out}, nil
}

func (r *runner) advanceSlot(ctx context.Context, slot int, ts []*journal.TailProgress) error {
	f := r.o.Flow
	eos := f.ExactlyOnce()
	opts := []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}
	if eos {
		opts = append(opts, kgo.TransactionalID(naming.SlotTransactionalID(f, slot)), kgo.TransactionTimeout(60*time.Second))
	}
	cl, err := r.dst.Client(f.Name+"-failback-advance", r.log, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if eos {
		if _, _, err := cl.ProducerID(ctx); err != nil {
			return cluster.Explain(r.dst, fmt.Errorf("fence slot %d: %w", slot, err))
		}
		// The slot's other producers too (a replicator alternates
		// two), so none can commit a progress record after this one.
		for _, id := range naming.SlotTransactionalIDs(f, slot)[1:] {
			fc, err := r.dst.Client(f.Name+"-failback-fence", r.log, kgo.TransactionalID(id), kgo.TransactionTimeout(60*time.Second))
			if err != nil {
				return err
			}
			_, _, err = fc.ProducerID(ctx)
			fc.Close()
			if err != nil {
				return cluster.Explain(r.dst, fmt.Errorf("fence slot %d (transactional id %q): %w", slot, id, err))
			}
		}
	}
	topic := naming.ProgressTopic(f)
	prog, err := flowstate.ReadProgress(ctx, cl, topic, slot)
	if err != nil {
		return cluster.Explain(r.dst, err)
	}
	if prog == nil {
		prog = &flowstate.Progress{Version: 1, Flow: f.Name, Slot: slot}
	}
	for _, t := range ts {
		found := false
		for i := range prog.Partitions {
			pp := &prog.Partitions[i]
			if pp.Topic == t.Topic && pp.Partition == t.Partition {
				pp.Next, pp.SourceEnd = max(pp.Next, t.End), max(pp.SourceEnd, t.End)
				found = true
			}
		}
		if !found {
			prog.Partitions = append(prog.Partitions, flowstate.PartitionProgress{Topic: t.Topic, TargetTopic: naming.For(f).TargetTopic(t.Topic),
				Partition: t.Partition, Next: t.End, SourceEnd: t.End, SourceEndAt: r.now().UnixMilli()})
		}
	}
	sort.Slice(prog.Partitions, func(i, j int) bool {
		a, b := prog.Partitions[i], prog.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	prog.WrittenAt = r.now().UnixMilli()
	b, err := json.Marshal(prog)
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: topic, Partition: int32(slot), Key: []byte("slot-" + strconv.Itoa(slot)), Value: b, Timestamp: r.now()}
	if eos {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
	}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		if eos {
			_ = cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort)
		}
		return cluster.Explain(r.dst, err)
	}
	if eos {
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return cluster.Explain(r.dst, err)
		}
	}
	return nil
}
