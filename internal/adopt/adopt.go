// Package adopt takes a flow over from a running MirrorMaker 2 (godwit
// adopt-mm2, docs/mm2.md): from MM2's offset syncs and the remote topics'
// contents it works out, per source partition, where MM2 stopped, counts
// the duplicates MM2's at-least-once delivery left in what it checked,
// and writes the flow's starting progress, offset-map entries and
// adoption records on the target in one transaction, so `godwit
// replicate` continues from there with no gap and no re-copy.
package adopt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/offsets"
)

// Where MM2's offset-syncs topic is looked for.
const (
	SyncsAuto   = "auto"
	SyncsSource = "source"
	SyncsTarget = "target"
)

// How much of MM2's copy is matched against the source.
const (
	// ScanTail matches from each partition's last offset sync: cheap,
	// enough to find where MM2 stopped.
	ScanTail = "tail"
	// ScanAll matches from the oldest sync still in the syncs topic:
	// every duplicate MM2 wrote since is counted (reads both sides).
	ScanAll = "all"
)

// maxAnchors bounds the MM2 offset syncs kept per partition in the
// offset map below the scanned stretch (translation there is MM2's rule).
const maxAnchors = 1000

// runsPerEntry bounds the runs of one offset-map record (max.message.bytes).
const runsPerEntry = 500

// Options are an adoption's inputs.
type Options struct {
	Flow           *config.Flow
	Source, Target *cluster.Cluster
	Logger         *slog.Logger
	Syncs          string // SyncsAuto (default), SyncsSource or SyncsTarget
	Scan           string // ScanTail (default) or ScanAll
	DryRun         bool
	Now            func() time.Time
}

// Partition is one source partition's takeover.
type Partition struct {
	Topic       string `json:"topic"`
	TargetTopic string `json:"target_topic"`
	Partition   int32  `json:"partition"`
	// Next is where godwit continues on the source; TargetEnd where its
	// first record lands on the target.
	Next      int64 `json:"next"`
	TargetEnd int64 `json:"target_end"`
	// SourceEnd is the source's end when adoption read it: godwit
	// copies SourceEnd-Next records MM2 had not copied yet (Behind).
	SourceEnd int64 `json:"source_end"`
	Behind    int64 `json:"behind"`
	// ScanFrom is the offset sync matching started at; Scanned and
	// Duplicates count the target records matched and the second
	// copies among them.
	ScanFrom   *Sync `json:"scan_from,omitempty"`
	Scanned    int64 `json:"scanned"`
	Duplicates int64 `json:"duplicates"`
	// Anchors is how many offset syncs below the scanned stretch went
	// into the offset map; Floor is the target's first record and its
	// source record (a group below every sync replays from there).
	Anchors int    `json:"anchors"`
	Floor   *Sync  `json:"floor,omitempty"`
	Note    string `json:"note,omitempty"`
}

// GroupCheckpoint is a group MM2 checkpointed, as godwit now translates it.
type GroupCheckpoint struct {
	Group       string `json:"group"`
	TargetTopic string `json:"target_topic"`
	Partition   int32  `json:"partition"`
	Upstream    int64  `json:"upstream"`
	Downstream  int64  `json:"downstream"`
	// Godwit is godwit's translation of Upstream with the adopted map;
	// the checkpoint loop never writes below Downstream unless the group
	// rewinds on the source (checkpoints stay monotonic).
	Godwit int64 `json:"godwit"`
}

// Report is what an adoption found and did.
type Report struct {
	Flow        string            `json:"flow"`
	SyncsTopic  string            `json:"syncs_topic"`
	SyncsOn     string            `json:"syncs_on"`
	Scan        string            `json:"scan"`
	Partitions  []Partition       `json:"partitions"`
	Scanned     int64             `json:"scanned"`
	Duplicates  int64             `json:"duplicates"`
	Behind      int64             `json:"behind"`
	Checkpoints []GroupCheckpoint `json:"mm2_checkpoints"`
	DryRun      bool              `json:"dry_run"`
	Written     bool              `json:"written"`
}

