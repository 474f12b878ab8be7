package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/connect"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/testkit"
)

// capturedListing is a real Connect 4.3.1 worker's answer (see
// internal/connect/testdata/README.md).
func capturedListing(t *testing.T) []connect.Connector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "connect", "testdata", "connectors-expanded-4.3.1.json"))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := connect.ParseExpanded(b)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestEvaluateConnect(t *testing.T) {
	cs := capturedListing(t)
	for _, tc := range []struct {
		expect             []string
		problems, warnings []string // substrings, in order
	}{
		{nil, []string{
			"badauth task 0 FAILED: org.apache.kafka.common.errors.SaslAuthenticationException",
			"badpolicy FAILED: org.apache.kafka.common.KafkaException: class java.lang.String is not an instance",
			"toolarge task 0 FAILED: org.apache.kafka.common.errors.RecordTooLargeException",
		}, nil},
		{[]string{"healthy"}, nil, []string{
			"badauth task 0 FAILED", "badpolicy FAILED", "toolarge task 0 FAILED: org.apache.kafka.common.errors.RecordTooLargeException",
		}},
		{[]string{"healthy", "bad.*"}, []string{
			"badauth task 0 is FAILED, expected RUNNING: org.apache.kafka.common.errors.SaslAuthenticationException",
			"badpolicy is FAILED, expected RUNNING: org.apache.kafka.common.KafkaException",
		}, []string{"toolarge task 0 FAILED"}},
		{[]string{"paused|stopped", "gone"}, []string{
			`no connector matches expect_running "gone"`, "paused is PAUSED, expected RUNNING", "stopped is STOPPED, expected RUNNING",
		}, []string{"badauth", "badpolicy", "toolarge"}},
	} {
		pats, err := drillreport.ConnectSpec{ExpectRunning: tc.expect}.Patterns()
		if err != nil {
			t.Fatal(err)
		}
		problems, warnings := evaluateConnect(pats, cs)
		for _, c := range []struct {
			name      string
			got, want []string
		}{{"problems", problems, tc.problems}, {"warnings", warnings, tc.warnings}} {
			ok := len(c.got) == len(c.want)
			for i := 0; ok && i < len(c.want); i++ {
				ok = strings.Contains(c.got[i], c.want[i])
			}
			if !ok {
				t.Errorf("expect %v: %s\n  %s\nwant\n  %s", tc.expect, c.name, strings.Join(c.got, "\n  "), strings.Join(c.want, "\n  "))
			}
		}
	}
}

