package offsets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
)

// Options are a Syncer's dependencies.
type Options struct {
	Flow    *config.Flow
	Source  *cluster.Cluster
	Target  *cluster.Cluster
	Logger  *slog.Logger
	Metrics *Metrics
	// Active, if set, says whether this process should do the work now
	// (the replicator passes "owns slot 0 of the flow", so one instance
	// of a flow checkpoints). nil means always.
	Active func() bool
	// Now is the clock (tests may fix it).
	Now func() time.Time
}

// Syncer is a flow's checkpoint loop: every checkpoint_interval it reads
// the source groups' committed offsets, translates them with the offset
// map, writes MirrorMaker 2 checkpoints to the target, and (with
// sync_group_offsets) commits the translations to the same groups on the
// target when they have no active members there.
type Syncer struct {
	o     Options
	log   *slog.Logger
	m     *Metrics
	topic string // checkpoints topic on the target

	src, dst       *kgo.Client
	srcAdm, dstAdm *kadm.Client
	store          *Store

	mu         sync.Mutex
	state      map[ckKey]ckState
	lastOK     map[string]time.Time      // group -> last pass that checkpointed it fully
	skipped    map[string]bool           // groups skipped as active (logged once)
	groups     *kafkautil.GroupInspector // target groups, both protocols
	loaded     bool
	listed     bool // a full pass listed the groups
	posTopic   string
	groupNames []string          // selected source groups, from the last full pass
	failedOver func(string) bool // topics failed over, from the last full pass
	starts     kadm.ListedOffsets
	// rewound: partitions whose source group rewound since the last
	// group sync. A follow pass records the rewind in the checkpoint
	// state; the next full pass's sync must still honour it.
	rewound map[ckKey]bool
	// confirmedAt is the observation time of the last pass that wrote
	// every selected group's position to the target.
	confirmedAt time.Time
	lastPrune   time.Time
	lastErr     string
	lastErrLog  time.Time
}

type ckKey struct {
	group, topic string // topic: the target topic
	partition    int32
}

type ckState struct {
	upstream, downstream int64
	written              time.Time
}

// rewriteEvery is how often an unchanged checkpoint is written again, so
// the checkpoints topic shows the loop is alive (MirrorMaker 2 emits every
// 60 s).
const rewriteEvery = 30 * time.Second

// pruneEvery is how often offset map entries below the target log start
// are deleted.
const pruneEvery = 5 * time.Minute

// NewSyncer prepares a checkpoint loop; Run runs it.
func NewSyncer(o Options) *Syncer {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Syncer{
		o: o, m: o.Metrics, topic: CheckpointsTopic(o.Flow.Source), posTopic: PositionsTopic(o.Flow),
		log:   o.Logger.With("component", "offsets", "flow", o.Flow.Name),
		state: map[ckKey]ckState{}, lastOK: map[string]time.Time{}, skipped: map[string]bool{},
		rewound: map[ckKey]bool{},
	}
}

func (s *Syncer) init() error {
	if s.dst != nil {
		return nil
	}
	var err error
	if s.src, err = s.o.Source.Client(s.o.Flow.Name+"-offsets-source", s.log); err != nil {
		return err
	}
	if s.dst, err = s.o.Target.Client(s.o.Flow.Name+"-offsets-target", s.log,
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(30*time.Second)); err != nil {
		s.src.Close()
		return err
	}
	s.srcAdm, s.dstAdm = kadm.NewClient(s.src), kadm.NewClient(s.dst)
	s.groups = kafkautil.NewGroupInspector(s.dstAdm)
	s.store = NewStore(s.o.Flow, s.dst)
	return nil
}

// Close releases the clients.
func (s *Syncer) Close() {
	if s.dst != nil {
		s.dst.Close()
		s.src.Close()
	}
}

