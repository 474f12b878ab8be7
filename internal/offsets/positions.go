package offsets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
)

// How a group position on the target was learnt, for reports.
const (
	// MethodOffsetFetch: the checkpoint loop read the group's committed
	// offsets from the source with batched OffsetFetch (KIP-709) every
	// group_position_interval.
	MethodOffsetFetch = "offset_fetch"
)

// PositionsTopic is a flow's confirmation topic on the target: one
// compacted record saying until when every selected group's position in
// the checkpoints topic was current. Checkpoints are only written when
// they change, so a quiet group's newest checkpoint can be old and still
// current; this record says so. Kept out of the checkpoints topic, whose
// records are MirrorMaker 2's format and nothing else.
func PositionsTopic(f *config.Flow) string {
	return naming.InternalPrefix + f.Source + "-" + f.Target + ".positions.internal"
}

// Confirmation is the positions topic's record.
type Confirmation struct {
	Version int `json:"version"`
	// ObservedAt (Unix ms): every selected group's commit that the
	// source had acknowledged before it is in the checkpoints topic.
	ObservedAt int64 `json:"observed_at"`
	// Groups is how many groups with committed offsets the pass read.
	Groups int    `json:"groups"`
	Method string `json:"method"`
}

const confirmationKey = "positions"

func confirmationRecord(topic string, observed time.Time, groups int) *kgo.Record {
	v, _ := json.Marshal(Confirmation{Version: 1, ObservedAt: observed.UnixMilli(), Groups: groups, Method: MethodOffsetFetch})
	return &kgo.Record{Topic: topic, Partition: 0, Key: []byte(confirmationKey), Value: v, Timestamp: observed}
}

// ReadConfirmation returns the flow's last confirmation (nil if none was
// written: an older godwit, or the loop never completed a pass).
func ReadConfirmation(ctx context.Context, cl *kgo.Client, f *config.Flow) (*Confirmation, error) {
	topic := PositionsTopic(f)
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("positions topic %s: list end offsets: %w", topic, err)
	}
	e, ok := ends.Lookup(topic, 0)
	if !ok || errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
		return nil, nil
	}
	if e.Err != nil {
		return nil, fmt.Errorf("positions topic %s: %w", topic, e.Err)
	}
	if e.Offset == 0 {
		return nil, nil
	}
	rec, err := kafkautil.LastRecord(ctx, cl, topic, 0, 0, e.Offset, true)
	if err != nil || rec == nil {
		return nil, err
	}
	var c Confirmation
	if err := json.Unmarshal(rec.Value, &c); err != nil {
		return nil, fmt.Errorf("positions topic %s offset %d: %w", topic, rec.Offset, err)
	}
	return &c, nil
}

// followInterval is the checkpoint loop's tick: group_position_interval,
// never longer than checkpoint_interval.
func followInterval(f *config.Flow) time.Duration {
	d := f.GroupPositionInterval.D()
	if d <= 0 {
		d = config.DefaultGroupPositionInterval
	}
	return min(d, f.CheckpointInterval.D())
}
