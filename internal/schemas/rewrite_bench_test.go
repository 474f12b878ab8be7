package schemas

import (
	"context"
	"encoding/binary"
	"testing"
)

// BenchmarkRewrite is translate-ids' per-record cost in the data plane:
// read the key's and value's schema IDs, look them up in the ID map, copy
// the value with the target's ID. The key is not schema-encoded (a string,
// as usual); the value is 1 KiB. "same-id" is a source ID the target
// happens to share (no copy).
func BenchmarkRewrite(b *testing.B) {
	value := make([]byte, 1024)
	value[0] = magic
	binary.BigEndian.PutUint32(value[1:5], 42)
	key := []byte("customer-0004711")
	for _, c := range []struct {
		name string
		to   int
	}{{"translated", 1042}, {"same-id", 42}} {
		b.Run(c.name, func(b *testing.B) {
			ids := &IDMap{ids: map[int]int{42: c.to}}
			rw := &Rewriter{flow: "a->b", ids: ids}
			ctx := context.Background()
			b.SetBytes(int64(len(key) + len(value)))
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				var err error
				if _, out, err = rw.Rewrite(ctx, "orders", key, value); err != nil {
					b.Fatal(err)
				}
			}
			if id, _ := SchemaID(out); id != c.to {
				b.Fatalf("rewritten id %d, want %d", id, c.to)
			}
		})
	}
}
