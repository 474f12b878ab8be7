package replicate

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/naming"
)

// FlowStatus is the JSON contract of `godwit status`.
type FlowStatus struct {
	Flow       string            `json:"flow"`
	Partitions []PartitionStatus `json:"partitions"`
	// SourceError is set when the source could not be reached; the
	// partitions then show the last observation stored on the target.
	SourceError string `json:"source_error,omitempty"`
}

// PartitionStatus is one partition's replication position.
type PartitionStatus struct {
	SourceTopic      string `json:"source_topic"`
	TargetTopic      string `json:"target_topic"`
	Partition        int32  `json:"partition"`
	SourceEndOffset  int64  `json:"source_end_offset"`
	ReplicatedOffset int64  `json:"replicated_offset"`
	LagRecords       int64  `json:"lag_records"`
	// SourceEndObservedAt is when SourceEndOffset was read: now when the
	// source answered, else the replicator's last stored observation.
	SourceEndObservedAt time.Time `json:"source_end_observed_at"`
	Slot                int       `json:"slot"`
	ProgressWrittenAt   time.Time `json:"progress_written_at"`
}

// Status reads a flow's stored progress from the target and the source's
// current end offsets (falling back to the stored observation when the
// source is unreachable).
func Status(ctx context.Context, cfg *config.Config, f *config.Flow) (*FlowStatus, error) {
	src, err := cluster.New(cfg, f.Source)
	if err != nil {
		return nil, err
	}
	dst, err := cluster.New(cfg, f.Target)
	if err != nil {
		return nil, err
	}
	dcl, err := dst.Client(f.Name+"-status", nil, kgo.RetryTimeout(15*time.Second))
	if err != nil {
		return nil, err
	}
	defer dcl.Close()
	topic := naming.ProgressTopic(f)
	dadm := kadm.NewClient(dcl)
	td, err := dadm.ListTopics(ctx, topic)
	if err != nil {
		return nil, cluster.Explain(dst, fmt.Errorf("flow %s: describe %s: %w", f.Name, topic, err))
	}
	out := &FlowStatus{Flow: f.Name, Partitions: []PartitionStatus{}}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		return out, nil // never ran: nothing replicated yet
	}
	for slot := range len(d.Partitions) {
		p, err := flowstate.ReadProgress(ctx, dcl, topic, slot)
		if err != nil {
			return nil, cluster.Explain(dst, err)
		}
		if p == nil {
			continue
		}
		for _, pp := range p.Partitions {
			out.Partitions = append(out.Partitions, PartitionStatus{
				SourceTopic: pp.Topic, TargetTopic: pp.TargetTopic, Partition: pp.Partition,
				SourceEndOffset: pp.SourceEnd, ReplicatedOffset: pp.Next,
				SourceEndObservedAt: time.UnixMilli(pp.SourceEndAt).UTC(), Slot: slot,
				ProgressWrittenAt: time.UnixMilli(p.WrittenAt).UTC(),
			})
		}
	}
	sort.Slice(out.Partitions, func(i, j int) bool {
		a, b := out.Partitions[i], out.Partitions[j]
		if a.SourceTopic != b.SourceTopic {
			return a.SourceTopic < b.SourceTopic
		}
		return a.Partition < b.Partition
	})
	// Current source end offsets, bounded: status must answer when the
	// source region is gone.
	scl, err := src.Client(f.Name+"-status", nil, kgo.RetryTimeout(5*time.Second))
	if err == nil {
		defer scl.Close()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		topics := map[string]bool{}
		for _, p := range out.Partitions {
			topics[p.SourceTopic] = true
		}
		var ends kadm.ListedOffsets
		if len(topics) > 0 {
			ends, err = kadm.NewClient(scl).ListEndOffsets(sctx, slices.Sorted(maps.Keys(topics))...)
		}
		if err != nil {
			out.SourceError = cluster.Explain(src, err).Error()
		} else {
			now := time.Now().UTC()
			for i := range out.Partitions {
				p := &out.Partitions[i]
				if e, ok := ends.Lookup(p.SourceTopic, p.Partition); ok && e.Err == nil {
					p.SourceEndOffset, p.SourceEndObservedAt = e.Offset, now
				}
			}
		}
	}
	for i := range out.Partitions {
		p := &out.Partitions[i]
		p.LagRecords = max(p.SourceEndOffset-p.ReplicatedOffset, 0)
	}
	return out, nil
}
