package replicate

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/naming"
)

// benchRecord is a typical fetched source record: 16 B key, 1 KiB value,
// three application headers (W3C trace context, content type, tenant).
func benchRecord() *kgo.Record {
	value := make([]byte, 1024)
	for i := range value {
		value[i] = byte(i * 31)
	}
	return &kgo.Record{
		Topic: "orders.v1", Partition: 17, Offset: 123_456_789,
		Key: []byte("customer-0004711"), Value: value, Timestamp: time.UnixMilli(1_700_000_000_000),
		Headers: []kgo.RecordHeader{
			{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
			{Key: "content-type", Value: []byte("application/json")},
			{Key: "tenant", Value: []byte("acme-12345")},
		},
	}
}

// BenchmarkRecordCopy measures what the slot does per replicated record
// before handing it to the producer: read its provenance (naming.OriginOf)
// and build the target record (replica). "fresh" is a record produced on
// the source (four provenance headers are added); "multi-hop" one that
// already carries them (A->B->C: headers are kept as they are).
func BenchmarkRecordCopy(b *testing.B) {
	fresh := benchRecord()
	hop := benchRecord()
	hop.Headers = append(hop.Headers, naming.OriginHeaders(naming.Origin{Cluster: "eu-west-1", Topic: "orders.v1", Partition: 3, Offset: 98_765_432})...)
	for _, c := range []struct {
		name string
		r    *kgo.Record
	}{{"fresh", fresh}, {"multi-hop", hop}} {
		b.Run(c.name, func(b *testing.B) {
			r := c.r
			_, size := replica(r, "us-west-2", "us-west-2.orders.v1", false)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var sink *kgo.Record
			for b.Loop() {
				_, hasOrigin := naming.OriginOf(r.Headers)
				sink, _ = replica(r, "us-west-2", "us-west-2.orders.v1", hasOrigin)
			}
			if len(sink.Headers) != len(fresh.Headers)+4 {
				b.Fatalf("replica has %d headers, want %d", len(sink.Headers), len(fresh.Headers)+4)
			}
		})
	}
}

// BenchmarkBuildRuns measures turning one commit's per-record mappings of
// a partition into offset-map runs, plus the entry's key and JSON value:
// the offset-map append done once per partition per transaction. 1000
// records (about 1 MiB at 1 KiB each, a full default batch); "contiguous"
// gives one run, "marker every 100" ten (a transactional source).
func BenchmarkBuildRuns(b *testing.B) {
	const n = 1000
	for _, c := range []struct {
		name  string
		every int64 // a source gap after every this many records (0: none)
	}{{"contiguous", 0}, {"marker-every-100", 100}} {
		ms := make([]mapping, n)
		src := int64(5_000_000)
		for i := range ms {
			if c.every > 0 && i > 0 && int64(i)%c.every == 0 {
				src++ // a transaction marker on the source
			}
			ms[i] = mapping{src: src, tgt: 9_000_000 + int64(i)}
			src++
		}
		wantRuns := 1
		if c.every > 0 {
			wantRuns = n / int(c.every)
		}
		b.Run(c.name+"/runs", func(b *testing.B) {
			b.ReportAllocs()
			var runs []flowstate.OffsetRun
			for b.Loop() {
				runs = buildRuns(ms)
			}
			if len(runs) != wantRuns {
				b.Fatalf("%d runs, want %d", len(runs), wantRuns)
			}
		})
		b.Run(c.name+"/entry", func(b *testing.B) {
			b.ReportAllocs()
			var val []byte
			for b.Loop() {
				e := &flowstate.OffsetMapEntry{Version: 1, Topic: "orders.v1", TargetTopic: "us-west-2.orders.v1", Partition: 17, Runs: buildRuns(ms)}
				_ = flowstate.OffsetMapKey(e)
				var err error
				if val, err = json.Marshal(e); err != nil { // as session.commit does
					b.Fatal(err)
				}
			}
			if len(val) == 0 {
				b.Fatal("empty entry")
			}
		})
	}
}
