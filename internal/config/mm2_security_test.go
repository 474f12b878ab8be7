package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestConvertMM2Security(t *testing.T) {
	const base = "clusters = a, b\na.bootstrap.servers = h:1\nb.bootstrap.servers = h:2\na->b.enabled = true\n"
	scram := `org.apache.kafka.common.security.scram.ScramLoginModule required username="u1" password="pw-\\"quoted\\"-1";`
	type want struct {
		notes    []string // substrings, in order
		unmapped map[string]string
		envs     []string
		check    func(t *testing.T, c *Config)
	}
	tests := []struct {
		name    string
		in      string
		env     map[string]string
		want    want
		wantErr string
	}{
		{
			name: "per-cluster protocol overrides the global one",
			in:   base + "security.protocol = SASL_SSL\nsasl.mechanism = SCRAM-SHA-256\nsasl.jaas.config = " + scram + "\nb.security.protocol = PLAINTEXT\n",
			env:  map[string]string{"GODWIT_A_SASL_PASSWORD": "x"},
			want: want{envs: []string{"GODWIT_A_SASL_PASSWORD"}, check: func(t *testing.T, c *Config) {
				a, b := c.Clusters["a"], c.Clusters["b"]
				if a.SASL == nil || a.SASL.Mechanism != MechanismScramSHA256 || a.SASL.Username != "u1" || !a.TLS.IsEnabled() {
					t.Errorf("a = %+v %+v", a.SASL, a.TLS)
				}
				if b.SASL != nil || b.TLS != nil {
					t.Errorf("b has security settings: %+v %+v", b.SASL, b.TLS)
				}
			}},
		},
		{
			name: "role-specific settings are used when no cluster-level one exists",
			in:   base + "a.consumer.security.protocol = SSL\na.admin.security.protocol = SSL\na.consumer.ssl.truststore.type = PEM\na.consumer.ssl.truststore.location = /dev/null\n",
			want: want{check: func(t *testing.T, c *Config) {
				if tl := c.Clusters["a"].TLS; !tl.IsEnabled() || tl.CAFile != "/dev/null" {
					t.Errorf("a tls = %+v", tl)
				}
			}},
		},
		{
			name: "SASL keys without a SASL protocol are reported, not applied",
			in:   base + "a.sasl.mechanism = PLAIN\nsasl.jaas.config = x\n",
			want: want{unmapped: map[string]string{
				"a.sasl.mechanism": "not used: a's security.protocol is PLAINTEXT (no SASL), so MM2 ignored it too",
				"sasl.jaas.config": "not used: no cluster's security.protocol uses SASL",
			}},
		},
		{
			name: "OAUTHBEARER is not supported: TLS only, with a note and reasons",
			in: base + "a.security.protocol = SASL_SSL\na.sasl.mechanism = OAUTHBEARER\na.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"c\" clientSecret=\"s3\";\n" +
				"a.sasl.login.callback.handler.class = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler\na.sasl.oauthbearer.token.endpoint.url = https://idp/token\n",
			want: want{
				notes: []string{"cluster a: SASL/OAUTHBEARER is not supported by godwit"},
				unmapped: map[string]string{
					"a.sasl.mechanism":                      "godwit does not support SASL/OAUTHBEARER: give godwit's principal SCRAM or PLAIN credentials (sasl:) or a client certificate (tls.cert_file, tls.key_file), or aws_msk_iam on MSK",
					"a.sasl.jaas.config":                    "SASL/OAUTHBEARER login: not supported, see a.sasl.mechanism",
					"a.sasl.login.callback.handler.class":   "SASL/OAUTHBEARER login: not supported, see a.sasl.mechanism",
					"a.sasl.oauthbearer.token.endpoint.url": reasonSASLTuning,
				},
				check: func(t *testing.T, c *Config) {
					if a := c.Clusters["a"]; a.SASL != nil || !a.TLS.IsEnabled() {
						t.Errorf("a = %+v %+v", a.SASL, a.TLS)
					}
				}},
		},
		{
			name: "SASL without a mechanism is Kerberos (Kafka's default), not supported",
			in:   base + "a.security.protocol = SASL_PLAINTEXT\na.sasl.jaas.config = com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/k\";\n",
			want: want{notes: []string{"cluster a: Kerberos (SASL/GSSAPI) is not supported by godwit"},
				unmapped: map[string]string{"a.sasl.jaas.config": "godwit does not support Kerberos (SASL/GSSAPI): give godwit's principal SCRAM or PLAIN credentials (sasl:) or a client certificate (tls.cert_file, tls.key_file), or aws_msk_iam on MSK"}},
		},
		{
			name: "no JAAS config: the user must be filled in",
			in:   base + "a.security.protocol = SASL_SSL\na.sasl.mechanism = SCRAM-SHA-512\n",
			env:  map[string]string{"GODWIT_A_SASL_PASSWORD": "x"},
			want: want{notes: []string{"cluster a: SCRAM-SHA-512 without sasl.jaas.config"}, envs: []string{"GODWIT_A_SASL_PASSWORD"},
				check: func(t *testing.T, c *Config) {
					if s := c.Clusters["a"].SASL; s.Username != "SET-ME" {
						t.Errorf("username = %q", s.Username)
					}
				}},
		},
		{
			name: "aliases that sanitise alike get distinct variables",
			in: "clusters = a-b, a_b\na-b.bootstrap.servers = h:1\na_b.bootstrap.servers = h:2\na-b->a_b.enabled = true\n" +
				"security.protocol = SASL_SSL\nsasl.mechanism = PLAIN\nsasl.jaas.config = " + strings.Replace(scram, "scram.ScramLoginModule", "plain.PlainLoginModule", 1) + "\n",
			env:  map[string]string{"GODWIT_A_B_SASL_PASSWORD": "x", "GODWIT_A_B_SASL_PASSWORD_2": "y"},
			want: want{envs: []string{"GODWIT_A_B_SASL_PASSWORD", "GODWIT_A_B_SASL_PASSWORD_2"}},
		},
		{
			name: "consumer auto.offset.reset is the flow's start",
			in:   base + "a.consumer.auto.offset.reset = latest\nb->a.enabled = true\nb.consumer.auto.offset.reset = none\n",
			want: want{
				unmapped: map[string]string{"b.consumer.auto.offset.reset": `"none" has no godwit start equivalent; godwit starts a flow's first run at earliest, latest or an RFC3339 time (start:)`},
				check: func(t *testing.T, c *Config) {
					if s := c.Flows["a->b"].Start; s != StartLatest {
						t.Errorf("a->b start = %q", s)
					}
				}},
		},
		{
			name: "disabled and unmentioned flows are omitted with a note",
			in:   base + "b->a.enabled = false\nb->a.topics = x\n",
			want: want{notes: []string{"flow b->a omitted: MM2 does not run it (b->a.enabled = false)"},
				unmapped: map[string]string{"b->a.topics": "flow b->a is not enabled in MM2, so godwit omits it"},
				check: func(t *testing.T, c *Config) {
					if !reflect.DeepEqual(c.FlowNames(), []string{"a->b"}) {
						t.Errorf("flows = %v", c.FlowNames())
					}
				}},
		},
		{
			name:    "bad security.protocol",
			in:      base + "a.security.protocol = TLS\n",
			wantErr: `mm2.properties:5: a.security.protocol: "TLS" is not a Kafka security.protocol; use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL`,
		},
		{
			name:    "unknown mechanism",
			in:      base + "a.security.protocol = SASL_SSL\na.sasl.mechanism = SCRAM-SHA-1\n",
			wantErr: `mm2.properties:6: a.sasl.mechanism: "SCRAM-SHA-1" is not a SASL mechanism godwit knows`,
		},
		{
			name:    "a JAAS config that cannot be read is named, never quoted",
			in:      base + "a.security.protocol = SASL_SSL\na.sasl.mechanism = PLAIN\na.sasl.jaas.config = PlainLoginModule required username=\"u\" password=\"pw-secret-77\n",
			wantErr: "mm2.properties:7: a.sasl.jaas.config: cannot read it (a quoted value is not closed)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv, err := ConvertMM2("mm2.properties", []byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v\nwant %s", err, tt.wantErr)
				}
				if !errors.Is(err, ErrUsage) || strings.Contains(err.Error(), "pw-secret") {
					t.Errorf("error is not a usage error or leaks the password: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := Parse("converted.yaml", conv.YAML)
			if err != nil {
				t.Fatalf("converted YAML does not parse: %v\n%s", err, conv.YAML)
			}
			if strings.Contains(string(conv.YAML), "pw-") || strings.Contains(string(conv.YAML), "s3") {
				t.Errorf("a secret leaked into the YAML:\n%s", conv.YAML)
			}
			var envs []string
			for _, a := range conv.Actions {
				if a.Kind == "env" {
					envs = append(envs, a.Env)
				}
			}
			if !reflect.DeepEqual(envs, tt.want.envs) {
				t.Errorf("env actions = %q, want %q", envs, tt.want.envs)
			}
			if len(conv.Notes) != len(tt.want.notes) {
				t.Errorf("notes = %q, want %d", conv.Notes, len(tt.want.notes))
			}
			for i, n := range tt.want.notes {
				if i < len(conv.Notes) && !strings.HasPrefix(conv.Notes[i], n) {
					t.Errorf("note %d = %q, want prefix %q", i, conv.Notes[i], n)
				}
			}
			got := map[string]string{}
			for _, u := range conv.Unmapped {
				got[u.Key] = u.Reason
			}
			for k, r := range tt.want.unmapped {
				if got[k] != r {
					t.Errorf("unmapped %s reason = %q\nwant %q", k, got[k], r)
				}
			}
			if tt.want.check != nil {
				tt.want.check(t, c)
			}
		})
	}
}

func TestParseJAAS(t *testing.T) {
	j, err := parseJAAS(`org.apache.kafka.common.security.scram.ScramLoginModule required username="a b" password="p\"w\\x" tokenauth=true;`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"username": "a b", "password": `p"w\x`, "tokenauth": "true"}
	if j.module != "org.apache.kafka.common.security.scram.ScramLoginModule" || j.flag != "required" || !reflect.DeepEqual(j.options, want) {
		t.Errorf("got %+v", j)
	}
	for _, bad := range []string{"", "Module", "Module mandatory;", "Module required user;", `Module required user="x"`, `Module required "k"="v";`} {
		if _, err := parseJAAS(bad); err == nil {
			t.Errorf("parseJAAS(%q) accepted", bad)
		}
	}
}
