package audit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// IDStandbyRetention reports what the standby keeps and what keeping less
// would save (docs/bandwidth.md): one of the levers the DR bill has.
const IDStandbyRetention = "topics.standby_retention"

// DefaultStandbyRetention is the shorter standby retention the audit
// prices when none is asked for.
const DefaultStandbyRetention = 24 * time.Hour

// standbyTopic is one row of the standby retention report.
type standbyTopic struct {
	TargetTopic       string `json:"target_topic"`
	SourceRetentionMs int64  `json:"source_retention_ms"` // -1: unlimited
	TargetRetentionMs int64  `json:"target_retention_ms"`
	// StoredBytes is the topic's size on the target, every replica.
	StoredBytes int64 `json:"stored_bytes"`
	// Full: retention has deleted data on the target already (a log start
	// offset above 0), so the stored bytes are what the retention holds.
	Full bool `json:"full"`
	// SavedBytes is what the shorter retention would free; -1: unknown
	// (the log is not full yet, or retention is not time-based).
	SavedBytes int64 `json:"saved_bytes"`
}

// standbyRetention reports, per replicated topic, the source and target
// retention and what a standby retention of o.StandbyRetention would free,
// with what the operator gives up for it.
func (fa *flowAudit) standbyRetention(ctx context.Context) Check {
	shorter := fa.o.StandbyRetention
	rt, fail := fa.replicatedConfigs(ctx, Warn)
	if fail != nil {
		if fail.Status == Warn {
			fail.Evidence = "unknown: " + fail.Evidence
		}
		return *fail
	}
	srcNames, dstNames, dstOf, srcCfg, dstCfg := rt.srcNames, rt.dstNames, rt.dstOf, rt.srcCfg, rt.dstCfg
	md, err := fa.dadm.Metadata(ctx, dstNames...)
	if err != nil {
		return Check{Status: Warn, Evidence: fmt.Sprintf("unknown: metadata of cluster %s: %v", fa.f.Target, err), Remedy: "grant Describe on the target topics (docs/security.md)"}
	}
	set := kadm.TopicsSet{}
	for _, t := range dstNames {
		if td, ok := md.Topics[t]; ok && td.Err == nil {
			set.Add(t, td.Partitions.Numbers()...)
		}
	}
	dirs, err := fa.dadm.DescribeAllLogDirs(ctx, set)
	if err != nil {
		return Check{Status: Warn, Evidence: fmt.Sprintf("unknown: describe log dirs of cluster %s: %v", fa.f.Target, err), Remedy: "grant godwit Describe on CLUSTER (DescribeLogDirs, docs/security.md)"}
	}
	stored := map[string]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if !p.IsFuture {
				stored[p.Topic] += p.Size
			}
		})
	})
	starts, err := fa.dadm.ListStartOffsets(ctx, dstNames...)
	if err != nil {
		return Check{Status: Warn, Evidence: fmt.Sprintf("unknown: list start offsets on cluster %s: %v", fa.f.Target, err), Remedy: "grant Describe on the target topics (docs/security.md)"}
	}
	full := map[string]bool{}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			full[o.Topic] = true
		}
	})
	ms := func(v string) int64 {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	var rows []standbyTopic
	var total, saved int64
	unknown, longer := 0, 0
	for _, t := range srcNames {
		s, d := srcCfg[t], dstCfg[dstOf[t]]
		if pol := d["cleanup.policy"]; pol != "" && !strings.Contains(pol, "delete") {
			continue // compacted only: the standby keeps the latest value per key whatever the retention
		}
		row := standbyTopic{TargetTopic: dstOf[t], SourceRetentionMs: ms(s["retention.ms"]), TargetRetentionMs: ms(d["retention.ms"]),
			StoredBytes: stored[dstOf[t]], Full: full[dstOf[t]], SavedBytes: -1}
		total += row.StoredBytes
		switch keep := row.TargetRetentionMs; {
		case keep >= 0 && keep <= shorter.Milliseconds():
			row.SavedBytes = 0 // already keeps no more than that
		case keep > 0 && row.Full:
			// A full log holds retention.ms of traffic: at the same rate a
			// shorter retention keeps its share of it.
			row.SavedBytes = row.StoredBytes - row.StoredBytes*shorter.Milliseconds()/keep
			longer++
		default:
			unknown++
			longer++
		}
		if row.SavedBytes > 0 {
			saved += row.SavedBytes
		}
		rows = append(rows, row)
	}
	c := Check{Status: Pass, Details: map[string]any{"standby_retention_ms": shorter.Milliseconds(), "topics": rows, "stored_bytes": total, "saved_bytes": saved, "unknown_topics": unknown}}
	if len(rows) == 0 {
		c.Evidence = "every replicated topic is compacted only: retention does not bound what the standby stores"
		return c
	}
	what := fmt.Sprintf("the standby stores %s for %s", fmtBytes(total), plural(len(rows), "replicated topic", "replicated topics"))
	if longer == 0 {
		c.Evidence = fmt.Sprintf("%s; every one keeps %s or less already", what, fmtRetention(shorter))
		return c
	}
	est := fmt.Sprintf("a standby retention of %s would free about %s", fmtRetention(shorter), fmtBytes(saved))
	if unknown > 0 {
		est += fmt.Sprintf(" (plus an unknown amount on %s whose target log has not reached its retention yet or is bounded by size only)", plural(unknown, "topic", "topics"))
	}
	c.Evidence = what + "; " + est + ". What it costs: after a failover consumers can rewind at most " + fmtRetention(shorter) +
		" on the standby; a group further behind than that at the failover skips what the standby deleted (the failover report counts it as skipped); replays and backfills older than that need the primary; the RPO (data at risk) is unchanged, since it is about the newest records, not the oldest"
	c.Remedy = fmt.Sprintf("to take it: add retention.ms to the flow's configs_exclude and set retention.ms=%d on the target topics (the %s check then reports it as shorter than the source, by choice); price it with godwit cost --retention-hours %s",
		shorter.Milliseconds(), IDRetention, strconv.FormatFloat(shorter.Hours(), 'f', -1, 64))
	return c
}

// fmtRetention writes a retention the way Kafka operators say it: 1d,
// 36h, 90m.
func fmtRetention(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}
