package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/replicate"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

// TestFailoverCLI: dry run, then a planned failover with -o json and the
// cutover hook, then failover status, through the CLI on kfake.
func TestFailoverCLI(t *testing.T) {
	p := testkit.KfakePair(t)
	topic := testkit.UniqueName(t, "orders")
	testkit.CreateTopic(t, p.Primary, topic, 2, nil)
	cfgPath, src, dst := testkit.FlowConfigFile(t, p, "prefixed", `topics: ["`+topic+`"], slots: 2`, false)
	hookOut := filepath.Join(t.TempDir(), "hook")
	fh, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fh.WriteString("cutover: {command: 'echo $GODWIT_BOOTSTRAP_SERVERS > " + hookOut + "'}\n")
	fh.Close()
	flow := src + "->" + dst
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runFlow(t, ctx, cfg, cfg.Flows[flow])
	prod := workload.NewProducer(testkit.Client(t, p.Primary, kgo.RecordPartitioner(kgo.ManualPartitioner())), workload.ProducerConfig{Topic: topic, Partitions: 2})
	if err := prod.Produce(ctx, 100); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		code := runContext(c, append([]string{"-c", cfgPath}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
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

// runFlow replicates f in this process until the test ends.
func runFlow(t *testing.T, ctx context.Context, cfg *config.Config, f *config.Flow) {
	t.Helper()
	src, err := cluster.New(cfg, f.Source)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := cluster.New(cfg, f.Target)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	fl := replicate.NewFlow(replicate.Options{Flow: f, Source: src, Target: dst, Logger: slog.New(slog.DiscardHandler),
		Metrics: replicate.NewMetrics(prometheus.NewRegistry())})
	done := make(chan struct{})
	go func() { _ = fl.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}
