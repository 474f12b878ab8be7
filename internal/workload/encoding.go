// Package workload generates sequence-numbered, self-describing Kafka records
// and independently checks that a target topic holds an exact copy of what a
// producer acknowledged. It is deliberately independent of the replicator: it
// only produces to, and reads from, Kafka.
package workload

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// Magic prefixes every encoded record identity ("GWSEQ1").
const Magic = "GWSEQ1"

// IDSize is the size of an encoded identity: magic + partition (int32) +
// seq (int64) + run id (uint64), all big endian. It is the minimum value
// size of a workload record.
const IDSize = len(Magic) + 4 + 8 + 8

// ID identifies one workload record.
type ID struct {
	Run       uint64
	Partition int32
	Seq       int64
}

func (id ID) String() string {
	return fmt.Sprintf("run %016x partition %d seq %d", id.Run, id.Partition, id.Seq)
}

// NewRunID returns a random non-zero run id.
func NewRunID() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err)
		}
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// Encode returns the encoding of id padded with deterministic filler to size
// bytes (size below IDSize is raised to IDSize).
func Encode(id ID, size int) []byte {
	if size < IDSize {
		size = IDSize
	}
	b := make([]byte, size)
	copy(b, Magic)
	o := len(Magic)
	binary.BigEndian.PutUint32(b[o:], uint32(id.Partition))
	binary.BigEndian.PutUint64(b[o+4:], uint64(id.Seq))
	binary.BigEndian.PutUint64(b[o+12:], id.Run)
	for i := IDSize; i < size; i++ {
		b[i] = 'a' + byte((int64(i)+id.Seq)%26)
	}
	return b
}

// AvroSchema is the Avro schema of a schema-framed workload value
// (ProducerConfig.SchemaID): a record whose one field holds the plain
// encoding, so a consumer can decode it through a Schema Registry.
const AvroSchema = `{"type":"record","name":"GodwitWorkload","namespace":"godwit.workload","fields":[{"name":"payload","type":"bytes"}]}`

// Frame wraps a plain encoding in the Confluent wire format for schema
// id: magic byte 0, the ID (4 bytes, big endian), then the Avro binary
// encoding of an AvroSchema record (the payload's length as a zigzag
// varint, then its bytes).
func Frame(schemaID uint32, plain []byte) []byte {
	b := make([]byte, 5, 5+binary.MaxVarintLen64+len(plain))
	binary.BigEndian.PutUint32(b[1:5], schemaID)
	b = binary.AppendVarint(b, int64(len(plain))) // Avro longs are zigzag varints
	return append(b, plain...)
}

// Unframe returns the plain encoding inside a framed value and its schema
// ID.
func Unframe(b []byte) (plain []byte, schemaID uint32, ok bool) {
	if len(b) < 6 || b[0] != 0 {
		return nil, 0, false
	}
	n, w := binary.Varint(b[5:])
	if w <= 0 || n < 0 || int64(len(b)-5-w) != n {
		return nil, 0, false
	}
	return b[5+w:], binary.BigEndian.Uint32(b[1:5]), true
}

// Decode parses an encoded identity from the front of b, plain or framed
// (Frame).
func Decode(b []byte) (ID, bool) {
	if plain, _, ok := Unframe(b); ok {
		b = plain
	}
	if len(b) < IDSize || !bytes.HasPrefix(b, []byte(Magic)) {
		return ID{}, false
	}
	o := len(Magic)
	return ID{
		Partition: int32(binary.BigEndian.Uint32(b[o:])),
		Seq:       int64(binary.BigEndian.Uint64(b[o+4:])),
		Run:       binary.BigEndian.Uint64(b[o+12:]),
	}, true
}

// ParseValue parses the partition and sequence number encoded in a workload
// record value.
func ParseValue(b []byte) (partition int32, seq int64, ok bool) {
	id, ok := Decode(b)
	return id.Partition, id.Seq, ok
}

// Identify returns the identity of a workload record. The value carries the
// identity; tombstones (nil value) carry it in the key instead.
func Identify(key, value []byte) (ID, bool) {
	if value != nil {
		return Decode(value)
	}
	return Decode(key)
}
