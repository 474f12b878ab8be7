package drill

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/failover"
)

// FailoverRequest asks to fail the drill's topics and groups over.
type FailoverRequest struct {
	Config  *config.Config
	Flow    *config.Flow
	Topics  []string // source topics
	Groups  []string
	Timeout time.Duration
	Logger  *slog.Logger

	// SourceTimeout bounds the source reachability check (0: failover's
	// default).
	SourceTimeout time.Duration
}

// FailoverStep is one timed step of a failover.
type FailoverStep struct {
	Name     string        `json:"name"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	OK       bool          `json:"ok"`
}

// FailoverResult is what the failover reported.
type FailoverResult struct {
	Mode string
	// AtRisk is the data godwit reported at risk, per source partition.
	AtRisk map[TP]int64
	// GroupOffsets are the offsets committed for each group on the
	// target, by target partition.
	GroupOffsets map[string]map[TP]int64
	// GroupSourceOffsets are, for each group moved, the source offsets the
	// failover translated (the group's live commits when the source
	// answered, godwit's last checkpoint when it did not), by source
	// partition.
	GroupSourceOffsets map[string]map[TP]int64
	Steps              []FailoverStep
	// Report is the failover's own report, kept in the drill's JSON.
	Report any
}

// TP is a topic partition.
type TP struct {
	Topic     string
	Partition int32
}

// FailoverFunc performs a failover.
type FailoverFunc func(ctx context.Context, req FailoverRequest) (*FailoverResult, error)

func anyOf(names []string) *regexp.Regexp {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = regexp.QuoteMeta(n)
	}
	return regexp.MustCompile("^(?:" + strings.Join(q, "|") + ")$")
}

// GodwitFailover runs internal/failover (what `godwit failover` runs):
// planned when the source answers, unplanned when it does not.
func GodwitFailover(ctx context.Context, req FailoverRequest) (*FailoverResult, error) {
	rep, err := failover.Run(ctx, failover.Options{
		Config:  req.Config,
		Flow:    req.Flow,
		Topics:  anyOf(req.Topics),
		Groups:  anyOf(req.Groups),
		Timeout: req.Timeout,
		Logger:  req.Logger,

		SourceTimeout: req.SourceTimeout,
	})
	if rep == nil {
		return nil, err
	}
	res := &FailoverResult{Mode: rep.Mode, AtRisk: map[TP]int64{}, GroupOffsets: map[string]map[TP]int64{},
		GroupSourceOffsets: map[string]map[TP]int64{}, Report: rep}
	for _, p := range rep.Partitions {
		res.AtRisk[TP{p.SourceTopic, p.Partition}] = p.AtRiskRecords
	}
	for _, g := range rep.Groups {
		m, src := map[TP]int64{}, map[TP]int64{}
		if g.Committed {
			for _, gp := range g.Partitions {
				m[TP{gp.TargetTopic, gp.Partition}] = gp.TargetOffset
				src[TP{gp.SourceTopic, gp.Partition}] = gp.SourceOffset
			}
		}
		res.GroupOffsets[g.Group] = m
		res.GroupSourceOffsets[g.Group] = src
	}
	for _, s := range rep.Steps {
		res.Steps = append(res.Steps, FailoverStep{Name: s.Name, Start: s.StartedAt, Duration: time.Duration(s.DurationMs) * time.Millisecond, OK: s.OK})
	}
	return res, err
}
