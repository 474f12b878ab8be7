// Package drillreport is a drill's evidence format: the scenario a drill
// ran (parsed strictly, with defaults), the report it wrote (its JSON is a
// stable contract), the report's Markdown and HTML renderings, and reading
// stored reports back. It is a leaf: readers of reports (godwit audit, the
// drill metrics exporter) import it without pulling in the drill's engine
// (failover, sandbox clusters, fault injection).
package drillreport

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// LagSample is one replication-lag sample, measured by the drill's checker:
// acknowledged records not yet read on the target, and the age of the
// oldest of them.
type LagSample struct {
	T       float64 `json:"t_s"`
	Phase   string  `json:"phase"`
	Records int64   `json:"records"`
	Seconds float64 `json:"seconds"`
}

// Span is a drill phase, in seconds since the start, with the number of
// acknowledged records at its start and end.
type Span struct {
	Name       string  `json:"name"`
	Start      float64 `json:"start_s"`
	End        float64 `json:"end_s"`
	AckedStart int64   `json:"acked_start"`
	AckedEnd   int64   `json:"acked_end"`
}

// RTOPhase is one timed part of the recovery.
type RTOPhase struct {
	Name    string  `json:"name"`
	Start   float64 `json:"start_s"`
	Seconds float64 `json:"seconds"`
}

// RTO is the recovery, phase by phase, from the fault (or the start of a
// planned failover) to consumers caught up (or replication caught up).
type RTO struct {
	FaultAt    float64    `json:"fault_at_s"`
	Total      float64    `json:"total_seconds"`
	Phases     []RTOPhase `json:"phases"`
	Driver     string     `json:"driver"`
	Incomplete bool       `json:"incomplete,omitempty"`
}

// Add appends a phase from..to (seconds since the drill started).
func (r *RTO) Add(name string, from, to float64) {
	r.Phases = append(r.Phases, RTOPhase{Name: name, Start: from, Seconds: max(0, to-from)})
}

// PartitionRow is one source partition in the report.
type PartitionRow struct {
	Topic           string `json:"topic"`
	TargetTopic     string `json:"target_topic"`
	Partition       int32  `json:"partition"`
	LastAckedOffset int64  `json:"last_acked_offset"`
	Acked           int64  `json:"acked"`
	OnTarget        int64  `json:"on_target"`
	// TargetHasOffset is the source offset of the last acknowledged
	// record the target holds with every earlier one (-1: none).
	TargetHasOffset int64  `json:"target_has_through_offset"`
	Lost            int64  `json:"lost"`
	AtRisk          *int64 `json:"at_risk"`
	// Replayed is every processing beyond the first, summed over the
	// groups: ReplayedUncommitted + ReplayedCheckpointLag +
	// ReplayedTranslation. Each replay on the target is placed by the
	// record's source offset (from its provenance headers).
	Replayed int64 `json:"replayed"`
	// ReplayedUncommitted were processed after the group's last commit the
	// source acknowledged (then again on the target), or redelivered by
	// the group's own consumer: inherent to at-least-once consumers.
	ReplayedUncommitted int64 `json:"replayed_uncommitted"`
	// ReplayedCheckpointLag were committed on the source after the source
	// offset the failover translated: an unplanned failover translates
	// godwit's last checkpoint, up to checkpoint_interval behind the
	// group's commits.
	ReplayedCheckpointLag int64 `json:"replayed_checkpoint_lag"`
	// ReplayedTranslation lie before the source offset the failover
	// translated (or in a partition it gave no position), yet were
	// processed again on the target: godwit claims 0.
	ReplayedTranslation int64 `json:"replayed_translation"`
	Skipped             int64 `json:"skipped"`
}

// Totals sums the per-partition figures.
type Totals struct {
	Acked    int64  `json:"acked"`
	OnTarget int64  `json:"on_target"`
	Lost     int64  `json:"lost"`
	AtRisk   *int64 `json:"at_risk"`
	Replayed int64  `json:"replayed"`
	// The split of Replayed, as in PartitionRow.
	ReplayedUncommitted   int64 `json:"replayed_uncommitted"`
	ReplayedCheckpointLag int64 `json:"replayed_checkpoint_lag"`
	ReplayedTranslation   int64 `json:"replayed_translation"`
	Skipped               int64 `json:"skipped"`
	Duplicates            int64 `json:"target_duplicates"`
	Uncertain             int64 `json:"uncertain"`
	Mismatched            int64 `json:"target_mismatched"`
}

// Throughput is a workload phase's measured rate.
type Throughput struct {
	Phase          string  `json:"phase"`
	RecordsPerSec  float64 `json:"records_per_sec"`
	MBPerSec       float64 `json:"mb_per_sec"`
	MaxLagSeconds  float64 `json:"max_lag_seconds"`
	MaxLagRecords  int64   `json:"max_lag_records"`
	MeanLagSeconds float64 `json:"mean_lag_seconds"`
}

