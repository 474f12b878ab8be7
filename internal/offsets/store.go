package offsets

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
)

// TP names a source topic partition.
type TP = flowstate.TP

// Store is a flow's translation state, read from the target cluster only:
// the replicated range of every source partition (progress) and the
// offset map. Refresh reads what is new since the last call, so a
// long-running process keeps it current cheaply.
type Store struct {
	flow          *config.Flow
	cl            *kgo.Client
	adm           *kadm.Client
	mapTopic      string
	progressTopic string

	pos      map[int32]int64 // next offset map offset to read, per slot
	index    map[TP]*PartitionIndex
	progress map[TP]flowstate.PartitionProgress
	written  map[int]time.Time // progress record time per slot
}

// NewStore prepares a store for flow f; cl is a client of the flow's
// target cluster.
func NewStore(f *config.Flow, cl *kgo.Client) *Store {
	return &Store{
		flow: f, cl: cl, adm: kadm.NewClient(cl),
		mapTopic: naming.OffsetMapTopic(f), progressTopic: naming.ProgressTopic(f),
		pos: map[int32]int64{}, index: map[TP]*PartitionIndex{},
		progress: map[TP]flowstate.PartitionProgress{}, written: map[int]time.Time{},
	}
}

// ErrNotRun means the flow's internal topics do not exist on the target.
var ErrNotRun = errors.New("the flow has not run yet: no progress topic on the target")

// Refresh reads the latest committed progress of every slot, then the
// offset map up to its last stable offset. Progress is read first: the
// map entries of everything below a progress record's Next were committed
// in the same transaction, so they are read too.
func (s *Store) Refresh(ctx context.Context) error {
	starts, err := s.adm.ListStartOffsets(ctx, s.progressTopic, s.mapTopic)
	if err != nil {
		return fmt.Errorf("list start offsets of %s: %w", s.progressTopic, err)
	}
	if e, ok := starts.Lookup(s.progressTopic, -1); ok && errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
		return ErrNotRun
	}
	if err := starts.Error(); err != nil {
		return fmt.Errorf("list start offsets of %s: %w", s.progressTopic, err)
	}
	lso, err := s.adm.ListCommittedOffsets(ctx, s.progressTopic)
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", s.progressTopic, err)
	}
	if err := lso.Error(); err != nil {
		return fmt.Errorf("list end offsets of %s: %w", s.progressTopic, err)
	}
	progress := map[TP]flowstate.PartitionProgress{}
	for slot, st := range starts[s.progressTopic] {
		end, ok := lso.Lookup(s.progressTopic, slot)
		if !ok {
			continue
		}
		rec, err := kafkautil.LastRecord(ctx, s.cl, s.progressTopic, slot, st.Offset, end.Offset, true)
		if err != nil {
			return fmt.Errorf("read progress %s[%d]: %w", s.progressTopic, slot, err)
		}
		if rec == nil {
			continue
		}
		p, err := flowstate.DecodeProgress(rec.Value)
		if err != nil {
			return fmt.Errorf("progress %s[%d]: %w", s.progressTopic, slot, err)
		}
		s.written[int(slot)] = time.UnixMilli(p.WrittenAt)
		for _, pp := range p.Partitions {
			progress[TP{Topic: pp.Topic, Partition: pp.Partition}] = pp
		}
	}
	// The map after the progress.
	mends, err := s.adm.ListCommittedOffsets(ctx, s.mapTopic)
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", s.mapTopic, err)
	}
	for slot, end := range mends[s.mapTopic] {
		if end.Err != nil {
			if errors.Is(end.Err, kerr.UnknownTopicOrPartition) {
				continue // created with the progress topic; not there yet
			}
			return fmt.Errorf("list end offsets of %s[%d]: %w", s.mapTopic, slot, end.Err)
		}
		from := s.pos[slot]
		if from >= end.Offset {
			continue
		}
		recs, err := kafkautil.ReadRange(ctx, s.cl, s.mapTopic, slot, from, end.Offset, true)
		if err != nil {
			return fmt.Errorf("read offset map %s[%d]: %w", s.mapTopic, slot, err)
		}
		for _, r := range recs {
			if r.Value == nil {
				continue // a pruning tombstone: its runs are below the target log start
			}
			e, err := flowstate.DecodeOffsetMapEntry(r.Value)
			if err != nil {
				return fmt.Errorf("offset map %s[%d] offset %d: %w", s.mapTopic, slot, r.Offset, err)
			}
			tp := TP{Topic: e.Topic, Partition: e.Partition}
			ix := s.index[tp]
			if ix == nil {
				ix = &PartitionIndex{Topic: e.Topic, TargetTopic: e.TargetTopic, Partition: e.Partition}
				s.index[tp] = ix
			}
			ix.AddEntry(e)
		}
		// ReadRange stops at the last stable offset; everything below
		// the listed end is read (the rest are control records).
		s.pos[slot] = end.Offset
		if n := len(recs); n > 0 && recs[n-1].Offset+1 > end.Offset {
			s.pos[slot] = recs[n-1].Offset + 1
		}
	}
	s.progress = progress
	return nil
}