// TestConnectUnreachableIsAFailedObjective: a REST URL nothing listens on
// makes the connect objective fail with the URL and what to check, in the
// objective, the statement and both renderings; no error, no panic.
func TestConnectUnreachableIsAFailedObjective(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	sc, err := drillreport.ParseScenario("x.yaml", []byte("connect: {url: \""+url+"\", timeout: 1s}\nfault: {type: none}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := connect.New(connect.Config{URL: sc.Connect.URL, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := &drill{sc: sc, start: time.Now(), conn: &connectRun{spec: sc.Connect, client: cl}}
	ctx := context.Background()
	d.startConnectCheck(ctx)()
	t0 := time.Now()
	d.connectCheckAfter(ctx)
	// After the failover the check keeps trying for connect.timeout: a
	// worker may still be starting in the target region.
	if el := time.Since(t0); el < 900*time.Millisecond || el > 5*time.Second {
		t.Errorf("the check after the failover took %v with a 1s timeout", el)
	}
	r := &drillreport.Report{Scenario: sc}
	if d.connectOutcome(r) {
		t.Fatal("connect objective passed with nothing listening")
	}
	ob := r.Objectives[len(r.Objectives)-1]
	if ob.Name != "connect" || ob.Pass || !strings.Contains(ob.Detail, url) || !strings.Contains(ob.Detail, "unreachable") || !strings.Contains(ob.Detail, "REST listener") {
		t.Errorf("objective %+v", ob)
	}
	if n := len(r.Connect.Checks); n != 2 || r.Connect.Checks[0].Phase != "before fault" || r.Connect.Checks[1].Phase != "after failover" || r.Connect.Checks[1].Attempts < 2 {
		t.Errorf("checks %+v", r.Connect.Checks)
	}
	if s := r.Connect.Sentence(); !strings.Contains(s, "Kafka Connect at "+url+" after failover could not be read") {
		t.Errorf("sentence %q", s)
	}
	if md := r.Connect.Markdown(); !strings.Contains(md, "Not read: kafka connect at "+url+" is unreachable") {
		t.Errorf("markdown:\n%s", md)
	}
	if h := string(r.Connect.HTMLSection()); !strings.Contains(h, "Not read: kafka connect at "+url) {
		t.Errorf("html:\n%s", h)
	}
}

// TestDrillConnectCheckRealWorker runs a real Kafka Connect worker on the
// real secondary with a healthy connector and one whose task cannot
// authenticate, then planned drills with the connect check: expecting both
// running fails the objective for the broken one; expecting only the
// healthy one passes.
func TestDrillConnectCheckRealWorker(t *testing.T) {
	p, ok := testkit.RealPair(t)
	if !ok {
		t.Skipf("no real Kafka: set %s and %s (scripts/kafka.sh up)", testkit.EnvPrimary, testkit.EnvSecondary)
	}
	t0 := time.Now()
	w := testkit.StartConnect(t, p.Secondary)
	healthy, broken := healthyAndBrokenConnectors(t, w, p)
	t.Logf("Connect worker REST up in %.1fs; both connectors in their states %.1fs after start", w.Ready.Seconds(), time.Since(t0).Seconds())

	for _, tc := range []struct {
		name   string
		expect []string
		pass   bool
	}{
		{"broken expected", []string{healthy, "godwit-broken.*"}, false},
		{"only healthy expected", []string{healthy}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			res := runConnectDrill(t, p, w.URL, tc.expect)
			t.Logf("drill took %.1fs", time.Since(start).Seconds())
			r := res.Report
			var back struct {
				Connect    *drillreport.ConnectReport `json:"connect"`
				Objectives []drillreport.Objective    `json:"objectives"`
				Passed     bool                       `json:"passed"`
				Statement  string                     `json:"statement"`
			}
			js, err := r.JSON()
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(js, &back); err != nil {
				t.Fatal(err)
			}
			if back.Connect == nil || len(back.Connect.Checks) != 2 {
				t.Fatalf("connect report %+v", back.Connect)
			}
			for _, ob := range back.Objectives {
				if ob.Name != "connect" && !ob.Pass {
					t.Fatalf("objective %s missed (%s): the drill itself must pass here", ob.Name, ob.Detail)
				}
			}
			for i, phase := range []string{"before fault", "after failover"} {
				c := back.Connect.Checks[i]
				if c.Phase != phase || c.Error != "" || c.WorkerVersion == "" {
					t.Errorf("check %d: phase %q error %q version %q", i, c.Phase, c.Error, c.WorkerVersion)
				}
				states := map[string]string{}
				for _, cn := range c.Connectors {
					states[cn.Name] = cn.State + "/" + drillreport.TaskStates(cn)
					if cn.Name == broken && (len(cn.Tasks) != 1 || !strings.Contains(cn.Tasks[0].Trace, brokenCause(p))) {
						t.Errorf("%s: %s tasks %+v, want a FAILED task whose trace names %s", phase, cn.Name, cn.Tasks, brokenCause(p))
					}
				}
				if states[healthy] != "RUNNING/0 RUNNING" || states[broken] != "RUNNING/0 FAILED" {
					t.Errorf("%s: states %v", phase, states)
				}
			}
			var ob drillreport.Objective
			for _, o := range back.Objectives {
				if o.Name == "connect" {
					ob = o
				}
			}
			if ob.Pass != tc.pass || back.Passed != tc.pass || back.Connect.Pass != tc.pass {
				t.Errorf("connect objective %+v, report passed %v, want %v", ob, back.Passed, tc.pass)
			}
			md, h := r.Markdown(), ""
			if b, err := r.HTML(); err == nil {
				h = string(b)
			} else {
				t.Fatal(err)
			}
			row := fmt.Sprintf("| %s | source | MirrorHeartbeatConnector | RUNNING | ", broken)
			if !strings.Contains(md, "## Kafka Connect") || !strings.Contains(md, row) || !strings.Contains(h, `<h2 id="connect">`) || !strings.Contains(h, broken) {
				t.Errorf("report lacks the Connect table:\n%s", md)
			}
			if tc.pass {
				last := back.Connect.Checks[1]
				if len(last.Warnings) != 1 || !strings.Contains(last.Warnings[0], broken+" task 0 FAILED") {
					t.Errorf("warnings %v, want the broken connector's FAILED task outside expect_running", last.Warnings)
				}
				if !strings.Contains(back.Statement, "the 1 expected connector(s) of 2 RUNNING with every task") {
					t.Errorf("statement: %s", back.Statement)
				}
			} else if want := broken + " task 0 is FAILED, expected RUNNING: "; !strings.Contains(back.Statement, want) || !strings.Contains(ob.Detail, want) {
				t.Errorf("statement %q / detail %q lack %q", back.Statement, ob.Detail, want)
			}
			t.Logf("statement: %s", back.Statement)
		})
	}
}

// healthyAndBrokenConnectors creates two MirrorHeartbeatConnectors on w
// and waits until the healthy one's task runs and the broken one's task
// has FAILED. The broken one's producer authenticates to the secondary's
// SASL_SSL listener with a wrong password (or, without secure listeners,
// may only send 10-byte requests).
func healthyAndBrokenConnectors(t *testing.T, w *testkit.ConnectWorker, p testkit.Pair) (healthy, broken string) {
	t.Helper()
	id := strings.TrimPrefix(testkit.UniqueName(t, "x"), "x.")
	id = id[len(id)-8:]
	healthy, broken = "godwit-healthy-"+id, "godwit-broken-"+id
	base := func(alias string) map[string]string {
		return map[string]string{
			"connector.class":                     "org.apache.kafka.connect.mirror.MirrorHeartbeatConnector",
			"source.cluster.alias":                alias,
			"target.cluster.alias":                "drill" + id,
			"source.cluster.bootstrap.servers":    strings.Join(p.Primary.Addrs, ","),
			"target.cluster.bootstrap.servers":    strings.Join(p.Secondary.Addrs, ","),
			"heartbeats.topic.replication.factor": "1",
			"emit.heartbeats.interval.seconds":    "1",
			"tasks.max":                           "1",
		}
	}
	w.PutConnector(t, healthy, base("h"+id))
	bad := base("b" + id)
	if sasl, ca := os.Getenv("GODWIT_TEST_SECONDARY_SASL_SSL"), os.Getenv("GODWIT_TEST_CA"); sasl != "" && ca != "" {
		for k, v := range map[string]string{
			"bootstrap.servers":       sasl,
			"security.protocol":       "SASL_SSL",
			"sasl.mechanism":          "SCRAM-SHA-512",
			"sasl.jaas.config":        `org.apache.kafka.common.security.scram.ScramLoginModule required username="godwit" password="not-the-password";`,
			"ssl.truststore.type":     "PEM",
			"ssl.truststore.location": ca,
		} {
			bad["producer.override."+k] = v
		}
	} else {
		bad["producer.override.max.request.size"] = "10"
	}
	w.PutConnector(t, broken, bad)
	w.WaitConnector(t, healthy, 60*time.Second, func(s testkit.ConnectorStatus) bool {
		return s.Connector.State == connect.StateRunning && len(s.Tasks) == 1 && s.Tasks[0].State == connect.StateRunning
	})
	w.WaitConnector(t, broken, 60*time.Second, func(s testkit.ConnectorStatus) bool {
		return len(s.Tasks) == 1 && s.Tasks[0].State == connect.StateFailed
	})
	return healthy, broken
}

func brokenCause(p testkit.Pair) string {
	if os.Getenv("GODWIT_TEST_SECONDARY_SASL_SSL") != "" && os.Getenv("GODWIT_TEST_CA") != "" {
		return "SaslAuthenticationException"
	}
	return "RecordTooLargeException"
}

// runConnectDrill runs a short planned drill on the real pair (in-process
// replicator) with the connect check on url.
func runConnectDrill(t *testing.T, p testkit.Pair, url string, expect []string) *Result {
	t.Helper()
	file, _, _ := testkit.FlowConfigFile(t, p, "prefixed", "delivery: exactly-once", false)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg, flow, out, err := PrepareConfig(file, data, "", "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "drill.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	quoted := make([]string, len(expect))
	for i, e := range expect {
		quoted[i] = fmt.Sprintf("%q", e)
	}
	sc, err := drillreport.ParseScenario("connect.yaml", []byte(`
name: connect
topics: [{name: orders, partitions: 2}]
workload: {rate: 100, record_size: 200, peak: {rate: 200, duration: 1s}}
groups: [{name: billing}]
fault: {type: none}
failover: {timeout: 45s}
phases: {steady: 1s, after: 1s}
objectives: {rpo_objective: 10s, rto_objective: 60s}
connect: {url: "`+url+`", expect_running: [`+strings.Join(quoted, ", ")+`], timeout: 3s}
`))
	if err != nil {
		t.Fatal(err)
	}
	suffix := strings.TrimPrefix(testkit.UniqueName(t, "x"), "x.")
	var progress strings.Builder
	res, err := Run(context.Background(), Options{
		Config: cfg, Flow: flow, ConfigPath: path, Scenario: sc,
		Suffix: suffix[len(suffix)-8:], Progress: &progress, Cleanup: true,
	})
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, progress.String())
	}
	t.Logf("progress:\n%s", progress.String())
	return res
}

