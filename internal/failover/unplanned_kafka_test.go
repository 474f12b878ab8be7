package failover_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/testkit/inproc"
	"github.com/godwit/godwit/internal/workload"
)

// TestUnplannedFailoverKillBroker is TestUnplannedFailover on real Kafka:
// the source is a disposable single-node cluster whose broker is killed
// with SIGKILL while replication trails a steady load; the target is the
// shared real secondary. The at_risk_records godwit reports per partition
// must equal what the independent checker finds acknowledged on the
// source but missing on the target.
func TestUnplannedFailoverKillBroker(t *testing.T) {
	p, source := testkit.DisposablePair(t)
	const parts = 3
	topic := testkit.UniqueName(t, "orders")
	group := testkit.UniqueName(t, "billing")
	source.CreateTopic(t, topic, parts)
	// One slot, small transactions, so the slot's two producers are the
	// only writers to throttle.
	cfgPath, src, dst := testkit.FlowConfigFile(t, p, "prefixed", `topics: ["`+topic+`"], slots: 1, max_batch_bytes: 1024, commit_interval: 200ms`, false)
	testkit.DeleteTopicsOnCleanup(t, p.Secondary, src)
	cfg := loadConfig(t, cfgPath)
	flow := src + "->" + dst
	f := cfg.Flows[flow]
	inproc.Flow(t, cfg, flow)
	// One record per producer batch, so each replicator fetch (bounded by
	// max_batch_bytes) carries one record.
	prod := workload.NewProducer(testkit.Client(t, p.Primary, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1200)),
		workload.ProducerConfig{Topic: topic, Partitions: parts, ValueSize: 1000, Rate: 1500})
	if err := prod.Produce(inproc.ContextFor(t, time.Minute), 90); err != nil {
		t.Fatal(err)
	}
	commitSource(t, p.Primary, group, topic, parts, 20)
	dcl := testkit.Client(t, p.Secondary)
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		cks, err := offsets.ReadCheckpoints(context.Background(), dcl, offsets.CheckpointsTopic(src))
		n := 0
		for _, c := range cks {
			if c.Group == group {
				n++
			}
		}
		return err == nil && n == parts, fmt.Sprintf("%d checkpoints (%v)", n, err)
	})
	// Steady load (1500 records/s for 2 s) the replicator cannot keep up
	// with: its writes to the target are capped at 100 KB/s (a quota on
	// the slot's producers), so lag at the kill does not depend on how
	// fast this machine is.
	release := testkit.ThrottleProducers(t, p.Secondary, 100_000, testkit.SlotProducerIDs(f, 0)...)
	loadAt := time.Now()
	if err := prod.Produce(inproc.ContextFor(t, time.Minute), 3000); err != nil {
		t.Fatal(err)
	}
	t.Logf("produced 3000 records in %v", time.Since(loadAt).Round(time.Millisecond))
	acked := map[int32]int64{}
	for part := range int32(parts) {
		acked[part] = int64(len(prod.Ledger().Records(part)))
	}
	// at_risk_records counts from the end offsets the replicator observed
	// (stored on the target every second): kill the broker once that
	// observation covers every acknowledged record, and while replication
	// is still behind. Records acknowledged after the last observation
	// would be lost without being reported (docs/failover.md).
	var behind int64
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		st := offsets.NewStore(f, dcl)
		if err := st.Refresh(context.Background()); err != nil {
			return false, err.Error()
		}
		behind = 0
		for part := range int32(parts) {
			pp, ok := st.Progress(flowstate.TP{Topic: topic, Partition: part})
			if !ok || pp.SourceEnd != acked[part] {
				return false, fmt.Sprintf("partition %d: observed end %d, acknowledged %d", part, pp.SourceEnd, acked[part])
			}
			behind += pp.SourceEnd - pp.Next
		}
		return true, ""
	})
	t.Logf("killing the source broker %v after the load started, %d records not replicated yet", time.Since(loadAt).Round(time.Millisecond), behind)
	source.Kill()
	release()

	rep, err := failover.Run(inproc.ContextFor(t, 2*time.Minute), failover.Options{Config: cfg, Flow: f, SourceTimeout: 3 * time.Second, Logger: inproc.Logger()})
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	if rep.Mode != failover.Unplanned {
		t.Fatalf("mode %s, want unplanned (the source broker was killed)", rep.Mode)
	}
	target := src + "." + topic
	crep, err := workload.Check(inproc.ContextFor(t, time.Minute), dcl, prod.Ledger(), workload.CheckConfig{Topic: target, Partitions: parts, IgnoreHeaders: []string{"godwit-*"}})
	if err != nil {
		t.Fatal(err)
	}
	var total, reported int64
	seen := 0
	for _, pr := range rep.Partitions {
		if pr.SourceTopic != topic {
			continue
		}
		seen++
		missing := crep.PerPartition[pr.Partition].Missing
		t.Logf("partition %d: at_risk_records=%d checker missing=%d (replicated %d of %d; ~%d bytes, %.1fs)",
			pr.Partition, pr.AtRiskRecords, missing, pr.ReplicatedOffset, pr.SourceEndOffset, pr.AtRiskBytesEstimate, pr.AtRiskSeconds)
		if pr.AtRiskRecords != missing {
			t.Errorf("partition %d: at_risk_records %d, checker missing %d", pr.Partition, pr.AtRiskRecords, missing)
		}
		total += missing
		reported += pr.AtRiskRecords
	}
	if seen != parts {
		t.Fatalf("report has %d partitions of %s, want %d", seen, topic, parts)
	}
	if total == 0 {
		t.Fatalf("nothing was at risk: the test did not exercise an unplanned failover with lag\n%s", crep)
	}
	if rep.RPO.Records != reported || crep.Missing != total {
		t.Errorf("rpo.records %d, partitions sum %d; checker missing %d, per partition sum %d", rep.RPO.Records, reported, crep.Missing, total)
	}
	if crep.Duplicates != 0 || crep.OutOfOrder != 0 || crep.Mismatched != 0 || crep.Unexpected != 0 {
		t.Fatalf("target is not a clean prefix of the source:\n%s", crep)
	}
	t.Logf("rpo: %+v; checker: %d acknowledged, %d missing on the target", rep.RPO, crep.Expected, crep.Missing)
	// The group moved with its checkpointed offsets and resumes exactly.
	found := false
	for _, g := range rep.Groups {
		if g.Group == group {
			found = g.Committed && len(g.Partitions) == parts
			for _, gp := range g.Partitions {
				if gp.SourceOffset != 20 {
					t.Errorf("group partition %d: source offset %d, want 20", gp.Partition, gp.SourceOffset)
				}
			}
		}
	}
	if !found {
		t.Fatalf("group %s not committed from checkpoints: %+v", group, rep.Groups)
	}
	first := resume(t, p.Secondary, group, target, parts)
	for part := range int32(parts) {
		if seq, ok := first[part]; !ok || seq != 20 {
			t.Errorf("partition %d: group resumed at sequence %d (read: %v), want 20", part, seq, ok)
		}
	}
}
