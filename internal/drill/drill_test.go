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

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/sandbox"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

// shortScenario keeps drills quick under -race.
func shortScenario(t *testing.T, fault string) *Scenario {
	t.Helper()
	sc, err := ParseScenario("test.yaml", []byte(`
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
	cfg, flow, out, err := PrepareConfig("sandbox.yaml", b.Bytes(), "", 0)
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
// processed.
type processCounter struct {
	mu     sync.Mutex
	counts map[TP]map[int64]int
}

func (c *processCounter) hook(_ string, _ bool, topic string, p int32, seq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := TP{topic, p}
	if c.counts[tp] == nil {
		c.counts[tp] = map[int64]int{}
	}
	c.counts[tp][seq]++
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

func TestDrillSourceDownFiguresMatchOwnCount(t *testing.T) {
	s := testkit.KfakePair(t).Sandbox
	cfg, flow, path := sandboxConfig(t, s)
	pc := &processCounter{counts: map[TP]map[int64]int{}}
	var progress bytes.Buffer
	res, err := Run(context.Background(), Options{
		Config: cfg, Flow: flow, ConfigPath: path, Scenario: shortScenario(t, FaultSourceDown),
		Sandbox: s, OnProcess: pc.hook, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, progress.String())
	}
	rep := res.Report
	t.Logf("progress:\n%s", progress.String())
	t.Logf("statement: %s", rep.Statement)
	js, _ := rep.JSON()
	var back struct { // the JSON is what we check: decode it
		Topics     []TopicSpec    `json:"topics"`
		Mode       string         `json:"failover_mode"`
		Partitions []PartitionRow `json:"partitions"`
		Totals     Totals         `json:"totals"`
		RTO        RTO            `json:"rto"`
		Lag        []LagSample    `json:"lag"`
		Statement  string         `json:"statement"`
	}
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}

	// The test's own count: acked records (ledger) vs what the target
	// holds, read here.
	led := res.Ledgers[0]
	st := back.Topics[0]
	tgt := readTarget(t, s.Cluster(flow.Target).Addrs, back.Partitions[0].TargetTopic, led.RunID())
	var lost, acked int64
	want := map[int32]int64{}
	for p := int32(0); p < st.Partitions; p++ {
		var pl int64
		for _, r := range led.Records(p) {
			acked++
			if !tgt[p][r.Seq] {
				pl++
			}
		}
		want[p] = pl
		lost += pl
	}
	// Replayed: processed more than once; skipped: on the target, never processed.
	var replayed, skipped int64
	for p := int32(0); p < st.Partitions; p++ {
		m := pc.counts[TP{st.Name, p}]
		for _, n := range m {
			replayed += int64(max(0, n-1))
		}
		for seq := range tgt[p] {
			if m[seq] == 0 {
				skipped++
			}
		}
	}
	// At risk: what godwit's failover recorded in its journal on the target.
	_, frep, _, err := failover.State(context.Background(), cfg, flow)
	if err != nil {
		t.Fatal(err)
	}
	var atRisk int64
	for _, p := range frep.Partitions {
		atRisk += p.AtRiskRecords
	}

	tot := back.Totals
	if tot.Acked != acked || tot.Lost != lost || tot.Replayed != replayed || tot.Skipped != skipped {
		t.Errorf("report acked/lost/replayed/skipped = %d/%d/%d/%d, own count %d/%d/%d/%d",
			tot.Acked, tot.Lost, tot.Replayed, tot.Skipped, acked, lost, replayed, skipped)
	}
	if tot.AtRisk == nil || *tot.AtRisk != atRisk {
		t.Errorf("report at_risk = %v, journal says %d", tot.AtRisk, atRisk)
	}
	for _, row := range back.Partitions {
		if row.Lost != want[row.Partition] {
			t.Errorf("partition %d: report lost %d, own count %d", row.Partition, row.Lost, want[row.Partition])
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
	t.Logf("acked %d lost %d at-risk %d replayed %d skipped %d rto %.1fs", acked, lost, atRisk, replayed, skipped, back.RTO.Total)
}
