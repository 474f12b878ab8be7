package offsets

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the checkpoint loop's Prometheus series (label flow on all).
type Metrics struct {
	CheckpointAge       *prometheus.GaugeVec
	PositionAge         *prometheus.GaugeVec
	Checkpoints         *prometheus.CounterVec
	TranslationFailures *prometheus.CounterVec
	GroupsSynced        *prometheus.CounterVec
	GroupsSkipped       *prometheus.CounterVec
	Unreplicated        *prometheus.GaugeVec
	Untranslatable      *prometheus.GaugeVec
	Errors              *prometheus.CounterVec
}

// NewMetrics registers the offset metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		CheckpointAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_checkpoint_age_seconds",
			Help: "Seconds since a group's checkpoints were last confirmed current (translated and written to the target's checkpoints topic).",
		}, []string{"flow", "group"}),
		PositionAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_group_position_age_seconds",
			Help: "Age of the newest source commit of a group known on the target: seconds since the checkpoint loop last read the group's committed offsets from the source and stored them in the target's checkpoints topic. An unplanned failover replays what the group committed in that time.",
		}, []string{"flow", "group"}),
		Checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_checkpoints_written_total", Help: "Checkpoint records written to the target's checkpoints topic.",
		}, []string{"flow"}),
		TranslationFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_offset_translation_failures_total",
			Help: "Group partitions that could not be translated, by reason (not_replicated, no_progress, target_missing, error).",
		}, []string{"flow", "reason"}),
		GroupsSynced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_groups_synced_total", Help: "Translated offsets committed to a group on the target (one per group and commit).",
		}, []string{"flow"}),
		GroupsSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_group_sync_skipped_total",
			Help: "Group offset syncs skipped, by reason (active: the target group has members; failed: the commit failed).",
		}, []string{"flow", "reason"}),
		Unreplicated: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_group_unreplicated_records",
			Help: "Source offsets a group consumed that are not on the target yet (group ahead of replication), summed over its partitions; upper bound.",
		}, []string{"flow", "group"}),
		Untranslatable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "godwit_group_untranslatable_partitions", Help: "Partitions with committed offsets a group's offsets cannot be translated on.",
		}, []string{"flow", "group"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "godwit_checkpoint_errors_total", Help: "Checkpoint loop passes that failed, by stage.",
		}, []string{"flow", "stage"}),
	}
	for _, c := range []prometheus.Collector{m.CheckpointAge, m.PositionAge, m.Checkpoints, m.TranslationFailures, m.GroupsSynced, m.GroupsSkipped, m.Unreplicated, m.Untranslatable, m.Errors} {
		reg.MustRegister(c)
	}
	return m
}
