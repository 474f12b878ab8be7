package replicate

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/godwit/godwit/internal/config"
)

// TestMetricsRPOObjectiveAndFlowReady: New exports each flow's
// rpo_objective (0 when unset) and its readiness, evaluated at scrape time.
func TestMetricsRPOObjectiveAndFlowReady(t *testing.T) {
	cfg, err := config.Parse("godwit.yaml", []byte(`clusters:
  a: {bootstrap_servers: ["127.0.0.1:1"]}
  b: {bootstrap_servers: ["127.0.0.1:2"]}
flows:
  a->b: {rpo_objective: 90s}
  b->a: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	sel, err := cfg.SelectFlows(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(cfg, sel, slog.New(slog.NewTextHandler(io.Discard, nil)), m, "")
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, want map[string]float64) {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, s := range mf.GetMetric() {
				got[s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("godwit_rpo_objective_seconds", map[string]float64{"a->b": 90, "b->a": 0})
	// Not started: not ready.
	check("godwit_flow_ready", map[string]float64{"a->b": 0, "b->a": 0})
	// Ready is read at scrape time.
	for _, f := range r.Flows() {
		if f.Name() == "a->b" {
			f.ready.Store(true)
		}
	}
	check("godwit_flow_ready", map[string]float64{"a->b": 1, "b->a": 0})
}