// Progress returns the stored progress of a source partition.
func (s *Store) Progress(tp TP) (flowstate.PartitionProgress, bool) {
	p, ok := s.progress[tp]
	return p, ok
}

// Partitions returns every source partition with stored progress, sorted.
func (s *Store) Partitions() []TP {
	out := make([]TP, 0, len(s.progress))
	for tp := range s.progress {
		out = append(out, tp)
	}
	sortTPs(out)
	return out
}

// Index returns a partition's offset map index (nil if nothing mapped).
func (s *Store) Index(tp TP) *PartitionIndex { return s.index[tp] }

// TargetTopic is the target topic of a source topic for this flow.
func (s *Store) TargetTopic(topic string) string {
	for tp, p := range s.progress {
		if tp.Topic == topic && p.TargetTopic != "" {
			return p.TargetTopic
		}
	}
	return naming.For(s.flow).TargetTopic(topic)
}

// SourceTopic returns the source topic replicated to targetTopic.
func (s *Store) SourceTopic(targetTopic string) (string, bool) {
	for tp, p := range s.progress {
		if p.TargetTopic == targetTopic {
			return tp.Topic, true
		}
	}
	return "", false
}

// Committed is a group's committed offset on one partition.
type Committed struct {
	Offset   int64
	Metadata string
}

// Result is one partition's translation.
type Result struct {
	SourceTopic  string `json:"source_topic"`
	TargetTopic  string `json:"target_topic"`
	Partition    int32  `json:"partition"`
	SourceOffset int64  `json:"source_offset"`
	TargetOffset int64  `json:"target_offset"`
	// Unreplicated counts the source offsets the group consumed that
	// the target does not have yet (the group is ahead of replication).
	Unreplicated int64 `json:"unreplicated_records"`
	// UnreplicatedUpperBound is set when Unreplicated is the width of the
	// offset range rather than a count of its records (the range may
	// hold transaction markers and aborted records).
	UnreplicatedUpperBound bool   `json:"unreplicated_upper_bound,omitempty"`
	Case                   Case   `json:"-"`
	Metadata               string `json:"-"`
}

// Untranslatable is a partition a group has offsets on that cannot be
// translated, with the reason.
type Untranslatable struct {
	SourceTopic  string `json:"source_topic"`
	Partition    int32  `json:"partition"`
	SourceOffset int64  `json:"source_offset"`
	Reason       string `json:"reason"`
}

// Reasons a partition is not translatable.
const (
	ReasonNoProgress    = "no replication progress for this partition yet (new topic or partition, or the flow has not reached it)"
	ReasonTargetMissing = "target topic partition does not exist"
)

