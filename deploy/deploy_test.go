package deploy_test

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/drillstats"
	"github.com/godwit/godwit/internal/metrics"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/replicate"
	"github.com/godwit/godwit/internal/schemas"
	"github.com/godwit/godwit/internal/testkit"
)

const (
	dashboardPath = "grafana/godwit.json"
	rulesPath     = "prometheus/godwit-alerts.yaml"
	ruleTestsPath = "prometheus/godwit-alerts.test.yaml"
	k8sDir        = "kubernetes"
	dockerfile    = "docker/Dockerfile"

	// heartbeatTopic is naming.HeartbeatTopic, the topic label of the
	// heartbeat series; heartbeatSelector is how the dashboard and rules
	// select it (the legacy godwit.heartbeats too, for one release).
	heartbeatTopic    = "heartbeats"
	heartbeatSelector = `topic=~"heartbeats|godwit.heartbeats"`

	// consumerGroup commits offsets on the source topic, so the checkpoint
	// loop exports its series (godwit_checkpoint_age_seconds, ...).
	consumerGroup = "deploy-consumer"
)

// eventOnly are godwit metrics that have no series until their event
// happens (an error, a stopped partition, a loop-filtered record, ...): a
// scrape of a healthy replicator cannot show them, so for these the test
// checks that the replicator registers them (same registry /metrics serves).
var eventOnly = map[string]string{
	"godwit_errors_total":                      "first error",
	"godwit_partition_stopped":                 "first stopped partition",
	"godwit_records_lost_to_retention_total":   "first record lost to retention",
	"godwit_source_topics_disappeared_total":   "first source topic deleted",
	"godwit_filtered_records_total":            "first loop-filtered record (active-active)",
	"godwit_metasync_errors_total":             "first metadata sync error",
	"godwit_metasync_warnings_total":           "first metadata sync warning",
	"godwit_metasync_actions_total":            "first metadata change applied",
	"godwit_metasync_partitions_created_total": "first target partition created",
	"godwit_checkpoint_errors_total":           "first failed checkpoint loop pass",
	// flows with schemas (the fixture's flow has no schema registry)
	"godwit_schema_subjects_behind":       "first schema sync pass",
	"godwit_schema_versions_synced_total": "first schema sync pass",
	"godwit_schema_source_versions":       "first schema sync pass",
	"godwit_schema_sync_errors_total":     "first schema sync pass",
}

// external are metric names used by the dashboard or rules that godwit does
// not export, with where they come from.
var external = map[string]string{
	"up": "Prometheus (checked through the real Prometheus server below)",
}

// ---- the godwit binary, built once like deploy/docker/Dockerfile builds it

// godwitBinary builds cmd/godwit with CGO_ENABLED=0 and -trimpath, the
// Dockerfile's settings.
func godwitBinary(t *testing.T) string { return testkit.GodwitBinary(t) }

// ---- a replicator on the embedded clusters

type replicator struct {
	addr     string // metrics/health address
	topic    string
	flow     string
	cfgPath  string
	registry *prometheus.Registry // the in-process registry, for descriptors
}

var (
	replOnce sync.Once
	repl     *replicator
	replErr  error
	replStop []func()
)

// TestMain stops the shared replicator and sandbox after all tests.
func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(replStop) - 1; i >= 0; i-- {
		replStop[i]()
	}
	os.Exit(code)
}

// sharedT lets the shared fixture use testkit helpers that take a testing.TB
// and survive the first test that asks for them.
type sharedT struct {
	testing.TB
	cleanups []func()
}

func (s *sharedT) Cleanup(f func()) { s.cleanups = append(s.cleanups, f) }

// Errorf and Logf go to stderr: cleanups run after the test that created
// the fixture has finished.
func (s *sharedT) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "deploy fixture: "+format+"\n", args...)
}
func (s *sharedT) Logf(format string, args ...any) {}

// runningReplicator runs `godwit replicate` (the binary) against a fresh
// kfake pair, replicates records of a 3-partition topic, commits offsets of
// a consumer group (consumerGroup) on it, and waits until /metrics shows the
// records replicated, the flow ready and the group's checkpoint age (the
// checkpoint loop runs in the process owning slot 0: this one). Tests share
// it.
func runningReplicator(t *testing.T) *replicator {
	t.Helper()
	// Before the Once: a skip inside it would leave the next caller a nil
	// replicator.
	testkit.SkipIfShort(t)
	replOnce.Do(func() { repl, replErr = startReplicator(t) })
	if replErr != nil {
		t.Fatal(replErr)
	}
	return repl
}

