package drill

import (
	"context"
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

func (r *RTO) add(name string, from, to float64) {
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
	// NetworkPartition is the network-partition fault's evidence.
	NetworkPartition *NetworkPartitionReport `json:"network_partition,omitempty"`
}

func (d *drill) buildReport(ctx context.Context, rto *RTO, fo *FailoverResult, foErr error) (*Report, error) {
	sc := d.sc
	if d.checks == nil {
		d.finalCheck(ctx)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := &Report{
		Name: sc.Name, Flow: d.o.Flow.Name, Source: d.o.Flow.Source, Target: d.o.Flow.Target,
		Fault: sc.Fault.Type, Replicator: d.rep.Kind(), StartedAt: d.start.UTC(),
		Seconds: time.Since(d.start).Seconds(), Scenario: sc,
		Phases: d.spans, Lag: d.samples, RTO: *rto, Notes: append([]string{}, d.notes...),
	}
	if n := len(r.Phases); n > 0 && r.Phases[n-1].End == 0 {
		r.Phases[n-1].End = r.Seconds
		r.Phases[n-1].AckedEnd = d.acked()
	}
	if fo != nil {
		r.Mode, r.FailoverRaw = fo.Mode, fo.Report
	}
	for _, g := range d.groups {
		r.Groups = append(r.Groups, g.name)
	}
	var atRiskSum int64
	haveAtRisk := fo != nil && len(fo.AtRisk) > 0
	var oldestLost time.Time
	var noOrigin int64
	for _, st := range d.streams {
		r.Topics = append(r.Topics, TopicSpec{Name: st.topic, Partitions: st.partitions})
		chk := d.checks[st.topic]
		for p := int32(0); p < st.partitions; p++ {
			acked := st.ledger.Records(p)
			pr := chk.PerPartition[p]
			row := PartitionRow{Topic: st.topic, TargetTopic: st.target, Partition: p,
				LastAckedOffset: -1, TargetHasOffset: -1, Acked: int64(len(acked)),
				OnTarget: pr.Found, Lost: pr.Missing}
			if len(acked) > 0 {
				row.LastAckedOffset = acked[len(acked)-1].Offset
			}
			set := d.ck.parts[st.topic][p]
			d.ck.mu.Lock()
			for _, a := range acked {
				if !set.has(a.Seq) {
					if oldestLost.IsZero() || a.Timestamp.Before(oldestLost) {
						oldestLost = a.Timestamp
					}
					break
				}
				row.TargetHasOffset = a.Offset
			}
			d.ck.mu.Unlock()
			if haveAtRisk {
				v := fo.AtRisk[TP{st.topic, p}]
				row.AtRisk = &v
				atRiskSum += v
			}
			for _, g := range d.groups {
				rp, split, sk := g.tally(TP{st.topic, p}, func(fn func(int64)) {
					if sc.FailsOver() {
						// Every record on the target must be processed.
						d.ck.mu.Lock()
						seqs := make([]int64, 0, set.distinct())
						for q := int64(0); q < set.contiguous; q++ {
							seqs = append(seqs, q)
						}
						for q := range set.extra {
							seqs = append(seqs, q)
						}
						d.ck.mu.Unlock()
						for _, q := range seqs {
							fn(q)
						}
					} else {
						for _, a := range acked {
							fn(a.Seq)
						}
					}
				})
				row.Replayed += rp
				row.ReplayedUncommitted += split.uncommitted
				row.ReplayedCheckpointLag += split.checkpointLag
				row.ReplayedTranslation += split.translation
				noOrigin += split.noOrigin
				row.Skipped += sk
			}
			r.Partitions = append(r.Partitions, row)
			t := &r.Totals
			t.Acked += row.Acked
			t.OnTarget += row.OnTarget
			t.Lost += row.Lost
			t.Replayed += row.Replayed
			t.ReplayedUncommitted += row.ReplayedUncommitted
			t.ReplayedCheckpointLag += row.ReplayedCheckpointLag
			t.ReplayedTranslation += row.ReplayedTranslation
			t.Skipped += row.Skipped
		}
		r.Totals.Duplicates += chk.Duplicates
		r.Totals.Uncertain += int64(st.ledger.UncertainLen())
		r.Totals.Mismatched += chk.Mismatched
	}
	if haveAtRisk {
		r.Totals.AtRisk = &atRiskSum
	}
	if noOrigin > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d replayed records on the target had no godwit provenance headers, so their source offset is unknown; they are counted as replayed_translation", noOrigin))
	}
	faultAt := d.start.Add(time.Duration(rto.FaultAt * float64(time.Second)))
	if r.Totals.Lost > 0 && !oldestLost.IsZero() {
		r.LossWindow = max(0, faultAt.Sub(oldestLost).Seconds())
	}

	// Throughput and lag per workload phase.
	var before float64 // worst lag before the fault
	for _, sp := range r.Phases {
		switch sp.Name {
		case "steady", "peak", "steady-after":
		default:
			continue
		}
		tp := Throughput{Phase: sp.Name}
		if dur := sp.End - sp.Start; dur > 0 {
			tp.RecordsPerSec = float64(sp.AckedEnd-sp.AckedStart) / dur
			tp.MBPerSec = tp.RecordsPerSec * float64(sc.Workload.RecordSize) / 1e6
		}
		var sum float64
		var n int
		for _, s := range r.Lag {
			if s.Phase == sp.Name {
				tp.MaxLagSeconds = max(tp.MaxLagSeconds, s.Seconds)
				tp.MaxLagRecords = max(tp.MaxLagRecords, s.Records)
				sum += s.Seconds
				n++
			}
		}
		if n > 0 {
			tp.MeanLagSeconds = sum / float64(n)
		}
		before = max(before, tp.MaxLagSeconds)
		r.Throughput = append(r.Throughput, tp)
	}
	r.RPOSeconds = max(before, r.LossWindow)

	// Driver: the longest RTO phase.
	var longest RTOPhase
	for _, p := range r.RTO.Phases {
		if p.Seconds > longest.Seconds {
			longest = p
		}
	}
	r.RTO.Driver = longest.Name

	rpoOK := r.RPOSeconds <= sc.Objectives.RPO.D().Seconds()
	r.Objectives = append(r.Objectives, Objective{
		Name: "rpo", Target: sc.Objectives.RPO.D().Seconds(), Achieved: r.RPOSeconds, Pass: rpoOK,
		Detail: "worst replication lag before the fault, or the age of the oldest lost record at the fault if larger",
	})
	rtoOK := !r.RTO.Incomplete && foErr == nil && r.RTO.Total <= sc.Objectives.RTO.D().Seconds()
	det := "fault to consumers caught up on the target"
	if !sc.FailsOver() {
		det = "crash to every record acknowledged before the restart on the target"
	}
	if foErr != nil {
		det += "; the failover failed: " + foErr.Error()
	}
	r.Objectives = append(r.Objectives, Objective{
		Name: "rto", Target: sc.Objectives.RTO.D().Seconds(), Achieved: r.RTO.Total, Pass: rtoOK, Detail: det,
	})
	r.Passed = rpoOK && rtoOK
	r.Passed = d.connectOutcome(r) && r.Passed
	if r.Notes == nil {
		r.Notes = []string{}
	}
	r.Statement = statement(r)
	return r, nil
}

// statement is the report's conclusion, filled from measurements.
func statement(r *Report) string {
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
		b.WriteString("; " + r.Connect.sentence())
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
