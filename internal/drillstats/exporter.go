package drillstats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/godwit/godwit/internal/drillreport"
)

// Options configure an Exporter. Every field is required except Now.
type Options struct {
	// Dir is the drill reports directory (config drill.reports).
	Dir string
	// Flows are the flows whose drills are exported (the flows this
	// process replicates).
	Flows []string
	// Interval is how often Dir is read again (drill.refresh_interval).
	Interval time.Duration
	// MaxAge is how old a flow's newest passing drill may be
	// (drill.max_age); older is logged as a warning.
	MaxAge     time.Duration
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock drill ages are measured against (default time.Now).
	Now func() time.Time
}

// Exporter keeps the godwit_drill_* gauges of a long-running process in
// step with the reports directory.
type Exporter struct {
	o   Options
	m   *Metrics
	log *slog.Logger

	// What was logged already, so a refresh only logs changes.
	badSeen map[string]bool
	state   map[string]string // flow -> last logged judgement
}

// New registers the drill gauges on o.Registerer.
func New(o Options) (*Exporter, error) {
	switch {
	case o.Dir == "":
		return nil, errors.New("drillstats: no reports directory (set drill.reports)")
	case o.Interval <= 0:
		return nil, fmt.Errorf("drillstats: refresh interval %v must be positive (drill.refresh_interval)", o.Interval)
	case o.Registerer == nil || o.Logger == nil:
		return nil, errors.New("drillstats: Registerer and Logger are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Exporter{o: o, m: NewMetrics(o.Registerer), log: o.Logger.With("component", "drillstats"),
		badSeen: map[string]bool{}, state: map[string]string{}}, nil
}

// Run refreshes at once, then every Interval until ctx ends.
func (e *Exporter) Run(ctx context.Context) {
	t := time.NewTicker(e.o.Interval)
	defer t.Stop()
	for {
		e.Refresh()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh reads the reports directory once and replaces the gauges. A
// directory it cannot read keeps the previous gauges (the error is logged):
// losing the drill history because of a transient mount problem would
// fire the staleness alert.
func (e *Exporter) Refresh() {
	reports, bad, err := drillreport.LoadReports(e.o.Dir)
	if err != nil {
		e.log.Warn("cannot read the drill reports directory; keeping the last drill metrics", "dir", e.o.Dir, "err", err)
		return
	}
	for _, b := range bad {
		if msg := b.Error(); !e.badSeen[msg] {
			e.badSeen[msg] = true
			e.log.Warn("skipping an unreadable drill report", "err", b)
		}
	}
	e.m.Set(reports, len(bad), e.o.Flows)
	e.judge(reports)
}

// judge logs, per flow, when what its drills say changes: fresh (newest
// drill passed within max_age), failing (newest drill missed an
// objective), stale (no passing drill within max_age) or none.
func (e *Exporter) judge(reports []drillreport.Stored) {
	latest := drillreport.LatestBy(reports, func(r *drillreport.Report) string { return r.Flow })
	now := e.o.Now()
	for _, f := range e.o.Flows {
		l := latest[f]
		var state string
		args := []any{"flow", f, "dir", e.o.Dir, "max_age", e.o.MaxAge}
		switch {
		case l == nil:
			state = "none"
		case !l.Newest.Report.Passed:
			state = "failing"
			args = append(args, "newest", l.Newest.Path, "missed", l.Newest.Report.Missed())
		case now.Sub(l.NewestPassing.Finished()) > e.o.MaxAge:
			state = "stale"
			args = append(args, "newest_passing", l.NewestPassing.Path, "age", now.Sub(l.NewestPassing.Finished()).Round(time.Minute))
		default:
			state = "fresh"
			args = append(args, "newest_passing", l.NewestPassing.Path)
		}
		if e.state[f] == state {
			continue
		}
		e.state[f] = state
		switch state {
		case "fresh":
			e.log.Info("drill reports: the newest drill of the flow passed within max_age", args...)
		case "none":
			e.log.Warn("drill reports: no drill report for the flow; run godwit drill --flow '"+f+"'", args...)
		case "failing":
			e.log.Warn("drill reports: the newest drill of the flow missed an objective", args...)
		case "stale":
			e.log.Warn("drill reports: no passing drill of the flow within max_age; run godwit drill --flow '"+f+"'", args...)
		}
	}
}
