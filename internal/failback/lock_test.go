package failback_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/failback"
	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/testkit/inproc"
	"github.com/godwit/godwit/internal/workload"
)

// lockFixture is a replicated identical-naming flow with records on A.
type lockFixture struct {
	cfg   *config.Config
	f     *config.Flow
	topic string
	prodA *workload.Producer
}

const lockParts = 2

func newLockFixture(t *testing.T, p testkit.Pair) lockFixture {
	t.Helper()
	topic := testkit.UniqueName(t, "orders")
	testkit.CreateTopic(t, p.Primary, topic, lockParts, nil)
	cfgPath, src, dst := testkit.FlowConfigFile(t, p, "identical", `topics: ["`+topic+`"], slots: 2`, false)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Flows[src+"->"+dst]
	inproc.Flow(t, cfg, f.Name)
	prodA := workload.NewProducer(testkit.Client(t, p.Primary, kgo.RecordPartitioner(kgo.ManualPartitioner())), workload.ProducerConfig{Topic: topic, Partitions: lockParts})
	if err := prodA.Produce(inproc.ContextFor(t, time.Minute), 200); err != nil {
		t.Fatal(err)
	}
	if r, err := workload.WaitFor(inproc.ContextFor(t, time.Minute), testkit.Client(t, p.Secondary), prodA.Ledger(), workload.CheckConfig{Topic: topic, Partitions: lockParts, IgnoreHeaders: []string{"godwit-*"}}, 100*time.Millisecond); err != nil {
		t.Fatalf("replication: %v\n%s", err, r)
	}
	return lockFixture{cfg: cfg, f: f, topic: topic, prodA: prodA}
}

// pauser blocks a run in its AfterStep (or CopyHook) the first time it
// is called with at (or at all, for ""), until released.
type pauser struct {
	at       string
	reached  chan struct{}
	release  chan struct{}
	once     bool
	released bool
}

func newPauser(at string) *pauser {
	return &pauser{at: at, reached: make(chan struct{}), release: make(chan struct{})}
}

func (p *pauser) hook(step string) {
	if p.once || (p.at != "" && step != p.at) {
		return
	}
	p.once = true
	close(p.reached)
	<-p.release
}

func (p *pauser) wait(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case <-p.reached:
	case err := <-done:
		t.Fatalf("the run ended before pausing: %v", err)
	case <-inproc.ContextFor(t, 3*time.Minute).Done():
		t.Fatalf("the run did not pause in 3 minutes")
	}
}

func (p *pauser) resume() {
	if !p.released {
		p.released = true
		close(p.release)
	}
}

// TestConcurrentFailbackFenced: a failback paused in the middle of its
// tail copy (after its first committed transaction) while a second
// failback of the flow runs to the end. The second takes the journal lock
// and continues the copy from the committed position; the first, resumed,
// fails its next transaction with ErrFenced. Every record of A's tail is
// on B exactly once, and the tail counts add up.
func TestConcurrentFailbackFenced(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		fx := newLockFixture(t, p)
		if _, err := failover.Run(inproc.ContextFor(t, 2*time.Minute), failover.Options{Config: fx.cfg, Flow: fx.f, Timeout: time.Minute, Logger: inproc.Logger()}); err != nil {
			t.Fatal(err)
		}
		// A tail of 1200 records (600 per partition): more than one tail
		// transaction (500 records) per partition.
		if err := fx.prodA.Produce(inproc.ContextFor(t, time.Minute), 1200); err != nil {
			t.Fatal(err)
		}
		pause := newPauser("")
		t.Cleanup(pause.resume)
		done := make(chan error, 1)
		var firstRep *failback.Report
		go func() {
			rep, err := failback.Run(inproc.ContextFor(t, 3*time.Minute), failback.Options{Config: fx.cfg, Flow: fx.f, Timeout: 2 * time.Minute, Logger: inproc.Logger(),
				CopyHook: func(int64) { pause.hook("") }})
			firstRep = rep
			done <- err
		}()
		pause.wait(t, done)

		rep, err := failback.Run(inproc.ContextFor(t, 3*time.Minute), failback.Options{Config: fx.cfg, Flow: fx.f, Switch: true, Timeout: 2 * time.Minute, Logger: inproc.Logger()})
		if err != nil {
			t.Fatalf("second failback: %v", err)
		}
		pause.resume()
		err = <-done
		if !errors.Is(err, journal.ErrFenced) {
			t.Fatalf("first failback after the second finished: %v, want ErrFenced", err)
		}
		t.Logf("first failback's error: %v", err)
		if firstRep == nil || !strings.Contains(firstRep.Error, "another godwit failover or failback of this flow is running") {
			t.Fatalf("first failback's report: %+v", firstRep)
		}
		if rep.FinishedAt == nil || len(rep.Runs) != 2 || rep.TailRecords.Copied != 1200 || rep.TailRecords.Planned != 1200 {
			t.Fatalf("second failback: finished %v, runs %d, tail %+v; want finished, 2 runs, 1200 of 1200 copied", rep.FinishedAt, len(rep.Runs), rep.TailRecords)
		}
		count := map[string]int{}
		for _, s := range rep.Steps {
			if s.OK {
				count[s.Name]++
			}
		}
		for _, name := range []string{failback.StepPlanTail, failback.StepCopyTail, failback.StepAdvance, failback.StepGroups, failback.StepRestore} {
			if count[name] != 1 {
				t.Errorf("step %s done %d times, want 1 (%+v)", name, count[name], rep.Steps)
			}
		}
		for _, e := range []testkit.Endpoint{p.Primary, p.Secondary} {
			if r := check(t, e, fx.prodA.Ledger(), fx.topic, lockParts); !r.OK() {
				t.Errorf("records of A on %s:\n%s", e.Name, r)
			}
		}
		evs, err := journal.ReadEvents(inproc.ContextFor(t, 30*time.Second), testkit.Client(t, p.Secondary), fx.f)
		if err != nil {
			t.Fatal(err)
		}
		secondStarted := false
		for _, e := range evs {
			if e.Op != rep.Operation {
				continue
			}
			if e.Run == rep.Runs[1].ID {
				secondStarted = true
			} else if secondStarted {
				t.Fatalf("the fenced failback wrote %s/%s after the second started", e.Step, e.Phase)
			}
		}
	})
}

