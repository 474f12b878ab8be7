package cost

import (
	"context"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/testkit"
)

// TestMeasureKnownLoad produces a known byte rate and checks that Measure
// reads it back within 10%.
//
// What is compared: the producer sends 1 KiB values (no key, no headers,
// no compression) paced at 1,000,000 payload bytes/s. The measured rate is
// the growth of the leader replicas' log size, which also counts the
// record-batch header (61 bytes per batch) and each record's framing
// (about 10 bytes), so it reads a few percent above the payload rate; the
// test accepts the payload rate ±10% and logs the overhead it saw.
func TestMeasureKnownLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("produces for several seconds")
	}
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		topic := testkit.UniqueName(t, "cost")
		testkit.CreateTopic(t, p.Primary, topic, 3, nil)
		adm := testkit.Admin(t, p.Primary)
		ctx := testkit.Context(t)

		// kfake and Kafka both answer DescribeLogDirs with sizes; if a
		// broker does not, the model cannot measure and says so.
		if _, _, err := LeaderBytes(ctx, adm, []string{topic}); err != nil {
			t.Skipf("%s does not report log sizes through DescribeLogDirs (%v); measured mode needs them", p.Kind, err)
		}

		const (
			rate      = 1_000_000 // payload bytes per second
			valueSize = 1024
			warmup    = 1500 * time.Millisecond
			window    = 5 * time.Second
		)
		cl := testkit.Client(t, p.Primary,
			kgo.DefaultProduceTopic(topic),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.ProducerLinger(5*time.Millisecond),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		)
		var produced, failed atomic.Int64
		pctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // paced: after d, rate×d bytes have been handed to the client
			defer wg.Done()
			value := make([]byte, valueSize)
			start := time.Now()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			sent := int64(0)
			for {
				select {
				case <-pctx.Done():
					return
				case now := <-tick.C:
					due := int64(now.Sub(start).Seconds() * rate / valueSize)
					for ; sent < due; sent++ {
						cl.Produce(pctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
							if err != nil {
								failed.Add(1)
								return
							}
							produced.Add(1)
						})
					}
				}
			}
		}()
		t.Cleanup(func() { stop(); wg.Wait() })

		time.Sleep(warmup)
		m, err := Measure(ctx, adm, p.Primary.Name, []string{topic}, window)
		stop()
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if n := failed.Load(); n > 0 {
			t.Fatalf("%d produce requests failed; the load was not the one intended", n)
		}
		got, _ := m.BytesPerSecond.Rat().Float64()
		ratio := got / rate
		t.Logf("%s: measured %.0f B/s over %v (%d → %d bytes, %d partitions); payload rate %d B/s; ratio %.3f (log framing included); %d records acked",
			p.Kind, got, m.Window, m.StartBytes, m.EndBytes, m.Partitions, rate, ratio, produced.Load())
		if ratio < 0.9 || ratio > 1.1 {
			t.Errorf("measured %.0f B/s, want %d B/s ±10%% (ratio %.3f)", got, rate, ratio)
		}
		if m.Partitions != 3 {
			t.Errorf("measured %d partitions, want 3 (leaders only)", m.Partitions)
		}

		// The measured rate priced: 1 MB/s-ish × 30 d gives ~2,592 GB.
		in := &Inputs{Options: []string{OptionGodwit}, Measured: m}
		if err := in.Normalize(); err != nil {
			t.Fatal(err)
		}
		pt, err := EmbeddedPrices()
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Compute(in, pt)
		if err != nil {
			t.Fatal(err)
		}
		vol := rep.Basis[2].Value.Rat() // hours, throughput (measured), replicated volume
		if lo, hi := big.NewRat(2592*9, 10), big.NewRat(2592*11, 10); vol.Cmp(lo) < 0 || vol.Cmp(hi) > 0 {
			t.Errorf("replicated volume %s GB, want 2,592 GB ±10%%", Dec{vol})
		}
	})
}

// TestReplicatedTopics checks the topic selection used by --measure.
func TestReplicatedTopics(t *testing.T) {
	p := testkit.KfakePair(t)
	a, b := testkit.UniqueName(t, "keep"), testkit.UniqueName(t, "drop")
	testkit.CreateTopic(t, p.Primary, a, 1, nil)
	testkit.CreateTopic(t, p.Primary, b, 1, nil)
	adm := kadm.NewClient(testkit.Client(t, p.Primary))
	got, err := ReplicatedTopics(testkit.Context(t), adm, func(s string) bool { return s == a })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != a {
		t.Errorf("selected %v, want [%s]", got, a)
	}
}

// TestMeasureProgress: the reports start at once (elapsed 0), come during
// the window, never pass it, and count the bytes written meanwhile.
func TestMeasureProgress(t *testing.T) {
	p := testkit.KfakePair(t)
	topic := testkit.UniqueName(t, "progress")
	testkit.CreateTopic(t, p.Primary, topic, 1, nil)
	cl := testkit.Client(t, p.Primary, kgo.DefaultProduceTopic(topic))
	adm := kadm.NewClient(cl)
	type report struct {
		elapsed time.Duration
		bytes   int64
	}
	var reports []report
	ctx := testkit.Context(t)
	go func() {
		for i := 0; ctx.Err() == nil && i < 300; i++ {
			_ = cl.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 500)}).FirstErr()
			time.Sleep(10 * time.Millisecond) // pacing the load, not synchronisation
		}
	}()
	window := 3 * time.Second
	m, err := MeasureProgress(ctx, adm, p.Primary.Name, []string{topic}, window, func(elapsed, w time.Duration, b int64, parts int) {
		if w != window || parts != 1 {
			t.Errorf("report window %v partitions %d", w, parts)
		}
		reports = append(reports, report{elapsed, b})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) < 2 || reports[0] != (report{}) {
		t.Fatalf("reports %+v; want the start (0, 0) and at least one during the %v window", reports, window)
	}
	for i, r := range reports[1:] {
		if r.elapsed <= 0 || r.elapsed > window || r.bytes < reports[i].bytes {
			t.Errorf("report %d = %+v after %+v: elapsed must be in (0, window], bytes must not fall", i+1, r, reports[i])
		}
	}
	if last := reports[len(reports)-1]; last.bytes > m.EndBytes-m.StartBytes {
		t.Errorf("last report %d bytes, more than the measured %d", last.bytes, m.EndBytes-m.StartBytes)
	}
}
