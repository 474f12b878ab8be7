package naming

import (
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestAppendOriginHeaders(t *testing.T) {
	for _, o := range []Origin{
		{Cluster: "us-west-2", Topic: "orders", Partition: 7, Offset: 42},
		{Cluster: "", Topic: "", Partition: 0, Offset: 0},
		{Cluster: "a", Topic: "t", Partition: math.MaxInt32, Offset: math.MaxInt64},
		{Cluster: "a", Topic: "t", Partition: math.MinInt32, Offset: math.MinInt64},
	} {
		dst := []kgo.RecordHeader{{Key: "app", Value: []byte("x")}}
		hs := AppendOriginHeaders(dst, o)
		if len(hs) != 5 || hs[0].Key != "app" || string(hs[0].Value) != "x" {
			t.Fatalf("%+v: dst not kept: %q", o, hs)
		}
		for i, k := range []string{HeaderOriginCluster, HeaderOriginTopic, HeaderOriginPartition, HeaderOriginOffset} {
			if hs[i+1].Key != k {
				t.Fatalf("%+v: header %d is %s, want %s", o, i+1, hs[i+1].Key, k)
			}
			if len(hs[i+1].Value) != cap(hs[i+1].Value) {
				t.Fatalf("%+v: %s has spare capacity %d: appending to it would overwrite the next value", o, k, cap(hs[i+1].Value)-len(hs[i+1].Value))
			}
		}
		if got, ok := OriginOf(hs); !ok || got != o {
			t.Fatalf("OriginOf(AppendOriginHeaders(%+v)) = %+v, %v", o, got, ok)
		}
		// OriginHeaders is the same headers on their own.
		if got, ok := OriginOf(OriginHeaders(o)); !ok || got != o || len(OriginHeaders(o)) != 4 {
			t.Fatalf("OriginHeaders(%+v) reads back as %+v, %v", o, got, ok)
		}
	}
}
