package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/testkit"
)

func TestSyncPlanApply(t *testing.T) {
	p := testkit.KfakePair(t)
	testkit.CreateTopic(t, p.Primary, "orders", 3, nil)
	write := func(extra string) string {
		path := filepath.Join(t.TempDir(), "godwit.yaml")
		y := fmt.Sprintf("clusters:\n  primary: {bootstrap_servers: [%q]}\n  secondary: {bootstrap_servers: [%q]}\nflows:\n  primary->secondary: {topics: [\"orders\"]%s}\n",
			p.Primary.Addrs[0], p.Secondary.Addrs[0], extra)
		if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runContext(context.Background(), args, &out, &errb)
		return code, out.String(), errb.String()
	}
	type planOut struct {
		Flows []struct {
			Flow    string `json:"flow"`
			Actions []struct {
				Kind string `json:"kind"`
			} `json:"actions"`
		} `json:"flows"`
	}
	kinds := func(js string) []string {
		var po planOut
		if err := json.Unmarshal([]byte(js), &po); err != nil {
			t.Fatalf("bad json: %v\n%s", err, js)
		}
		var k []string
		for _, a := range po.Flows[0].Actions {
			k = append(k, a.Kind)
		}
		return k
	}

	// replication_factor beyond the brokers: apply fails (exit 1) naming
	// the broker count.
	bad := write(", replication_factor: 3")
	code, _, stderr := run("sync", "apply", "-c", bad, "--log-level", "error")
	if code != exitFailure {
		t.Fatalf("apply with replication_factor 3: exit %d, want 1", code)
	}
	code, out, _ := run("sync", "apply", "-c", bad)
	if code != exitFailure || !strings.Contains(out, "1 broker(s)") {
		t.Fatalf("apply with replication_factor 3: exit %d, output %q; want the broker count", code, out+stderr)
	}

	cfg := write("")
	code, out, stderr = run("sync", "plan", "-c", cfg, "-o", "json")
	if code != exitOK || fmt.Sprint(kinds(out)) != "[create_topic]" {
		t.Fatalf("plan: exit %d, kinds %v\n%s%s", code, kinds(out), out, stderr)
	}
	code, out, stderr = run("sync", "plan", "-c", cfg) // plan changes nothing
	if code != exitOK || !strings.Contains(out, "would create topic: primary.orders with 3 partitions") {
		t.Fatalf("plan text: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = run("sync", "apply", "-c", cfg, "--flow", "primary->secondary")
	if code != exitOK || !strings.Contains(out, "did create topic: primary.orders") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
	}
	code, out, _ = run("sync", "plan", "-c", cfg, "-o", "json")
	if code != exitOK || len(kinds(out)) != 0 {
		t.Fatalf("plan after apply: exit %d, kinds %v", code, kinds(out))
	}
	if code, _, _ := run("sync", "plan"); code != exitUsage {
		t.Fatalf("plan without -c: exit %d, want 2", code)
	}
}
