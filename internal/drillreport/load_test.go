package drillreport

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// demoReport is report.json of a real `godwit demo` run (unplanned
// source-down drill on the embedded clusters), copied into testdata.
const demoReport = "testdata/demo-report.json"

// TestDemoReportIsCurrent decodes the stored demo report and checks it
// holds exactly the keys the Report type writes today, so tests built on
// it (here, in internal/audit and internal/drillstats) cannot drift from
// the real format. When Report changes, regenerate it:
//
//	go run ./cmd/godwit demo --out /tmp/demo && cp /tmp/demo/report.json internal/drillreport/testdata/demo-report.json
func TestDemoReportIsCurrent(t *testing.T) {
	r, err := ReadReport(demoReport)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(demoReport)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var stored, current map[string]any
	if err := json.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &current); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", "totals", "rto", "scenario", "partitions"} {
		if a, b := keys(stored, path), keys(current, path); !reflect.DeepEqual(a, b) {
			t.Errorf("%s: %s has keys %v, the Report type writes %v: regenerate it (see the test's comment)", demoReport, orTop(path), a, b)
		}
	}
	if r.Flow != "us-west-2->us-east-1" || r.Fault != FaultSourceDown || !r.Passed || r.Scenario == nil || r.Scenario.Objectives.RTO.D() != 60*time.Second {
		t.Errorf("decoded: flow %q fault %q passed %v scenario %+v", r.Flow, r.Fault, r.Passed, r.Scenario)
	}
	if tot := r.Totals; tot.Replayed != tot.ReplayedUncommitted+tot.ReplayedCheckpointLag+tot.ReplayedTranslation {
		t.Errorf("replayed %d is not the sum of its causes %+v", tot.Replayed, tot)
	}
}

func orTop(p string) string {
	if p == "" {
		return "top level"
	}
	return p
}

func keys(m map[string]any, path string) []string {
	v := any(m)
	if path != "" {
		v = m[path]
	}
	if l, ok := v.([]any); ok && len(l) > 0 {
		v = l[0]
	}
	obj, _ := v.(map[string]any)
	out := make([]string, 0, len(obj))
	for k := range obj {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// storedDemo returns the demo report changed by edit, written as
// dir/report.json (dir relative to root; "" writes into root).
func storedDemo(t *testing.T, root, dir string, edit func(*Report)) string {
	t.Helper()
	r, err := ReadReport(demoReport)
	if err != nil {
		t.Fatal(err)
	}
	edit(r)
	d := filepath.Join(root, dir)
	if err := r.Write(d); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(d, FileJSON)
}

func TestLoadReports(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	at := func(days int, passed bool, flow string) func(*Report) {
		return func(r *Report) {
			r.StartedAt, r.Passed, r.Flow = t0.AddDate(0, 0, days), passed, flow
		}
	}
	const ab, cd = "a->b", "c->d"
	top := storedDemo(t, root, "", at(0, true, ab))
	newestPass := storedDemo(t, root, "d2", at(2, true, ab))
	newest := storedDemo(t, root, "d3", at(3, false, ab))
	storedDemo(t, root, "d1", at(1, false, ab))
	other := storedDemo(t, root, "e1", at(5, false, cd))
	storedDemo(t, root, "deeper/x", at(9, true, ab)) // two levels down: not read
	if err := os.MkdirAll(filepath.Join(root, "broken"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "broken", FileJSON), []byte(`{"name": "x", "flow": `), 0o644); err != nil {
		t.Fatal(err)
	}

	reports, bad, err := LoadReports(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || !strings.Contains(bad[0].Error(), filepath.Join("broken", FileJSON)) {
		t.Errorf("unreadable: %v, want the broken report named", bad)
	}
	var got []string
	for _, s := range reports {
		got = append(got, s.Report.StartedAt.Format("02"))
	}
	if strings.Join(got, ",") != "01,02,03,04,06" {
		t.Errorf("reports by finish time: %v, want days 01,02,03,04,06", got)
	}
	if f := reports[0].Finished(); !f.Equal(t0.Add(time.Duration(reports[0].Report.Seconds * float64(time.Second)))) {
		t.Errorf("finished %v", f)
	}
	l := LatestBy(reports, func(r *Report) string { return r.Flow })
	if a := l[ab]; a == nil || a.Reports != 4 || a.Newest.Path != newest || a.NewestPassing.Path != newestPass {
		t.Errorf("a->b: %+v, want 4 reports, newest %s, newest passing %s", a, newest, newestPass)
	}
	if c := l[cd]; c == nil || c.Reports != 1 || c.Newest.Path != other || c.NewestPassing != nil {
		t.Errorf("c->d: %+v, want 1 failing report", c)
	}

	// No directory: no reports, no error (nothing drilled yet).
	if r, b, err := LoadReports(filepath.Join(root, "nope")); err != nil || len(r)+len(b) != 0 {
		t.Errorf("missing dir: %v %v %v", r, b, err)
	}
	// A file where the directory should be is an error.
	if _, _, err := LoadReports(top); err == nil {
		t.Error("a file as the reports directory: no error")
	}
}

func TestMissedAndReportDir(t *testing.T) {
	r := &Report{Objectives: []Objective{
		{Name: "rpo", Target: 5, Achieved: 0.4, Pass: true},
		{Name: "rto", Target: 60, Achieved: 95, Pass: false},
	}}
	if got := r.Missed(); got != "RTO 95.0 s > 60.0 s" {
		t.Errorf("Missed() = %q", got)
	}
	r.Objectives[1] = Objective{Name: "rto", Target: 60, Achieved: 3, Detail: "the failover failed: boom"}
	if got := r.Missed(); got != "RTO not met (the failover failed: boom)" {
		t.Errorf("Missed() = %q", got)
	}
	if got := ReportDir("/r", "us-west-2->us-east-1", time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))); got != "/r/20260102-020405-us-west-2-to-us-east-1" {
		t.Errorf("ReportDir = %s", got)
	}
}
