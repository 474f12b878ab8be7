package failover_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/replicate"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/testkit/inproc"
	"github.com/godwit/godwit/internal/workload"
)

func loadConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func producer(t *testing.T, e testkit.Endpoint, cfg workload.ProducerConfig) *workload.Producer {
	return workload.NewProducer(testkit.Client(t, e, kgo.RecordPartitioner(kgo.ManualPartitioner())), cfg)
}

// commitSource commits group offsets on the source as a consumer that
// processed the first k records of every partition and left would.
func commitSource(t *testing.T, e testkit.Endpoint, group, topic string, parts int32, k int64) {
	t.Helper()
	var os kadm.Offsets
	for p := range parts {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: k, LeaderEpoch: -1})
	}
	if err := testkit.Admin(t, e).CommitAllOffsets(inproc.ContextFor(t, 30*time.Second), group, os); err != nil {
		t.Fatalf("commit %s: %v", group, err)
	}
}

// resume joins group on the target and returns the workload sequence of
// the first record it reads on each partition (never commits).
func resume(t *testing.T, e testkit.Endpoint, group, topic string, parts int32) map[int32]int64 {
	t.Helper()
	cl := testkit.Client(t, e, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	out := map[int32]int64{}
	ctx := inproc.ContextFor(t, 60*time.Second)
	for ctx.Err() == nil && int32(len(out)) < parts {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if _, ok := out[r.Partition]; ok {
				return
			}
			id, ok := workload.Identify(r.Key, r.Value)
			if !ok {
				t.Errorf("%s[%d]@%d is not a workload record", topic, r.Partition, r.Offset)
			}
			out[r.Partition] = id.Seq
		})
	}
	cl.LeaveGroup()
	return out
}

func endOffsets(t *testing.T, e testkit.Endpoint, topic string) map[int32]int64 {
	t.Helper()
	ends, err := testkit.Admin(t, e).ListEndOffsets(inproc.ContextFor(t, 30*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// TestPlannedFailover: under steady load, producers stop and failover
// starts at once; it waits for lag 0, moves the group, and the replicator
// (still running) never writes the failed-over topic again.
func TestPlannedFailover(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		const parts = 3
		topic := testkit.UniqueName(t, "orders")
		group := testkit.UniqueName(t, "billing")
		testkit.CreateTopic(t, p.Primary, topic, parts, nil)
		cfgPath, src, dst := testkit.FlowConfigFile(t, p, "prefixed", `topics: ["`+topic+`"], slots: 4`, false)
		cfg := loadConfig(t, cfgPath)
		flow := src + "->" + dst
		inproc.Flow(t, cfg, flow)
		prod := producer(t, p.Primary, workload.ProducerConfig{Topic: topic, Partitions: parts, ValueSize: 200, Rate: 1000})
		// Steady load for 2 s; the consumer processed 100 records per
		// partition and committed on the source.
		if err := prod.Produce(inproc.ContextFor(t, time.Minute), 2000); err != nil {
			t.Fatal(err)
		}
		commitSource(t, p.Primary, group, topic, parts, 100)
		start := time.Now()
		rep, err := failover.Run(inproc.ContextFor(t, 2*time.Minute), failover.Options{
			Config: cfg, Flow: cfg.Flows[flow], Topics: nil, Groups: nil, Timeout: time.Minute, Logger: inproc.Logger(),
		})
		if err != nil {
			t.Fatalf("failover: %v", err)
		}
		t.Logf("planned failover took %v", time.Since(start).Round(time.Millisecond))
		if rep.Mode != failover.Planned || rep.FinishedAt == nil || rep.RPO.Records != 0 {
			t.Fatalf("report: mode %s finished %v rpo %+v", rep.Mode, rep.FinishedAt, rep.RPO)
		}
		// 0 records lost.
		target := src + "." + topic
		cc := workload.CheckConfig{Topic: target, Partitions: parts, IgnoreHeaders: []string{"godwit-*"}}
		crep, err := workload.Check(inproc.ContextFor(t, time.Minute), testkit.Client(t, p.Secondary), prod.Ledger(), cc)
		if err != nil || !crep.OK() {
			t.Fatalf("checker after failover: %v\n%s", err, crep)
		}
		// The group resumes on the target exactly at record 100.
		var gr *failover.GroupReport
		for i := range rep.Groups {
			if rep.Groups[i].Group == group {
				gr = &rep.Groups[i]
			}
		}
		if gr == nil || !gr.Committed || len(gr.Partitions) != parts {
			b, _ := json.MarshalIndent(rep.Groups, "", " ")
			t.Fatalf("group %s not committed on the target: %s", group, b)
		}
		first := resume(t, p.Secondary, group, target, parts)
		replay, skip := 0, 0
		for part := range int32(parts) {
			seq, ok := first[part]
			if !ok {
				t.Fatalf("partition %d: nothing read after failover", part)
			}
			if seq < 100 {
				replay += int(100 - seq)
			} else {
				skip += int(seq - 100)
			}
		}
		t.Logf("group resumed on the target: replay=%d skip=%d", replay, skip)
		if replay != 0 || skip != 0 {
			t.Fatalf("replay=%d skip=%d, want 0/0 (first sequences %v)", replay, skip, first)
		}
		// The failed-over topic is never written again by the replicator,
		// which keeps running: no record produced on the source after the
		// failover reaches the target (read_uncommitted, so even records
		// of aborted transactions count), and once the fenced sessions
		// are gone the target end offsets stay put.
		before := endOffsets(t, p.Secondary, target)
		more := producer(t, p.Primary, workload.ProducerConfig{Topic: topic, Partitions: parts})
		if err := more.Produce(inproc.ContextFor(t, time.Minute), 300); err != nil {
			t.Fatal(err)
		}
		inproc.Advanced(t, p, cfg.Flows[flow])
		mid := endOffsets(t, p.Secondary, target)
		cl := testkit.Client(t, p.Secondary)
		for part, off := range before {
			recs, err := kafkautil.ReadRange(inproc.ContextFor(t, 30*time.Second), cl, target, part, off, mid[part], false)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) > 0 {
				t.Fatalf("replicator wrote %d records to failed-over %s[%d] after the failover", len(recs), target, part)
			}
			if mid[part] != off {
				t.Logf("%s[%d]: %d control record(s) after the failover (a fenced transaction's marker), no data", target, part, mid[part]-off)
			}
		}
		if err := more.Produce(inproc.ContextFor(t, time.Minute), 300); err != nil {
			t.Fatal(err)
		}
		inproc.Advanced(t, p, cfg.Flows[flow])
		if after := endOffsets(t, p.Secondary, target); fmt.Sprint(after) != fmt.Sprint(mid) {
			t.Fatalf("replicator wrote the failed-over topic: end offsets %v -> %v", mid, after)
		}
		st, err := journal.ReadFlowState(inproc.ContextFor(t, 30*time.Second), testkit.Client(t, p.Secondary), cfg.Flows[flow])
		if err != nil || !st.FailedOver(topic) {
			t.Fatalf("journal state: %v %+v", err, st)
		}
		names := []string{}
		for _, s := range rep.Steps {
			names = append(names, s.Name)
		}
		t.Logf("steps: %s", strings.Join(names, ","))
	})
}

