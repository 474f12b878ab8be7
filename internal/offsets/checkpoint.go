package offsets

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Checkpoint is MirrorMaker 2's checkpoint record
// (org.apache.kafka.connect.mirror.Checkpoint): a group's offset on the
// source (upstream) and its translation on the target (downstream), for
// the target ("remote") topic partition. godwit writes the same bytes to
// the same topic (<source alias>.checkpoints.internal on the target), so
// Java tools using RemoteClusterUtils.translateOffsets read godwit's
// checkpoints unchanged.
//
// Key (Kafka protocol types, big endian): group STRING, topic STRING,
// partition INT32; no version. Value: version INT16 (0), upstream offset
// INT64, downstream offset INT64, metadata STRING. STRING is an INT16
// length followed by that many UTF-8 bytes.
type Checkpoint struct {
	Group      string
	Topic      string // the target topic
	Partition  int32
	Upstream   int64
	Downstream int64
	Metadata   string
}

// CheckpointsTopic is MirrorMaker 2's checkpoint topic name for a source
// alias (DefaultReplicationPolicy.checkpointsTopic).
func CheckpointsTopic(source string) string { return source + ".checkpoints.internal" }

const checkpointVersion = 0

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// Key encodes the record key.
func (c *Checkpoint) Key() []byte {
	b := make([]byte, 0, 2+len(c.Group)+2+len(c.Topic)+4)
	b = appendString(b, c.Group)
	b = appendString(b, c.Topic)
	return binary.BigEndian.AppendUint32(b, uint32(c.Partition))
}

// Value encodes the record value (version 0).
func (c *Checkpoint) Value() []byte {
	b := make([]byte, 0, 2+8+8+2+len(c.Metadata))
	b = binary.BigEndian.AppendUint16(b, checkpointVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Upstream))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Downstream))
	return appendString(b, c.Metadata)
}

var errShort = errors.New("truncated")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.err = errShort
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) int16() int16 {
	if v := d.take(2); v != nil {
		return int16(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (d *decoder) int32() int32 {
	if v := d.take(4); v != nil {
		return int32(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (d *decoder) int64() int64 {
	if v := d.take(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func (d *decoder) string() string {
	n := d.int16()
	if n < 0 {
		d.err = errors.New("negative string length")
		return ""
	}
	return string(d.take(int(n)))
}

// DecodeCheckpoint parses a checkpoint record's key and value.
func DecodeCheckpoint(key, value []byte) (*Checkpoint, error) {
	var c Checkpoint
	k := decoder{b: key}
	c.Group, c.Topic, c.Partition = k.string(), k.string(), k.int32()
	if k.err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", k.err)
	}
	v := decoder{b: value}
	if ver := v.int16(); v.err == nil && ver != checkpointVersion {
		return nil, fmt.Errorf("checkpoint value version %d is not supported", ver)
	}
	c.Upstream, c.Downstream, c.Metadata = v.int64(), v.int64(), v.string()
	if v.err != nil {
		return nil, fmt.Errorf("checkpoint value: %w", v.err)
	}
	return &c, nil
}
