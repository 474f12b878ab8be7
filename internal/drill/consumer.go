package drill

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/workload"
)

// groupRun is one drill consumer group: it processes the drill topics
// read_committed, commits after processing each poll, and counts every
// (partition, seq) it processed, so replays (processed twice) and skips
// (on the target, never processed) are counted, not inferred. It also
// keeps the offsets it committed on the source, so each replay on the
// target can be attributed (see replays).
type groupRun struct {
	name string
	d    *drill

	mu        sync.Mutex
	counts    map[TP]map[int64]int // by source topic partition
	maxTgtOff map[TP]int64         // highest target offset processed on the target
	assigned  atomic.Int64         // unix nanos of the first assignment on the target
	// srcCommitted is, by source partition, the offset of the group's
	// last commit the source acknowledged (the next record to read).
	srcCommitted map[TP]int64
	// translatedFrom is, by source partition, the source offset the
	// failover translated into the group's position on the target.
	translatedFrom map[TP]int64
	// onTarget holds the seqs processed on the target at least once.
	onTarget map[TP]map[int64]bool
	replays  map[TP]*replays

	// committedOnTarget are the offsets the failover committed on the
	// target, by target topic partition.
	committedOnTarget map[TP]int64
}

func newGroupRun(name string, d *drill) *groupRun {
	return &groupRun{name: name, d: d, counts: map[TP]map[int64]int{}, maxTgtOff: map[TP]int64{},
		srcCommitted: map[TP]int64{}, onTarget: map[TP]map[int64]bool{}, replays: map[TP]*replays{}}
}

// replays splits one partition's replays (processings beyond the first)
// by cause.
type replays struct {
	// uncommitted: the group processed the record after its last
	// acknowledged commit (on the source, then again on the target; or
	// redelivered by its own consumer). Expected with at-least-once
	// consumers.
	uncommitted int64
	// checkpointLag: the group committed past the record on the source
	// after the source offset the failover translated (unplanned: the
	// last checkpoint godwit stored on the target, at most
	// checkpoint_interval behind), so the target position is before it.
	checkpointLag int64
	// translation: processed again on the target although it lies before
	// the source offset the failover translated: the target position was
	// too early for the offset it was translated from (or the failover
	// gave the partition no position). Exact translation makes this 0.
	translation int64
	// noOrigin counts translation replays whose target record had no
	// provenance headers, so its source offset was unknown (attributed to
	// translation rather than hidden).
	noOrigin int64
}

func (g *groupRun) start(ctx context.Context, wg *sync.WaitGroup, onTarget bool) error {
	c := g.d.src
	topics := map[string]string{} // consumed topic -> source topic
	for _, st := range g.d.streams {
		if onTarget {
			topics[st.target] = st.topic
		} else {
			topics[st.topic] = st.topic
		}
	}
	if onTarget {
		c = g.d.dst
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	cl, err := c.Client("drill-consumer", nil,
		kgo.ConsumerGroup(g.name), kgo.ConsumeTopics(names...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(250*time.Millisecond), kgo.FetchMaxWait(250*time.Millisecond),
		kgo.RetryTimeout(5*time.Second),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			if onTarget {
				g.assigned.CompareAndSwap(0, time.Now().UnixNano())
			}
		}))
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer closeWithin(cl, 3*time.Second)
		for {
			fs := cl.PollFetches(ctx)
			recs := fs.Records()
			for _, r := range recs {
				src, ok := topics[r.Topic]
				if !ok {
					continue
				}
				id, ok := workload.Identify(r.Key, r.Value)
				if !ok || id.Partition != r.Partition {
					continue
				}
				g.process(src, r, id, onTarget)
			}
			if len(recs) > 0 {
				// Commit what was processed (bounded: the source may be gone).
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				g.commit(cctx, cl, recs, topics, onTarget)
				cancel()
			}
			if ctx.Err() != nil {
				return
			}
		}
	}()
	return nil
}

