package failback_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/failback"
	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/testkit/inproc"
	"github.com/godwit/godwit/internal/workload"
)

// TestFailbackAfterKillBroker is TestFailbackAfterUnplannedFailover on real
// Kafka: A is a disposable single-node cluster whose broker is SIGKILLed
// while replication trails (records acknowledged on A never reached B), B
// the shared real secondary. godwit failover moves the topic to B,
// producers write on B, A's broker restarts on its data, godwit failback
// (interrupted once mid-tail) recovers the tail, replicates B's writes
// back, moves the groups and restores A->B. At the end every acknowledged
// record of either side is on both clusters exactly once, the groups
// resume on A with 0 replay and 0 skip, and the restored A->B flow neither
// re-copies the tail nor copies B's records back.
func TestFailbackAfterKillBroker(t *testing.T) {
	p, clusterA := testkit.DisposablePair(t)
	const parts = 3
	topic := testkit.UniqueName(t, "orders")
	idle := testkit.UniqueName(t, "idle")       // committed on A before the failover, never ran on B
	drained := testkit.UniqueName(t, "drained") // consumed everything on B before switching back
	clusterA.CreateTopic(t, topic, parts)
	// One slot, small transactions: replication trails the producer. A
	// short refresh so the restored flow picks the topic up quickly.
	cfgPath, src, dst := testkit.FlowConfigFile(t, p, "identical",
		`topics: ["`+topic+`"], slots: 1, max_batch_bytes: 1024, commit_interval: 200ms, refresh_interval: 2s`, false)
	testkit.DeleteTopicsOnCleanup(t, p.Secondary, src) // the flow's internal topics on the shared cluster
	testkit.DeleteTopicsOnCleanup(t, p.Secondary, topic)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	flow := src + "->" + dst
	f := cfg.Flows[flow]
	inproc.Flow(t, cfg, flow)
	dcl := testkit.Client(t, p.Secondary)

	prodA := workload.NewProducer(testkit.Client(t, p.Primary, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1200)),
		workload.ProducerConfig{Topic: topic, Partitions: parts, ValueSize: 1000, Rate: 1500})
	if err := prodA.Produce(inproc.ContextFor(t, time.Minute), 90); err != nil {
		t.Fatal(err)
	}
	commit(t, p.Primary, idle, map[int32]int64{0: 20, 1: 20, 2: 20}, topic)
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		cks, err := offsets.ReadCheckpoints(context.Background(), dcl, offsets.CheckpointsTopic(src))
		n := 0
		for _, c := range cks {
			if c.Group == idle {
				n++
			}
		}
		return err == nil && n == parts, fmt.Sprintf("%d checkpoints (%v)", n, err)
	})

	// Steady load the replicator cannot keep up with; the broker is killed
	// once the replicator has observed every acknowledged record's offset
	// (so at risk is exact) and before it copied them all.
	// The slot's writes to B are capped at 100 KB/s (a quota on its
	// producers), so the tail exists however fast this machine is.
	release := testkit.ThrottleProducers(t, p.Secondary, 100_000, testkit.SlotProducerIDs(f, 0)...)
	if err := prodA.Produce(inproc.ContextFor(t, time.Minute), 3000); err != nil {
		t.Fatal(err)
	}
	want := ledgerLen(prodA.Ledger())
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		st := offsets.NewStore(f, dcl)
		if err := st.Refresh(context.Background()); err != nil {
			return false, err.Error()
		}
		for part := range int32(parts) {
			pp, ok := st.Progress(flowstate.TP{Topic: topic, Partition: part})
			if !ok || pp.SourceEnd != want[part] {
				return false, fmt.Sprintf("partition %d: observed end %d, acknowledged %d", part, pp.SourceEnd, want[part])
			}
		}
		return true, ""
	})
	clusterA.Kill()
	release()

	frep, err := failover.Run(inproc.ContextFor(t, 2*time.Minute), failover.Options{Config: cfg, Flow: f, SourceTimeout: 3 * time.Second, Timeout: time.Minute, Logger: inproc.Logger()})
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	if frep.Mode != failover.Unplanned {
		t.Fatalf("failover mode %s, want unplanned (A's broker was killed)", frep.Mode)
	}
	crep := check(t, p.Secondary, prodA.Ledger(), topic, parts)
	missingAtFailover := crep.Missing
	t.Logf("unplanned failover: %d records acknowledged on A are not on B (at risk reported: %d)", missingAtFailover, frep.RPO.Records)
	if missingAtFailover == 0 {
		t.Fatalf("nothing to recover: the test did not exercise a tail")
	}
	if frep.RPO.Records != missingAtFailover {
		t.Errorf("failover reported %d records at risk, checker found %d missing", frep.RPO.Records, missingAtFailover)
	}

	// Producers move to B and write there during the outage.
	prodB := workload.NewProducer(testkit.Client(t, p.Secondary, kgo.RecordPartitioner(kgo.ManualPartitioner())),
		workload.ProducerConfig{Topic: topic, Partitions: parts, ValueSize: 300})
	if err := prodB.Produce(inproc.ContextFor(t, time.Minute), 1500); err != nil {
		t.Fatal(err)
	}
	clusterA.Restart()
	// kill -9 loses nothing the broker acknowledged (the data was in the
	// page cache): every record A acknowledged is back, and the tail is
	// on A to recover.
	if r := check(t, p.Primary, prodA.Ledger(), topic, parts); !r.OK() {
		t.Fatalf("A after kill -9 and restart:\n%s", r)
	}

	// Dry run: the plan, nothing written.
	dry, err := failback.Run(inproc.ContextFor(t, 2*time.Minute), failback.Options{Config: cfg, Flow: f, DryRun: true, Logger: inproc.Logger()})
	if err != nil {
		t.Fatalf("failback --dry-run: %v", err)
	}
	if dry.TailRecords.Planned < missingAtFailover || dry.TailRecords.Copied != 0 || dry.Reverse == nil || dry.Reverse.Lag == 0 {
		b, _ := json.MarshalIndent(dry, "", " ")
		t.Fatalf("dry run: %s", b)
	}

	// First run, interrupted after the first tail transaction.
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	if _, err = failback.Run(ctx1, failback.Options{Config: cfg, Flow: f, Logger: inproc.Logger(), CopyHook: func(int64) { cancel1() }}); err == nil {
		t.Fatalf("interrupted failback returned no error")
	}
	finishFailback(t, failbackRun{p: p, cfg: cfg, f: f, dcl: dcl, prodA: prodA, prodB: prodB,
		topic: topic, parts: parts, idle: idle, drained: drained, missingAtFailover: missingAtFailover})
}
