package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/godwit/godwit/internal/audit"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/drillstats"
	"github.com/godwit/godwit/internal/testkit"
)

// TestDrillIntoReportsThenAudit: with drill.reports configured, `godwit
// drill` (no --out) writes its report and drill.prom into a timestamped
// directory there, and `godwit audit` judges the flow's drill from it.
func TestDrillIntoReportsThenAudit(t *testing.T) {
	p := testkit.KfakePair(t)
	cfgPath, src, dst := testkit.FlowConfigFile(t, p, "prefixed", "delivery: exactly-once", false)
	flow := src + "->" + dst
	fh, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fh.WriteString("drill: {reports: drills, max_age: 24h}\n") // relative to the config file
	fh.Close()
	scenario := filepath.Join(t.TempDir(), "planned.yaml")
	if err := os.WriteFile(scenario, []byte(`name: planned
topics: [{name: orders, partitions: 2}]
workload: {rate: 100, record_size: 100, peak: {rate: 300, duration: 1s}}
fault: {type: none}
failover: {timeout: 45s}
phases: {steady: 2s, after: 1s}
objectives: {rpo_objective: 10s, rto_objective: 60s}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if code := runContext(ctx, []string{"drill", "-c", cfgPath, "--scenario", scenario, "--cleanup"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("drill exit %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
	reportsDir := filepath.Join(filepath.Dir(cfgPath), "drills")
	found, _ := filepath.Glob(filepath.Join(reportsDir, "*", drillreport.FileJSON))
	if len(found) != 1 {
		t.Fatalf("report.json files under %s: %v; want one", reportsDir, found)
	}
	dir := filepath.Dir(found[0])
	if want := "-" + src + "-to-" + dst; !strings.HasSuffix(dir, want) {
		t.Errorf("report directory %s does not end in %s", dir, want)
	}
	if !strings.Contains(stdout.String(), "drill.prom") {
		t.Errorf("drill output does not mention drill.prom:\n%s", stdout.String())
	}

	// drill.prom: the drill's gauges, for node_exporter's textfile collector.
	b, err := os.ReadFile(filepath.Join(dir, "drill.prom"))
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("drill.prom: %v\n%s", err, b)
	}
	r, err := drillreport.ReadReport(found[0])
	if err != nil {
		t.Fatal(err)
	}
	finished := float64(drillreport.Stored{Report: r}.Finished().UnixMilli()) / 1000
	if got := gaugeOf(mfs, drillstats.NameLastSuccess, flow); got != finished {
		t.Errorf("%s{flow=%q} = %v, want the drill's end %v\n%s", drillstats.NameLastSuccess, flow, got, finished, b)
	}
	if got := gaugeOf(mfs, drillstats.NameReports, flow); got != 1 {
		t.Errorf("%s = %v, want 1", drillstats.NameReports, got)
	}

	// The audit finds it.
	stdout.Reset()
	stderr.Reset()
	runContext(ctx, []string{"audit", "-c", cfgPath, "-o", "json"}, &stdout, &stderr)
	var rep audit.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("audit -o json: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	for _, c := range rep.Checks {
		if c.ID == audit.IDDrill {
			if c.Status != audit.Pass || !strings.Contains(c.Evidence, `scenario "planned", fault none`) || !strings.Contains(c.Evidence, found[0]) {
				t.Errorf("drill.last: %s %s", c.Status, c.Evidence)
			}
			t.Logf("drill.last: %s %s", c.Status, c.Evidence)
			return
		}
	}
	t.Errorf("no %s check in the audit", audit.IDDrill)
}

// gaugeOf is the value of name's series whose flow label is flow.
func gaugeOf(mfs map[string]*dto.MetricFamily, name, flow string) float64 {
	for _, m := range mfs[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "flow" && lp.GetValue() == flow {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}
