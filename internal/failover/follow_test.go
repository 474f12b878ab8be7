package failover_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/netfault"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/testkit/inproc"
	"github.com/godwit/godwit/internal/workload"
)

// commitEvent is one commit the source acknowledged: the group's next
// offset per partition after it.
type commitEvent struct {
	at   time.Time
	offs map[int32]int64
}

// committingGroup consumes topic on the source as group, processes every
// record (notes its sequence) and commits every 50 ms, keeping a log of
// the commits the source acknowledged.
type committingGroup struct {
	cl     *kgo.Client
	mu     sync.Mutex
	seen   map[int32]map[int64]bool
	next   map[int32]int64
	log    []commitEvent
	stop   context.CancelFunc
	done   chan struct{}
	errors int
}

func startCommittingGroup(t *testing.T, e testkit.Endpoint, group, topic string) *committingGroup {
	cl := testkit.Client(t, e, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithCancel(context.Background())
	g := &committingGroup{cl: cl, seen: map[int32]map[int64]bool{}, next: map[int32]int64{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(g.done)
		last := time.Now()
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, 25*time.Millisecond)
			fs := g.cl.PollFetches(pctx)
			pcancel()
			g.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				id, ok := workload.Identify(r.Key, r.Value)
				if !ok {
					return
				}
				if g.seen[r.Partition] == nil {
					g.seen[r.Partition] = map[int64]bool{}
				}
				g.seen[r.Partition][id.Seq] = true
				g.next[r.Partition] = r.Offset + 1
			})
			g.mu.Unlock()
			if time.Since(last) >= 50*time.Millisecond {
				g.commit(context.Background())
				last = time.Now()
			}
		}
		// The last commit covers everything processed: replays on the
		// target are then the failover's doing, not the consumer's.
		g.commit(context.Background())
	}()
	return g
}

func (g *committingGroup) commit(ctx context.Context) {
	g.mu.Lock()
	offs := maps.Clone(g.next)
	g.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := g.cl.CommitUncommittedOffsets(cctx); err != nil {
		g.mu.Lock()
		g.errors++
		g.mu.Unlock()
		return
	}
	at := time.Now()
	g.mu.Lock()
	g.log = append(g.log, commitEvent{at: at, offs: offs})
	g.mu.Unlock()
}

// Stop ends the consumer after a last commit.
func (g *committingGroup) Stop() {
	g.stop()
	<-g.done
	g.cl.Close()
}

// committedAt is the group's committed next offset of partition p at t.
func (g *committingGroup) committedAt(p int32, t time.Time) int64 {
	var o int64
	for _, e := range g.log {
		if e.at.After(t) {
			break
		}
		o = e.offs[p]
	}
	return o
}

// TestUnplannedFailoverContinuousCommits: a group commits every 50 ms on
// the source while replication runs; the source is lost (the standby
// side's path to it is cut with a netfault proxy; the source keeps
// running, as it does for its own region's clients in a WAN partition); an unplanned failover
// moves the group; on the target it replays at most what it committed in
// the last (replication lag + 200 ms) before the fault, and skips
// nothing. checkpoint_interval is 5 s, so only the follow passes
// (group_position_interval) can meet that bound.
func TestUnplannedFailoverContinuousCommits(t *testing.T) {
	testkit.ForEachPair(t, testContinuousCommits)
}

