package audit

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/godwit/godwit/internal/metasync"
)

// topicsPresent: every selected source topic exists on the target with the
// source's partition count (from the metadata sync plan).
func (fa *flowAudit) topicsPresent(context.Context) Check {
	type topicRow struct {
		Topic            string `json:"topic"`
		TargetTopic      string `json:"target_topic"`
		SourcePartitions int32  `json:"source_partitions"`
		TargetPartitions int32  `json:"target_partitions"`
		Blocked          string `json:"blocked,omitempty"`
	}
	var missing, fewer, more []topicRow
	var missingS, fewerS, moreS []string
	for _, t := range fa.plan.Topics {
		r := topicRow{t.Topic, t.TargetTopic, t.SourcePartitions, t.TargetPartitions, t.Blocked}
		switch {
		case t.TargetPartitions == 0:
			missing = append(missing, r)
			missingS = append(missingS, t.TargetTopic)
		case t.TargetPartitions < t.SourcePartitions:
			fewer = append(fewer, r)
			fewerS = append(fewerS, fmt.Sprintf("%s has %d of %d partitions", t.TargetTopic, t.TargetPartitions, t.SourcePartitions))
		case t.TargetPartitions > t.SourcePartitions:
			more = append(more, r)
			moreS = append(moreS, fmt.Sprintf("%s has %d partitions, source %d", t.TargetTopic, t.TargetPartitions, t.SourcePartitions))
		}
	}
	c := Check{Details: map[string]any{"selected_topics": fa.workloadTopics(), "missing": missing, "fewer_partitions": fewer, "more_partitions": more}}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("%s missing on cluster %s: %s", plural(len(missing), "topic", "topics"), fa.f.Target, list(missingS, 10)))
	}
	if len(fewer) > 0 {
		parts = append(parts, fmt.Sprintf("%s with fewer partitions: %s", plural(len(fewer), "topic", "topics"), list(fewerS, 10)))
	}
	switch {
	case len(parts) > 0:
		c.Status = Fail
		c.Evidence = fmt.Sprintf("of %s: %s", plural(fa.workloadTopics(), "selected source topic", "selected source topics"), strings.Join(parts, "; "))
		if len(more) > 0 {
			c.Evidence += "; " + list(moreS, 10)
		}
		c.Remedy = "create the missing topics and partitions: " + fa.syncHint()
		if !fa.f.CreatesTopics() {
			c.Remedy += " (create_topics is false: create them by hand)"
		}
	case len(more) > 0:
		c.Status = Warn
		c.Evidence = fmt.Sprintf("all %s exist; %s (copied 1:1, the extra target partitions get no data)", plural(fa.workloadTopics(), "selected source topic", "selected source topics"), list(moreS, 10))
		c.Remedy = "nothing to do for replication; consumers of the target see empty partitions, and keys hash differently after failover if producers use the target's partition count"
	default:
		c.Status = Pass
		c.Evidence = fmt.Sprintf("all %s exist on cluster %s with the source's partition count", plural(fa.workloadTopics(), "selected source topic", "selected source topics"), fa.f.Target)
	}
	return c
}

// workloadTopics counts the plan's topics without the heartbeat topics,
// which are checked like the others but are not the user's topics.
func (fa *flowAudit) workloadTopics() int {
	n := 0
	for _, t := range fa.plan.Topics {
		if !fa.policy.Heartbeat(t.Topic) {
			n++
		}
	}
	return n
}