// TestConnectWarnsOnAnotherKafkaCluster serves a real worker's captured
// answers: a worker that keeps its state on another Kafka cluster than the
// drill's target is a warning, and connectors outside expect_running that
// FAILED are warnings too, not failures.
func TestConnectWarnsOnAnotherKafkaCluster(t *testing.T) {
	root, err := os.ReadFile(filepath.Join("..", "connect", "testdata", "root-4.3.1.json"))
	if err != nil {
		t.Fatal(err)
	}
	listing, err := os.ReadFile(filepath.Join("..", "connect", "testdata", "connectors-expanded-4.3.1.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/connectors" {
			_, _ = w.Write(listing)
			return
		}
		_, _ = w.Write(root)
	}))
	defer srv.Close()
	sc, err := drillreport.ParseScenario("x.yaml", []byte("connect: {url: \""+srv.URL+"\", expect_running: [healthy, \"bad(admin|auth)\"], timeout: 2s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := connect.New(connect.Config{URL: sc.Connect.URL})
	if err != nil {
		t.Fatal(err)
	}
	pats, _ := sc.Connect.Patterns()
	d := &drill{sc: sc, start: time.Now(), o: Options{Flow: &config.Flow{Target: "secondary"}},
		conn: &connectRun{spec: sc.Connect, client: cl, patterns: pats, targetID: "another-cluster-id"}}
	d.connectCheckAfter(context.Background())
	r := &drillreport.Report{Scenario: sc}
	if d.connectOutcome(r) {
		t.Error("badauth's FAILED task passed")
	}
	c := r.Connect.Checks[0]
	if len(c.Problems) != 1 || !strings.HasPrefix(c.Problems[0], "badauth task 0 is FAILED") {
		t.Errorf("problems %v", c.Problems)
	}
	want := []string{"badpolicy FAILED", "toolarge task 0 FAILED", "Kafka cluster DadTN3GQRFmC0mvn4y98yA, not on the drill's target secondary (another-cluster-id)"}
	if len(c.Warnings) != len(want) {
		t.Fatalf("warnings %v", c.Warnings)
	}
	for i, w := range want {
		if !strings.Contains(c.Warnings[i], w) {
			t.Errorf("warning %d %q lacks %q", i, c.Warnings[i], w)
		}
	}
	// A listing that stays unhealthy is polled until connect.timeout.
	if c.Attempts < 3 || c.Seconds < 1.9 {
		t.Errorf("%d attempts in %.1fs, want polling for the 2s timeout", c.Attempts, c.Seconds)
	}
}
