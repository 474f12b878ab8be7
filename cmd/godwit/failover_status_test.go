package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestFailoverStatusStory: `godwit failover status` tells the flow's whole
// story at each stage: active, failed-over (the failover and its steps),
// failing-back (the failback, its tail counts, what it waits for),
// restored (both operations in order, the failback's two runs).
func TestFailoverStatusStory(t *testing.T) {
	fx := newFlowFixture(t, "identical", "")
	topic, cfgPath, flow, src, dst, ctx, prod := fx.topic, fx.cfgPath, fx.flow, fx.src, fx.dst, fx.ctx, fx.prod
	cli := func(args ...string) string {
		t.Helper()
		code, out, errb := cli(cfgPath, args...)
		if code != 0 {
			t.Fatalf("godwit %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errb)
		}
		return out
	}
	// has asserts that every pattern matches a line of out, in order.
	has := func(stage, out string, patterns ...string) {
		t.Helper()
		rest := out
		for _, p := range patterns {
			loc := regexp.MustCompile(`(?m)` + p).FindStringIndex(rest)
			if loc == nil {
				t.Fatalf("%s: status lacks /%s/ (in order):\n%s", stage, p, out)
			}
			rest = rest[loc[1]:]
		}
	}
	q := regexp.QuoteMeta
	status := func() string { return cli("failover", "status", "--flow", flow) }

	has("before", status(), `^flow `+q(flow)+`: active$`, `^  no topic failed over$`, `^no failover journaled$`)

	cli("failover", "--flow", flow, "--timeout", "1m")
	out := status()
	t.Logf("failed over:\n%s", out)
	has("failed over", out,
		`^flow `+q(flow)+`: failed-over$`,
		`^  `+q(topic)+` +`+q(topic)+` .* planned `,
		`^failover \S+ \(planned\): started \S+, finished \S+, 1 run\(s\)$`,
		`^  topics: `+q(topic)+`; data at risk: 0 records$`,
		`^  TIME +RUN +STEP +PHASE +OK +DURATION +ERROR`,
		` mark_failed_over +end +true `, ` commit_groups +end +true `, ` cutover +end +true `, ` finish +finish +true `)
	if strings.Contains(out, "failback") {
		t.Fatalf("failed over: status shows a failback:\n%s", out)
	}

	if err := prod.Produce(ctx, 40); err != nil { // late writers on A: the tail
		t.Fatal(err)
	}
	cli("failback", "--flow", flow, "--timeout", "1m")
	out = status()
	t.Logf("failing back:\n%s", out)
	has("failing back", out,
		`^flow `+q(flow)+`: failing-back$`,
		`^  waiting: the reverse flow caught up; .* --switch`,
		`^  `+q(topic)+` `,
		`^failover \S+ \(planned\): .*finished`,
		` cutover +end +true `,
		`^failback failback-\S+ \(tail recover\): started \S+, unfinished, 1 run\(s\)$`,
		`^  tail: 40 records recovered into `+q(dst)+`'s topics \(40 offsets planned\), 0 filtered \(came from `+q(dst)+`\)$`,
		`^  reverse `+q(dst+"->"+src)+`: lag 0 records`,
		` copy_tail +end +true `, ` reverse +end +true `)

	cli("failback", "--flow", flow, "--switch", "--timeout", "1m")
	out = status()
	t.Logf("restored:\n%s", out)
	has("restored", out,
		`^flow `+q(flow)+`: restored$`,
		`^  no topic failed over$`,
		`^failover \S+ \(planned\): .*finished \S+, 1 run\(s\)$`,
		`^failback failback-\S+ \(tail recover\): started \S+, finished \S+, 2 run\(s\)$`,
		`^  tail: 40 records recovered`,
		`^  restored `+q(flow)+` for: `+q(topic)+`$`,
		` move_groups +end +true `, ` restore +end +true `, ` finish +finish +true `)

	var js struct {
		State        string `json:"state"`
		LastFailback struct {
			Operation string `json:"operation"`
			Tail      struct {
				Copied int64 `json:"copied_records"`
			} `json:"tail"`
			FinishedAt *time.Time `json:"finished_at"`
		} `json:"last_failback"`
		LastFailover struct {
			Operation string `json:"operation"`
		} `json:"last_failover"`
		Journal []struct {
			Op string `json:"operation"`
		} `json:"journal"`
	}
	if err := json.Unmarshal([]byte(cli("failover", "status", "--flow", flow, "-o", "json")), &js); err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, e := range js.Journal {
		ops[e.Op]++
	}
	if js.State != "restored" || js.LastFailback.Tail.Copied != 40 || js.LastFailback.FinishedAt == nil ||
		ops[js.LastFailback.Operation] == 0 || ops[js.LastFailover.Operation] == 0 || len(ops) != 2 {
		t.Fatalf("JSON status: %+v (events per operation %v)", js, ops)
	}
}
