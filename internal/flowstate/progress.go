package flowstate

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/kafkautil"
)

// Progress is what one slot has committed to the target: for each of its
// source partitions, the next source offset to copy, and the source end
// offset last observed (so "data at risk" is known when the source is
// gone). It is the value of the slot's record in the flow's progress topic
// (partition = slot), written in the same transaction as the data.
type Progress struct {
	Version    int                 `json:"version"`
	Flow       string              `json:"flow"`
	Slot       int                 `json:"slot"`
	WrittenAt  int64               `json:"written_at_ms"`
	Partitions []PartitionProgress `json:"partitions"`
}

// PartitionProgress is one source partition's position.
type PartitionProgress struct {
	Topic       string `json:"topic"`
	TargetTopic string `json:"target_topic"`
	Partition   int32  `json:"partition"`
	// Next is the next source offset to copy: every source record below it
	// is on the target (or was deliberately filtered, or lost to source
	// retention before it could be copied, which is counted).
	Next int64 `json:"next"`
	// SourceEnd is the source high watermark last observed, and
	// SourceEndAt when (unix ms).
	SourceEnd   int64 `json:"source_end"`
	SourceEndAt int64 `json:"source_end_at_ms"`
}

// ProgressKey is the record key of slot's progress record.
func ProgressKey(slot int) []byte { return []byte("slot-" + strconv.Itoa(slot)) }

// EncodeProgress is a progress record's value.
func EncodeProgress(p *Progress) ([]byte, error) { return json.Marshal(p) }

// DecodeProgress parses a progress record's value.
func DecodeProgress(b []byte) (*Progress, error) {
	var p Progress
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode progress record: %w", err)
	}
	if p.Version != 1 {
		return nil, fmt.Errorf("progress record version %d is newer than this godwit understands; upgrade godwit", p.Version)
	}
	return &p, nil
}

// ReadProgress returns the last committed progress of one slot, or nil if
// the slot never committed. cl must be a client for the target cluster.
func ReadProgress(ctx context.Context, cl *kgo.Client, topic string, slot int) (*Progress, error) {
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("progress topic %s: list start offsets: %w", topic, err)
	}
	if err := starts.Error(); err != nil {
		return nil, fmt.Errorf("progress topic %s: list start offsets: %w", topic, err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("progress topic %s: list committed offsets: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("progress topic %s: list committed offsets: %w", topic, err)
	}
	s, ok1 := starts.Lookup(topic, int32(slot))
	e, ok2 := ends.Lookup(topic, int32(slot))
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("progress topic %s has no partition %d: the flow's slots setting must equal its progress topic's partition count", topic, slot)
	}
	rec, err := kafkautil.LastRecord(ctx, cl, topic, int32(slot), s.Offset, e.Offset, true)
	if err != nil {
		return nil, fmt.Errorf("progress topic %s[%d]: %w", topic, slot, err)
	}
	if rec == nil {
		return nil, nil
	}
	return DecodeProgress(rec.Value)
}
