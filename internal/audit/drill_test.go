package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/drillreport"
)

// demoReport is report.json of a real `godwit demo` run (see
// internal/drill TestDemoReportIsCurrent); the tests write edited copies
// with the drill's own Report type, so they cannot drift from the format.
const demoReport = "../drillreport/testdata/demo-report.json"

var drillNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

type drillSpec struct {
	dir     string
	flow    string
	daysAgo float64
	passed  bool
}

func writeDrills(t *testing.T, root string, specs ...drillSpec) {
	t.Helper()
	for _, s := range specs {
		r, err := drillreport.ReadReport(demoReport)
		if err != nil {
			t.Fatal(err)
		}
		// Fixed figures, so the evidence does not depend on the run the
		// demo report comes from.
		r.Flow, r.Passed, r.Seconds, r.RPOSeconds, r.RTO.Total = s.flow, s.passed, 20, 0.5, 5
		r.StartedAt = drillNow.Add(-time.Duration(s.daysAgo * 24 * float64(time.Hour)))
		if !s.passed {
			for i := range r.Objectives {
				if r.Objectives[i].Name == "rto" {
					r.Objectives[i].Achieved, r.Objectives[i].Pass = 95, false
				}
			}
			r.RTO.Total = 95
		}
		if err := r.Write(filepath.Join(root, s.dir)); err != nil {
			t.Fatal(err)
		}
	}
}

func drillCheck(t *testing.T, reports string) Check {
	t.Helper()
	cfg, err := config.Parse("/etc/godwit/godwit.yaml", []byte(`clusters:
  a: {bootstrap_servers: ["127.0.0.1:1"]}
  b: {bootstrap_servers: ["127.0.0.1:2"]}
flows:
  a->b: {}
drill: {reports: "`+reports+`", max_age: 168h}
`))
	if err != nil {
		t.Fatal(err)
	}
	fa := &flowAudit{o: &Options{Config: cfg}, f: cfg.Flows["a->b"], now: drillNow}
	return fa.drill(context.Background())
}

func TestDrillCheck(t *testing.T) {
	const ab = "a->b"
	for _, tc := range []struct {
		name    string
		drills  []drillSpec
		status  string
		want    []string // in the evidence
		remedy  string
		details bool
	}{
		{name: "no report yet", status: Warn, want: []string{"no drill report for flow a->b in ", "(0 reports of other flows)"},
			remedy: "godwit drill -c FILE --flow 'a->b'"},
		{name: "only other flows", drills: []drillSpec{{"x", "c->d", 1, true}}, status: Warn,
			want: []string{"no drill report for flow a->b", "(1 report of other flows)"}},
		{name: "passed within max_age", details: true,
			drills: []drillSpec{{"old", ab, 20, false}, {"new", ab, 2, true}}, status: Pass,
			want: []string{`newest drill passed: scenario "demo: us-west-2 goes down", fault source-down, ended 2026-11-29T12:00:20Z (47h59m40s ago)`,
				"RPO 500ms (objective 5s), RTO 5s (objective 1m0s), 0 acknowledged records lost, 0 replayed by offset translation",
				filepath.Join("new", "report.json"), "(max_age 7.0 days)"}},
		{name: "newest missed an objective", details: true,
			drills: []drillSpec{{"1", ab, 3, true}, {"2", ab, 1, false}}, status: Fail,
			want:   []string{"newest drill missed RTO 95.0 s > 60.0 s: ", "RTO 1m35s (objective 1m0s)", "; newest passing drill ended 3.0 days ago"},
			remedy: filepath.Join("2", "report.html")},
		{name: "passing drill too old", drills: []drillSpec{{"1", ab, 10, true}}, status: Warn,
			want: []string{"newest passing drill is older than max_age 7.0 days: ", "(10.0 days ago)"}, remedy: "godwit drill -c FILE --flow 'a->b'"},
		{name: "passing drill too old, failing since", drills: []drillSpec{{"1", ab, 10, true}, {"2", ab, 9, false}}, status: Warn,
			want: []string{"newest passing drill is older than max_age", "; the newest drill (ended 9.0 days ago) missed RTO 95.0 s > 60.0 s"}},
		{name: "only failing drills, old", drills: []drillSpec{{"1", ab, 8, false}}, status: Warn,
			want: []string{"no drill of flow a->b passed; the newest, older than max_age 7.0 days, missed RTO 95.0 s > 60.0 s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "drills")
			writeDrills(t, root, tc.drills...)
			c := drillCheck(t, root)
			if c.Status != tc.status {
				t.Errorf("status %s, want %s: %s", c.Status, tc.status, c.Evidence)
			}
			for _, w := range tc.want {
				if !strings.Contains(c.Evidence, w) {
					t.Errorf("evidence lacks %q:\n%s", w, c.Evidence)
				}
			}
			if !strings.Contains(c.Remedy, tc.remedy) || (c.Status != Pass) != (c.Remedy != "") {
				t.Errorf("remedy %q, want one containing %q (none for PASS)", c.Remedy, tc.remedy)
			}
			if tc.details {
				d, _ := c.Details.(map[string]any)
				nd, _ := d["newest"].(map[string]any)
				if nd == nil || nd["fault"] != drillreport.FaultSourceDown || nd["report"] == "" || d["reports"] != 2 {
					t.Errorf("details %+v", c.Details)
				}
			}
		})
	}
}

func TestDrillCheckNotConfiguredOrUnreadable(t *testing.T) {
	c := drillCheck(t, "")
	if c.Status != Warn || !strings.Contains(c.Evidence, "not configured") || !strings.Contains(c.Remedy, "set drill.reports") {
		t.Errorf("not configured: %+v", c)
	}

	// A file where the directory should be.
	root := t.TempDir()
	file := filepath.Join(root, "drills")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if c := drillCheck(t, file); c.Status != Warn || !strings.Contains(c.Evidence, "cannot read drill.reports") {
		t.Errorf("unreadable directory: %+v", c)
	}

	// A broken report next to a good one: judged on the good one, the
	// broken one named.
	dir := filepath.Join(root, "ok")
	writeDrills(t, dir, drillSpec{"good", "a->b", 1, true})
	if err := os.MkdirAll(filepath.Join(dir, "bad"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad", drillreport.FileJSON), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := drillCheck(t, dir); c.Status != Pass || !strings.Contains(c.Evidence, "1 report could not be read") {
		t.Errorf("with a broken report: %+v", c)
	}
}

// TestDrillCheckInRun: the check runs in its place (drill.last) even when
// both clusters are unreachable; relative drill.reports are found next to
// the config file.
func TestDrillCheckInRun(t *testing.T) {
	dir := t.TempDir()
	writeDrills(t, filepath.Join(dir, "drills"), drillSpec{"1", "a->b", 1, true})
	cfg, err := config.Parse(filepath.Join(dir, "godwit.yaml"), []byte(`clusters:
  a: {bootstrap_servers: ["127.0.0.1:1"]}
  b: {bootstrap_servers: ["127.0.0.1:2"]}
flows:
  a->b: {}
drill: {reports: drills}
`))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{Config: cfg, Flows: []*config.Flow{cfg.Flows["a->b"]},
		Now: func() time.Time { return drillNow }, PingTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checks {
		if c.ID == IDDrill {
			if c.Status != Pass || c.Flow != "a->b" {
				t.Errorf("drill.last: %+v", c)
			}
			return
		}
	}
	t.Fatal("no drill.last check")
}
