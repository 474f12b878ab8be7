package metasync_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/replicate"
	"github.com/godwit/godwit/internal/testkit"
)

// runFlow runs the flow in-process until the test ends.
func runFlow(t *testing.T, cfg *config.Config, flow *config.Flow) {
	t.Helper()
	r, err := replicate.New(cfg, []*config.Flow{flow}, testLogger(t), replicate.NewMetrics(prometheus.NewRegistry()), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("replicator: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("replicator did not stop")
		}
	})
}

// targetValues reads partition p of topic on e from the start to its end.
func targetValues(t *testing.T, e testkit.Endpoint, topic string, p int32) []string {
	t.Helper()
	adm := testkit.Admin(t, e)
	ends, err := adm.ListEndOffsets(testkit.Context(t), topic)
	if err != nil {
		return nil
	}
	end, ok := ends.Lookup(topic, p)
	if !ok || end.Err != nil || end.Offset == 0 {
		return nil
	}
	cl := testkit.Client(t, e, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var out []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		last := int64(-1)
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, string(r.Value))
			last = r.Offset
		})
		if last+1 >= end.Offset {
			break
		}
	}
	return out
}

func produce(t *testing.T, cl *kgo.Client, topic string, p int32, prefix string, n int) {
	t.Helper()
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("k%d", i%3)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
		if err := cl.ProduceSync(testkit.Context(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReplicatorPartitionIncrease: a partition added on the source is
// added on the target by the replicator's metadata sync, and the new
// partition's records are copied.
func TestReplicatorPartitionIncrease(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		topic := testkit.UniqueName(t, "grow")
		testkit.CreateTopic(t, p.Primary, topic, 2, nil)
		cfg, flow := flowConfig(t, p.Primary.Addrs, p.Secondary.Addrs,
			`topics: `+topicsRegex(topic)+`, slots: 2, refresh_interval: 500ms, heartbeats: false`)
		target := flow.Source + "." + topic
		dstAdm := testkit.Admin(t, p.Secondary)
		dropTopics(t, dstAdm, target, "godwit."+flow.Source+"-"+flow.Target+".progress.internal")
		pcl := testkit.Client(t, p.Primary, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		produce(t, pcl, topic, 0, "p0", 5)
		produce(t, pcl, topic, 1, "p1", 5)
		runFlow(t, cfg, flow)

		testkit.Eventually(t, 60*time.Second, func() (bool, string) {
			n := len(targetValues(t, p.Secondary, target, 1))
			return n == 5, fmt.Sprintf("target partition 1 has %d of 5 records", n)
		})
		if _, err := testkit.Admin(t, p.Primary).UpdatePartitions(testkit.Context(t), 3, topic); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 30*time.Second, func() (bool, string) {
			pcl.ForceMetadataRefresh()
			err := pcl.ProduceSync(testkit.Context(t), &kgo.Record{Topic: topic, Partition: 2, Value: []byte("p2-0")}).FirstErr()
			return err == nil, fmt.Sprintf("produce to new partition: %v", err)
		})
		produce(t, pcl, topic, 2, "p2-more", 3)
		testkit.Eventually(t, 60*time.Second, func() (bool, string) {
			got := targetValues(t, p.Secondary, target, 2)
			return len(got) == 4 && got[0] == "p2-0" && got[3] == "p2-more-2", fmt.Sprintf("target partition 2: %q", got)
		})
	})
}

// TestReplicatorCompactedWithGaps: a compacted topic whose source offsets
// have gaps (transaction markers, aborted records) is created compacted on
// the target and its committed records are copied in order.
func TestReplicatorCompactedWithGaps(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		topic := testkit.UniqueName(t, "compact")
		testkit.CreateTopic(t, p.Primary, topic, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")})
		cfg, flow := flowConfig(t, p.Primary.Addrs, p.Secondary.Addrs,
			`topics: `+topicsRegex(topic)+`, slots: 1, refresh_interval: 500ms, heartbeats: false`)
		target := flow.Source + "." + topic
		dstAdm := testkit.Admin(t, p.Secondary)
		dropTopics(t, dstAdm, target, "godwit."+flow.Source+"-"+flow.Target+".progress.internal")

		txn := testkit.Client(t, p.Primary, kgo.TransactionalID(testkit.UniqueName(t, "txn")), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		var want []string
		for i := range 6 {
			ctx := testkit.Context(t)
			if err := txn.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			v := fmt.Sprintf("v%d", i)
			if err := txn.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i%2)), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			commit := i%3 != 2 // every third transaction aborts
			if commit {
				want = append(want, v)
			}
			if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatal(err)
			}
		}
		runFlow(t, cfg, flow)
		testkit.Eventually(t, 60*time.Second, func() (bool, string) {
			got := targetValues(t, p.Secondary, target, 0)
			return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("target has %q, want %q", got, want)
		})
		if got := dynamicConfigs(t, dstAdm, target); got["cleanup.policy"] != "compact" {
			t.Fatalf("target configs %v: want cleanup.policy=compact", got)
		}
	})
}
