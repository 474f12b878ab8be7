package failover

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/offsets"
)

func (r *runner) groupSelected(g string) bool {
	if strings.HasPrefix(g, naming.InternalPrefix) {
		return false
	}
	if p := r.params(); p.Groups != "" {
		re, err := regexp.Compile(`^(?:` + p.Groups + `)$`)
		return err == nil && re.MatchString(g)
	}
	if r.o.Groups != nil {
		return r.o.Groups.MatchString(g)
	}
	return r.o.Flow.GroupSelected(g)
}

// groupsResult is final_offset_sync's and assess's group part.
type groupsResult struct {
	Groups []GroupReport `json:"groups"`
}

func (g *groupsResult) groups() []GroupReport {
	if g == nil {
		return nil
	}
	return g.Groups
}

func (a *assessResult) groups() []GroupReport {
	if a == nil {
		return nil
	}
	return a.Groups
}

// finalSync translates the selected source groups' committed offsets
// with the final offset map (planned; lag is 0), and writes the flow's
// checkpoints one last time.
func (r *runner) finalSync(ctx context.Context) (*groupsResult, error) {
	f := r.o.Flow
	// The checkpoint pass (MirrorMaker 2 checkpoints and the sync of idle
	// target groups) as the replicator runs it, once more: best effort.
	if !r.o.DryRun {
		sy := offsets.NewSyncer(offsets.Options{Flow: f, Source: r.src, Target: r.dst, Logger: r.log,
			Metrics: offsets.NewMetrics(prometheus.NewRegistry())})
		if _, err := sy.Pass(ctx); err != nil {
			r.log.Warn("final checkpoint pass failed; translating the groups anyway", "err", err)
		}
		sy.Close()
	}
	scl, err := r.src.Client(f.Name+"-failover-groups", r.log, kgo.RetryTimeout(r.o.SourceTimeout))
	if err != nil {
		return nil, err
	}
	defer scl.Close()
	sadm := kadm.NewClient(scl)
	listed, err := sadm.ListGroups(ctx)
	if err != nil {
		var se *kadm.ShardErrors
		if !errors.As(err, &se) || se.AllFailed {
			return nil, cluster.Explain(r.src, fmt.Errorf("flow %s: list source groups: %w", f.Name, err))
		}
	}
	var groups []string
	for g, lg := range listed {
		if r.groupSelected(g) && (lg.ProtocolType == "" || lg.ProtocolType == "consumer") {
			groups = append(groups, g)
		}
	}
	sort.Strings(groups)
	committed, err := offsets.FetchGroupOffsets(ctx, sadm, groups)
	if err != nil {
		return nil, cluster.Explain(r.src, err)
	}
	fetchedAt := r.now().UTC()
	store, err := r.store(ctx)
	if err != nil {
		return nil, err
	}
	res := &groupsResult{Groups: r.translate(ctx, store, committed, offsets.FromSource)}
	for i := range res.Groups {
		g := &res.Groups[i]
		g.PositionBasis, g.PositionObservedAt = offsets.BasisLive, &fetchedAt
		g.PositionAgeSeconds = max(0, r.op.StartedAt.Sub(fetchedAt).Seconds())
	}
	return res, nil
}

// translate translates groups' source offsets on the selected topics.
func (r *runner) translate(ctx context.Context, store *offsets.Store, committed map[string]map[flowstate.TP]offsets.Committed, from string) []GroupReport {
	topics := r.topicSet()
	var all []flowstate.TP
	for _, offs := range committed {
		for tp := range offs {
			if !topics[tp.Topic] {
				delete(offs, tp)
				continue
			}
			all = append(all, tp)
		}
	}
	starts, err := store.TargetStarts(ctx, all)
	if err != nil {
		r.log.Warn("cannot list target log start offsets", "err", err)
	}
	out := []GroupReport{}
	for _, g := range slices.Sorted(maps.Keys(committed)) {
		if len(committed[g]) == 0 {
			continue
		}
		res, bad := store.Translate(committed[g], starts)
		gr := GroupReport{Group: g, OffsetsFrom: from, Partitions: []GroupPartition{}, Untranslatable: bad}
		for _, t := range res {
			gr.Partitions = append(gr.Partitions, GroupPartition{TargetTopic: t.TargetTopic, Partition: t.Partition,
				TargetOffset: t.TargetOffset, SourceTopic: t.SourceTopic, SourceOffset: t.SourceOffset, Metadata: t.Metadata})
		}
		out = append(out, gr)
	}
	return out
}

// commitGroups commits the translated offsets on the target for groups
// with no active members there.
func (r *runner) commitGroups(ctx context.Context) (*groupsResult, error) {
	groups, err := r.groups()
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(r.dcl)
	names := make([]string, 0, len(groups))
	for _, g := range groups {
		names = append(names, g.Group)
	}
	// Both group protocols: a KIP-848 group with members is invisible to
	// DescribeGroups alone.
	activity, err := kafkautil.NewGroupInspector(adm).Describe(ctx, names...)
	if err != nil {
		return nil, cluster.Explain(r.dst, fmt.Errorf("describe target groups: %w", err))
	}
	for i := range groups {
		g := &groups[i]
		if len(g.Partitions) == 0 {
			g.Skipped = "no translatable offsets"
			continue
		}
		a := activity[g.Group]
		if a.Err == nil && a.Active() {
			r.log.Warn("target group is active; not committing its translated offsets", "group", g.Group, "protocol", a.Protocol, "state", a.State)
		}
		var offs kadm.Offsets
		for _, p := range g.Partitions {
			offs.Add(kadm.Offset{Topic: p.TargetTopic, Partition: p.Partition, At: p.TargetOffset, LeaderEpoch: -1, Metadata: p.Metadata})
		}
		g.Skipped = kafkautil.CommitIfIdle(ctx, adm, g.Group, a, "the target", offs)
		g.Committed = g.Skipped == ""
	}
	return &groupsResult{Groups: groups}, nil
}

// groups returns the translated groups of the operation.
func (r *runner) groups() ([]GroupReport, error) {
	if g, ok, err := stepFinalSync.Result(r.op); ok || err != nil {
		return g.groups(), err
	}
	a, _, err := stepAssess.Result(r.op)
	return a.groups(), err
}
