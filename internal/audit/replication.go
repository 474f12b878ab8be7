package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/replicate"
)

// CheckpointFreshness is how old a group's checkpoint may be before the
// audit calls it stale: godwit rewrites an unchanged checkpoint every 30s,
// so a minute (or ten checkpoint intervals, if longer) means the offset
// sync stopped.
func CheckpointFreshness(f *config.Flow) time.Duration {
	return max(time.Minute, 10*f.CheckpointInterval.D())
}

// maxLagReads bounds how many lagging partitions the lag check reads the
// oldest unreplicated record of; the others are estimated.
const maxLagReads = 200

// groups: every selected source group with committed offsets on a
// replicated topic needs a recent checkpoint for each of those partitions
// on the target, or its consumers restart from the wrong place after
// failover.
func (fa *flowAudit) groups(ctx context.Context) Check {
	listed, err := fa.sadm.ListGroups(ctx)
	if err != nil {
		var se *kadm.ShardErrors
		if !errors.As(err, &se) || se.AllFailed {
			return Check{Status: Fail, Evidence: fmt.Sprintf("list consumer groups on cluster %s: %v", fa.f.Source, err), Remedy: "grant godwit Describe on the groups (docs/security.md)"}
		}
	}
	var names []string
	for g, lg := range listed {
		if strings.HasPrefix(g, naming.InternalPrefix) || !fa.f.GroupSelected(g) {
			continue
		}
		if lg.ProtocolType != "" && lg.ProtocolType != "consumer" {
			continue
		}
		names = append(names, g)
	}
	sort.Strings(names)
	selected := map[string]bool{}
	for _, n := range fa.names {
		selected[n] = true
	}
	type tp struct {
		topic     string
		partition int32
	}
	withOffsets := map[string][]tp{}
	if len(names) > 0 {
		fetched := fa.sadm.FetchManyOffsets(ctx, names...)
		for _, g := range names {
			r, ok := fetched[g]
			if !ok || r.Err != nil {
				continue
			}
			r.Fetched.Each(func(o kadm.OffsetResponse) {
				if o.Err == nil && o.At >= 0 && selected[o.Topic] {
					withOffsets[g] = append(withOffsets[g], tp{o.Topic, o.Partition})
				}
			})
		}
	}
	if len(withOffsets) == 0 {
		return Check{Status: Pass, Evidence: fmt.Sprintf("no selected consumer group on cluster %s has committed offsets on the replicated topics", fa.f.Source)}
	}
	topic := offsets.CheckpointsTopic(fa.f.Source)
	written, exists, err := fa.readCheckpoints(ctx, topic)
	if err != nil {
		return Check{Status: Fail, Evidence: fmt.Sprintf("read checkpoints topic %s on cluster %s: %v", topic, fa.f.Target, err), Remedy: "grant godwit Read and Describe on the checkpoints topic (docs/security.md)"}
	}
	fresh := CheckpointFreshness(fa.f)
	type staleGroup struct {
		Group      string  `json:"group"`
		Partitions int     `json:"partitions"`
		Missing    int     `json:"missing"`
		OldestAgeS float64 `json:"oldest_age_s,omitempty"`
	}
	var stale []staleGroup
	var items []string
	groups := make([]string, 0, len(withOffsets))
	for g := range withOffsets {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		sg := staleGroup{Group: g, Partitions: len(withOffsets[g])}
		var oldest time.Duration
		for _, p := range withOffsets[g] {
			at, ok := written[ckKey{g, fa.policy.TargetTopic(p.topic), p.partition}]
			if !ok {
				sg.Missing++
				continue
			}
			oldest = max(oldest, fa.now.Sub(at))
		}
		switch {
		case sg.Missing > 0:
			stale = append(stale, sg)
			items = append(items, fmt.Sprintf("%s: no checkpoint for %d of %d partitions", g, sg.Missing, sg.Partitions))
		case oldest > fresh:
			sg.OldestAgeS = oldest.Seconds()
			stale = append(stale, sg)
			items = append(items, fmt.Sprintf("%s: oldest checkpoint %s old", g, fmtDur(oldest)))
		}
	}
	c := Check{Details: map[string]any{"groups": len(groups), "stale": stale, "checkpoints_topic": topic, "fresh_within_s": fresh.Seconds()}}
	if len(stale) > 0 {
		c.Status = Fail
		c.Evidence = fmt.Sprintf("%s of %d with offsets on replicated topics %s no checkpoint newer than %s", plural(len(stale), "group", "groups"), len(groups), map[bool]string{true: "has", false: "have"}[len(stale) == 1], fmtDur(fresh))
		if !exists {
			c.Evidence += fmt.Sprintf(" (checkpoints topic %s does not exist on cluster %s: offset sync has never run)", topic, fa.f.Target)
		}
		c.Evidence += ": " + list(items, 10)
		c.Remedy = "after failover these consumers would restart from the wrong offsets: run godwit replicate (it writes checkpoints and syncs group offsets) and check godwit_checkpoint errors in its metrics and logs; check groups/groups_exclude"
		return c
	}
	c.Status = Pass
	c.Evidence = fmt.Sprintf("%s with offsets on replicated topics %s checkpoints newer than %s in %s", plural(len(groups), "group", "groups"), map[bool]string{true: "has", false: "have"}[len(groups) == 1], fmtDur(fresh), topic)
	return c
}

