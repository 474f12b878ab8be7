package failback_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/failback"
	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/testkit/inproc"
	"github.com/godwit/godwit/internal/workload"
)

func commit(t *testing.T, e testkit.Endpoint, group string, offs map[int32]int64, topic string) {
	t.Helper()
	var os kadm.Offsets
	for p, o := range offs {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
	}
	if err := testkit.Admin(t, e).CommitAllOffsets(inproc.ContextFor(t, 30*time.Second), group, os); err != nil {
		t.Fatalf("commit %s: %v", group, err)
	}
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

// resume joins group on e and returns the workload identity of the first
// record it reads on each partition (never commits).
func resume(t *testing.T, e testkit.Endpoint, group, topic string, parts int32) map[int32]workload.ID {
	t.Helper()
	cl := testkit.Client(t, e, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	out := map[int32]workload.ID{}
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
			out[r.Partition] = id
		})
	}
	cl.LeaveGroup()
	return out
}

func check(t *testing.T, e testkit.Endpoint, l *workload.Ledger, topic string, parts int32) workload.Report {
	t.Helper()
	rep, err := workload.Check(inproc.ContextFor(t, time.Minute), testkit.Client(t, e), l, workload.CheckConfig{Topic: topic, Partitions: parts, IgnoreHeaders: []string{"godwit-*"}})
	if err != nil {
		t.Fatalf("checker on %s: %v", e.Name, err)
	}
	return rep
}

func ledgerLen(l *workload.Ledger) map[int32]int64 {
	out := map[int32]int64{}
	for p := range l.Partitions() {
		out[p] = int64(len(l.Records(p)))
	}
	return out
}

// TestFailbackAfterUnplannedFailover: A stops mid-stream (records
// acknowledged on A never reached B), godwit failover moves the topic to
// B, producers write on B, A comes back, godwit failback (interrupted
// once in the middle of the tail copy) recovers the tail, replicates B's
// writes back, moves the groups and restores A->B. At the end every
// acknowledged record of either side is on both clusters exactly once,
// the groups resume on A with 0 replay and 0 skip, and the restored A->B
// flow neither re-copies the tail nor copies B's records back.
func TestFailbackAfterUnplannedFailover(t *testing.T) {
	p := testkit.KfakePair(t) // stopping a cluster: never on the shared real clusters
	testFailback(t, p, true)
}

// TestFailbackAfterPlannedFailover: the planned variant (no broker is
// stopped), on kfake and on real Kafka: late writers on A after the
// failover are the tail.
func TestFailbackAfterPlannedFailover(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) { testFailback(t, p, false) })
}

