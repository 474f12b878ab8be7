package flowstate

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// OffsetRun says that count consecutive source records of one partition,
// from SourceFirst, are the target records from TargetFirst on (both
// sides contiguous). A source gap (transaction marker, aborted or
// compacted records) or a target gap (another writer, godwit's own
// transaction markers) starts a new run.
//
// Origin runs describe source records that were not copied because they
// came from the target in the first place (active-active, identical
// names): TargetFirst is where they already are on the target, from their
// provenance headers. They let a group move across over records that
// originated on the other side.
type OffsetRun struct {
	SourceFirst int64 `json:"sf"`
	TargetFirst int64 `json:"tf"`
	Count       int64 `json:"n"`
	Origin      bool  `json:"o,omitempty"`
}

// SourceLast is the last source offset of the run.
func (r OffsetRun) SourceLast() int64 { return r.SourceFirst + r.Count - 1 }

// OffsetMapEntry is one record of the offset map topic: the runs one
// commit added for one source partition. Its key is
// "<source topic>/<partition>/<first source offset>", so compaction keeps
// every entry and pruning can delete entries below the target log start
// with tombstones.
type OffsetMapEntry struct {
	Version     int         `json:"version"`
	Topic       string      `json:"topic"`
	TargetTopic string      `json:"target_topic"`
	Partition   int32       `json:"partition"`
	Runs        []OffsetRun `json:"runs"`
}

// OffsetMapKey is the record key of an entry.
func OffsetMapKey(e *OffsetMapEntry) []byte {
	return []byte(e.Topic + "/" + strconv.Itoa(int(e.Partition)) + "/" + strconv.FormatInt(e.Runs[0].SourceFirst, 10))
}

// DecodeOffsetMapEntry parses an offset map record value.
func DecodeOffsetMapEntry(b []byte) (*OffsetMapEntry, error) {
	var e OffsetMapEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode offset map entry: %w", err)
	}
	if e.Version != 1 {
		return nil, fmt.Errorf("offset map entry version %d is newer than this godwit understands; upgrade godwit", e.Version)
	}
	return &e, nil
}
