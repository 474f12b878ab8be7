package config

import (
	"fmt"
	"strings"
)

// Reasons for MM2 keys godwit has no field for, by key without its
// cluster ("west."), flow ("west->east.") or client role ("producer.")
// prefix. Each says what godwit does instead, so a reader can judge
// whether anything is lost.
const (
	reasonConnectStorage = "Kafka Connect's own storage: godwit keeps its state (progress, offset map, checkpoints) in godwit.A-B.* topics on the target"
	reasonInternalRF     = "godwit creates its internal topics with the cluster's default.replication.factor"
	reasonConnectWorker  = "Kafka Connect worker setting: godwit instances share a flow's slots through a Kafka consumer group, with no Connect worker or REST between them"
	reasonMetrics        = "godwit exports Prometheus metrics on http.listen (/metrics) instead of JMX reporters"
	reasonConverters     = "godwit copies keys, values and headers as bytes, unchanged (what MM2's ByteArrayConverter does)"
	reasonClientTuning   = "client tuning: godwit sizes its own clients (memory_budget, max_batch_bytes, commit_interval); only bootstrap servers, TLS and SASL are per cluster"
	reasonTLSTuning      = "godwit's TLS is Go's crypto/tls (TLS 1.2 and later, Go's cipher suites); JVM TLS settings do not apply"
	reasonSASLTuning     = "SASL client tuning: godwit's SASL needs only mechanism, username and password (or aws_msk_iam)"
	reasonOffsetSyncs    = "godwit has no offset-syncs topic: its offset map, written on the target in the same transaction as the records, records every record, so translation is exact"
	reasonErrors         = "godwit never skips a record: one the target refuses stops its partition with an error naming it, and the others continue"
	reasonExactlyOnce    = "godwit writes exactly once by default (delivery: exactly-once), with no Connect worker setting"
	reasonFilterClass    = "custom filter class: godwit filters with regex lists; express the filter as %s"
)

