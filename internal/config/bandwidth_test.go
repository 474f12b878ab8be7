package config

import (
	"strings"
	"testing"
	"time"
)

func TestBandwidthConfig(t *testing.T) {
	c, err := Parse("b.yaml", []byte(base(`    topics: [".*"]
    rpo_objective: 1m
    max_bytes_per_second: 20MiB
    tiers:
      - {name: critical, topics: ["orders.*", "payments"], topics_exclude: ["orders-archive"], rpo_objective: 10s}
      - {name: bulk, topics: ["logs.*"]}
`)))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Flows["a->b"]
	if f.MaxBytesPerSecond != 20<<20 {
		t.Fatalf("max_bytes_per_second = %d", f.MaxBytesPerSecond)
	}
	if got := strings.Join(f.TierNames(), ","); got != "critical,bulk,default" {
		t.Fatalf("tiers %s", got)
	}
	for _, tt := range []struct {
		topic     string
		tier      int
		objective time.Duration
	}{
		{"orders.eu", 0, 10 * time.Second},
		{"payments", 0, 10 * time.Second},
		{"payments-v2", 2, time.Minute}, // anchored: the whole name must match
		{"orders-archive", 2, time.Minute},
		{"logs.app", 1, time.Minute},
		{"clicks", 2, time.Minute},
	} {
		if got := f.TierOf(tt.topic); got != tt.tier {
			t.Errorf("TierOf(%s) = %d, want %d", tt.topic, got, tt.tier)
		}
		if got := f.TierObjective(f.TierOf(tt.topic)).D(); got != tt.objective {
			t.Errorf("objective of %s = %s, want %s", tt.topic, got, tt.objective)
		}
	}
	// No tiers: one default tier, no cap.
	c, err = Parse("b.yaml", []byte(base("    topics: [x]\n")))
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Flows["a->b"]; f.MaxBytesPerSecond != 0 || f.TierOf("x") != 0 || len(f.TierNames()) != 1 {
		t.Fatalf("defaults: cap %d, tier %d of %v", f.MaxBytesPerSecond, f.TierOf("x"), f.TierNames())
	}
}

func TestBandwidthConfigErrors(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{"    max_bytes_per_second: 1KiB\n", "flows.a->b.max_bytes_per_second: max_bytes_per_second 1KiB is below 64KiB/s"},
		{"    max_bytes_per_second: -1\n", `"-1" is negative`},
		{"    tiers: [{topics: [x]}]\n", "flows.a->b.tiers[0].name: a tier needs a name"},
		{"    tiers: [{name: default, topics: [x]}]\n", `"default" is the implicit last tier`},
		{"    tiers: [{name: a, topics: [x]}, {name: a, topics: [y]}]\n", `flows.a->b.tiers[1].name: tier "a" is listed twice`},
		{"    tiers: [{name: a}]\n", `flows.a->b.tiers[0].topics: tier "a" selects no topics`},
		{"    tiers: [{name: a, topics: [\"(\"]}]\n", `flows.a->b.tiers[0].topics[0]: invalid regex "("`},
		{"    tiers: [{name: a, topics: [x], rpo: 1s}]\n", "unknown"},
	} {
		_, err := Parse("b.yaml", []byte(base("    topics: [x]\n"+tt.body)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.body, err, tt.want)
		}
	}
}