func testFailback(t *testing.T, p testkit.Pair, unplanned bool) {
	const parts = 3
	topic := testkit.UniqueName(t, "orders")
	idle := testkit.UniqueName(t, "idle")       // committed on A before the failover, never ran on B
	drained := testkit.UniqueName(t, "drained") // consumed everything on B before switching back
	testkit.CreateTopic(t, p.Primary, topic, parts, nil)
	body := `topics: ["` + topic + `"], slots: 4`
	if unplanned {
		body += `, max_batch_bytes: 1024, commit_interval: 200ms` // replication trails the producer
	}
	cfgPath, src, dst := testkit.FlowConfigFile(t, p, "identical", body, false)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	flow := src + "->" + dst
	f := cfg.Flows[flow]
	inproc.Flow(t, cfg, flow)
	dcl := testkit.Client(t, p.Secondary)

	prodA := workload.NewProducer(testkit.Client(t, p.Primary, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1200)),
		workload.ProducerConfig{Topic: topic, Partitions: parts, ValueSize: 1000})
	if err := prodA.Produce(inproc.ContextFor(t, time.Minute), 300); err != nil {
		t.Fatal(err)
	}
	commit(t, p.Primary, idle, map[int32]int64{0: 20, 1: 20, 2: 20}, topic)
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		cks, err := offsets.ReadCheckpoints(context.Background(), dcl, offsets.CheckpointsTopic(src))
		n := 0
		for _, c := range cks {
			if c.Group == idle {
				n++
			}
		}
		return err == nil && n == parts, fmt.Sprintf("%d checkpoints (%v)", n, err)
	})

	var missingAtFailover int64
	if unplanned {
		if err := prodA.Produce(inproc.ContextFor(t, time.Minute), 6000); err != nil {
			t.Fatal(err)
		}
		want := ledgerLen(prodA.Ledger())
		testkit.Eventually(t, time.Minute, func() (bool, string) {
			st := offsets.NewStore(f, dcl)
			if err := st.Refresh(context.Background()); err != nil {
				return false, err.Error()
			}
			for part := range int32(parts) {
				pp, ok := st.Progress(flowstate.TP{Topic: topic, Partition: part})
				if !ok || pp.SourceEnd != want[part] {
					return false, fmt.Sprintf("partition %d: observed end %d, produced %d", part, pp.SourceEnd, want[part])
				}
			}
			return true, ""
		})
		if err := p.Sandbox.StopCluster(p.Primary.Name); err != nil {
			t.Fatal(err)
		}
	}
	frep, err := failover.Run(inproc.ContextFor(t, 2*time.Minute), failover.Options{Config: cfg, Flow: f, SourceTimeout: 3 * time.Second, Timeout: time.Minute, Logger: inproc.Logger()})
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	if unplanned != (frep.Mode == failover.Unplanned) {
		t.Fatalf("failover mode %s", frep.Mode)
	}
	crep := check(t, p.Secondary, prodA.Ledger(), topic, parts)
	missingAtFailover = crep.Missing
	if !unplanned {
		// Late writers on A after a planned failover: acknowledged on A,
		// never copied: the tail.
		if crep.Missing != 0 {
			t.Fatalf("planned failover left records behind:\n%s", crep)
		}
		if err := prodA.Produce(inproc.ContextFor(t, time.Minute), 600); err != nil {
			t.Fatal(err)
		}
		missingAtFailover = 600
	}
	t.Logf("failover %s: %d records acknowledged on A are not on B", frep.Mode, missingAtFailover)
	if missingAtFailover == 0 {
		t.Fatalf("nothing to recover: the test did not exercise a tail")
	}

	// Producers move to B and write there during the outage.
	prodB := workload.NewProducer(testkit.Client(t, p.Secondary, kgo.RecordPartitioner(kgo.ManualPartitioner())),
		workload.ProducerConfig{Topic: topic, Partitions: parts, ValueSize: 300})
	if err := prodB.Produce(inproc.ContextFor(t, time.Minute), 1500); err != nil {
		t.Fatal(err)
	}
	if unplanned {
		if err := p.Sandbox.RestartCluster(inproc.ContextFor(t, time.Minute), p.Primary.Name); err != nil {
			t.Fatal(err)
		}
	}

	// Dry run: the plan, nothing written.
	dry, err := failback.Run(inproc.ContextFor(t, 2*time.Minute), failback.Options{Config: cfg, Flow: f, DryRun: true, Logger: inproc.Logger()})
	if err != nil {
		t.Fatalf("failback --dry-run: %v", err)
	}
	if dry.TailRecords.Planned < missingAtFailover || dry.TailRecords.Copied != 0 || dry.Reverse == nil || dry.Reverse.Lag == 0 {
		b, _ := json.MarshalIndent(dry, "", " ")
		t.Fatalf("dry run: %s", b)
	}

	// First run, interrupted after the first tail transaction.
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	_, err = failback.Run(ctx1, failback.Options{Config: cfg, Flow: f, Logger: inproc.Logger(), CopyHook: func(int64) { cancel1() }})
	if err == nil {
		t.Fatalf("interrupted failback returned no error")
	}
	finishFailback(t, failbackRun{p: p, cfg: cfg, f: f, dcl: dcl, prodA: prodA, prodB: prodB,
		topic: topic, parts: parts, idle: idle, drained: drained, missingAtFailover: missingAtFailover})
}