func startReplicator(t *testing.T) (*replicator, error) {
	st := &sharedT{TB: t}
	replStop = append(replStop, func() {
		for i := len(st.cleanups) - 1; i >= 0; i-- {
			st.cleanups[i]()
		}
	})
	p := testkit.KfakePair(st)
	topic := "orders"
	testkit.CreateTopic(st, p.Primary, topic, 3, nil)

	dir, err := os.MkdirTemp("", "godwit-deploy-")
	if err != nil {
		return nil, err
	}
	replStop = append(replStop, func() { os.RemoveAll(dir) })
	flow := p.Primary.Name + "->" + p.Secondary.Name
	// A passing drill of the flow an hour ago, so the replicator exports
	// the godwit_drill_* gauges the dashboard and rules use.
	if err := writeDrillReport(filepath.Join(dir, "drills", "1"), flow, time.Now().Add(-time.Hour)); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`clusters:
  %s: {bootstrap_servers: [%s]}
  %s: {bootstrap_servers: [%s]}
flows:
  %s: {naming: prefixed, delivery: exactly-once, rpo_objective: 60s}
http: {listen: "127.0.0.1:0"}
drill: {reports: drills, refresh_interval: 1s}
`, p.Primary.Name, quoteAll(p.Primary.Addrs), p.Secondary.Name, quoteAll(p.Secondary.Addrs), flow)
	cfgPath := filepath.Join(dir, "godwit.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}

	logPath := filepath.Join(dir, "replicator.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(godwitBinary(t), "replicate", "-c", cfgPath, "--log-level", "info")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	replStop = append(replStop, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	fail := func(format string, args ...any) (*replicator, error) {
		b, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf(format+"\nreplicator log (tail):\n%s", append(args, tail(string(b), 4000))...)
	}

	// The metrics address is in the log: msg="serving metrics and health" ... addr=HOST:PORT
	addrRE := regexp.MustCompile(`serving metrics and health.* addr=(\S+)`)
	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(logPath)
		if m := addrRE.FindSubmatch(b); m != nil {
			addr = string(m[1])
		}
		select {
		case <-done:
			return fail("godwit replicate exited before serving metrics")
		default:
		}
	}
	if addr == "" {
		return fail("godwit replicate did not log its metrics address within 30s")
	}

	// Produce records, wait until /metrics counts them.
	const n = 60
	cl := testkit.Client(st, p.Primary)
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: int32(i % 3), Key: []byte(strconv.Itoa(i)), Value: []byte("value-" + strconv.Itoa(i))}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			return nil, fmt.Errorf("produce: %w", err)
		}
	}
	// A consumer group that has read everything: its committed offsets are
	// what the checkpoint loop translates.
	offs := kadm.Offsets{}
	for part := range int32(3) {
		offs.Add(kadm.Offset{Topic: topic, Partition: part, At: n / 3, LeaderEpoch: -1})
	}
	if resp, err := kadm.NewClient(cl).CommitOffsets(context.Background(), consumerGroup, offs); err != nil || resp.Error() != nil {
		return nil, fmt.Errorf("commit offsets of %s: %v %v", consumerGroup, err, resp.Error())
	}
	var last string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		mfs, err := scrape(addr)
		if err != nil {
			last = err.Error()
			continue
		}
		got := sample(mfs, "godwit_replicated_records_total", map[string]string{"topic": topic})
		lagSeries := len(series(mfs, "godwit_replication_lag_records", map[string]string{"topic": topic}))
		// Heartbeats: written (godwit_heartbeats_total) and replicated (the
		// dashboard and alerts select topic=~"heartbeats|godwit.heartbeats").
		hb := sample(mfs, "godwit_heartbeats_total", nil)
		hbTS := len(series(mfs, "godwit_last_replicated_record_timestamp_seconds", map[string]string{"topic": heartbeatTopic}))
		ready := sample(mfs, "godwit_flow_ready", map[string]string{"flow": flow})
		ckAge := len(series(mfs, "godwit_checkpoint_age_seconds", map[string]string{"flow": flow, "group": consumerGroup}))
		drills := sample(mfs, drillstats.NameReports, map[string]string{"flow": flow})
		drillOK := sample(mfs, drillstats.NameLastSuccess, map[string]string{"flow": flow})
		last = fmt.Sprintf("replicated %v of %d records, %d lag series, %v heartbeats written, %d heartbeat timestamp series, flow ready %v, %d checkpoint age series of %s, %v drill reports (last passing drill at %v)",
			got, n, lagSeries, hb, hbTS, ready, ckAge, consumerGroup, drills, drillOK)
		if got == n && lagSeries == 3 && hb > 0 && hbTS > 0 && ready == 1 && ckAge == 1 && drills == 1 && drillOK > 0 {
			// The registry the binary builds, for descriptors of
			// event-only metrics.
			reg := metrics.NewRegistry()
			replicate.NewMetrics(reg)
			offsets.NewMetrics(reg)
			schemas.NewMetrics(reg)
			return &replicator{addr: addr, topic: topic, flow: flow, cfgPath: cfgPath, registry: reg}, nil
		}
	}
	return fail("records not replicated within 90s: %s", last)
}