type part struct {
	tp               flowstate.TP
	target           string
	srcStart, srcEnd int64
	dstStart, dstEnd int64
	runs             []flowstate.OffsetRun
	rep              Partition
}

// Run adopts the flow: read, check, and (unless DryRun) write.
func Run(ctx context.Context, o Options) (*Report, error) {
	f := o.Flow
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Syncs == "" {
		o.Syncs = SyncsAuto
	}
	if o.Scan == "" {
		o.Scan = ScanTail
	}
	log := o.Logger.With("component", "adopt", "flow", f.Name)
	src, err := o.Source.Client(f.Name+"-adopt-source", log)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := o.Target.Client(f.Name+"-adopt-target", log)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	srcAdm, dstAdm := kadm.NewClient(src), kadm.NewClient(dst)

	// A flow godwit already ran has its own progress: adopting over it
	// would move it back or forward past records.
	store := offsets.NewStore(f, dst)
	switch err := store.Refresh(ctx); {
	case errors.Is(err, offsets.ErrNotRun):
	case err != nil:
		return nil, cluster.Explain(o.Target, fmt.Errorf("flow %s: read godwit's progress: %w", f.Name, err))
	case len(store.Partitions()) > 0:
		return nil, fmt.Errorf("flow %s already has godwit progress on %s (%d partitions): adopt-mm2 is for a flow godwit has not run yet; godwit replicate continues from its own progress", f.Name, o.Target, len(store.Partitions()))
	}

	rep := &Report{Flow: f.Name, SyncsTopic: OffsetSyncsTopic(f.Target), Scan: o.Scan, DryRun: o.DryRun}
	syncCl, err := locateSyncs(ctx, o, src, dst, rep)
	if err != nil {
		return nil, err
	}
	syncs, err := readSyncs(ctx, syncCl, rep.SyncsTopic)
	if err != nil {
		return nil, fmt.Errorf("flow %s: read MM2 offset syncs %s on %s: %w", f.Name, rep.SyncsTopic, rep.SyncsOn, err)
	}

	parts, err := remotePartitions(ctx, f, srcAdm, dstAdm)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("flow %s: no source topic selected by the flow has its remote topic on %s (for MM2's DefaultReplicationPolicy, naming: prefixed, separator \".\", and the cluster aliases MM2 used): nothing to adopt", f.Name, o.Target)
	}
	for _, p := range parts {
		if err := adoptPartition(ctx, o, src, dst, p, syncs[p.tp]); err != nil {
			return nil, fmt.Errorf("flow %s: %s: %w", f.Name, p.tp, err)
		}
		rep.Partitions = append(rep.Partitions, p.rep)
		rep.Scanned += p.rep.Scanned
		rep.Duplicates += p.rep.Duplicates
		rep.Behind += p.rep.Behind
		log.Info("partition adopted", "topic", p.tp.Topic, "partition", p.tp.Partition, "next", p.rep.Next,
			"target_end", p.rep.TargetEnd, "scanned", p.rep.Scanned, "duplicates", p.rep.Duplicates, "behind", p.rep.Behind)
	}

	// MM2 must have stopped: a target that grew while we read would
	// get records after TargetEnd godwit's map does not describe.
	if err := checkStill(ctx, dstAdm, parts); err != nil {
		return nil, fmt.Errorf("flow %s: %w", f.Name, err)
	}
	if err := checkpoints(ctx, dst, f, parts, rep); err != nil {
		return nil, cluster.Explain(o.Target, fmt.Errorf("flow %s: read MM2 checkpoints: %w", f.Name, err))
	}
	if o.DryRun {
		return rep, nil
	}
	if err := write(ctx, o, dstAdm, parts, rep.SyncsOn); err != nil {
		return nil, cluster.Explain(o.Target, fmt.Errorf("flow %s: %w", f.Name, err))
	}
	rep.Written = true
	return rep, nil
}

