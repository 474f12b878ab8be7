package offsets_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

func produce(t *testing.T, e testkit.Endpoint, topic string, parts int32, n int) {
	t.Helper()
	prod := workload.NewProducer(testkit.Client(t, e, kgo.RecordPartitioner(kgo.ManualPartitioner())),
		workload.ProducerConfig{Topic: topic, Partitions: parts, ValueSize: 32})
	if err := prod.Produce(ctxFor(t, time.Minute), n); err != nil {
		t.Fatal(err)
	}
}

// checkpoint returns the stored checkpoint of a group partition.
func checkpoint(t *testing.T, e testkit.Endpoint, src, group, topic string, part int32) (offsets.StoredCheckpoint, bool) {
	cks, err := offsets.ReadCheckpoints(context.Background(), testkit.Client(t, e), offsets.CheckpointsTopic(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cks {
		if c.Group == group && c.Topic == topic && c.Partition == part {
			return c, true
		}
	}
	return offsets.StoredCheckpoint{}, false
}

// TestChecklist walks MirrorMaker 2's checkpoint checklist: checkpoints
// for every partition with committed offsets; a group on a topic that is
// not replicated is reported, with the reason; a target group with active
// members is not touched; checkpoints never go backwards unless the source
// group rewinds, and a rewind is honoured; checkpoints survive a restart;
// a topic added later gets its groups synced; no negative lag.
func TestChecklist(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		topic := testkit.UniqueName(t, "t1")
		later := testkit.UniqueName(t, "t2")
		other := testkit.UniqueName(t, "unrepl")
		group := testkit.UniqueName(t, "g")
		testkit.CreateTopic(t, p.Primary, topic, 2, nil)
		testkit.CreateTopic(t, p.Primary, other, 1, nil)
		produce(t, p.Primary, topic, 2, 400)
		produce(t, p.Primary, other, 1, 10)
		cfgPath, src, dst := flowConfig(t, p, "prefixed", `topics: ["`+topic+`", "`+later+`"], slots: 2, refresh_interval: 1s`, false)
		flow := src + "->" + dst
		target := src + "." + topic
		ip := runInProcess(t, cfgPath)
		waitCaughtUp(t, ip.cfg, flow, topic, 2)
		recs := map[int32][]rec{0: readAll(t, p.Primary, topic, 0), 1: readAll(t, p.Primary, topic, 1)}

		want := map[int32]int64{0: consumedOffset(recs[0], 50), 1: consumedOffset(recs[1], 100)}
		commit(t, p.Primary, group, topic, want)
		commit(t, p.Primary, group, other, map[int32]int64{0: 5})
		synced := waitSynced(t, p.Secondary, src, group, target, want)

		// The CLI's translation (JSON contract) agrees, and names the
		// topic that is not replicated.
		tr, err := offsets.TranslateGroup(ctxFor(t, time.Minute), ip.cfg, ip.cfg.Flows[flow], group)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // as the CLI does
		if err := enc.Encode(tr); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		for _, k := range []string{`"flow":"` + flow + `"`, `"group":"` + group + `"`, `"source_topic":"` + topic + `"`, `"target_topic":"` + target + `"`, `"source_offset":`, `"target_offset":`, `"unreplicated_records":0`} {
			if !strings.Contains(string(b), k) {
				t.Errorf("translate JSON lacks %s: %s", k, b)
			}
		}
		if len(tr.Partitions) != 2 || tr.Partitions[0].TargetOffset != synced[0] || tr.Partitions[1].TargetOffset != synced[1] {
			t.Errorf("translate = %s, synced %v", b, synced)
		}
		if len(tr.NotTranslatable) != 1 || tr.NotTranslatable[0].SourceTopic != other || !strings.Contains(tr.NotTranslatable[0].Reason, "not replicated") {
			t.Errorf("not translatable = %+v, want %s with a reason", tr.NotTranslatable, other)
		}
		st, err := offsets.Status(ctxFor(t, time.Minute), ip.cfg, ip.cfg.Flows[flow], time.Now())
		if err != nil {
			t.Fatal(err)
		}
		sb, _ := json.Marshal(st)
		if !strings.Contains(string(sb), `"group":"`+group+`"`) || !strings.Contains(string(sb), `"checkpointed_partitions":2`) || !strings.Contains(string(sb), other) {
			t.Errorf("status: %s", sb)
		}

		// An active target group is not touched.
		cons := testkit.Client(t, p.Secondary, kgo.ConsumerGroup(group), kgo.ConsumeTopics(target), kgo.DisableAutoCommit(),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		polling := make(chan struct{})
		go func() {
			defer close(polling)
			for {
				if fs := cons.PollFetches(context.Background()); fs.IsClientClosed() {
					return
				}
			}
		}()
		want[0] = consumedOffset(recs[0], 80)
		commit(t, p.Primary, group, topic, want)
		testkit.Eventually(t, 30*time.Second, func() (bool, string) {
			c, _ := checkpoint(t, p.Secondary, src, group, target, 0)
			return c.Upstream == want[0] && ip.metric("godwit_group_sync_skipped_total", map[string]string{"flow": flow, "reason": "active"}) >= 2, "waiting for the checkpoint and skips"
		})
		if got := committed(t, p.Secondary, group, target); got[0] != synced[0] {
			t.Errorf("active target group moved from %d to %d", synced[0], got[0])
		}
		cons.Close()
		<-polling
		waitSynced(t, p.Secondary, src, group, target, want)

		// Rewind on the source: honoured.
		before, _ := checkpoint(t, p.Secondary, src, group, target, 1)
		want[1] = consumedOffset(recs[1], 10)
		commit(t, p.Primary, group, topic, want)
		synced = waitSynced(t, p.Secondary, src, group, target, want)
		after, _ := checkpoint(t, p.Secondary, src, group, target, 1)
		if after.Downstream >= before.Downstream || synced[1] != after.Downstream {
			t.Errorf("rewind: checkpoint %d -> %d, target group %d", before.Downstream, after.Downstream, synced[1])
		}

		// Restart: checkpoints are read back and stay.
		ip.stop()
		ip = runInProcess(t, cfgPath)
		want[0] = consumedOffset(recs[0], 90)
		commit(t, p.Primary, group, topic, want)
		waitSynced(t, p.Secondary, src, group, target, want)
		if c, _ := checkpoint(t, p.Secondary, src, group, target, 1); c.Downstream != after.Downstream {
			t.Errorf("after restart partition 1 checkpoint %d, want %d", c.Downstream, after.Downstream)
		}

		// A topic added later gets its groups synced.
		testkit.CreateTopic(t, p.Primary, later, 1, nil)
		produce(t, p.Primary, later, 1, 30)
		waitCaughtUp(t, ip.cfg, flow, later, 1)
		lrecs := readAll(t, p.Primary, later, 0)
		commit(t, p.Primary, group, later, map[int32]int64{0: consumedOffset(lrecs, 10)})
		lsynced := waitSynced(t, p.Secondary, src, group, src+"."+later, map[int32]int64{0: consumedOffset(lrecs, 10)})
		first := firstAfterFailover(t, p.Secondary, group, src+"."+later, []int32{0})
		if replay, skip := replaySkip(lrecs, 10, first[0], true); replay != 0 || skip != 0 {
			t.Errorf("topic added later: replay %d, skip %d (target offset %d)", replay, skip, lsynced[0])
		}

		// No negative lag: no target offset beyond the target's end.
		ends, err := testkit.Admin(t, p.Secondary).ListEndOffsets(ctxFor(t, time.Minute), target)
		if err != nil {
			t.Fatal(err)
		}
		for part, o := range committed(t, p.Secondary, group, target) {
			if e, _ := ends.Lookup(target, part); o > e.Offset {
				t.Errorf("negative lag on %s[%d]: committed %d > end %d", target, part, o, e.Offset)
			}
		}
		if v := ip.metric("godwit_offset_translation_failures_total", map[string]string{"flow": flow, "reason": "not_replicated"}); v < 1 {
			t.Errorf("translation failures metric for the unreplicated topic = %v", v)
		}
	})
}

// TestTranslateSourceDown: with the source cluster gone, translation works
// from the target alone, from the last checkpoints.
func TestTranslateSourceDown(t *testing.T) {
	p := testkit.KfakePair(t)
	topic := testkit.UniqueName(t, "t")
	group := testkit.UniqueName(t, "g")
	testkit.CreateTopic(t, p.Primary, topic, 2, nil)
	produce(t, p.Primary, topic, 2, 200)
	cfgPath, src, dst := flowConfig(t, p, "prefixed", `topics: ["`+topic+`"], slots: 2`, false)
	flow := src + "->" + dst
	target := src + "." + topic
	ip := runInProcess(t, cfgPath)
	waitCaughtUp(t, ip.cfg, flow, topic, 2)
	recs := map[int32][]rec{0: readAll(t, p.Primary, topic, 0), 1: readAll(t, p.Primary, topic, 1)}
	want := map[int32]int64{0: consumedOffset(recs[0], 30), 1: consumedOffset(recs[1], 70)}
	commit(t, p.Primary, group, topic, want)
	synced := waitSynced(t, p.Secondary, src, group, target, want)
	ip.stop()
	if err := p.Sandbox.StopCluster(p.Primary.Name); err != nil {
		t.Fatal(err)
	}
	tr, err := offsets.TranslateGroup(ctxFor(t, time.Minute), ip.cfg, ip.cfg.Flows[flow], group)
	if err != nil {
		t.Fatal(err)
	}
	if tr.OffsetsFrom != offsets.FromCheckpoints || tr.SourceError == "" {
		t.Errorf("offsets from %q (source error %q), want checkpoints", tr.OffsetsFrom, tr.SourceError)
	}
	if len(tr.Partitions) != 2 {
		t.Fatalf("translated %+v", tr)
	}
	for _, r := range tr.Partitions {
		if r.SourceOffset != want[r.Partition] || r.TargetOffset != synced[r.Partition] {
			t.Errorf("partition %d: %d -> %d, want %d -> %d", r.Partition, r.SourceOffset, r.TargetOffset, want[r.Partition], synced[r.Partition])
		}
	}
	st, err := offsets.Status(ctxFor(t, time.Minute), ip.cfg, ip.cfg.Flows[flow], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.SourceError == "" || len(st.Groups) != 1 || st.Groups[0].CheckpointedPartitions != 2 {
		t.Errorf("status with the source down: %+v", st)
	}
}