// writeDrillReport writes the report of a real `godwit demo` run
// (internal/drillreport/testdata), moved to flow and ended, passed, into dir.
func writeDrillReport(dir, flow string, ended time.Time) error {
	r, err := drillreport.ReadReport("../internal/drillreport/testdata/demo-report.json")
	if err != nil {
		return err
	}
	r.Flow, r.Passed = flow, true
	r.StartedAt = ended.Add(-time.Duration(r.Seconds * float64(time.Second)))
	return r.Write(dir)
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

func scrape(addr string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

func series(mfs map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		for k, v := range want {
			ok := false
			for _, lp := range m.GetLabel() {
				ok = ok || (lp.GetName() == k && lp.GetValue() == v)
			}
			if !ok {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

func sample(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	for _, m := range series(mfs, name, want) {
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum
}

// ---- metric names used by the dashboard and the rules

// dashboardExprs returns every PromQL expression of the dashboard: panel
// targets (rows included) and templating queries.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Inputs []struct {
			Name, Type, PluginID string
		} `json:"__inputs"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].PluginID != "prometheus" || d.Inputs[0].Name != "DS_PROMETHEUS" {
		t.Fatalf("%s: want one Prometheus data-source input DS_PROMETHEUS, got %+v", dashboardPath, d.Inputs)
	}
	var exprs []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("%s: panel %q has a target without expr", dashboardPath, p.Title)
				}
				exprs = append(exprs, tg.Expr)
			}
			if p.Type != "row" && p.Type != "text" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", dashboardPath, p.Title)
			}
			if p.Type != "row" && p.Type != "text" && (p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}") {
				t.Errorf("%s: panel %q does not use the DS_PROMETHEUS input", dashboardPath, p.Title)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		switch q := v.Query.(type) {
		case string:
			exprs = append(exprs, q)
		case map[string]any:
			s, _ := q["query"].(string)
			exprs = append(exprs, s)
		}
	}
	return exprs
}

type panel struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	return rf
}

func ruleExprs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			out[r.Alert+r.Record] = r.Expr
		}
	}
	return out
}

var (
	// Strings ("...") and label matchers' values are not metric names.
	quotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	// Braces hold label matchers, not metric names.
	bracesRE = regexp.MustCompile(`\{[^{}]*\}`)
	identRE  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// PromQL words that are not metric names.
	promqlWords = map[string]bool{}
)

func init() {
	for _, w := range strings.Fields(`sum min max avg count stddev stdvar topk bottomk quantile count_values group
		by without on ignoring group_left group_right and or unless bool offset
		rate irate increase delta idelta deriv time vector scalar absent absent_over_time histogram_quantile
		label_values label_replace clamp_min clamp_max abs changes resets sort sort_desc timestamp
		min_over_time max_over_time avg_over_time sum_over_time count_over_time last_over_time predict_linear
		humanize humanizeDuration printf e inf nan NaN Inf
		s m h d w y ms`) {
		promqlWords[w] = true
	}
}

// metricNames extracts metric names from a PromQL expression (or a
// Grafana label_values(...) query): identifiers outside strings and label
// matchers that are not PromQL keywords, functions, label names of
// by/on/without clauses, or durations.
func metricNames(expr string) []string {
	s := quotedRE.ReplaceAllString(expr, `""`)
	for {
		r := bracesRE.ReplaceAllString(s, "{}")
		if r == s {
			break
		}
		s = r
	}
	// Label lists of by (...), without (...), on (...), ignoring (...),
	// group_left (...), and label_values(metric, label)'s label.
	s = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`).ReplaceAllString(s, " ")
	s = regexp.MustCompile(`label_values\(([^,()]*),\s*\w+\)`).ReplaceAllString(s, "label_values($1)")
	// Range and duration literals: [5m], [$__rate_interval], offset 1h.
	s = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(s, "")
	s = regexp.MustCompile(`\$\w+`).ReplaceAllString(s, "")
	seen := map[string]bool{}
	var out []string
	for _, loc := range identRE.FindAllStringIndex(s, -1) {
		w := s[loc[0]:loc[1]]
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue // part of a number such as 1e3 or 0.5
		}
		if promqlWords[w] || seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}

func TestMetricNameExtraction(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (flow, topic) (rate(godwit_replicated_records_total{flow=~"$flow",topic=~"a.b"}[$__rate_interval]))`:                                                                                               "godwit_replicated_records_total",
		`histogram_quantile(0.99, sum by (flow, le) (rate(godwit_replication_latency_seconds_bucket{flow=~"$flow"}[5m])))`:                                                                                         "godwit_replication_latency_seconds_bucket",
		`(time() - max by (flow, topic, partition) (godwit_last_replicated_record_timestamp_seconds)) > 60 and on (flow, topic, partition) (min by (flow, topic, partition) (godwit_replication_lag_records) > 0)`: "godwit_last_replicated_record_timestamp_seconds godwit_replication_lag_records",
		`label_values(godwit_replication_lag_records{flow=~"$flow"}, topic)`:                                                                                                                                       "godwit_replication_lag_records",
		`sum(up{job=~"$job"}) or vector(0)`: "up",
		`(time() - max by (flow) (godwit_last_replicated_record_timestamp_seconds)) > on (flow) group_left () (max by (flow) (godwit_rpo_objective_seconds > 0) or on (flow) 0 * max by (flow) (x_total) + 60)`: "godwit_last_replicated_record_timestamp_seconds godwit_rpo_objective_seconds x_total",
		`absent(godwit_assigned_slots)`:     "godwit_assigned_slots",
		`sum(rate(x_total[1m])) * 1e3 / 60`: "x_total",
	} {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("metricNames(%s) = %q, want %q", expr, got, want)
		}
	}
}

// registeredNames are the metric names the replicator's registry
// describes, histograms included once under their base name.
func registeredNames(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	rec := &recordingRegisterer{}
	replicate.NewMetrics(rec)
	offsets.NewMetrics(rec)
	schemas.NewMetrics(rec)
	drillstats.NewMetrics(rec)
	nameRE := regexp.MustCompile(`fqName: "([^"]+)"`)
	out := map[string]bool{}
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range rec.cs {
			c.Describe(ch)
		}
		close(ch)
	}()
	for d := range ch {
		if m := nameRE.FindStringSubmatch(d.String()); m != nil {
			out[m[1]] = true
		}
	}
	// And what the process registry adds (Go and process collectors).
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		out[mf.GetName()] = true
	}
	return out
}

