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

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/testkit"
)

// costPrices is a complete price file for the CLI tests, so they do not
// depend on the embedded placeholder values.
const costPrices = `
version: test
prices:
  - {key: msk-broker-hour, item: kafka.m5.large, price: "0.21", unit: broker-hour, source: test, as_of: "2026-01-01"}
  - {key: storage-gb-month, price: "0.10", unit: GB-month, source: test, as_of: "2026-01-01"}
  - {key: msk-replicator-hour, price: "0.30", unit: replicator-hour, source: test, as_of: "2026-01-01"}
  - {key: msk-replicator-gb, price: "0.08", unit: GB, source: test, as_of: "2026-01-01"}
  - {key: transfer-gb, price: "0.02", unit: GB, source: test, as_of: "2026-01-01"}
  - {key: instance-hour, item: m5.large, price: "0.096", unit: instance-hour, source: test, as_of: "2026-01-01"}
`

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCost(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = runContext(context.Background(), append([]string{"cost"}, args...), &o, &e)
	return code, o.String(), e.String()
}

// The hand arithmetic for the CLI fixture (50 MB/s, 30 d, retention 24 h,
// RF 3, 8 drill hours at $100):
//
//	hours      = 30 × 24 = 720 h
//	replicated = 50 × 2,592,000 ÷ 1000 = 129,600 GB
//	stored     = 50 × 86,400 ÷ 1000 × 3 = 12,960 GB
//	standby    = 3 × 720 × 0.21 = $453.60
//	storage    = 12,960 × 1 × 0.10 = $1,296.00
//	operations = 8 × 100 = $800.00
//	msk-replicator: 720 × 0.30 = $216.00; 129,600 × 0.08 = $10,368.00; 129,600 × 0.02 = $2,592.00
//	  total = 453.60 + 1,296.00 + 216.00 + 10,368.00 + 2,592.00 + 800.00 = $15,725.60
//	godwit: 2 × 720 × 0.096 = $138.24; transfer $2,592.00
//	  total = 453.60 + 1,296.00 + 138.24 + 2,592.00 + 800.00 = $5,279.84
func TestCostText(t *testing.T) {
	prices := writeFile(t, "prices.yaml", costPrices)
	input := writeFile(t, "in.yaml", "throughput_mb_per_s: 50\nretention_hours: 24\noperations: {drill_hours: 8, hourly_rate_usd: 100}\n")
	code, out, errOut := runCost(t, "--input", input, "--prices", prices, "--option", "msk-replicator,godwit")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"decimal: 1 GB = 1000 MB",
		"rounded half away from zero to the cent",
		"overridden by " + prices,
		"replicated volume: 50 MB/s × 1 share × 2,592,000 s (30 d) ÷ 1,000 MB/GB = 129,600 GB",
		"duplicate storage: 50 MB/s × 1 share × 86,400 s retention (24 h) ÷ 1,000 MB/GB × 3 target RF = 12,960 GB",
		"standby compute:        3 brokers (kafka.m5.large) × 720 h × $0.21/broker-hour = $453.60",
		"duplicate storage:      12,960 GB × 1 month (30 d ÷ 30) × $0.10/GB-month = $1,296.00",
		"replication & transfer: 1 replicator × 720 h × $0.30/replicator-hour = $216.00",
		"replication & transfer: 129,600 GB processed × $0.08/GB = $10,368.00",
		"replication & transfer: 129,600 GB × $0.02/GB (us-west-2 → us-east-1) = $2,592.00",
		"replication & transfer: 2 workers (m5.large, self-run) × 720 h × $0.096/instance-hour = $138.24",
		"operations:             8 drill h × $100.00/h (given) = $800.00",
		"total:                  $453.60 + $1,296.00 + $216.00 + $10,368.00 + $2,592.00 + $800.00 = $15,725.60",
		"total:                  $453.60 + $1,296.00 + $138.24 + $2,592.00 + $800.00 = $5,279.84",
		"comparison (USD for 30 days)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\n%s", want, out)
		}
	}
	if strings.Contains(out, "mirrormaker2") {
		t.Errorf("mirrormaker2 shown though not selected\n%s", out)
	}
	if strings.Contains(out, "assumed prices") {
		t.Errorf("the override file has no assumptions, but the output lists some\n%s", out)
	}

	// Flags override the file: 10 MB/s instead of 50.
	code, out, errOut = runCost(t, "--input", input, "--prices", prices, "--throughput", "10", "--option", "godwit")
	if code != exitOK || !strings.Contains(out, "10 MB/s × 1 share × 2,592,000 s (30 d) ÷ 1,000 MB/GB = 25,920 GB") {
		t.Errorf("exit %d %s\n%s", code, errOut, out)
	}
}