// commit commits the offsets after recs and, on the source, remembers
// per partition the offsets the broker acknowledged: a commit lost with
// the source is not counted as committed.
func (g *groupRun) commit(ctx context.Context, cl *kgo.Client, recs []*kgo.Record, topics map[string]string, onTarget bool) {
	offs := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range recs {
		m := offs[r.Topic]
		if m == nil {
			m = map[int32]kgo.EpochOffset{}
			offs[r.Topic] = m
		}
		if e, ok := m[r.Partition]; !ok || r.Offset+1 > e.Offset {
			m[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
		}
	}
	cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil || onTarget {
			return
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, t := range resp.Topics {
			src, ok := topics[t.Topic]
			if !ok {
				continue
			}
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					continue
				}
				tp := TP{src, p.Partition}
				if o := offs[t.Topic][p.Partition].Offset; o > g.srcCommitted[tp] {
					g.srcCommitted[tp] = o
				}
			}
		}
	})
}

func (g *groupRun) process(src string, r *kgo.Record, id workload.ID, onTarget bool) {
	tp := TP{src, id.Partition}
	g.mu.Lock()
	m := g.counts[tp]
	if m == nil {
		m = map[int64]int{}
		g.counts[tp] = m
	}
	if m[id.Seq] > 0 {
		g.classifyReplay(tp, r, id, onTarget)
	}
	m[id.Seq]++
	if onTarget {
		if o, ok := g.maxTgtOff[tp]; !ok || r.Offset > o {
			g.maxTgtOff[tp] = r.Offset
		}
		if g.onTarget[tp] == nil {
			g.onTarget[tp] = map[int64]bool{}
		}
		g.onTarget[tp][id.Seq] = true
	}
	g.mu.Unlock()
	if h := g.d.o.OnProcess; h != nil {
		h(g.name, onTarget, src, id.Partition, id.Seq)
	}
}

// setTranslatedFrom records the source offsets the failover translated
// for the group, before it starts on the target.
func (g *groupRun) setTranslatedFrom(m map[TP]int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.translatedFrom = m
}

// classifyReplay attributes a processing of a record the group had
// already processed (g.mu held). Only a record's first processing on the
// target can be the failover's doing; the target record's source offset
// comes from its provenance headers (godwit-origin-partition/-offset).
func (g *groupRun) classifyReplay(tp TP, r *kgo.Record, id workload.ID, onTarget bool) {
	rp := g.replays[tp]
	if rp == nil {
		rp = &replays{}
		g.replays[tp] = rp
	}
	if !onTarget || g.onTarget[tp][id.Seq] {
		rp.uncommitted++
		return
	}
	o, ok := naming.OriginOf(r.Headers)
	if !ok || o.Partition != id.Partition {
		rp.translation++
		rp.noOrigin++
		return
	}
	from, moved := g.translatedFrom[tp]
	switch {
	case o.Offset >= g.srcCommitted[tp]:
		rp.uncommitted++
	case !moved || o.Offset < from:
		rp.translation++
	default:
		rp.checkpointLag++
	}
}

// processedAll reports whether every acknowledged record was processed.
func (g *groupRun) processedAll() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, st := range g.d.streams {
		for p := int32(0); p < st.partitions; p++ {
			m := g.counts[TP{st.topic, p}]
			for _, r := range st.ledger.Records(p) {
				if m[r.Seq] == 0 {
					return false
				}
			}
		}
	}
	return true
}

// caughtUpOnTarget reports whether the group has processed every target
// record after the position the failover gave it.
func (g *groupRun) caughtUpOnTarget() bool {
	g.d.ck.mu.Lock()
	last := make(map[TP]int64, len(g.d.ck.lastOff))
	for k, v := range g.d.ck.lastOff {
		last[k] = v
	}
	g.d.ck.mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, st := range g.d.streams {
		for p := int32(0); p < st.partitions; p++ {
			lo, ok := last[TP{st.topic, p}]
			if !ok {
				continue // nothing on the target
			}
			if c, ok := g.committedOnTarget[TP{st.target, p}]; ok && c > lo {
				continue // positioned after the last record
			}
			if o, ok := g.maxTgtOff[TP{st.topic, p}]; !ok || o < lo {
				return false
			}
		}
	}
	return true
}

// tally returns, per source partition, records processed more than once
// (replayed: extra processings, split by cause) and records in want never
// processed.
func (g *groupRun) tally(tp TP, want func(fn func(seq int64))) (replayed int64, split replays, skipped int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.counts[tp]
	for _, n := range m {
		if n > 1 {
			replayed += int64(n - 1)
		}
	}
	if rp := g.replays[tp]; rp != nil {
		split = *rp
	}
	want(func(seq int64) {
		if m[seq] == 0 {
			skipped++
		}
	})
	return replayed, split, skipped
}
