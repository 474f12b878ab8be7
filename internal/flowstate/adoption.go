package flowstate

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Adoption records where `godwit adopt-mm2` took a source partition over
// from MirrorMaker 2: the value of key "<topic>/<partition>" in the flow's
// adopted topic (naming.AdoptedTopic), written in the same transaction as
// the starting progress and the offset-map entries it describes. It is
// the durable answer to "where did MM2 stop, and what did it duplicate".
type Adoption struct {
	Version     int    `json:"version"`
	Flow        string `json:"flow"`
	Topic       string `json:"topic"`
	TargetTopic string `json:"target_topic"`
	Partition   int32  `json:"partition"`
	// Next is the takeover point: MM2 had copied every source record
	// below it (checked from ScanFrom on), godwit copies from it.
	Next int64 `json:"next"`
	// TargetEnd is the target partition's end at the takeover: every
	// target record below it was written by MM2, from it on by godwit.
	TargetEnd int64 `json:"target_end"`
	// ScanFromSource/ScanFromTarget is the MM2 offset sync adoption
	// started matching from; Scanned counts the target records it
	// matched against the source (ScanFromTarget..TargetEnd).
	ScanFromSource int64 `json:"scan_from_source"`
	ScanFromTarget int64 `json:"scan_from_target"`
	Scanned        int64 `json:"scanned"`
	// Duplicates counts target records in the scanned stretch that are a
	// second copy of a source record (MM2's at-least-once delivery).
	Duplicates int64 `json:"duplicates"`
	// SyncsTopic is the MM2 offset-syncs topic read, SyncsOn its cluster.
	SyncsTopic string `json:"syncs_topic"`
	SyncsOn    string `json:"syncs_on"`
	AdoptedAt  int64  `json:"adopted_at_ms"`
}

// AdoptionKey is the record key of a partition's adoption record.
func AdoptionKey(topic string, partition int32) []byte {
	return []byte(topic + "/" + strconv.Itoa(int(partition)))
}

// DecodeAdoption parses an adoption record's value.
func DecodeAdoption(b []byte) (*Adoption, error) {
	var a Adoption
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("decode adoption record: %w", err)
	}
	if a.Version != 1 {
		return nil, fmt.Errorf("adoption record version %d is newer than this godwit understands; upgrade godwit", a.Version)
	}
	return &a, nil
}
