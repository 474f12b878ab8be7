package journal

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/naming"
)

// Failback state lives next to the journal, on the flow's target (B of
// A->B), in the compacted single-partition topic
// godwit.<A>-<B>.failback.internal. Its one key, "state", holds the
// current or last failback operation and, per failed-over source
// partition, how much of A's unreplicated tail was copied. It is only
// written through the flow's journal writer (TransactionalID), in the same
// transaction as the tail records it describes, so a crashed copy resumes
// without duplicates, and a second failback (or a failover) of the flow
// fences the first. Step events go to the journal's event partition like
// failover's.

// FailbackState is a flow's failback state.
type FailbackState struct {
	Version   int       `json:"version"`
	Flow      string    `json:"flow"`
	UpdatedAt time.Time `json:"updated_at"`
	// Op is the current (unfinished) or last failback operation; its Done
	// map holds every finished step's result.
	Op *Op `json:"operation,omitempty"`
	// Tail is, per source partition ("topic/partition"), the tail plan and
	// how far its copy got (committed with the copied records).
	Tail map[string]*TailProgress `json:"tail,omitempty"`
}

// TailProgress is one source partition's unreplicated tail: source
// offsets [From, To) on A, copied up to Next.
type TailProgress struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// To is where the copy goes: the flow's target topic (recover) or the
	// quarantine topic.
	To          string `json:"to_topic"`
	From        int64  `json:"from"`
	End         int64  `json:"end"`
	Next        int64  `json:"next"`
	Copied      int64  `json:"copied"`
	Filtered    int64  `json:"filtered,omitempty"`
	TargetFirst int64  `json:"target_first,omitempty"`
	TargetLast  int64  `json:"target_last,omitempty"`
}

// TailKey is the key of a partition in FailbackState.Tail.
func TailKey(topic string, partition int32) string {
	return topic + "/" + strconv.Itoa(int(partition))
}

// ReadFailbackState returns the flow's failback state (empty if none)
// from its target cluster, read committed.
func ReadFailbackState(ctx context.Context, cl *kgo.Client, f *config.Flow) (*FailbackState, error) {
	s := &FailbackState{Version: Version, Flow: f.Name}
	if err := readState(ctx, cl, naming.FailbackTopic(f), "failback state", s, &s.Version); err != nil {
		return nil, err
	}
	if s.Tail == nil {
		s.Tail = map[string]*TailProgress{}
	}
	return s, nil
}

// FailbackRecord encodes the state as the record to produce (in the
// caller's transaction).
func FailbackRecord(f *config.Flow, s *FailbackState) (*kgo.Record, error) {
	s.Version, s.Flow = Version, f.Name
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: naming.FailbackTopic(f), Partition: 0, Key: stateKey, Value: b, Timestamp: s.UpdatedAt}, nil
}

// Restore removes topics from the failed-over set: the flow's replicator
// picks them up again from their frozen progress. It returns the topics
// that were failed over.
func (s *FlowState) Restore(topics []string) []string {
	var out []string
	for _, t := range topics {
		if _, ok := s.Topics[t]; ok {
			delete(s.Topics, t)
			out = append(out, t)
		}
	}
	return out
}

// WriteEvents writes journal events only (keys "<operation>/<run>/<seq>").
func (w *Writer) WriteEvents(ctx context.Context, evs ...Event) error {
	return w.Write(ctx, nil, evs...)
}
