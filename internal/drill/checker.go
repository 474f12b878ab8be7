package drill

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/workload"
)

// targetChecker reads the drill topics on the target (read_committed) from
// the start and keeps, per source partition, every sequence number seen.
// It shares nothing with the replicator: it only decodes record values.
type targetChecker struct {
	cl *kgo.Client

	mu    sync.Mutex
	parts map[string][]*seqSet // by source topic
	runs  map[string]uint64    // source topic -> run id
	byTgt map[string]string    // target topic -> source topic
	// lastOff is the highest target offset of a drill record, by source
	// topic partition.
	lastOff map[TP]int64
	// sr decodes what the target holds through its schema registry
	// (flows with schemas), nil otherwise.
	sr *schemaRun
}

// seqSet is the sequence numbers seen on one partition: contiguous is the
// smallest seq not seen; extra holds seen seqs above it.
type seqSet struct {
	contiguous int64
	extra      map[int64]bool
	count      int64 // records read (duplicates included)
	dups       int64
}

func newSeqSet() *seqSet { return &seqSet{extra: map[int64]bool{}} }

func (s *seqSet) add(seq int64) {
	s.count++
	if seq < s.contiguous || s.extra[seq] {
		s.dups++
		return
	}
	s.extra[seq] = true
	for s.extra[s.contiguous] {
		delete(s.extra, s.contiguous)
		s.contiguous++
	}
}

func (s *seqSet) has(seq int64) bool { return seq < s.contiguous || s.extra[seq] }

func (s *seqSet) distinct() int64 { return s.contiguous + int64(len(s.extra)) }

func newTargetChecker(cl *kgo.Client, streams []*stream) *targetChecker {
	c := &targetChecker{cl: cl, parts: map[string][]*seqSet{}, runs: map[string]uint64{}, byTgt: map[string]string{}, lastOff: map[TP]int64{}}
	for _, st := range streams {
		ps := make([]*seqSet, st.partitions)
		for i := range ps {
			ps[i] = newSeqSet()
		}
		c.parts[st.topic] = ps
		c.runs[st.topic] = st.run
		c.byTgt[st.target] = st.topic
	}
	return c
}

// run polls until ctx ends.
func (c *targetChecker) run(ctx context.Context) {
	var framed []*kgo.Record
	for ctx.Err() == nil {
		fs := c.cl.PollFetches(ctx)
		framed = framed[:0]
		c.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			src, ok := c.byTgt[r.Topic]
			if !ok {
				return
			}
			id, ok := workload.Identify(r.Key, r.Value)
			if !ok || id.Run != c.runs[src] {
				return
			}
			if c.sr != nil {
				framed = append(framed, r)
			}
			ps := c.parts[src]
			if int(id.Partition) < len(ps) && id.Partition == r.Partition {
				ps[id.Partition].add(id.Seq)
				tp := TP{src, id.Partition}
				if o, ok := c.lastOff[tp]; !ok || r.Offset > o {
					c.lastOff[tp] = r.Offset
				}
			}
		})
		c.mu.Unlock()
		// Each record the target holds is decoded once, through the
		// target's registry (registry calls outside the lock).
		for _, r := range framed {
			c.sr.check(ctx, r)
		}
	}
}

// view calls fn with the sequence set of a source partition, locked.
func (c *targetChecker) view(topic string, p int32, fn func(s *seqSet)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(c.parts[topic][p])
}

// lagOf computes the replication lag of one partition: acknowledged records
// not yet seen on the target, and the timestamp of the oldest of them.
func lagOf(acked []workload.Record, s *seqSet) (records int64, oldest time.Time) {
	// Records are acknowledged in seq order per partition (idempotent
	// producer), so everything from the first unseen seq on is checked.
	i := sort.Search(len(acked), func(i int) bool { return acked[i].Seq >= s.contiguous })
	for _, r := range acked[i:] {
		if !s.has(r.Seq) {
			if records == 0 {
				oldest = r.Timestamp
			}
			records++
		}
	}
	return records, oldest
}
