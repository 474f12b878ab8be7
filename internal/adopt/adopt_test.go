package adopt

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/testkit/inproc"
)

// TestAdoptSimulatedMM2 lays out on kfake what MM2 leaves behind (a
// remote topic with a re-sent stretch, offset syncs on the source, a
// checkpoint), adopts, and lets godwit continue: the takeover point, the
// duplicates counted, the translation below it and the continuation are
// checked. TestAdoptRealMM2 does the same with MirrorMaker 2 itself.
func TestAdoptSimulatedMM2(t *testing.T) {
	for _, scanMode := range []string{ScanTail, ScanAll} {
		t.Run(scanMode, func(t *testing.T) {
			p := testkit.KfakePair(t)
			topic := "orders"
			remote := p.Primary.Name + "." + topic
			testkit.CreateTopic(t, p.Primary, topic, 1, nil)
			testkit.CreateTopic(t, p.Secondary, remote, 1, nil)
			ctx := testkit.Context(t)
			src := testkit.Client(t, p.Primary, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			dst := testkit.Client(t, p.Secondary, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
			rec := func(topic string, i int) *kgo.Record {
				return &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%7), Value: fmt.Appendf(nil, "v%d", i),
					Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}, Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
			}
			var srcRecs []*kgo.Record
			for i := range 100 {
				srcRecs = append(srcRecs, rec(topic, i))
			}
			if err := src.ProduceSync(ctx, srcRecs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			// MM2 copied 0..59, restarted from 50 and copied 50..79:
			// target 0..59 = source 0..59, target 60..89 = source 50..79.
			var dstRecs []*kgo.Record
			for i := range 60 {
				dstRecs = append(dstRecs, rec(remote, i))
			}
			for i := 50; i < 80; i++ {
				dstRecs = append(dstRecs, rec(remote, i))
			}
			if err := dst.ProduceSync(ctx, dstRecs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			syncsTopic := OffsetSyncsTopic(p.Secondary.Name)
			testkit.CreateTopic(t, p.Primary, syncsTopic, 1, nil)
			tp := flowstate.TP{Topic: topic, Partition: 0}
			var syncs []*kgo.Record
			for _, s := range []Sync{{0, 0}, {30, 30}, {55, 55}, {50, 60}, {70, 80}} {
				k, v := encodeSync(tp, s)
				syncs = append(syncs, &kgo.Record{Topic: syncsTopic, Key: k, Value: v})
			}
			if err := src.ProduceSync(ctx, syncs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			// MM2 checkpointed group g at source 40 -> target 31 (its
			// rule: after the sync at 30).
			ck := offsets.Checkpoint{Group: "g", Topic: remote, Partition: 0, Upstream: 40, Downstream: 31}
			testkit.CreateTopic(t, p.Secondary, offsets.CheckpointsTopic(p.Primary.Name), 1, nil)
			if err := dst.ProduceSync(ctx, &kgo.Record{Topic: offsets.CheckpointsTopic(p.Primary.Name), Key: ck.Key(), Value: ck.Value()}).FirstErr(); err != nil {
				t.Fatal(err)
			}

			cfg := testkit.Config(t, p, fmt.Sprintf(`%s->%s: {topics: [%q], slots: 4, start: latest}`, p.Primary.Name, p.Secondary.Name, topic))
			f := cfg.Flows[p.Primary.Name+"->"+p.Secondary.Name]
			sc, _ := cluster.New(cfg, f.Source)
			dc, _ := cluster.New(cfg, f.Target)
			o := Options{Flow: f, Source: sc, Target: dc, Scan: scanMode}
			dry := o
			dry.DryRun = true
			rep, err := Run(ctx, dry)
			if err != nil {
				t.Fatal(err)
			}
			var pr *Partition
			for i := range rep.Partitions {
				if rep.Partitions[i].Topic == topic {
					pr = &rep.Partitions[i]
				}
			}
			if pr == nil {
				t.Fatalf("partition not adopted: %+v", rep.Partitions)
			}
			wantDups, wantScanned := int64(0), int64(10)
			if scanMode == ScanAll {
				wantDups, wantScanned = 10, 90
			}
			if pr.Next != 80 || pr.TargetEnd != 90 || pr.Duplicates != wantDups || pr.Scanned != wantScanned || pr.Behind != 20 || rep.SyncsOn != p.Primary.Name {
				t.Fatalf("adoption: %+v (syncs on %s); want next 80, target end 90, %d duplicates of %d matched, 20 behind", *pr, rep.SyncsOn, wantDups, wantScanned)
			}
			if len(rep.Checkpoints) != 1 || rep.Checkpoints[0].Godwit < 31 {
				t.Fatalf("MM2 checkpoints: %+v; want g at 40 translated at or after MM2's 31", rep.Checkpoints)
			}
			if ok, _ := topicExists(ctx, testkit.Admin(t, p.Secondary), naming.ProgressTopic(f)); ok {
				t.Fatal("dry run wrote the progress topic")
			}
			if _, err := Run(ctx, o); err != nil {
				t.Fatal(err)
			}
			if _, err := Run(ctx, o); err == nil {
				t.Fatal("a second adoption of the same flow was not refused")
			}

			// Translation below the takeover point never skips: a group
			// that consumed source 0..s-1 reads, from the translated
			// offset on, every source record from s.
			store := offsets.NewStore(f, dst)
			if err := store.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := kafkautil.ReadRange(ctx, dst, remote, 0, 0, 90, true)
			if err != nil {
				t.Fatal(err)
			}
			srcOf := func(r *kgo.Record) int {
				var i int
				fmt.Sscanf(string(r.Value), "v%d", &i)
				return i
			}
			for s := int64(1); s <= 80; s++ {
				tr := offsets.Translate(store.Index(tp).Runs(), s, 80, 0)
				seen := map[int]bool{}
				for _, r := range got[tr.Target:] {
					seen[srcOf(r)] = true
				}
				for i := int(s); i < 80; i++ {
					if !seen[i] {
						t.Fatalf("group at source %d translated to target %d (%s) would skip source %d", s, tr.Target, tr.Case, i)
					}
				}
			}
			if tr := offsets.Translate(store.Index(tp).Runs(), 80, 80, 0); tr.Target != 90 {
				t.Fatalf("group caught up with MM2 (source 80) translates to %d, want 90 (no replay)", tr.Target)
			}

			// godwit continues: source 80..99 land at target 90..109,
			// once each, and nothing before is re-copied.
			inproc.Flow(t, cfg, f.Name)
			var tail []*kgo.Record
			testkit.Eventually(t, 60*time.Second, func() (bool, string) {
				end, err := kafkautil.ReadRange(ctx, dst, remote, 0, 90, 200, true)
				if err != nil {
					return false, err.Error()
				}
				tail = end
				return len(tail) >= 20, fmt.Sprintf("%d of 20 records after the takeover", len(tail))
			})
			for i, r := range tail {
				if i >= 20 || srcOf(r) != 80+i {
					t.Fatalf("target offset %d holds source %d, want %d (%d records after the takeover)", r.Offset, srcOf(r), 80+i, len(tail))
				}
			}
		})
	}
}