// Translate translates a group's committed source offsets. targetStarts
// are the target topics' log start offsets (see TargetStarts).
func (s *Store) Translate(offs map[TP]Committed, targetStarts kadm.ListedOffsets) ([]Result, []Untranslatable) {
	policy := naming.For(s.flow)
	var res []Result
	var bad []Untranslatable
	tps := make([]TP, 0, len(offs))
	for tp := range offs {
		tps = append(tps, tp)
	}
	sortTPs(tps)
	for _, tp := range tps {
		c := offs[tp]
		if why := policy.Select(tp.Topic); why != naming.Selected {
			bad = append(bad, Untranslatable{tp.Topic, tp.Partition, c.Offset, "topic not replicated by this flow: " + string(why)})
			continue
		}
		p, ok := s.progress[tp]
		if !ok {
			bad = append(bad, Untranslatable{tp.Topic, tp.Partition, c.Offset, ReasonNoProgress})
			continue
		}
		ts, ok := targetStarts.Lookup(p.TargetTopic, tp.Partition)
		if !ok || ts.Err != nil {
			bad = append(bad, Untranslatable{tp.Topic, tp.Partition, c.Offset, ReasonTargetMissing + ": " + p.TargetTopic + "[" + strconv.Itoa(int(tp.Partition)) + "]"})
			continue
		}
		var runs []Run
		if ix := s.index[tp]; ix != nil {
			runs = ix.Runs()
		}
		tr := Translate(runs, c.Offset, p.Next, ts.Offset)
		res = append(res, Result{
			SourceTopic: tp.Topic, TargetTopic: p.TargetTopic, Partition: tp.Partition,
			SourceOffset: c.Offset, TargetOffset: tr.Target, Unreplicated: tr.Unreplicated,
			UnreplicatedUpperBound: tr.Unreplicated > 0, Case: tr.Case, Metadata: c.Metadata,
		})
	}
	return res, bad
}

// TargetStarts lists the log start offsets of the target topics of the
// given source partitions (those with progress).
func (s *Store) TargetStarts(ctx context.Context, tps []TP) (kadm.ListedOffsets, error) {
	set := map[string]bool{}
	for _, tp := range tps {
		if p, ok := s.progress[tp]; ok {
			set[p.TargetTopic] = true
		}
	}
	if len(set) == 0 {
		return kadm.ListedOffsets{}, nil
	}
	topics := make([]string, 0, len(set))
	for t := range set {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	lo, err := s.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		var se *kadm.ShardErrors
		if !errors.As(err, &se) || se.AllFailed {
			return nil, fmt.Errorf("list target log start offsets: %w", err)
		}
	}
	return lo, nil
}

// Prune drops offset map entries describing only target records below the
// target log start, in memory and, through tombstones written with prod,
// in the offset map topic. It returns how many entries it deleted.
func (s *Store) Prune(ctx context.Context, prod *kgo.Client) (int, error) {
	tps := make([]TP, 0, len(s.index))
	for tp := range s.index {
		tps = append(tps, tp)
	}
	starts, err := s.TargetStarts(ctx, tps)
	if err != nil {
		return 0, err
	}
	var tombs []*kgo.Record
	for _, tp := range tps {
		ix := s.index[tp]
		ts, ok := starts.Lookup(ix.TargetTopic, tp.Partition)
		if !ok || ts.Err != nil || ts.Offset <= 0 {
			continue
		}
		dropped := ix.PruneBelow(ts.Offset)
		live := map[int64]bool{}
		for _, e := range ix.entries {
			live[e.firstSource] = true
		}
		slot := int32(flowstate.SlotOf(tp, s.flow.Slots))
		for _, first := range dropped {
			if live[first] { // a later entry with the same key still describes live records
				continue
			}
			key := tp.Topic + "/" + strconv.Itoa(int(tp.Partition)) + "/" + strconv.FormatInt(first, 10)
			tombs = append(tombs, &kgo.Record{Topic: s.mapTopic, Partition: slot, Key: []byte(key)})
		}
	}
	if len(tombs) == 0 {
		return 0, nil
	}
	if err := prod.ProduceSync(ctx, tombs...).FirstErr(); err != nil {
		return 0, fmt.Errorf("write offset map tombstones: %w", err)
	}
	return len(tombs), nil
}

func sortTPs(tps []TP) {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
}