// TestUnplannedFailover: the source cluster stops mid-stream; the data
// at risk reported per partition equals what an independent checker finds
// missing on the target.
func TestUnplannedFailover(t *testing.T) {
	p := testkit.KfakePair(t) // stopping a cluster: never on the shared real clusters
	const parts = 3
	topic := testkit.UniqueName(t, "orders")
	group := testkit.UniqueName(t, "billing")
	testkit.CreateTopic(t, p.Primary, topic, parts, nil)
	// Small transactions so replication trails the producer.
	cfgPath, src, dst := testkit.FlowConfigFile(t, p, "prefixed", `topics: ["`+topic+`"], slots: 4, max_batch_bytes: 1024, commit_interval: 200ms`, false)
	cfg := loadConfig(t, cfgPath)
	flow := src + "->" + dst
	f := cfg.Flows[flow]
	inproc.Flow(t, cfg, flow)
	// One record per producer batch, so each replicator fetch (bounded
	// by max_batch_bytes) carries one record and replication trails.
	prod := workload.NewProducer(testkit.Client(t, p.Primary, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1200)),
		workload.ProducerConfig{Topic: topic, Partitions: parts, ValueSize: 1000})
	if err := prod.Produce(inproc.ContextFor(t, time.Minute), 300); err != nil {
		t.Fatal(err)
	}
	commitSource(t, p.Primary, group, topic, parts, 20)
	// Wait for the checkpoint of the group, then a burst the replicator
	// cannot keep up with.
	dcl := testkit.Client(t, p.Secondary)
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		cks, err := offsets.ReadCheckpoints(context.Background(), dcl, offsets.CheckpointsTopic(src))
		n := 0
		for _, c := range cks {
			if c.Group == group {
				n++
			}
		}
		return err == nil && n == parts, fmt.Sprintf("%d checkpoints (%v)", n, err)
	})
	if err := prod.Produce(inproc.ContextFor(t, time.Minute), 6000); err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	for part := range int32(parts) {
		want[part] = int64(len(prod.Ledger().Records(part)))
	}
	// Stop the source once the replicator stored its observation of the
	// final end offsets (it does every second) and is still behind.
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		st := offsets.NewStore(f, dcl)
		if err := st.Refresh(context.Background()); err != nil {
			return false, err.Error()
		}
		for part := range int32(parts) {
			pp, ok := st.Progress(flowstate.TP{Topic: topic, Partition: part})
			if testing.Verbose() {
				t.Logf("partition %d: next %d end %d produced %d", part, pp.Next, pp.SourceEnd, want[part])
			}
			if !ok || pp.SourceEnd != want[part] {
				return false, fmt.Sprintf("partition %d: observed end %d, produced %d", part, pp.SourceEnd, want[part])
			}
		}
		return true, ""
	})
	stopAt := time.Now()
	if err := p.Sandbox.StopCluster(p.Primary.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("source stopped in %v", time.Since(stopAt).Round(time.Millisecond))
	rep, err := failover.Run(inproc.ContextFor(t, 2*time.Minute), failover.Options{Config: cfg, Flow: f, SourceTimeout: 3 * time.Second, Logger: inproc.Logger()})
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	if rep.Mode != failover.Unplanned {
		t.Fatalf("mode %s, want unplanned", rep.Mode)
	}
	target := src + "." + topic
	crep, err := workload.Check(inproc.ContextFor(t, time.Minute), dcl, prod.Ledger(), workload.CheckConfig{Topic: target, Partitions: parts, IgnoreHeaders: []string{"godwit-*"}})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, pr := range rep.Partitions {
		if pr.SourceTopic != topic {
			continue
		}
		missing := crep.PerPartition[pr.Partition].Missing
		t.Logf("partition %d: at_risk_records=%d checker missing=%d (replicated %d of %d; ~%d bytes, %.1fs)",
			pr.Partition, pr.AtRiskRecords, missing, pr.ReplicatedOffset, pr.SourceEndOffset, pr.AtRiskBytesEstimate, pr.AtRiskSeconds)
		if pr.AtRiskRecords != missing {
			t.Errorf("partition %d: at_risk_records %d, checker missing %d", pr.Partition, pr.AtRiskRecords, missing)
		}
		total += missing
	}
	if total == 0 {
		t.Fatalf("nothing was at risk: the test did not exercise an unplanned failover with lag\n%s", crep)
	}
	if crep.Duplicates != 0 || crep.OutOfOrder != 0 || crep.Mismatched != 0 || crep.Unexpected != 0 {
		t.Fatalf("target is not a clean prefix of the source:\n%s", crep)
	}
	t.Logf("rpo: %+v", rep.RPO)
	// The report says which observation its count rests on: the oldest
	// of the partitions', no later than the failover's start.
	if o := rep.RPO.ObservedAt; o == nil {
		t.Errorf("rpo.observed_at missing from an unplanned failover")
	} else {
		for _, pr := range rep.Partitions {
			if pr.SourceEndObservedAt.Before(*o) {
				t.Errorf("rpo.observed_at %v is later than partition %s[%d]'s observation %v", o, pr.SourceTopic, pr.Partition, pr.SourceEndObservedAt)
			}
		}
		if o.After(rep.StartedAt) || rep.RPO.ObservationAgeSeconds != rep.StartedAt.Sub(*o).Seconds() {
			t.Errorf("rpo.observed_at %v, age %.3f s, failover started %v", o, rep.RPO.ObservationAgeSeconds, rep.StartedAt)
		}
	}
	// The group moved with its checkpointed offsets.
	found := false
	for _, g := range rep.Groups {
		if g.Group == group {
			found = g.Committed && len(g.Partitions) == parts
			for _, gp := range g.Partitions {
				if gp.SourceOffset != 20 {
					t.Errorf("group partition %d: source offset %d, want 20", gp.Partition, gp.SourceOffset)
				}
			}
		}
	}
	if !found {
		t.Fatalf("group %s not committed from checkpoints: %+v", group, rep.Groups)
	}
	first := resume(t, p.Secondary, group, target, parts)
	for part, seq := range first {
		if seq != 20 {
			t.Errorf("partition %d: group resumed at sequence %d, want 20", part, seq)
		}
	}
}

