package replicate

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/naming"
)

func TestReplica(t *testing.T) {
	ts := time.UnixMilli(1_700_000_000_123)
	src := &kgo.Record{
		Topic: "orders", Partition: 7, Offset: 1234567890123,
		Key: []byte("k"), Value: []byte("value"), Timestamp: ts,
		Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("abc")}, {Key: "empty"}},
	}
	out, size := replica(src, "us-west-2", "us-west-2.orders", false)
	if out.Topic != "us-west-2.orders" || out.Partition != 7 || !out.Timestamp.Equal(ts) ||
		string(out.Key) != "k" || string(out.Value) != "value" {
		t.Fatalf("replica = %+v", out)
	}
	if want := len("k") + len("value") + len("trace") + len("abc") + len("empty"); size != want {
		t.Fatalf("size = %d, want %d (key, value and the source's headers; provenance not counted)", size, want)
	}
	want := []kgo.RecordHeader{
		{Key: "trace", Value: []byte("abc")}, {Key: "empty"},
		{Key: naming.HeaderOriginCluster, Value: []byte("us-west-2")},
		{Key: naming.HeaderOriginTopic, Value: []byte("orders")},
		{Key: naming.HeaderOriginPartition, Value: []byte("7")},
		{Key: naming.HeaderOriginOffset, Value: []byte("1234567890123")},
	}
	if len(out.Headers) != len(want) {
		t.Fatalf("headers = %q, want %q", out.Headers, want)
	}
	for i := range want {
		if out.Headers[i].Key != want[i].Key || !bytes.Equal(out.Headers[i].Value, want[i].Value) {
			t.Fatalf("header %d = %s=%q, want %s=%q", i, out.Headers[i].Key, out.Headers[i].Value, want[i].Key, want[i].Value)
		}
	}
	if len(src.Headers) != 2 {
		t.Fatalf("source record's headers changed: %q", src.Headers)
	}
	// Header values must not share writable memory: a producer
	// interceptor appending to one value must not change another.
	for i := 2; i < len(out.Headers)-1; i++ {
		next := string(out.Headers[i+1].Value)
		_ = append(out.Headers[i].Value, "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"...)
		if got := string(out.Headers[i+1].Value); got != next {
			t.Fatalf("appending to %s changed %s: %q -> %q", out.Headers[i].Key, out.Headers[i+1].Key, next, got)
		}
	}
	o, ok := naming.OriginOf(out.Headers)
	if !ok || o != (naming.Origin{Cluster: "us-west-2", Topic: "orders", Partition: 7, Offset: 1234567890123}) {
		t.Fatalf("OriginOf(replica) = %+v, %v", o, ok)
	}

	// Tombstone with no key, no headers.
	tomb, size := replica(&kgo.Record{Topic: "t", Offset: 0}, "a", "a.t", false)
	if tomb.Key != nil || tomb.Value != nil || size != 0 || len(tomb.Headers) != 4 || string(tomb.Headers[3].Value) != "0" {
		t.Fatalf("tombstone replica = %+v, size %d", tomb, size)
	}

	// Replicated before (A->B->C): the first hop's provenance is kept as is.
	hop := &kgo.Record{Topic: "a.orders", Partition: 1, Offset: 5, Value: []byte("v"),
		Headers: naming.OriginHeaders(naming.Origin{Cluster: "a", Topic: "orders", Partition: 3, Offset: 42})}
	out, _ = replica(hop, "b", "b.a.orders", true)
	if o, ok := naming.OriginOf(out.Headers); !ok || o != (naming.Origin{Cluster: "a", Topic: "orders", Partition: 3, Offset: 42}) || len(out.Headers) != 4 {
		t.Fatalf("multi-hop provenance = %+v (%d headers), want the first hop's", o, len(out.Headers))
	}
}