func TestCostJSON(t *testing.T) {
	prices := writeFile(t, "prices.yaml", costPrices)
	code, out, errOut := runCost(t, "-o", "json", "--prices", prices, "--throughput", "50", "--retention-hours", "24",
		"--drill-hours", "8", "--drill-rate", "100")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Currency     string `json:"currency"`
		GBDefinition string `json:"gb_definition"`
		Rounding     string `json:"rounding"`
		Options      []struct {
			Option string                       `json:"option"`
			Lines  []map[string]json.RawMessage `json:"lines"`
			Total  string                       `json:"total"`
		} `json:"options"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Currency != "USD" || !strings.HasPrefix(rep.GBDefinition, "decimal") || rep.Rounding == "" {
		t.Errorf("header %+v", rep)
	}
	totals := map[string]string{}
	for _, o := range rep.Options {
		totals[o.Option] = o.Total
		for _, l := range o.Lines {
			for _, k := range []string{"layer", "option", "formula", "quantity", "unit", "unit_price", "amount"} {
				if _, ok := l[k]; !ok {
					t.Errorf("%s line lacks %q: %v", o.Option, k, l)
				}
			}
			var opt string
			_ = json.Unmarshal(l["option"], &opt)
			if opt != o.Option {
				t.Errorf("line option %q under %q", opt, o.Option)
			}
		}
	}
	// See TestCostText for the arithmetic; mirrormaker2 = godwit here.
	want := map[string]string{"msk-replicator": "15725.60", "godwit": "5279.84", "mirrormaker2": "5279.84"}
	if fmt.Sprint(totals) != fmt.Sprint(want) {
		t.Errorf("totals %v, want %v", totals, want)
	}
	var first map[string]any
	_ = json.Unmarshal(mustMarshal(rep.Options[0].Lines[0]), &first)
	if first["quantity"] != "2160" || first["unit_price"] != "0.21" || first["amount"] != "453.60" || first["unit"] != "broker-hour" {
		t.Errorf("standby line %v", first)
	}
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestCostBadInput(t *testing.T) {
	unknown := writeFile(t, "in.yaml", "throughput_mb_per_s: 50\nretention: 7d\n")
	badPrices := writeFile(t, "prices.yaml", "prices:\n  - {key: transfer-gb, price: \"0.02\", unit: GB, as_of: \"2026-01-01\"}\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--input", unknown}, `line 2: unknown key "retention"`},
		{[]string{"--throughput", "-5"}, "throughput_mb_per_s (--throughput) is -5: it must be a positive number"},
		{[]string{}, "throughput_mb_per_s (--throughput) is required"},
		{[]string{"--throughput", "five"}, `"five" is not a number`},
		{[]string{"--throughput", "5", "--option", "confluent"}, `option "confluent" (--option) is unknown`},
		{[]string{"--throughput", "5", "--prices", badPrices}, "source is missing"},
		{[]string{"--throughput", "5", "--standby-broker-type", "kafka.x9.huge"}, "no price for msk-broker-hour for kafka.x9.huge"},
		{[]string{"--measure"}, "no config file"},
		{[]string{"--throughput", "5", "--window", "5s"}, "--window is only used with --measure"},
		{[]string{"--input", filepath.Join(t.TempDir(), "missing.yaml")}, "--input"},
	} {
		code, _, errOut := runCost(t, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, errOut, c.want)
		}
	}
}

// TestCostMeasure runs -c FILE --measure against the kfake sandbox: the
// stored size comes from the cluster and the report says it was measured.
// The rate's accuracy under load is internal/cost's TestMeasureKnownLoad.
func TestCostMeasure(t *testing.T) {
	p := testkit.KfakePair(t)
	topic := testkit.UniqueName(t, "costcli")
	testkit.CreateTopic(t, p.Primary, topic, 2, nil)
	cl := testkit.Client(t, p.Primary, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	for i := 0; i < 50; i++ {
		if err := cl.ProduceSync(testkit.Context(t), &kgo.Record{Value: bytes.Repeat([]byte("x"), 1000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Heartbeat topics (current and legacy) are godwit's own, not
	// workload: --measure leaves them out.
	for _, hb := range []string{naming.HeartbeatTopic, naming.LegacyHeartbeatTopic} {
		testkit.CreateTopic(t, p.Primary, hb, 1, nil)
	}
	cfg := writeFile(t, "godwit.yaml", fmt.Sprintf(`clusters:
  %s: {bootstrap_servers: [%q]}
  %s: {bootstrap_servers: [%q]}
flows:
  %s->%s: {topics: [%q]}
`, p.Primary.Name, p.Primary.Addrs[0], p.Secondary.Name, p.Secondary.Addrs[0], p.Primary.Name, p.Secondary.Name, topic))
	prices := writeFile(t, "prices.yaml", costPrices)

	code, out, errOut := runCost(t, "-c", cfg, "--measure", "--window", "300ms", "--prices", prices, "--option", "godwit", "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Inputs struct {
			Measured struct {
				Topics     []string `json:"topics"`
				Partitions int      `json:"partitions"`
				EndBytes   int64    `json:"end_bytes"`
			} `json:"measured"`
		} `json:"inputs"`
		Basis []struct {
			Name string `json:"name"`
		} `json:"basis"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	m := rep.Inputs.Measured
	if len(m.Topics) != 1 || m.Topics[0] != topic || m.Partitions != 2 || m.EndBytes < 50_000 {
		t.Errorf("measured %+v; want topic %s, 2 partitions, at least 50,000 bytes", m, topic)
	}
	wantProgress := fmt.Sprintf("godwit: measuring the write rate of 1 topics (2 partitions) of flow %s->%s on cluster %s for 300ms (--window); heartbeat and internal topics excluded\n", p.Primary.Name, p.Secondary.Name, p.Primary.Name)
	if !strings.HasPrefix(errOut, wantProgress) {
		t.Errorf("stderr %q; want it to start with %q", errOut, wantProgress)
	}
	names := ""
	for _, b := range rep.Basis {
		names += b.Name + ";"
	}
	if !strings.Contains(names, "throughput (measured)") || !strings.Contains(names, "duplicate storage (measured)") {
		t.Errorf("basis %s", names)
	}

	code, out, errOut = runCost(t, "-c", cfg, "--measure", "--window", "200ms", "--prices", prices, "--option", "godwit")
	if code != exitOK || !strings.Contains(out, "throughput (measured): (") || !strings.Contains(out, "leader replicas of the replicated topics now") {
		t.Errorf("text: exit %d %s\n%s", code, errOut, out)
	}
	t.Log(out)

	code, _, errOut = runCost(t, "-c", cfg, "--measure", "--throughput", "5")
	if code != exitUsage || !strings.Contains(errOut, "--measure reads the throughput") {
		t.Errorf("measure + throughput: exit %d %s", code, errOut)
	}
}
