package failback

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/offsets"
)

// groupsResult is move_groups's detail.
type groupsResult struct {
	Groups []GroupReport `json:"groups"`
}

// topicsResult is restore's detail: the topics it gave back to the flow.
type topicsResult struct {
	Topics []string `json:"topics"`
}

// moveGroups translates the selected groups' committed offsets on B to A
// through the reverse flow's offset map and commits them on A for groups
// with no active members on either side.
func (r *runner) moveGroups(ctx context.Context) (*groupsResult, error) {
	f := r.o.Flow
	topics := map[string]bool{}
	for _, t := range r.params().Topics {
		topics[t] = true
	}
	dadm, sadm := kadm.NewClient(r.dcl), kadm.NewClient(r.scl)
	listed, err := dadm.ListGroups(ctx)
	if err != nil {
		var se *kadm.ShardErrors
		if !errors.As(err, &se) || se.AllFailed {
			return nil, cluster.Explain(r.dst, fmt.Errorf("list groups on %s: %w", f.Target, err))
		}
	}
	var groups []string
	for g, lg := range listed {
		if strings.HasPrefix(g, naming.InternalPrefix) || (lg.ProtocolType != "" && lg.ProtocolType != "consumer") {
			continue
		}
		if r.o.Groups != nil && !r.o.Groups.MatchString(g) || r.o.Groups == nil && !f.GroupSelected(g) {
			continue
		}
		groups = append(groups, g)
	}
	sort.Strings(groups)
	committed, err := offsets.FetchGroupOffsets(ctx, dadm, groups)
	if err != nil {
		return nil, cluster.Explain(r.dst, err)
	}
	store := offsets.NewStore(r.rev, r.scl)
	if err := store.Refresh(ctx); err != nil && !errors.Is(err, offsets.ErrNotRun) {
		return nil, cluster.Explain(r.src, err)
	}
	out := []GroupReport{}
	var names []string
	for _, g := range groups {
		gr := GroupReport{Group: g, Partitions: []GroupPartition{}}
		for tp, c := range committed[g] {
			if !topics[tp.Topic] {
				continue
			}
			gp := GroupPartition{Topic: tp.Topic, Partition: tp.Partition, BOffset: c.Offset, Metadata: c.Metadata}
			p, ok := store.Progress(tp)
			ix := store.Index(tp)
			switch {
			case !ok || p.Next < c.Offset:
				gp.Untranslate = "the reverse flow has not copied this far"
			case ix == nil:
				gp.Untranslate = "nothing mapped on this partition"
			default:
				var ok bool
				gp.AOffset, gp.Replay, ok = offsets.TranslateBack(ix.Runs(), c.Offset)
				if !ok {
					gp.Untranslate = "nothing mapped on this partition"
				}
			}
			gr.Partitions = append(gr.Partitions, gp)
		}
		if len(gr.Partitions) == 0 {
			continue
		}
		sort.Slice(gr.Partitions, func(i, j int) bool {
			a, b := gr.Partitions[i], gr.Partitions[j]
			if a.Topic != b.Topic {
				return a.Topic < b.Topic
			}
			return a.Partition < b.Partition
		})
		out = append(out, gr)
		names = append(names, g)
	}
	if len(names) == 0 || r.o.DryRun {
		return &groupsResult{Groups: out}, nil
	}
	// Both group protocols on both clusters: a KIP-848 group with members
	// is invisible to DescribeGroups alone.
	onB, errB := kafkautil.NewGroupInspector(dadm).Describe(ctx, names...)
	if errB != nil {
		return nil, cluster.Explain(r.dst, fmt.Errorf("describe groups on %s: %w", f.Target, errB))
	}
	onA, errA := kafkautil.NewGroupInspector(sadm).Describe(ctx, names...)
	if errA != nil {
		return nil, cluster.Explain(r.src, fmt.Errorf("describe groups on %s: %w", f.Source, errA))
	}
	var stillOnB []string
	for i := range out {
		g := &out[i]
		if b := onB[g.Group]; b.Err != nil || b.Active() {
			why := fmt.Sprintf("state %s, %d members", b.State, b.Members)
			if b.Err != nil {
				why = "cannot describe it: " + b.Err.Error()
			}
			g.Skipped = "consumers may still be active on " + f.Target + " (" + why + "): stop them and run failback again"
			stillOnB = append(stillOnB, g.Group)
			continue
		}
		var offs kadm.Offsets
		for _, p := range g.Partitions {
			if p.Untranslate == "" {
				offs.Add(kadm.Offset{Topic: p.Topic, Partition: p.Partition, At: p.AOffset, LeaderEpoch: -1, Metadata: p.Metadata})
			}
		}
		g.Skipped = kafkautil.CommitIfIdle(ctx, sadm, g.Group, onA[g.Group], f.Source, offs)
		g.Committed = g.Skipped == ""
	}
	if len(stillOnB) > 0 {
		// Not restoring yet: the next run moves them once they stopped.
		return &groupsResult{Groups: out}, fmt.Errorf("groups still consuming on %s: %s; stop them there and run godwit failback --switch again (the other groups are committed on %s)",
			f.Target, strings.Join(stillOnB, ", "), f.Source)
	}
	return &groupsResult{Groups: out}, nil
}

// restore stops the reverse flow and clears the failed-over mark: the
// A->B replicator picks the topics up again from their (advanced)
// progress.
func (r *runner) restore(ctx context.Context) (*topicsResult, error) {
	r.stopRev()
	if r.o.DryRun {
		return &topicsResult{Topics: r.params().Topics}, nil
	}
	st, err := journal.ReadFlowState(ctx, r.dcl, r.o.Flow)
	if err != nil {
		return nil, cluster.Explain(r.dst, err)
	}
	restored := st.Restore(r.params().Topics)
	st.UpdatedAt = r.now().UTC()
	if err := r.run.Writer().Write(ctx, st); err != nil {
		return nil, r.explain(err)
	}
	return &topicsResult{Topics: restored}, nil
}
