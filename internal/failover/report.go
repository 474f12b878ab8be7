package failover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/offsets"
)

// Report is the JSON contract of `godwit failover -o json`.
type Report struct {
	Flow       string            `json:"flow"`
	Mode       string            `json:"mode"`
	Operation  string            `json:"operation"`
	DryRun     bool              `json:"dry_run,omitempty"`
	StartedAt  time.Time         `json:"started_at"`
	FinishedAt *time.Time        `json:"finished_at"`
	Topics     []string          `json:"topics"`
	Partitions []PartitionReport `json:"partitions"`
	Groups     []GroupReport     `json:"groups"`
	RPO        RPO               `json:"rpo"`
	Steps      []journal.Step    `json:"steps"`
	Runs       []journal.Run     `json:"runs"`
	Cutover    *HookResult       `json:"cutover,omitempty"`
	Notes      []string          `json:"notes,omitempty"`
	Error      string            `json:"error,omitempty"`
}

// PartitionReport is one source partition's position at failover.
type PartitionReport struct {
	SourceTopic      string `json:"source_topic"`
	TargetTopic      string `json:"target_topic"`
	Partition        int32  `json:"partition"`
	SourceEndOffset  int64  `json:"source_end_offset"`
	ReplicatedOffset int64  `json:"replicated_offset"`
	AtRiskRecords    int64  `json:"at_risk_records"`
	// SourceEndObservedAt is when SourceEndOffset was read (live for a
	// planned failover, the replicator's last stored observation for an
	// unplanned one).
	SourceEndObservedAt time.Time `json:"source_end_observed_at"`
	// ObservationAgeSeconds is how old that observation was when the
	// failover assessed the data at risk: the bound of AtRiskRecords,
	// which misses only what the source acknowledged after the
	// observation. Absent (unknown) when the source was never observed.
	ObservationAgeSeconds *float64 `json:"source_end_observation_age_seconds,omitempty"`
	// AtRiskBytesEstimate is AtRiskRecords times the average size of the
	// partition's last replicated records (see RPO).
	AtRiskBytesEstimate int64 `json:"at_risk_bytes_estimate"`
	// AtRiskSeconds bounds the age of the oldest unreplicated record at
	// the observation: observation time minus the timestamp of the last
	// replicated record.
	AtRiskSeconds float64 `json:"at_risk_seconds"`
}

// GroupReport is one group's translated offsets on the target.
type GroupReport struct {
	Group      string           `json:"group"`
	Partitions []GroupPartition `json:"partitions"`
	// Committed says the offsets were committed on the target; Skipped
	// says why not (active members on the target, refused).
	Committed      bool                     `json:"committed"`
	Skipped        string                   `json:"skipped,omitempty"`
	OffsetsFrom    string                   `json:"offsets_from"`
	Untranslatable []offsets.Untranslatable `json:"untranslatable,omitempty"`
	// PositionBasis says what the position's age rests on: "live" (read
	// from the source by this failover), "positions_confirmation" (the
	// checkpoint loop confirmed the group's checkpoints current then) or
	// "checkpoint_timestamp" (the newest checkpoint record's time stamp
	// only: an upper bound of the age). Empty in reports of older godwit.
	PositionBasis string `json:"position_basis,omitempty"`
	// PositionObservedAt is when the source last had the position
	// translated; an unplanned failover replays what the group committed
	// after it.
	PositionObservedAt *time.Time `json:"position_observed_at,omitempty"`
	// PositionAgeSeconds is how much older than the operation's start
	// PositionObservedAt is.
	PositionAgeSeconds float64 `json:"position_age_seconds"`
}

// GroupPartition is a group's offset on one target partition.
type GroupPartition struct {
	TargetTopic  string `json:"target_topic"`
	Partition    int32  `json:"partition"`
	TargetOffset int64  `json:"target_offset"`
	SourceTopic  string `json:"source_topic"`
	SourceOffset int64  `json:"source_offset"`
	Metadata     string `json:"-"`
}

// RPO sums the data at risk. Records are counted (source end last
// observed minus replicated offset); Bytes is an estimate: each
// partition's at-risk records times the average key+value+headers size
// of its last (up to ~100) replicated records on the target, godwit's
// provenance headers left out. Seconds is
// the largest AtRiskSeconds.
type RPO struct {
	Records        int64   `json:"records"`
	Bytes          int64   `json:"bytes"`
	Seconds        float64 `json:"seconds"`
	BytesEstimated bool    `json:"bytes_estimated"`
	// ObservedAt is the oldest source end-offset observation the
	// records count rests on; records the source acknowledged after it
	// are not counted (unplanned failover).
	ObservedAt *time.Time `json:"observed_at,omitempty"`
	// ObservationAgeSeconds is how much older than the operation's
	// start ObservedAt is: the bound of Records, which misses only what
	// the source acknowledged after ObservedAt (unplanned failover).
	ObservationAgeSeconds float64 `json:"observation_age_seconds,omitempty"`
}

// groupsOf returns the operation's groups as far as it got: translated,
// then committed.
func groupsOf(op *journal.Op) ([]GroupReport, error) {
	if c, ok, err := stepCommit.Result(op); ok || err != nil {
		return c.groups(), err
	}
	if g, ok, err := stepFinalSync.Result(op); ok || err != nil {
		return g.groups(), err
	}
	a, _, err := stepAssess.Result(op)
	return a.groups(), err
}