// configDrift: alter_config actions of the plan are configs that differ
// (excluded configs are never compared); unsafe_config errors mean a
// topic cannot be replicated faithfully.
func (fa *flowAudit) configDrift(context.Context) Check {
	if fa.f.SyncTopicConfigs != nil && !*fa.f.SyncTopicConfigs {
		return Check{Status: Warn, Evidence: "sync_topic_configs is false: target topic configs are not kept in step, so they were not compared",
			Remedy: "set sync_topic_configs: true, or check the target's topic configs by hand"}
	}
	type drift struct {
		TargetTopic string  `json:"target_topic"`
		Key         string  `json:"key"`
		Source      *string `json:"source"` // nil: the source uses the default
		Target      *string `json:"target"` // nil: not set on the target topic
	}
	var drifts []drift
	var items []string
	for _, a := range fa.plan.Actions {
		if a.Kind != metasync.KindAlterConfig {
			continue
		}
		drifts = append(drifts, drift{a.TargetTopic, a.Key, a.Value, a.Old})
		items = append(items, fmt.Sprintf("%s %s: source %s, target %s", a.TargetTopic, a.Key, orDefault(a.Value), orDefault(a.Old)))
	}
	var unsafe []string
	for _, e := range fa.plan.Errors {
		if e.Kind == metasync.IssueUnsafeConfig {
			unsafe = append(unsafe, e.Message)
		}
	}
	c := Check{Details: map[string]any{"drift": drifts, "unsafe": unsafe}}
	switch {
	case len(unsafe) > 0:
		c.Status = Fail
		c.Evidence = list(unsafe, 5)
		if len(items) > 0 {
			c.Evidence += "; differing: " + list(items, 10)
		}
		c.Remedy = "change the target topic's config so it can hold a faithful copy (docs/metasync.md, Propagation), then " + fa.syncHint()
	case len(items) > 0:
		c.Status = Warn
		c.Evidence = fmt.Sprintf("%s: %s", plural(len(items), "config differs", "configs differ"), list(items, 10))
		c.Remedy = "the target behaves differently after failover until they are synced: " + fa.syncHint() + "; keep a deliberate target override with configs_exclude"
	default:
		c.Status = Pass
		c.Evidence = fmt.Sprintf("the configs set on the %s match on the target (excluded: %s)", plural(fa.workloadTopics(), "source topic", "source topics"), strings.Join(append(append([]string(nil), metasync.DefaultConfigsExclude...), fa.f.ConfigsExclude...), ", "))
	}
	return c
}

func orDefault(v *string) string {
	if v == nil {
		return "default"
	}
	return *v
}

// retention: the target must keep data at least as long (and as much) as
// the source, or a failover loses history consumers may still need.
func (fa *flowAudit) retention(ctx context.Context) Check {
	rt, fail := fa.replicatedConfigs(ctx, Fail)
	if fail != nil {
		return *fail
	}
	srcNames, dstOf, srcCfg, dstCfg := rt.srcNames, rt.dstOf, rt.srcCfg, rt.dstCfg
	type short struct {
		TargetTopic string `json:"target_topic"`
		Key         string `json:"key"`
		Source      string `json:"source"`
		Target      string `json:"target"`
	}
	var shorts []short
	var items []string
	checked := 0
	for _, t := range srcNames {
		s, d := srcCfg[t], dstCfg[dstOf[t]]
		if pol := s["cleanup.policy"]; pol != "" && !strings.Contains(pol, "delete") {
			continue // compacted only: retention does not delete records
		}
		checked++
		for _, k := range []string{"retention.ms", "retention.bytes"} {
			sv, dv := s[k], d[k]
			if sv == "" || dv == "" {
				continue
			}
			if lessRetention(dv, sv) {
				shorts = append(shorts, short{dstOf[t], k, sv, dv})
				items = append(items, fmt.Sprintf("%s %s=%s < source %s", dstOf[t], k, dv, sv))
			}
		}
	}
	c := Check{Details: map[string]any{"shorter": shorts}}
	if len(items) > 0 {
		c.Status = Fail
		c.Evidence = fmt.Sprintf("%s less than the source: %s", plural(len(items), "target retention setting keeps", "target retention settings keep"), list(items, 10))
		c.Remedy = "raise the target topics' retention to at least the source's (kafka-configs --alter --entity-type topics ...); if it is a deliberate target override in configs_exclude, remove it"
		return c
	}
	c.Status = Pass
	c.Evidence = fmt.Sprintf("retention.ms and retention.bytes on the target are at least the source's on all %s (compacted-only topics skipped)", plural(checked, "topic", "topics"))
	return c
}

// replicatedTopics are the flow's topics that exist on the target, with
// the effective configs on both sides.
type replicatedTopics struct {
	srcNames, dstNames []string
	dstOf              map[string]string // source topic -> target topic
	srcCfg, dstCfg     map[string]map[string]string
}

// replicatedConfigs reads them; a check with status failStatus is returned
// when there are none yet or the configs cannot be read.
func (fa *flowAudit) replicatedConfigs(ctx context.Context, failStatus string) (*replicatedTopics, *Check) {
	rt := &replicatedTopics{dstOf: map[string]string{}}
	for _, t := range fa.plan.Topics {
		if t.TargetPartitions > 0 {
			rt.srcNames = append(rt.srcNames, t.Topic)
			rt.dstNames = append(rt.dstNames, t.TargetTopic)
			rt.dstOf[t.Topic] = t.TargetTopic
		}
	}
	if len(rt.srcNames) == 0 {
		return nil, &Check{Status: Pass, Evidence: "no replicated topic exists on the target yet (see " + IDTopicsPresent + ")"}
	}
	var err error
	if rt.srcCfg, err = effectiveConfigs(ctx, fa.sadm, rt.srcNames); err != nil {
		return nil, &Check{Status: failStatus, Evidence: fmt.Sprintf("describe source topic configs on cluster %s: %v", fa.f.Source, err), Remedy: "grant DescribeConfigs on the topics (docs/security.md)"}
	}
	if rt.dstCfg, err = effectiveConfigs(ctx, fa.dadm, rt.dstNames); err != nil {
		return nil, &Check{Status: failStatus, Evidence: fmt.Sprintf("describe target topic configs on cluster %s: %v", fa.f.Target, err), Remedy: "grant DescribeConfigs on the topics (docs/security.md)"}
	}
	return rt, nil
}

