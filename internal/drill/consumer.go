package drill

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/workload"
)

// groupRun is one drill consumer group: it processes the drill topics
// read_committed, commits after processing each poll, and counts every
// (partition, seq) it processed, so replays (processed twice) and skips
// (on the target, never processed) are counted, not inferred.
type groupRun struct {
	name string
	d    *drill

	mu        sync.Mutex
	counts    map[TP]map[int64]int // by source topic partition
	maxTgtOff map[TP]int64         // highest target offset processed on the target
	assigned  atomic.Int64         // unix nanos of the first assignment on the target

	// committedOnTarget are the offsets the failover committed on the
	// target, by target topic partition.
	committedOnTarget map[TP]int64
}

func newGroupRun(name string, d *drill) *groupRun {
	return &groupRun{name: name, d: d, counts: map[TP]map[int64]int{}, maxTgtOff: map[TP]int64{}}
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
				_ = cl.CommitRecords(cctx, recs...)
				cancel()
			}
			if ctx.Err() != nil {
				return
			}
		}
	}()
	return nil
}

func (g *groupRun) process(src string, r *kgo.Record, id workload.ID, onTarget bool) {
	tp := TP{src, id.Partition}
	g.mu.Lock()
	m := g.counts[tp]
	if m == nil {
		m = map[int64]int{}
		g.counts[tp] = m
	}
	m[id.Seq]++
	if onTarget {
		if o, ok := g.maxTgtOff[tp]; !ok || r.Offset > o {
			g.maxTgtOff[tp] = r.Offset
		}
	}
	g.mu.Unlock()
	if h := g.d.o.OnProcess; h != nil {
		h(g.name, onTarget, src, id.Partition, id.Seq)
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
// (replayed: extra processings) and records in want never processed.
func (g *groupRun) tally(tp TP, want func(fn func(seq int64))) (replayed, skipped int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.counts[tp]
	for _, n := range m {
		if n > 1 {
			replayed += int64(n - 1)
		}
	}
	want(func(seq int64) {
		if m[seq] == 0 {
			skipped++
		}
	})
	return replayed, skipped
}
