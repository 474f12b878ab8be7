package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/failback"
	"github.com/godwit/godwit/internal/testkit"
)

// TestFailbackCLI: usage errors, prefixed flows refused with a remedy,
// and the JSON contract of a dry run, a run waiting for the switch and a
// finished failback, through the CLI on kfake.
func TestFailbackCLI(t *testing.T) {
	fx := newFlowFixture(t, "identical", "")
	p, topic, cfgPath, flow, ctx, prod := fx.p, fx.topic, fx.cfgPath, fx.flow, fx.ctx, fx.prod
	if code, _, stderr := cli(cfgPath, "failback"); code != exitUsage || !strings.Contains(stderr, "--flow") {
		t.Fatalf("failback without --flow: exit %d, %s", code, stderr)
	}
	if code, _, stderr := cli(cfgPath, "failback", "--flow", flow, "--tail", "drop"); code != exitUsage || !strings.Contains(stderr, "recover") {
		t.Fatalf("--tail drop: exit %d, %s", code, stderr)
	}
	if code, _, stderr := cli(cfgPath, "failback", "--flow", flow); code != exitFailure || !strings.Contains(stderr, "no topic is failed over") {
		t.Fatalf("failback before any failover: exit %d, %s", code, stderr)
	}
	prefixed, psrc, pdst := testkit.FlowConfigFile(t, p, "prefixed", `topics: ["`+topic+`"]`, false)
	if code, _, stderr := cli(prefixed, "failback", "--flow", psrc+"->"+pdst); code != exitFailure || !strings.Contains(stderr, "identical naming only") || !strings.Contains(stderr, "remedy") {
		t.Fatalf("prefixed flow: exit %d, %s", code, stderr)
	}

	if code, out, stderr := cli(cfgPath, "failover", "--flow", flow, "--timeout", "1m"); code != 0 {
		t.Fatalf("failover: exit %d\n%s\n%s", code, out, stderr)
	}
	if err := prod.Produce(ctx, 40); err != nil { // late writers on A: the tail
		t.Fatal(err)
	}
	code, out, stderr := cli(cfgPath, "failback", "--flow", flow, "--dry-run", "-o", "json")
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, stderr)
	}
	var dry failback.Report
	if err := json.Unmarshal([]byte(out), &dry); err != nil || !dry.DryRun || dry.TailRecords.Planned != 40 || dry.TailRecords.Copied != 0 || dry.FinishedAt != nil {
		t.Fatalf("dry run report: %v\n%s", err, out)
	}
	code, out, stderr = cli(cfgPath, "failback", "--flow", flow, "-o", "json", "--timeout", "1m")
	if code != 0 {
		t.Fatalf("failback: exit %d\n%s\n%s", code, out, stderr)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"flow", "reverse_flow", "operation", "tail_policy", "started_at", "finished_at", "topics", "tail_partitions", "tail", "reverse", "groups", "restored_topics", "steps", "runs", "waiting"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	if rep["finished_at"] != nil || rep["waiting"] == "" {
		t.Fatalf("without --switch the failback waits: %s", out)
	}
	code, out, stderr = cli(cfgPath, "failback", "--flow", flow, "--switch", "--timeout", "1m")
	if code != 0 || !strings.Contains(out, "finished") || !strings.Contains(out, "40 records copied") {
		t.Fatalf("failback --switch: exit %d\n%s\n%s", code, out, stderr)
	}
	t.Logf("text report:\n%s", out)
}
