package failover_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/testkit/inproc"
	"github.com/godwit/godwit/internal/workload"
)

// stalledCase is one run of the stalled-target proof: topics on the
// source, which of them the target stops accepting (stall), and how the
// source dies.
type stalledCase struct {
	p      testkit.Pair
	topics map[string]int32 // source topic -> partitions
	// flowExtra is added to the flow's YAML body.
	flowExtra string
	// stall makes the target refuse (or nearly refuse) writes to the
	// replicated copies of some partitions (targets: target topic ->
	// partitions); it returns the partitions it stalls (source topic ->
	// partitions), which must end up with records at risk, and a check
	// that the fault was hit.
	stall func(t *testing.T, f *config.Flow, targets map[string]int32) (stalled map[string][]int32, hit func() error)
	// kill stops the source cluster for good.
	kill func(t *testing.T)
}

// runStalled: records are replicated, then the target refuses writes on
// some partitions while the source acknowledges more; the source dies
// and the replicator is killed (SIGKILL). `godwit failover -o json` must
// report, on every partition, at_risk_records equal to what the
// independent checker finds acknowledged on the source and missing on
// the target, and say how old the observation it counts from is.
func runStalled(t *testing.T, c stalledCase) {
	p := c.p
	var list []string
	for topic := range c.topics {
		list = append(list, `"`+topic+`"`)
	}
	body := `topics: [` + strings.Join(list, ", ") + `]`
	if c.flowExtra != "" {
		body += ", " + c.flowExtra
	}
	cfgPath, src, dst := testkit.FlowConfigFile(t, p, "prefixed", body, false)
	if p.Kind == testkit.KindKafka {
		testkit.DeleteTopicsOnCleanup(t, p.Secondary, src)
	}
	cfg := loadConfig(t, cfgPath)
	flow := src + "->" + dst
	f := cfg.Flows[flow]
	bin := testkit.GodwitBinary(t)
	logf, err := os.CreateTemp(t.TempDir(), "replicator-*.log")
	if err != nil {
		t.Fatal(err)
	}
	rep := exec.Command(bin, "replicate", "-c", cfgPath, "--log-level", "info")
	rep.Stdout, rep.Stderr = logf, logf
	if err := rep.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = rep.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = rep.Process.Signal(syscall.SIGKILL)
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("replicator log (tail):\n%s", tailOf(string(b), 6000))
		}
	})

	prods := map[string]*workload.Producer{}
	for topic, parts := range c.topics {
		prods[topic] = producer(t, p.Primary, workload.ProducerConfig{Topic: topic, Partitions: parts, ValueSize: 100})
	}
	produce := func(n int) {
		for topic, pr := range prods {
			if err := pr.Produce(inproc.ContextFor(t, time.Minute), n); err != nil {
				t.Fatalf("produce to %s: %v", topic, err)
			}
		}
	}
	dcl := testkit.Client(t, p.Secondary)
	check := func(topic string) (workload.Report, error) {
		return workload.Check(context.Background(), dcl, prods[topic].Ledger(),
			workload.CheckConfig{Topic: src + "." + topic, Partitions: c.topics[topic], IgnoreHeaders: []string{"godwit-*"}})
	}
	produce(2000)
	testkit.Eventually(t, 2*time.Minute, func() (bool, string) {
		for topic := range c.topics {
			r, err := check(topic)
			if err != nil || r.Missing != 0 {
				return false, fmt.Sprintf("%s: first load not replicated yet: %v %v", topic, r, err)
			}
		}
		return true, ""
	})
	targets := map[string]int32{}
	for topic, parts := range c.topics {
		targets[src+"."+topic] = parts
	}
	stalledParts, hit := c.stall(t, f, targets)
	produce(2000)
	acked := map[flowstate.TP]int64{}
	for topic, pr := range prods {
		for part := range c.topics[topic] {
			acked[flowstate.TP{Topic: topic, Partition: part}] = int64(len(pr.Ledger().Records(part)))
		}
	}
	// The source is killed once the observer persisted the source's end
	// of every partition (it does every second, whatever the target does
	// with the data); records acknowledged after that would be outside
	// the bound the failover states.
	observed := naming.ObservedTopic(f)
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		obs, err := flowstate.ReadObservations(context.Background(), dcl, observed)
		if err != nil {
			return false, err.Error()
		}
		for tp, n := range acked {
			if obs[tp].End != n {
				return false, fmt.Sprintf("%s: persisted observation %d, acknowledged %d", tp, obs[tp].End, n)
			}
		}
		return true, ""
	})
	// The stalled partitions really are behind, and the others caught up.
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		for topic := range c.topics {
			r, err := check(topic)
			if err != nil {
				return false, err.Error()
			}
			for part := range c.topics[topic] {
				stalled := false
				for _, sp := range stalledParts[topic] {
					stalled = stalled || sp == part
				}
				if m := r.PerPartition[part].Missing; stalled != (m > 0) {
					return false, fmt.Sprintf("%s[%d]: %d missing on the target (stalled: %v)", topic, part, m, stalled)
				}
			}
		}
		return true, ""
	})
	if err := hit(); err != nil {
		t.Fatal(err)
	}
	c.kill(t)
	if err := rep.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited

	cmd := exec.Command(bin, "failover", "-c", cfgPath, "--flow", flow, "-o", "json", "--timeout", "1m", "--source-timeout", "3s")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("godwit failover: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	var frep failover.Report
	if err := json.Unmarshal([]byte(out.String()), &frep); err != nil {
		t.Fatalf("failover -o json: %v\n%s", err, out.String())
	}
	if frep.Mode != failover.Unplanned {
		t.Fatalf("mode %s, want unplanned (the source was killed)", frep.Mode)
	}
	reports := map[string]*workload.Report{}
	for topic := range c.topics {
		r, err := check(topic)
		if err != nil {
			t.Fatal(err)
		}
		if r.Duplicates != 0 || r.OutOfOrder != 0 || r.Mismatched != 0 || r.Unexpected != 0 {
			t.Fatalf("%s: target is not a clean prefix of the source:\n%s", topic, r)
		}
		reports[topic] = &r
	}
	seen := 0
	var stalledRisk int64
	for _, pr := range frep.Partitions {
		r := reports[pr.SourceTopic]
		if r == nil {
			continue
		}
		seen++
		missing := r.PerPartition[pr.Partition].Missing
		age := "unknown"
		if pr.ObservationAgeSeconds != nil {
			age = fmt.Sprintf("%.1fs", *pr.ObservationAgeSeconds)
		}
		t.Logf("%s[%d]: at_risk_records=%d checker missing=%d (replicated %d of %d, observed %s before)",
			pr.SourceTopic, pr.Partition, pr.AtRiskRecords, missing, pr.ReplicatedOffset, pr.SourceEndOffset, age)
		if pr.AtRiskRecords != missing {
			t.Errorf("%s[%d]: at_risk_records %d, checker missing %d", pr.SourceTopic, pr.Partition, pr.AtRiskRecords, missing)
		}
		if pr.ObservationAgeSeconds == nil {
			t.Errorf("%s[%d]: no source_end_observation_age_seconds: the bound is not stated", pr.SourceTopic, pr.Partition)
		}
		for _, sp := range stalledParts[pr.SourceTopic] {
			if sp == pr.Partition {
				stalledRisk += pr.AtRiskRecords
			}
		}
	}
	want := 0
	for _, parts := range c.topics {
		want += int(parts)
	}
	if seen != want {
		t.Fatalf("report has %d of the %d partitions", seen, want)
	}
	if stalledRisk == 0 {
		t.Fatal("nothing at risk on the stalled partitions: the fault was not exercised")
	}
	bound := false
	for _, n := range frep.Notes {
		bound = bound || strings.HasPrefix(n, "bound: at_risk_records misses only what the source acknowledged after")
	}
	if !bound || frep.RPO.ObservedAt == nil {
		t.Errorf("the report does not state its bound (rpo.observed_at %v, notes %q)", frep.RPO.ObservedAt, frep.Notes)
	}
}

