package failback

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/replicate"
)

// ReverseResult is the reverse flow's state when it caught up.
type ReverseResult struct {
	Partitions []replicate.PartitionStatus `json:"partitions"`
	Lag        int64                       `json:"lag_records"`
	// Copied counts B records written to A by the reverse flow (from its
	// offset map), LoopFiltered the records on B that came from A and
	// were therefore not copied back.
	Copied       int64 `json:"copied_records"`
	LoopFiltered int64 `json:"loop_filtered_records"`
}

// ReverseFlow returns the B->A flow that replicates topics back: the
// config's own if it has one (it must use identical naming and select the
// topics), else one derived from A->B (identical naming, start earliest,
// same delivery and slots, no heartbeats, no ACL sync).
func ReverseFlow(cfg *config.Config, f *config.Flow, topics []string) (*config.Config, *config.Flow, error) {
	name := f.Target + "->" + f.Source
	if rf, ok := cfg.Flows[name]; ok {
		if rf.Naming != config.NamingIdentical {
			return nil, nil, fmt.Errorf("flow %s in the config uses naming %q; failback needs identical naming for the reverse flow: set naming: identical or remove it (failback then derives one)", name, rf.Naming)
		}
		pol := naming.For(rf)
		for _, t := range topics {
			if why := pol.Select(t); why != naming.Selected {
				return nil, nil, fmt.Errorf("flow %s in the config does not replicate %s (%s): add it to its topics or remove the flow (failback then derives one)", name, t, why)
			}
		}
		return cfg, rf, nil
	}
	data := cfg.Raw()
	if data == nil {
		return nil, nil, fmt.Errorf("cannot derive flow %s: the config was not loaded from a file; define flow %s (naming: identical) in it", name, name)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("derive flow %s: %w", name, err)
	}
	flows, _ := doc["flows"].(map[string]any)
	if flows == nil {
		return nil, nil, fmt.Errorf("derive flow %s: no flows in %s", name, cfg.Path())
	}
	quoted := make([]any, 0, len(topics))
	for _, t := range topics {
		quoted = append(quoted, regexp.QuoteMeta(t))
	}
	flows[name] = map[string]any{
		"naming": config.NamingIdentical, "topics": quoted, "start": config.StartEarliest,
		"delivery": f.Delivery, "slots": f.Slots, "heartbeats": false, "sync_acls": false,
		"sync_group_offsets": false, "max_batch_bytes": f.MaxBatchBytes, "memory_budget": int64(f.MemoryBudget),
		"commit_interval": f.CommitInterval.D().String(), "refresh_interval": f.RefreshInterval.D().String(),
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, nil, err
	}
	rc, err := config.Parse(cfg.Path(), out)
	if err != nil {
		return nil, nil, fmt.Errorf("derive flow %s: %w", name, err)
	}
	return rc, rc.Flows[name], nil
}

// reverse runs the B->A flow in this process until every partition of the
// topics is copied to B's end offset (lag 0), bounded by Timeout. The
// flow keeps running until the groups moved (or the run ends).
func (r *runner) reverse(ctx context.Context) (*ReverseResult, error) {
	topics := r.params().Topics
	if !r.o.DryRun {
		r.startReverse()
	}
	deadline := r.now().Add(r.o.Timeout)
	dadm := kadm.NewClient(r.dcl)
	for {
		ends, err := dadm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return nil, cluster.Explain(r.dst, err)
		}
		st, err := replicate.Status(ctx, r.revCfg, r.rev)
		if err != nil {
			return nil, err
		}
		res := &ReverseResult{Partitions: []replicate.PartitionStatus{}}
		want := map[flowstate.TP]int64{}
		ends.Each(func(o kadm.ListedOffset) { want[flowstate.TP{Topic: o.Topic, Partition: o.Partition}] = o.Offset })
		for _, p := range st.Partitions {
			tp := flowstate.TP{Topic: p.SourceTopic, Partition: p.Partition}
			if end, ok := want[tp]; ok {
				p.SourceEndOffset = end
				p.LagRecords = max(end-p.ReplicatedOffset, 0)
				res.Partitions = append(res.Partitions, p)
				res.Lag += p.LagRecords
				delete(want, tp)
			}
		}
		for tp, end := range want { // not started yet
			res.Partitions = append(res.Partitions, replicate.PartitionStatus{SourceTopic: tp.Topic, TargetTopic: tp.Topic, Partition: tp.Partition, SourceEndOffset: end, LagRecords: end})
			res.Lag += end
		}
		sort.Slice(res.Partitions, func(i, j int) bool {
			a, b := res.Partitions[i], res.Partitions[j]
			if a.SourceTopic != b.SourceTopic {
				return a.SourceTopic < b.SourceTopic
			}
			return a.Partition < b.Partition
		})
		if res.Lag == 0 || r.o.DryRun {
			r.countReverse(ctx, res)
			return res, nil
		}
		if r.now().After(deadline) {
			return res, fmt.Errorf("reverse flow %s: lag did not reach 0 within %s (%d records remain); are producers still writing on %s? run godwit failback again to continue",
				r.rev.Name, r.o.Timeout, res.Lag, r.o.Flow.Target)
		}
		if err := kafkautil.Sleep(ctx, 250*time.Millisecond); err != nil {
			return res, err
		}
	}
}

// countReverse counts, from the reverse flow's offset map on A, the
// records it copied and those it left out as coming from A.
func (r *runner) countReverse(ctx context.Context, res *ReverseResult) {
	store := offsets.NewStore(r.rev, r.scl)
	if err := store.Refresh(ctx); err != nil {
		return
	}
	for _, p := range res.Partitions {
		ix := store.Index(flowstate.TP{Topic: p.SourceTopic, Partition: p.Partition})
		if ix == nil {
			continue
		}
		for _, run := range ix.Runs() {
			if run.Origin {
				res.LoopFiltered += run.Count
			} else {
				res.Copied += run.Count
			}
		}
	}
}

func (r *runner) startReverse() {
	r.stopRev()
	log := r.log.With("reverse", r.rev.Name)
	src, err1 := cluster.New(r.revCfg, r.rev.Source)
	dst, err2 := cluster.New(r.revCfg, r.rev.Target)
	if err1 != nil || err2 != nil {
		return
	}
	fl := replicate.NewFlow(replicate.Options{Flow: r.rev, Source: src, Target: dst, Logger: log, Metrics: replicate.NewMetrics(prometheus.NewRegistry())})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fl.Run(ctx); err != nil {
			log.Error("reverse flow stopped", "err", err)
		}
	}()
	r.stopRev = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
		r.stopRev = func() {}
	}
}
