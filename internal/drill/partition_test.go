package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/netfault"
	"github.com/godwit/godwit/internal/testkit"
)

// partitionScenario is shortScenario with network-partition and a short
// failover source timeout: in a partition that drops packets the
// failover's reachability check waits all of it.
func partitionScenario(t *testing.T, command, heal string) *drillreport.Scenario {
	t.Helper()
	sc := shortScenario(t, drillreport.FaultNetworkPartition)
	sc.Failover.SourceTimeout = config.Duration(2 * time.Second)
	sc.Fault.Command, sc.Fault.HealCommand = command, heal
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	return sc
}

// pairDrill returns the drill config for a pair: the sandbox's on kfake,
// on the real pair one with aliases and drill names unique to the test,
// whose topics are deleted at the end (the real clusters are shared).
func pairDrill(t *testing.T, p testkit.Pair) Options {
	t.Helper()
	var o Options
	if p.Sandbox != nil {
		o.Config, o.Flow, o.ConfigPath = sandboxConfig(t, p.Sandbox)
		return o
	}
	file, _, _ := testkit.FlowConfigFile(t, p, "prefixed", "delivery: exactly-once", false)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	o.Config, o.Flow, out, err = PrepareConfig(file, data, "", "")
	if err != nil {
		t.Fatal(err)
	}
	o.ConfigPath = filepath.Join(t.TempDir(), "drill.yaml")
	if err := os.WriteFile(o.ConfigPath, out, 0o600); err != nil {
		t.Fatal(err)
	}
	o.Suffix = strings.TrimPrefix(testkit.UniqueName(t, "x"), "x.")
	o.Suffix = o.Suffix[len(o.Suffix)-8:]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, e := range []testkit.Endpoint{p.Primary, p.Secondary} {
			cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addrs...))
			if err != nil {
				continue
			}
			adm := kadm.NewClient(cl)
			if tds, err := adm.ListTopics(ctx); err == nil {
				for _, td := range tds.Sorted() {
					if strings.Contains(td.Topic, drillreport.TopicPrefix) && strings.HasSuffix(td.Topic, o.Suffix) {
						_, _ = adm.DeleteTopics(ctx, td.Topic)
					}
				}
			}
			cl.Close()
		}
	})
	return o
}

