package offsets_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

// TestExactResumeCompacted: a compacted source (offset gaps where older
// values of a key were removed) translates exactly too. On kfake the log
// is compacted on demand; on real Kafka the log cleaner does it
// (compactSource, compacted_kafka_test.go).
func TestExactResumeCompacted(t *testing.T) {
	testkit.ForEachPair(t, testExactResumeCompacted)
}

func testExactResumeCompacted(t *testing.T, p testkit.Pair) {
	const n = 300
	topic := testkit.UniqueName(t, "compact")
	group := testkit.UniqueName(t, "g")
	cfgs := map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}
	if p.Kind == testkit.KindKafka {
		for k, v := range realCompactionConfigs {
			cfgs[k] = kadm.StringPtr(v)
		}
	}
	testkit.CreateTopic(t, p.Primary, topic, 1, cfgs)
	cl := testkit.Client(t, p.Primary)
	run := workload.NewRunID()
	for i := range n {
		key := fmt.Sprintf("k%d", i%20) // overwritten: older ones compacted away
		if i%3 == 0 {
			key = fmt.Sprintf("u%d", i) // kept: the gaps fall between survivors
		}
		r := &kgo.Record{Topic: topic, Key: []byte(key),
			Value: workload.Encode(workload.ID{Run: run, Partition: 0, Seq: int64(i)}, 32)}
		if err := cl.ProduceSync(ctxFor(t, time.Minute), r).FirstErr(); err != nil { // one batch each, so compaction can drop them
			t.Fatal(err)
		}
	}
	produced := compactSource(t, p, cl, topic, run, n)
	src := readAll(t, p.Primary, topic, 0)
	if len(src) >= produced || src[len(src)-1].off != int64(produced-1) || !hasInteriorGap(src) {
		t.Fatalf("source not compacted: %d records of %d, last offset %d", len(src), produced, src[len(src)-1].off)
	}
	cfgPath, a, b := flowConfig(t, p, "prefixed", `topics: ["`+topic+`"], slots: 2`, false)
	ip := runInProcess(t, cfgPath)
	waitCaughtUp(t, ip.cfg, a+"->"+b, topic, 1)
	target := a + "." + topic
	for _, k := range compactedKs(src) {
		want := map[int32]int64{0: consumedOffset(src, k)}
		commit(t, p.Primary, group, topic, want)
		got := waitSynced(t, p.Secondary, a, group, target, want)
		first := firstAfterFailover(t, p.Secondary, group, target, []int32{0})
		replay, skip := replaySkip(src, k, first[0], true)
		gap := src[k].off - want[0] // compacted-away offsets between the commit and the next record
		t.Logf("%s compacted: %d records left of %d, processed %d (source offset %d, next record %d offsets later) -> target offset %d: replay %d, skip %d",
			p.Kind, len(src), produced, k, want[0], gap, got[0], replay, skip)
		if replay != 0 || skip != 0 {
			t.Errorf("k=%d: replay %d, skip %d", k, replay, skip)
		}
	}
}

// hasInteriorGap reports whether records were removed between two
// survivors (not only a prefix).
func hasInteriorGap(src []rec) bool {
	for i := 1; i < len(src); i++ {
		if src[i].off > src[i-1].off+1 {
			return true
		}
	}
	return false
}

// compactedKs: after the first record, where the committed offset lands
// in a gap (the next record is after compacted-away offsets) and where it
// lands right on a survivor, a third of the way, and before the last
// record; increasing, as a consumer moves.
func compactedKs(src []rec) []int {
	ks := []int{1}
	add := func(k int) {
		if k > ks[len(ks)-1] && k < len(src) {
			ks = append(ks, k)
		}
	}
	gapK, adjK := 0, 0
	for k := 2; k < len(src) && (gapK == 0 || adjK == 0); k++ {
		if src[k].off > src[k-1].off+1 {
			if gapK == 0 {
				gapK = k
			}
		} else if adjK == 0 {
			adjK = k
		}
	}
	for _, k := range sortedInts(gapK, adjK, len(src)/3, len(src)-1) {
		add(k)
	}
	return ks
}

func sortedInts(xs ...int) []int {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
	return xs
}