// locateSyncs finds MM2's offset-syncs topic (MM2's default location is
// the source cluster; offset-syncs.topic.location=target puts it on the
// target) and returns a client of its cluster.
func locateSyncs(ctx context.Context, o Options, src, dst *kgo.Client, rep *Report) (*kgo.Client, error) {
	topic := rep.SyncsTopic
	onSrc, err := topicExists(ctx, kadm.NewClient(src), topic)
	if err != nil {
		return nil, cluster.Explain(o.Source, fmt.Errorf("describe %s: %w", topic, err))
	}
	onDst, err := topicExists(ctx, kadm.NewClient(dst), topic)
	if err != nil {
		return nil, cluster.Explain(o.Target, fmt.Errorf("describe %s: %w", topic, err))
	}
	switch {
	case o.Syncs == SyncsSource && onSrc, o.Syncs == SyncsAuto && onSrc && !onDst:
		rep.SyncsOn = o.Source.Alias
		return src, nil
	case o.Syncs == SyncsTarget && onDst, o.Syncs == SyncsAuto && onDst && !onSrc:
		rep.SyncsOn = o.Target.Alias
		return dst, nil
	case o.Syncs == SyncsAuto && onSrc && onDst:
		return nil, fmt.Errorf("flow %s: MM2's offset-syncs topic %s exists on both %s and %s: pass --offset-syncs source or target (MM2's offset-syncs.topic.location; its default is source)", o.Flow.Name, topic, o.Source, o.Target)
	}
	where := map[string]string{SyncsAuto: o.Source.String() + " or " + o.Target.String(), SyncsSource: o.Source.String(), SyncsTarget: o.Target.String()}[o.Syncs]
	return nil, fmt.Errorf("flow %s: MM2's offset-syncs topic %s is not on %s: MM2 names it after its target alias, so the flow's cluster aliases must be MM2's (godwit config from-mm2 keeps them); with offset-syncs.topic.location=target pass --offset-syncs target", o.Flow.Name, topic, where)
}

// remotePartitions lists the source partitions of the flow's topics whose
// remote topic partition exists on the target, with both sides' offsets.
func remotePartitions(ctx context.Context, f *config.Flow, srcAdm, dstAdm *kadm.Client) ([]*part, error) {
	policy := naming.For(f)
	srcTopics, err := srcAdm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("flow %s: list source topics: %w", f.Name, err)
	}
	var names, targets []string
	for _, t := range srcTopics.Names() {
		if policy.Select(t) == naming.Selected {
			names = append(names, t)
			targets = append(targets, policy.TargetTopic(t))
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	dstTopics, err := dstAdm.ListTopics(ctx, targets...)
	if err != nil {
		return nil, fmt.Errorf("flow %s: list target topics: %w", f.Name, err)
	}
	var parts []*part
	var srcList, dstList []string
	for i, t := range names {
		td, ok := dstTopics[targets[i]]
		if !ok || td.Err != nil {
			continue
		}
		srcList, dstList = append(srcList, t), append(dstList, targets[i])
		for _, p := range srcTopics[t].Partitions.Numbers() {
			if _, ok := td.Partitions[p]; ok {
				parts = append(parts, &part{tp: flowstate.TP{Topic: t, Partition: p}, target: targets[i]})
			}
		}
	}
	if len(parts) == 0 {
		return nil, nil
	}
	ss, err := srcAdm.ListStartOffsets(ctx, srcList...)
	if err == nil {
		err = ss.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("flow %s: source start offsets: %w", f.Name, err)
	}
	se, err := srcAdm.ListEndOffsets(ctx, srcList...)
	if err == nil {
		err = se.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("flow %s: source end offsets: %w", f.Name, err)
	}
	ds, err := dstAdm.ListStartOffsets(ctx, dstList...)
	if err == nil {
		err = ds.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("flow %s: target start offsets: %w", f.Name, err)
	}
	de, err := dstAdm.ListCommittedOffsets(ctx, dstList...)
	if err == nil {
		err = de.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("flow %s: target end offsets: %w", f.Name, err)
	}
	for _, p := range parts {
		a, _ := ss.Lookup(p.tp.Topic, p.tp.Partition)
		b, _ := se.Lookup(p.tp.Topic, p.tp.Partition)
		c, _ := ds.Lookup(p.target, p.tp.Partition)
		d, _ := de.Lookup(p.target, p.tp.Partition)
		p.srcStart, p.srcEnd, p.dstStart, p.dstEnd = a.Offset, b.Offset, c.Offset, d.Offset
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].tp.Compare(parts[j].tp) < 0 })
	return parts, nil
}

