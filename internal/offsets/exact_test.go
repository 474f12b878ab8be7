package offsets_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

// TestExactResume: a group processed k records per partition on the
// source and committed; after sync a consumer of the same group on the
// target reads exactly the record after the k-th first (0 replay, 0
// skip). Partitions: far behind (10%), in the middle, at the end, and an
// empty one at 0; plain and transactional (aborted transactions leave
// gaps in the source offsets) sources.
func TestExactResume(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  workload.ProducerConfig
	}{
		{"plain", workload.ProducerConfig{ValueSize: 32}},
		{"transactional", workload.ProducerConfig{ValueSize: 32, Transactional: true, AbortEvery: 3, TxnRecords: 7}},
	} {
		t.Run(c.name, func(t *testing.T) {
			testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
				testExactResume(t, p, c.cfg)
			})
		})
	}
}

func testExactResume(t *testing.T, p testkit.Pair, pc workload.ProducerConfig) {
	const parts = 4 // partition 3 stays empty
	topic := testkit.UniqueName(t, "orders")
	group := testkit.UniqueName(t, "billing")
	testkit.CreateTopic(t, p.Primary, topic, parts, nil)
	cfgPath, src, dst := flowConfig(t, p, "prefixed", `topics: ["`+topic+`"], slots: 3`, false)
	pc.Topic, pc.Partitions = topic, parts-1
	opts := []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}
	if pc.Transactional {
		opts = append(opts, kgo.TransactionalID(testkit.UniqueName(t, "txn")))
	}
	prod := workload.NewProducer(testkit.Client(t, p.Primary, opts...), pc)
	if err := prod.Produce(ctxFor(t, 2*time.Minute), 10200); err != nil {
		t.Fatal(err)
	}
	ip := runInProcess(t, cfgPath)
	flow := src + "->" + dst
	waitCaughtUp(t, ip.cfg, flow, topic, parts)

	srcRecs := map[int32][]rec{}
	for part := range int32(parts) {
		srcRecs[part] = readAll(t, p.Primary, topic, part)
	}
	k := map[int32]int{
		0: len(srcRecs[0]) / 10, // far behind the head
		1: len(srcRecs[1]) / 2,  // in the middle
		2: len(srcRecs[2]),      // at the end
		3: 0,                    // empty partition
	}
	want := map[int32]int64{}
	for part, n := range k {
		want[part] = consumedOffset(srcRecs[part], n)
	}
	commit(t, p.Primary, group, topic, want)

	target := src + "." + topic
	got := waitSynced(t, p.Secondary, src, group, target, want)
	if got[3] != 0 {
		t.Errorf("empty partition: target offset %d, want 0", got[3])
	}
	first := firstAfterFailover(t, p.Secondary, group, target, []int32{0, 1})
	for part := range int32(parts) {
		r, ok := first[part]
		replay, skip := replaySkip(srcRecs[part], k[part], r, ok)
		if k[part] == len(srcRecs[part]) {
			// Nothing left to read: reading from the committed offset
			// must return nothing.
			rest, err := kafkautil.ReadRange(ctxFor(t, time.Minute), testkit.Client(t, p.Secondary), target, part, got[part], got[part]+100000, true)
			if err != nil {
				t.Fatal(err)
			}
			replay += len(rest)
		}
		t.Logf("partition %d: %d records, processed %d on the source, target offset %d: replay %d, skip %d", part, len(srcRecs[part]), k[part], got[part], replay, skip)
		if replay != 0 || skip != 0 {
			t.Errorf("partition %d: replay %d, skip %d; want 0 and 0", part, replay, skip)
		}
	}
	if n := ip.metric("godwit_groups_synced_total", map[string]string{"flow": flow}); n < 1 {
		t.Errorf("godwit_groups_synced_total = %v", n)
	}
}
