package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/godwit/godwit/internal/drillreport"
)

func (d *drill) buildReport(ctx context.Context, rto *drillreport.RTO, fo *FailoverResult, foErr error) (*drillreport.Report, error) {
	sc := d.sc
	if d.checks == nil {
		d.finalCheck(ctx)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := &drillreport.Report{
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
		r.Topics = append(r.Topics, drillreport.TopicSpec{Name: st.topic, Partitions: st.partitions})
		chk := d.checks[st.topic]
		for p := int32(0); p < st.partitions; p++ {
			acked := st.ledger.Records(p)
			pr := chk.PerPartition[p]
			row := drillreport.PartitionRow{Topic: st.topic, TargetTopic: st.target, Partition: p,
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
		tp := drillreport.Throughput{Phase: sp.Name}
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
	var longest drillreport.RTOPhase
	for _, p := range r.RTO.Phases {
		if p.Seconds > longest.Seconds {
			longest = p
		}
	}
	r.RTO.Driver = longest.Name

	rpoOK := r.RPOSeconds <= sc.Objectives.RPO.D().Seconds()
	r.Objectives = append(r.Objectives, drillreport.Objective{
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
	r.Objectives = append(r.Objectives, drillreport.Objective{
		Name: "rto", Target: sc.Objectives.RTO.D().Seconds(), Achieved: r.RTO.Total, Pass: rtoOK, Detail: det,
	})
	r.Passed = rpoOK && rtoOK
	r.Passed = d.connectOutcome(r) && r.Passed
	r.Passed = d.schemaOutcome(r) && r.Passed
	if r.Notes == nil {
		r.Notes = []string{}
	}
	r.Conclude()
	return r, nil
}
