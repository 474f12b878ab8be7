package metasync

import "github.com/prometheus/client_golang/prometheus"

// Metrics are metadata sync's Prometheus series, shared by every flow of a
// process (series carry a flow label). Create them once per registry.
type Metrics struct {
	// Actions counts applied changes by kind: create_topic,
	// add_partitions, alter_config, create_acl, delete_acl.
	Actions *prometheus.CounterVec
	// Partitions counts target partitions created (by topic creation or
	// partition increases).
	Partitions *prometheus.CounterVec
	// Drift is the number of differences the last pass found (actions
	// planned), before applying them.
	Drift *prometheus.GaugeVec
	// Errors counts failures by kind (create_topic, add_partitions,
	// alter_config, create_acl, delete_acl, describe, acl_state, blocked).
	Errors *prometheus.CounterVec
	// Warnings counts warnings by kind (target_more_partitions,
	// config_refused, acls_unsupported, ...).
	Warnings *prometheus.CounterVec
	// Passes counts sync passes by result (ok, error).
	Passes *prometheus.CounterVec
}

// NewMetrics registers metadata sync's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_metasync_actions_total",
			Help: "Metadata changes applied to the target, by kind (create_topic, add_partitions, alter_config, create_acl, delete_acl).",
		}, []string{"flow", "kind"}),
		Partitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_metasync_partitions_created_total",
			Help: "Target partitions created by topic creation or partition increases.",
		}, []string{"flow"}),
		Drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_metasync_drift",
			Help: "Differences between source and target metadata found by the last sync pass (changes planned).",
		}, []string{"flow"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_metasync_errors_total",
			Help: "Metadata sync failures by kind.",
		}, []string{"flow", "kind"}),
		Warnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_metasync_warnings_total",
			Help: "Metadata sync warnings by kind (target_more_partitions, config_refused, acls_unsupported, ...).",
		}, []string{"flow", "kind"}),
		Passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_metasync_passes_total",
			Help: "Metadata sync passes by result (ok, error).",
		}, []string{"flow", "result"}),
	}
	reg.MustRegister(m.Actions, m.Partitions, m.Drift, m.Errors, m.Warnings, m.Passes)
	return m
}
