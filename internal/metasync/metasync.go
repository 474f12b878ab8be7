// Package metasync makes a flow's target ready to take production traffic:
// it creates the target topics with the source's partition counts and
// configs, keeps partitions and configs following the source, and copies
// topic and consumer-group ACLs.
//
// A pass is Plan (read both clusters, compute the differences, change
// nothing) followed by Apply. `godwit sync plan` prints a plan, `godwit
// sync apply` applies one, and the replicator runs a pass every
// refresh_interval before it publishes the partitions it may replicate.
package metasync

import (
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/naming"
)

// DefaultConfigsExclude are the topic configs never copied, as in
// MirrorMaker 2's DefaultConfigPropertyFilter: throttles and
// min.insync.replicas depend on the target's brokers, unclean leader
// election is a target durability choice, and the timestamp settings would
// make the target rewrite or refuse the source's record timestamps.
// configs_exclude adds to this list (regexes, whole-name match).
var DefaultConfigsExclude = []string{
	"follower.replication.throttled.replicas",
	"leader.replication.throttled.replicas",
	"message.timestamp.difference.max.ms",
	"message.timestamp.type",
	"unclean.leader.election.enable",
	"min.insync.replicas",
}

// Action kinds, in the order a pass applies them.
const (
	KindCreateTopic   = "create_topic"
	KindAddPartitions = "add_partitions"
	KindAlterConfig   = "alter_config"
	KindCreateACL     = "create_acl"
	KindDeleteACL     = "delete_acl"
)

var kindRank = map[string]int{KindCreateTopic: 0, KindAddPartitions: 1, KindAlterConfig: 2, KindCreateACL: 3, KindDeleteACL: 4}

// Action is one change a pass makes on the target.
type Action struct {
	Kind string `json:"kind"`
	// Topic is the source topic; TargetTopic its name on the target.
	Topic       string `json:"topic,omitempty"`
	TargetTopic string `json:"target_topic,omitempty"`
	// Partitions is the partition count to create or grow to; From the
	// target's current count (add_partitions).
	Partitions        int32 `json:"partitions,omitempty"`
	From              int32 `json:"from,omitempty"`
	ReplicationFactor int16 `json:"replication_factor,omitempty"`
	// Configs are the topic configs a create_topic sets.
	Configs map[string]string `json:"configs,omitempty"`
	// Key, Value and Old describe an alter_config: Value nil resets the
	// key to the target's default (the source uses its default).
	Key   string  `json:"key,omitempty"`
	Value *string `json:"value,omitempty"`
	Old   *string `json:"old,omitempty"`
	// ACL is the target ACL a create_acl/delete_acl creates or deletes.
	ACL    *ACL   `json:"acl,omitempty"`
	Reason string `json:"reason"`

	sources []ACL // source ACLs a create_acl comes from
}

