package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/godwit/godwit/internal/cost"
	"github.com/godwit/godwit/internal/metasync"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/offsets"
)

// capacity: the target's brokers and free disk against the replicated
// data (the source leaders' log size of the selected topics, times the
// target replication factor, minus what the target already stores).
func (fa *flowAudit) capacity(ctx context.Context) Check {
	fail := func(what string, err error) Check {
		return Check{Status: Fail, Evidence: fmt.Sprintf("%s: %v", what, err), Remedy: "grant godwit Describe on CLUSTER (DescribeLogDirs, docs/security.md)"}
	}
	smd, err := fa.sadm.BrokerMetadata(ctx)
	if err != nil {
		return fail("broker metadata of cluster "+fa.f.Source, err)
	}
	var targets []string
	for _, t := range fa.plan.Topics {
		if t.TargetPartitions > 0 {
			targets = append(targets, t.TargetTopic)
		}
	}
	dmd, err := fa.dadm.Metadata(ctx, targets...)
	if err != nil {
		return fail("metadata of cluster "+fa.f.Target, err)
	}
	srcBrokers, dstBrokers := len(smd.Brokers), len(dmd.Brokers)
	rf := fa.f.ReplicationFactor
	set := kadm.TopicsSet{}
	for _, t := range targets {
		if td, ok := dmd.Topics[t]; ok && td.Err == nil {
			set.Add(t, td.Partitions.Numbers()...)
			if fa.f.ReplicationFactor == 0 {
				rf = max(rf, td.Partitions.NumReplicas())
			}
		}
	}
	rf = max(rf, 1)
	size, _, err := cost.LeaderBytes(ctx, fa.sadm, fa.names)
	if err != nil {
		return fail("log sizes of the selected topics on cluster "+fa.f.Source, err)
	}
	var dirs kadm.DescribedAllLogDirs
	if len(set) > 0 {
		dirs, err = fa.dadm.DescribeAllLogDirs(ctx, set)
	} else {
		dirs, err = fa.dadm.DescribeAllLogDirs(ctx, nil)
	}
	if err != nil {
		return fail("describe log dirs of cluster "+fa.f.Target, err)
	}
	var free, stored int64
	ndirs, unreported := 0, 0
	dirs.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			unreported++
			return
		}
		ndirs++
		if d.UsableBytes < 0 {
			unreported++
		} else {
			free += d.UsableBytes
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if !p.IsFuture && set.Lookup(p.Topic, p.Partition) {
				stored += p.Size
			}
		})
	})
	needed := size * int64(rf)
	remaining := max(needed-stored, 0)
	c := Check{Details: map[string]any{
		"source_brokers": srcBrokers, "target_brokers": dstBrokers, "replication_factor": rf,
		"replicated_bytes": size, "target_stored_bytes": stored, "target_free_bytes": free, "log_dirs": ndirs,
	}}
	data := fmt.Sprintf("replicated data %s on the source leaders × replication factor %d = %s, %s of it already on the target", fmtBytes(size), rf, fmtBytes(needed), fmtBytes(stored))
	brokers := fmt.Sprintf("cluster %s has %s (source %d)", fa.f.Target, plural(dstBrokers, "broker", "brokers"), srcBrokers)
	switch {
	case fa.f.ReplicationFactor > dstBrokers:
		c.Status = Fail
		c.Evidence = fmt.Sprintf("%s, fewer than the flow's replication_factor %d", brokers, fa.f.ReplicationFactor)
		c.Remedy = "add target brokers or lower replication_factor"
	case ndirs == 0 || unreported > 0:
		c.Status = Warn
		c.Evidence = fmt.Sprintf("%s; free disk not reported for %d of %d log dirs (DescribeLogDirs without usable bytes: Kafka before 3.3, tiered storage, or a dir error); %s", brokers, unreported, ndirs+unreported, data)
		if ndirs == 0 {
			c.Evidence = fmt.Sprintf("%s; no log dir reported (no replicated topic on the target yet?); %s", brokers, data)
		}
		c.Remedy = "check the target brokers' free disk by hand against the replicated data size"
	case free < remaining:
		c.Status = Fail
		c.Evidence = fmt.Sprintf("%s; free disk %s is less than the %s still to copy (%s)", brokers, fmtBytes(free), fmtBytes(remaining), data)
		c.Remedy = "add disk or brokers to the target, or lower the target topics' retention, before replication fills it"
	case free < needed:
		c.Status = Warn
		c.Evidence = fmt.Sprintf("%s; free disk %s is less than one more copy of the replicated data (%s)", brokers, fmtBytes(free), data)
		c.Remedy = "the target has little headroom for growth: add disk or brokers"
	case dstBrokers < srcBrokers:
		c.Status = Warn
		c.Evidence = fmt.Sprintf("%s: the standby is smaller than the primary; free disk %s (%s)", brokers, fmtBytes(free), data)
		c.Remedy = "after failover the target takes the primary's full load: size it like the source"
	default:
		c.Status = Pass
		c.Evidence = fmt.Sprintf("%s; free disk %s across %s (%s)", brokers, fmtBytes(free), plural(ndirs, "log dir", "log dirs"), data)
	}
	return c
}

