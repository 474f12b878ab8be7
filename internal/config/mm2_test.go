package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseProperties(t *testing.T) {
	in := "# comment\n" +
		"! also a comment\n" +
		"   # indented comment\n" +
		"\n" +
		"a=1\n" +
		"b = 2\n" +
		"c:3\n" +
		"d : 4\n" +
		"e 5\n" +
		"f\n" +
		"g = x, \\\n" +
		"    y, \\\n" +
		"    z\n" +
		"h = tab\\there\\nnl\n" +
		"i\\ j = key with space\n" +
		"k\\=l = key with equals\n" +
		"m = \\u0041\\u00e9 and \\\\ backslash \\. dot\n" +
		"n = value with # not a comment\n" +
		"o = trailing  \r\n" +
		"p = even backslashes \\\\\n" +
		"q = not continued\n" +
		"a = 6\n" +
		"r = continued at EOF\\"
	props, err := ParseProperties("p.properties", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	lines := map[string]int{}
	for _, p := range props {
		got[p.Key] = p.Value // last wins
		lines[p.Key] = p.Line
	}
	want := map[string]string{
		"a":   "6",
		"b":   "2",
		"c":   "3",
		"d":   "4",
		"e":   "5",
		"f":   "",
		"g":   "x, y, z",
		"h":   "tab\there\nnl",
		"i j": "key with space",
		"k=l": "key with equals",
		"m":   "Aé and \\ backslash . dot",
		"n":   "value with # not a comment",
		"o":   "trailing  ",
		"p":   "even backslashes \\",
		"q":   "not continued",
		"r":   "continued at EOF",
	}
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if got[k] != want[k] {
				t.Errorf("%q = %q, want %q", k, got[k], want[k])
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected key %q", k)
			}
		}
	}
	if lines["g"] != 11 || lines["q"] != 21 || lines["b"] != 6 {
		t.Errorf("lines: g=%d q=%d b=%d, want 11, 21, 6", lines["g"], lines["q"], lines["b"])
	}
}

func TestParsePropertiesBadEscape(t *testing.T) {
	_, err := ParseProperties("p.properties", []byte("a = 1\nb = \\u12x4\n"))
	want := `p.properties:2: b: malformed \u escape "\\u12x4"; write \u followed by four hex digits`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
	_, err = ParseProperties("p.properties", []byte("b = \\u12"))
	if err == nil || !errors.Is(err, ErrUsage) {
		t.Errorf("short \\u escape: error = %v", err)
	}
}

