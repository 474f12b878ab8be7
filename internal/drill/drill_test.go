package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/sandbox"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

// shortScenario keeps drills quick under -race.
func shortScenario(t *testing.T, fault string) *drillreport.Scenario {
	t.Helper()
	sc, err := drillreport.ParseScenario("test.yaml", []byte(`
name: test
topics: [{name: orders, partitions: 3}]
workload: {rate: 150, record_size: 200, peak: {rate: 600, duration: 2s}}
groups: [{name: billing}]
fault: {type: `+fault+`, restart_after: 1s}
failover: {detect_after: 500ms, decision_delay: 500ms, timeout: 45s}
phases: {steady: 3s, after: 2s}
objectives: {rpo_objective: 10s, rto_objective: 60s}
`))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func sandboxConfig(t *testing.T, s *sandbox.Sandbox) (*config.Config, *config.Flow, string) {
	t.Helper()
	var b bytes.Buffer
	if err := s.WriteConfig(&b); err != nil {
		t.Fatal(err)
	}
	cfg, flow, out, err := PrepareConfig("sandbox.yaml", b.Bytes(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "drill.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, flow, path
}

// processCounter is the test's own count of what the drill's consumers
// processed, in order.
type processCounter struct {
	mu     sync.Mutex
	counts map[TP]map[int64]int
	events []processed
}

type processed struct {
	group    string
	onTarget bool
	tp       TP
	seq      int64
}

func (c *processCounter) hook(group string, onTarget bool, topic string, p int32, seq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := TP{topic, p}
	if c.counts[tp] == nil {
		c.counts[tp] = map[int64]int{}
	}
	c.counts[tp][seq]++
	c.events = append(c.events, processed{group, onTarget, tp, seq})
}

// replaySplit is the test's own attribution of replays. A processing
// beyond the first is "uncommitted" unless it is the record's first
// processing on the target and the group had committed past the record on
// the source; then it is "translation" when the record lies before the
// source offset the failover translated (or the failover gave the
// partition none), else "checkpoint lag". Inputs: the groups' offsets
// read from the source and from the failover journal on the target by the
// test, and the record's source offset from the producer's ledger.
func (c *processCounter) replaySplit(pos groupPositions, offsetOf map[TP]map[int64]int64) (uncommitted, lag, translation map[TP]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	uncommitted, lag, translation = map[TP]int64{}, map[TP]int64{}, map[TP]int64{}
	type key struct {
		group string
		tp    TP
		seq   int64
	}
	seen, seenOnTarget := map[key]bool{}, map[key]bool{}
	for _, e := range c.events {
		k := key{e.group, e.tp, e.seq}
		if seen[k] {
			off, ok := offsetOf[e.tp][e.seq]
			from, moved := pos.translatedFrom[e.group][e.tp]
			switch {
			case !e.onTarget || seenOnTarget[k] || !ok || off >= pos.committed[e.group][e.tp]:
				uncommitted[e.tp]++
			case !moved || off < from:
				translation[e.tp]++
			default:
				lag[e.tp]++
			}
		}
		seen[k] = true
		if e.onTarget {
			seenOnTarget[k] = true
		}
	}
	return uncommitted, lag, translation
}

// groupPositions are, by group and source partition, the offsets the
// group committed on the source and those the failover translated.
type groupPositions struct {
	committed, translatedFrom map[string]map[TP]int64
}

// journalPositions reads the source offsets the failover translated from
// its journal on the target (nil when the flow never failed over).
func journalPositions(t *testing.T, cfg *config.Config, flow *config.Flow) map[string]map[TP]int64 {
	t.Helper()
	_, frep, _, err := failover.State(context.Background(), cfg, flow)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[TP]int64{}
	if frep == nil {
		return out
	}
	for _, g := range frep.Groups {
		out[g.Group] = map[TP]int64{}
		if !g.Committed {
			continue
		}
		for _, p := range g.Partitions {
			out[g.Group][TP{p.SourceTopic, p.Partition}] = p.SourceOffset
		}
	}
	return out
}

// sourceCommitted reads the groups' committed offsets from the source.
func sourceCommitted(t *testing.T, addrs []string, groups []string) map[string]map[TP]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]map[TP]int64{}
	for _, g := range groups {
		offs, err := kadm.NewClient(cl).FetchOffsets(ctx, g)
		if err == nil {
			err = offs.Error()
		}
		if err != nil {
			t.Fatalf("committed offsets of %s on the source: %v", g, err)
		}
		out[g] = map[TP]int64{}
		offs.Each(func(o kadm.OffsetResponse) { out[g][TP{o.Topic, o.Partition}] = o.At })
	}
	return out
}

// readTarget reads a target topic to its end (read_committed) and returns
// the workload seqs per partition of run.
func readTarget(t *testing.T, addrs []string, topic string, run uint64) map[int32]map[int64]bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int32]map[int64]bool{}
	idle := 0
	for idle < 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			id, ok := workload.Identify(r.Key, r.Value)
			if !ok || id.Run != run {
				return
			}
			if out[r.Partition] == nil {
				out[r.Partition] = map[int64]bool{}
			}
			out[r.Partition][id.Seq] = true
		})
		if n == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	return out
}

