package offsets_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/sandbox"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

// TestExactResumeCompacted: a compacted source (offset gaps where older
// values of a key were removed) translates exactly too.
func TestExactResumeCompacted(t *testing.T) {
	p := testkit.KfakePair(t) // compaction on demand needs kfake
	topic := testkit.UniqueName(t, "compact")
	group := testkit.UniqueName(t, "g")
	testkit.CreateTopic(t, p.Primary, topic, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")})
	cl := testkit.Client(t, p.Primary)
	run := workload.NewRunID()
	var recs []*kgo.Record
	for i := range 300 {
		key := fmt.Sprintf("k%d", i%20) // overwritten: older ones compacted away
		if i%3 == 0 {
			key = fmt.Sprintf("u%d", i) // kept: the gaps fall between survivors
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(key),
			Value: workload.Encode(workload.ID{Run: run, Partition: 0, Seq: int64(i)}, 32)})
	}
	for _, r := range recs {
		if err := cl.ProduceSync(ctxFor(t, time.Minute), r).FirstErr(); err != nil { // one batch each, so compaction can drop them
			t.Fatal(err)
		}
	}
	p.Sandbox.Cluster(sandbox.Primary).Fake().Compact()
	src := readAll(t, p.Primary, topic, 0)
	if len(src) >= 300 || src[len(src)-1].off != 299 {
		t.Fatalf("source not compacted: %d records, last offset %d", len(src), src[len(src)-1].off)
	}
	cfgPath, a, b := flowConfig(t, p, "prefixed", `topics: ["`+topic+`"], slots: 2`, false)
	ip := runInProcess(t, cfgPath)
	waitCaughtUp(t, ip.cfg, a+"->"+b, topic, 1)
	target := a + "." + topic
	for _, k := range []int{1, len(src) / 3, len(src) - 1} {
		want := map[int32]int64{0: consumedOffset(src, k)}
		commit(t, p.Primary, group, topic, want)
		got := waitSynced(t, p.Secondary, a, group, target, want)
		first := firstAfterFailover(t, p.Secondary, group, target, []int32{0})
		replay, skip := replaySkip(src, k, first[0], true)
		t.Logf("compacted: %d records left of 300, processed %d (source offset %d) -> target offset %d: replay %d, skip %d", len(src), k, want[0], got[0], replay, skip)
		if replay != 0 || skip != 0 {
			t.Errorf("replay %d, skip %d", replay, skip)
		}
	}
}
