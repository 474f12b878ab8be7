package flowstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/kafkautil"
)

// ObserveInterval is how often a replicator observes the source's end
// offsets of the partitions it owns and persists them on the target,
// whether or not data moves (invariant 6). It bounds what "data at risk"
// can miss: while the source is reachable and the target accepts the
// observation, at most what the source acknowledged in the last
// ObserveInterval (plus one write to the target) before it was lost.
const ObserveInterval = time.Second

// StaleObservation is the age after which a reader treats an observation
// as out of date: the source end offset is then "unknown since" the
// observation's time. Three intervals leave room for a slow write.
const StaleObservation = 3 * ObserveInterval

// Observation is one slot's record in the flow's observed topic
// (partition = slot, key = ObservedKey): the source's log start and end
// offsets of the slot's partitions, as the slot's owner last read them
// from the source. It is written on its own schedule, outside the data
// transactions, so it keeps moving while the target refuses data on some
// partitions.
type Observation struct {
	Version    int                    `json:"version"`
	Flow       string                 `json:"flow"`
	Slot       int                    `json:"slot"`
	WrittenAt  int64                  `json:"written_at_ms"`
	Partitions []PartitionObservation `json:"partitions"`
}

// PartitionObservation is one source partition's offsets when last read.
type PartitionObservation struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// LogStart and End are the source's log start offset and high
	// watermark, read at At (unix ms).
	LogStart int64 `json:"log_start"`
	End      int64 `json:"end"`
	At       int64 `json:"at_ms"`
}

// ObservedAt is when the observation was made.
func (o PartitionObservation) ObservedAt() time.Time { return time.UnixMilli(o.At).UTC() }

// Later returns whichever of a and b knows more of the source: the higher
// end offset (a high watermark only grows), and of equal ones the later.
// A zero At means "no observation".
func Later(a, b PartitionObservation) PartitionObservation {
	switch {
	case a.At == 0:
		return b
	case b.At == 0:
		return a
	case b.End > a.End, b.End == a.End && b.At > a.At:
		return b
	}
	return a
}

// FromProgress is the observation a progress record carries (the high
// watermark the slot saw when fetching), for flows whose observed topic
// is missing or behind.
func FromProgress(p PartitionProgress) PartitionObservation {
	if p.SourceEndAt == 0 || p.SourceEnd < 0 {
		return PartitionObservation{Topic: p.Topic, Partition: p.Partition}
	}
	return PartitionObservation{Topic: p.Topic, Partition: p.Partition, LogStart: -1, End: p.SourceEnd, At: p.SourceEndAt}
}

// ObservedKey is the record key of slot's observation.
func ObservedKey(slot int) []byte { return []byte("slot-" + strconv.Itoa(slot)) }

// EncodeObservation is an observation record's value.
func EncodeObservation(o *Observation) ([]byte, error) { return json.Marshal(o) }

// DecodeObservation parses an observation record's value.
func DecodeObservation(b []byte) (*Observation, error) {
	var o Observation
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("decode observation record: %w", err)
	}
	if o.Version != 1 {
		return nil, fmt.Errorf("observation record version %d is newer than this godwit understands; upgrade godwit", o.Version)
	}
	return &o, nil
}

// observedTail is how many of a slot partition's last records a reader
// merges: during a handover two instances may both write a slot for a
// moment, and the older observation may land last.
const observedTail = 8

// ReadObservations returns the latest persisted observation of every
// source partition in a flow's observed topic (cl: a client for the
// target). A missing topic (a flow last run by an older godwit) is an
// empty result, not an error: readers then use the progress records'
// observations alone.
func ReadObservations(ctx context.Context, cl *kgo.Client, topic string) (map[TP]PartitionObservation, error) {
	out := map[TP]PartitionObservation{}
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("observed topic %s: list start offsets: %w", topic, err)
	}
	if e, ok := starts[topic]; !ok || len(e) == 0 {
		return out, nil
	}
	if err := starts.Error(); err != nil {
		if isUnknownTopic(err) {
			return out, nil
		}
		return nil, fmt.Errorf("observed topic %s: list start offsets: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("observed topic %s: list end offsets: %w", topic, err)
	}
	var derr error
	ends.Each(func(e kadm.ListedOffset) {
		if derr != nil {
			return
		}
		s, _ := starts.Lookup(e.Topic, e.Partition)
		if e.Offset <= s.Offset {
			return
		}
		recs, err := kafkautil.ReadRange(ctx, cl, topic, e.Partition, max(e.Offset-observedTail, s.Offset), e.Offset, false)
		if err != nil {
			derr = fmt.Errorf("observed topic %s[%d]: %w", topic, e.Partition, err)
			return
		}
		for _, r := range recs {
			if r.Value == nil {
				continue
			}
			o, err := DecodeObservation(r.Value)
			if err != nil {
				derr = fmt.Errorf("observed topic %s[%d] offset %d: %w", topic, e.Partition, r.Offset, err)
				return
			}
			for _, po := range o.Partitions {
				tp := TP{Topic: po.Topic, Partition: po.Partition}
				out[tp] = Later(out[tp], po)
			}
		}
	})
	if derr != nil {
		return nil, derr
	}
	return out, nil
}

func isUnknownTopic(err error) bool { return errors.Is(err, kerr.UnknownTopicOrPartition) }