// decoded is the part of the JSON report the tests check.
type decoded struct {
	Topics     []drillreport.TopicSpec    `json:"topics"`
	Groups     []string                   `json:"groups"`
	Mode       string                     `json:"failover_mode"`
	Partitions []drillreport.PartitionRow `json:"partitions"`
	Totals     drillreport.Totals         `json:"totals"`
	RTO        drillreport.RTO            `json:"rto"`
	Lag        []drillreport.LagSample    `json:"lag"`
	Statement  string                     `json:"statement"`
	Passed     bool                       `json:"passed"`
}

// checkOwnCount decodes the JSON report and checks acked, lost, replayed
// (and its split by cause) and skipped, total and per partition, against
// the test's own count: the ledger, the target read here, the records the
// consumers processed and the groups' offsets committed on the source
// (committed, read by the caller).
func checkOwnCount(t *testing.T, res *Result, pc *processCounter, targetAddrs []string, failsOver bool, positions func(groups []string) groupPositions) decoded {
	t.Helper()
	js, err := res.Report.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back decoded
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	led := res.Ledgers[0]
	st := back.Topics[0]
	tgt := readTarget(t, targetAddrs, back.Partitions[0].TargetTopic, led.RunID())
	offsetOf := map[TP]map[int64]int64{}
	for p := int32(0); p < st.Partitions; p++ {
		m := map[int64]int64{}
		for _, r := range led.Records(p) {
			m[r.Seq] = r.Offset
		}
		offsetOf[TP{st.Name, p}] = m
	}
	pos := positions(back.Groups)
	uncommitted, ckLag, translation := pc.replaySplit(pos, offsetOf)
	t.Logf("groups' source positions: committed %v, translated by the failover %v", pos.committed, pos.translatedFrom)
	var lost, acked, replayed, skipped, replayedU, replayedC, replayedT int64
	type row struct{ lost, replayed, skipped, replayedU, replayedC, replayedT int64 }
	want := map[int32]row{}
	for p := int32(0); p < st.Partitions; p++ {
		var w row
		m := pc.counts[TP{st.Name, p}]
		for _, r := range led.Records(p) {
			acked++
			if !tgt[p][r.Seq] {
				w.lost++
			}
			if !failsOver && m[r.Seq] == 0 {
				w.skipped++
			}
		}
		for _, n := range m {
			w.replayed += int64(max(0, n-1))
		}
		if failsOver {
			for seq := range tgt[p] {
				if m[seq] == 0 {
					w.skipped++
				}
			}
		}
		tp := TP{st.Name, p}
		w.replayedU, w.replayedC, w.replayedT = uncommitted[tp], ckLag[tp], translation[tp]
		if w.replayedU+w.replayedC+w.replayedT != w.replayed {
			t.Fatalf("partition %d: own split %d+%d+%d does not add up to own replayed %d", p, w.replayedU, w.replayedC, w.replayedT, w.replayed)
		}
		want[p] = w
		lost, replayed, skipped = lost+w.lost, replayed+w.replayed, skipped+w.skipped
		replayedU, replayedC, replayedT = replayedU+w.replayedU, replayedC+w.replayedC, replayedT+w.replayedT
	}
	tot := back.Totals
	if tot.Acked != acked || tot.Lost != lost || tot.Replayed != replayed || tot.Skipped != skipped {
		t.Errorf("report acked/lost/replayed/skipped = %d/%d/%d/%d, own count %d/%d/%d/%d",
			tot.Acked, tot.Lost, tot.Replayed, tot.Skipped, acked, lost, replayed, skipped)
	}
	if tot.ReplayedUncommitted != replayedU || tot.ReplayedCheckpointLag != replayedC || tot.ReplayedTranslation != replayedT {
		t.Errorf("report replayed_uncommitted/_checkpoint_lag/_translation = %d/%d/%d, own count %d/%d/%d",
			tot.ReplayedUncommitted, tot.ReplayedCheckpointLag, tot.ReplayedTranslation, replayedU, replayedC, replayedT)
	}
	for _, r := range back.Partitions {
		if w := want[r.Partition]; r.Lost != w.lost || r.Replayed != w.replayed || r.Skipped != w.skipped ||
			r.ReplayedUncommitted != w.replayedU || r.ReplayedCheckpointLag != w.replayedC || r.ReplayedTranslation != w.replayedT {
			t.Errorf("partition %d: report lost/replayed (uncommitted+checkpoint lag+translation)/skipped %d/%d (%d+%d+%d)/%d, own count %d/%d (%d+%d+%d)/%d",
				r.Partition, r.Lost, r.Replayed, r.ReplayedUncommitted, r.ReplayedCheckpointLag, r.ReplayedTranslation, r.Skipped,
				w.lost, w.replayed, w.replayedU, w.replayedC, w.replayedT, w.skipped)
		}
	}
	t.Logf("acked %d lost %d replayed %d (after last commit %d, after last checkpoint %d, translation %d) skipped %d; RTO %.1fs; %s",
		acked, lost, replayed, replayedU, replayedC, replayedT, skipped, back.RTO.Total, back.Statement)
	return back
}