func testContinuousCommits(t *testing.T, p testkit.Pair) {
	const parts = 3
	topic := testkit.UniqueName(t, "orders")
	group := testkit.UniqueName(t, "billing")
	testkit.CreateTopic(t, p.Primary, topic, parts, nil)
	cfgPath, src, dst := testkit.FlowConfigFile(t, p, "prefixed", `topics: ["`+topic+`"], slots: 1, checkpoint_interval: 5s, group_position_interval: 100ms`, false)
	if p.Kind == testkit.KindKafka {
		testkit.DeleteTopicsOnCleanup(t, p.Secondary, src)
	}
	cfg := loadConfig(t, cfgPath)
	flow := src + "->" + dst
	f := cfg.Flows[flow]
	// The standby side (replicator, checkpoint loop, failover) reaches
	// the source through a proxy that can be cut; the producer and the
	// group, in the source's region, connect directly.
	proxy := netfault.New(cfg.Clusters[src].Dial)
	t.Cleanup(func() { _ = proxy.Close() })
	routed := *cfg.Clusters[src]
	routed.Dial = proxy.Dial
	cfg.Clusters[src] = &routed
	inproc.Flow(t, cfg, flow)

	prod := producer(t, p.Primary, workload.ProducerConfig{Topic: topic, Partitions: parts, ValueSize: 200, Rate: 300})
	pctx, stopProducing := context.WithCancel(context.Background())
	produced := make(chan error, 1)
	go func() { produced <- prod.Produce(pctx, 1_000_000) }()
	grp := startCommittingGroup(t, p.Primary, group, topic)
	target := src + "." + topic
	dcl := testkit.Client(t, p.Secondary)
	// Run until the group's checkpoints are on the target and it has
	// committed for a few seconds.
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		cks, err := offsets.ReadCheckpoints(context.Background(), dcl, offsets.CheckpointsTopic(src))
		n := 0
		for _, c := range cks {
			if c.Group == group && c.Upstream > 0 {
				n++
			}
		}
		grp.mu.Lock()
		commits := len(grp.log)
		grp.mu.Unlock()
		return err == nil && n == parts && commits >= 40, fmt.Sprintf("%d checkpointed partitions (%v), %d commits", n, err, commits)
	})

	grp.Stop()
	// The fault: the group's last commit, then the standby side loses
	// the source (on both kinds of pair the proxy is cut; the source
	// keeps running, so the producer's in-flight requests are answered
	// and the ledger is final when it returns).
	stopAt := time.Now()
	proxy.Partition()
	faultAt := time.Now()
	t.Logf("source gone in %v", faultAt.Sub(stopAt).Round(time.Millisecond))
	stopProducing()
	if err := <-produced; err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("producer: %v", err)
	}

	rep, err := failover.Run(inproc.ContextFor(t, 2*time.Minute), failover.Options{Config: cfg, Flow: f, SourceTimeout: 3 * time.Second, Logger: inproc.Logger()})
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	if rep.Mode != failover.Unplanned {
		t.Fatalf("mode %s, want unplanned", rep.Mode)
	}
	var moved *failover.GroupReport
	for i := range rep.Groups {
		if rep.Groups[i].Group == group {
			moved = &rep.Groups[i]
		}
	}
	if moved == nil || !moved.Committed || len(moved.Partitions) != parts {
		t.Fatalf("group %s not moved from checkpoints: %+v", group, rep.Groups)
	}
	t.Logf("group position: offsets from %s, basis %s, observed %v, %.3f s old at the failover",
		moved.OffsetsFrom, moved.PositionBasis, moved.PositionObservedAt, moved.PositionAgeSeconds)
	if moved.OffsetsFrom != offsets.FromCheckpoints || moved.PositionBasis != offsets.BasisConfirmation || moved.PositionObservedAt == nil {
		t.Errorf("group position from %s / %s (observed %v), want checkpoints confirmed by the positions record",
			moved.OffsetsFrom, moved.PositionBasis, moved.PositionObservedAt)
	}

	// The independent checker: what is on the target.
	crep, err := workload.Check(inproc.ContextFor(t, time.Minute), dcl, prod.Ledger(), workload.CheckConfig{Topic: target, Partitions: parts, IgnoreHeaders: []string{"godwit-*"}})
	if err != nil {
		t.Fatal(err)
	}
	if crep.Duplicates != 0 || crep.OutOfOrder != 0 || crep.Mismatched != 0 || crep.Unexpected != 0 {
		t.Fatalf("target is not a clean prefix of the source:\n%s", crep)
	}
	// Replication lag at the fault: the age of the oldest acknowledged
	// record missing on the target (0 when none is).
	var lag time.Duration
	onTarget := map[int32]int64{} // records of each partition on the target (a prefix)
	for part := range int32(parts) {
		recs := prod.Ledger().Records(part)
		n := crep.PerPartition[part].Found
		onTarget[part] = n
		if n < int64(len(recs)) && recs[n].Timestamp.Before(faultAt) {
			lag = max(lag, faultAt.Sub(recs[n].Timestamp))
		}
	}
	window := lag + 200*time.Millisecond
	var bound int64
	for part := range int32(parts) {
		bound += grp.committedAt(part, faultAt) - grp.committedAt(part, faultAt.Add(-window))
	}

	// The group resumes on the target and processes everything there.
	seenTarget := resumeAll(t, p.Secondary, group, target, onTarget)
	var replayed, skipped int64
	for part := range int32(parts) {
		for seq := range onTarget[part] {
			onSrc, onTgt := grp.seen[part][seq], seenTarget[part][seq]
			switch {
			case onSrc && onTgt:
				replayed++
			case !onSrc && !onTgt:
				skipped++
			}
		}
	}
	t.Logf("fault: replication lag %v, the group committed %d records in the last %v; replayed %d, skipped %d (%d commits, %d failed)",
		lag.Round(time.Millisecond), bound, window.Round(time.Millisecond), replayed, skipped, len(grp.log), grp.errors)
	if bound == 0 {
		t.Fatalf("the group committed nothing in the last %v before the fault: the test did not exercise continuous commits", window)
	}
	if skipped != 0 {
		t.Errorf("skipped %d records", skipped)
	}
	if replayed > bound {
		t.Errorf("replayed %d, more than the %d records the group committed in the last %v (replication lag %v + 200 ms)", replayed, bound, window, lag)
	}
}

