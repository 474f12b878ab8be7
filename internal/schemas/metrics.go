package schemas

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the schema sync's Prometheus series, per flow.
type Metrics struct {
	// Synced counts subject versions registered on the target.
	Synced *prometheus.CounterVec
	// Behind is the number of selected subjects the target does not hold
	// in full after the last pass. It is absent (unknown), never 0, while
	// no pass could read both registries.
	Behind *prometheus.GaugeVec
	// SourceVersions is the number of selected subject versions on the
	// source at the last pass.
	SourceVersions *prometheus.GaugeVec
	// Errors counts failed passes and failed subject changes.
	Errors *prometheus.CounterVec
	// LastSuccess is when a pass last completed without error.
	LastSuccess *prometheus.GaugeVec
	// Rewritten counts records whose schema IDs translate-ids rewrote.
	Rewritten *prometheus.CounterVec
}

// NewMetrics registers the schema sync's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Synced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_schema_versions_synced_total", Help: "Subject versions registered on the target's schema registry.",
		}, []string{"flow"}),
		Behind: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_schema_subjects_behind", Help: "Selected subjects the target's registry does not hold in full (versions, IDs, soft-deletes, compatibility) after the last sync pass; absent while unknown.",
		}, []string{"flow"}),
		SourceVersions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_schema_source_versions", Help: "Selected subject versions on the source's registry at the last sync pass.",
		}, []string{"flow"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_schema_sync_errors_total", Help: "Schema sync errors: failed passes (a registry unreachable) and refused subject changes.",
		}, []string{"flow"}),
		LastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_schema_sync_last_success_timestamp_seconds", Help: "When a schema sync pass last completed without error.",
		}, []string{"flow"}),
		Rewritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_schema_ids_rewritten_total", Help: "Record keys and values whose schema ID translate-ids rewrote.",
		}, []string{"flow"}),
	}
	if reg != nil {
		reg.MustRegister(m.Synced, m.Behind, m.SourceVersions, m.Errors, m.LastSuccess, m.Rewritten)
	}
	return m
}
