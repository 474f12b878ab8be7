package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godwit/godwit/internal/testkit"
)

// TestAuditCLI: exit codes (2 for bad flags, 1 when a check fails), the
// JSON contract, the msk-replicator profile, and an unreachable cluster
// (its checks FAIL, the rest say they were not checked).
func TestAuditCLI(t *testing.T) {
	p := testkit.KfakePair(t)
	testkit.CreateTopic(t, p.Primary, "orders", 3, map[string]*string{"max.message.bytes": strp("20971520")})
	write := func(secondary string) string {
		path := filepath.Join(t.TempDir(), "godwit.yaml")
		y := fmt.Sprintf("clusters:\n  primary: {bootstrap_servers: [%q]}\n  secondary: {bootstrap_servers: [%q], dial_timeout: 1s}\nflows:\n  primary->secondary: {topics: [\"orders\"]}\n",
			p.Primary.Addrs[0], secondary)
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
	type report struct {
		Profile string `json:"profile"`
		Checks  []struct {
			ID, Status, Flow, Evidence, Remedy string
		} `json:"checks"`
		Summary struct{ Pass, Warn, Fail int } `json:"summary"`
	}
	parse := func(js string) (report, map[string]string) {
		var r report
		if err := json.Unmarshal([]byte(js), &r); err != nil {
			t.Fatalf("bad json: %v\n%s", err, js)
		}
		st := map[string]string{}
		for _, c := range r.Checks {
			st[c.ID] = c.Status
			if c.Flow != "primary->secondary" || c.Evidence == "" || (c.Status != "PASS" && c.Remedy == "") {
				t.Errorf("check %+v: want flow, evidence, and a remedy unless PASS", c)
			}
		}
		return r, st
	}
	cfg := write(p.Secondary.Addrs[0])

	if code, _, stderr := run("audit", "-c", cfg, "--profile", "nope"); code != exitUsage || !strings.Contains(stderr, "msk-replicator") {
		t.Fatalf("bad profile: exit %d, stderr %q; want 2 naming the valid profile", code, stderr)
	}
	if code, _, _ := run("audit", "-c", cfg, "--flow", "x->y"); code != exitUsage {
		t.Fatalf("unknown flow: exit %d, want 2", code)
	}

	// Never replicated: no progress, no heartbeats, missing topic.
	code, out, stderr := run("audit", "-c", cfg, "-o", "json", "--profile", "msk-replicator", "--window", "200ms")
	if code != exitFailure || !strings.Contains(stderr, "at least one check failed") {
		t.Fatalf("exit %d, stderr %q; want 1", code, stderr)
	}
	r, st := parse(out)
	want := map[string]string{
		"source.reachable": "PASS", "target.reachable": "PASS", "topics.present": "FAIL",
		"replication.lag": "FAIL", "replication.heartbeat": "FAIL", "internal.topics": "FAIL", "target.capacity": "WARN",
		"cutover.hook": "WARN", "drill.last": "WARN",
		"msk.topics": "PASS", "msk.record_size": "WARN", "msk.throughput": "PASS",
	}
	for id, s := range want {
		if st[id] != s {
			t.Errorf("%s: %s, want %s\n%s", id, st[id], s, out)
		}
	}
	if r.Profile != "msk-replicator" || r.Summary.Fail == 0 || r.Summary.Pass+r.Summary.Warn+r.Summary.Fail != len(r.Checks) {
		t.Errorf("profile/summary wrong: %+v", r)
	}

	// Text output: one table, remedies under failed checks.
	code, out, _ = run("audit", "-c", cfg)
	if code != exitFailure || !strings.Contains(out, "flow primary->secondary") || !strings.Contains(out, "FAIL    topics.present") || !strings.Contains(out, "→ ") {
		t.Fatalf("text: exit %d\n%s", code, out)
	}

	// Unreachable target: its check fails, the checks needing it are
	// not checked (WARN), the source is still audited.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	code, out, _ = run("audit", "-c", write(dead), "-o", "json", "--timeout", "2s")
	if code != exitFailure {
		t.Fatalf("unreachable: exit %d, want 1\n%s", code, out)
	}
	_, st = parse(out)
	if st["source.reachable"] != "PASS" || st["target.reachable"] != "FAIL" || st["topics.present"] != "WARN" || st["replication.heartbeat"] != "WARN" {
		t.Fatalf("unreachable target: %v\n%s", st, out)
	}
}

func strp(s string) *string { return &s }