// TestFailoverResumesAfterKill: `godwit failover` killed between steps
// (exit 137 right after a step is journaled), run again, completes; the
// journal shows both runs.
func TestFailoverResumesAfterKill(t *testing.T) {
	testkit.ForEachPair(t, testResumesAfterKill)
}

func testResumesAfterKill(t *testing.T, p testkit.Pair) {
	const parts = 2
	topic := testkit.UniqueName(t, "orders")
	testkit.CreateTopic(t, p.Primary, topic, parts, nil)
	cfgPath, src, dst := testkit.FlowConfigFile(t, p, "prefixed", `topics: ["`+topic+`"], slots: 2`, false)
	marker := t.TempDir() + "/cutover.out"
	appendFile(t, cfgPath, "cutover: {command: 'echo \"$GODWIT_FLOW $GODWIT_BOOTSTRAP_SERVERS $GODWIT_TOPICS\" >> "+marker+"', timeout: 10s}\n")
	cfg := loadConfig(t, cfgPath)
	flow := src + "->" + dst
	inproc.Flow(t, cfg, flow)
	prod := producer(t, p.Primary, workload.ProducerConfig{Topic: topic, Partitions: parts})
	if err := prod.Produce(inproc.ContextFor(t, time.Minute), 200); err != nil {
		t.Fatal(err)
	}
	// The replicator must have started the flow (stored progress for
	// every partition) before the failover is interrupted: otherwise
	// the first run can fail for that reason instead of being killed.
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		st, err := replicate.Status(context.Background(), cfg, cfg.Flows[flow])
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, pp := range st.Partitions {
			if pp.SourceTopic == topic {
				n++
			}
		}
		return n == parts, fmt.Sprintf("%d of %d partitions have progress", n, parts)
	})
	bin := testkit.GodwitBinary(t)
	var lastStderr string
	run := func(crashAfter string) (int, string) {
		cmd := exec.Command(bin, "failover", "-c", cfgPath, "--flow", flow, "-o", "json", "--timeout", "1m")
		cmd.Env = append(os.Environ(), "GODWIT_FAILOVER_CRASH_AFTER="+crashAfter)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		_ = cmd.Run()
		lastStderr = errb.String()
		if testing.Verbose() {
			t.Logf("stderr:\n%s", lastStderr)
		}
		return cmd.ProcessState.ExitCode(), out.String()
	}
	code, _ := run(failover.StepMark)
	if code != 137 {
		t.Fatalf("first run exited %d, want 137 (killed after %s); stderr:\n%s", code, failover.StepMark, lastStderr)
	}
	st, err := journal.ReadFlowState(inproc.ContextFor(t, 30*time.Second), testkit.Client(t, p.Secondary), cfg.Flows[flow])
	if err != nil || !st.FailedOver(topic) || st.Op == nil || st.Op.FinishedAt != nil {
		t.Fatalf("after the kill: state %+v, %v", st, err)
	}
	code, out := run("")
	if code != 0 {
		t.Fatalf("second run exited %d:\n%s", code, out)
	}
	var rep failover.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	if rep.FinishedAt == nil || len(rep.Runs) != 2 {
		t.Fatalf("report: finished %v, runs %d, want 2", rep.FinishedAt, len(rep.Runs))
	}
	count := map[string]int{}
	for _, s := range rep.Steps {
		if s.OK {
			count[s.Name]++
		}
	}
	// Steps before the kill ran once, in the first run; detect in both.
	for _, name := range []string{failover.StepWaitLag, failover.StepFinalSync, failover.StepMark, failover.StepFence, failover.StepCommit, failover.StepCutover} {
		if count[name] != 1 {
			t.Errorf("step %s ran %d times, want 1 (steps %+v)", name, count[name], rep.Steps)
		}
	}
	if count[failover.StepDetect] != 2 {
		t.Errorf("detect ran %d times, want 2", count[failover.StepDetect])
	}
	if rep.Steps[len(rep.Steps)-1].Run != rep.Runs[1].ID {
		t.Errorf("last step not from the second run")
	}
	evs, err := journal.ReadEvents(inproc.ContextFor(t, 30*time.Second), testkit.Client(t, p.Secondary), cfg.Flows[flow])
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]bool{}
	for _, e := range evs {
		runs[e.Run] = true
	}
	if len(runs) != 2 {
		t.Fatalf("journal holds events of %d runs, want 2", len(runs))
	}
	hook, err := os.ReadFile(marker)
	if err != nil || strings.Count(string(hook), "\n") != 1 || !strings.HasPrefix(string(hook), flow+" "+strings.Join(p.Secondary.Addrs, ",")+" "+topic) {
		t.Fatalf("cutover hook output %q (%v)", hook, err)
	}
	if rep.Cutover == nil || rep.Cutover.ExitCode != 0 {
		t.Fatalf("cutover not recorded: %+v", rep.Cutover)
	}
	crep, err := workload.Check(inproc.ContextFor(t, time.Minute), testkit.Client(t, p.Secondary), prod.Ledger(), workload.CheckConfig{Topic: src + "." + topic, Partitions: parts, IgnoreHeaders: []string{"godwit-*"}})
	if err != nil || !crep.OK() {
		t.Fatalf("checker: %v\n%s", err, crep)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
