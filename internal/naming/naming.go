// Package naming decides which source topics a flow replicates, what they
// are called on the target, and how replicated records are marked with
// their provenance so that active-active flows never copy a record back to
// the cluster it came from.
package naming

import (
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
)

// Provenance header keys stamped on every replicated record. A record
// that already carries them (it was replicated before, e.g. A->B->C) keeps
// the original values: the origin is where the record was first produced.
const (
	HeaderOriginCluster   = "godwit-origin-cluster"
	HeaderOriginTopic     = "godwit-origin-topic"
	HeaderOriginPartition = "godwit-origin-partition"
	HeaderOriginOffset    = "godwit-origin-offset"
	HeaderPrefix          = "godwit-"
)

// HeartbeatTopic is written on each source cluster by every flow leaving
// it and replicated like any other topic, so replication latency is
// measurable while traffic is idle. It is MirrorMaker 2's name and is
// always replicated as <source><separator>heartbeats (with identical
// naming too, as MM2's IdentityReplicationPolicy does), so MM2's tooling
// (RemoteClusterUtils.upstreamClusters) on the target names the source.
const HeartbeatTopic = "heartbeats"

// LegacyHeartbeatTopic is where godwit wrote heartbeats before it used
// MM2's name. godwit no longer writes or replicates it (replicated, it
// would show MM2's tooling an upstream cluster named "godwit"); for one
// release the audit still reads what was replicated of it before.
// Deprecated: delete it on the sources (and <source>.godwit.heartbeats on
// the targets) once every instance runs a godwit that writes
// HeartbeatTopic.
const LegacyHeartbeatTopic = "godwit.heartbeats"

// IsHeartbeat reports whether a source topic is a flow's own heartbeat
// topic (current or legacy): never failed over, not workload.
func IsHeartbeat(topic string) bool { return topic == HeartbeatTopic || topic == LegacyHeartbeatTopic }

// Heartbeat reports whether a source topic carries heartbeats: the
// flow's own (IsHeartbeat; HeartbeatTopic is replicated whatever the
// topic filter, the legacy one not at all) or ones
// replicated from further upstream (which follow the filter, unlike in
// MM2: a cluster that is the target of many flows would otherwise copy
// every one of them on). Neither is workload (cost, audit counts) and
// neither is failed over.
func (p Policy) Heartbeat(topic string) bool {
	return IsHeartbeat(topic) || p.looksLikeHeartbeat(topic)
}

// looksLikeHeartbeat is MM2's test: heartbeats, or a heartbeat topic
// replicated from further upstream (<alias><sep>heartbeats).
func (p Policy) looksLikeHeartbeat(topic string) bool {
	return topic == HeartbeatTopic || (topic != LegacyHeartbeatTopic && strings.HasSuffix(topic, p.flow.Separator+HeartbeatTopic))
}

// InternalPrefix starts the names of godwit's own topics and groups.
const InternalPrefix = "godwit."

// Policy maps names for one flow.
type Policy struct {
	flow *config.Flow
}

// For returns the naming policy of a flow.
func For(f *config.Flow) Policy { return Policy{flow: f} }

// TargetTopic is the name of sourceTopic on the target cluster.
func (p Policy) TargetTopic(sourceTopic string) string {
	if p.flow.Naming == config.NamingIdentical && !p.looksLikeHeartbeat(sourceTopic) {
		return sourceTopic
	}
	return p.flow.Source + p.flow.Separator + sourceTopic
}

// Reason explains why a topic is not replicated; empty means replicate.
type Reason string

// Reasons a topic is left out.
const (
	Selected       Reason = ""
	ReasonFilter   Reason = "does not match topics / matches topics_exclude"
	ReasonInternal Reason = "internal topic (starts with __ or ., ends with .internal, -internal or .replica)"
	ReasonGodwit   Reason = "godwit's own topic"
	ReasonCycle    Reason = "cycle: its prefix chain names the flow's target cluster"
)

// Select says whether the flow replicates sourceTopic and, if not, why.
// The heartbeat topic is always replicated so latency stays measurable;
// the legacy one is not (it is godwit's own topic now): on the target it
// would show MM2's tooling an upstream cluster named "godwit".
func (p Policy) Select(sourceTopic string) Reason {
	if sourceTopic == HeartbeatTopic {
		return Selected
	}
	if IsInternal(sourceTopic) {
		return ReasonInternal
	}
	if strings.HasPrefix(sourceTopic, InternalPrefix) {
		return ReasonGodwit
	}
	if (p.flow.Naming == config.NamingPrefixed || p.looksLikeHeartbeat(sourceTopic)) && p.isCycle(sourceTopic) {
		return ReasonCycle
	}
	if !p.flow.TopicSelected(sourceTopic) {
		return ReasonFilter
	}
	return Selected
}

// IsInternal reports Kafka-internal and conventionally internal names,
// which MirrorMaker 2 also never replicates.
func IsInternal(topic string) bool {
	return strings.HasPrefix(topic, "__") || strings.HasPrefix(topic, ".") ||
		strings.HasSuffix(topic, ".internal") || strings.HasSuffix(topic, "-internal") ||
		strings.HasSuffix(topic, ".replica")
}

// isCycle walks the prefix chain ("b.a.orders" → b, a) as MM2 does: if any
// prefix is the flow's target, the topic came from the target and copying
// it back would loop.
func (p Policy) isCycle(topic string) bool {
	sep := p.flow.Separator
	parts := strings.Split(topic, sep)
	for _, prefix := range parts[:len(parts)-1] {
		if prefix == p.flow.Target {
			return true
		}
	}
	return false
}

// Origin is a record's provenance.
type Origin struct {
	Cluster   string
	Topic     string
	Partition int32
	Offset    int64
}

