// Package kafkautil holds small Kafka primitives several godwit components
// need: exact reads of an offset range, and the last committed record of a
// partition. They issue raw fetches so the caller knows precisely where a
// read stopped, which a consumer's background prefetching hides.
package kafkautil

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var decompressor = kgo.DefaultDecompressor()

// ReadRange returns every record of topic/partition with from <= offset <
// to (for committed reads, records of aborted transactions and control
// records are left out). A from below the log start is raised to it. The
// read ends early, without error, at the last stable offset when to lies
// beyond it.
func ReadRange(ctx context.Context, cl *kgo.Client, topic string, partition int32, from, to int64, committed bool) ([]*kgo.Record, error) {
	var out []*kgo.Record
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	for attempt := 0; from < to; {
		leader, topicID, err := leaderOf(ctx, cl, topic, partition, attempt > 0)
		if err != nil {
			return nil, err
		}
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MinBytes = 0
		req.MaxBytes = 32 << 20
		if committed {
			req.IsolationLevel = 1
		}
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rt.TopicID = topicID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = partition
		rp.FetchOffset = from
		rp.LogStartOffset = -1
		rp.PartitionMaxBytes = 16 << 20
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			attempt++
			if attempt > 10 {
				return nil, fmt.Errorf("fetch %s[%d] at %d: %w", topic, partition, from, err)
			}
			if err := Sleep(ctx, time.Duration(attempt)*100*time.Millisecond); err != nil {
				return nil, err
			}
			continue
		}
		if err := kerr.ErrorForCode(kresp.ErrorCode); err != nil {
			return nil, fmt.Errorf("fetch %s[%d]: %w", topic, partition, err)
		}
		if len(kresp.Topics) != 1 || len(kresp.Topics[0].Partitions) != 1 {
			return nil, fmt.Errorf("fetch %s[%d]: malformed response", topic, partition)
		}
		rpResp := &kresp.Topics[0].Partitions[0]
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Offset: from, IsolationLevel: iso, Topic: topic, Partition: partition,
		}, rpResp, decompressor, nil)
		if fp.Err != nil {
			switch {
			case errors.Is(fp.Err, kerr.OffsetOutOfRange) && fp.LogStartOffset > from:
				from = fp.LogStartOffset
				continue
			case kerr.IsRetriable(fp.Err) || errors.Is(fp.Err, kerr.NotLeaderForPartition) || errors.Is(fp.Err, kerr.UnknownTopicOrPartition):
				attempt++
				if attempt > 10 {
					return nil, fmt.Errorf("fetch %s[%d] at %d: %w", topic, partition, from, fp.Err)
				}
				if err := Sleep(ctx, time.Duration(attempt)*100*time.Millisecond); err != nil {
					return nil, err
				}
				continue
			default:
				return nil, fmt.Errorf("fetch %s[%d] at %d: %w", topic, partition, from, fp.Err)
			}
		}
		attempt = 0
		for _, r := range fp.Records {
			if r.Offset >= to {
				return out, nil
			}
			out = append(out, r)
		}
		limit := fp.HighWatermark
		if committed {
			limit = fp.LastStableOffset
		}
		if next <= from {
			// Nothing more is readable: we reached the high watermark
			// (or the last stable offset for committed reads).
			if from >= limit {
				return out, nil
			}
			return nil, fmt.Errorf("fetch %s[%d] at %d: no progress below offset %d", topic, partition, from, limit)
		}
		from = next
		if from >= limit {
			return out, nil
		}
	}
	return out, nil
}

// LastRecord returns the last record below end (typically the last stable
// offset) of topic/partition, or nil if there is none at or after start.
// It reads backwards in growing windows, so it is cheap on a partition
// whose tail holds the record, as godwit's progress partitions do.
func LastRecord(ctx context.Context, cl *kgo.Client, topic string, partition int32, start, end int64, committed bool) (*kgo.Record, error) {
	for window := int64(32); ; window *= 4 {
		from := max(end-window, start)
		recs, err := ReadRange(ctx, cl, topic, partition, from, end, committed)
		if err != nil {
			return nil, err
		}
		if len(recs) > 0 {
			return recs[len(recs)-1], nil
		}
		if from == start {
			return nil, nil
		}
		end = from
	}
}

func leaderOf(ctx context.Context, cl *kgo.Client, topic string, partition int32, refresh bool) (int32, [16]byte, error) {
	limit := time.Minute
	if refresh {
		limit = 0
	}
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	var md *kmsg.MetadataResponse
	var err error
	if refresh {
		md, err = req.RequestWith(ctx, cl)
	} else {
		md, err = cl.RequestCachedMetadata(ctx, req, limit)
	}
	if err != nil {
		return 0, [16]byte{}, fmt.Errorf("metadata for %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return 0, [16]byte{}, fmt.Errorf("metadata for %s: %w", topic, err)
		}
		for _, p := range t.Partitions {
			if p.Partition == partition {
				if p.Leader < 0 {
					return 0, [16]byte{}, fmt.Errorf("%s[%d] has no leader", topic, partition)
				}
				return p.Leader, t.TopicID, nil
			}
		}
		return 0, [16]byte{}, fmt.Errorf("%s has no partition %d: %w", topic, partition, kerr.UnknownTopicOrPartition)
	}
	return 0, [16]byte{}, fmt.Errorf("topic %s: %w", topic, kerr.UnknownTopicOrPartition)
}

// Sleep waits for d or until ctx ends (then it returns ctx.Err()).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
