package replicate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"

	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/replicate"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

// sourceProducer returns a workload producer on the pair's primary.
func sourceProducer(t *testing.T, e testkit.Endpoint, cfg workload.ProducerConfig, txnID string) *workload.Producer {
	opts := []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}
	if cfg.Transactional {
		opts = append(opts, kgo.TransactionalID(txnID))
	}
	return workload.NewProducer(testkit.Client(t, e, opts...), cfg)
}

func checkCfg(topic string, partitions int32) workload.CheckConfig {
	return workload.CheckConfig{Topic: topic, Partitions: partitions, IgnoreHeaders: []string{"godwit-*"}}
}

func waitCheck(t *testing.T, e testkit.Endpoint, ledger *workload.Ledger, cc workload.CheckConfig, d time.Duration) workload.Report {
	t.Helper()
	rep, err := workload.WaitFor(ctxFor(t, d), testkit.Client(t, e), ledger, cc, 250*time.Millisecond)
	if err != nil && !rep.OK() {
		t.Fatalf("checker: %v\n%s", err, rep)
	}
	if !rep.OK() {
		t.Fatalf("checker: target %s does not hold the source records exactly once:\n%s", cc.Topic, rep)
	}
	return rep
}

// TestFidelityExactlyOnce copies a transactional source with aborted
// transactions, headers (duplicate keys, empty values), null keys,
// tombstones and explicit timestamps, and checks every acknowledged record
// arrives exactly once, in order, byte-identical, and no aborted one does.
func TestFidelityExactlyOnce(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		topic := testkit.UniqueName(t, "orders")
		testkit.CreateTopic(t, p.Primary, topic, 4, nil)
		cfgPath, src, dst := flowConfig(t, p, "prefixed", `topics: ["`+topic+`"], slots: 3`, false)
		prod := sourceProducer(t, p.Primary, workload.ProducerConfig{
			Topic: topic, Partitions: 4, ValueSize: 200, Transactional: true, AbortEvery: 3,
			NullKeyEvery: 7, TombstoneEvery: 11, Headers: true, Timestamps: true,
		}, testkit.UniqueName(t, "txn"))
		if err := prod.Produce(ctxFor(t, time.Minute), 600); err != nil {
			t.Fatal(err)
		}
		ip := runInProcess(t, cfgPath)
		// More records while it runs: the backlog and the live tail.
		if err := prod.Produce(ctxFor(t, time.Minute), 600); err != nil {
			t.Fatal(err)
		}
		target := src + "." + topic
		rep := waitCheck(t, p.Secondary, prod.Ledger(), checkCfg(target, 4), 90*time.Second)
		if rep.AbortedFound != 0 || prod.Ledger().AbortedLen() == 0 {
			t.Fatalf("aborted source records: %d produced, %d found on target", prod.Ledger().AbortedLen(), rep.AbortedFound)
		}
		flow := src + "->" + dst
		// Status reads the target's stored progress: the replicated
		// offset must reach the source end offset on every partition.
		cfg, err := config.Load(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 30*time.Second, func() (bool, string) {
			st, err := replicate.Status(context.Background(), cfg, cfg.Flows[flow])
			if err != nil {
				return false, err.Error()
			}
			n := 0
			for _, pp := range st.Partitions {
				if pp.SourceTopic != topic {
					continue
				}
				n++
				if pp.LagRecords != 0 || pp.ReplicatedOffset != pp.SourceEndOffset || pp.TargetTopic != target {
					return false, "partition not caught up: " + jsonString(pp)
				}
			}
			return n == 4, jsonString(st)
		})
		if got := ip.metric("godwit_replicated_records_total", map[string]string{"flow": flow, "topic": topic}); got != float64(prod.Ledger().Len()) {
			t.Errorf("godwit_replicated_records_total = %v, want %d", got, prod.Ledger().Len())
		}
		if ok, why := ip.r.Ready(); !ok {
			t.Errorf("not ready: %s", why)
		}
		// franz-go's client metrics, labelled per cluster.
		for _, alias := range []string{src, dst} {
			if n := ip.metric("godwit_kafka_read_bytes_total", map[string]string{"cluster": alias}); n <= 0 {
				t.Errorf("godwit_kafka_read_bytes_total{cluster=%q} = %v, want > 0", alias, n)
			}
		}
		// Heartbeats reach the target while the flow runs.
		testkit.Eventually(t, 30*time.Second, func() (bool, string) {
			n := ip.metric("godwit_replicated_records_total", map[string]string{"flow": flow, "topic": naming.HeartbeatTopic})
			return n >= 2, fmt.Sprintf("%v heartbeats replicated", n)
		})
		checkOffsetMap(t, p, cfg.Flows[flow], topic, target, 4)
		checkStatusJSON(t, cfgPath, flow, topic, target, 4)
	})
}