// lessRetention reports whether retention value a keeps less than b
// (-1 is unlimited).
func lessRetention(a, b string) bool {
	av, err1 := strconv.ParseInt(a, 10, 64)
	bv, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	if bv < 0 {
		return av >= 0
	}
	return av >= 0 && av < bv
}

// effectiveConfigs returns every topic's effective config values.
func effectiveConfigs(ctx context.Context, adm *kadm.Client, topics []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil && len(rcs) == 0 {
		return nil, err
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return nil, fmt.Errorf("topic %s: %w", rc.Name, rc.Err)
		}
		m := map[string]string{}
		for _, cf := range rc.Configs {
			if cf.Value != nil {
				m[cf.Key] = *cf.Value
			}
		}
		out[rc.Name] = m
	}
	return out, nil
}

// acls: what the source grants that the target lacks, by principal, for
// the ACLs the flow copies (the plan's create_acl actions).
func (fa *flowAudit) acls(context.Context) Check {
	if fa.f.SyncACLs != nil && !*fa.f.SyncACLs {
		return Check{Status: Warn, Evidence: "sync_acls is false: ACLs are not kept in step, so they were not compared",
			Remedy: "set sync_acls: true, or make sure the target grants your applications what the source does"}
	}
	for _, w := range fa.plan.Warnings {
		if w.Kind == metasync.IssueACLsUnsupported {
			var ev string
			if strings.Contains(w.Message, "source cluster") {
				ev = fmt.Sprintf("source has no authorizer; ACL drift not checked (%s)", w.Message)
			} else {
				ev = fmt.Sprintf("target has no authorizer; ACL drift not checked (%s)", w.Message)
			}
			return Check{Status: Warn, Evidence: ev,
				Remedy: "if the clusters should enforce ACLs, configure an authorizer (authorizer.class.name); otherwise nothing to do"}
		}
	}
	var errs []string
	for _, e := range fa.plan.Errors {
		if e.Kind == metasync.IssueACL {
			errs = append(errs, e.Message)
		}
	}
	if len(errs) > 0 {
		return Check{Status: Fail, Evidence: list(errs, 5), Remedy: "grant godwit Describe on CLUSTER on both clusters and Read on the ACL state topic (docs/security.md)"}
	}
	lacking := map[string][]metasync.ACL{}
	var extra []metasync.ACL
	for _, a := range fa.plan.Actions {
		switch a.Kind {
		case metasync.KindCreateACL:
			lacking[a.ACL.Principal] = append(lacking[a.ACL.Principal], *a.ACL)
		case metasync.KindDeleteACL:
			extra = append(extra, *a.ACL)
		}
	}
	principals := make([]string, 0, len(lacking))
	for p := range lacking {
		principals = append(principals, p)
	}
	sort.Strings(principals)
	var items []string
	for _, p := range principals {
		var grants []string
		for _, a := range lacking[p] {
			grants = append(grants, fmt.Sprintf("%s %s on %s %s %q", a.Permission, a.Operation, a.Pattern, strings.ToLower(a.ResourceType), a.Name))
		}
		items = append(items, fmt.Sprintf("%s lacks %s", p, strings.Join(grants, ", ")))
	}
	c := Check{Details: map[string]any{"lacking_by_principal": lacking, "stale_copies": extra}}
	switch {
	case len(items) > 0:
		c.Status = Fail
		c.Evidence = fmt.Sprintf("the target lacks ACLs the source grants to %s: %s", plural(len(principals), "principal", "principals"), list(items, 10))
		c.Remedy = "applications would be refused after failover: " + fa.syncHint()
	case len(extra) > 0:
		c.Status = Warn
		var s []string
		for _, a := range extra {
			s = append(s, a.String())
		}
		c.Evidence = fmt.Sprintf("the target still has %s godwit copied whose source ACL is gone: %s", plural(len(extra), "ACL", "ACLs"), list(s, 10))
		c.Remedy = "the target grants more than the source: " + fa.syncHint()
	default:
		c.Status = Pass
		c.Evidence = "every source topic and group ACL the flow copies is present on the target"
	}
	return c
}
