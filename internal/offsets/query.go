package offsets

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/kafkautil"
)

// Offsets come from the source group, or, when the source is unreachable,
// from the last checkpoints stored on the target.
const (
	FromSource      = "source"
	FromCheckpoints = "checkpoints"
)

// GroupTranslation is the JSON contract of `godwit offsets translate`.
type GroupTranslation struct {
	Flow        string `json:"flow"`
	Group       string `json:"group"`
	OffsetsFrom string `json:"offsets_from"`
	// SourceError is set when the source could not be reached; the
	// source offsets are then the last checkpointed ones.
	SourceError     string           `json:"source_error,omitempty"`
	Partitions      []Result         `json:"partitions"`
	NotTranslatable []Untranslatable `json:"not_translatable"`
}

// maxCount bounds how many unreplicated source offsets are read to count
// the records exactly; beyond it the width of the range is reported as an
// upper bound.
const maxCount = 1_000_000

type clients struct {
	src, dst *cluster.Cluster
	scl, dcl *kgo.Client
}

func (c *clients) close() {
	if c.scl != nil {
		c.scl.Close()
	}
	if c.dcl != nil {
		c.dcl.Close()
	}
}

func connect(cfg *config.Config, f *config.Flow, role string) (*clients, error) {
	c := &clients{}
	var err error
	if c.src, err = cluster.New(cfg, f.Source); err != nil {
		return nil, err
	}
	if c.dst, err = cluster.New(cfg, f.Target); err != nil {
		return nil, err
	}
	if c.dcl, err = c.dst.Client(f.Name+"-"+role, nil, kgo.RetryTimeout(15*time.Second)); err != nil {
		return nil, err
	}
	// The source is bounded: translation must answer when the source
	// region is gone.
	if c.scl, err = c.src.Client(f.Name+"-"+role, nil, kgo.RetryTimeout(5*time.Second)); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func loadStore(ctx context.Context, c *clients, f *config.Flow) (*Store, error) {
	st := NewStore(f, c.dcl)
	if err := st.Refresh(ctx); err != nil {
		if errors.Is(err, ErrNotRun) {
			return nil, fmt.Errorf("flow %s: %w (run godwit replicate first)", f.Name, err)
		}
		return nil, cluster.Explain(c.dst, fmt.Errorf("flow %s: %w", f.Name, err))
	}
	return st, nil
}

// TranslateGroup translates a group's committed offsets for flow f: the
// source group's offsets when the source answers, else the last
// checkpoints stored on the target. Only the target is needed.
func TranslateGroup(ctx context.Context, cfg *config.Config, f *config.Flow, group string) (*GroupTranslation, error) {
	c, err := connect(cfg, f, "offsets-translate")
	if err != nil {
		return nil, err
	}
	defer c.close()
	st, err := loadStore(ctx, c, f)
	if err != nil {
		return nil, err
	}
	out := &GroupTranslation{Flow: f.Name, Group: group, OffsetsFrom: FromSource, Partitions: []Result{}, NotTranslatable: []Untranslatable{}}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	offs, err := FetchGroupOffsets(sctx, kadm.NewClient(c.scl), []string{group})
	cancel()
	var committed map[TP]Committed
	if err != nil {
		out.SourceError = cluster.Explain(c.src, err).Error()
		out.OffsetsFrom = FromCheckpoints
		if committed, err = checkpointedOffsets(ctx, c.dcl, st, f.Source, group); err != nil {
			return nil, cluster.Explain(c.dst, err)
		}
	} else {
		committed = offs[group]
	}
	tps := make([]TP, 0, len(committed))
	for tp := range committed {
		tps = append(tps, tp)
	}
	starts, err := st.TargetStarts(ctx, tps)
	if err != nil {
		return nil, cluster.Explain(c.dst, err)
	}
	res, bad := st.Translate(committed, starts)
	if out.SourceError == "" {
		countUnreplicated(ctx, c.scl, st, res)
	}
	out.Partitions = append(out.Partitions, res...)
	out.NotTranslatable = append(out.NotTranslatable, bad...)
	return out, nil
}

// countUnreplicated replaces the upper bounds by exact counts of the
// committed source records between the replicated end and the group's
// offset, read from the source (best effort, bounded).
func countUnreplicated(ctx context.Context, scl *kgo.Client, st *Store, res []Result) {
	for i := range res {
		r := &res[i]
		if r.Unreplicated == 0 || r.Unreplicated > maxCount {
			continue
		}
		p, _ := st.Progress(TP{Topic: r.SourceTopic, Partition: r.Partition})
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		recs, err := kafkautil.ReadRange(cctx, scl, r.SourceTopic, r.Partition, p.Next, r.SourceOffset, true)
		cancel()
		if err != nil {
			continue
		}
		r.Unreplicated, r.UnreplicatedUpperBound = int64(len(recs)), false
	}
}

// checkpointedOffsets returns a group's source offsets from the last
// checkpoints on the target.
func checkpointedOffsets(ctx context.Context, dcl *kgo.Client, st *Store, source, group string) (map[TP]Committed, error) {
	cks, err := ReadCheckpoints(ctx, dcl, CheckpointsTopic(source))
	if err != nil {
		return nil, err
	}
	out := map[TP]Committed{}
	for _, c := range cks {
		if c.Group != group {
			continue
		}
		topic, ok := st.SourceTopic(c.Topic)
		if !ok {
			continue
		}
		out[TP{Topic: topic, Partition: c.Partition}] = Committed{Offset: c.Upstream, Metadata: c.Metadata}
	}
	return out, nil
}

// FlowStatus is one flow's part of `godwit offsets status`.
type FlowStatus struct {
	Flow             string        `json:"flow"`
	CheckpointsTopic string        `json:"checkpoints_topic"`
	SourceError      string        `json:"source_error,omitempty"`
	Groups           []GroupStatus `json:"groups"`
}

// GroupStatus is one group's checkpoint state.
type GroupStatus struct {
	Group string `json:"group"`
	// LastCheckpointAt is when the newest checkpoint of the group was
	// written (unchanged checkpoints are rewritten every 30 s).
	LastCheckpointAt       *time.Time `json:"last_checkpoint_at,omitempty"`
	CheckpointAgeSeconds   *float64   `json:"checkpoint_age_seconds,omitempty"`
	CheckpointedPartitions int        `json:"checkpointed_partitions"`
	// UnreplicatedRecords sums, over the group's partitions, the source
	// offsets it consumed that the target does not have yet (upper bound).
	UnreplicatedRecords int64 `json:"unreplicated_records"`
	// NotTranslatable lists partitions whose offsets cannot be
	// translated (yet), with the reason. Needs the source.
	NotTranslatable []Untranslatable `json:"not_translatable"`
}

// Status lists a flow's groups: from the checkpoints on the target, and,
// when the source answers, every selected source group with the
// partitions not (yet) translatable.
func Status(ctx context.Context, cfg *config.Config, f *config.Flow, now time.Time) (*FlowStatus, error) {
	c, err := connect(cfg, f, "offsets-status")
	if err != nil {
		return nil, err
	}
	defer c.close()
	out := &FlowStatus{Flow: f.Name, CheckpointsTopic: CheckpointsTopic(f.Source), Groups: []GroupStatus{}}
	cks, err := ReadCheckpoints(ctx, c.dcl, out.CheckpointsTopic)
	if err != nil {
		return nil, cluster.Explain(c.dst, err)
	}
	groups := map[string]*GroupStatus{}
	get := func(g string) *GroupStatus {
		if groups[g] == nil {
			groups[g] = &GroupStatus{Group: g, NotTranslatable: []Untranslatable{}}
		}
		return groups[g]
	}
	for _, ck := range cks {
		gs := get(ck.Group)
		gs.CheckpointedPartitions++
		if gs.LastCheckpointAt == nil || ck.Written.After(*gs.LastCheckpointAt) {
			w := ck.Written.UTC()
			gs.LastCheckpointAt = &w
		}
	}
	for _, gs := range groups {
		age := now.Sub(*gs.LastCheckpointAt).Seconds()
		gs.CheckpointAgeSeconds = &age
	}
	st, err := loadStore(ctx, c, f)
	if err != nil && !errors.Is(err, ErrNotRun) {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sadm := kadm.NewClient(c.scl)
	names, err := SourceGroups(sctx, sadm, f)
	var committed map[string]map[TP]Committed
	if err == nil {
		committed, err = FetchGroupOffsets(sctx, sadm, names)
	}
	if err != nil {
		out.SourceError = cluster.Explain(c.src, err).Error()
	} else {
		var all []TP
		for _, offs := range committed {
			for tp := range offs {
				all = append(all, tp)
			}
		}
		var starts kadm.ListedOffsets
		if st != nil {
			if starts, err = st.TargetStarts(ctx, all); err != nil {
				return nil, cluster.Explain(c.dst, err)
			}
		}
		for _, g := range slices.Sorted(maps.Keys(committed)) {
			gs := get(g)
			if st == nil {
				for tp, o := range committed[g] {
					gs.NotTranslatable = append(gs.NotTranslatable, Untranslatable{tp.Topic, tp.Partition, o.Offset, ErrNotRun.Error()})
				}
				continue
			}
			res, bad := st.Translate(committed[g], starts)
			gs.NotTranslatable = append(gs.NotTranslatable, bad...)
			for _, r := range res {
				if r.Unreplicated > 0 {
					gs.UnreplicatedRecords += r.Unreplicated
					gs.NotTranslatable = append(gs.NotTranslatable, Untranslatable{r.SourceTopic, r.Partition, r.SourceOffset,
						"group ahead of replication by up to " + strconv.FormatInt(r.Unreplicated, 10) + " records; translated to the end of the replicated range for now"})
				}
			}
		}
	}
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		gs := groups[g]
		sort.Slice(gs.NotTranslatable, func(i, j int) bool {
			a, b := gs.NotTranslatable[i], gs.NotTranslatable[j]
			if a.SourceTopic != b.SourceTopic {
				return a.SourceTopic < b.SourceTopic
			}
			return a.Partition < b.Partition
		})
		out.Groups = append(out.Groups, *gs)
	}
	return out, nil
}