// sourceEnds reads the source's end offsets directly (the primary
// region's view, never through the drill's proxy).
func sourceEnds(t *testing.T, addrs []string, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("source end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// checkPartitionEvidence checks a network-partition drill's report
// against the test's own count, and returns the decoded evidence.
func checkPartitionEvidence(t *testing.T, res *Result, pc *processCounter, o Options, p testkit.Pair) drillreport.NetworkPartitionReport {
	t.Helper()
	positions := func(groups []string) groupPositions {
		// The source was never down: the groups' commits are read from it
		// directly.
		return groupPositions{sourceCommitted(t, p.Primary.Addrs, groups), journalPositions(t, o.Config, o.Flow)}
	}
	back := checkOwnCount(t, res, pc, p.Secondary.Addrs, true, positions)
	if back.Totals.ReplayedTranslation != 0 {
		t.Errorf("%d records replayed because of offset translation; want 0 (exact translation)", back.Totals.ReplayedTranslation)
	}
	if back.Mode != failover.Unplanned {
		t.Errorf("failover mode %q: the failover runs on the standby side, which the partition cut from the source; want unplanned", back.Mode)
	}
	var names []string
	for _, ph := range back.RTO.Phases {
		names = append(names, ph.Name)
	}
	if got := strings.Join(names, ","); got != "detect,declare,failover command,cutover hook,consumers resumed,consumers caught up" {
		t.Errorf("RTO phases %s", got)
	}

	js, err := res.Report.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		NetworkPartition *drillreport.NetworkPartitionReport `json:"network_partition"`
		Statement        string                              `json:"statement"`
		LossWindow       float64                             `json:"loss_window_seconds"`
		RPO              float64                             `json:"rpo_seconds"`
		Objectives       []drillreport.Objective             `json:"objectives"`
	}
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	np := rep.NetworkPartition
	if np == nil {
		t.Fatalf("report has no network_partition section:\n%s", js)
	}

	// At risk per partition: what the failover journaled on the target,
	// and the observation it came from.
	_, frep, _, err := failover.State(context.Background(), o.Config, o.Flow)
	if err != nil || frep == nil {
		t.Fatalf("failover state: %v", err)
	}
	led := res.Ledgers[0]
	topic := back.Topics[0].Name
	atRisk := map[int32]int64{}
	var atRiskSum, ownAfter int64
	after := map[int32]int64{}
	var started struct {
		StartedAt time.Time `json:"started_at"`
	}
	if err := json.Unmarshal(js, &started); err != nil {
		t.Fatal(err)
	}
	cutAt := started.StartedAt.Add(time.Duration(np.CutAt * float64(time.Second)))
	for _, fp := range frep.Partitions {
		if fp.SourceTopic != topic {
			continue
		}
		atRisk[fp.Partition] = fp.AtRiskRecords
		atRiskSum += fp.AtRiskRecords
		// Acknowledged after the observation: the record's offset is at or
		// past the end offset godwit observed. And godwit saw nothing
		// through the cut: no record produced after the cut is below
		// that end offset.
		for _, r := range led.Records(fp.Partition) {
			if r.Offset >= fp.SourceEndOffset {
				after[fp.Partition]++
			} else if r.Timestamp.After(cutAt) {
				t.Errorf("partition %d offset %d was produced %v after the cut, yet godwit's observation (end offset %d) includes it",
					fp.Partition, r.Offset, r.Timestamp.Sub(cutAt), fp.SourceEndOffset)
			}
		}
		ownAfter += after[fp.Partition]
	}
	if back.Totals.AtRisk == nil || *back.Totals.AtRisk != atRiskSum {
		t.Errorf("report at_risk %v, journal %d", back.Totals.AtRisk, atRiskSum)
	}
	if atRiskSum > back.Totals.Lost {
		t.Errorf("reported at risk %d > lost %d", atRiskSum, back.Totals.Lost)
	}
	if got := back.Totals.Lost - atRiskSum; got != ownAfter {
		t.Errorf("lost - at risk = %d - %d = %d, own count of records acknowledged after godwit's last observation %d", back.Totals.Lost, atRiskSum, got, ownAfter)
	}
	if np.AckedAfterObservation != ownAfter || np.Unexplained != 0 {
		t.Errorf("report acked_after_observation %d unexplained %d, own count %d", np.AckedAfterObservation, np.Unexplained, ownAfter)
	}
	for _, r := range back.Partitions {
		if r.AtRisk == nil || *r.AtRisk != atRisk[r.Partition] || r.Lost-*r.AtRisk != after[r.Partition] {
			t.Errorf("partition %d: lost %d at risk %v; journal at risk %d, own acknowledged-after count %d", r.Partition, r.Lost, r.AtRisk, atRisk[r.Partition], after[r.Partition])
		}
	}
	for _, po := range np.Partitions {
		if po.AckedAfterObservation != after[po.Partition] {
			t.Errorf("partition %d: report acked_after_observation %d, own count %d", po.Partition, po.AckedAfterObservation, after[po.Partition])
		}
	}
	// The primary kept acknowledging through the partition: the gap is
	// not empty, and godwit observed nothing after the cut.
	if ownAfter == 0 {
		t.Error("no record was acknowledged after godwit's last observation: the primary did not keep writing through the partition")
	}
	if np.LastObservedAt == nil {
		t.Error("report has no last observation")
	}
	// The loss runs from the oldest lost record until the primary's
	// writes stopped. The target holds a prefix of each partition (lost
	// counts checked above), so a partition's oldest lost record is its
	// lost-th acknowledged record from the end.
	var oldestLost time.Time
	for _, r := range back.Partitions {
		recs := led.Records(r.Partition)
		if r.Lost > 0 {
			if ts := recs[len(recs)-int(r.Lost)].Timestamp; oldestLost.IsZero() || ts.Before(oldestLost) {
				oldestLost = ts
			}
		}
	}
	if !oldestLost.IsZero() {
		stopped := started.StartedAt.Add(time.Duration(np.WritesStoppedAt * float64(time.Second)))
		want := stopped.Sub(oldestLost).Seconds()
		if d := rep.LossWindow - want; d > 0.01 || d < -0.01 || rep.RPO < rep.LossWindow {
			t.Errorf("loss window %.3fs, RPO %.3fs; own count: oldest lost record %.3fs before the writes stopped", rep.LossWindow, rep.RPO, want)
		}
		for _, ob := range rep.Objectives {
			if ob.Name == "rpo" && (ob.Achieved != rep.RPO || ob.Pass != (rep.RPO <= ob.Target)) {
				t.Errorf("rpo objective %+v does not match RPO %.3fs", ob, rep.RPO)
			}
		}
	}
	if !(np.CutAt < np.WritesStoppedAt && np.WritesStoppedAt < np.HealedAt) {
		t.Errorf("cut %.1fs, writes stopped %.1fs, healed %.1fs: out of order", np.CutAt, np.WritesStoppedAt, np.HealedAt)
	}
	// The source still holds every lost record (read directly), and the
	// healed path saw the same.
	ends := sourceEnds(t, p.Primary.Addrs, topic)
	for part := range back.Topics[0].Partitions {
		recs := led.Records(part)
		if len(recs) > 0 && ends[part] <= recs[len(recs)-1].Offset {
			t.Errorf("partition %d: source end %d, last acknowledged offset %d", part, ends[part], recs[len(recs)-1].Offset)
		}
	}
	if np.RecoverableOnSource == nil || *np.RecoverableOnSource != back.Totals.Lost {
		t.Errorf("recoverable on source after the heal %v, lost %d", np.RecoverableOnSource, back.Totals.Lost)
	}
	if !strings.Contains(rep.Statement, "acknowledged after that observation") || !strings.Contains(rep.Statement, "unplanned failover lost") {
		t.Errorf("statement does not explain the difference: %s", rep.Statement)
	}
	t.Logf("lost %d = at risk %d + acknowledged after the observation %d; observation %.2fs before the cut; proxy %+v; %s",
		back.Totals.Lost, atRiskSum, ownAfter, np.ObservedBeforeCut, np.Proxy, rep.Statement)
	return *np
}

// TestDrillNetworkPartition cuts the standby side (in-process replicator,
// failover, probes) from the source with the drill's proxy while the
// primary keeps writing, on kfake and on the real pair.
func TestDrillNetworkPartition(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		o := pairDrill(t, p)
		pc := &processCounter{counts: map[TP]map[int64]int{}}
		var progress bytes.Buffer
		o.Scenario = partitionScenario(t, "", "")
		o.OnProcess, o.Progress = pc.hook, &progress
		res, err := Run(context.Background(), o)
		if err != nil {
			t.Fatalf("drill: %v\n%s", err, progress.String())
		}
		t.Logf("progress:\n%s", progress.String())
		np := checkPartitionEvidence(t, res, pc, o, p)
		if np.Method != "proxy" || np.Proxy.Reset == 0 || np.Proxy.Held == 0 {
			t.Errorf("method %s, proxy %+v: the cut should have reset the replicator's connections and held new dials", np.Method, np.Proxy)
		}
	})
}

