package workload

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	srcTopic = "orders"
	dstTopic = "primary.orders"
	nParts   = 3
)

func newCluster(t *testing.T, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(nParts, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newClient(t *testing.T, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fullConfig exercises every feature of the producer.
func fullConfig(transactional bool) ProducerConfig {
	return ProducerConfig{
		Topic: srcTopic, Partitions: nParts, ValueSize: 64,
		Transactional: transactional, AbortEvery: 3, TxnRecords: 4,
		NullKeyEvery: 4, TombstoneEvery: 5, Headers: true, Timestamps: true,
	}
}

func produce(t *testing.T, ctx context.Context, c *kfake.Cluster, cfg ProducerConfig, n int) *Ledger {
	t.Helper()
	var opts []kgo.Opt
	if cfg.Transactional {
		opts = append(opts, kgo.TransactionalID(fmt.Sprintf("wl-%d", time.Now().UnixNano())))
	}
	p := NewProducer(newClient(t, c, opts...), cfg)
	if err := p.Produce(ctx, n); err != nil {
		t.Fatal(err)
	}
	return p.Ledger()
}

// readSource reads a topic read_committed with a plain kgo consumer (not the
// checker's reader) until want records arrived, grouped by partition.
func readSource(t *testing.T, ctx context.Context, c *kfake.Cluster, topic string, want int) map[int32][]*kgo.Record {
	t.Helper()
	offs := map[int32]kgo.Offset{}
	for p := int32(0); p < nParts; p++ {
		offs[p] = kgo.NewOffset().AtStart()
	}
	cl := newClient(t, c,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	out := map[int32][]*kgo.Record{}
	for got := 0; got < want; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: got %d of %d records: %v", topic, got, want, err)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], r)
			got++
		})
	}
	return out
}

// copyTopic is the in-test "replicator": it copies every committed source
// record to dst (same partition, key, value, headers, timestamp), after
// letting mutate tamper with the per-partition lists.
func copyTopic(t *testing.T, ctx context.Context, src *kfake.Cluster, ledger *Ledger, dst *kgo.Client, mutate func(map[int32][]*kgo.Record)) {
	t.Helper()
	recs := readSource(t, ctx, src, ledger.Topic(), ledger.Len())
	if mutate != nil {
		mutate(recs)
	}
	var out []*kgo.Record
	for p := int32(0); p < nParts; p++ {
		for _, r := range recs[p] {
			out = append(out, &kgo.Record{
				Topic: dstTopic, Partition: r.Partition, Key: r.Key, Value: r.Value,
				Headers: slices.Clone(r.Headers), Timestamp: r.Timestamp,
			})
		}
	}
	if err := dst.ProduceSync(ctx, out...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func toKgo(r Record, topic string) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
}

func TestEncoding(t *testing.T) {
	id := ID{Run: 0xfeedface, Partition: 7, Seq: 123456789}
	for _, size := range []int{0, IDSize, 100} {
		b := Encode(id, size)
		if len(b) != max(size, IDSize) {
			t.Fatalf("size %d: len %d", size, len(b))
		}
		got, ok := Decode(b)
		if !ok || got != id {
			t.Fatalf("size %d: decoded %v %v", size, got, ok)
		}
		p, s, ok := ParseValue(b)
		if !ok || p != 7 || s != 123456789 {
			t.Fatalf("ParseValue = %d %d %v", p, s, ok)
		}
	}
	for _, b := range [][]byte{nil, []byte("GWSEQ1"), []byte("hello world, definitely not ours")} {
		if _, ok := Decode(b); ok {
			t.Fatalf("decoded %q", b)
		}
	}
	if got, ok := Identify(Encode(id, 0), nil); !ok || got != id {
		t.Fatal("tombstone identity not taken from key")
	}
}

func TestLIS(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		miss int
	}{{nil, 0}, {[]int{0, 1, 2}, 0}, {[]int{1, 0, 2}, 1}, {[]int{0, 5, 1, 2, 3, 4, 6}, 1}, {[]int{3, 2, 1, 0}, 3}} {
		n := 0
		for _, ok := range lisMembers(tc.in) {
			if !ok {
				n++
			}
		}
		if n != tc.miss {
			t.Errorf("%v: %d out of order, want %d", tc.in, n, tc.miss)
		}
	}
}

func TestProducerLedger(t *testing.T) {
	for _, tx := range []bool{false, true} {
		t.Run(fmt.Sprintf("transactional=%v", tx), func(t *testing.T) {
			ctx := testCtx(t)
			c := newCluster(t, srcTopic)
			const n = 60
			l := produce(t, ctx, c, fullConfig(tx), n)
			if got := l.Len() + l.AbortedLen(); got != n || l.UncertainLen() != 0 {
				t.Fatalf("acked %d + aborted %d = %d, uncertain %d; want %d", l.Len(), l.AbortedLen(), got, l.UncertainLen(), n)
			}
			if tx && (l.AbortedLen() == 0 || l.Len() == 0) {
				t.Fatalf("want both committed and aborted records, got %d/%d", l.Len(), l.AbortedLen())
			}
			if !tx && l.AbortedLen() != 0 {
				t.Fatal("aborted records without transactions")
			}
			var tomb, nullKey, hdrs int
			for p := int32(0); p < nParts; p++ {
				// Seqs are contiguous over acked ∪ aborted; acked are in offset order.
				var seqs []int64
				last := int64(-1)
				for _, r := range l.Records(p) {
					if r.Offset <= last {
						t.Fatalf("partition %d: offsets not increasing at seq %d", p, r.Seq)
					}
					last = r.Offset
					seqs = append(seqs, r.Seq)
					id, ok := Identify(r.Key, r.Value)
					if !ok || id != r.ID(l.RunID()) || id.Partition != p {
						t.Fatalf("partition %d seq %d: not identifiable (%v %v)", p, r.Seq, id, ok)
					}
					if r.Value == nil {
						tomb++
					}
					if r.Key == nil {
						nullKey++
					}
					if len(r.Headers) == 4 && r.Headers[1].Key == "gw-dup" && r.Headers[2].Key == "gw-dup" && len(r.Headers[3].Value) == 0 {
						hdrs++
					}
				}
				for _, r := range l.Aborted(p) {
					seqs = append(seqs, r.Seq)
				}
				slices.Sort(seqs)
				for i, s := range seqs {
					if s != int64(i) {
						t.Fatalf("partition %d: seqs %v not contiguous from 0", p, seqs)
					}
				}
			}
			if tomb == 0 || nullKey == 0 || hdrs != l.Len() {
				t.Fatalf("tombstones %d, null keys %d, full headers %d of %d", tomb, nullKey, hdrs, l.Len())
			}

			// The source itself, read committed, is an exact copy of the ledger;
			// read uncommitted, it exposes exactly the aborted records.
			src := newClient(t, c)
			rep, err := Check(ctx, src, l, CheckConfig{Topic: srcTopic})
			if err != nil || !rep.OK() {
				t.Fatalf("source read committed: %v\n%s", err, rep)
			}
			rep, err = Check(ctx, src, l, CheckConfig{Topic: srcTopic, ReadUncommitted: true})
			if err != nil {
				t.Fatal(err)
			}
			if rep.AbortedFound != int64(l.AbortedLen()) || rep.Found != int64(l.Len()) {
				t.Fatalf("read uncommitted: %s", rep)
			}
			if rep.OK() != !tx {
				t.Fatalf("read uncommitted OK=%v with transactional=%v", rep.OK(), tx)
			}
		})
	}
}

func TestPerfectCopyAcrossClusters(t *testing.T) {
	for _, tx := range []bool{false, true} {
		t.Run(fmt.Sprintf("transactional=%v", tx), func(t *testing.T) {
			ctx := testCtx(t)
			src, dst := newCluster(t, srcTopic), newCluster(t, dstTopic)
			l := produce(t, ctx, src, fullConfig(tx), 90)
			dcl := newClient(t, dst)
			copyTopic(t, ctx, src, l, dcl, nil)
			rep, err := Check(ctx, dcl, l, CheckConfig{Topic: dstTopic, ReadCommitted: true})
			if err != nil || !rep.OK() {
				t.Fatalf("%v\n%s", err, rep)
			}
			if rep.Found != int64(l.Len()) || len(rep.PerPartition) != nParts {
				t.Fatalf("unexpected report %s", rep)
			}
		})
	}
}

// nth returns the index of the i-th record in rs satisfying pred.
func nth(rs []*kgo.Record, i int, pred func(*kgo.Record) bool) int {
	for j, r := range rs {
		if pred(r) {
			if i == 0 {
				return j
			}
			i--
		}
	}
	panic("no such record")
}

func hasValue(r *kgo.Record) bool    { return r.Value != nil }
func isTombstone(r *kgo.Record) bool { return r.Value == nil }

func TestCheckDetects(t *testing.T) {
	type mut = func(map[int32][]*kgo.Record, *Ledger)
	cases := []struct {
		name   string
		mutate mut
		cfg    CheckConfig
		ok     bool
		want   Report // only the counters are compared
		prob   string // substring of some problem
	}{
		{name: "perfect", ok: true},
		{name: "drop one", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			m[1] = slices.Delete(m[1], 2, 3)
		}, want: Report{Missing: 1}, prob: "missing"},
		{name: "duplicate one", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			m[0] = slices.Insert(m[0], 3, m[0][2])
		}, want: Report{Duplicates: 1}, prob: "duplicate"},
		{name: "duplicate one, at-least-once", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			m[0] = slices.Insert(m[0], 3, m[0][2])
		}, cfg: CheckConfig{AllowDuplicates: true}, ok: true, want: Report{Duplicates: 1}},
		{name: "redelivery of older range, at-least-once", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			m[2] = append(m[2][:5:5], append(slices.Clone(m[2][1:5]), m[2][5:]...)...)
		}, cfg: CheckConfig{AllowDuplicates: true}, ok: true, want: Report{Duplicates: int64(4)}},
		{name: "swap two", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			m[2][1], m[2][2] = m[2][2], m[2][1]
		}, want: Report{OutOfOrder: 1}, prob: "out of order"},
		{name: "move one far ahead", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			r := m[2][6]
			m[2] = slices.Insert(slices.Delete(m[2], 6, 7), 0, r)
		}, want: Report{OutOfOrder: 1}},
		{name: "alter header value", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			r := m[0][1]
			r.Headers = slices.Clone(r.Headers)
			r.Headers[0].Value = []byte("bogus")
		}, want: Report{Mismatched: 1}, prob: "headers differ"},
		{name: "reorder duplicate-key headers", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			r := m[0][1]
			r.Headers = slices.Clone(r.Headers)
			r.Headers[1], r.Headers[2] = r.Headers[2], r.Headers[1]
		}, want: Report{Mismatched: 1}, prob: "headers differ"},
		{name: "drop empty header", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			r := m[1][0]
			r.Headers = slices.Clone(r.Headers[:3])
		}, want: Report{Mismatched: 1}, prob: "headers differ"},
		{name: "replicator headers not ignored", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			r := m[1][0]
			r.Headers = append(slices.Clone(r.Headers), kgo.RecordHeader{Key: "godwit-src-offset", Value: []byte("0")})
		}, want: Report{Mismatched: 1}},
		{name: "replicator headers ignored by prefix", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			for _, rs := range m {
				for _, r := range rs {
					r.Headers = append(slices.Clone(r.Headers), kgo.RecordHeader{Key: "godwit-src-offset", Value: []byte("1")}, kgo.RecordHeader{Key: "godwit-src-cluster", Value: []byte("a")})
				}
			}
		}, cfg: CheckConfig{IgnoreHeaders: []string{"godwit-*"}}, ok: true},
		{name: "alter value padding", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			r := m[1][nth(m[1], 0, hasValue)]
			r.Value = bytes.Clone(r.Value)
			r.Value[len(r.Value)-1] ^= 0xff
		}, want: Report{Mismatched: 1}, prob: "value differs"},
		{name: "alter key", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			r := m[1][nth(m[1], 0, func(r *kgo.Record) bool { return r.Key != nil && r.Value != nil })]
			r.Key = []byte("other")
		}, want: Report{Mismatched: 1}, prob: "key differs"},
		{name: "tombstone becomes empty value", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			for p := int32(0); p < nParts; p++ {
				if i := slices.IndexFunc(m[p], isTombstone); i >= 0 {
					m[p][i].Value = []byte{}
					return
				}
			}
			panic("no tombstone")
		}, want: Report{Unexpected: 1, Missing: 1}, prob: "unrecognised"},
		{name: "alter timestamp", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			m[0][4].Timestamp = m[0][4].Timestamp.Add(time.Millisecond)
		}, want: Report{Mismatched: 1}, prob: "timestamp differs"},
		{name: "alter timestamp, ignored", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			m[0][4].Timestamp = m[0][4].Timestamp.Add(time.Hour)
		}, cfg: CheckConfig{IgnoreTimestamps: true}, ok: true},
		{name: "copy an aborted record", mutate: func(m map[int32][]*kgo.Record, l *Ledger) {
			a := l.Aborted(1)[0]
			m[1] = append(m[1], toKgo(a, srcTopic))
		}, want: Report{AbortedFound: 1}, prob: "aborted"},
		{name: "unrelated record", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			m[0] = append(m[0], &kgo.Record{Partition: 0, Key: []byte("x"), Value: []byte("not a workload record")})
		}, want: Report{Unexpected: 1}, prob: "unrecognised"},
		{name: "other run tolerated", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			m[0] = append(m[0], &kgo.Record{Partition: 0, Value: Encode(ID{Run: 1, Partition: 0, Seq: 0}, 40)})
		}, ok: true, want: Report{OtherRuns: 1}},
		{name: "other run strict", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			m[0] = append(m[0], &kgo.Record{Partition: 0, Value: Encode(ID{Run: 1, Partition: 0, Seq: 0}, 40)})
		}, cfg: CheckConfig{OtherRunsUnexpected: true}, want: Report{OtherRuns: 1, Unexpected: 1}},
		{name: "misrouted record", mutate: func(m map[int32][]*kgo.Record, _ *Ledger) {
			r := m[0][0]
			m[0] = m[0][1:]
			r.Partition = 1
			m[1] = append(m[1], r)
		}, want: Report{Missing: 1, Unexpected: 1}, prob: "misrouted"},
		{name: "seq never produced", mutate: func(m map[int32][]*kgo.Record, l *Ledger) {
			m[0] = append(m[0], &kgo.Record{Partition: 0, Value: Encode(ID{Run: l.RunID(), Partition: 0, Seq: 9999}, 40)})
		}, want: Report{Unexpected: 1}, prob: "never produced"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			src, dst := newCluster(t, srcTopic), newCluster(t, dstTopic)
			l := produce(t, ctx, src, fullConfig(true), 60)
			dcl := newClient(t, dst)
			var mutate func(map[int32][]*kgo.Record)
			if tc.mutate != nil {
				mutate = func(m map[int32][]*kgo.Record) { tc.mutate(m, l) }
			}
			copyTopic(t, ctx, src, l, dcl, mutate)
			cfg := tc.cfg
			cfg.Topic = dstTopic
			rep, err := Check(ctx, dcl, l, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() != tc.ok {
				t.Fatalf("OK() = %v, want %v\n%s", rep.OK(), tc.ok, rep)
			}
			got := [...]int64{rep.Missing, rep.Duplicates, rep.OutOfOrder, rep.Mismatched, rep.Unexpected, rep.AbortedFound, rep.OtherRuns}
			want := [...]int64{tc.want.Missing, tc.want.Duplicates, tc.want.OutOfOrder, tc.want.Mismatched, tc.want.Unexpected, tc.want.AbortedFound, tc.want.OtherRuns}
			if got != want {
				t.Fatalf("counters [missing dups ooo mismatched unexpected aborted other] = %v, want %v\n%s", got, want, rep)
			}
			if rep.Expected != int64(l.Len()) || rep.Found != rep.Expected-rep.Missing {
				t.Fatalf("expected %d found %d\n%s", rep.Expected, rep.Found, rep)
			}
			if tc.prob != "" && !slices.ContainsFunc(rep.Problems, func(p string) bool { return strings.Contains(p, tc.prob) }) {
				t.Fatalf("no problem mentions %q\n%s", tc.prob, rep)
			}
		})
	}
}

