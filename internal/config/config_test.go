package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

const exampleYAML = `clusters:
  primary:   { bootstrap_servers: ["127.0.0.1:19092"] }
  secondary: { bootstrap_servers: ["127.0.0.1:29092"] }
flows:
  primary->secondary:
    topics: ["orders.*"]
    topics_exclude: []
    groups: [".*"]
    groups_exclude: []
    naming: prefixed
    separator: "."
    start: earliest
    delivery: exactly-once
    refresh_interval: 10s
    checkpoint_interval: 1s
http: { listen: "127.0.0.1:9464" }
`

func TestParseExample(t *testing.T) {
	c, err := Parse("example.yaml", []byte(exampleYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.Path() != "example.yaml" {
		t.Errorf("Path() = %q", c.Path())
	}
	if got := c.FlowNames(); !reflect.DeepEqual(got, []string{"primary->secondary"}) {
		t.Fatalf("FlowNames() = %v", got)
	}
	f := c.Flows["primary->secondary"]
	checks := []struct {
		name      string
		got, want any
	}{
		{"Name", f.Name, "primary->secondary"},
		{"Source", f.Source, "primary"},
		{"Target", f.Target, "secondary"},
		{"Topics", f.Topics, []string{"orders.*"}},
		{"TopicsExclude", f.TopicsExclude, []string{}},
		{"GroupsExclude (explicitly empty stays empty)", f.GroupsExclude, []string{}},
		{"Naming", f.Naming, NamingPrefixed},
		{"Separator", f.Separator, "."},
		{"Start", f.Start, StartEarliest},
		{"ExactlyOnce", f.ExactlyOnce(), true},
		{"RefreshInterval", f.RefreshInterval.D(), 10 * time.Second},
		{"CheckpointInterval", f.CheckpointInterval.D(), time.Second},
		// Defaults for keys the example leaves out.
		{"IsEnabled", f.IsEnabled(), true},
		{"Slots", f.Slots, DefaultSlots},
		{"HeartbeatsEnabled", f.HeartbeatsEnabled(), true},
		{"HeartbeatInterval", f.HeartbeatInterval.D(), DefaultHeartbeatInterval},
		{"CreatesTopics", f.CreatesTopics(), true},
		{"SyncTopicConfigs", *f.SyncTopicConfigs, true},
		{"SyncACLs", *f.SyncACLs, true},
		{"SyncACLsWrite", *f.SyncACLsWrite, false},
		{"SyncGroupOffsets", *f.SyncGroupOffsets, true},
		{"ReplicationFactor", f.ReplicationFactor, 0},
		{"ConfigsExclude", f.ConfigsExclude, []string{}},
		{"MaxBatchBytes", f.MaxBatchBytes, DefaultMaxBatchBytes},
		{"CommitInterval", f.CommitInterval.D(), DefaultCommitInterval},
		{"StartTime", f.StartTime().IsZero(), true},
		{"DialTimeout", c.Clusters["primary"].DialTimeout.D(), DefaultDialTimeout},
		{"HTTP.Listen", c.HTTP.Listen, "127.0.0.1:9464"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	flows, err := c.SelectFlows(nil)
	if err != nil || len(flows) != 1 || flows[0] != f {
		t.Errorf("SelectFlows(nil) = %v, %v", flows, err)
	}
	if _, err := c.SelectFlows([]string{"secondary->primary"}); err == nil || !strings.Contains(err.Error(), "primary->secondary") {
		t.Errorf("SelectFlows(undefined) error = %v, want one listing the defined flows", err)
	}
}

func TestDefaultsWhenOmitted(t *testing.T) {
	c, err := Parse("min.yaml", []byte("clusters:\n  a: {bootstrap_servers: [\"h:1\"]}\n  b: {bootstrap_servers: [\"h:2\"]}\nflows:\n  a->b: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Flows["a->b"]
	if !reflect.DeepEqual(f.Topics, []string{".*"}) || !reflect.DeepEqual(f.Groups, []string{".*"}) {
		t.Errorf("topics/groups defaults = %v / %v", f.Topics, f.Groups)
	}
	if !reflect.DeepEqual(f.GroupsExclude, DefaultGroupsExclude) {
		t.Errorf("groups_exclude default = %v", f.GroupsExclude)
	}
	if f.RefreshInterval.D() != DefaultRefreshInterval || f.CheckpointInterval.D() != DefaultCheckpointInterval {
		t.Errorf("interval defaults = %v / %v", f.RefreshInterval.D(), f.CheckpointInterval.D())
	}
	if f.GroupPositionInterval.D() != DefaultGroupPositionInterval {
		t.Errorf("group_position_interval default = %v, want %v", f.GroupPositionInterval.D(), DefaultGroupPositionInterval)
	}
	// Never longer than checkpoint_interval when that is set shorter.
	c, err = Parse("d.yaml", []byte(base("    checkpoint_interval: 50ms\n")))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Flows["a->b"].GroupPositionInterval.D(); got != 50*time.Millisecond {
		t.Errorf("group_position_interval with checkpoint_interval 50ms = %v, want 50ms", got)
	}
	if c.HTTP.Listen != DefaultHTTPListen || f.Naming != DefaultNaming || f.Delivery != DefaultDelivery || f.Start != DefaultStart || f.Separator != DefaultSeparator || f.Compression != CompressionNone {
		t.Errorf("string defaults wrong: %+v %+v", c.HTTP, f)
	}
	// The defaults list must be copied, not shared between flows.
	f.GroupsExclude[0] = "changed"
	if DefaultGroupsExclude[0] == "changed" {
		t.Error("applyDefaults shares DefaultGroupsExclude")
	}
}

// TestCompressionCodecs: every codec Kafka names is accepted as written.
func TestCompressionCodecs(t *testing.T) {
	for _, codec := range []string{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		c, err := Parse("c.yaml", []byte(base("    compression: "+codec+"\n")))
		if err != nil {
			t.Fatalf("compression %s: %v", codec, err)
		}
		if got := c.Flows["a->b"].Compression; got != codec {
			t.Errorf("compression %s parsed as %q", codec, got)
		}
	}
}

// base builds a config around one flow body; flow is indented under
// "  a->b:" and may be empty.
func base(flow string) string {
	return "clusters:\n  a: {bootstrap_servers: [\"h:1\"]}\n  b: {bootstrap_servers: [\"h:2\"]}\nflows:\n  a->b:\n" + flow
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // the whole one-line message
	}{
		{
			name: "unknown key",
			yaml: base("    topics: [x]\n    topicz: [y]\n"),
			want: `bad.yaml:7: flows.a->b.topicz: unknown key "topicz"; remove it or fix its spelling (keys are snake_case, see README)`,
		},
		{
			name: "unknown top-level key",
			yaml: "clusterz: {}\n",
			want: `bad.yaml:1: clusterz: unknown key "clusterz"; remove it or fix its spelling (keys are snake_case, see README)`,
		},
		{
			name: "unknown cluster key in flow style",
			yaml: "clusters:\n  a: {bootstrap_servers: [\"h:1\"], ssl: true}\n",
			want: `bad.yaml:2: clusters.a.ssl: unknown key "ssl"; remove it or fix its spelling (keys are snake_case, see README)`,
		},
		{
			name: "bad regex",
			yaml: base("    topics: [\"orders\", \"(unclosed\"]\n"),
			want: "bad.yaml:6: flows.a->b.topics[1]: invalid regex \"(unclosed\": missing closing ): `(unclosed`; fix it (RE2 syntax, matched against the whole name)",
		},
		{
			name: "bad regex in block list",
			yaml: base("    groups_exclude:\n      - ok\n      - \"a**\"\n"),
			want: "bad.yaml:8: flows.a->b.groups_exclude[1]: invalid regex \"a**\": invalid nested repetition operator: `**`; fix it (RE2 syntax, matched against the whole name)",
		},
		{
			name: "undefined cluster",
			yaml: "clusters:\n  a: {bootstrap_servers: [\"h:1\"]}\n  b: {bootstrap_servers: [\"h:2\"]}\nflows:\n  a->c:\n    topics: [x]\n",
			want: `bad.yaml:5: flows.a->c: cluster "c" is not defined under clusters: (defined: a, b); define it or fix the flow name`,
		},
		{
			name: "self loop",
			yaml: "clusters:\n  a: {bootstrap_servers: [\"h:1\"]}\nflows:\n  a->a: {}\n",
			want: `bad.yaml:4: flows.a->a: flow replicates cluster "a" into itself; source and target must differ, e.g. primary->secondary`,
		},
		{
			name: "flow name without arrow",
			yaml: "clusters:\n  a: {bootstrap_servers: [\"h:1\"]}\nflows:\n  a-b: {}\n",
			want: `bad.yaml:4: flows.a-b: flow name "a-b" must be SOURCE->TARGET, e.g. primary->secondary`,
		},
		{
			name: "unknown compression codec",
			yaml: base("    topics: [x]\n    compression: brotli\n"),
			want: `bad.yaml:7: flows.a->b.compression: "brotli" is not a compression codec; use none, gzip, snappy, lz4 or zstd`,
		},
		{
			name: "unparsable duration",
			yaml: base("    refresh_interval: 10x\n"),
			want: `bad.yaml:6: flows.a->b.refresh_interval: "10x" is not a duration; use a value such as 500ms, 10s or 1m30s`,
		},
		{
			name: "duration without unit",
			yaml: base("    topics: [x]\n    checkpoint_interval: 5\n"),
			want: `bad.yaml:7: flows.a->b.checkpoint_interval: "5" is not a duration (a bare number has no unit); use a value such as 500ms, 10s or 1m30s`,
		},
		{
			name: "negative duration in flow mapping",
			yaml: "clusters:\n  a: {bootstrap_servers: [\"h:1\"], dial_timeout: -5s}\n",
			want: `bad.yaml:2: clusters.a.dial_timeout: "-5s" is negative; durations must be positive`,
		},
		{
			name: "duration given a list",
			yaml: base("    heartbeat_interval: [1s]\n"),
			want: `bad.yaml:6: flows.a->b.heartbeat_interval: want a duration such as 10s or 1m30s`,
		},
		{
			name: "wrong scalar type",
			yaml: base("    slots: many\n"),
			want: `bad.yaml:6: flows.a->b.slots: wrong type: want an integer, got "many"`,
		},
		{
			name: "bool given a list",
			yaml: base("    enabled: [yes]\n"),
			want: `bad.yaml:6: flows.a->b.enabled: wrong type: want true or false, got a list`,
		},
		{
			name: "bad naming",
			yaml: base("    naming: mirrored\n"),
			want: `bad.yaml:6: flows.a->b.naming: "mirrored" is not a naming mode; use prefixed or identical`,
		},
		{
			name: "bad start",
			yaml: base("    start: yesterday\n"),
			want: `bad.yaml:6: flows.a->b.start: "yesterday" is not a start position; use earliest, latest or an RFC3339 timestamp such as 2026-01-02T15:04:05Z`,
		},
		{
			name: "bad bootstrap server",
			yaml: "clusters:\n  a:\n    bootstrap_servers:\n      - localhost\n",
			want: `bad.yaml:4: clusters.a.bootstrap_servers[0]: "localhost" is not host:port (missing port in address); write it as host:9092, or [::1]:9092 for IPv6`,
		},
		{
			name: "empty file",
			yaml: "\n",
			want: `bad.yaml: config file is empty; it needs at least clusters: and flows:`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tt.yaml)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if !errors.Is(err, ErrUsage) {
				t.Errorf("error does not wrap ErrUsage")
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "bad.yaml" {
				t.Errorf("error is not a *config.Error for bad.yaml: %#v", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.yaml")
	_, err := Load(missing)
	want := missing + ": config file not found; pass an existing file with -c/--config (godwit sandbox --write-config FILE writes one)"
	if err == nil || err.Error() != want {
		t.Errorf("Load(missing) = %v, want %s", err, want)
	}
	if !errors.Is(err, ErrUsage) {
		t.Errorf("missing file error does not wrap ErrUsage")
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(exampleYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path() != good {
		t.Errorf("Path() = %q", c.Path())
	}
}

func TestDurationNullTakesDefault(t *testing.T) {
	c, err := Parse("x.yaml", []byte(base("    refresh_interval:\n    topics: [x]\n")))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Flows["a->b"].RefreshInterval.D(); got != DefaultRefreshInterval {
		t.Errorf("refresh_interval = %v, want default %v", got, DefaultRefreshInterval)
	}
}

func TestDurationValues(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"10s", 10 * time.Second, ""},
		{"1m30s", 90 * time.Second, ""},
		{`"500ms"`, 500 * time.Millisecond, ""},
		{"' 2h '", 2 * time.Hour, ""},
		{"0s", 0, "0s is zero, which means nothing here (it would not become the default); give a positive duration such as 10s, or remove the key for the default"},
		{"0", 0, "0 is zero, which means nothing here"},
		{"0ms", 0, "0ms is zero"},
		{"ten", 0, `"ten" is not a duration`},
		{"1.5", 0, `"1.5" is not a duration (a bare number has no unit)`},
		{"true", 0, `"true" is not a duration`},
		{"-1s", 0, `"-1s" is negative`},
		{"{a: 1}", 0, "want a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, err := Parse("d.yaml", []byte(base("    checkpoint_interval: "+tt.in+"\n")))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "d.yaml:6: flows.a->b.checkpoint_interval: ") {
					t.Errorf("error = %v, want d.yaml:6: flows.a->b.checkpoint_interval: ...%s...", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Flows["a->b"].CheckpointInterval.D(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseFlowName(t *testing.T) {
	tests := []struct {
		in       string
		src, dst string
		ok       bool
	}{
		{"primary->secondary", "primary", "secondary", true},
		{" a -> b ", "a", "b", true},
		{"a->a", "a", "a", true}, // a self-loop is rejected by validation, not parsing
		{"a-b", "", "", false},
		{"->b", "", "", false},
		{"a->", "", "", false},
		{"a->b->c", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		src, dst, err := ParseFlowName(tt.in)
		if (err == nil) != tt.ok || src != tt.src || dst != tt.dst {
			t.Errorf("ParseFlowName(%q) = %q, %q, %v", tt.in, src, dst, err)
		}
		if err != nil && !strings.Contains(err.Error(), "SOURCE->TARGET") {
			t.Errorf("ParseFlowName(%q) error %q does not say what to do", tt.in, err)
		}
	}
}

func TestSelectionFullMatch(t *testing.T) {
	c, err := Parse("s.yaml", []byte(base(`    topics: ["orders.*", "pay"]
    topics_exclude: ["orders\\.tmp.*"]
    groups: ["app-.*", "billing"]
    groups_exclude: ["app-test"]
`)))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Flows["a->b"]
	topics := map[string]bool{
		"orders":        true,
		"orders.v1":     true,
		"orders.tmp":    false, // excluded
		"orders.tmp.x":  false,
		"ordersXtmp":    true, // exclude's \. is literal
		"pay":           true,
		"payments":      false, // full match: "pay" is not a prefix match
		"prepay":        false,
		"my.orders":     false, // full match: not a substring match
		"":              false,
		"orders\nother": false,
	}
	for topic, want := range topics {
		if got := f.TopicSelected(topic); got != want {
			t.Errorf("TopicSelected(%q) = %v, want %v", topic, got, want)
		}
	}
	groups := map[string]bool{
		"app-web":     true,
		"app-test":    false,
		"app-testing": true, // exclude is a full match too
		"billing":     true,
		"billing-2":   false,
		"xapp-web":    false,
	}
	for group, want := range groups {
		if got := f.GroupSelected(group); got != want {
			t.Errorf("GroupSelected(%q) = %v, want %v", group, got, want)
		}
	}

	// Defaults: every topic, every group except the default exclusions.
	d, err := Parse("d.yaml", []byte(base("    {}\n")))
	if err != nil {
		t.Fatal(err)
	}
	df := d.Flows["a->b"]
	for g, want := range map[string]bool{"app": true, "console-consumer-123": false, "connect-x": false, "__consumer": false, "godwit.primary": false, "godwitx": true} {
		if got := df.GroupSelected(g); got != want {
			t.Errorf("default GroupSelected(%q) = %v, want %v", g, got, want)
		}
	}
	if !df.TopicSelected("anything") {
		t.Error("default TopicSelected(anything) = false")
	}
}

func TestAlternation(t *testing.T) {
	// An alternation must be wrapped so ^ and $ bind to the whole list entry.
	c, err := Parse("s.yaml", []byte(base("    topics: [\"a|b\"]\n")))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Flows["a->b"]
	for topic, want := range map[string]bool{"a": true, "b": true, "ab": false, "xb": false, "ax": false} {
		if got := f.TopicSelected(topic); got != want {
			t.Errorf("TopicSelected(%q) = %v, want %v", topic, got, want)
		}
	}
}

func TestStartTimestamp(t *testing.T) {
	c, err := Parse("s.yaml", []byte(base("    start: 2026-01-02T15:04:05Z\n")))
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	if got := c.Flows["a->b"].StartTime(); !got.Equal(want) {
		t.Errorf("StartTime() = %v, want %v", got, want)
	}
}

// The resolved config, as config check prints it, must load again to the
// same values.
func TestRedactedRoundTrip(t *testing.T) {
	c, err := Parse("example.yaml", []byte(exampleYAML))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	if r == c || &r.Clusters == &c.Clusters || r.Clusters["primary"] == c.Clusters["primary"] {
		t.Error("Redacted does not copy")
	}
	out, err := yaml.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse("resolved.yaml", out)
	if err != nil {
		t.Fatalf("resolved config does not parse: %v\n%s", err, out)
	}
	f1, f2 := c.Flows["primary->secondary"], c2.Flows["primary->secondary"]
	f1.topics, f1.topicsExclude, f1.groups, f1.groupsExclude = nil, nil, nil, nil
	f2.topics, f2.topicsExclude, f2.groups, f2.groupsExclude = nil, nil, nil, nil
	if !reflect.DeepEqual(f1, f2) {
		t.Errorf("round trip changed the flow:\n%+v\n%+v", f1, f2)
	}
	if !reflect.DeepEqual(c.Clusters, c2.Clusters) || c.HTTP != c2.HTTP {
		t.Errorf("round trip changed clusters/http")
	}
	for _, want := range []string{"refresh_interval: 10s", "slots: 16", "dial_timeout: 10s"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("resolved YAML lacks %q:\n%s", want, out)
		}
	}
}
