package offsets_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/sandbox"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

// Topic settings that make the real broker's log cleaner compact the
// source within seconds: a segment rolls once a record arrives 100 ms
// after the segment's first one (segment.bytes has a 1 MiB floor in Kafka
// 4.x, segment.ms does not), any dirty data makes the log cleanable, and
// records are eligible at once. The cleaner itself wakes up every
// log.cleaner.backoff.ms (broker default 15 s).
var realCompactionConfigs = map[string]string{
	"segment.ms":                "100",
	"min.cleanable.dirty.ratio": "0.01",
	"min.compaction.lag.ms":     "0",
	"delete.retention.ms":       "100",
}

// realCompactionTimeout bounds the wait for the log cleaner (a few of its
// 15 s back-offs, on brokers shared with other tests).
const realCompactionTimeout = 90 * time.Second

// compactSource compacts the source partition 0 of topic, whose records
// are workload records seq 0..n-1 of run, and returns how many records
// were produced in all. kfake compacts on demand. On real Kafka the
// active segment is never cleaned, so one more record (seq n, a key of
// its own) is produced with a timestamp past segment.ms to roll it; then
// the partition is read until the cleaner has cleaned everything below
// that record: every key left exactly once. It fails rather than
// passing vacuously when that does not happen in time.
func compactSource(t *testing.T, p testkit.Pair, cl *kgo.Client, topic string, run uint64, n int) int {
	t.Helper()
	if p.Kind == testkit.KindKfake {
		p.Sandbox.Cluster(sandbox.Primary).Fake().Compact()
		return n
	}
	roll := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("u%d", n)), Timestamp: time.Now().Add(time.Second),
		Value: workload.Encode(workload.ID{Run: run, Partition: 0, Seq: int64(n)}, 32)}
	if err := cl.ProduceSync(ctxFor(t, time.Minute), roll).FirstErr(); err != nil {
		t.Fatal(err)
	}
	end := int64(n + 1)
	start := time.Now()
	var last string
	deadline := time.Now().Add(realCompactionTimeout)
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		rs, err := kafkautil.ReadRange(ctx, cl, topic, 0, 0, end, true)
		cancel()
		if err != nil {
			last = err.Error()
		} else {
			seen := map[string]bool{}
			dup := 0
			for _, r := range rs {
				if seen[string(r.Key)] {
					dup++
				}
				seen[string(r.Key)] = true
			}
			last = fmt.Sprintf("%d of %d records left, %d keys, %d older values not removed yet", len(rs), end, len(seen), dup)
			if dup == 0 && len(rs) > 0 && rs[len(rs)-1].Offset == end-1 {
				t.Logf("log cleaner compacted %s in %v: %s", topic, time.Since(start).Round(100*time.Millisecond), last)
				return int(end)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("real Kafka did not compact %s within %v (topic configs %v; broker log.cleaner.enable / log.cleaner.backoff.ms?): %s",
				topic, realCompactionTimeout, realCompactionConfigs, last)
		}
		time.Sleep(min(wait, time.Until(deadline)+time.Millisecond))
	}
}
