package metasync

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/godwit/godwit/internal/naming"
)

// Keys whose target value decides whether a copy is faithful. If the
// target keeps a value that loses or rewrites what the source holds (an
// alter or create is refused), the topic is not replicated.
const (
	keyCleanupPolicy   = "cleanup.policy"
	keyMaxMessageBytes = "max.message.bytes"
	keyTimestampType   = "message.timestamp.type"
	createTime         = "CreateTime"
)

var safetyKeys = []string{keyCleanupPolicy, keyMaxMessageBytes, keyTimestampType}

func isSafetyKey(k string) bool {
	for _, s := range safetyKeys {
		if s == k {
			return true
		}
	}
	return false
}

// safety holds a topic's effective values of the safety keys: on the
// source, on the target now, and on the target once the plan is applied.
type safety struct {
	src, dst, projected map[string]string
}

// unsafeReason says why a target configured as dst cannot hold a faithful
// copy of a source configured as src; key is empty when it can.
func unsafeReason(src, dst map[string]string) (key, why string) {
	if v := dst[keyTimestampType]; v != "" && v != createTime {
		return keyTimestampType, fmt.Sprintf("target has message.timestamp.type=%s, which replaces the source's record timestamps; it must be CreateTime", v)
	}
	if d, s := dst[keyCleanupPolicy], src[keyCleanupPolicy]; d != "" && s != "" &&
		strings.Contains(d, "compact") && !strings.Contains(s, "compact") {
		return keyCleanupPolicy, fmt.Sprintf("target has cleanup.policy=%s but the source has cleanup.policy=%s: the target would compact away records the source keeps", d, s)
	}
	if d, s := dst[keyMaxMessageBytes], src[keyMaxMessageBytes]; d != "" && s != "" {
		dn, err1 := strconv.ParseInt(d, 10, 64)
		sn, err2 := strconv.ParseInt(s, 10, 64)
		if err1 == nil && err2 == nil && dn < sn {
			return keyMaxMessageBytes, fmt.Sprintf("target has max.message.bytes=%d, below the source's %d: record batches the source accepted could not be copied", dn, sn)
		}
	}
	return "", ""
}

// SourceTopics lists the source topics the flow selects.
func (s *Syncer) SourceTopics(ctx context.Context) (kadm.TopicDetails, error) {
	all, err := s.srcAdm.ListTopics(fresh(ctx))
	if err != nil {
		return nil, fmt.Errorf("flow %s: list source topics on cluster %s: %w", s.flow.Name, s.flow.Source, err)
	}
	out := kadm.TopicDetails{}
	for name, d := range all {
		if d.Err == nil && s.policy.Select(name) == naming.Selected {
			out[name] = d
		}
	}
	return out, nil
}