type ckKey struct {
	group, topic string
	partition    int32
}

// readCheckpoints returns when each (group, target topic, partition)
// checkpoint was last written, and whether the topic exists.
func (fa *flowAudit) readCheckpoints(ctx context.Context, topic string) (map[ckKey]time.Time, bool, error) {
	out := map[ckKey]time.Time{}
	ends, err := fa.dadm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, false, err
	}
	for p, e := range ends[topic] {
		if e.Err != nil {
			if errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
				return out, false, nil
			}
			return nil, true, e.Err
		}
		recs, err := kafkautil.ReadRange(ctx, fa.dcl, topic, p, 0, e.Offset, true)
		if err != nil {
			return nil, true, err
		}
		for _, r := range recs {
			if r.Value == nil {
				continue
			}
			c, err := offsets.DecodeCheckpoint(r.Key, r.Value)
			if err != nil {
				continue
			}
			out[ckKey{c.Group, c.Topic, c.Partition}] = r.Timestamp
		}
	}
	return out, len(ends[topic]) > 0, nil
}

// lag: per replicated partition (the heartbeat topic is the heartbeat
// check's), how far the target is behind the source, in records and in
// time: the age of the oldest record not yet replicated, read from the
// source at the replicated offset (or, when that cannot be read, the age
// of the slot's last progress record).
func (fa *flowAudit) lag(ctx context.Context) Check {
	st, err := replicate.Status(ctx, fa.o.Config, fa.f)
	if err != nil {
		return Check{Status: Fail, Evidence: err.Error(), Remedy: "grant godwit Read and Describe on the progress topic (docs/security.md)"}
	}
	have := map[string]map[int32]bool{}
	type lagRow struct {
		Topic      string  `json:"topic"`
		Partition  int32   `json:"partition"`
		LagRecords int64   `json:"lag_records"`
		LagS       float64 `json:"lag_s"`
		Estimated  bool    `json:"estimated,omitempty"`
	}
	var rows []lagRow
	var maxAge time.Duration
	var total int64
	estimated, reads := 0, 0
	for _, p := range st.Partitions {
		if fa.policy.Heartbeat(p.SourceTopic) {
			continue
		}
		if have[p.SourceTopic] == nil {
			have[p.SourceTopic] = map[int32]bool{}
		}
		have[p.SourceTopic][p.Partition] = true
		if p.LagRecords == 0 {
			continue
		}
		total += p.LagRecords
		r := lagRow{Topic: p.SourceTopic, Partition: p.Partition, LagRecords: p.LagRecords}
		var age time.Duration
		found := false
		if fa.scl != nil && st.SourceError == "" && reads < maxLagReads {
			reads++
			recs, err := kafkautil.ReadRange(ctx, fa.scl, p.SourceTopic, p.Partition, p.ReplicatedOffset, min(p.ReplicatedOffset+64, p.SourceEndOffset), true)
			if err == nil && len(recs) > 0 {
				age, found = fa.now.Sub(recs[0].Timestamp), true
			}
		}
		if !found {
			age, r.Estimated = fa.now.Sub(p.ProgressWrittenAt), true
			estimated++
		}
		age = max(age, 0)
		r.LagS = age.Seconds()
		maxAge = max(maxAge, age)
		rows = append(rows, r)
	}
	var unreplicated []string
	for _, t := range fa.names {
		if fa.policy.Heartbeat(t) {
			continue
		}
		for _, pd := range fa.selected[t].Partitions.Sorted() {
			if !have[t][pd.Partition] {
				unreplicated = append(unreplicated, fmt.Sprintf("%s[%d]", t, pd.Partition))
			}
		}
	}
	rpo := fa.f.RPOObjective.D()
	c := Check{Details: map[string]any{"lagging": rows, "max_lag_s": maxAge.Seconds(), "lag_records": total, "no_progress": unreplicated, "rpo_objective_s": rpo.Seconds()}}
	how := "age of the oldest unreplicated source record"
	if estimated > 0 {
		how = fmt.Sprintf("%s; estimated from the last progress write for %s", how, plural(estimated, "partition", "partitions"))
	}
	summary := fmt.Sprintf("%s behind on %s, oldest unreplicated record %s old (%s)", plural(int(total), "record", "records"), plural(len(rows), "partition", "partitions"), fmtDur(maxAge), how)
	if len(rows) == 0 {
		summary = fmt.Sprintf("0 records behind on %s with stored progress", plural(countTPs(have), "partition", "partitions"))
	}
	if st.SourceError != "" {
		summary += "; source unreachable, end offsets as last observed by the replicator: " + st.SourceError
	}
	var problems []string
	if rpo > 0 && maxAge > rpo {
		problems = append(problems, fmt.Sprintf("lag %s exceeds rpo_objective %s", fmtDur(maxAge), fmtDur(rpo)))
	}
	if len(unreplicated) > 0 {
		problems = append(problems, fmt.Sprintf("%s of selected topics %s no replication progress on the target: %s", plural(len(unreplicated), "partition", "partitions"), map[bool]string{true: "has", false: "have"}[len(unreplicated) == 1], list(unreplicated, 10)))
	}
	switch {
	case len(problems) > 0:
		c.Status = Fail
		c.Evidence = strings.Join(problems, "; ") + "; " + summary
		c.Remedy = "a failover now would lose more than the objective: check that godwit replicate runs for this flow and keeps up (godwit status, its logs for stopped partitions and sync errors); add instances or slots if it is saturated"
	case rpo == 0:
		c.Status = Warn
		c.Evidence = "no rpo_objective set; " + summary
		c.Remedy = "set rpo_objective on the flow (the data loss you accept, e.g. 30s) so lag is judged against it"
	default:
		c.Status = Pass
		c.Evidence = fmt.Sprintf("within rpo_objective %s: %s", fmtDur(rpo), summary)
	}
	return c
}