// adoptPartition works out one partition's takeover from its syncs and
// the target's contents.
func adoptPartition(ctx context.Context, o Options, src, dst *kgo.Client, p *part, syncs []Sync) error {
	p.rep = Partition{Topic: p.tp.Topic, TargetTopic: p.target, Partition: p.tp.Partition, TargetEnd: p.dstEnd, SourceEnd: p.srcEnd}
	// Usable syncs: the target record still exists, the source record
	// too (matching starts there).
	var usable []Sync
	for _, s := range syncs {
		if s.Downstream >= p.dstStart && s.Downstream < p.dstEnd && s.Upstream >= p.srcStart && s.Upstream < p.srcEnd {
			usable = append(usable, s)
		}
	}
	if len(usable) == 0 {
		if p.dstEnd > p.dstStart {
			return fmt.Errorf("target %s[%d] holds offsets %d-%d but MM2's offset syncs have none inside them (syncs topic compacted away, wrong --offset-syncs, or the topic was not written by this MM2 flow): adoption cannot tell which source record is where",
				p.target, p.tp.Partition, p.dstStart, p.dstEnd-1)
		}
		// Nothing on the target: MM2 copied nothing that is still
		// there; godwit copies from the source log start, as MM2
		// would have (its consumers default to earliest).
		p.rep.Next = p.srcStart
		p.rep.Behind = p.srcEnd - p.srcStart
		p.rep.Note = "target partition empty: copying from the source log start"
		return nil
	}
	from := startSync(usable, o.Scan)
	res, err := scan(ctx, src, dst, p.tp, p.target, from, p.dstEnd, p.srcStart, p.srcEnd)
	if err != nil {
		return err
	}
	if res.scanned == 0 {
		return fmt.Errorf("target %s[%d]: no committed record between offsets %d and %d to match", p.target, p.tp.Partition, from.Downstream, p.dstEnd)
	}
	p.rep.Next, p.rep.Scanned, p.rep.Duplicates = res.next, res.scanned, res.dups
	p.rep.Behind = p.srcEnd - res.next
	p.rep.ScanFrom = &from
	cands := res.copies
	p.rep.Anchors = anchorCands(cands, usable, from)
	if fl, ok, err := findFloor(ctx, src, dst, p, from); err != nil {
		return err
	} else if ok {
		cands[fl.Upstream] = append(cands[fl.Upstream], fl.Downstream)
		p.rep.Floor = &fl
	} else {
		p.rep.Note = fmt.Sprintf("the target's first record (offset %d) was not found on the source near its timestamp: a group MM2 checkpointed below source offset %d is translated to that sync's target offset %d", p.dstStart, from.Upstream, from.Downstream)
	}
	p.runs = buildRuns(cands, p.dstEnd)
	return nil
}

// startSync is the sync matching starts from. ScanAll: the oldest kept.
// ScanTail: the one with the highest source offset (the latest of equal
// ones), not simply the last: a sync MM2 wrote while re-sending after a
// restart lies below records it had already copied, and matching from
// there would take those for not yet copied (godwit would copy them a
// second time).
func startSync(usable []Sync, scan string) Sync {
	if scan == ScanAll {
		return usable[0]
	}
	from := usable[0]
	for _, s := range usable[1:] {
		if s.Upstream >= from.Upstream {
			from = s
		}
	}
	return from
}

