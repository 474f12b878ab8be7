package offsets

import (
	"bytes"
	"testing"
)

// TestCheckpointEncoding checks the bytes against MirrorMaker 2's schema,
// built by hand: KEY_SCHEMA (group STRING, topic STRING, partition INT32)
// and HEADER_SCHEMA (version INT16 = 0) + VALUE_SCHEMA_V0 (upstreamOffset
// INT64, offset INT64, metadata STRING).
func TestCheckpointEncoding(t *testing.T) {
	c := &Checkpoint{Group: "g1", Topic: "A.orders", Partition: 3, Upstream: 120, Downstream: 0x0102030405, Metadata: "m"}
	wantKey := []byte{
		0x00, 0x02, 'g', '1',
		0x00, 0x08, 'A', '.', 'o', 'r', 'd', 'e', 'r', 's',
		0x00, 0x00, 0x00, 0x03,
	}
	wantValue := []byte{
		0x00, 0x00, // version 0
		0, 0, 0, 0, 0, 0, 0, 120,
		0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x05,
		0x00, 0x01, 'm',
	}
	if got := c.Key(); !bytes.Equal(got, wantKey) {
		t.Fatalf("key = % x, want % x", got, wantKey)
	}
	if got := c.Value(); !bytes.Equal(got, wantValue) {
		t.Fatalf("value = % x, want % x", got, wantValue)
	}
	back, err := DecodeCheckpoint(wantKey, wantValue)
	if err != nil {
		t.Fatal(err)
	}
	if *back != *c {
		t.Fatalf("decoded %+v, want %+v", back, c)
	}
	empty := &Checkpoint{Group: "g", Topic: "t", Partition: 0}
	if got, want := empty.Value(), append(make([]byte, 18), 0, 0); !bytes.Equal(got, want) {
		t.Fatalf("empty metadata value = % x, want % x", got, want)
	}
	if CheckpointsTopic("primary") != "primary.checkpoints.internal" {
		t.Fatal("checkpoints topic name")
	}
	for _, bad := range [][2][]byte{
		{wantKey[:5], wantValue},
		{wantKey, wantValue[:10]},
		{wantKey, append([]byte{0, 1}, wantValue[2:]...)},
	} {
		if _, err := DecodeCheckpoint(bad[0], bad[1]); err == nil {
			t.Errorf("DecodeCheckpoint(% x, % x) = nil error", bad[0], bad[1])
		}
	}
}
