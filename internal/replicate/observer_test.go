package replicate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

// TestObserverTargetStalled: the target refuses writes on two of four
// partitions while the source keeps acknowledging records. The source
// observer keeps persisting the source's end offsets on the target, the
// lag gauges count exactly what the target misses on every partition, and
// once the source is gone the lag is withdrawn (unknown) instead of frozen
// or 0, while the observation timestamp says since when.
func TestObserverTargetStalled(t *testing.T) {
	p := testkit.KfakePair(t) // kfake: the fault is a kfake control function
	const parts = 4
	topic := testkit.UniqueName(t, "stall")
	testkit.CreateTopic(t, p.Primary, topic, parts, nil)
	cfgPath, src, dst := flowConfig(t, p, "prefixed", `topics: ["`+topic+`"]`, false)
	flow := src + "->" + dst
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ip := runInProcess(t, cfgPath)
	prod := sourceProducer(t, p.Primary, workload.ProducerConfig{Topic: topic, Partitions: parts, ValueSize: 100}, "")
	if err := prod.Produce(ctxFor(t, time.Minute), 400); err != nil {
		t.Fatal(err)
	}
	target := src + "." + topic
	waitCheck(t, p.Secondary, prod.Ledger(), checkCfg(target, parts), time.Minute)

	_, refused := testkit.RefuseProduce(t, p.Sandbox.Cluster(p.Secondary.Name).Fake(), target, 1, 3)
	if err := prod.Produce(ctxFor(t, time.Minute), 800); err != nil {
		t.Fatal(err)
	}
	acked := map[int32]int64{}
	for part := range int32(parts) {
		acked[part] = int64(len(prod.Ledger().Records(part)))
	}
	dcl := testkit.Client(t, p.Secondary)
	observed := naming.ObservedTopic(cfg.Flows[flow])
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		obs, err := flowstate.ReadObservations(context.Background(), dcl, observed)
		if err != nil {
			return false, err.Error()
		}
		for part := range int32(parts) {
			o := obs[flowstate.TP{Topic: topic, Partition: part}]
			if o.End != acked[part] {
				return false, fmt.Sprintf("partition %d: persisted observation %d, acknowledged %d", part, o.End, acked[part])
			}
		}
		return true, ""
	})
	// The lag gauges equal what an independent checker finds missing.
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		rep, err := workload.Check(context.Background(), dcl, prod.Ledger(), checkCfg(target, parts))
		if err != nil {
			return false, err.Error()
		}
		for part := range int32(parts) {
			lbl := map[string]string{"flow": flow, "topic": topic, "partition": fmt.Sprint(part)}
			lag := ip.metric("godwit_replication_lag_records", lbl)
			missing := rep.PerPartition[part].Missing
			if int64(lag) != missing {
				return false, fmt.Sprintf("partition %d: lag gauge %v, checker missing %d", part, lag, missing)
			}
			if end := ip.metric("godwit_source_end_offset", lbl); int64(end) != acked[part] {
				return false, fmt.Sprintf("partition %d: source end gauge %v, acknowledged %d", part, end, acked[part])
			}
		}
		if m := rep.PerPartition[1].Missing + rep.PerPartition[3].Missing; m != 400 {
			return false, fmt.Sprintf("stalled partitions miss %d records, want 400 (all of the second load)", m)
		}
		return true, ""
	})
	if refused.Load() == 0 {
		t.Fatal("the target never refused a produce: the fault was not exercised")
	}
	// The source goes away: lag is unknown, not 0 and not frozen.
	if err := p.Sandbox.StopCluster(p.Primary.Name); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() (bool, string) {
		for part := range int32(parts) {
			lbl := map[string]string{"flow": flow, "topic": topic, "partition": fmt.Sprint(part)}
			if n := testkit.MetricCount(ip.reg, "godwit_replication_lag_records", lbl); n != 0 {
				return false, fmt.Sprintf("partition %d: lag series still exported with the source down", part)
			}
			at := ip.metric("godwit_source_observed_timestamp_seconds", lbl)
			if at <= 0 || time.Since(time.Unix(int64(at), 0)) < 2*time.Second {
				return false, fmt.Sprintf("partition %d: observed timestamp %v should stay at the last observation", part, at)
			}
		}
		return true, ""
	})
}