var mm2Reasons = map[string]string{
	"tasks.max":                                           "godwit's parallelism is the flow's slots (default 16), shared by every godwit instance running the flow: run more instances instead of more tasks",
	"sync.group.offsets.interval.seconds":                 "godwit syncs group offsets in every checkpoint pass (checkpoint_interval, default 1s)",
	"emit.checkpoints.enabled":                            "godwit always writes checkpoints: failover translates groups from them",
	"refresh.groups.enabled":                              "godwit lists groups in every checkpoint pass (checkpoint_interval)",
	"refresh.groups.interval.seconds":                     "godwit lists groups in every checkpoint pass (checkpoint_interval)",
	"refresh.topics.enabled":                              "godwit always discovers new topics and partitions, every refresh_interval",
	"sync.topic.configs.interval.seconds":                 "godwit syncs topic configs in every discovery pass (refresh_interval)",
	"sync.topic.acls.interval.seconds":                    "godwit syncs ACLs in every discovery pass (refresh_interval)",
	"offset-syncs.topic.location":                         reasonOffsetSyncs,
	"offset-syncs.topic.replication.factor":               reasonOffsetSyncs,
	"emit.offset-syncs.enabled":                           reasonOffsetSyncs,
	"offset.lag.max":                                      reasonOffsetSyncs,
	"checkpoints.topic.replication.factor":                reasonInternalRF,
	"heartbeats.topic.replication.factor":                 reasonInternalRF,
	"offset.storage.replication.factor":                   reasonConnectStorage,
	"status.storage.replication.factor":                   reasonConnectStorage,
	"config.storage.replication.factor":                   reasonConnectStorage,
	"offset.storage.partitions":                           reasonConnectStorage,
	"status.storage.partitions":                           reasonConnectStorage,
	"offset.storage.topic":                                reasonConnectStorage + "; godwit adopt-mm2 finds where MM2 stopped from its offset syncs and the remote topics, not from Connect's offsets",
	"config.storage.topic":                                reasonConnectStorage,
	"status.storage.topic":                                reasonConnectStorage,
	"group.id":                                            reasonConnectWorker,
	"key.converter":                                       reasonConverters,
	"value.converter":                                     reasonConverters,
	"header.converter":                                    reasonConverters,
	"offset.flush.interval.ms":                            "Kafka Connect offset commits: godwit commits its progress with the data (commit_interval)",
	"offset.flush.timeout.ms":                             "Kafka Connect offset commits: godwit commits its progress with the data (commit_interval)",
	"exactly.once.support":                                reasonExactlyOnce,
	"exactly.once.source.support":                         reasonExactlyOnce,
	"transaction.boundary":                                "godwit commits one transaction per batch (commit_interval, max_batch_bytes)",
	"topic.filter.class":                                  fmt.Sprintf(reasonFilterClass, "topics / topics_exclude"),
	"group.filter.class":                                  fmt.Sprintf(reasonFilterClass, "groups / groups_exclude"),
	"config.property.filter.class":                        fmt.Sprintf(reasonFilterClass, "configs_exclude"),
	"replication.policy.internal.topic.separator.enabled": "names only MM2's own internal topics; godwit's are godwit.A-B.*",
	"use.incremental.alter.configs":                       "godwit always syncs configs with IncrementalAlterConfigs",
	"add.source.alias.to.metrics":                         "godwit's metrics carry a flow label naming source and target",
	"admin.timeout.ms":                                    "godwit bounds its admin requests itself; clusters.<alias>.dial_timeout bounds connecting",
	"consumer.poll.timeout.ms":                            reasonClientTuning,
	"dedicated.mode.enable.internal.rest":                 reasonConnectWorker,
	"listeners":                                           reasonConnectWorker,
	"rest.advertised.host.name":                           reasonConnectWorker,
	"rest.advertised.port":                                reasonConnectWorker,
	"rest.advertised.listener":                            reasonConnectWorker,
	"rest.host.name":                                      reasonConnectWorker,
	"rest.port":                                           reasonConnectWorker,
	"scheduled.rebalance.max.delay.ms":                    reasonConnectWorker,
	"connect.protocol":                                    reasonConnectWorker,
	"session.timeout.ms":                                  reasonConnectWorker,
	"heartbeat.interval.ms":                               reasonConnectWorker,
	"rebalance.timeout.ms":                                reasonConnectWorker,
	"task.shutdown.graceful.timeout.ms":                   reasonConnectWorker,
	"plugin.path":                                         "godwit is one binary with no plugins",
	"config.providers":                                    "godwit reads secrets from password_env or password_file, not Connect config providers: replace ${...} references",
	"metric.reporters":                                    reasonMetrics,
	"metrics.num.samples":                                 reasonMetrics,
	"metrics.recording.level":                             reasonMetrics,
	"metrics.sample.window.ms":                            reasonMetrics,
	"auto.include.jmx.reporter":                           reasonMetrics,
	"client.id":                                           "godwit names its clients after the flow and their role",
	"isolation.level":                                     "godwit always reads read_committed: aborted source records are never copied",
	"acks":                                                "godwit's producers are transactional (exactly-once) or idempotent with acks=all",
	"enable.idempotence":                                  "godwit's producers are transactional (exactly-once) or idempotent with acks=all",
	"source.cluster.alias":                                "set by the flow's name (SOURCE->TARGET)",
	"target.cluster.alias":                                "set by the flow's name (SOURCE->TARGET)",
	"name":                                                "godwit names everything after the flow",
	"connector.class":                                     "godwit runs the source, checkpoint and heartbeat work itself, with no connectors",
	"ssl.truststore.certificates":                         "inline PEM trust store: save it to a file and set clusters.<alias>.tls.ca_file",
	"ssl.keystore.certificate.chain":                      "inline PEM client certificate: save it to a file and set clusters.<alias>.tls.cert_file",
	"ssl.keystore.key":                                    "inline PEM client key: save it to a file (mode 600) and set clusters.<alias>.tls.key_file",
}

