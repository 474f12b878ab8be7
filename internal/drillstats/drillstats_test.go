package drillstats

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/testkit"
)

// demoReport is report.json of a real `godwit demo` run (see
// internal/drill TestDemoReportIsCurrent).
const demoReport = "../drillreport/testdata/demo-report.json"

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

// writeReport writes the demo report, changed by edit, as root/dir/report.json.
func writeReport(t *testing.T, root, dir string, edit func(*drillreport.Report)) *drillreport.Report {
	t.Helper()
	r, err := drillreport.ReadReport(demoReport)
	if err != nil {
		t.Fatal(err)
	}
	edit(r)
	if err := r.Write(filepath.Join(root, dir)); err != nil {
		t.Fatal(err)
	}
	return r
}

func drilled(day int, passed bool, flow, fault string) func(*drillreport.Report) {
	return func(r *drillreport.Report) {
		r.StartedAt, r.Passed, r.Flow, r.Fault = t0.AddDate(0, 0, day), passed, flow, fault
		r.RPOSeconds, r.RTO.Total = float64(day)/10, float64(day)
		r.Totals.Lost = int64(day)
	}
}

// series flattens gathered families to "name{l=v,...}" -> value.
func series(mfs []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return series(mfs)
}

func finished(r *drillreport.Report) float64 {
	return float64(drillreport.Stored{Report: r}.Finished().UnixMilli()) / 1000
}

func TestSetFromReports(t *testing.T) {
	root := t.TempDir()
	writeReport(t, root, "1", drilled(1, true, "a->b", drillreport.FaultSourceDown))
	pass := writeReport(t, root, "2", drilled(2, true, "a->b", drillreport.FaultSourceDown))
	fail := writeReport(t, root, "3", drilled(3, false, "a->b", drillreport.FaultSourceDown))
	crash := writeReport(t, root, "4", drilled(4, true, "a->b", drillreport.FaultReplicatorCrash))
	writeReport(t, root, "5", drilled(5, true, "x->y", drillreport.FaultSourceDown)) // not a flow of this process
	reports, bad, err := drillreport.LoadReports(root)
	if err != nil || len(bad) != 0 {
		t.Fatal(err, bad)
	}
	reg := prometheus.NewRegistry()
	NewMetrics(reg).Set(reports, 2, []string{"a->b", "c->d"})
	got := gather(t, reg)

	// Labels sorted by name, as gathered.
	sd := "fault=source-down,flow=a->b,scenario=demo: us-west-2 goes down"
	cr := "fault=replicator-crash,flow=a->b,scenario=demo: us-west-2 goes down"
	want := map[string]float64{
		NameLastTimestamp + "{" + sd + "}":                        finished(fail),
		NameLastPassed + "{" + sd + "}":                           0,
		NameLastSuccess + "{" + sd + "}":                          finished(pass),
		NameRPO + "{" + sd + "}":                                  0.3,
		NameRTO + "{" + sd + "}":                                  3,
		NameRPOObjective + "{" + sd + "}":                         5,
		NameRTOObjective + "{" + sd + "}":                         60,
		NameRecordsLost + "{" + sd + "}":                          3,
		NameRecordsReplayed + "{cause=uncommitted," + sd + "}":    float64(fail.Totals.ReplayedUncommitted),
		NameRecordsReplayed + "{cause=checkpoint_lag," + sd + "}": float64(fail.Totals.ReplayedCheckpointLag),
		NameRecordsReplayed + "{cause=translation," + sd + "}":    0,
		NameLastTimestamp + "{" + cr + "}":                        finished(crash),
		NameLastPassed + "{" + cr + "}":                           1,
		NameLastSuccess + "{" + cr + "}":                          finished(crash),
		NameReports + "{flow=a->b}":                               4,
		NameReports + "{flow=c->d}":                               0, // configured, never drilled
		NameReportsUnreadable + "{}":                              2,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if fail.Totals.ReplayedCheckpointLag == 0 {
		t.Error("the demo report has no checkpoint-lag replays: the cause series are not exercised")
	}
	for k := range got {
		if strings.Contains(k, "x->y") {
			t.Errorf("%s: flow x->y is not run by this process", k)
		}
	}
	// 11 per flow/scenario/fault (last_success included) and 2 more.
	if len(got) != 2*11+3 {
		t.Errorf("%d series, want %d:\n%v", len(got), 2*11+3, got)
	}
}

// TestTextfile: drill.prom parses as the Prometheus text format with the
// same series, and carries no timestamps (the textfile collector refuses
// them).
func TestTextfile(t *testing.T) {
	root := t.TempDir()
	r := writeReport(t, root, "", drilled(1, true, "a->b", drillreport.FaultSourceDown))
	reports, _, err := drillreport.LoadReports(root)
	if err != nil || len(reports) != 1 {
		t.Fatal(err, reports)
	}
	path := filepath.Join(root, "drill.prom")
	if err := WriteTextfile(path, reports, 0); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("drill.prom does not parse: %v\n%s", err, b)
	}
	var list []*dto.MetricFamily
	for _, mf := range mfs {
		list = append(list, mf)
		for _, m := range mf.GetMetric() {
			if m.TimestampMs != nil {
				t.Errorf("%s has a timestamp", mf.GetName())
			}
		}
		if mf.GetHelp() == "" || mf.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s: help %q type %v", mf.GetName(), mf.GetHelp(), mf.GetType())
		}
	}
	got := series(list)
	k := "{fault=source-down,flow=a->b,scenario=demo: us-west-2 goes down}"
	if got[NameLastSuccess+k] != finished(r) || got[NameLastPassed+k] != 1 || got[NameReports+"{flow=a->b}"] != 1 {
		t.Errorf("drill.prom:\n%s", b)
	}
}