// buildRuns is the offset map below the takeover point, from candidate
// positions per source offset (cands: the target offsets holding a copy
// of it): MM2's syncs below the scanned stretch (thinned to maxAnchors),
// the floor (the target's first record, when found) and every copy in the
// scanned stretch.
//
// Translation takes a group that consumed source u to just after u's
// mapped target offset, so an entry u -> d is kept only if every later
// source offset has a copy after d. Going down from the top, each source
// offset gets its highest copy below the entry above it (below
// targetEnd, godwit's first record, for the highest): a later source
// offset without an entry then has every copy above the entry above it.
// MM2 stopped in the middle of a re-send leaves copies out of order
// (50..54 copied again after 55..59 were copied once); their earlier
// copies are taken, so a group there replays, never skips. Between
// MM2's syncs translation is MM2's rule (after the sync below): MM2
// copies in order from every restart on, and it went on past each sync
// to the stretch above it.
func buildRuns(cands map[int64][]int64, targetEnd int64) []flowstate.OffsetRun {
	srcs := make([]int64, 0, len(cands))
	for u := range cands {
		srcs = append(srcs, u)
	}
	sort.Slice(srcs, func(i, j int) bool { return srcs[i] > srcs[j] })
	type entry struct{ u, d int64 }
	var kept []entry
	bound := targetEnd
	for _, u := range srcs {
		best := int64(-1)
		for _, d := range cands[u] {
			if d < bound && d > best {
				best = d
			}
		}
		if best < 0 {
			continue
		}
		bound = best
		kept = append(kept, entry{u, best})
	}
	slices.Reverse(kept)
	var runs []flowstate.OffsetRun
	for _, e := range kept {
		if n := len(runs); n > 0 {
			r := &runs[n-1]
			if e.u == r.SourceFirst+r.Count && e.d == r.TargetFirst+r.Count {
				r.Count++
				continue
			}
		}
		runs = append(runs, flowstate.OffsetRun{SourceFirst: e.u, TargetFirst: e.d, Count: 1})
	}
	return runs
}

// anchorCands adds MM2's syncs below the scanned stretch to cands,
// thinned to maxAnchors source offsets, and returns how many it added.
func anchorCands(cands map[int64][]int64, syncs []Sync, from Sync) int {
	at := map[int64][]int64{}
	for _, s := range syncs {
		if s.Upstream < from.Upstream {
			at[s.Upstream] = append(at[s.Upstream], s.Downstream)
		}
	}
	anchors := make([]int64, 0, len(at))
	for u := range at {
		anchors = append(anchors, u)
	}
	sort.Slice(anchors, func(i, j int) bool { return anchors[i] < anchors[j] })
	if n := len(anchors); n > maxAnchors {
		kept := make([]int64, 0, maxAnchors)
		for i := range maxAnchors {
			kept = append(kept, anchors[i*(n-1)/(maxAnchors-1)])
		}
		anchors = kept
	}
	for _, u := range anchors {
		cands[u] = append(cands[u], at[u]...)
	}
	return len(anchors)
}

// checkStill fails if a target partition grew since it was read.
func checkStill(ctx context.Context, dstAdm *kadm.Client, parts []*part) error {
	topics := map[string]bool{}
	for _, p := range parts {
		topics[p.target] = true
	}
	list := make([]string, 0, len(topics))
	for t := range topics {
		list = append(list, t)
	}
	ends, err := dstAdm.ListEndOffsets(ctx, list...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list target end offsets: %w", err)
	}
	for _, p := range parts {
		if e, _ := ends.Lookup(p.target, p.tp.Partition); e.Offset != p.dstEnd {
			return fmt.Errorf("target %s[%d] grew from %d to %d while adoption read it: MirrorMaker 2 is still running; stop every MM2 instance of this flow, then run adopt-mm2 again (nothing was written)",
				p.target, p.tp.Partition, p.dstEnd, e.Offset)
		}
	}
	return nil
}