func countTPs(m map[string]map[int32]bool) int {
	n := 0
	for _, ps := range m {
		n += len(ps)
	}
	return n
}

// heartbeat: the age of the newest heartbeat from the source on the
// target (its record timestamp is when the source's replicator wrote it),
// so end-to-end freshness is known even while the data topics are idle.
func (fa *flowAudit) heartbeat(ctx context.Context) Check {
	if !fa.f.HeartbeatsEnabled() {
		return Check{Status: Warn, Evidence: "heartbeats: false: replication freshness cannot be measured while topics are idle",
			Remedy: "enable heartbeats on the flow (the default)"}
	}
	// The legacy topic (godwit.heartbeats) is read too for one release:
	// instances not upgraded yet still write it.
	topic := fa.policy.TargetTopic(naming.HeartbeatTopic)
	legacy := fa.policy.TargetTopic(naming.LegacyHeartbeatTopic)
	last, exists, err := fa.newestHeartbeat(ctx, topic)
	if err != nil {
		return *err
	}
	note := ""
	if last == nil {
		lr, lexists, lerr := fa.newestHeartbeat(ctx, legacy)
		if lerr == nil && lr != nil {
			last, note = lr, fmt.Sprintf(" (legacy topic %s: a godwit older than this one wrote it; upgrade every instance, then delete %s on cluster %s and %s on cluster %s)", legacy, naming.LegacyHeartbeatTopic, fa.f.Source, legacy, fa.f.Target)
			topic = legacy
		}
		exists = exists || lexists
	}
	if !exists {
		return Check{Status: Fail, Evidence: fmt.Sprintf("heartbeat topic %s does not exist on cluster %s: no heartbeat was ever replicated", topic, fa.f.Target),
			Remedy: "start godwit replicate for this flow; it writes " + naming.HeartbeatTopic + " on the source and replicates it"}
	}
	if last == nil {
		return Check{Status: Fail, Evidence: fmt.Sprintf("no heartbeat from cluster %s in %s on cluster %s", fa.f.Source, topic, fa.f.Target),
			Remedy: "start godwit replicate for this flow; check that it can write " + naming.HeartbeatTopic + " on the source"}
	}
	age := max(fa.now.Sub(last.Timestamp), 0)
	rpo := fa.f.RPOObjective.D()
	c := Check{Details: map[string]any{"topic": topic, "age_s": age.Seconds(), "rpo_objective_s": rpo.Seconds()}}
	ev := fmt.Sprintf("newest heartbeat from %s in %s was written %s ago%s", fa.f.Source, topic, fmtDur(age), note)
	switch {
	case rpo == 0:
		c.Status, c.Evidence = Warn, "no rpo_objective set; "+ev
		c.Remedy = "set rpo_objective on the flow (the data loss you accept, e.g. 30s) so freshness is judged against it"
	case age > rpo:
		c.Status, c.Evidence = Fail, fmt.Sprintf("%s, more than rpo_objective %s", ev, fmtDur(rpo))
		c.Remedy = "replication is stalled or behind: check that godwit replicate runs for this flow (its /readyz, logs and godwit_heartbeats_total)"
	default:
		c.Status, c.Evidence = Pass, fmt.Sprintf("%s, within rpo_objective %s", ev, fmtDur(rpo))
	}
	return c
}