// internalTopics: the topics godwit needs: progress and offset map on the
// target (one partition per slot), the heartbeat topic on the source; the
// ACL ownership and checkpoints topics are created when first needed.
func (fa *flowAudit) internalTopics(ctx context.Context) Check {
	type row struct {
		Cluster    string `json:"cluster"`
		Topic      string `json:"topic"`
		Partitions int    `json:"partitions"`
		Required   bool   `json:"required"`
		Problem    string `json:"problem,omitempty"`
	}
	var rows []row
	var problems, absent []string
	probe := func(adm *kadm.Client, alias string, topics []string, required map[string]bool, want map[string]int) error {
		td, err := adm.ListTopics(ctx, topics...)
		if err != nil {
			return fmt.Errorf("list topics on cluster %s: %w", alias, err)
		}
		for _, t := range topics {
			r := row{Cluster: alias, Topic: t, Required: required[t]}
			d, ok := td[t]
			switch {
			case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
				if r.Required {
					r.Problem = "missing"
					problems = append(problems, fmt.Sprintf("%s missing on cluster %s", t, alias))
				} else {
					absent = append(absent, t)
				}
			case d.Err != nil:
				r.Problem = d.Err.Error()
				problems = append(problems, fmt.Sprintf("%s on cluster %s: %v", t, alias, d.Err))
			default:
				r.Partitions = len(d.Partitions)
				if n := want[t]; n > 0 && r.Partitions != n {
					r.Problem = fmt.Sprintf("%d partitions, slots is %d", r.Partitions, n)
					problems = append(problems, fmt.Sprintf("%s on cluster %s has %d partitions but the flow has %d slots (slots must equal its partition count)", t, alias, r.Partitions, n))
				}
			}
			rows = append(rows, r)
		}
		return nil
	}
	progress, omap := naming.ProgressTopic(fa.f), naming.OffsetMapTopic(fa.f)
	aclTopic, ckTopic := metasync.ACLStateTopic(fa.f), offsets.CheckpointsTopic(fa.f.Source)
	if err := probe(fa.dadm, fa.f.Target, []string{progress, omap, aclTopic, ckTopic},
		map[string]bool{progress: true, omap: true}, map[string]int{progress: fa.f.Slots, omap: fa.f.Slots}); err != nil {
		return Check{Status: Fail, Evidence: err.Error(), Remedy: "grant godwit Describe on the topics (docs/security.md)"}
	}
	if fa.f.HeartbeatsEnabled() {
		if err := probe(fa.sadm, fa.f.Source, []string{naming.HeartbeatTopic}, map[string]bool{naming.HeartbeatTopic: true}, nil); err != nil {
			return Check{Status: Fail, Evidence: err.Error(), Remedy: "grant godwit Describe on the topics (docs/security.md)"}
		}
	}
	c := Check{Details: map[string]any{"topics": rows}}
	var present []string
	for _, r := range rows {
		if r.Problem == "" && r.Partitions > 0 {
			present = append(present, r.Topic)
		}
	}
	note := ""
	if len(absent) > 0 {
		note = fmt.Sprintf("; not yet created (made when first needed): %s", strings.Join(absent, ", "))
	}
	if len(problems) > 0 {
		c.Status = Fail
		c.Evidence = list(problems, 10) + note
		c.Remedy = "start godwit replicate for this flow (it creates them); if it runs, grant it Create on the topics (docs/security.md)"
		return c
	}
	c.Status = Pass
	c.Evidence = "present: " + strings.Join(present, ", ") + note
	return c
}

// MSK Replicator limits the seed asks teams to validate before choosing
// it (per replicator).
const (
	MSKMaxTopics         = 750
	MSKMaxRecordBytes    = 10 << 20 // 10 MB
	MSKMaxBytesPerSecond = 1 << 30  // 1 GB/s
)