// Run runs passes every checkpoint_interval until ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	if err := s.init(); err != nil {
		return err
	}
	defer s.Close()
	t := time.NewTicker(followInterval(s.o.Flow))
	defer t.Stop()
	var lastFull time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if s.o.Active != nil && !s.o.Active() {
			lastFull = time.Time{}
			continue
		}
		// Follow passes every group_position_interval, a full pass
		// every checkpoint_interval. A slow pass delays the next one
		// (the ticker drops ticks) rather than piling passes up.
		full := s.o.Now().Sub(lastFull) >= s.o.Flow.CheckpointInterval.D()
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second+s.o.Flow.CheckpointInterval.D())
		var err error
		if full {
			_, err = s.Pass(pctx)
			if err == nil {
				lastFull = s.o.Now()
			}
		} else {
			_, err = s.FollowPass(pctx)
		}
		cancel()
		// Ages grow while passes fail (the source is gone): the
		// alert on them must fire, not freeze at the last success.
		s.mu.Lock()
		s.reportAges(s.o.Now())
		s.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			s.reportErr(err)
		} else if err == nil && s.lastErr != "" {
			s.log.Info("checkpoint loop recovered")
			s.lastErr = ""
		}
	}
}

// reportErr logs a pass error when it changes, else at most every 30 s.
func (s *Syncer) reportErr(err error) {
	now := s.o.Now()
	if msg := err.Error(); msg != s.lastErr || now.Sub(s.lastErrLog) >= 30*time.Second {
		s.log.Warn("checkpoint pass failed; retrying next interval", "err", err)
		s.lastErr, s.lastErrLog = msg, now
	}
}

// PassReport is what one pass did.
type PassReport struct {
	Groups         map[string][]Result
	Untranslatable map[string][]Untranslatable
	Written        int
	Synced         []string // groups whose target offsets were committed
	SkippedActive  []string // groups skipped: active on the target
}

// Pass runs one full checkpoint pass: it lists the source groups, reads
// the failover journal and the target log starts, writes changed
// checkpoints (and unchanged ones every 30 s), syncs idle target groups
// and prunes the offset map.
func (s *Syncer) Pass(ctx context.Context) (*PassReport, error) { return s.pass(ctx, true) }

// FollowPass follows the groups' commits between full passes: it reads
// the committed offsets of the groups the last full pass listed (one
// batched OffsetFetch per coordinator), translates them with the current
// offset map and writes the checkpoints that changed, plus the
// confirmation record. It does a full pass if none ran yet.
func (s *Syncer) FollowPass(ctx context.Context) (*PassReport, error) { return s.pass(ctx, false) }

