package replicate_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/testkit"
)

// TestCompression: the batches godwit writes to the target carry the
// flow's compression codec, and none when the flow sets none (franz-go
// alone would snappy them), whatever codec the source batches had.
func TestCompression(t *testing.T) {
	for _, c := range []struct {
		setting string // "" leaves the key out: the default
		codec   uint8  // record batch attributes, as Kafka numbers codecs
	}{
		{"", 0}, {"zstd", 4}, {"lz4", 3},
	} {
		name := c.setting
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
				topic := testkit.UniqueName(t, "codec")
				testkit.CreateTopic(t, p.Primary, topic, 1, nil)
				body := `topics: ["` + topic + `"]`
				if c.setting != "" {
					body += `, compression: ` + c.setting
				}
				cfgPath, src, _ := flowConfig(t, p, "prefixed", body, false)
				// Compressible values, written gzip-compressed: the
				// target's codec is godwit's choice, not the source's.
				prod := testkit.Client(t, p.Primary, kgo.ProducerBatchCompression(kgo.GzipCompression()))
				const n = 200
				for i := range n {
					v := bytes.Repeat([]byte(fmt.Sprintf("value %d ", i)), 50)
					prod.Produce(ctxFor(t, time.Minute), &kgo.Record{Topic: topic, Value: v}, nil)
				}
				if err := prod.Flush(ctxFor(t, time.Minute)); err != nil {
					t.Fatal(err)
				}
				runInProcess(t, cfgPath)
				cons := testkit.Client(t, p.Secondary, kgo.ConsumeTopics(src+"."+topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
				seen := 0
				codecs := map[uint8]int{}
				testkit.Eventually(t, time.Minute, func() (bool, string) {
					fs := cons.PollRecords(ctxFor(t, time.Second), 1000)
					fs.EachRecord(func(r *kgo.Record) {
						seen++
						codecs[r.Attrs.CompressionType()]++
					})
					return seen >= n, fmt.Sprintf("%d of %d records on the target", seen, n)
				})
				if len(codecs) != 1 || codecs[c.codec] != seen {
					t.Fatalf("target record codecs %v (codec: records), want all %d", codecs, c.codec)
				}
			})
		})
	}
}