// TestExporterRefreshes runs the exporter loop: a drill report written
// while it runs shows up in the gauges; its judgement per flow is logged
// once per change, with the component attribute; an unreadable directory
// keeps the last gauges.
func TestExporterRefreshes(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "drills")
	var logs testkit.SyncBuffer
	var mu sync.Mutex
	now := t0.AddDate(0, 0, 1)
	reg := prometheus.NewRegistry()
	e, err := New(Options{
		Dir: dir, Flows: []string{"a->b"}, Interval: 20 * time.Millisecond, MaxAge: 7 * 24 * time.Hour,
		Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	reports := NameReports + "{flow=a->b}"
	testkit.Eventually(t, 5*time.Second, func() (bool, string) {
		_, ok := gather(t, reg)[reports]
		return ok, "no godwit_drill_reports series for a->b before any drill"
	})
	if strings.Count(logs.String(), "no drill report for the flow") != 1 {
		t.Errorf("log:\n%s", logs.String())
	}

	r := writeReport(t, dir, "1", drilled(0, true, "a->b", drillreport.FaultSourceDown))
	k := NameLastSuccess + "{fault=source-down,flow=a->b,scenario=demo: us-west-2 goes down}"
	testkit.Eventually(t, 5*time.Second, func() (bool, string) {
		return gather(t, reg)[k] == finished(r), "the new report's godwit_drill_last_success_timestamp_seconds"
	})
	testkit.Eventually(t, 5*time.Second, func() (bool, string) {
		return strings.Contains(logs.String(), "the newest drill of the flow passed within max_age"), "the fresh judgement logged:\n" + logs.String()
	})

	// Eight days later the drill is older than max_age.
	mu.Lock()
	now = t0.AddDate(0, 0, 8)
	mu.Unlock()
	testkit.Eventually(t, 5*time.Second, func() (bool, string) {
		return strings.Contains(logs.String(), "no passing drill of the flow within max_age"), "the stale judgement logged:\n" + logs.String()
	})

	// The directory becomes unreadable (here: a file): the gauges stay.
	// The loop is stopped first so no refresh sees the directory missing
	// in between (a missing directory is "nothing drilled yet").
	cancel()
	<-done
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.Refresh()
	if !strings.Contains(logs.String(), "keeping the last drill metrics") {
		t.Errorf("the unreadable directory not logged:\n%s", logs.String())
	}
	if got := gather(t, reg); got[k] != finished(r) || got[reports] != 1 {
		t.Errorf("gauges after the directory became unreadable: %v", got)
	}
	out := logs.String()
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(line, "component=drillstats") {
			t.Errorf("log line without component=drillstats: %s", line)
		}
	}
	if n := strings.Count(out, "no passing drill of the flow within max_age"); n != 1 {
		t.Errorf("stale judgement logged %d times, want once:\n%s", n, out)
	}
}

func TestNewNeedsItsDependencies(t *testing.T) {
	lg := slog.New(slog.DiscardHandler)
	for name, o := range map[string]Options{
		"dir":      {Interval: time.Second, Registerer: prometheus.NewRegistry(), Logger: lg},
		"interval": {Dir: "d", Registerer: prometheus.NewRegistry(), Logger: lg},
		"logger":   {Dir: "d", Interval: time.Second, Registerer: prometheus.NewRegistry()},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("missing %s accepted", name)
		}
	}
}
