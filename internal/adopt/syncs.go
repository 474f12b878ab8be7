package adopt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/kafkautil"
)

// OffsetSyncsTopic is MirrorMaker 2's offset-syncs topic of a flow whose
// target alias is target (DefaultReplicationPolicy.offsetSyncsTopic). MM2
// keeps it on the source cluster unless offset-syncs.topic.location =
// target.
func OffsetSyncsTopic(target string) string { return "mm2-offset-syncs." + target + ".internal" }

// Sync is one MirrorMaker 2 offset sync: the source record at Upstream is
// the target record at Downstream (MM2 takes both from the produce
// acknowledgement of that record).
type Sync struct {
	Upstream   int64 `json:"upstream"`
	Downstream int64 `json:"downstream"`
}

// decodeSync parses an offset-sync record. Key: topic (INT16 length +
// UTF-8), partition INT32; value: upstream INT64, downstream INT64 (Kafka
// protocol types, big endian, no version field), the source partition.
func decodeSync(key, value []byte) (flowstate.TP, Sync, error) {
	if len(key) < 2 {
		return flowstate.TP{}, Sync{}, errors.New("offset sync key truncated")
	}
	n := int(binary.BigEndian.Uint16(key))
	if len(key) != 2+n+4 {
		return flowstate.TP{}, Sync{}, fmt.Errorf("offset sync key has %d bytes, want %d", len(key), 2+n+4)
	}
	tp := flowstate.TP{Topic: string(key[2 : 2+n]), Partition: int32(binary.BigEndian.Uint32(key[2+n:]))}
	if len(value) != 16 {
		return tp, Sync{}, fmt.Errorf("offset sync value has %d bytes, want 16", len(value))
	}
	return tp, Sync{Upstream: int64(binary.BigEndian.Uint64(value)), Downstream: int64(binary.BigEndian.Uint64(value[8:]))}, nil
}

// encodeSync is decodeSync's inverse (tests write MM2-format syncs).
func encodeSync(tp flowstate.TP, s Sync) (key, value []byte) {
	key = binary.BigEndian.AppendUint16(nil, uint16(len(tp.Topic)))
	key = append(key, tp.Topic...)
	key = binary.BigEndian.AppendUint32(key, uint32(tp.Partition))
	value = binary.BigEndian.AppendUint64(nil, uint64(s.Upstream))
	value = binary.BigEndian.AppendUint64(value, uint64(s.Downstream))
	return key, value
}

// topicExists says whether topic exists on the cluster of adm.
func topicExists(ctx context.Context, adm *kadm.Client, topic string) (bool, error) {
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return false, err
	}
	d, ok := td[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return false, nil
	}
	return d.Err == nil, d.Err
}

// readSyncs reads every offset sync in topic, in log order per source
// partition (a later sync for the same partition is newer).
func readSyncs(ctx context.Context, cl *kgo.Client, topic string) (map[flowstate.TP][]Sync, error) {
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[flowstate.TP][]Sync{}
	for p, e := range ends[topic] {
		if e.Err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", topic, p, e.Err)
		}
		s, _ := starts.Lookup(topic, p)
		recs, err := kafkautil.ReadRange(ctx, cl, topic, p, s.Offset, e.Offset, false)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", topic, p, err)
		}
		for _, r := range recs {
			tp, sy, err := decodeSync(r.Key, r.Value)
			if err != nil {
				return nil, fmt.Errorf("%s[%d] offset %d: %w (is this MirrorMaker 2's offset-syncs topic?)", topic, p, r.Offset, err)
			}
			out[tp] = append(out[tp], sy)
		}
	}
	return out, nil
}
