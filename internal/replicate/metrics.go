package replicate

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/godwit/godwit/internal/metasync"
)

// Metrics are the replicator's Prometheus series. One Metrics is shared by
// every flow of a process; series carry a flow label.
type Metrics struct {
	reg prometheus.Registerer

	Records       *prometheus.CounterVec
	Bytes         *prometheus.CounterVec
	Filtered      *prometheus.CounterVec
	Lag           *prometheus.GaugeVec
	LastTimestamp *prometheus.GaugeVec
	// SourceEnd and ObservedAt are the source observer's (observer.go):
	// the source end offset last observed, and when the last observation
	// the target acknowledged was made.
	SourceEnd        *prometheus.GaugeVec
	ObservedAt       *prometheus.GaugeVec
	Latency          *prometheus.HistogramVec
	Errors           *prometheus.CounterVec
	Transactions     *prometheus.CounterVec
	AssignedParts    *prometheus.GaugeVec
	AssignedSlots    *prometheus.GaugeVec
	Rebalances       *prometheus.CounterVec
	Stopped          *prometheus.GaugeVec
	TopicsGone       *prometheus.CounterVec
	LostToRetention  *prometheus.CounterVec
	TopicsReplicated *prometheus.GaugeVec
	Heartbeats       *prometheus.CounterVec
	// RPOObjective is each flow's rpo_objective in seconds (0 when unset),
	// set by New for the flows it runs.
	RPOObjective *prometheus.GaugeVec
	// FlowReady reports Flow.Ready() (1/0) at scrape time for the flows
	// added by New.
	FlowReady *readyCollector
	// Sync are metadata sync's metrics, registered on the same registry.
	Sync *metasync.Metrics
}

// NewMetrics registers the replicator's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_replicated_records_total", Help: "Records committed to the target, per flow and source topic.",
		}, []string{"flow", "topic"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_replicated_bytes_total", Help: "Key+value+header bytes committed to the target, per flow and source topic.",
		}, []string{"flow", "topic"}),
		Filtered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_filtered_records_total", Help: "Source records deliberately not copied, by reason (loop: the record originated on the flow's target).",
		}, []string{"flow", "reason"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_replication_lag_records", Help: "Source end offset (observed every second) minus the offset committed on the target, per partition; absent while the source cannot be observed (see godwit_source_observed_timestamp_seconds).",
		}, []string{"flow", "topic", "partition"}),
		SourceEnd: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_source_end_offset", Help: "Source high watermark observed in the last second, per partition; absent while the source cannot be observed.",
		}, []string{"flow", "topic", "partition"}),
		ObservedAt: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_source_observed_timestamp_seconds", Help: "When the last source observation the target stored was made, per partition: failover counts data at risk up to it (time() minus it is how much it cannot see).",
		}, []string{"flow", "topic", "partition"}),
		LastTimestamp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_last_replicated_record_timestamp_seconds", Help: "Timestamp of the last record committed to the target, per partition.",
		}, []string{"flow", "topic", "partition"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "godwit_replication_latency_seconds",
			Help:    "Target commit time minus source record timestamp.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"flow"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_errors_total", Help: "Errors by kind (fetch, produce, commit, metadata, progress, fenced, authorization, record_too_large).",
		}, []string{"flow", "kind"}),
		Transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_commits_total", Help: "Commit units (transactions in exactly-once mode) by result.",
		}, []string{"flow", "result"}),
		AssignedParts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_assigned_partitions", Help: "Source partitions this instance replicates.",
		}, []string{"flow"}),
		AssignedSlots: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_assigned_slots", Help: "Slots this instance owns.",
		}, []string{"flow"}),
		Rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_rebalances_total", Help: "Slot assignment changes seen by this instance.",
		}, []string{"flow"}),
		Stopped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_partition_stopped", Help: "1 when a partition stopped replicating because of an error needing an operator.",
		}, []string{"flow", "topic", "partition"}),
		TopicsGone: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_source_topics_disappeared_total", Help: "Source topics that disappeared while replicated (target data kept).",
		}, []string{"flow"}),
		LostToRetention: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_records_lost_to_retention_total", Help: "Source records deleted by retention before they were replicated.",
		}, []string{"flow", "topic"}),
		TopicsReplicated: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_topics_replicated", Help: "Source topics selected by the flow.",
		}, []string{"flow"}),
		Heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_heartbeats_total", Help: "Heartbeat records written to the source.",
		}, []string{"flow"}),
		RPOObjective: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_rpo_objective_seconds", Help: "The flow's rpo_objective from the config, in seconds (0 when unset).",
		}, []string{"flow"}),
		FlowReady: &readyCollector{
			desc: prometheus.NewDesc("godwit_flow_ready",
				"1 when the flow runs every partition this instance owns (the flow's part of /readyz), else 0.",
				[]string{"flow"}, nil),
			flows: map[string]func() (bool, string){},
		},
	}
	reg.MustRegister(m.Records, m.Bytes, m.Filtered, m.Lag, m.SourceEnd, m.ObservedAt, m.LastTimestamp, m.Latency, m.Errors,
		m.Transactions, m.AssignedParts, m.AssignedSlots, m.Rebalances, m.Stopped, m.TopicsGone,
		m.LostToRetention, m.TopicsReplicated, m.Heartbeats, m.RPOObjective, m.FlowReady)
	m.Sync = metasync.NewMetrics(reg)
	return m
}

// addFlow exports a flow's rpo_objective and readiness.
func (m *Metrics) addFlow(f *Flow) {
	m.RPOObjective.WithLabelValues(f.Name()).Set(f.cfg.RPOObjective.D().Seconds())
	m.FlowReady.add(f.Name(), f.Ready)
}

// readyCollector exports godwit_flow_ready{flow}, evaluated at scrape time.
type readyCollector struct {
	desc  *prometheus.Desc
	mu    sync.Mutex
	flows map[string]func() (bool, string)
}

func (c *readyCollector) add(flow string, ready func() (bool, string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flows[flow] = ready
}

func (c *readyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *readyCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	fs := make(map[string]func() (bool, string), len(c.flows))
	for k, v := range c.flows {
		fs[k] = v
	}
	c.mu.Unlock()
	for flow, ready := range fs {
		v := 0.0
		if ok, _ := ready(); ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, flow)
	}
}

// ClientHooks returns a constructor of franz-go client metrics (kprom)
// for one cluster: each client gets its own kprom instance (kprom keeps
// per-client state), labelled cluster=<alias> and client_id, so the
// brokers of the source and the target are told apart.
func (m *Metrics) ClientHooks(alias string) func() []kgo.Hook {
	reg := lenientRegisterer{prometheus.WrapRegistererWith(prometheus.Labels{"cluster": alias}, m.reg)}
	return func() []kgo.Hook {
		return []kgo.Hook{kprom.NewMetrics("godwit_kafka", kprom.Registerer(reg), kprom.WithClientLabel())}
	}
}

// lenientRegisterer keeps client metrics best-effort: a client whose id
// is already registered (two live clients with one role) is not exported
// twice, and never panics the process.
type lenientRegisterer struct{ prometheus.Registerer }

func (r lenientRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}