// checkpoints lists MM2's last checkpoints of the adopted partitions with
// godwit's translation of their upstream offsets.
func checkpoints(ctx context.Context, dst *kgo.Client, f *config.Flow, parts []*part, rep *Report) error {
	cks, err := offsets.ReadCheckpoints(ctx, dst, offsets.CheckpointsTopic(f.Source))
	if err != nil {
		return err
	}
	byTarget := map[flowstate.TP]*part{}
	for _, p := range parts {
		byTarget[flowstate.TP{Topic: p.target, Partition: p.tp.Partition}] = p
	}
	for _, c := range cks {
		p := byTarget[flowstate.TP{Topic: c.Topic, Partition: c.Partition}]
		if p == nil {
			continue
		}
		tr := offsets.Translate(p.runs, c.Upstream, p.rep.Next, p.dstStart)
		if c.Upstream >= p.rep.Next {
			tr.Target = p.dstEnd // godwit's runs start at the takeover point
		}
		rep.Checkpoints = append(rep.Checkpoints, GroupCheckpoint{Group: c.Group, TargetTopic: c.Topic, Partition: c.Partition,
			Upstream: c.Upstream, Downstream: c.Downstream, Godwit: tr.Target})
	}
	return nil
}

// write commits the starting progress, the offset map below the takeover
// point and the adoption records in one transaction on the target.
func write(ctx context.Context, o Options, dstAdm *kadm.Client, parts []*part, syncsOn string) error {
	f := o.Flow
	for _, t := range []string{naming.ProgressTopic(f), naming.OffsetMapTopic(f)} {
		if err := ensureTopic(ctx, dstAdm, t, int32(f.Slots)); err != nil {
			return err
		}
	}
	if err := ensureTopic(ctx, dstAdm, naming.AdoptedTopic(f), 1); err != nil {
		return err
	}
	now := o.Now()
	var recs []*kgo.Record
	progress := map[int]*flowstate.Progress{}
	for _, p := range parts {
		slot := flowstate.SlotOf(p.tp, f.Slots)
		pr := progress[slot]
		if pr == nil {
			pr = &flowstate.Progress{Version: 1, Flow: f.Name, Slot: slot, WrittenAt: now.UnixMilli()}
			progress[slot] = pr
		}
		pr.Partitions = append(pr.Partitions, flowstate.PartitionProgress{Topic: p.tp.Topic, TargetTopic: p.target, Partition: p.tp.Partition,
			Next: p.rep.Next, SourceEnd: p.srcEnd, SourceEndAt: now.UnixMilli()})
		for i := 0; i < len(p.runs); i += runsPerEntry {
			e := &flowstate.OffsetMapEntry{Version: 1, Topic: p.tp.Topic, TargetTopic: p.target, Partition: p.tp.Partition, Runs: p.runs[i:min(i+runsPerEntry, len(p.runs))]}
			v, err := jsonValue(e)
			if err != nil {
				return err
			}
			recs = append(recs, &kgo.Record{Topic: naming.OffsetMapTopic(f), Partition: int32(slot), Key: flowstate.OffsetMapKey(e), Value: v})
		}
		a := flowstate.Adoption{Version: 1, Flow: f.Name, Topic: p.tp.Topic, TargetTopic: p.target, Partition: p.tp.Partition,
			Next: p.rep.Next, TargetEnd: p.dstEnd, Scanned: p.rep.Scanned, Duplicates: p.rep.Duplicates,
			SyncsTopic: OffsetSyncsTopic(f.Target), SyncsOn: syncsOn, AdoptedAt: now.UnixMilli()}
		if s := p.rep.ScanFrom; s != nil {
			a.ScanFromSource, a.ScanFromTarget = s.Upstream, s.Downstream
		}
		v, err := jsonValue(a)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: naming.AdoptedTopic(f), Partition: 0, Key: flowstate.AdoptionKey(p.tp.Topic, p.tp.Partition), Value: v})
	}
	slots := make([]int, 0, len(progress))
	for s := range progress {
		slots = append(slots, s)
	}
	sort.Ints(slots)
	for _, s := range slots {
		v, err := flowstate.EncodeProgress(progress[s])
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: naming.ProgressTopic(f), Partition: int32(s), Key: flowstate.ProgressKey(s), Value: v})
	}
	return commit(ctx, o, recs)
}
