package offsets_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

func indexOf(rs []rec, id workload.ID) int {
	for i, r := range rs {
		if r.id == id {
			return i
		}
	}
	return -1
}

// TestRoundTripIdentical: flows A->B and B->A with identical names. A
// group processes records on A, fails over to B and resumes exactly; the
// producers move to B; the group processes more on B (past the records
// that came from A, into records produced on B, which B->A copies back)
// and fails back to A, resuming exactly again. The way back translates
// over records that originated on A (offset map origin runs, from the
// provenance headers).
func TestRoundTripIdentical(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		const parts = 3
		topic := testkit.UniqueName(t, "rt")
		group := testkit.UniqueName(t, "g")
		testkit.CreateTopic(t, p.Primary, topic, parts, nil)
		testkit.CreateTopic(t, p.Secondary, topic, parts, nil)
		cfgPath, a, b := flowConfig(t, p, "identical", `topics: ["`+topic+`"], slots: 2, refresh_interval: 1s`, true)
		ip := runInProcess(t, cfgPath)
		ab, ba := a+"->"+b, b+"->"+a

		prodA := workload.NewProducer(testkit.Client(t, p.Primary, kgo.RecordPartitioner(kgo.ManualPartitioner())),
			workload.ProducerConfig{Topic: topic, Partitions: parts, ValueSize: 32})
		if err := prodA.Produce(ctxFor(t, time.Minute), 600); err != nil {
			t.Fatal(err)
		}
		waitCaughtUp(t, ip.cfg, ab, topic, parts)

		// Phase 1: processed on A, fail over to B.
		aRecs := map[int32][]rec{}
		kA := map[int32]int{0: 20, 1: 100, 2: 200}
		wantA := map[int32]int64{}
		for part := range int32(parts) {
			aRecs[part] = readAll(t, p.Primary, topic, part)
			wantA[part] = consumedOffset(aRecs[part], kA[part])
		}
		commit(t, p.Primary, group, topic, wantA)
		waitSynced(t, p.Secondary, a, group, topic, wantA)
		bRecs := map[int32][]rec{}
		for part := range int32(parts) {
			bRecs[part] = readAll(t, p.Secondary, topic, part)
		}
		first := firstAfterFailover(t, p.Secondary, group, topic, []int32{0, 1})
		for part := range int32(parts) {
			// The records processed on A, in B's order.
			k := 0
			if kA[part] > 0 {
				k = indexOf(bRecs[part], aRecs[part][kA[part]-1].id) + 1
			}
			r, ok := first[part]
			replay, skip := replaySkip(bRecs[part], k, r, ok)
			t.Logf("A->B partition %d: processed %d on A; replay %d, skip %d", part, kA[part], replay, skip)
			if replay != 0 || skip != 0 || k != kA[part] {
				t.Errorf("A->B partition %d: replay %d, skip %d (k %d)", part, replay, skip, k)
			}
		}

		// Phase 2: producers move to B; the group processes on B.
		prodB := workload.NewProducer(testkit.Client(t, p.Secondary, kgo.RecordPartitioner(kgo.ManualPartitioner())),
			workload.ProducerConfig{Topic: topic, Partitions: parts, ValueSize: 32})
		if err := prodB.Produce(ctxFor(t, time.Minute), 300); err != nil {
			t.Fatal(err)
		}
		waitCaughtUp(t, ip.cfg, ba, topic, parts)
		for part := range int32(parts) {
			bRecs[part] = readAll(t, p.Secondary, topic, part)
		}
		kB := map[int32]int{
			0: len(aRecs[0]) + 50, // into the records produced on B
			1: 150,                // still among the records that came from A
			2: len(bRecs[2]),      // everything
		}
		wantB := map[int32]int64{}
		for part := range int32(parts) {
			wantB[part] = consumedOffset(bRecs[part], kB[part])
		}
		commit(t, p.Secondary, group, topic, wantB)
		waitSynced(t, p.Primary, b, group, topic, wantB)

		// Fail back to A.
		aRecs2 := map[int32][]rec{}
		for part := range int32(parts) {
			aRecs2[part] = readAll(t, p.Primary, topic, part)
		}
		first = firstAfterFailover(t, p.Primary, group, topic, []int32{0, 1})
		for part := range int32(parts) {
			k := indexOf(aRecs2[part], bRecs[part][kB[part]-1].id) + 1
			if k == 0 {
				t.Fatalf("partition %d: record %v from B not on A", part, bRecs[part][kB[part]-1].id)
			}
			r, ok := first[part]
			replay, skip := replaySkip(aRecs2[part], k, r, ok)
			t.Logf("B->A partition %d: processed %d on B; replay %d, skip %d", part, kB[part], replay, skip)
			if replay != 0 || skip != 0 {
				t.Errorf("B->A partition %d: replay %d, skip %d", part, replay, skip)
			}
		}
		// The A->B loop must not have moved B's group backwards.
		got := committed(t, p.Secondary, group, topic)
		for part, o := range wantB {
			if got[part] != o {
				t.Errorf("B's group %s[%d] at %d after failback, want %d (unchanged)", topic, part, got[part], o)
			}
		}
	})
}