// TestFailbackQuarantine: with --tail quarantine the tail goes to
// <topic>.godwit-unreplicated on B, not into the topic, and the restored
// A->B flow does not copy it into the topic either.
func TestFailbackQuarantine(t *testing.T) {
	p := testkit.KfakePair(t)
	const parts = 2
	topic := testkit.UniqueName(t, "orders")
	testkit.CreateTopic(t, p.Primary, topic, parts, nil)
	cfgPath, src, dst := testkit.FlowConfigFile(t, p, "identical", `topics: ["`+topic+`"], slots: 2`, false)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Flows[src+"->"+dst]
	inproc.Flow(t, cfg, f.Name)
	prodA := workload.NewProducer(testkit.Client(t, p.Primary, kgo.RecordPartitioner(kgo.ManualPartitioner())), workload.ProducerConfig{Topic: topic, Partitions: parts})
	if err := prodA.Produce(inproc.ContextFor(t, time.Minute), 200); err != nil {
		t.Fatal(err)
	}
	if r, err := workload.WaitFor(inproc.ContextFor(t, time.Minute), testkit.Client(t, p.Secondary), prodA.Ledger(), workload.CheckConfig{Topic: topic, Partitions: parts, IgnoreHeaders: []string{"godwit-*"}}, 100*time.Millisecond); err != nil {
		t.Fatalf("replication: %v\n%s", err, r)
	}
	if _, err := failover.Run(inproc.ContextFor(t, 2*time.Minute), failover.Options{Config: cfg, Flow: f, Timeout: time.Minute, Logger: inproc.Logger()}); err != nil {
		t.Fatal(err)
	}
	if err := prodA.Produce(inproc.ContextFor(t, time.Minute), 100); err != nil { // late writers on A: the tail
		t.Fatal(err)
	}
	rep, err := failback.Run(inproc.ContextFor(t, 3*time.Minute), failback.Options{Config: cfg, Flow: f, Tail: failback.TailQuarantine, Switch: true, Timeout: time.Minute, Logger: inproc.Logger()})
	if err != nil {
		t.Fatalf("failback: %v", err)
	}
	if rep.TailRecords.Copied != 100 || rep.FinishedAt == nil {
		t.Fatalf("tail copied %d, want 100 (finished %v)", rep.TailRecords.Copied, rep.FinishedAt)
	}
	q := check(t, p.Secondary, prodA.Ledger(), topic+failback.QuarantineSuffix, parts)
	if q.Found != 100 || q.Duplicates != 0 || q.Mismatched != 0 || q.OutOfOrder != 0 {
		t.Fatalf("quarantine topic:\n%s", q)
	}
	inproc.Advanced(t, p, f) // the restored flow runs
	main := check(t, p.Secondary, prodA.Ledger(), topic, parts)
	if main.Found != 200 || main.Missing != 100 || main.Duplicates != 0 {
		t.Fatalf("topic on B: the quarantined tail must not be in it:\n%s", main)
	}
	t.Logf("quarantined %d records in %s; topic on B holds %d of A's %d", q.Found, topic+failback.QuarantineSuffix, main.Found, main.Expected)
}

// TestFailbackResumesAfterKill: `godwit failback --switch` killed right
// after a step is journaled (exit 137), run again, completes; steps done
// before the kill are not redone.
func TestFailbackResumesAfterKill(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		const parts = 2
		topic := testkit.UniqueName(t, "orders")
		testkit.CreateTopic(t, p.Primary, topic, parts, nil)
		cfgPath, src, dst := testkit.FlowConfigFile(t, p, "identical", `topics: ["`+topic+`"], slots: 2`, false)
		cfg, err := config.Load(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		f := cfg.Flows[src+"->"+dst]
		inproc.Flow(t, cfg, f.Name)
		prodA := workload.NewProducer(testkit.Client(t, p.Primary, kgo.RecordPartitioner(kgo.ManualPartitioner())), workload.ProducerConfig{Topic: topic, Partitions: parts})
		if err := prodA.Produce(inproc.ContextFor(t, time.Minute), 200); err != nil {
			t.Fatal(err)
		}
		if r, err := workload.WaitFor(inproc.ContextFor(t, time.Minute), testkit.Client(t, p.Secondary), prodA.Ledger(), workload.CheckConfig{Topic: topic, Partitions: parts, IgnoreHeaders: []string{"godwit-*"}}, 100*time.Millisecond); err != nil {
			t.Fatalf("replication: %v\n%s", err, r)
		}
		if _, err := failover.Run(inproc.ContextFor(t, 2*time.Minute), failover.Options{Config: cfg, Flow: f, Timeout: time.Minute, Logger: inproc.Logger()}); err != nil {
			t.Fatal(err)
		}
		if err := prodA.Produce(inproc.ContextFor(t, time.Minute), 60); err != nil { // the tail
			t.Fatal(err)
		}
		prodB := workload.NewProducer(testkit.Client(t, p.Secondary, kgo.RecordPartitioner(kgo.ManualPartitioner())), workload.ProducerConfig{Topic: topic, Partitions: parts})
		if err := prodB.Produce(inproc.ContextFor(t, time.Minute), 100); err != nil {
			t.Fatal(err)
		}
		bin := testkit.GodwitBinary(t)
		run := func(crashAfter string) (int, string) {
			cmd := exec.Command(bin, "failback", "-c", cfgPath, "--flow", f.Name, "--switch", "-o", "json", "--timeout", "1m")
			cmd.Env = append(os.Environ(), "GODWIT_FAILBACK_CRASH_AFTER="+crashAfter)
			var out, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errb
			_ = cmd.Run()
			if testing.Verbose() && errb.Len() > 0 {
				t.Logf("stderr:\n%s", errb.String())
			}
			return cmd.ProcessState.ExitCode(), out.String()
		}
		if code, _ := run(failback.StepCopyTail); code != 137 {
			t.Fatalf("first run exited %d, want 137", code)
		}
		code, out := run("")
		if code != 0 {
			t.Fatalf("second run exited %d:\n%s", code, out)
		}
		var rep failback.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("report: %v\n%s", err, out)
		}
		count := map[string]int{}
		for _, s := range rep.Steps {
			if s.OK {
				count[s.Name]++
			}
		}
		for _, name := range []string{failback.StepPlanTail, failback.StepCopyTail, failback.StepAdvance, failback.StepGroups, failback.StepRestore} {
			if count[name] != 1 {
				t.Errorf("step %s ran %d times, want 1 (%+v)", name, count[name], rep.Steps)
			}
		}
		if rep.FinishedAt == nil || len(rep.Runs) != 2 || rep.TailRecords.Copied != 60 {
			t.Fatalf("report: finished %v, runs %d, tail copied %d", rep.FinishedAt, len(rep.Runs), rep.TailRecords.Copied)
		}
		for _, c := range []struct {
			e testkit.Endpoint
			l *workload.Ledger
		}{{p.Primary, prodA.Ledger()}, {p.Secondary, prodA.Ledger()}, {p.Primary, prodB.Ledger()}, {p.Secondary, prodB.Ledger()}} {
			if r := check(t, c.e, c.l, topic, parts); !r.OK() {
				t.Errorf("%s, ledger %d:\n%s", c.e.Name, c.l.RunID(), r)
			}
		}
	})
}