// Objective is one pass/fail objective.
type Objective struct {
	Name     string  `json:"name"`
	Target   float64 `json:"objective_seconds"`
	Achieved float64 `json:"achieved_seconds"`
	Pass     bool    `json:"pass"`
	Detail   string  `json:"detail"`
}

// Report is a drill's evidence; its JSON is a stable contract.
type Report struct {
	Name        string         `json:"name"`
	Flow        string         `json:"flow"`
	Source      string         `json:"source"`
	Target      string         `json:"target"`
	Fault       string         `json:"fault"`
	Mode        string         `json:"failover_mode,omitempty"`
	Replicator  string         `json:"replicator"`
	StartedAt   time.Time      `json:"started_at"`
	Seconds     float64        `json:"duration_seconds"`
	Scenario    *Scenario      `json:"scenario"`
	Topics      []TopicSpec    `json:"topics"`
	Groups      []string       `json:"groups"`
	Phases      []Span         `json:"phases"`
	Throughput  []Throughput   `json:"throughput"`
	Lag         []LagSample    `json:"lag"`
	Partitions  []PartitionRow `json:"partitions"`
	Totals      Totals         `json:"totals"`
	RPOSeconds  float64        `json:"rpo_seconds"`
	LossWindow  float64        `json:"loss_window_seconds"`
	RTO         RTO            `json:"rto"`
	Objectives  []Objective    `json:"objectives"`
	Passed      bool           `json:"passed"`
	Statement   string         `json:"statement"`
	Notes       []string       `json:"notes"`
	FailoverRaw any            `json:"failover_report,omitempty"`
	// Connect is the Kafka Connect check, when the scenario has one.
	Connect *ConnectReport `json:"connect,omitempty"`
	// Schemas is the Schema Registry check, for flows with schemas.
	Schemas *SchemaReport `json:"schemas,omitempty"`
	// NetworkPartition is the network-partition fault's evidence.
	NetworkPartition *NetworkPartitionReport `json:"network_partition,omitempty"`
}

// Conclude fills the report's Statement, its conclusion, from the
// measurements.
func (r *Report) Conclude() {
	r.Statement = r.statement()
}

func (r *Report) statement() string {
	var b strings.Builder
	var names []string
	for _, t := range r.Topics {
		names = append(names, fmt.Sprintf("%s (%d partitions)", t.Name, t.Partitions))
	}
	steady, peak := Throughput{}, Throughput{}
	for _, t := range r.Throughput {
		switch t.Phase {
		case "peak":
			peak = t
		default:
			if t.MaxLagSeconds >= steady.MaxLagSeconds {
				steady.MaxLagSeconds = t.MaxLagSeconds
			}
			if t.Phase == "steady" {
				steady.MBPerSec = t.MBPerSec
			}
		}
	}
	fmt.Fprintf(&b, "For topics %s at %s steady and %s peak, replication lag stayed within %s steady and %s at peak; ",
		strings.Join(names, ", "), rate(steady.MBPerSec), rate(peak.MBPerSec), dur(steady.MaxLagSeconds), dur(peak.MaxLagSeconds))
	switch r.Fault {
	case FaultReplicatorCrash:
		fmt.Fprintf(&b, "a replicator crash lost %d acknowledged records and wrote %d duplicates; replication caught up %s after the crash (%s the longest part, %s)",
			r.Totals.Lost, r.Totals.Duplicates, dur(r.RTO.Total), r.RTO.Driver, dur(phaseSeconds(r, r.RTO.Driver)))
	default:
		kind := "unplanned"
		if r.Fault == FaultNone {
			kind = "planned"
		}
		risk := "godwit reported no at-risk figure"
		if r.Totals.AtRisk != nil {
			risk = fmt.Sprintf("godwit reported %d at risk", *r.Totals.AtRisk)
		}
		fmt.Fprintf(&b, "%s failover lost %d acknowledged records (%s); RTO was %s, driven by %s (%s); %d records replayed (%d processed after the group's last commit, %d committed after godwit's last checkpoint, %d from offset translation), %d skipped",
			kind, r.Totals.Lost, risk, dur(r.RTO.Total), r.RTO.Driver, dur(phaseSeconds(r, r.RTO.Driver)),
			r.Totals.Replayed, r.Totals.ReplayedUncommitted, r.Totals.ReplayedCheckpointLag, r.Totals.ReplayedTranslation, r.Totals.Skipped)
	}
	if r.Connect != nil {
		b.WriteString("; " + r.Connect.Sentence())
	}
	b.WriteString(".")
	return b.String()
}

func phaseSeconds(r *Report, name string) float64 {
	for _, p := range r.RTO.Phases {
		if p.Name == name {
			return p.Seconds
		}
	}
	return 0
}

func rate(mbps float64) string {
	if mbps >= 1 {
		return fmt.Sprintf("%.1f MB/s", mbps)
	}
	return fmt.Sprintf("%.0f KB/s", math.Round(mbps*1000))
}

func dur(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.0f ms", s*1000)
	}
	return fmt.Sprintf("%.1f s", s)
}
