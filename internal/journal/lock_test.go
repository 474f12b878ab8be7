package journal_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/testkit"
)

func flowFor(t *testing.T, p testkit.Pair) *config.Flow {
	t.Helper()
	path, src, dst := testkit.FlowConfigFile(t, p, "identical", `topics: ["x"]`, false)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Flows[src+"->"+dst]
	ctx := testkit.Context(t)
	adm := testkit.Admin(t, p.Secondary)
	if err := journal.EnsureTopic(ctx, testkit.Client(t, p.Secondary), f); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // the real clusters are shared
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, naming.JournalTopic(f))
	})
	return f
}

func acquire(t *testing.T, p testkit.Pair, f *config.Flow) *journal.Writer {
	t.Helper()
	w, err := journal.Acquire(testkit.Context(t), testkit.Client(t, p.Secondary, journal.WriterOpts(f)...), f)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func stateWith(topic string) *journal.FlowState {
	return &journal.FlowState{UpdatedAt: time.Now().UTC(), Topics: map[string]journal.TopicState{topic: {TargetTopic: topic}}}
}

// TestJournalLock: the journal has one writer. A second Acquire fences the
// first, whose writes then fail with ErrFenced (an actionable error) and
// leave no trace; the state is the second writer's.
func TestJournalLock(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		f := flowFor(t, p)
		ctx := testkit.Context(t)
		first := acquire(t, p, f)
		if err := first.Write(ctx, stateWith("one"), journal.Event{Op: "op", Run: "r1", Step: "run", Phase: journal.PhaseRun, At: time.Now()}); err != nil {
			t.Fatalf("first writer: %v", err)
		}
		second := acquire(t, p, f)
		err := first.Write(ctx, stateWith("fenced"), journal.Event{Op: "op", Run: "r1", Seq: 1, Step: "x", Phase: journal.PhaseStart, At: time.Now()})
		if !errors.Is(err, journal.ErrFenced) {
			t.Fatalf("first writer after the second acquired: %v, want ErrFenced", err)
		}
		t.Logf("fenced writer's error: %v", err)
		for _, want := range []string{f.Name, "another godwit failover or failback of this flow is running", naming.JournalTransactionalID(f), "godwit failover status", "run the command again"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("fenced error lacks %q: %v", want, err)
			}
		}
		// Fenced for good: no later write of the first writer goes through.
		if err2 := first.Write(ctx, stateWith("fenced")); !errors.Is(err2, journal.ErrFenced) {
			t.Fatalf("first writer, again: %v", err2)
		}
		if err := second.Write(ctx, stateWith("two"), journal.Event{Op: "op", Run: "r2", Step: "run", Phase: journal.PhaseRun, At: time.Now()}); err != nil {
			t.Fatalf("second writer: %v", err)
		}
		cl := testkit.Client(t, p.Secondary)
		st, err := journal.ReadFlowState(ctx, cl, f)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.FailedOverTopics(); len(got) != 1 || got[0] != "two" {
			t.Fatalf("state after both wrote: topics %v, want [two]", got)
		}
		evs, err := journal.ReadEvents(ctx, cl, f)
		if err != nil {
			t.Fatal(err)
		}
		var runs []string
		for _, e := range evs {
			runs = append(runs, e.Run+"/"+e.Step)
		}
		if strings.Join(runs, ",") != "r1/run,r2/run" {
			t.Fatalf("events %v, want r1/run,r2/run (nothing of the fenced write)", runs)
		}
	})
}

// TestJournalLockAfterCrash: a writer that dies inside a transaction (as
// with kill -9) blocks nobody: the next Acquire aborts its transaction at
// once (not after the transaction timeout), and its records are never
// visible.
func TestJournalLockAfterCrash(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		f := flowFor(t, p)
		ctx := testkit.Context(t)
		if err := acquire(t, p, f).Write(ctx, stateWith("before")); err != nil {
			t.Fatal(err)
		}
		// The crashed writer: a transaction begun and produced to, never
		// ended; its client is left as it is (a dead process sends
		// nothing more).
		dead, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(p.Secondary.Addrs...)}, journal.WriterOpts(f)...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer dead.Close()
		if _, _, err := dead.ProducerID(ctx); err != nil {
			t.Fatal(err)
		}
		if err := dead.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		rec := &kgo.Record{Topic: naming.JournalTopic(f), Partition: journal.StatePartition, Key: []byte("state"), Value: []byte(`{"version":1,"failed_over_topics":{"crashed":{}}}`)}
		if err := dead.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		next := acquire(t, p, f)
		took := time.Since(start)
		t.Logf("acquire after a writer died mid-transaction: %v", took.Round(time.Millisecond))
		if took > 30*time.Second { // the transaction timeout is 60 s
			t.Fatalf("acquire waited %v: it must abort the open transaction, not wait for its timeout", took)
		}
		if err := next.Write(ctx, stateWith("after")); err != nil {
			t.Fatalf("write after the crash: %v", err)
		}
		st, err := journal.ReadFlowState(ctx, testkit.Client(t, p.Secondary), f)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.FailedOverTopics(); len(got) != 1 || got[0] != "after" {
			t.Fatalf("state %v, want [after] (the crashed transaction aborted)", got)
		}
		// The aborted record is in the log but never read committed.
		ends, err := kadm.NewClient(testkit.Client(t, p.Secondary)).ListEndOffsets(ctx, naming.JournalTopic(f))
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := ends.Lookup(naming.JournalTopic(f), journal.StatePartition); o.Offset < 3 {
			t.Fatalf("state partition end offset %d: the crashed writer's record was not written", o.Offset)
		}
	})
}