type recordingRegisterer struct{ cs []prometheus.Collector }

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.cs = append(r.cs, c)
	return nil
}
func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) { r.cs = append(r.cs, cs...) }
func (r *recordingRegisterer) Unregister(prometheus.Collector) bool    { return true }

// TestDashboardAndAlertMetricsExist scrapes a running `godwit replicate`
// and checks that every metric the dashboard and the alert rules query is
// exported: present in the scrape, or, for metrics that only get a series
// on an event (eventOnly), registered by the replicator.
func TestDashboardAndAlertMetricsExist(t *testing.T) {
	r := runningReplicator(t)
	mfs, err := scrape(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	scraped := map[string]bool{}
	for name, mf := range mfs {
		scraped[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM || mf.GetType() == dto.MetricType_SUMMARY {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				scraped[name+suf] = true
			}
		}
	}
	registered := registeredNames(t, r.registry)
	for name := range eventOnly {
		if !registered[name] {
			t.Errorf("eventOnly lists %s, which godwit does not register: remove it", name)
		}
	}

	uses := map[string][]string{} // metric name -> where
	for _, e := range dashboardExprs(t) {
		for _, n := range metricNames(e) {
			uses[n] = append(uses[n], dashboardPath)
		}
	}
	for alert, e := range ruleExprs(t) {
		for _, n := range metricNames(e) {
			uses[n] = append(uses[n], rulesPath+" "+alert)
		}
	}
	if len(uses) < 15 {
		t.Fatalf("only %d metric names found in the dashboard and rules: extraction broken? %v", len(uses), uses)
	}
	var names []string
	for n := range uses {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		switch {
		case scraped[n]:
			t.Logf("%-50s in the scrape", n)
		case eventOnly[n] != "":
			t.Logf("%-50s registered, first series on %s", n, eventOnly[n])
		case external[n] != "":
			t.Logf("%-50s external: %s", n, external[n])
		case registered[base] && eventOnly[base] != "":
			t.Logf("%-50s registered, first series on %s", n, eventOnly[base])
		default:
			t.Errorf("%s is used by %s but godwit does not export it", n, strings.Join(uniq(uses[n]), ", "))
		}
	}
}

func uniq(ss []string) []string {
	sort.Strings(ss)
	out := ss[:0]
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// TestAlertRulesAnnotated: every alert has a severity and a runbook.
func TestAlertRulesAnnotated(t *testing.T) {
	n := 0
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if r.Labels["severity"] == "" {
				t.Errorf("%s: no severity label", r.Alert)
			}
			for _, k := range []string{"summary", "description", "runbook", "runbook_url"} {
				if r.Annotations[k] == "" {
					t.Errorf("%s: no %s annotation", r.Alert, k)
				}
			}
			if want := "#" + strings.ToLower(r.Alert); !strings.HasSuffix(r.Annotations["runbook_url"], want) {
				t.Errorf("%s: runbook_url %q should end in %s", r.Alert, r.Annotations["runbook_url"], want)
			}
		}
	}
	if n < 8 {
		t.Fatalf("only %d alerts", n)
	}
}