// buildReport assembles the report from the operation's journaled steps.
func (r *runner) buildReport() *Report {
	rep := &Report{Flow: r.o.Flow.Name, DryRun: r.o.DryRun, Partitions: []PartitionReport{}, Groups: []GroupReport{}, Steps: []journal.Step{}, Topics: []string{}}
	if r.op == nil {
		return rep
	}
	if err := fromOp(r.o.Flow.Name, r.op, rep); err != nil {
		rep.Notes = append(rep.Notes, "the journal holds a step detail this report cannot read: "+err.Error())
	}
	return rep
}

// fromOp fills rep from the operation's journaled steps; an error names a
// record it could not decode (what it could is filled in).
func fromOp(flow string, op *journal.Op, rep *Report) error {
	rep.Flow, rep.Mode, rep.Operation, rep.StartedAt, rep.FinishedAt = flow, op.Mode, op.ID, op.StartedAt, op.FinishedAt
	var errs []error
	var p params
	errs = append(errs, op.DecodeParams(&p))
	if p.Topics != nil {
		rep.Topics = p.Topics
	}
	lr, _, err := stepWaitLag.Latest(op)
	errs = append(errs, err)
	if a, ok, err := stepAssess.Result(op); ok {
		lr = &a.lagResult
	} else {
		errs = append(errs, err)
	}
	if lr != nil && lr.Partitions != nil {
		rep.Partitions = lr.Partitions
	}
	rep.RPO = sumRPO(rep.Partitions)
	groups, err := groupsOf(op)
	errs = append(errs, err)
	if groups != nil {
		rep.Groups = groups
	}
	for _, latest := range []func(*journal.Op) (*HookResult, bool, error){stepCutover.Failed, stepCutover.Result} {
		h, ok, err := latest(op)
		errs = append(errs, err)
		if ok && h.Command != "" {
			rep.Cutover = h
		}
	}
	if fr, ok, err := stepFence.Result(op); ok && fr.Note != "" {
		rep.Notes = append(rep.Notes, fr.Note)
	} else {
		errs = append(errs, err)
	}
	rep.Steps = append(rep.Steps, op.Steps...)
	rep.Runs = op.Runs
	if rep.Mode == Unplanned {
		if at := rep.RPO.ObservedAt; at != nil && !rep.StartedAt.IsZero() {
			age := rep.StartedAt.Sub(*at).Seconds()
			rep.RPO.ObservationAgeSeconds = max(age, 0)
			// The replicator observes the source every second while it
			// reaches it; an older observation means it lost the source
			// before this failover, and only the source knows what it
			// acknowledged since.
			if age > staleObservation.Seconds() {
				rep.Notes = append(rep.Notes, fmt.Sprintf("the source was last observed %s, %.1f s before this failover started: "+
					"records the source acknowledged after that are not in at_risk_records. If producers could still write to it "+
					"(a network partition rather than a crash), the real loss is larger; godwit failback recovers those records once the source is reachable",
					at.UTC().Format(time.RFC3339), age))
			}
		}
		if at := rep.RPO.ObservedAt; at != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("bound: at_risk_records misses only what the source acknowledged after %s (%.1f s before this failover started; per partition: source_end_observation_age_seconds)",
				at.UTC().Format(time.RFC3339Nano), rep.RPO.ObservationAgeSeconds))
		} else if len(rep.Partitions) > 0 {
			rep.Notes = append(rep.Notes, "bound: unknown: the replicator never stored an observation of the source's end offsets, so at_risk_records counts only up to the replicated offsets")
		}
		rep.Notes = append(rep.Notes, "at_risk_records = source end offset last observed by the replicator's source observer (every second, persisted on the target; source_end_observed_at) - replicated offset; records produced after that observation are not known. rpo.bytes is an estimate (at-risk records x average size of the partition's last replicated records); rpo.seconds bounds the age of the oldest unreplicated record (observation time - timestamp of the last replicated record)")
	}
	return errors.Join(errs...)
}

// State returns the flow's failover state and the report of its current
// or last operation (nil if none), read from the target alone.
func State(ctx context.Context, cfg *config.Config, f *config.Flow) (*journal.FlowState, *Report, []journal.Event, error) {
	dst, err := cluster.New(cfg, f.Target)
	if err != nil {
		return nil, nil, nil, err
	}
	cl, err := dst.Client(f.Name+"-failover-status", nil, kgo.RetryTimeout(15*time.Second))
	if err != nil {
		return nil, nil, nil, err
	}
	defer cl.Close()
	st, err := journal.ReadFlowState(ctx, cl, f)
	if err != nil {
		return nil, nil, nil, cluster.Explain(dst, err)
	}
	evs, err := journal.ReadEvents(ctx, cl, f)
	if err != nil {
		return nil, nil, nil, cluster.Explain(dst, err)
	}
	if st.Op == nil {
		return st, nil, evs, nil
	}
	rep := &Report{Partitions: []PartitionReport{}, Groups: []GroupReport{}, Steps: []journal.Step{}, Topics: []string{}}
	if err := fromOp(f.Name, st.Op, rep); err != nil {
		return nil, nil, nil, fmt.Errorf("flow %s: failover journal on %s: %w", f.Name, f.Target, err)
	}
	return st, rep, evs, nil
}
