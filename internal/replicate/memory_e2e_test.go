package replicate_test

import (
	"testing"
	"time"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

// TestTightMemoryBudget replicates through the smallest memory_budget a
// flow may have (256 KiB per slot: 64 KiB fetches, 64 KiB in flight to the
// target). Records several times larger than both still go, one at a time
// (refusing them would stop a partition the target would accept); small
// records go through many small fetches and produce windows; aborted
// source transactions stay out. The target must hold every record exactly
// once, in order, and the offset map must describe them exactly.
//
// On kfake this passes because a partition gets half a fetch: the kfake
// version in go.mod leaves out a partition's aborted transactions when the
// request-level FetchMaxBytes ends a response inside that partition (its
// `break full` skips the lookup), so with equal fetch and partition limits
// a read_committed consumer receives aborted records from kfake (real
// Kafka 4.4 answers the same fetches correctly).
func TestTightMemoryBudget(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		big, small := testkit.UniqueName(t, "big"), testkit.UniqueName(t, "small")
		testkit.CreateTopic(t, p.Primary, big, 2, nil)
		testkit.CreateTopic(t, p.Primary, small, 2, nil)
		cfgPath, src, dst := flowConfig(t, p, "prefixed",
			`topics: ["`+big+`", "`+small+`"], slots: 2, memory_budget: 512KiB`, false)
		cfg, err := config.Load(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		flow := cfg.Flows[src+"->"+dst]
		if flow.MemoryBudget != 2*config.MinSlotMemory {
			t.Fatalf("memory_budget = %s, want the minimum for 2 slots", flow.MemoryBudget)
		}

		bigProd := sourceProducer(t, p.Primary, workload.ProducerConfig{
			Topic: big, Partitions: 2, ValueSize: 300 << 10, Transactional: true, TxnRecords: 3, AbortEvery: 4, Headers: true,
		}, testkit.UniqueName(t, "txn-big"))
		smallProd := sourceProducer(t, p.Primary, workload.ProducerConfig{
			Topic: small, Partitions: 2, ValueSize: 100, NullKeyEvery: 7, TombstoneEvery: 11, Headers: true, Timestamps: true,
		}, "")
		if err := bigProd.Produce(ctxFor(t, time.Minute), 24); err != nil {
			t.Fatal(err)
		}
		if err := smallProd.Produce(ctxFor(t, time.Minute), 3000); err != nil {
			t.Fatal(err)
		}
		ip := runInProcess(t, cfgPath)
		// And while it runs.
		if err := smallProd.Produce(ctxFor(t, time.Minute), 1000); err != nil {
			t.Fatal(err)
		}

		bigTarget, smallTarget := src+"."+big, src+"."+small
		rep := waitCheck(t, p.Secondary, bigProd.Ledger(), checkCfg(bigTarget, 2), 2*time.Minute)
		if rep.AbortedFound != 0 || bigProd.Ledger().AbortedLen() == 0 {
			t.Fatalf("aborted source records: %d produced, %d found on target", bigProd.Ledger().AbortedLen(), rep.AbortedFound)
		}
		waitCheck(t, p.Secondary, smallProd.Ledger(), checkCfg(smallTarget, 2), 2*time.Minute)
		for topic, n := range map[string]int{big: bigProd.Ledger().Len(), small: smallProd.Ledger().Len()} {
			testkit.Eventually(t, 30*time.Second, func() (bool, string) {
				got := ip.metric("godwit_replicated_records_total", map[string]string{"flow": flow.Name, "topic": topic})
				return got == float64(n), jsonString(map[string]any{"topic": topic, "replicated_records_total": got, "want": n})
			})
		}
		checkOffsetMap(t, p, flow, big, bigTarget, 2)
		checkOffsetMap(t, p, flow, small, smallTarget, 2)
		if ok, why := ip.r.Ready(); !ok {
			t.Errorf("not ready: %s", why)
		}
	})
}