// TestPromtool runs promtool check rules and the rule unit tests (alerts
// firing and not firing on synthetic series).
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (scripts/test.sh installs Debian's prometheus package; or apt-get install prometheus)")
	}
	for _, args := range [][]string{
		{"check", "rules", rulesPath},
		{"test", "rules", ruleTestsPath},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else {
			t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
		}
	}
	// Each alert has at least one unit test.
	b, err := os.ReadFile(ruleTestsPath)
	if err != nil {
		t.Fatal(err)
	}
	for alert := range ruleExprs(t) {
		if !strings.Contains(string(b), "alertname: "+alert+"\n") {
			t.Errorf("%s has no unit test in %s", alert, ruleTestsPath)
		}
	}
}

// TestPrometheusScrape starts a real Prometheus server on loopback scraping
// the running replicator, with the alert rules loaded, and queries the lag
// series of the replicated topic through the HTTP API. It also runs every
// dashboard query through the server (Grafana variables substituted), so a
// PromQL syntax error in a panel fails here.
func TestPrometheusScrape(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not installed (scripts/test.sh installs Debian's prometheus package; or apt-get install prometheus)")
	}
	r := runningReplicator(t)
	dir := t.TempDir()
	rules, err := filepath.Abs(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: godwit
    static_configs:
      - targets: [%q]
`, rules, r.addr)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	api := fmt.Sprintf("http://127.0.0.1:%d", port)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log (tail):\n%s", tail(string(b), 4000))
		}
	})

	query := fmt.Sprintf(`godwit_replication_lag_records{job="godwit",topic=%q}`, r.topic)
	var res []promSample
	var last string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("prometheus exited:\n%s", tail(string(b), 4000))
		default:
		}
		res, err = promQuery(api, query)
		if err != nil {
			last = err.Error()
			continue
		}
		last = fmt.Sprintf("%d series", len(res))
		if len(res) == 3 {
			break
		}
	}
	if len(res) != 3 {
		t.Fatalf("query %s: want 3 series (one per partition), last: %s", query, last)
	}
	parts := map[string]bool{}
	for _, s := range res {
		if s.Metric["flow"] != r.flow || s.Metric["topic"] != r.topic {
			t.Errorf("series %v: want flow %q topic %q", s.Metric, r.flow, r.topic)
		}
		parts[s.Metric["partition"]] = true
	}
	if !parts["0"] || !parts["1"] || !parts["2"] {
		t.Errorf("partitions %v, want 0, 1, 2", parts)
	}
	t.Logf("%s -> %d series: %v", query, len(res), res)

	if up, err := promQuery(api, `up{job="godwit"}`); err != nil || len(up) != 1 || up[0].Value[1] != "1" {
		t.Errorf(`up{job="godwit"} = %v, %v; want one series of 1`, up, err)
	}
	// The rules' job matcher and the heartbeat selector match real series.
	if up, err := promQuery(api, `up{job=~".*godwit.*"}`); err != nil || len(up) != 1 {
		t.Errorf(`up{job=~".*godwit.*"} (the rules' matcher) = %v, %v; want one series`, up, err)
	}
	hbq := fmt.Sprintf(`time() - max by (flow) (godwit_last_replicated_record_timestamp_seconds{%s})`, heartbeatSelector)
	if hb, err := promQuery(api, hbq); err != nil || len(hb) != 1 || hb[0].Metric["flow"] != r.flow {
		t.Errorf("heartbeat age %s = %v, %v; want one series for flow %s", hbq, hb, err, r.flow)
	} else {
		t.Logf("heartbeat age: %v s", hb[0].Value[1])
	}

	// The drill gauges reach Prometheus: the drill the fixture stored for
	// the flow, as the Drills row and the drill alerts read it.
	dq := fmt.Sprintf(`max by (flow, scenario, fault) (godwit_drill_last_passed{job="godwit",flow=%q})`, r.flow)
	if d, err := promQuery(api, dq); err != nil || len(d) != 1 || d[0].Value[1] != "1" || d[0].Metric["fault"] != "source-down" {
		t.Errorf("%s = %v, %v; want one passing source-down drill", dq, d, err)
	}

	// Every dashboard query evaluates (parses) on the real server.
	vars := strings.NewReplacer("$__rate_interval", "1m", "${__url_time_range}", "", "$job", ".*", "$flow", ".*", "$topic", ".*", "$partition", ".*")
	for _, e := range dashboardExprs(t) {
		if strings.HasPrefix(e, "label_values(") {
			continue // a Grafana function, not PromQL
		}
		if _, err := promQuery(api, vars.Replace(e)); err != nil {
			t.Errorf("dashboard query %s: %v", e, err)
		}
	}

	// The alert rules loaded without errors, and none fires on a healthy
	// replicator.
	var rulesResp struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
					State     string `json:"state"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	n := 0
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if err := getJSON(api+"/api/v1/rules", &rulesResp); err != nil {
			t.Fatal(err)
		}
		n, last = 0, ""
		for _, g := range rulesResp.Data.Groups {
			for _, rl := range g.Rules {
				if rl.Health == "ok" {
					n++
				} else {
					last += fmt.Sprintf("%s: health %q %s; ", rl.Name, rl.Health, rl.LastError)
				}
			}
		}
		if (n > 0 && last == "") || time.Now().After(deadline) {
			break
		}
	}
	if last != "" || n == 0 {
		t.Fatalf("rules on the Prometheus server: %d ok; %s", n, last)
	}
	for _, g := range rulesResp.Data.Groups {
		for _, rl := range g.Rules {
			if rl.State == "firing" {
				t.Errorf("alert %s is %s on a healthy replicator", rl.Name, rl.State)
			}
		}
	}
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

func promQuery(api, q string) ([]promSample, error) {
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(api+"/api/v1/query?query="+url.QueryEscape(q), &resp); err != nil {
		return nil, err
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("%s: %s", resp.Status, resp.Error)
	}
	var out []promSample
	if resp.Data.ResultType == "vector" {
		if err := json.Unmarshal(resp.Data.Result, &out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %s: %v", u, resp.Status, tail(string(b), 300))
	}
	return nil
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ---- Kubernetes manifests

type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec yaml.MapSlice     `yaml:"spec"`
	raw  []byte
}

type podSpec struct {
	Containers []struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				FieldRef *struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
			Optional   bool   `yaml:"optional"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type workloadSpec struct {
	Replicas    int    `yaml:"replicas"`
	ServiceName string `yaml:"serviceName"`
	Selector    struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec podSpec `yaml:"spec"`
	} `yaml:"template"`
}

type serviceSpec struct {
	ClusterIP                string            `yaml:"clusterIP"`
	PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
	Selector                 map[string]string `yaml:"selector"`
	Ports                    []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort any    `yaml:"targetPort"`
	} `yaml:"ports"`
}