// Plan computes what a pass would change on the target for sourceTopics
// (already selected by the flow, e.g. from SourceTopics), changing
// nothing. An error means a cluster could not be read at all; problems
// with single topics are in the plan's Errors and Warnings.
func (s *Syncer) Plan(ctx context.Context, sourceTopics kadm.TopicDetails) (*Plan, error) {
	p := &Plan{
		Flow: s.flow.Name, Source: s.flow.Source, Target: s.flow.Target,
		Topics: []TopicState{}, Actions: []Action{}, Warnings: []Issue{}, Errors: []Issue{},
		unsafe: map[string]*safety{},
	}
	var names []string
	for name, d := range sourceTopics {
		if d.Err == nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if err := s.planTopics(ctx, p, sourceTopics, names); err != nil {
		return nil, err
	}
	if s.flow.SyncACLs == nil || *s.flow.SyncACLs {
		if err := s.planACLs(ctx, p, names); err != nil {
			return nil, err
		}
	}
	p.sort()
	if s.m != nil {
		s.m.Drift.WithLabelValues(s.flowLabel()).Set(float64(len(p.Actions)))
	}
	return p, nil
}

func (s *Syncer) syncConfigs() bool {
	return s.flow.SyncTopicConfigs == nil || *s.flow.SyncTopicConfigs
}

func (s *Syncer) planTopics(ctx context.Context, p *Plan, sourceTopics kadm.TopicDetails, names []string) error {
	if len(names) == 0 {
		return nil
	}
	targets := make([]string, len(names))
	for i, n := range names {
		targets[i] = s.policy.TargetTopic(n)
	}
	dst, err := s.dstAdm.ListTopics(fresh(ctx), targets...)
	if err != nil {
		return fmt.Errorf("flow %s: describe target topics on cluster %s: %w", s.flow.Name, s.flow.Target, err)
	}
	var existing []string
	for _, t := range targets {
		if d, ok := dst[t]; ok && d.Err == nil {
			existing = append(existing, t)
		}
	}
	srcCfgs, err := s.describeConfigs(ctx, s.srcAdm, names)
	if err != nil {
		return fmt.Errorf("flow %s: describe source topic configs on cluster %s: %w", s.flow.Name, s.flow.Source, err)
	}
	dstCfgs, err := s.describeConfigs(ctx, s.dstAdm, existing)
	if err != nil {
		return fmt.Errorf("flow %s: describe target topic configs on cluster %s: %w", s.flow.Name, s.flow.Target, err)
	}
	brokers := -1
	if rf := s.flow.ReplicationFactor; rf > 0 && len(existing) < len(targets) {
		md, err := s.dstAdm.BrokerMetadata(ctx)
		if err != nil {
			return fmt.Errorf("flow %s: broker metadata of cluster %s: %w", s.flow.Name, s.flow.Target, err)
		}
		brokers = len(md.Brokers)
	}

	for i, topic := range names {
		target := targets[i]
		n := int32(len(sourceTopics[topic].Partitions))
		ts := TopicState{Topic: topic, TargetTopic: target, SourcePartitions: n}
		blocked := func(kind, key, msg string) {
			ts.Blocked = msg
			p.Errors = append(p.Errors, Issue{Kind: kind, Topic: topic, Key: key, Message: msg})
		}
		d, listed := dst[target]
		src := srcCfgs[topic]
		switch {
		case listed && d.Err != nil && !errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			blocked(IssueDescribe, "", fmt.Sprintf("describe target topic %q on cluster %s: %v", target, s.flow.Target, d.Err))

		case !listed || d.Err != nil: // missing on the target
			switch {
			case !s.flow.CreatesTopics():
				blocked(IssueTargetMissing, "", fmt.Sprintf("target topic %q on cluster %s is missing and create_topics is false: create it with %d partitions or enable create_topics", target, s.flow.Target, n))
			case src.err != nil:
				blocked(IssueDescribe, "", fmt.Sprintf("cannot read the configs of source topic %q on cluster %s (%v); target topic %q is created once they can be read", topic, s.flow.Source, src.err, target))
			case brokers > 0 && s.flow.ReplicationFactor > brokers:
				blocked(IssueReplicationFactor, "replication_factor", fmt.Sprintf("cannot create target topic %q: replication_factor %d is larger than the %d broker(s) of target cluster %s; lower replication_factor or add brokers", target, s.flow.ReplicationFactor, brokers, s.flow.Target))
			default:
				cfgs := map[string]string{keyTimestampType: createTime}
				if s.syncConfigs() {
					for k, v := range s.desired(src) {
						cfgs[k] = v
					}
				}
				rf := int16(-1)
				if s.flow.ReplicationFactor > 0 {
					rf = int16(s.flow.ReplicationFactor)
				}
				p.Actions = append(p.Actions, Action{
					Kind: KindCreateTopic, Topic: topic, TargetTopic: target, Partitions: n,
					ReplicationFactor: rf, Configs: cfgs,
					Reason: fmt.Sprintf("source topic %q (%d partitions) is missing on the target", topic, n),
				})
			}

		default: // exists on the target
			have := int32(len(d.Partitions))
			ts.TargetPartitions = have
			switch {
			case have < n && s.flow.CreatesTopics():
				p.Actions = append(p.Actions, Action{
					Kind: KindAddPartitions, Topic: topic, TargetTopic: target, Partitions: n, From: have,
					Reason: fmt.Sprintf("source has %d partitions, target %d", n, have),
				})
			case have < n:
				p.Errors = append(p.Errors, Issue{Kind: IssueTargetMissing, Topic: topic, Key: "partitions", Message: fmt.Sprintf(
					"target topic %q on cluster %s has %d of %d partitions and create_topics is false: partitions %d..%d are not replicated until you add them or enable create_topics",
					target, s.flow.Target, have, n, have, n-1)})
			case have > n:
				p.Warnings = append(p.Warnings, Issue{Kind: IssueTargetMorePartitions, Topic: topic, Key: "partitions", Message: fmt.Sprintf(
					"target topic %q has %d partitions but source topic %q has %d: partitions are copied 1:1 and target partitions %d..%d get nothing from this flow (a target never shrinks)",
					target, have, topic, n, n, have-1)})
			}
			if src.err != nil {
				p.Warnings = append(p.Warnings, Issue{Kind: IssueDescribe, Topic: topic, Message: fmt.Sprintf("cannot read the configs of source topic %q: %v; configs not synced this pass", topic, src.err)})
				break
			}
			dc := dstCfgs[target]
			if dc.err != nil {
				p.Warnings = append(p.Warnings, Issue{Kind: IssueDescribe, Topic: topic, Message: fmt.Sprintf("cannot read the configs of target topic %q: %v; configs not synced this pass", target, dc.err)})
				break
			}
			sf := &safety{src: src.effective(), dst: dc.effective(), projected: dc.effective()}
			if s.syncConfigs() {
				for _, a := range s.configActions(topic, target, src, dc) {
					p.Actions = append(p.Actions, a)
					if a.Value != nil {
						sf.projected[a.Key] = *a.Value
					} else {
						sf.projected[a.Key] = dc.fallback(a.Key)
					}
				}
			}
			p.unsafe[topic] = sf
			if key, why := unsafeReason(sf.src, sf.projected); key != "" {
				if !s.syncConfigs() {
					why += " (sync_topic_configs is false)"
				} else if s.Excluded(key) && key != keyTimestampType {
					why += " (the key is in configs_exclude)"
				}
				blocked(IssueUnsafeConfig, key, fmt.Sprintf("topic %q not replicated: %s", topic, why))
			}
		}
		p.Topics = append(p.Topics, ts)
	}
	return nil
}

// configActions are the alters that make target configs follow the source.
func (s *Syncer) configActions(topic, target string, src, dst topicConfigs) []Action {
	var out []Action
	want := s.desired(src)
	have := dst.dynamic()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		v := want[k]
		old, ok := have[k]
		if ok && old == v {
			continue
		}
		a := Action{Kind: KindAlterConfig, Topic: topic, TargetTopic: target, Key: k, Value: strp(v),
			Reason: fmt.Sprintf("source sets %s=%s", k, v)}
		if ok {
			a.Old = strp(old)
		}
		out = append(out, a)
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[k]; ok || s.Excluded(k) {
			continue
		}
		out = append(out, Action{Kind: KindAlterConfig, Topic: topic, TargetTopic: target, Key: k, Old: strp(have[k]),
			Reason: fmt.Sprintf("source uses the default for %s; the target override is removed so the target's default applies", k)})
	}
	if v := dst.effective()[keyTimestampType]; v != "" && v != createTime {
		a := Action{Kind: KindAlterConfig, Topic: topic, TargetTopic: target, Key: keyTimestampType, Value: strp(createTime),
			Reason: "the target must keep the source's record timestamps (message.timestamp.type=CreateTime)"}
		if old, ok := have[keyTimestampType]; ok {
			a.Old = strp(old)
		}
		out = append(out, a)
	}
	return out
}