// OriginOf reads the provenance headers of a record, if present.
func OriginOf(headers []kgo.RecordHeader) (Origin, bool) {
	var o Origin
	var found int
	for _, h := range headers {
		switch h.Key {
		case HeaderOriginCluster:
			o.Cluster = string(h.Value)
			found++
		case HeaderOriginTopic:
			o.Topic = string(h.Value)
		case HeaderOriginPartition:
			v, _ := strconv.ParseInt(string(h.Value), 10, 32)
			o.Partition = int32(v)
		case HeaderOriginOffset:
			o.Offset, _ = strconv.ParseInt(string(h.Value), 10, 64)
		}
	}
	return o, found > 0
}

// OriginHeaders returns the provenance headers for a record read from
// the source at topic/partition/offset.
func OriginHeaders(o Origin) []kgo.RecordHeader {
	return AppendOriginHeaders(make([]kgo.RecordHeader, 0, 4), o)
}

// AppendOriginHeaders appends the provenance headers of o to dst. It runs
// once per replicated record, so the four values share one allocation
// instead of four; each is capped at its own length, so appending to one
// value reallocates it rather than overwriting the next.
func AppendOriginHeaders(dst []kgo.RecordHeader, o Origin) []kgo.RecordHeader {
	// 11 and 20: the longest decimal int32 and int64, sign included.
	buf := make([]byte, 0, len(o.Cluster)+len(o.Topic)+11+20)
	buf = append(buf, o.Cluster...)
	c := len(buf)
	buf = append(buf, o.Topic...)
	t := len(buf)
	buf = strconv.AppendInt(buf, int64(o.Partition), 10)
	p := len(buf)
	buf = strconv.AppendInt(buf, o.Offset, 10)
	n := len(buf)
	return append(dst,
		kgo.RecordHeader{Key: HeaderOriginCluster, Value: buf[:c:c]},
		kgo.RecordHeader{Key: HeaderOriginTopic, Value: buf[c:t:t]},
		kgo.RecordHeader{Key: HeaderOriginPartition, Value: buf[t:p:p]},
		kgo.RecordHeader{Key: HeaderOriginOffset, Value: buf[p:n:n]},
	)
}

// Internal topic names for a flow on its target cluster.
func ProgressTopic(f *config.Flow) string {
	return InternalPrefix + f.Source + "-" + f.Target + ".progress.internal"
}

// OffsetMapTopic holds, per slot, how source offset ranges map to target
// offset ranges, written in the same transaction as the records.
func OffsetMapTopic(f *config.Flow) string {
	return InternalPrefix + f.Source + "-" + f.Target + ".offsetmap.internal"
}

// ObservedTopic holds, per slot, the source's log start and end offsets
// of the slot's partitions as last observed (flowstate.Observation),
// written every second outside the data transactions so "data at risk"
// stays true when the target refuses data (compacted, one partition per
// slot).
func ObservedTopic(f *config.Flow) string {
	return InternalPrefix + f.Source + "-" + f.Target + ".observed.internal"
}

// JournalTopic holds a flow's failover state and the step journal of its
// failovers and failbacks (internal/journal).
func JournalTopic(f *config.Flow) string {
	return InternalPrefix + f.Source + "-" + f.Target + ".journal.internal"
}

// FailbackTopic holds a flow's failback state: the current or last
// failback and how much of the old primary's tail it copied.
func FailbackTopic(f *config.Flow) string {
	return InternalPrefix + f.Source + "-" + f.Target + ".failback.internal"
}

// JournalTransactionalID is a flow's journal lock: every write of a
// failover or failback of the flow is a transaction of this id.
func JournalTransactionalID(f *config.Flow) string {
	return "godwit-" + f.Source + "-" + f.Target + "-journal"
}

// SlotTransactionalID is the transactional id of a flow's slot n: one
// writer per slot, fenced by Kafka.
func SlotTransactionalID(f *config.Flow, n int) string {
	return "godwit-" + f.Source + "-" + f.Target + "-slot-" + strconv.Itoa(n)
}

// AdoptTransactionalID is the transactional id of godwit adopt-mm2's one
// transaction (starting progress, offset map, adoption records).
func AdoptTransactionalID(f *config.Flow) string {
	return "godwit-" + f.Source + "-" + f.Target + "-adopt"
}

// SlotTransactionalIDs are all the transactional ids slot n writes with:
// the replicator alternates two producers so one transaction fills while
// the previous one commits (docs/architecture.md, Data plane). Fencing a
// slot means fencing every one of them; the first is SlotTransactionalID,
// the id a slot had when it had one producer.
func SlotTransactionalIDs(f *config.Flow, n int) []string {
	id := SlotTransactionalID(f, n)
	return []string{id, id + "-1"}
}

// SlotProducerClients are the client names (cluster.Client prefixes them
// with "godwit-" in the client id a broker sees) of slot n's producers, in
// the order of SlotTransactionalIDs: quotas and broker logs name them.
func SlotProducerClients(f *config.Flow, n int) []string {
	name := f.Name + "-slot-" + strconv.Itoa(n) + "-producer"
	return []string{name, name + "-1"}
}

// AdoptedTopic holds, per source partition, where godwit adopt-mm2 took
// over from MirrorMaker 2 (flowstate.Adoption).
func AdoptedTopic(f *config.Flow) string {
	return InternalPrefix + f.Source + "-" + f.Target + ".adopted.internal"
}

// MemberGroup is the consumer group on the target through which godwit
// instances running the same flow share its slots.
func MemberGroup(f *config.Flow) string {
	return InternalPrefix + f.Source + "-" + f.Target + ".replicators"
}