func TestWaitFor(t *testing.T) {
	ctx := testCtx(t)
	// The target topic does not exist until the copier creates it.
	src, dst := newCluster(t, srcTopic), newCluster(t)
	l := produce(t, ctx, src, fullConfig(true), 60)
	dcl := newClient(t, dst)

	// Nothing copied yet: WaitFor gives up at its deadline with everything missing.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	rep, err := WaitFor(short, dcl, l, CheckConfig{Topic: dstTopic}, 20*time.Millisecond)
	cancel()
	if err == nil || rep.OK() || rep.Missing != int64(l.Len()) {
		t.Fatalf("err %v\n%s", err, rep)
	}

	// Copy concurrently: WaitFor converges once everything is there.
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := kadm.NewClient(dcl).CreateTopic(ctx, nParts, 1, nil, dstTopic); err != nil {
			t.Error(err)
			return
		}
		recs := readSource(t, ctx, src, srcTopic, l.Len())
		for p := int32(0); p < nParts; p++ {
			for _, r := range recs[p] {
				c := &kgo.Record{Topic: dstTopic, Partition: p, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
				if err := dcl.ProduceSync(ctx, c).FirstErr(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	rep, err = WaitFor(ctx, dcl, l, CheckConfig{Topic: dstTopic}, 10*time.Millisecond)
	<-done
	if err != nil || !rep.OK() {
		t.Fatalf("%v\n%s", err, rep)
	}
}

// TestTwoRunsSameTopic models active-active: two workloads share a topic and
// each ledger checks out while counting the other run's records.
func TestTwoRunsSameTopic(t *testing.T) {
	ctx := testCtx(t)
	c := newCluster(t, srcTopic)
	cfg := fullConfig(false)
	a := produce(t, ctx, c, cfg, 30)
	b := produce(t, ctx, c, cfg, 21)
	cl := newClient(t, c)
	for _, tc := range []struct {
		l     *Ledger
		other int
	}{{a, 21}, {b, 30}} {
		rep, err := Check(ctx, cl, tc.l, CheckConfig{Topic: srcTopic})
		if err != nil || !rep.OK() || rep.OtherRuns != int64(tc.other) {
			t.Fatalf("%v\n%s", err, rep)
		}
	}
}

func TestProducerRequiresManualPartitioner(t *testing.T) {
	ctx := testCtx(t)
	c := newCluster(t, srcTopic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p := NewProducer(cl, ProducerConfig{Topic: srcTopic, Partitions: nParts})
	err = p.Produce(ctx, 30)
	if err == nil || !strings.Contains(err.Error(), "ManualPartitioner") {
		t.Fatalf("err = %v", err)
	}
	// Misplaced records are never reported as acknowledged.
	for part := int32(0); part < nParts; part++ {
		for _, r := range p.Ledger().Records(part) {
			if id, _ := Identify(r.Key, r.Value); id.Partition != part {
				t.Fatalf("ledger partition %d holds %v", part, id)
			}
		}
	}
}

func TestProducerRate(t *testing.T) {
	ctx := testCtx(t)
	c := newCluster(t, srcTopic)
	p := NewProducer(newClient(t, c), ProducerConfig{Topic: srcTopic, Partitions: nParts, Rate: 200})
	start := time.Now()
	if err := p.Produce(ctx, 21); err != nil {
		t.Fatal(err)
	}
	// 21 records at 200/s are spaced over at least 100ms.
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("produced 21 records in %v at 200/s", d)
	}
	if p.Ledger().Len() != 21 {
		t.Fatalf("ledger has %d records", p.Ledger().Len())
	}
}

func TestCheckMissingTopicIsAnError(t *testing.T) {
	ctx := testCtx(t)
	c := newCluster(t, srcTopic)
	l := NewLedger(srcTopic, nParts, NewRunID())
	rep, err := Check(ctx, newClient(t, c), l, CheckConfig{Topic: "nope"})
	if err == nil {
		t.Fatalf("no error\n%s", rep)
	}
}

// A framed value (Confluent wire format around the Avro record of
// AvroSchema) still identifies its record, and round-trips.
func TestFrame(t *testing.T) {
	id := ID{Run: 7, Partition: 3, Seq: 1234}
	plain := Encode(id, 300)
	f := Frame(42, plain)
	if f[0] != 0 || f[1] != 0 || f[4] != 42 {
		t.Fatalf("header % x", f[:5])
	}
	got, sid, ok := Unframe(f)
	if !ok || sid != 42 || !bytes.Equal(got, plain) {
		t.Fatalf("Unframe: %v %d %v", ok, sid, len(got))
	}
	if d, ok := Decode(f); !ok || d != id {
		t.Fatalf("Decode(framed) = %v %v, want %v", d, ok, id)
	}
	if _, _, ok := Unframe(f[:len(f)-1]); ok {
		t.Error("a truncated frame unframed")
	}
	if _, _, ok := Unframe(plain); ok {
		t.Error("a plain encoding unframed")
	}
}