// desired are the source configs copied to the target: those set on the
// topic (not defaults), minus the excluded keys.
func (s *Syncer) desired(src topicConfigs) map[string]string {
	out := map[string]string{}
	for k, v := range src.dynamic() {
		if !s.Excluded(k) {
			out[k] = v
		}
	}
	return out
}

type topicConfigs struct {
	configs []kadm.Config
	err     error
}

// dynamic returns the configs set on the topic itself.
func (c topicConfigs) dynamic() map[string]string {
	out := map[string]string{}
	for _, cf := range c.configs {
		if cf.Source == kmsg.ConfigSourceDynamicTopicConfig && cf.Value != nil && !cf.Sensitive {
			out[cf.Key] = *cf.Value
		}
	}
	return out
}

// effective returns every readable config value, defaults included.
func (c topicConfigs) effective() map[string]string {
	out := map[string]string{}
	for _, cf := range c.configs {
		if cf.Value != nil {
			out[cf.Key] = *cf.Value
		}
	}
	return out
}

// fallback is the value key takes once its topic override is removed.
func (c topicConfigs) fallback(key string) string {
	for _, cf := range c.configs {
		if cf.Key != key {
			continue
		}
		for _, syn := range cf.Synonyms {
			if syn.Source != kmsg.ConfigSourceDynamicTopicConfig && syn.Value != nil {
				return *syn.Value
			}
		}
	}
	return ""
}

func (s *Syncer) describeConfigs(ctx context.Context, adm *kadm.Client, topics []string) (map[string]topicConfigs, error) {
	out := map[string]topicConfigs{}
	if len(topics) == 0 {
		return out, nil
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil && len(rcs) == 0 {
		return nil, err
	}
	for _, rc := range rcs {
		e := rc.Err
		if e != nil && rc.ErrMessage != "" {
			e = fmt.Errorf("%w: %s", e, rc.ErrMessage)
		}
		out[rc.Name] = topicConfigs{configs: rc.Configs, err: e}
	}
	for _, t := range topics {
		if _, ok := out[t]; !ok {
			e := err
			if e == nil {
				e = errors.New("no answer for this topic")
			}
			out[t] = topicConfigs{err: e}
		}
	}
	return out, nil
}

// fresh makes kadm skip its metadata cache (kept up to 5s), so a pass
// sees topics and partitions created a moment ago, e.g. by the last pass.
func fresh(ctx context.Context) context.Context { return kadm.WithAuthorizedOps(ctx) }