func (s *Syncer) pass(ctx context.Context, full bool) (*PassReport, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	flow := s.o.Flow.Name
	if !s.loaded {
		if err := s.load(ctx); err != nil {
			return nil, err
		}
	}
	full = full || !s.listed
	if err := s.store.Refresh(ctx); err != nil {
		s.m.Errors.WithLabelValues(flow, "offset_map").Inc()
		return nil, cluster.Explain(s.o.Target, fmt.Errorf("flow %s: read offset map: %w", flow, err))
	}
	if full {
		groups, err := SourceGroups(ctx, s.srcAdm, s.o.Flow)
		if err != nil {
			s.m.Errors.WithLabelValues(flow, "source").Inc()
			return nil, cluster.Explain(s.o.Source, err)
		}
		// Failed-over topics belong to the target now: their groups
		// were moved by godwit failover and consumers run there, so
		// the source's offsets must not be synced over them any more.
		state, err := journal.ReadFlowState(ctx, s.dst, s.o.Flow)
		if err != nil {
			s.m.Errors.WithLabelValues(flow, "journal").Inc()
			return nil, cluster.Explain(s.o.Target, fmt.Errorf("flow %s: read failover journal: %w", flow, err))
		}
		s.groupNames, s.failedOver, s.listed = groups, state.FailedOver, true
	}
	// The observation time: every commit read below happened before it.
	observed := s.o.Now()
	committed, err := FetchGroupOffsets(ctx, s.srcAdm, s.groupNames)
	if err != nil {
		s.m.Errors.WithLabelValues(flow, "source").Inc()
		return nil, cluster.Explain(s.o.Source, err)
	}
	for _, offs := range committed {
		for tp := range offs {
			if s.failedOver(tp.Topic) {
				delete(offs, tp)
			}
		}
	}
	if full || s.starts == nil || s.newPartitions(committed) {
		var all []TP
		for _, offs := range committed {
			for tp := range offs {
				all = append(all, tp)
			}
		}
		starts, err := s.store.TargetStarts(ctx, all)
		if err != nil {
			s.m.Errors.WithLabelValues(flow, "target").Inc()
			return nil, cluster.Explain(s.o.Target, err)
		}
		s.starts = starts
	}
	now := s.o.Now()
	rep := &PassReport{Groups: map[string][]Result{}, Untranslatable: map[string][]Untranslatable{}}
	var recs []*kgo.Record
	pending := map[ckKey]ckState{}
	rewound := map[ckKey]bool{}
	for _, g := range slices.Sorted(maps.Keys(committed)) {
		res, bad := s.store.Translate(committed[g], s.starts)
		var unrepl int64
		for i := range res {
			r := &res[i]
			k := ckKey{g, r.TargetTopic, r.Partition}
			prev, had := s.state[k]
			switch {
			case had && r.SourceOffset < prev.upstream:
				rewound[k] = true // the source group rewound: honoured
			case had && r.TargetOffset < prev.downstream:
				// Never move a checkpoint backwards unless the
				// source group rewound.
				r.TargetOffset = prev.downstream
			}
			unrepl += r.Unreplicated
			if had && prev.upstream == r.SourceOffset && prev.downstream == r.TargetOffset && (!full || now.Sub(prev.written) < rewriteEvery) {
				continue
			}
			c := Checkpoint{Group: g, Topic: r.TargetTopic, Partition: r.Partition, Upstream: r.SourceOffset, Downstream: r.TargetOffset, Metadata: r.Metadata}
			// The record's time stamp is when the commit was read
			// from the source: the failover reports the age of the
			// position it resumes a group from.
			recs = append(recs, &kgo.Record{Topic: s.topic, Partition: 0, Key: c.Key(), Value: c.Value(), Timestamp: observed})
			pending[k] = ckState{r.SourceOffset, r.TargetOffset, observed}
		}
		if full {
			for _, b := range bad {
				s.m.TranslationFailures.WithLabelValues(flow, failureReason(b.Reason)).Inc()
			}
		}
		s.m.Unreplicated.WithLabelValues(flow, g).Set(float64(unrepl))
		s.m.Untranslatable.WithLabelValues(flow, g).Set(float64(len(bad)))
		if len(res) > 0 {
			rep.Groups[g] = res
		}
		if len(bad) > 0 {
			rep.Untranslatable[g] = bad
		}
	}
	// The confirmation: every selected group's position on the target
	// was current at the observation time. Written with the changed
	// checkpoints, after them, so a reader that sees it sees them.
	recs = append(recs, confirmationRecord(s.posTopic, observed, len(committed)))
	if err := s.dst.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		s.m.Errors.WithLabelValues(flow, "write").Inc()
		return rep, cluster.Explain(s.o.Target, fmt.Errorf("flow %s: write checkpoints to %s: %w", flow, s.topic, err))
	}
	s.m.Checkpoints.WithLabelValues(flow).Add(float64(len(recs) - 1))
	rep.Written = len(recs) - 1
	for k, st := range pending {
		s.state[k] = st
	}
	for k := range rewound {
		s.rewound[k] = true
	}
	for g := range rep.Groups {
		s.lastOK[g] = observed
	}
	s.confirmedAt = observed
	s.reportAges(now)
	if !full {
		return rep, nil
	}
	if s.o.Flow.SyncGroupOffsets == nil || *s.o.Flow.SyncGroupOffsets {
		if err := s.syncGroups(ctx, rep, s.rewound); err != nil {
			s.m.Errors.WithLabelValues(flow, "group_sync").Inc()
			return rep, cluster.Explain(s.o.Target, err)
		}
	}
	// A rewind is honoured by the first group sync after it (a target
	// group active then keeps its position), as when every pass synced.
	clear(s.rewound)
	if now.Sub(s.lastPrune) >= pruneEvery {
		s.lastPrune = now
		if n, err := s.store.Prune(ctx, s.dst); err != nil {
			s.m.Errors.WithLabelValues(flow, "prune").Inc()
			s.log.Warn("offset map pruning failed; will retry", "err", err)
		} else if n > 0 {
			s.log.Info("offset map entries below the target log start deleted", "entries", n)
		}
	}
	return rep, nil
}

// load creates the checkpoints and positions topics if needed and reads
// the last checkpoints back (monotonic across restarts).
func (s *Syncer) load(ctx context.Context) error {
	flow := s.o.Flow.Name
	if err := s.ensureTopics(ctx); err != nil {
		s.m.Errors.WithLabelValues(flow, "checkpoints_topic").Inc()
		return err
	}
	cks, err := ReadCheckpoints(ctx, s.dst, s.topic)
	if err != nil {
		s.m.Errors.WithLabelValues(flow, "checkpoints_topic").Inc()
		return err
	}
	for _, c := range cks {
		s.state[ckKey{c.Group, c.Topic, c.Partition}] = ckState{c.Upstream, c.Downstream, c.Written}
	}
	s.loaded = true
	return nil
}