// resumeAll joins group on the target and returns the sequences it reads
// until it has read the last of want[p] records of every partition.
func resumeAll(t *testing.T, e testkit.Endpoint, group, topic string, want map[int32]int64) map[int32]map[int64]bool {
	t.Helper()
	cl := testkit.Client(t, e, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	// A partition whose every record the group had processed on the
	// source has nothing to read on the target: it is done when the
	// group's committed offset there is past the last record's.
	last := lastRecordOffsets(t, e, topic, want)
	committed, err := testkit.Admin(t, e).FetchOffsets(inproc.ContextFor(t, 30*time.Second), group)
	if err != nil {
		t.Fatalf("fetch %s's offsets on the target: %v", group, err)
	}
	out := map[int32]map[int64]bool{}
	done := func() bool {
		for p, n := range want {
			if n == 0 || out[p][n-1] {
				continue
			}
			if o, ok := committed.Lookup(topic, p); ok && o.At > last[p] {
				continue
			}
			return false
		}
		return true
	}
	ctx := inproc.ContextFor(t, 60*time.Second)
	for ctx.Err() == nil && !done() {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			id, ok := workload.Identify(r.Key, r.Value)
			if !ok {
				t.Errorf("%s[%d]@%d is not a workload record", topic, r.Partition, r.Offset)
				return
			}
			if out[r.Partition] == nil {
				out[r.Partition] = map[int64]bool{}
			}
			out[r.Partition][id.Seq] = true
		})
	}
	if !done() {
		t.Fatalf("the group did not read the target to its end: %d partitions read", len(out))
	}
	return out
}

// lastRecordOffsets reads topic (read committed) until it has seen the
// record of sequence want[p]-1 of every partition and returns its offset.
func lastRecordOffsets(t *testing.T, e testkit.Endpoint, topic string, want map[int32]int64) map[int32]int64 {
	t.Helper()
	cl := testkit.Client(t, e, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	out := map[int32]int64{}
	done := func() bool {
		for p, n := range want {
			if _, ok := out[p]; n > 0 && !ok {
				return false
			}
		}
		return true
	}
	ctx := inproc.ContextFor(t, 60*time.Second)
	for ctx.Err() == nil && !done() {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if id, ok := workload.Identify(r.Key, r.Value); ok && id.Seq == want[r.Partition]-1 {
				out[r.Partition] = r.Offset
			}
		})
	}
	if !done() {
		t.Fatalf("%s: the last records were not found on the target: %v of %v", topic, out, want)
	}
	return out
}
