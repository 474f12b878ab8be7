package failover

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/flowstate"
)

// lagResult is wait_lag's and assess's detail.
type lagResult struct {
	Partitions []PartitionReport `json:"partitions"`
	RPO        RPO               `json:"rpo"`
}

// waitLag waits until every partition of the selected topics is
// replicated to the source's end offset (planned).
func (r *runner) waitLag(ctx context.Context) (*lagResult, error) {
	f := r.o.Flow
	scl, err := r.src.Client(f.Name+"-failover-lag", r.log, kgo.RetryTimeout(r.o.SourceTimeout))
	if err != nil {
		return nil, err
	}
	defer scl.Close()
	sadm := kadm.NewClient(scl)
	topics := r.params().Topics
	deadline := r.now().Add(r.o.Timeout)
	var last lagResult
	for {
		ends, err := sadm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return nil, cluster.Explain(r.src, fmt.Errorf("flow %s: list source end offsets: %w", f.Name, err))
		}
		observed := r.now().UTC()
		store, err := r.store(ctx)
		if err != nil {
			return nil, err
		}
		last = lagResult{}
		ends.Each(func(o kadm.ListedOffset) {
			p, ok := store.Progress(flowstate.TP{Topic: o.Topic, Partition: o.Partition})
			pr := PartitionReport{SourceTopic: o.Topic, TargetTopic: store.TargetTopic(o.Topic), Partition: o.Partition,
				SourceEndOffset: o.Offset, SourceEndObservedAt: observed}
			if ok {
				pr.ReplicatedOffset = p.Next
			}
			pr.AtRiskRecords = max(pr.SourceEndOffset-pr.ReplicatedOffset, 0)
			last.Partitions = append(last.Partitions, pr)
			last.RPO.Records += pr.AtRiskRecords
		})
		sortPartitions(last.Partitions)
		if last.RPO.Records == 0 || r.o.DryRun {
			return &last, nil
		}
		if r.now().After(deadline) {
			var rem []string
			for _, p := range last.Partitions {
				if p.AtRiskRecords > 0 {
					rem = append(rem, fmt.Sprintf("%s[%d]=%d", p.SourceTopic, p.Partition, p.AtRiskRecords))
				}
			}
			return &last, fmt.Errorf("%w (%s): %d records remain to copy: %s; is godwit replicate running for %s? re-run godwit failover to continue, or with a longer --timeout",
				ErrLagTimeout, r.o.Timeout, last.RPO.Records, strings.Join(rem, " "), f.Name)
		}
		select {
		case <-ctx.Done():
			return &last, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func sortPartitions(ps []PartitionReport) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].SourceTopic != ps[j].SourceTopic {
			return ps[i].SourceTopic < ps[j].SourceTopic
		}
		return ps[i].Partition < ps[j].Partition
	})
}