// checkStatusJSON runs `godwit status -o json` and checks the JSON
// contract scripts rely on.
func checkStatusJSON(t *testing.T, cfgPath, flow, topic, target string, partitions int) {
	t.Helper()
	out, err := exec.Command(godwitBinary(t), "status", "-c", cfgPath, "-o", "json").Output()
	if err != nil {
		t.Fatalf("godwit status: %v", err)
	}
	var doc struct {
		Flows []struct {
			Flow       string           `json:"flow"`
			Partitions []map[string]any `json:"partitions"`
		} `json:"flows"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	if len(doc.Flows) != 1 || doc.Flows[0].Flow != flow {
		t.Fatalf("status flows = %s", out)
	}
	n := 0
	for _, p := range doc.Flows[0].Partitions {
		for _, k := range []string{"source_topic", "target_topic", "partition", "source_end_offset", "replicated_offset", "lag_records"} {
			if _, ok := p[k]; !ok {
				t.Fatalf("status partition lacks %q: %v", k, p)
			}
		}
		if p["source_topic"] == topic {
			n++
			if p["target_topic"] != target || p["lag_records"].(float64) != 0 || p["replicated_offset"] != p["source_end_offset"] {
				t.Errorf("status partition not caught up: %v", p)
			}
		}
	}
	if n != partitions {
		t.Errorf("status lists %d partitions of %s, want %d", n, topic, partitions)
	}
}

// checkOffsetMap verifies the offset map against the target's records:
// every copied record's (source offset -> target offset), read from its
// provenance header and its own offset, is described by exactly one run.
func checkOffsetMap(t *testing.T, p testkit.Pair, f *config.Flow, topic, target string, partitions int32) {
	t.Helper()
	cl := testkit.Client(t, p.Secondary)
	adm := testkit.Admin(t, p.Secondary)
	ctx := ctxFor(t, time.Minute)
	mapTopic := naming.OffsetMapTopic(f)
	ends, err := adm.ListEndOffsets(ctx, mapTopic, target)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]int64]int64{} // (partition, source offset) -> target offset
	for part := range partitions {
		e, _ := ends.Lookup(target, part)
		recs, err := kafkautil.ReadRange(ctx, cl, target, part, 0, e.Offset, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			o, ok := naming.OriginOf(r.Headers)
			if !ok {
				t.Fatalf("target record %d/%d has no provenance headers", part, r.Offset)
			}
			want[[2]int64{int64(part), o.Offset}] = r.Offset
		}
	}
	got := map[[2]int64]int64{}
	for slot := range int32(f.Slots) {
		e, _ := ends.Lookup(mapTopic, slot)
		recs, err := kafkautil.ReadRange(ctx, cl, mapTopic, slot, 0, e.Offset, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			ent, err := flowstate.DecodeOffsetMapEntry(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if ent.Topic != topic {
				continue
			}
			for _, run := range ent.Runs {
				for i := range run.Count {
					k := [2]int64{int64(ent.Partition), run.SourceFirst + i}
					if _, dup := got[k]; dup {
						t.Fatalf("source offset %v mapped twice", k)
					}
					got[k] = run.TargetFirst + i
				}
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("offset map describes %d records, target holds %d; they differ", len(got), len(want))
	}
	t.Logf("offset map: %d records described exactly", len(got))
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestKill9ExactlyOnce kills the replicator process with SIGKILL at random
// moments while producers write, restarts it, and checks that the target
// ends with every acknowledged record exactly once.
func TestKill9ExactlyOnce(t *testing.T) {
	testKill9(t, "exactly-once")
}

// TestKill9AtLeastOnce: same, at-least-once: nothing lost, duplicates
// allowed.
func TestKill9AtLeastOnce(t *testing.T) {
	testKill9(t, "at-least-once")
}

func testKill9(t *testing.T, delivery string) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		rounds := 20
		if p.Kind == testkit.KindKafka {
			rounds = 3
		}
		if delivery == "at-least-once" {
			rounds = min(rounds, 6)
		}
		if os.Getenv("GODWIT_LONG") != "" {
			rounds *= 5
		}
		topic := testkit.UniqueName(t, "seq")
		testkit.CreateTopic(t, p.Primary, topic, 6, nil)
		cfgPath, src, dst := flowConfig(t, p, "prefixed", `topics: ["`+topic+`"], slots: 4, delivery: `+delivery, false)
		prod := sourceProducer(t, p.Primary, workload.ProducerConfig{
			Topic: topic, Partitions: 6, ValueSize: 100, Transactional: true, AbortEvery: 5, Headers: true, Timestamps: true, Rate: 2000,
		}, testkit.UniqueName(t, "txn"))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		produced := make(chan error, 1)
		go func() { produced <- prod.Produce(ctx, rounds*1500) }()

		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
		instance := "kill9-" + src
		cfg, err := config.Load(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		flow := cfg.Flows[src+"->"+dst]
		var last int64
		for i := range rounds {
			pr := startReplicator(t, cfgPath, "--instance-id", instance)
			// Kill mid-stream: once this incarnation has committed
			// something, after a further random delay.
			testkit.Eventually(t, 90*time.Second, func() (bool, string) {
				n := replicatedTotal(t, cfg, flow, topic)
				return n > last, fmt.Sprintf("round %d: no progress beyond %d yet", i+1, last)
			})
			time.Sleep(time.Duration(rng.IntN(700)) * time.Millisecond) // a random moment to kill at, not synchronisation
			pr.kill9()
			last = replicatedTotal(t, cfg, flow, topic)
			t.Logf("round %d: killed replicator mid-stream; replicated offsets sum %d", i+1, last)
		}
		if err := <-produced; err != nil {
			t.Fatal(err)
		}
		startReplicator(t, cfgPath, "--instance-id", instance)
		cc := checkCfg(src+"."+topic, 6)
		cc.AllowDuplicates = delivery == "at-least-once"
		rep := waitCheck(t, p.Secondary, prod.Ledger(), cc, 3*time.Minute)
		t.Logf("%s after %d kill -9 rounds: %d records, %d duplicates, %d missing", delivery, rounds, rep.Found, rep.Duplicates, rep.Missing)
		if delivery == "exactly-once" && rep.Duplicates != 0 {
			t.Fatalf("exactly-once produced %d duplicates", rep.Duplicates)
		}
	})
}

// replicatedTotal sums the committed progress of topic's partitions.
func replicatedTotal(t *testing.T, cfg *config.Config, flow *config.Flow, topic string) int64 {
	t.Helper()
	st, err := replicate.Status(context.Background(), cfg, flow)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range st.Partitions {
		if p.SourceTopic == topic {
			n += p.ReplicatedOffset
		}
	}
	return n
}

// TestScaleOutKillOne runs three replicator processes sharing a flow, kills
// one mid-stream, and checks its slots are taken over with nothing lost
// or duplicated.
func TestScaleOutKillOne(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		topic := testkit.UniqueName(t, "scale")
		testkit.CreateTopic(t, p.Primary, topic, 12, nil)
		cfgPath, src, dst := flowConfig(t, p, "prefixed", `topics: ["`+topic+`"], slots: 8`, false)
		prod := sourceProducer(t, p.Primary, workload.ProducerConfig{
			Topic: topic, Partitions: 12, ValueSize: 100, Rate: 3000,
		}, "")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		produced := make(chan error, 1)
		go func() { produced <- prod.Produce(ctx, 30000) }()
		procs := []*proc{startReplicator(t, cfgPath), startReplicator(t, cfgPath), startReplicator(t, cfgPath)}
		// Wait until all three own slots: each logs "slots assigned".
		testkit.Eventually(t, 60*time.Second, func() (bool, string) {
			for i, pr := range procs {
				b, _ := os.ReadFile(pr.log)
				if !strings.Contains(string(b), "slots assigned") {
					return false, "replicator " + string(rune('0'+i)) + " owns no slot yet"
				}
			}
			return true, ""
		})
		procs[1].kill9()
		if err := <-produced; err != nil {
			t.Fatal(err)
		}
		rep := waitCheck(t, p.Secondary, prod.Ledger(), checkCfg(src+"."+topic, 12), 3*time.Minute)
		if rep.Duplicates != 0 {
			t.Fatalf("%d duplicates", rep.Duplicates)
		}
		// The survivors must report every partition running.
		for _, pr := range []*proc{procs[0], procs[2]} {
			b, _ := os.ReadFile(pr.log)
			if strings.Contains(string(b), "level=ERROR") {
				t.Logf("survivor logged errors (allowed while taking over):\n%s", tail(string(b), 2000))
			}
		}
		_ = dst
		for _, pr := range []*proc{procs[0], procs[2]} {
			if code, took := pr.terminate(15 * time.Second); code != 0 || took > 10*time.Second {
				t.Errorf("graceful shutdown: exit %d after %v, want 0 within 10s", code, took)
			}
		}
	})
}

// TestActiveActiveIdentical runs A->B and B->A with identical names while
// producers write to both sides: each cluster ends with every record of
// both producers exactly once, and nothing ping-pongs.
func TestActiveActiveIdentical(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		topic := testkit.UniqueName(t, "aa")
		testkit.CreateTopic(t, p.Primary, topic, 3, nil)
		testkit.CreateTopic(t, p.Secondary, topic, 3, nil)
		cfgPath, _, _ := flowConfig(t, p, "identical", `topics: ["`+topic+`"], slots: 2, refresh_interval: 1s`, true)
		pa := sourceProducer(t, p.Primary, workload.ProducerConfig{Topic: topic, Partitions: 3, ValueSize: 64, Headers: true, Rate: 1000}, "")
		pb := sourceProducer(t, p.Secondary, workload.ProducerConfig{Topic: topic, Partitions: 3, ValueSize: 64, Headers: true, Rate: 1000}, "")
		runInProcess(t, cfgPath)
		errs := make(chan error, 2)
		go func() { errs <- pa.Produce(context.Background(), 1500) }()
		go func() { errs <- pb.Produce(context.Background(), 1500) }()
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		cc := checkCfg(topic, 3)
		for _, c := range []struct {
			name     string
			e        testkit.Endpoint
			led, oth *workload.Ledger
		}{
			{"secondary holds primary's records", p.Secondary, pa.Ledger(), pb.Ledger()},
			{"primary holds secondary's records", p.Primary, pb.Ledger(), pa.Ledger()},
			{"secondary keeps its own records once", p.Secondary, pb.Ledger(), pa.Ledger()},
			{"primary keeps its own records once", p.Primary, pa.Ledger(), pb.Ledger()},
		} {
			rep := waitCheck(t, c.e, c.led, cc, 90*time.Second)
			// Every record of the other run must appear exactly
			// once too: a ping-pong would add copies.
			if rep.OtherRuns != int64(c.oth.Len()) {
				t.Errorf("%s: %d records of the other producer on the topic, want exactly %d (ping-pong?)", c.name, rep.OtherRuns, c.oth.Len())
			}
		}
	})
}

// TestGracefulShutdown: SIGTERM ends the process with exit 0 within 10 s.
func TestGracefulShutdown(t *testing.T) {
	p := testkit.KfakePair(t)
	topic := testkit.UniqueName(t, "g")
	testkit.CreateTopic(t, p.Primary, topic, 2, nil)
	cfgPath, _, _ := flowConfig(t, p, "prefixed", `topics: ["`+topic+`"]`, false)
	pr := startReplicator(t, cfgPath)
	testkit.Eventually(t, 30*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(pr.log)
		return strings.Contains(string(b), "slots assigned"), "waiting for slots"
	})
	code, took := pr.terminate(15 * time.Second)
	if code != 0 || took > 10*time.Second {
		t.Fatalf("exit %d after %v, want 0 within 10s", code, took)
	}
}
