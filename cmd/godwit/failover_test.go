package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/failover"
)

// TestFailoverCLI: dry run, then a planned failover with -o json and the
// cutover hook, then failover status, through the CLI on kfake.
func TestFailoverCLI(t *testing.T) {
	hookOut := filepath.Join(t.TempDir(), "hook")
	fx := newFlowFixture(t, "prefixed", "cutover: {command: 'echo $GODWIT_BOOTSTRAP_SERVERS > "+hookOut+"'}\n")
	p, topic, cfgPath, flow := fx.p, fx.topic, fx.cfgPath, fx.flow
	cli := func(args ...string) (int, string, string) { return cli(cfgPath, args...) }
	if code, _, stderr := cli("failover"); code != exitUsage || !strings.Contains(stderr, "--flow") {
		t.Fatalf("failover without --flow: exit %d, %s", code, stderr)
	}
	code, out, stderr := cli("failover", "--flow", flow, "--dry-run", "-o", "json")
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, stderr)
	}
	var dry failover.Report
	if err := json.Unmarshal([]byte(out), &dry); err != nil || !dry.DryRun || dry.Mode != failover.Planned || dry.FinishedAt != nil {
		t.Fatalf("dry run report: %v\n%s", err, out)
	}
	code, out, stderr = cli("failover", "--flow", flow, "-o", "json", "--timeout", "1m")
	if code != 0 {
		t.Fatalf("failover: exit %d\n%s\n%s", code, out, stderr)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"flow", "mode", "started_at", "finished_at", "partitions", "groups", "rpo", "steps"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	if rep["flow"] != flow || rep["mode"] != "planned" || rep["finished_at"] == nil {
		t.Fatalf("report: %s", out)
	}
	parts := rep["partitions"].([]any)
	if len(parts) != 2 {
		t.Fatalf("partitions: %v", parts)
	}
	for _, k := range []string{"source_topic", "target_topic", "partition", "source_end_offset", "replicated_offset", "at_risk_records"} {
		if _, ok := parts[0].(map[string]any)[k]; !ok {
			t.Errorf("partition lacks %q", k)
		}
	}
	step := rep["steps"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "started_at", "duration_ms", "ok"} {
		if _, ok := step[k]; !ok {
			t.Errorf("step lacks %q", k)
		}
	}
	if b, err := os.ReadFile(hookOut); err != nil || strings.TrimSpace(string(b)) != strings.Join(p.Secondary.Addrs, ",") {
		t.Fatalf("cutover hook wrote %q (%v)", b, err)
	}
	code, out, _ = cli("failover", "status", "--flow", flow)
	if code != 0 || !strings.Contains(out, topic) || !strings.Contains(out, "finished") || !strings.Contains(out, "cutover") {
		t.Fatalf("failover status: exit %d\n%s", code, out)
	}
	// Again: everything is failed over already.
	if code, _, stderr := cli("failover", "--flow", flow); code != exitFailure || !strings.Contains(stderr, "no topics to fail over") {
		t.Fatalf("second failover: exit %d %s", code, stderr)
	}
}