func TestConvertMM2Fixture(t *testing.T) {
	conv, err := LoadMM2(filepath.Join("testdata", "mm2.properties"))
	if err != nil {
		t.Fatal(err)
	}
	if len(conv.Actions) != 1 || conv.Actions[0].Env != "GODWIT_PRIMARY_SASL_PASSWORD" {
		t.Fatalf("actions = %+v, want the password variable of primary", conv.Actions)
	}
	t.Setenv("GODWIT_PRIMARY_SASL_PASSWORD", "hunter2")
	// The output is a valid godwit config.
	c, err := Parse("converted.yaml", conv.YAML)
	if err != nil {
		t.Fatalf("converted YAML does not parse: %v\n%s", err, conv.YAML)
	}
	if got := c.Clusters["primary"].BootstrapServers; !reflect.DeepEqual(got, []string{"kafka-a1.example.com:9092", "kafka-a2.example.com:9092", "kafka-a3.example.com:9092"}) {
		t.Errorf("primary bootstrap = %v", got)
	}
	if got := c.Clusters["secondary"].BootstrapServers; !reflect.DeepEqual(got, []string{"kafka-b1.example.com:9092", "kafka-b2.example.com:9092"}) {
		t.Errorf("secondary bootstrap = %v", got)
	}
	if got := c.FlowNames(); !reflect.DeepEqual(got, []string{"primary->secondary"}) {
		t.Fatalf("flows = %v; the disabled secondary->primary must be omitted", got)
	}
	if s := c.Clusters["primary"].SASL; s == nil || s.Mechanism != MechanismScramSHA512 || s.Username != "mm2" || s.PasswordEnv != "GODWIT_PRIMARY_SASL_PASSWORD" || s.Password != "" || !c.Clusters["primary"].TLS.IsEnabled() {
		t.Errorf("primary security = %+v tls %+v", s, c.Clusters["primary"].TLS)
	}
	if c.Clusters["secondary"].SASL != nil || c.Clusters["secondary"].TLS != nil {
		t.Error("secondary has no security settings in the MM2 file but got some")
	}
	if len(conv.Notes) != 1 || !strings.Contains(conv.Notes[0], "flow secondary->primary omitted") {
		t.Errorf("notes = %q", conv.Notes)
	}
	ps := c.Flows["primary->secondary"]
	checks := []struct {
		name      string
		got, want any
	}{
		{"p->s enabled", ps.IsEnabled(), true},
		{"p->s topics (per-flow, comma-separated, escapes)", ps.Topics, []string{`orders\..*`, `payments\..*`, `[a-z]+-events`}},
		{"topics_exclude (global)", ps.TopicsExclude, []string{`.*[\-\.]internal`, `.*\.replica`, `__.*`}},
		{"groups", ps.Groups, []string{".*"}},
		{"groups_exclude (legacy blacklist)", ps.GroupsExclude, []string{"console-consumer-.*", "connect-.*", "__.*"}},
		{"naming (IdentityReplicationPolicy)", ps.Naming, NamingIdentical},
		{"separator", ps.Separator, "_"},
		{"p->s checkpoint (per-flow override)", ps.CheckpointInterval.D(), 5 * time.Second},
		{"refresh", ps.RefreshInterval.D(), 30 * time.Second},
		{"sync_topic_configs", *ps.SyncTopicConfigs, true},
		{"sync_acls", *ps.SyncACLs, false},
		{"sync_group_offsets", *ps.SyncGroupOffsets, true},
		{"replication_factor", ps.ReplicationFactor, 3},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if !ps.TopicSelected("orders.eu") || ps.TopicSelected("ordersXeu") || !ps.TopicSelected("click-events") {
		t.Error("converted topic regexes do not select as MM2 would")
	}

	var keys []string
	for _, u := range conv.Unmapped {
		keys = append(keys, u.Key)
		if u.Line == 0 {
			t.Errorf("unmapped %s has no line", u.Key)
		}
	}
	wantKeys := []string{
		"checkpoints.topic.replication.factor",
		"config.storage.replication.factor",
		"heartbeats.topic.replication.factor",
		"key.converter",
		"offset-syncs.topic.replication.factor",
		"offset.storage.replication.factor",
		"secondary->primary.topics",
		"status.storage.replication.factor",
		"sync.group.offsets.interval.seconds",
		"tasks.max",
	}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("unmapped keys:\n got %q\nwant %q", keys, wantKeys)
	}
	for _, u := range conv.Unmapped {
		switch u.Key {
		case "tasks.max":
			if u.Value != "4" || u.Line != 46 {
				t.Errorf("tasks.max = %+v", u)
			}
		}
	}
	if strings.Contains(string(conv.YAML), "hunter2") {
		t.Error("secret leaked into YAML")
	}
}