// Issue is a warning or error found while planning or applying.
type Issue struct {
	Kind    string `json:"kind"`
	Topic   string `json:"topic,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

func (i Issue) String() string { return i.Message }

// Issue kinds.
const (
	IssueTargetMorePartitions = "target_more_partitions"
	IssueTargetMissing        = "target_topic_missing"
	IssueReplicationFactor    = "replication_factor"
	IssueConfigRefused        = "config_refused"
	IssueUnsafeConfig         = "unsafe_config"
	IssueCreateTopic          = "create_topic"
	IssueAddPartitions        = "add_partitions"
	IssueDescribe             = "describe"
	IssueACLsUnsupported      = "acls_unsupported"
	IssueACL                  = "acl"
)

// TopicState is a selected source topic and its target, as planned.
type TopicState struct {
	Topic            string `json:"topic"`
	TargetTopic      string `json:"target_topic"`
	SourcePartitions int32  `json:"source_partitions"`
	// TargetPartitions is the target's count before the plan is applied
	// (0: missing).
	TargetPartitions int32 `json:"target_partitions"`
	// Blocked explains why the topic must not be replicated (empty when
	// it may be, once the plan's actions for it are applied).
	Blocked string `json:"blocked,omitempty"`
}

// Plan is what a pass would change, deterministically sorted so it can be
// compared and reviewed.
type Plan struct {
	Flow     string       `json:"flow"`
	Source   string       `json:"source"`
	Target   string       `json:"target"`
	Topics   []TopicState `json:"topics"`
	Actions  []Action     `json:"actions"`
	Warnings []Issue      `json:"warnings"`
	Errors   []Issue      `json:"errors"`

	// staleOwned are ownership records of ACLs godwit created that are
	// neither wanted nor present any more; Apply forgets them.
	staleOwned []ACL
	// unsafe maps a source topic to its safety-relevant keys and the
	// values the target must not keep if an alter is refused.
	unsafe map[string]*safety
}

// Result is what Apply did.
type Result struct {
	Applied  []Action `json:"applied"`
	Warnings []Issue  `json:"warnings"`
	Errors   []Issue  `json:"errors"`
	// Ready is, per source topic, how many of its partitions exist on the
	// target and may be replicated (partitions 0..n-1). A topic missing
	// from Ready (or 0) is not ready.
	Ready map[string]int32 `json:"ready"`
}

// Syncer syncs one flow's metadata from its source to its target.
type Syncer struct {
	flow           *config.Flow
	policy         naming.Policy
	src, dst       *kgo.Client
	srcAdm, dstAdm *kadm.Client
	log            *slog.Logger
	m              *Metrics
	exclude        []*regexp.Regexp
	stateTopic     string

	warnMu sync.Mutex
	warned map[string]bool
}

// New returns a Syncer for flow using clients of its source and target
// cluster (the caller closes them). m may be nil.
func New(flow *config.Flow, src, dst *kgo.Client, log *slog.Logger, m *Metrics) *Syncer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Syncer{
		flow:       flow,
		policy:     naming.For(flow),
		src:        src,
		dst:        dst,
		srcAdm:     kadm.NewClient(src),
		dstAdm:     kadm.NewClient(dst),
		log:        log.With("component", "metasync", "flow", flow.Name),
		m:          m,
		stateTopic: ACLStateTopic(flow),
		warned:     map[string]bool{},
	}
	for _, e := range append(append([]string(nil), DefaultConfigsExclude...), flow.ConfigsExclude...) {
		// Validated by config; a bad expression here matches nothing.
		if re, err := regexp.Compile(`^(?:` + e + `)$`); err == nil {
			s.exclude = append(s.exclude, re)
		}
	}
	return s
}

// ACLStateTopic is the compacted topic on the flow's target recording the
// target ACLs godwit created (keyed by the ACL's identity; a tombstone once
// deleted). The ".internal" suffix keeps it out of replication.
func ACLStateTopic(f *config.Flow) string {
	return naming.InternalPrefix + f.Source + "-" + f.Target + ".acls.internal"
}

// Excluded reports whether a topic config key is never copied.
func (s *Syncer) Excluded(key string) bool {
	for _, re := range s.exclude {
		if re.MatchString(key) {
			return true
		}
	}
	return false
}

// warnOnce logs a warning the first time key is seen by this Syncer.
func (s *Syncer) warnOnce(key, msg string, args ...any) {
	s.warnMu.Lock()
	seen := s.warned[key]
	s.warned[key] = true
	s.warnMu.Unlock()
	if !seen {
		s.log.Warn(msg, args...)
	}
}

func (s *Syncer) flowLabel() string { return s.flow.Name }

func (s *Syncer) countErr(kind string) {
	if s.m != nil {
		s.m.Errors.WithLabelValues(s.flowLabel(), kind).Inc()
	}
}

func (s *Syncer) countWarn(kind string) {
	if s.m != nil {
		s.m.Warnings.WithLabelValues(s.flowLabel(), kind).Inc()
	}
}

func (s *Syncer) countAction(a Action) {
	if s.m == nil {
		return
	}
	s.m.Actions.WithLabelValues(s.flowLabel(), a.Kind).Inc()
	switch a.Kind {
	case KindCreateTopic:
		s.m.Partitions.WithLabelValues(s.flowLabel()).Add(float64(a.Partitions))
	case KindAddPartitions:
		s.m.Partitions.WithLabelValues(s.flowLabel()).Add(float64(a.Partitions - a.From))
	}
}

// sortPlan orders everything deterministically.
func (p *Plan) sort() {
	sort.Slice(p.Topics, func(i, j int) bool { return p.Topics[i].Topic < p.Topics[j].Topic })
	sort.SliceStable(p.Actions, func(i, j int) bool { return actionLess(p.Actions[i], p.Actions[j]) })
	sortIssues(p.Warnings)
	sortIssues(p.Errors)
}

func actionLess(a, b Action) bool {
	if kindRank[a.Kind] != kindRank[b.Kind] {
		return kindRank[a.Kind] < kindRank[b.Kind]
	}
	if a.TargetTopic != b.TargetTopic {
		return a.TargetTopic < b.TargetTopic
	}
	if a.Key != b.Key {
		return a.Key < b.Key
	}
	if a.ACL != nil && b.ACL != nil {
		return a.ACL.ID() < b.ACL.ID()
	}
	return false
}

func sortIssues(is []Issue) {
	sort.SliceStable(is, func(i, j int) bool {
		a, b := is[i], is[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.Message < b.Message
	})
}

// Summary is a one-line description of a plan for logs.
func (p *Plan) Summary() string {
	counts := map[string]int{}
	for _, a := range p.Actions {
		counts[a.Kind]++
	}
	var parts []string
	for _, k := range []string{KindCreateTopic, KindAddPartitions, KindAlterConfig, KindCreateACL, KindDeleteACL} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
		}
	}
	if len(parts) == 0 {
		return "in sync"
	}
	return strings.Join(parts, " ")
}

func strp(s string) *string { return &s }
