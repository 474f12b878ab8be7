package replicate

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/flowstate"
)

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
	res, err := listOffsets(ctx, f, start, slices.Sorted(maps.Keys(topics)))
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