// failbackRun is what finishFailback needs from a test that has failed
// over, written on B and interrupted a first failback mid-tail.
type failbackRun struct {
	p                 testkit.Pair
	cfg               *config.Config
	f                 *config.Flow
	dcl               *kgo.Client
	prodA, prodB      *workload.Producer
	topic             string
	parts             int32
	idle, drained     string
	missingAtFailover int64
}

// finishFailback checks the interrupted run's committed progress, runs
// failback to the switch and through it, and checks every record of both
// sides is on both clusters exactly once, the groups resume on A with no
// replay or skip, and the restored A->B flow copies only A's new records.
func finishFailback(t *testing.T, v failbackRun) {
	t.Helper()
	p, cfg, f, dcl, prodA, prodB := v.p, v.cfg, v.f, v.dcl, v.prodA, v.prodB
	topic, parts, idle, drained, missingAtFailover := v.topic, v.parts, v.idle, v.drained, v.missingAtFailover
	// EndTransaction returns before the broker has written the commit
	// markers, so a read_committed reader may see the committed tail
	// progress a moment later (the next failback run is safe: its
	// InitProducerID completes the commit first).
	var copiedBefore int64
	testkit.Eventually(t, 30*time.Second, func() (bool, string) {
		fb, err := journal.ReadFailbackState(context.Background(), dcl, f)
		if err != nil {
			return false, err.Error()
		}
		copiedBefore = 0
		for _, tp := range fb.Tail {
			copiedBefore += tp.Copied
		}
		return copiedBefore > 0, "the failback state on B shows no tail record copied"
	})
	if copiedBefore >= missingAtFailover {
		t.Fatalf("the interruption did not happen mid-copy: %d of %d copied", copiedBefore, missingAtFailover)
	}
	t.Logf("failback interrupted after %d of %d tail records were committed", copiedBefore, missingAtFailover)
	// Second run: finishes the tail, catches A up with B, producers and
	// consumers still on B.
	rep, err := failback.Run(inproc.ContextFor(t, 3*time.Minute), failback.Options{Config: cfg, Flow: f, Timeout: 2 * time.Minute, Logger: inproc.Logger()})
	if err != nil {
		t.Fatalf("failback: %v", err)
	}
	if rep.Waiting == "" || rep.FinishedAt != nil {
		t.Fatalf("failback without --switch should wait for the switch: %+v", rep)
	}
	t.Logf("tail: planned %d offsets, copied %d records (checker: %d missing at failover), filtered %d; reverse: copied %d, loop-filtered %d",
		rep.TailRecords.Planned, rep.TailRecords.Copied, missingAtFailover, rep.TailRecords.Filtered, rep.Reverse.Copied, rep.Reverse.LoopFiltered)
	if rep.TailRecords.Copied != missingAtFailover {
		t.Errorf("tail copied %d, checker missing at failover %d", rep.TailRecords.Copied, missingAtFailover)
	}
	if rep.Reverse.Copied != int64(prodB.Ledger().Len()) {
		t.Errorf("reverse copied %d, produced on B %d", rep.Reverse.Copied, prodB.Ledger().Len())
	}
	// Consumers on B read everything, including the recovered late
	// records, then stop: the drained group's position is B's end.
	commit(t, p.Secondary, drained, endOffsets(t, p.Secondary, topic), topic)

	rep, err = failback.Run(inproc.ContextFor(t, 3*time.Minute), failback.Options{Config: cfg, Flow: f, Timeout: 2 * time.Minute, Logger: inproc.Logger(),
		Groups: regexp.MustCompile("^(?:" + regexp.QuoteMeta(idle) + "|" + regexp.QuoteMeta(drained) + ")$")})
	if err != nil {
		t.Fatalf("failback --switch: %v", err)
	}
	if rep.FinishedAt == nil || len(rep.Restored) != 1 || len(rep.Runs) != 3 {
		b, _ := json.MarshalIndent(rep, "", " ")
		t.Fatalf("failback not finished: %s", b)
	}
	committed := map[string]bool{}
	for _, g := range rep.Groups {
		committed[g.Group] = g.Committed
		for _, gp := range g.Partitions {
			if gp.Replay != 0 || gp.Untranslate != "" {
				t.Errorf("group %s partition %d: %+v", g.Group, gp.Partition, gp)
			}
		}
	}
	if !committed[idle] || !committed[drained] {
		b, _ := json.MarshalIndent(rep.Groups, "", " ")
		t.Fatalf("groups not committed on A: %s", b)
	}
	st, err := journal.ReadFlowState(inproc.ContextFor(t, 30*time.Second), dcl, f)
	if err != nil || st.FailedOver(topic) {
		t.Fatalf("journal still marks %s failed over: %v", topic, err)
	}

	// Every acknowledged record of either side is on both clusters,
	// exactly once, in order.
	for _, c := range []struct {
		name   string
		e      testkit.Endpoint
		ledger *workload.Ledger
	}{
		{"A's records on A", p.Primary, prodA.Ledger()},
		{"A's records on B", p.Secondary, prodA.Ledger()},
		{"B's records on A", p.Primary, prodB.Ledger()},
		{"B's records on B", p.Secondary, prodB.Ledger()},
	} {
		r := check(t, c.e, c.ledger, topic, parts)
		t.Logf("%s: expected %d found %d missing %d duplicates %d other_runs %d", c.name, r.Expected, r.Found, r.Missing, r.Duplicates, r.OtherRuns)
		if !r.OK() {
			t.Errorf("%s:\n%s", c.name, r)
		}
	}

	// Groups resume on A: the idle one at record 20 of A's ledger, the
	// drained one at the first record written on A after the failback.
	before := ledgerLen(prodA.Ledger())
	if err := prodA.Produce(inproc.ContextFor(t, time.Minute), 300); err != nil {
		t.Fatal(err)
	}
	replay, skip := int64(0), int64(0)
	for group, want := range map[string]map[int32]int64{idle: {0: 20, 1: 20, 2: 20}, drained: before} {
		first := resume(t, p.Primary, group, topic, parts)
		for part := range int32(parts) {
			id, ok := first[part]
			if !ok || id.Run != prodA.Ledger().RunID() {
				t.Fatalf("group %s partition %d: first record %v (ledger A run %d)", group, part, id, prodA.Ledger().RunID())
			}
			if id.Seq < want[part] {
				replay += want[part] - id.Seq
			} else {
				skip += id.Seq - want[part]
			}
		}
	}
	t.Logf("groups resumed on A: replay=%d skip=%d", replay, skip)
	if replay != 0 || skip != 0 {
		t.Fatalf("replay=%d skip=%d, want 0/0", replay, skip)
	}

	// The restored A->B flow copies A's new records. It copies each
	// partition in offset order, so once they are on B it has passed the
	// tail and B's replicated-back records on A: had it copied either,
	// the checks below would count duplicates.
	r, err := workload.WaitFor(inproc.ContextFor(t, 2*time.Minute), dcl, prodA.Ledger(), workload.CheckConfig{Topic: topic, Partitions: parts, IgnoreHeaders: []string{"godwit-*"}}, 200*time.Millisecond)
	if err != nil || !r.OK() {
		t.Fatalf("A->B after failback: %v\n%s", err, r)
	}
	if r := check(t, p.Secondary, prodB.Ledger(), topic, parts); !r.OK() {
		t.Fatalf("B's records on B after A->B resumed:\n%s", r)
	}
	if r := check(t, p.Secondary, prodA.Ledger(), topic, parts); !r.OK() {
		t.Fatalf("A's records on B after A->B resumed:\n%s", r)
	}
}