// TestUnplannedFailoverTargetStalled (issue 14): the target refuses
// Produce on partitions 1 and 3 of four (kfake fault) while the source
// keeps acknowledging: at_risk_records still equals the checker's missing
// count on every partition, because the source observer persisted the
// source's end outside the stuck data transactions.
func TestUnplannedFailoverTargetStalled(t *testing.T) {
	p := testkit.KfakePair(t) // stopping a cluster: never on the shared real clusters
	topic := testkit.UniqueName(t, "stall")
	testkit.CreateTopic(t, p.Primary, topic, 4, nil)
	runStalled(t, stalledCase{
		p:      p,
		topics: map[string]int32{topic: 4},
		stall: func(t *testing.T, _ *config.Flow, targets map[string]int32) (map[string][]int32, func() error) {
			var target string
			for tt := range targets {
				target = tt
			}
			_, refused := testkit.RefuseProduce(t, p.Sandbox.Cluster(p.Secondary.Name).Fake(), target, 1, 3)
			return map[string][]int32{topic: {1, 3}}, func() error {
				if refused.Load() == 0 {
					return fmt.Errorf("the target never refused a produce: the fault was not exercised")
				}
				return nil
			}
		},
		kill: func(t *testing.T) {
			if err := p.Sandbox.StopCluster(p.Primary.Name); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestUnplannedFailoverTargetStalledKafka is the same on real Kafka,
// where a single-broker target cannot refuse single partitions (and
// Kafka 4 caps min.insync.replicas at the replication factor, so a topic
// with min.insync.replicas above it still takes writes). The standby is
// throttled instead: a producer_byte_rate quota of 1 byte/s on the client
// id of the slots owning partitions 1 and 3, each transaction kept small,
// so those slots commit a few records every throttle window (about 11 s)
// while the source acknowledges thousands. Per slot, not per partition: a
// partition sharing a slot with 1 or 3 is throttled too, and counted as
// stalled. The source is a disposable broker killed with SIGKILL.
func TestUnplannedFailoverTargetStalledKafka(t *testing.T) {
	p, source := testkit.DisposablePair(t)
	topic := testkit.UniqueName(t, "stall")
	source.CreateTopic(t, topic, 4)
	runStalled(t, stalledCase{
		p:         p,
		topics:    map[string]int32{topic: 4},
		flowExtra: "max_batch_bytes: 1024, commit_interval: 100ms",
		stall: func(t *testing.T, f *config.Flow, _ map[string]int32) (map[string][]int32, func() error) {
			slots := map[int]bool{}
			for _, part := range []int32{1, 3} {
				slots[flowstate.SlotOf(flowstate.TP{Topic: topic, Partition: part}, f.Slots)] = true
			}
			var stalled []int32
			for part := range int32(4) {
				if slots[flowstate.SlotOf(flowstate.TP{Topic: topic, Partition: part}, f.Slots)] {
					stalled = append(stalled, part)
				}
			}
			var ids []string
			for slot := range slots {
				ids = append(ids, testkit.SlotProducerIDs(f, slot)...)
			}
			testkit.ThrottleProducers(t, p.Secondary, 1, ids...)
			t.Logf("throttled slots %v: partitions %v of %s", slots, stalled, topic)
			return map[string][]int32{topic: stalled}, func() error { return nil }
		},
		kill: func(t *testing.T) { source.Kill() },
	})
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