type pdbSpec struct {
	MaxUnavailable any `yaml:"maxUnavailable"`
	MinAvailable   any `yaml:"minAvailable"`
	Selector       struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
}

func decodeSpec(t *testing.T, o k8sObject, v any) {
	t.Helper()
	b, err := yaml.Marshal(o.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s %s spec: %v", o.Kind, o.Metadata.Name, err)
	}
}

func readManifests(t *testing.T) map[string]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", k8sDir, err)
	}
	objs := map[string]k8sObject{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(b), "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var o k8sObject
			if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if o.Kind == "" || o.APIVersion == "" {
				t.Fatalf("%s document %d: no kind/apiVersion", f, i)
			}
			o.raw = []byte(doc)
			if o.Kind != "Kustomization" {
				if o.Metadata.Name == "" {
					t.Fatalf("%s document %d: %s without a name", f, i, o.Kind)
				}
			}
			objs[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	return objs
}

func mustObj(t *testing.T, objs map[string]k8sObject, key string) k8sObject {
	t.Helper()
	o, ok := objs[key]
	if !ok {
		var have []string
		for k := range objs {
			have = append(have, k)
		}
		sort.Strings(have)
		t.Fatalf("no %s in %s (have %v)", key, k8sDir, have)
	}
	return o
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestKubernetesManifests parses the manifests and checks them against the
// binary's flags (the container args must parse: `godwit ARGS --help`) and
// the ConfigMap's config (valid for `godwit config check`; its http.listen
// port is the container port the probes, the Service and the scrape
// annotations use).
func TestKubernetesManifests(t *testing.T) {
	objs := readManifests(t)
	godwit := godwitBinary(t)

	// Kustomization lists every manifest except the Secret template.
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	kb, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(kb, &kust); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	for _, f := range files {
		base := filepath.Base(f)
		if base == "kustomization.yaml" || strings.Contains(base, ".example.") {
			continue
		}
		found := false
		for _, r := range kust.Resources {
			found = found || r == base
		}
		if !found {
			t.Errorf("kustomization.yaml does not list %s", base)
		}
	}

	sts := mustObj(t, objs, "StatefulSet/godwit")
	var ws workloadSpec
	decodeSpec(t, sts, &ws)
	if !subset(ws.Selector.MatchLabels, ws.Template.Metadata.Labels) {
		t.Errorf("StatefulSet selector %v does not match pod labels %v", ws.Selector.MatchLabels, ws.Template.Metadata.Labels)
	}
	if ws.Replicas < 2 {
		t.Errorf("replicas %d: the manifests show the scale-out path, want >= 2", ws.Replicas)
	}
	if len(ws.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(ws.Template.Spec.Containers))
	}
	c := ws.Template.Spec.Containers[0]

	// The args parse as godwit flags: `godwit ARGS... --help` exits 0 and
	// prints the replicate command's help; an unknown flag exits 2.
	if len(c.Args) == 0 || c.Args[0] != "replicate" {
		t.Fatalf("container args %v: want godwit replicate ...", c.Args)
	}
	out, err := exec.Command(godwit, append(append([]string{}, c.Args...), "--help")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "godwit replicate [flags]") {
		t.Fatalf("godwit %s --help: %v\n%s", strings.Join(c.Args, " "), err, out)
	}
	if out, err := exec.Command(godwit, "replicate", "--no-such-flag", "--help").CombinedOutput(); err == nil {
		t.Fatalf("an unknown flag passed --help: the args check proves nothing\n%s", out)
	}
	configArg := ""
	for i, a := range c.Args {
		if (a == "-c" || a == "--config") && i+1 < len(c.Args) {
			configArg = c.Args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--config="); ok {
			configArg = v
		}
	}
	if configArg == "" {
		t.Fatalf("container args %v do not pass --config", c.Args)
	}

	// The config file is the ConfigMap, mounted where --config points.
	var cmName, mountPath string
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(configArg, m.MountPath+"/") {
			for _, v := range ws.Template.Spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil {
					cmName, mountPath = v.ConfigMap.Name, m.MountPath
				}
			}
		}
	}
	if cmName == "" {
		t.Fatalf("--config %s is not under a ConfigMap volume mount", configArg)
	}
	cm := mustObj(t, objs, "ConfigMap/"+cmName)
	key := strings.TrimPrefix(configArg, mountPath+"/")
	cfgText, ok := cm.Data[key]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s (--config %s)", cmName, key, configArg)
	}
	cfgPath := filepath.Join(t.TempDir(), "godwit.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(godwit, "config", "check", "-c", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("godwit config check on ConfigMap %s: %v\n%s", cmName, err, out)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	host, portStr, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		t.Fatalf("http.listen %q: %v", cfg.HTTP.Listen, err)
	}
	if host != "0.0.0.0" && host != "" && host != "::" {
		t.Errorf("http.listen %q: a pod must listen on all interfaces for probes and scrapes", cfg.HTTP.Listen)
	}
	port, _ := strconv.Atoi(portStr)
	maxSlots := 0
	for _, f := range cfg.Flows {
		maxSlots = max(maxSlots, f.Slots)
	}
	if ws.Replicas > maxSlots {
		t.Errorf("replicas %d > the flows' slots (%d): extra replicas would idle", ws.Replicas, maxSlots)
	}

	// Ports: the container exposes http.listen's port; probes, Service
	// and scrape annotations use it.
	portNames := map[string]int{}
	for _, p := range c.Ports {
		portNames[p.Name] = p.ContainerPort
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != port {
		t.Errorf("container ports %+v, want one port %d (http.listen %s)", c.Ports, port, cfg.HTTP.Listen)
	}
	resolve := func(p any) int {
		switch v := p.(type) {
		case string:
			if n, ok := portNames[v]; ok {
				return n
			}
			n, _ := strconv.Atoi(v)
			return n
		case uint64:
			return int(v)
		case int64:
			return int(v)
		case int:
			return v
		}
		return -1
	}
	r := runningReplicator(t)
	for name, probe := range map[string]*probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("no httpGet probe for %s", name)
			continue
		}
		if probe.HTTPGet.Path != name || resolve(probe.HTTPGet.Port) != port {
			t.Errorf("probe %+v: want %s on port %d", probe.HTTPGet, name, port)
		}
		// The endpoint answers 200 on a running, caught-up replicator.
		resp, err := http.Get("http://" + r.addr + probe.HTTPGet.Path)
		if err != nil {
			t.Errorf("GET %s: %v", probe.HTTPGet.Path, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s on a running replicator: %s", probe.HTTPGet.Path, resp.Status)
		}
	}

	// Static membership: GODWIT_INSTANCE_ID from the pod name, an env the
	// binary documents for --instance-id.
	hasInstance := false
	for _, e := range c.Env {
		if e.Name == "GODWIT_INSTANCE_ID" {
			hasInstance = e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
		}
		if e.Name == "GOMEMLIMIT" {
			lim, err1 := parseQuantity(e.Value)
			mem, err2 := parseQuantity(c.Resources.Limits["memory"])
			if err1 != nil || err2 != nil || lim >= mem {
				t.Errorf("GOMEMLIMIT %s must be below limits.memory %s (%v %v)", e.Value, c.Resources.Limits["memory"], err1, err2)
			}
		}
	}
	if !hasInstance {
		t.Error("GODWIT_INSTANCE_ID is not set from metadata.name")
	}
	if out, _ := exec.Command(godwit, "replicate", "--help").CombinedOutput(); !strings.Contains(string(out), "GODWIT_INSTANCE_ID") || !strings.Contains(string(out), "--instance-id") {
		t.Errorf("godwit replicate --help does not document --instance-id / GODWIT_INSTANCE_ID:\n%s", out)
	}
	for _, k := range []string{"cpu", "memory"} {
		if c.Resources.Requests[k] == "" {
			t.Errorf("no resources.requests.%s", k)
		}
	}
	req, _ := parseQuantity(c.Resources.Requests["memory"])
	lim, _ := parseQuantity(c.Resources.Limits["memory"])
	if req == 0 || lim < req {
		t.Errorf("memory request %s, limit %s", c.Resources.Requests["memory"], c.Resources.Limits["memory"])
	}

	// Secrets for SASL/TLS material are referenced, optional.
	secret := false
	for _, v := range ws.Template.Spec.Volumes {
		if v.Secret != nil {
			secret = true
			mounted := false
			for _, m := range c.VolumeMounts {
				mounted = mounted || m.Name == v.Name
			}
			if !mounted {
				t.Errorf("secret volume %s not mounted", v.Name)
			}
		}
	}
	if !secret {
		t.Error("no Secret volume for SASL/TLS material")
	}

	// The metrics Service selects the pods and targets http.listen's port;
	// it publishes not-ready pods so a failing replica stays scrapeable.
	svc := mustObj(t, objs, "Service/"+ws.ServiceName)
	var ss serviceSpec
	decodeSpec(t, svc, &ss)
	if !subset(ss.Selector, ws.Template.Metadata.Labels) {
		t.Errorf("Service %s selector %v does not select the pods %v", ws.ServiceName, ss.Selector, ws.Template.Metadata.Labels)
	}
	if !ss.PublishNotReadyAddresses {
		t.Errorf("Service %s: publishNotReadyAddresses should be true", ws.ServiceName)
	}
	if len(ss.Ports) != 1 || resolve(ss.Ports[0].TargetPort) != port {
		t.Errorf("Service %s ports %+v: want target port %d", ws.ServiceName, ss.Ports, port)
	}
	if a := svc.Metadata.Annotations["prometheus.io/port"]; a != portStr {
		t.Errorf("Service prometheus.io/port %q, want %s", a, portStr)
	}

	pdb := mustObj(t, objs, "PodDisruptionBudget/godwit")
	var ps pdbSpec
	decodeSpec(t, pdb, &ps)
	if !subset(ps.Selector.MatchLabels, ws.Template.Metadata.Labels) {
		t.Errorf("PodDisruptionBudget selector %v does not select the pods", ps.Selector.MatchLabels)
	}
	if ps.MaxUnavailable == nil && ps.MinAvailable == nil {
		t.Error("PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}

	// kubectl kustomize renders the directory, when kubectl is installed.
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		if out, err := exec.Command(kubectl, "kustomize", k8sDir).CombinedOutput(); err != nil {
			t.Errorf("kubectl kustomize %s: %v\n%s", k8sDir, err, out)
		}
	} else {
		t.Log("kubectl not installed: kustomize rendering not checked")
	}
}

// parseQuantity parses the Kubernetes and GOMEMLIMIT byte quantities used
// here: plain bytes or Ki/Mi/Gi (KiB/MiB/GiB) suffixes.
func parseQuantity(s string) (int64, error) {
	for _, u := range []struct {
		suf  string
		mult int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}} {
		if v, ok := strings.CutSuffix(s, u.suf); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n * u.mult, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// TestDockerfileStaticBinary: the Dockerfile builds with CGO_ENABLED=0, and
// a binary built that way (godwitBinary) has no dynamic loader. The image
// build itself is not exercised (no container runtime here).
func TestDockerfileStaticBinary(t *testing.T) {
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var build string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build") {
			build = l
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/godwit"} {
		if !strings.Contains(build, want) {
			t.Errorf("%s: go build line %q lacks %s", dockerfile, build, want)
		}
	}
	f, err := elf.Open(godwitBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary built with CGO_ENABLED=0 has a dynamic loader (PT_INTERP): not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("binary imports shared libraries %v", libs)
	}
}