// lastMatching returns the last committed record below end that match
// accepts, reading backwards in growing windows, at most limit records.
func lastMatching(ctx context.Context, cl *kgo.Client, topic string, partition int32, start, end, limit int64, match func(*kgo.Record) bool) (*kgo.Record, error) {
	scanned := int64(0)
	for window := int64(32); end > start; window *= 4 {
		from := max(end-window, start)
		recs, err := kafkautil.ReadRange(ctx, cl, topic, partition, from, end, true)
		if err != nil {
			return nil, err
		}
		for i := len(recs) - 1; i >= 0; i-- {
			if match(recs[i]) {
				return recs[i], nil
			}
		}
		scanned += end - from
		if from == start || scanned >= limit {
			return nil, nil
		}
		end = from
	}
	return nil, nil
}

// newestHeartbeat returns the newest record replicated from the flow's
// source in a target heartbeat topic, and whether the topic exists. A
// failed read comes back as the Check to report.
func (fa *flowAudit) newestHeartbeat(ctx context.Context, topic string) (*kgo.Record, bool, *Check) {
	starts, err := fa.dadm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, &Check{Status: Fail, Evidence: fmt.Sprintf("list offsets of %s on cluster %s: %v", topic, fa.f.Target, err), Remedy: "grant godwit Describe and Read on the topic (docs/security.md)"}
	}
	ends, err := fa.dadm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, true, &Check{Status: Fail, Evidence: fmt.Sprintf("list offsets of %s on cluster %s: %v", topic, fa.f.Target, err), Remedy: "grant godwit Describe and Read on the topic (docs/security.md)"}
	}
	fromSource := func(r *kgo.Record) bool {
		o, ok := naming.OriginOf(r.Headers)
		return ok && o.Cluster == fa.f.Source
	}
	var last *kgo.Record
	var readErr error
	ends.Each(func(e kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, e.Partition)
		r, err := lastMatching(ctx, fa.dcl, topic, e.Partition, s.Offset, e.Offset, 4096, fromSource)
		if err != nil {
			readErr = err
			return
		}
		if r != nil && (last == nil || r.Timestamp.After(last.Timestamp)) {
			last = r
		}
	})
	if readErr != nil {
		return nil, true, &Check{Status: Fail, Evidence: fmt.Sprintf("read %s on cluster %s: %v", topic, fa.f.Target, readErr), Remedy: "grant godwit Read on the topic (docs/security.md)"}
	}
	return last, true, nil
}