func TestDrillSourceDownFiguresMatchOwnCount(t *testing.T) {
	s := testkit.KfakePair(t).Sandbox
	cfg, flow, path := sandboxConfig(t, s)
	pc := &processCounter{counts: map[TP]map[int64]int{}}
	var progress bytes.Buffer
	res, err := Run(context.Background(), Options{
		Config: cfg, Flow: flow, ConfigPath: path, Scenario: shortScenario(t, drillreport.FaultSourceDown),
		Sandbox: s, OnProcess: pc.hook, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, progress.String())
	}
	t.Logf("progress:\n%s", progress.String())
	// The group's last commits on the source, read back by the test: the
	// sandbox keeps the stopped cluster's state, so bring it back.
	positions := func(groups []string) groupPositions {
		if err := s.RestartCluster(context.Background(), flow.Source); err != nil {
			t.Fatal(err)
		}
		return groupPositions{sourceCommitted(t, s.Cluster(flow.Source).Addrs, groups), journalPositions(t, cfg, flow)}
	}
	back := checkOwnCount(t, res, pc, s.Cluster(flow.Target).Addrs, true, positions)
	if back.Totals.ReplayedTranslation != 0 {
		t.Errorf("%d records replayed because of offset translation; want 0 (exact translation)", back.Totals.ReplayedTranslation)
	}

	// At risk: what godwit's failover recorded in its journal on the target.
	_, frep, _, err := failover.State(context.Background(), cfg, flow)
	if err != nil {
		t.Fatal(err)
	}
	var atRisk int64
	perPart := map[int32]int64{}
	for _, p := range frep.Partitions {
		atRisk += p.AtRiskRecords
		perPart[p.Partition] = p.AtRiskRecords
	}
	if back.Totals.AtRisk == nil || *back.Totals.AtRisk != atRisk {
		t.Errorf("report at_risk = %v, journal says %d", back.Totals.AtRisk, atRisk)
	}
	for _, r := range back.Partitions {
		if r.AtRisk == nil || *r.AtRisk != perPart[r.Partition] {
			t.Errorf("partition %d: report at_risk %v, journal %d", r.Partition, r.AtRisk, perPart[r.Partition])
		}
	}
	if back.Mode != failover.Unplanned {
		t.Errorf("failover mode %q, want unplanned", back.Mode)
	}
	var names []string
	for _, p := range back.RTO.Phases {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "detect,declare,failover command,cutover hook,consumers resumed,consumers caught up" {
		t.Errorf("RTO phases %s", got)
	}
	if !strings.Contains(back.Statement, "unplanned failover lost") {
		t.Errorf("statement: %s", back.Statement)
	}
	if len(back.Lag) < 10 {
		t.Errorf("only %d lag samples", len(back.Lag))
	}
}

// TestDrillCrashAndPlanned runs replicator-crash and a planned failover
// (fault none) on kfake (in-process replicator) and on the real pair
// (godwit as a process, killed with SIGKILL), with short phases.
func TestDrillCrashAndPlanned(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		for _, fault := range []string{drillreport.FaultReplicatorCrash, drillreport.FaultNone} {
			t.Run(fault, func(t *testing.T) {
				var cfg *config.Config
				var flow *config.Flow
				var path string
				o := Options{Suffix: strings.ReplaceAll(fault, "-", "")}
				if p.Sandbox != nil {
					cfg, flow, path = sandboxConfig(t, p.Sandbox)
				} else {
					file, _, _ := testkit.FlowConfigFile(t, p, "prefixed", "delivery: exactly-once", false)
					data, err := os.ReadFile(file)
					if err != nil {
						t.Fatal(err)
					}
					var out []byte
					cfg, flow, out, err = PrepareConfig(file, data, "", "")
					if err != nil {
						t.Fatal(err)
					}
					path = filepath.Join(t.TempDir(), "drill.yaml")
					if err := os.WriteFile(path, out, 0o600); err != nil {
						t.Fatal(err)
					}
					o.Replicator = Process(testkit.GodwitBinary(t), nil)
					o.Suffix = strings.TrimPrefix(testkit.UniqueName(t, "x"), "x.")
					o.Suffix = o.Suffix[len(o.Suffix)-8:]
					t.Cleanup(func() { // the real clusters are shared
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
				}
				pc := &processCounter{counts: map[TP]map[int64]int{}}
				var progress bytes.Buffer
				o.Config, o.Flow, o.ConfigPath, o.Scenario = cfg, flow, path, shortScenario(t, fault)
				o.OnProcess, o.Progress = pc.hook, &progress
				res, err := Run(context.Background(), o)
				if err != nil {
					t.Fatalf("drill: %v\n%s", err, progress.String())
				}
				t.Logf("progress:\n%s", progress.String())
				positions := func(groups []string) groupPositions {
					return groupPositions{sourceCommitted(t, p.Primary.Addrs, groups), journalPositions(t, cfg, flow)}
				}
				back := checkOwnCount(t, res, pc, p.Secondary.Addrs, fault != drillreport.FaultReplicatorCrash, positions)
				if back.Totals.ReplayedTranslation != 0 {
					t.Errorf("%d records replayed because of offset translation; want 0", back.Totals.ReplayedTranslation)
				}
				if back.Totals.Lost != 0 || back.Totals.Duplicates != 0 {
					t.Errorf("%s: lost %d, duplicates %d; want none", fault, back.Totals.Lost, back.Totals.Duplicates)
				}
				if fault == drillreport.FaultNone && back.Mode != failover.Planned {
					t.Errorf("failover mode %q, want planned", back.Mode)
				}
				if !back.Passed {
					t.Errorf("objectives missed: %+v", res.Report.Objectives)
				}
			})
		}
	})
}

func TestPrepareConfigIsolatesTheDrill(t *testing.T) {
	in := []byte(`clusters:
  a: {bootstrap_servers: ["127.0.0.1:1"]}
  b: {bootstrap_servers: ["127.0.0.1:2"]}
flows:
  a->b: {topics: ["orders.*"], groups: ["billing"], naming: identical}
  b->a: {topics: ["x"]}
cutover: {command: "flip-production-dns"}
http: {listen: "0.0.0.0:9464"}
drill: {reports: drills}
`)
	cfg, f, out, err := PrepareConfig("in.yaml", in, "", "echo drill")
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "a->b" || len(cfg.Flows) != 1 || f.Naming != "identical" {
		t.Errorf("flow %s (%d flows), naming %s", f.Name, len(cfg.Flows), f.Naming)
	}
	if strings.Join(f.Topics, ",") != `godwit-drill\..*` || strings.Join(f.Groups, ",") != `godwit-drill\..*` {
		t.Errorf("topics %v groups %v", f.Topics, f.Groups)
	}
	if cfg.Cutover.Command != "echo drill" || strings.Contains(string(out), "flip-production-dns") || cfg.HTTP.Listen != "127.0.0.1:0" {
		t.Errorf("cutover %q, http %q", cfg.Cutover.Command, cfg.HTTP.Listen)
	}
	if cfg.Drill.Reports != "" {
		t.Errorf("drill.reports %q kept: the drill's replicator would export drill metrics", cfg.Drill.Reports)
	}
	if _, _, _, err := PrepareConfig("in.yaml", in, "c->d", ""); err == nil {
		t.Error("unknown flow accepted")
	}
}
