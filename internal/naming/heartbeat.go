package naming

import (
	"encoding/binary"
	"time"
)

// HeartbeatRecord is a heartbeat in MirrorMaker 2's format (its
// Heartbeat class), so MM2 tooling reading the topic understands godwit's
// records: key = source alias, target alias (Kafka protocol STRINGs:
// INT16 length + UTF-8), value = version INT16 (0), timestamp INT64 (unix
// ms), big endian. One key per flow, so the compacted topic keeps one
// recent heartbeat per flow.
func HeartbeatRecord(source, target string, at time.Time) (key, value []byte) {
	key = appendString(appendString(make([]byte, 0, 4+len(source)+len(target)), source), target)
	value = binary.BigEndian.AppendUint16(make([]byte, 0, 10), 0)
	value = binary.BigEndian.AppendUint64(value, uint64(at.UnixMilli()))
	return key, value
}

// ParseHeartbeat reads a record written by HeartbeatRecord (or by MM2).
func ParseHeartbeat(key, value []byte) (source, target string, at time.Time, ok bool) {
	source, rest, ok1 := readString(key)
	target, rest, ok2 := readString(rest)
	if !ok1 || !ok2 || len(rest) != 0 || len(value) != 10 || binary.BigEndian.Uint16(value) != 0 {
		return "", "", time.Time{}, false
	}
	return source, target, time.UnixMilli(int64(binary.BigEndian.Uint64(value[2:]))), true
}

func appendString(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
}

func readString(b []byte) (string, []byte, bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, false
	}
	return string(b[2 : 2+n]), b[2+n:], true
}