func TestConvertMM2(t *testing.T) {
	const clusters = "clusters = a, b\na.bootstrap.servers = h:1\nb.bootstrap.servers = h:2\n"
	tests := []struct {
		name     string
		in       string
		check    func(t *testing.T, c *Config)
		unmapped []string
		wantErr  string
	}{
		{
			name: "defaults only: flow with MM2 defaults left to godwit's",
			in:   clusters + "a->b.enabled = true\n",
			check: func(t *testing.T, c *Config) {
				f := c.Flows["a->b"]
				if !f.IsEnabled() || !reflect.DeepEqual(f.Topics, []string{".*"}) || f.Naming != NamingPrefixed || f.RefreshInterval.D() != DefaultRefreshInterval {
					t.Errorf("flow = %+v", f)
				}
				if len(c.Flows) != 1 {
					t.Errorf("flows = %v; pairs MM2 does not mention must be omitted", c.FlowNames())
				}
			},
		},
		{
			name: "global topics and DefaultReplicationPolicy with separator",
			in: clusters + "a->b.enabled=TRUE\ntopics = x.*, y\nreplication.policy.class=DefaultReplicationPolicy\n" +
				"replication.policy.separator = -\nrefresh.topics.interval.seconds=600\nreplication.factor=-1\n" +
				"config.properties.blacklist = min\\\\.insync.*\nemit.heartbeats.enabled=false\nemit.heartbeats.interval.seconds=5\n",
			check: func(t *testing.T, c *Config) {
				f := c.Flows["a->b"]
				if !f.IsEnabled() || !reflect.DeepEqual(f.Topics, []string{"x.*", "y"}) || f.Naming != NamingPrefixed || f.Separator != "-" ||
					f.RefreshInterval.D() != 10*time.Minute || f.ReplicationFactor != 0 || !reflect.DeepEqual(f.ConfigsExclude, []string{`min\.insync.*`}) ||
					f.HeartbeatsEnabled() || f.HeartbeatInterval.D() != 5*time.Second {
					t.Errorf("flow = %+v", f)
				}
			},
		},
		{
			name: "per-flow overrides global and exclude overrides blacklist",
			in: clusters + "a->b.enabled=true\nb->a.enabled=true\ntopics.blacklist = old\ntopics.exclude = new\n" +
				"a->b.topics.exclude = flow\nb->a.replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n",
			check: func(t *testing.T, c *Config) {
				if got := c.Flows["a->b"].TopicsExclude; !reflect.DeepEqual(got, []string{"flow"}) {
					t.Errorf("a->b topics_exclude = %v", got)
				}
				if got := c.Flows["b->a"].TopicsExclude; !reflect.DeepEqual(got, []string{"new"}) {
					t.Errorf("b->a topics_exclude = %v", got)
				}
				if c.Flows["a->b"].Naming != NamingPrefixed || c.Flows["b->a"].Naming != NamingIdentical {
					t.Error("per-flow replication.policy.class not applied")
				}
			},
		},
		{
			name:     "custom replication policy is unmapped",
			in:       clusters + "a->b.enabled=true\nb->a.enabled=true\nreplication.policy.class = com.example.MyPolicy\n",
			unmapped: []string{"replication.policy.class"},
			check: func(t *testing.T, c *Config) {
				if c.Flows["a->b"].Naming != DefaultNaming {
					t.Error("custom policy changed naming")
				}
			},
		},
		{
			name:     "undefined cluster and self-loop keys are unmapped",
			in:       clusters + "a->b.enabled=true\na->c.enabled=true\na->a.enabled=true\nc.bootstrap.servers=h:3\n",
			unmapped: []string{"a->a.enabled", "a->c.enabled", "c.bootstrap.servers"},
		},
		{
			name:     "global flow keys without flows are unmapped",
			in:       clusters + "topics = x\n",
			unmapped: []string{"topics"},
			check: func(t *testing.T, c *Config) {
				if len(c.Flows) != 0 {
					t.Errorf("flows = %v", c.FlowNames())
				}
			},
		},
		{
			name:     "non-positive interval is unmapped",
			in:       clusters + "a->b.enabled=true\nemit.checkpoints.interval.seconds=-1\n",
			unmapped: []string{"emit.checkpoints.interval.seconds"},
		},
		{
			name:    "no clusters",
			in:      "a.bootstrap.servers = h:1\n",
			wantErr: "mm2.properties: no clusters = ... entry; an MM2 file lists its cluster aliases, e.g. clusters = primary, secondary",
		},
		{
			name:    "cluster without bootstrap servers",
			in:      "clusters = a, b\na.bootstrap.servers = h:1\n",
			wantErr: `mm2.properties:1: clusters: cluster "b" has no b.bootstrap.servers; add it (host:port, comma-separated)`,
		},
		{
			name:    "bad boolean",
			in:      clusters + "a->b.enabled = true\nsync.topic.acls.enabled = yes\n",
			wantErr: `mm2.properties:5: sync.topic.acls.enabled: "yes" is not true or false`,
		},
		{
			name:    "bad interval",
			in:      clusters + "a->b.enabled = true\na->b.refresh.topics.interval.seconds = 10s\n",
			wantErr: `mm2.properties:5: a->b.refresh.topics.interval.seconds: "10s" is not a whole number of seconds`,
		},
		{
			name:    "bad regex is reported against the MM2 file",
			in:      clusters + "a->b.enabled = true\ntopics = (x\n",
			wantErr: "mm2.properties:5: topics: invalid regex \"(x\": missing closing ): `(x`; fix it (MM2 lists are comma-separated regexes)",
		},
		{
			name:    "unusable separator is caught by validating the output",
			in:      clusters + "a->b.enabled = true\nreplication.policy.separator = /\n",
			wantErr: "mm2.properties: converted config is not valid: mm2.properties (converted):",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv, err := ConvertMM2("mm2.properties", []byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v\nwant %s", err, tt.wantErr)
				}
				if !errors.Is(err, ErrUsage) || strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not a one-line usage error: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse("converted.yaml", conv.YAML)
			if err != nil {
				t.Fatalf("converted YAML does not parse: %v\n%s", err, conv.YAML)
			}
			var keys []string
			for _, u := range conv.Unmapped {
				keys = append(keys, u.Key)
			}
			if !reflect.DeepEqual(keys, tt.unmapped) {
				t.Errorf("unmapped = %q, want %q", keys, tt.unmapped)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestLoadMM2Missing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mm2.properties")
	_, err := LoadMM2(p)
	want := p + ": MM2 properties file not found; pass the path of your mm2.properties (connect-mirror-maker.properties)"
	if err == nil || err.Error() != want || !errors.Is(err, ErrUsage) {
		t.Errorf("error = %v\nwant %s", err, want)
	}
}