// reasonFor is the one-line reason for a key nothing mapped.
func (cv *mm2Converter) reasonFor(k string, haveFlows bool) string {
	if !haveFlows && mm2FlowKeys[k] {
		return "no enabled A->B flow in the file to apply it to"
	}
	base, alias := k, ""
	if name, rest, ok := strings.Cut(k, "."); ok {
		switch {
		case cv.defined[name]:
			base, alias = rest, name
		case strings.Contains(name, "->"):
			base = rest
		}
	}
	role := ""
	for _, r := range []string{"producer.override.", "consumer.override.", "admin.override.", "producer.", "consumer.", "admin.",
		"source.cluster.", "target.cluster.", "source.admin.", "target.admin.", "source.consumer.", "target.producer.", "source.producer.", "target.consumer."} {
		if strings.HasPrefix(base, r) {
			role, base = r, base[len(r):]
			break
		}
	}
	if r, ok := mm2Reasons[base]; ok {
		return r
	}
	proto := cv.protocols[alias]
	switch {
	case k == "bootstrap.servers":
		return "a global bootstrap.servers names no cluster: MM2 and godwit use <alias>.bootstrap.servers"
	case strings.HasSuffix(k, ".bootstrap.servers"):
		return "cluster " + strings.TrimSuffix(k, ".bootstrap.servers") + " is not listed in clusters = ..., so MM2 does not use it"
	case strings.HasPrefix(base, "ssl."):
		if alias != "" && proto != protoSSL && proto != protoSASLSSL {
			return fmt.Sprintf("not used: %s's security.protocol is %s (no TLS), so MM2 ignored it too", alias, orDefault(proto, protoPlaintext))
		}
		if alias == "" && !cv.anyProtocol(protoSSL, protoSASLSSL) {
			return "not used: no cluster's security.protocol uses TLS"
		}
		return reasonTLSTuning
	case strings.HasPrefix(base, "sasl."):
		if alias != "" && proto != protoSASLPlaintext && proto != protoSASLSSL {
			return fmt.Sprintf("not used: %s's security.protocol is %s (no SASL), so MM2 ignored it too", alias, orDefault(proto, protoPlaintext))
		}
		if alias == "" && !cv.anyProtocol(protoSASLPlaintext, protoSASLSSL) {
			return "not used: no cluster's security.protocol uses SASL"
		}
		return reasonSASLTuning
	case base == "security.protocol":
		return "godwit uses one connection setting per cluster for all its clients (clusters.<alias>.tls and .sasl)"
	case strings.HasPrefix(base, "errors."):
		return reasonErrors
	case strings.HasPrefix(base, "offset-syncs."):
		return reasonOffsetSyncs
	case strings.HasPrefix(base, "checkpoints.topic.") || strings.HasPrefix(base, "heartbeats.topic."):
		return reasonInternalRF
	case strings.HasPrefix(base, "config.providers."):
		return mm2Reasons["config.providers"]
	case strings.HasPrefix(base, "metrics.") || strings.HasPrefix(base, "metric."):
		return reasonMetrics
	case strings.HasPrefix(base, "rest.") || strings.HasPrefix(base, "worker."):
		return reasonConnectWorker
	case strings.HasPrefix(base, "offset.storage.") || strings.HasPrefix(base, "config.storage.") || strings.HasPrefix(base, "status.storage."):
		return reasonConnectStorage
	case role != "" || alias != "":
		return reasonClientTuning
	}
	return "not a MirrorMaker 2 setting godwit knows; no equivalent"
}

func (cv *mm2Converter) anyProtocol(protos ...string) bool {
	for _, p := range cv.protocols {
		if contains(protos, p) {
			return true
		}
	}
	return false
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
