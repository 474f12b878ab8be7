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

// What a group position's age in a failover report rests on.
const (
	// BasisLive: read from the source at the failover (planned).
	BasisLive = "live"
	// BasisConfirmation: the group's checkpoints, confirmed current at
	// the positions record's observation time (godwit's checkpoint loop
	// wrote it after the checkpoints of the same pass).
	BasisConfirmation = "positions_confirmation"
	// BasisCheckpoint: only the time stamp of the group's newest
	// checkpoint record (no positions record newer than it: an older
	// godwit, or MirrorMaker 2's checkpoints). The position may have been
	// current later; the age is an upper bound.
	BasisCheckpoint = "checkpoint_timestamp"
)

// Position says where a group's position came from and when the source
// had it.
type Position struct {
	Basis      string
	ObservedAt time.Time
}

// GroupPositions returns, per group with checkpoints, when its position
// was last known current on the source: the positions confirmation when
// it is at least as new as the group's newest checkpoint (checkpoints are
// written only when they change, so a quiet group's checkpoints are old
// and current), else that checkpoint's time stamp. conf may be nil.
//
// The confirmation covers the groups the loop's last full pass listed; a
// group deleted on the source keeps its last checkpoints, and its
// position's age is then understated.
func GroupPositions(cks []StoredCheckpoint, conf *Confirmation) map[string]Position {
	newest := map[string]time.Time{}
	for _, c := range cks {
		if c.Written.After(newest[c.Group]) {
			newest[c.Group] = c.Written
		}
	}
	out := make(map[string]Position, len(newest))
	for g, at := range newest {
		if conf != nil && !time.UnixMilli(conf.ObservedAt).Before(at.Truncate(time.Millisecond)) {
			out[g] = Position{Basis: BasisConfirmation, ObservedAt: time.UnixMilli(conf.ObservedAt).UTC()}
			continue
		}
		out[g] = Position{Basis: BasisCheckpoint, ObservedAt: at.UTC()}
	}
	return out
}

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
