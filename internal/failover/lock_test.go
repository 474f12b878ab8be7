package failover_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/replicate"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/testkit/inproc"
	"github.com/godwit/godwit/internal/workload"
)

// TestConcurrentFailoverFenced: a `godwit failover` process paused right
// after `fence` (GODWIT_FAILOVER_PAUSE_AFTER) while a second failover of
// the same flow runs to the end. The second takes the journal lock and
// continues the operation; the first, resumed, stops before its next
// step with exit code 1 and the error naming the other run, having moved
// no group and run no hook. The journal holds one operation: the first
// run's steps up to fence, then the second's.
func TestConcurrentFailoverFenced(t *testing.T) {
	testkit.ForEachPair(t, testConcurrentFailoverFenced)
}

func testConcurrentFailoverFenced(t *testing.T, p testkit.Pair) {
	const parts = 2
	topic := testkit.UniqueName(t, "orders")
	group := testkit.UniqueName(t, "billing")
	testkit.CreateTopic(t, p.Primary, topic, parts, nil)
	cfgPath, src, dst := testkit.FlowConfigFile(t, p, "prefixed", `topics: ["`+topic+`"], slots: 2`, false)
	marker := t.TempDir() + "/cutover.out"
	appendFile(t, cfgPath, "cutover: {command: 'echo \"$GODWIT_FAILOVER_OPERATION $PPID\" >> "+marker+"', timeout: 10s}\n")
	cfg := loadConfig(t, cfgPath)
	flow := src + "->" + dst
	f := cfg.Flows[flow]
	inproc.Flow(t, cfg, flow)
	prod := producer(t, p.Primary, workload.ProducerConfig{Topic: topic, Partitions: parts})
	if err := prod.Produce(inproc.ContextFor(t, time.Minute), 200); err != nil {
		t.Fatal(err)
	}
	commitSource(t, p.Primary, group, topic, parts, 50)
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		st, err := replicate.Status(context.Background(), cfg, f)
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

	// The first run, paused after fence.
	first := exec.Command(testkit.GodwitBinary(t), "failover", "-c", cfgPath, "--flow", flow, "-o", "json", "--timeout", "1m")
	first.Env = append(os.Environ(), "GODWIT_FAILOVER_PAUSE_AFTER="+failover.StepFence)
	stdin, err := first.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := first.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	first.Stdout = &out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if first.ProcessState == nil {
			_ = first.Process.Kill()
			_ = first.Wait()
		}
	})
	paused := make(chan struct{})
	var errText strings.Builder
	errDone := make(chan struct{})
	go func() {
		defer close(errDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			errText.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "paused after step "+failover.StepFence) {
				close(paused)
			}
		}
	}()
	select {
	case <-paused:
	case <-errDone:
		_ = first.Wait()
		t.Fatalf("first run ended before pausing (exit %d):\n%s", first.ProcessState.ExitCode(), errText.String())
	case <-inproc.ContextFor(t, 2*time.Minute).Done():
		t.Fatalf("first run did not pause after %s in 2 minutes", failover.StepFence)
	}

	// The second run, in this process, while the first is paused.
	rep, err := failover.Run(inproc.ContextFor(t, 2*time.Minute), failover.Options{Config: cfg, Flow: f, Timeout: time.Minute, Logger: inproc.Logger()})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if rep.FinishedAt == nil || len(rep.Runs) != 2 {
		t.Fatalf("second run: finished %v, %d runs, want the first run's operation continued", rep.FinishedAt, len(rep.Runs))
	}

	// The first run resumes and must stop at once.
	if _, err := io.WriteString(stdin, "\n"); err != nil {
		t.Fatal(err)
	}
	_ = stdin.Close()
	<-errDone
	_ = first.Wait()
	if code := first.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("first run exited %d, want 1\n%s", code, errText.String())
	}
	t.Logf("first run's error:\n%s", lastLine(errText.String()))
	if !strings.Contains(errText.String(), "another godwit failover or failback of this flow is running") {
		t.Fatalf("first run's error does not name the other run:\n%s", errText.String())
	}
	var firstRep failover.Report
	if err := json.Unmarshal([]byte(out.String()), &firstRep); err != nil || !strings.Contains(firstRep.Error, "another godwit failover") {
		t.Fatalf("first run's report: %v\n%s", err, out.String())
	}

	// Side effects happened once, by the second run.
	hook, err := os.ReadFile(marker)
	if err != nil || strings.Count(string(hook), "\n") != 1 || !strings.HasPrefix(string(hook), rep.Operation+" "+fmt.Sprint(os.Getpid())+"\n") {
		t.Fatalf("cutover hook ran %q (%v), want once, by the second run (pid %d)", hook, err, os.Getpid())
	}
	committed := false
	for _, g := range rep.Groups {
		committed = committed || (g.Group == group && g.Committed)
	}
	if !committed {
		t.Fatalf("group %s not committed by the second run: %+v", group, rep.Groups)
	}

	// One coherent operation in the journal.
	firstRun, secondRun := rep.Runs[0].ID, rep.Runs[1].ID
	evs, err := journal.ReadEvents(inproc.ContextFor(t, 30*time.Second), testkit.Client(t, p.Secondary), f)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	finishes, secondStarted := 0, false
	for _, e := range evs {
		if e.Op != rep.Operation {
			t.Fatalf("event of another operation %s: %+v", e.Op, e)
		}
		seen = append(seen, e.Run[len(e.Run)-4:]+":"+e.Step+"/"+e.Phase)
		switch e.Run {
		case secondRun:
			secondStarted = true
		case firstRun:
			if secondStarted {
				t.Fatalf("the fenced run wrote %s/%s after the second run started", e.Step, e.Phase)
			}
			if e.Step == failover.StepCommit || e.Step == failover.StepCutover {
				t.Fatalf("the fenced run journaled %s", e.Step)
			}
		default:
			t.Fatalf("event of an unknown run %s", e.Run)
		}
		if e.Phase == journal.PhaseFinish {
			finishes++
		}
	}
	t.Logf("journal: %s", strings.Join(seen, " "))
	if finishes != 1 {
		t.Fatalf("%d finish events, want 1", finishes)
	}
	count := map[string]int{}
	for _, s := range rep.Steps {
		if s.OK {
			count[s.Name]++
		}
	}
	for _, name := range []string{failover.StepWaitLag, failover.StepFinalSync, failover.StepMark, failover.StepFence, failover.StepCommit, failover.StepCutover} {
		if count[name] != 1 {
			t.Errorf("step %s done %d times, want 1 (%+v)", name, count[name], rep.Steps)
		}
	}
	st, err := journal.ReadFlowState(inproc.ContextFor(t, 30*time.Second), testkit.Client(t, p.Secondary), f)
	if err != nil || st.Op == nil || st.Op.ID != rep.Operation || st.Op.FinishedAt == nil || len(st.Op.Runs) != 2 {
		t.Fatalf("journal state after both runs: %+v (%v)", st.Op, err)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