// externalReplicator is a replicator the drill cannot route through its
// proxy (as a process is): it dials the source through the test's own
// proxy, which only fault.command / fault.heal_command cut and heal.
type externalReplicator struct{ Replicator }

func (externalReplicator) Kind() string { return "external" }

// TestDrillNetworkPartitionByCommand: with a replicator the drill cannot
// route, fault.command must cut it and fault.heal_command restore it.
func TestDrillNetworkPartitionByCommand(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not found: the test's fault.command uses it")
	}
	p := testkit.KfakePair(t)
	o := pairDrill(t, p)
	net := netfault.New(nil)
	defer net.Close()
	var cuts, heals atomic.Int32
	ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cut":
			cuts.Add(1)
			net.Partition()
		case "/heal":
			heals.Add(1)
			net.Heal()
		default:
			http.NotFound(w, r)
		}
	}))
	defer ctl.Close()
	o.Replicator = func(cfg *config.Config, path string, flow *config.Flow, log *slog.Logger) Replicator {
		own := *cfg
		own.Clusters = maps.Clone(cfg.Clusters)
		src := *cfg.Clusters[flow.Source]
		src.Dial = net.Dial
		own.Clusters[flow.Source] = &src
		return externalReplicator{InProcess(&own, path, flow, log)}
	}

	// Without the commands the drill refuses before creating anything.
	o.Scenario = partitionScenario(t, "", "")
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "fault.command") || !strings.Contains(err.Error(), "fault.heal_command") {
		t.Fatalf("network-partition with a replicator the drill cannot route and no fault.command: %v", err)
	}

	pc := &processCounter{counts: map[TP]map[int64]int{}}
	var progress bytes.Buffer
	o.Scenario = partitionScenario(t, "curl -fsS -X POST "+ctl.URL+"/cut", "curl -fsS -X POST "+ctl.URL+"/heal")
	o.OnProcess, o.Progress = pc.hook, &progress
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, progress.String())
	}
	t.Logf("progress:\n%s", progress.String())
	np := checkPartitionEvidence(t, res, pc, o, p)
	if cuts.Load() != 1 || heals.Load() != 1 {
		t.Errorf("fault.command ran %d times, fault.heal_command %d; want once each", cuts.Load(), heals.Load())
	}
	if s := net.Stats(); np.Method != "proxy+command" || s.Reset == 0 || net.Partitioned() {
		t.Errorf("method %s; the command's cut reset %d of the replicator's connections and left the path partitioned=%v", np.Method, s.Reset, net.Partitioned())
	}
}