func (fa *flowAudit) mskTopics(context.Context) Check {
	n := len(fa.names)
	c := Check{Details: map[string]any{"selected_topics": n, "limit": MSKMaxTopics}}
	ev := fmt.Sprintf("the flow selects %s on cluster %s; one MSK Replicator replicates at most %d", plural(n, "topic", "topics"), fa.f.Source, MSKMaxTopics)
	switch {
	case n > MSKMaxTopics:
		c.Status, c.Evidence = Fail, ev
		c.Remedy = fmt.Sprintf("split the topics across %d replicators (each with its own topic list)", (n+MSKMaxTopics-1)/MSKMaxTopics)
	case n > MSKMaxTopics*9/10:
		c.Status, c.Evidence = Warn, ev+" (within 10% of the limit)"
		c.Remedy = "plan a second replicator before new topics push the flow over the limit"
	default:
		c.Status, c.Evidence = Pass, ev
	}
	return c
}

func (fa *flowAudit) mskRecordSize(ctx context.Context) Check {
	if len(fa.names) == 0 {
		return Check{Status: Pass, Evidence: "the flow selects no topics"}
	}
	cfgs, err := effectiveConfigs(ctx, fa.sadm, fa.names)
	if err != nil {
		return Check{Status: Fail, Evidence: fmt.Sprintf("describe topic configs on cluster %s: %v", fa.f.Source, err), Remedy: "grant DescribeConfigs on the topics (docs/security.md)"}
	}
	var over []string
	largest, largestTopic := int64(0), ""
	for _, t := range fa.names {
		var v int64
		if _, err := fmt.Sscan(cfgs[t]["max.message.bytes"], &v); err != nil {
			continue
		}
		if v > largest {
			largest, largestTopic = v, t
		}
		if v > MSKMaxRecordBytes {
			over = append(over, fmt.Sprintf("%s (max.message.bytes=%d)", t, v))
		}
	}
	c := Check{Details: map[string]any{"largest_max_message_bytes": largest, "topic": largestTopic, "over_limit": over, "limit_bytes": MSKMaxRecordBytes}}
	if len(over) > 0 {
		c.Status = Warn
		c.Evidence = fmt.Sprintf("%s accept records larger than MSK Replicator's %d-byte (10 MB) maximum record size: %s", plural(len(over), "topic", "topics"), MSKMaxRecordBytes, list(over, 10))
		c.Remedy = "records above 10 MB would not replicate: cap max.message.bytes at 10485760 or keep large payloads out of Kafka (claim-check)"
		return c
	}
	c.Status = Pass
	c.Evidence = fmt.Sprintf("largest max.message.bytes on the %s is %d (%s), within MSK Replicator's 10 MB maximum record size", plural(len(fa.names), "selected topic", "selected topics"), largest, largestTopic)
	return c
}

// mskThroughput measures the source's write rate on the selected topics
// from two log-size samples ThroughputWindow apart (as godwit cost
// --measure does).
func (fa *flowAudit) mskThroughput(ctx context.Context) Check {
	if len(fa.names) == 0 {
		return Check{Status: Pass, Evidence: "the flow selects no topics"}
	}
	b0, _, err := cost.LeaderBytes(ctx, fa.sadm, fa.names)
	t0 := time.Now()
	if err == nil {
		timer := time.NewTimer(fa.o.ThroughputWindow)
		select {
		case <-ctx.Done():
			timer.Stop()
			err = ctx.Err()
		case <-timer.C:
		}
	}
	var b1 int64
	if err == nil {
		b1, _, err = cost.LeaderBytes(ctx, fa.sadm, fa.names)
	}
	window := time.Since(t0)
	if err != nil {
		return Check{Status: Warn, Evidence: fmt.Sprintf("could not measure the source's throughput: %v", err), Remedy: "measure it with godwit cost -c FILE --measure, or from the cluster's BytesInPerSec"}
	}
	if b1 < b0 {
		return Check{Status: Warn, Evidence: fmt.Sprintf("could not measure: the selected topics' log size shrank during the %s window (retention deleted segments)", fmtDur(window)),
			Remedy: "measure again, or over a longer window (--window)"}
	}
	rate := float64(b1-b0) / window.Seconds()
	c := Check{Details: map[string]any{"bytes_per_second": rate, "window_s": window.Seconds(), "method": "measured: source leader log-size delta", "limit_bytes_per_second": MSKMaxBytesPerSecond}}
	ev := fmt.Sprintf("measured %s/s written to the selected topics over %s (source leaders' log-size delta); one MSK Replicator handles up to 1 GB/s", fmtBytes(int64(rate)), fmtDur(window))
	switch {
	case rate > MSKMaxBytesPerSecond:
		c.Status, c.Evidence = Fail, ev
		c.Remedy = "split the topics across several replicators so each stays under 1 GB/s"
	case rate > MSKMaxBytesPerSecond*0.8:
		c.Status, c.Evidence = Warn, ev+" (within 20% of the limit; peaks may exceed it)"
		c.Remedy = "measure at peak and plan a second replicator"
	default:
		c.Status, c.Evidence = Pass, ev+" (a sample: measure at peak too)"
	}
	return c
}
