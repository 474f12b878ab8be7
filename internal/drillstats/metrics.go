// Package drillstats turns drill reports into Prometheus metrics: the
// godwit_drill_* gauges that `godwit replicate` exports from the configured
// reports directory (drill.reports) and that `godwit drill` writes to
// drill.prom for node_exporter's textfile collector. Drills are one-shot
// commands; their results outlive them as gauges of the newest report per
// flow, scenario and fault.
package drillstats

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/godwit/godwit/internal/drillreport"
)

// Metric names.
const (
	NameLastTimestamp     = "godwit_drill_last_timestamp_seconds"
	NameLastPassed        = "godwit_drill_last_passed"
	NameLastSuccess       = "godwit_drill_last_success_timestamp_seconds"
	NameRPO               = "godwit_drill_rpo_seconds"
	NameRTO               = "godwit_drill_rto_seconds"
	NameRPOObjective      = "godwit_drill_rpo_objective_seconds"
	NameRTOObjective      = "godwit_drill_rto_objective_seconds"
	NameRecordsLost       = "godwit_drill_records_lost"
	NameRecordsReplayed   = "godwit_drill_records_replayed"
	NameReports           = "godwit_drill_reports"
	NameReportsUnreadable = "godwit_drill_reports_unreadable"
)

// Replay causes (label cause of godwit_drill_records_replayed), the split
// of the drill report's replayed figure.
const (
	CauseUncommitted   = "uncommitted"
	CauseCheckpointLag = "checkpoint_lag"
	CauseTranslation   = "translation"
)

var drillLabels = []string{"flow", "scenario", "fault"}

// Metrics is a collector of the godwit_drill_* gauges. Set replaces all of
// them at once, so a scrape never sees a half-updated set.
type Metrics struct {
	lastTS, lastPassed, lastSuccess, rpo, rto, rpoObj, rtoObj, lost *prometheus.Desc
	replayed, reports, unreadable                                   *prometheus.Desc

	mu      sync.Mutex
	samples []prometheus.Metric
}

// NewMetrics registers the drill gauges on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	m := &Metrics{
		lastTS:      d(NameLastTimestamp, "When the newest drill of this flow, scenario and fault ended (unix seconds).", drillLabels...),
		lastPassed:  d(NameLastPassed, "1 when the newest drill met every objective (rpo_objective, rto_objective), else 0.", drillLabels...),
		lastSuccess: d(NameLastSuccess, "When the newest drill that met every objective ended (unix seconds); absent when none did.", drillLabels...),
		rpo:         d(NameRPO, "RPO the newest drill measured: worst replication lag before the fault, or the age of the oldest lost record if larger.", drillLabels...),
		rto:         d(NameRTO, "RTO the newest drill measured: fault to consumers caught up on the target (replicator-crash: to replication caught up).", drillLabels...),
		rpoObj:      d(NameRPOObjective, "The newest drill's rpo_objective.", drillLabels...),
		rtoObj:      d(NameRTOObjective, "The newest drill's rto_objective.", drillLabels...),
		lost:        d(NameRecordsLost, "Acknowledged records the newest drill found missing on the target after the failover.", drillLabels...),
		replayed: d(NameRecordsReplayed, "Records the newest drill's consumer groups processed again, by cause: uncommitted (after the group's last commit), "+
			"checkpoint_lag (committed after godwit's last checkpoint, unplanned failover), translation (before the translated offset; godwit claims 0).",
			append(append([]string{}, drillLabels...), "cause")...),
		reports:    d(NameReports, "Drill reports found for the flow under drill.reports.", "flow"),
		unreadable: d(NameReportsUnreadable, "report.json files under drill.reports that could not be read or decoded (the log names them)."),
	}
	reg.MustRegister(m)
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.lastTS, m.lastPassed, m.lastSuccess, m.rpo, m.rto, m.rpoObj, m.rtoObj, m.lost, m.replayed, m.reports, m.unreadable} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.samples {
		ch <- s
	}
}

// Set replaces every gauge with what reports (oldest first, as
// drillreport.LoadReports returns them) say: per flow, scenario and fault the
// newest drill and the newest passing one. When flows is not nil, only
// those flows are exported, each with a report count (0 when it has none,
// so an alert can tell "never drilled" from "not configured").
func (m *Metrics) Set(reports []drillreport.Stored, unreadable int, flows []string) {
	keep := map[string]bool{}
	for _, f := range flows {
		keep[f] = true
	}
	var sel []drillreport.Stored
	for _, s := range reports {
		if flows == nil || keep[s.Report.Flow] {
			sel = append(sel, s)
		}
	}
	var out []prometheus.Metric
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	type key struct{ flow, scenario, fault string }
	keys := map[string]key{}
	latest := drillreport.LatestBy(sel, func(r *drillreport.Report) string {
		k := key{r.Flow, r.Name, r.Fault}
		s := k.flow + "\x00" + k.scenario + "\x00" + k.fault
		keys[s] = k
		return s
	})
	ids := make([]string, 0, len(latest))
	for id := range latest {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		l, k := latest[id], keys[id]
		lv := []string{k.flow, k.scenario, k.fault}
		r := l.Newest.Report
		g(m.lastTS, unix(l.Newest), lv...)
		g(m.lastPassed, b2f(r.Passed), lv...)
		if l.NewestPassing != nil {
			g(m.lastSuccess, unix(l.NewestPassing), lv...)
		}
		g(m.rpo, r.RPOSeconds, lv...)
		g(m.rto, r.RTO.Total, lv...)
		if o, ok := r.Objective("rpo"); ok {
			g(m.rpoObj, o.Target, lv...)
		}
		if o, ok := r.Objective("rto"); ok {
			g(m.rtoObj, o.Target, lv...)
		}
		g(m.lost, float64(r.Totals.Lost), lv...)
		t := r.Totals
		for cause, v := range map[string]int64{CauseUncommitted: t.ReplayedUncommitted, CauseCheckpointLag: t.ReplayedCheckpointLag, CauseTranslation: t.ReplayedTranslation} {
			g(m.replayed, float64(v), k.flow, k.scenario, k.fault, cause)
		}
	}
	perFlow := map[string]int{}
	for _, f := range flows {
		perFlow[f] = 0
	}
	for _, s := range sel {
		perFlow[s.Report.Flow]++
	}
	for f, n := range perFlow {
		g(m.reports, float64(n), f)
	}
	g(m.unreadable, float64(unreadable))
	m.mu.Lock()
	m.samples = out
	m.mu.Unlock()
}

func unix(s *drillreport.Stored) float64 { return float64(s.Finished().UnixMilli()) / 1000 }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// WriteTextfile writes the gauges for reports to path in the Prometheus
// text format, atomically (a temporary file renamed into place), as
// node_exporter's textfile collector needs.
func WriteTextfile(path string, reports []drillreport.Stored, unreadable int) error {
	reg := prometheus.NewRegistry()
	NewMetrics(reg).Set(reports, unreadable, nil)
	return prometheus.WriteToTextfile(path, reg)
}