// newPartitions says whether committed has a partition the cached target
// log starts do not cover (a group started on a new partition).
func (s *Syncer) newPartitions(committed map[string]map[TP]Committed) bool {
	for _, offs := range committed {
		for tp := range offs {
			p, ok := s.store.Progress(tp)
			if !ok {
				continue
			}
			if _, ok := s.starts.Lookup(p.TargetTopic, tp.Partition); !ok {
				return true
			}
		}
	}
	return false
}

// reportAges sets the age gauges of every group the loop has
// checkpointed (s.mu held).
func (s *Syncer) reportAges(now time.Time) {
	for g, at := range s.lastOK {
		age := now.Sub(at).Seconds()
		s.m.CheckpointAge.WithLabelValues(s.o.Flow.Name, g).Set(age)
		s.m.PositionAge.WithLabelValues(s.o.Flow.Name, g).Set(age)
	}
}

func failureReason(reason string) string {
	switch {
	case strings.HasPrefix(reason, "topic not replicated"):
		return "not_replicated"
	case reason == ReasonNoProgress:
		return "no_progress"
	case strings.HasPrefix(reason, ReasonTargetMissing):
		return "target_missing"
	}
	return "error"
}

// syncGroups commits translated offsets to the target groups that have no
// active members there, never moving a partition backwards unless the
// source group rewound.
func (s *Syncer) syncGroups(ctx context.Context, rep *PassReport, rewound map[ckKey]bool) error {
	if len(rep.Groups) == 0 {
		return nil
	}
	flow := s.o.Flow.Name
	names := slices.Sorted(maps.Keys(rep.Groups))
	// Both group protocols: DescribeGroups alone reports a KIP-848
	// consumer group with members as unknown.
	activity, err := s.groups.Describe(ctx, names...)
	if err != nil {
		return fmt.Errorf("flow %s: describe target groups on %s: %w", flow, s.o.Target, err)
	}
	current := s.dstAdm.FetchManyOffsets(ctx, names...)
	for _, g := range names {
		a := activity[g]
		if a.Err != nil {
			s.m.GroupsSkipped.WithLabelValues(flow, "failed").Inc()
			s.log.Warn("cannot describe target group; not syncing it", "group", g, "err", a.Err)
			continue
		}
		if a.Active() {
			s.m.GroupsSkipped.WithLabelValues(flow, "active").Inc()
			rep.SkippedActive = append(rep.SkippedActive, g)
			if !s.skipped[g] {
				s.skipped[g] = true
				s.log.Info("target group has active members; not overwriting its offsets while it is active", "group", g, "protocol", a.Protocol, "state", a.State, "members", a.Members, "target", s.o.Target.String())
			}
			continue
		}
		if s.skipped[g] {
			delete(s.skipped, g)
			s.log.Info("target group is idle again; syncing its offsets", "group", g)
		}
		cur := current[g]
		if cur.Err != nil && !errors.Is(cur.Err, kerr.GroupIDNotFound) {
			s.m.GroupsSkipped.WithLabelValues(flow, "failed").Inc()
			s.log.Warn("cannot fetch target group offsets; not syncing it", "group", g, "err", cur.Err)
			continue
		}
		var offs kadm.Offsets
		for _, r := range rep.Groups[g] {
			k := ckKey{g, r.TargetTopic, r.Partition}
			if c, ok := cur.Fetched.Lookup(r.TargetTopic, r.Partition); ok && c.Err == nil && c.At >= 0 {
				if c.At == r.TargetOffset || (c.At > r.TargetOffset && !rewound[k]) {
					continue
				}
			}
			offs.Add(kadm.Offset{Topic: r.TargetTopic, Partition: r.Partition, At: r.TargetOffset, LeaderEpoch: -1, Metadata: r.Metadata})
		}
		if len(offs) == 0 {
			continue
		}
		resp, err := s.dstAdm.CommitOffsets(ctx, g, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			// A consumer joined between the describe and the
			// commit: the broker refuses a commit from outside the
			// group, which is what we want.
			s.m.GroupsSkipped.WithLabelValues(flow, "failed").Inc()
			s.log.Info("target group offset commit refused; will retry next interval", "group", g, "err", err)
			continue
		}
		s.m.GroupsSynced.WithLabelValues(flow).Inc()
		rep.Synced = append(rep.Synced, g)
		s.log.Debug("target group offsets synced", "group", g, "partitions", len(offs))
	}
	return nil
}