// TestFailoverAndFailbackExclude: a failback does not start while the
// flow's failover is unfinished, and a failover does not start while a
// failback is under way; the refused run says what to finish first and
// fences nobody (the paused run then completes).
func TestFailoverAndFailbackExclude(t *testing.T) {
	p := testkit.KfakePair(t)
	fx := newLockFixture(t, p)

	pause := newPauser(failover.StepMark)
	t.Cleanup(pause.resume)
	done := make(chan error, 1)
	go func() {
		_, err := failover.Run(inproc.ContextFor(t, 2*time.Minute), failover.Options{Config: fx.cfg, Flow: fx.f, Timeout: time.Minute, Logger: inproc.Logger(), AfterStep: pause.hook})
		done <- err
	}()
	pause.wait(t, done)
	_, err := failback.Run(inproc.ContextFor(t, time.Minute), failback.Options{Config: fx.cfg, Flow: fx.f, Logger: inproc.Logger()})
	if err == nil || !strings.Contains(err.Error(), "is unfinished") || !strings.Contains(err.Error(), "godwit failover -c FILE --flow '"+fx.f.Name+"'") {
		t.Fatalf("failback during a failover: %v, want a refusal naming the failover to finish", err)
	}
	t.Logf("failback refused: %v", err)
	pause.resume()
	if err := <-done; err != nil {
		t.Fatalf("the paused failover, after a refused failback: %v (it must not be fenced)", err)
	}

	if err := fx.prodA.Produce(inproc.ContextFor(t, time.Minute), 40); err != nil { // the tail
		t.Fatal(err)
	}
	pause = newPauser(failback.StepCopyTail)
	t.Cleanup(pause.resume)
	go func() {
		_, err := failback.Run(inproc.ContextFor(t, 2*time.Minute), failback.Options{Config: fx.cfg, Flow: fx.f, Timeout: time.Minute, Logger: inproc.Logger(), AfterStep: pause.hook})
		done <- err
	}()
	pause.wait(t, done)
	_, err = failover.Run(inproc.ContextFor(t, time.Minute), failover.Options{Config: fx.cfg, Flow: fx.f, Timeout: time.Minute, Logger: inproc.Logger()})
	if err == nil || !strings.Contains(err.Error(), "is unfinished") || !strings.Contains(err.Error(), "godwit failback -c FILE --flow '"+fx.f.Name+"'") {
		t.Fatalf("failover during a failback: %v, want a refusal naming the failback to finish", err)
	}
	t.Logf("failover refused: %v", err)
	pause.resume()
	if err := <-done; err != nil {
		t.Fatalf("the paused failback, after a refused failover: %v (it must not be fenced)", err)
	}
	fb, rep, err := failback.State(inproc.ContextFor(t, time.Minute), fx.cfg, fx.f)
	if err != nil {
		t.Fatal(err)
	}
	if rep == nil || rep.TailRecords.Copied != 40 || rep.Waiting == "" || len(fb.Op.Runs) != 1 {
		t.Fatalf("failback state after the refused failover: %+v", rep)
	}
}