// ensureTopics creates the checkpoints topic on the target (one
// partition, compacted, as MirrorMaker 2 does) and godwit's positions
// topic if they are missing.
func (s *Syncer) ensureTopics(ctx context.Context) error {
	details, err := s.dstAdm.ListTopics(ctx, s.topic, s.posTopic)
	if err != nil {
		return cluster.Explain(s.o.Target, fmt.Errorf("describe checkpoints topic %q: %w", s.topic, err))
	}
	for _, t := range []string{s.topic, s.posTopic} {
		if d, ok := details[t]; ok && d.Err == nil {
			continue
		}
		resp, err := s.dstAdm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return cluster.Explain(s.o.Target, fmt.Errorf("create topic %q: %w", t, err))
		}
		s.log.Info("created topic", "topic", t)
	}
	return nil
}

// StoredCheckpoint is a checkpoint read back from the target, with the
// time it was written.
type StoredCheckpoint struct {
	Checkpoint
	Written time.Time
}

// ReadCheckpoints returns the latest checkpoint of every group and target
// partition stored in topic (nil if the topic does not exist).
func ReadCheckpoints(ctx context.Context, cl *kgo.Client, topic string) ([]StoredCheckpoint, error) {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("checkpoints topic %s: list end offsets: %w", topic, err)
	}
	latest := map[ckKey]StoredCheckpoint{}
	for p, e := range ends[topic] {
		if e.Err != nil {
			if errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
				return nil, nil
			}
			return nil, fmt.Errorf("checkpoints topic %s[%d]: %w", topic, p, e.Err)
		}
		recs, err := kafkautil.ReadRange(ctx, cl, topic, p, 0, e.Offset, true)
		if err != nil {
			return nil, fmt.Errorf("checkpoints topic %s[%d]: %w", topic, p, err)
		}
		for _, r := range recs {
			if r.Value == nil {
				continue
			}
			c, err := DecodeCheckpoint(r.Key, r.Value)
			if err != nil {
				continue // not ours to judge: skip what we cannot read
			}
			latest[ckKey{c.Group, c.Topic, c.Partition}] = StoredCheckpoint{*c, r.Timestamp}
		}
	}
	out := make([]StoredCheckpoint, 0, len(latest))
	for _, c := range latest {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return out, nil
}

// SourceGroups lists the source cluster's consumer groups the flow syncs:
// matching groups / groups_exclude, never godwit's own.
func SourceGroups(ctx context.Context, adm *kadm.Client, f *config.Flow) ([]string, error) {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		var se *kadm.ShardErrors
		if !errors.As(err, &se) || se.AllFailed {
			return nil, fmt.Errorf("flow %s: list source groups: %w", f.Name, err)
		}
	}
	var out []string
	for g, lg := range listed {
		if strings.HasPrefix(g, naming.InternalPrefix) || !f.GroupSelected(g) {
			continue
		}
		if lg.ProtocolType != "" && lg.ProtocolType != "consumer" {
			continue // connect workers, share groups: no partition offsets to translate
		}
		out = append(out, g)
	}
	sort.Strings(out)
	return out, nil
}

// FetchGroupOffsets returns the committed offsets of groups (partitions
// without a committed offset are left out).
func FetchGroupOffsets(ctx context.Context, adm *kadm.Client, groups []string) (map[string]map[TP]Committed, error) {
	out := map[string]map[TP]Committed{}
	if len(groups) == 0 {
		return out, nil
	}
	fetched := adm.FetchManyOffsets(ctx, groups...)
	for _, g := range groups {
		r, ok := fetched[g]
		if !ok {
			continue
		}
		if r.Err != nil {
			if errors.Is(r.Err, kerr.GroupIDNotFound) {
				continue
			}
			return nil, fmt.Errorf("fetch offsets of group %s: %w", g, r.Err)
		}
		offs := map[TP]Committed{}
		r.Fetched.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At >= 0 {
				offs[TP{Topic: o.Topic, Partition: o.Partition}] = Committed{Offset: o.At, Metadata: o.Metadata}
			}
		})
		if len(offs) > 0 {
			out[g] = offs
		}
	}
	return out, nil
}
