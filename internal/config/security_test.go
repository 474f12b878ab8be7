package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

const secretPassword = "s3cr3t-godwit-test-PASSWORD"

func secureYAML(cluster string) string {
	return "clusters:\n  primary:\n" + indentLines(cluster, "    ") +
		"  secondary: { bootstrap_servers: [\"127.0.0.1:29092\"] }\n" +
		"flows:\n  primary->secondary: {}\n"
}

func indentLines(s, pre string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		b.WriteString(pre + strings.TrimSpace(l) + "\n")
	}
	return b.String()
}

func writeFile(t *testing.T, name, data string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	return p
}

func TestSecurityConfigValid(t *testing.T) {
	ca := writeFile(t, "ca.pem", "x", 0o644)
	pw := writeFile(t, "pw", secretPassword+"\n", 0o600)
	t.Setenv("GODWIT_TEST_PW", secretPassword)
	for name, body := range map[string]string{
		"scram file": `bootstrap_servers: ["b:9096"]
			tls: {ca_file: ` + ca + `}
			sasl: {mechanism: scram-sha-512, username: godwit, password_file: ` + pw + `}`,
		"scram env, uppercase mechanism": `bootstrap_servers: ["b:9096"]
			tls: {}
			sasl: {mechanism: SCRAM-SHA-256, username: godwit, password_env: GODWIT_TEST_PW}`,
		"plain inline": `bootstrap_servers: ["b:9096"]
			tls: {enabled: true, server_name: kafka.internal}
			sasl: {mechanism: plain, username: godwit, password: ` + secretPassword + `}`,
		"iam": `bootstrap_servers: ["b-1.x.kafka.us-east-1.amazonaws.com:9098"]
			sasl: {mechanism: aws_msk_iam, region: us-east-1, role_arn: "arn:aws:iam::123456789012:role/godwit"}`,
		"mtls": `bootstrap_servers: ["b:9094"]
			tls: {ca_file: ` + ca + `, cert_file: ` + ca + `, key_file: ` + pw + `}`,
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Parse("c.yaml", []byte(secureYAML(body)))
			if err != nil {
				t.Fatal(err)
			}
			cl := c.Clusters["primary"]
			if !cl.TLS.IsEnabled() {
				t.Error("TLS not enabled")
			}
			if cl.SASL != nil {
				if _, err := cl.SASL.ResolvePassword(); err != nil && !cl.SASL.UsesIAM() {
					t.Errorf("ResolvePassword: %v", err)
				}
			}
		})
	}
}

func TestSecurityConfigErrors(t *testing.T) {
	ca := writeFile(t, "ca.pem", "x", 0o644)
	for name, tc := range map[string]struct{ body, want string }{
		"missing password_env variable": {`bootstrap_servers: ["b:9096"]
			sasl: {mechanism: scram-sha-512, username: godwit, password_env: GODWIT_TEST_SURELY_UNSET_VAR}`,
			"c.yaml:4: clusters.primary.sasl.password_env: environment variable GODWIT_TEST_SURELY_UNSET_VAR is not set or empty"},
		"missing password file": {`bootstrap_servers: ["b:9096"]
			sasl: {mechanism: scram-sha-512, username: godwit, password_file: /nonexistent/pw}`,
			"clusters.primary.sasl.password_file: /nonexistent/pw: no such file or directory"},
		"two passwords": {`bootstrap_servers: ["b:9096"]
			sasl: {mechanism: plain, username: u, password: x, password_env: HOME}`,
			"exactly one of password, password_env or password_file (found 2)"},
		"no username": {`bootstrap_servers: ["b:9096"]
			sasl: {mechanism: scram-sha-256, password: x}`,
			"clusters.primary.sasl.username: scram-sha-256 needs a username"},
		"unknown mechanism": {`bootstrap_servers: ["b:9096"]
			sasl: {mechanism: gssapi, username: u, password: x}`,
			`clusters.primary.sasl.mechanism: "gssapi" is not a supported mechanism; use one of plain, scram-sha-256, scram-sha-512, aws_msk_iam`},
		"iam with password": {`bootstrap_servers: ["b:9098"]
			sasl: {mechanism: aws_msk_iam, username: u, password: x}`,
			"aws_msk_iam takes no username or password"},
		"iam bad role": {`bootstrap_servers: ["b:9098"]
			sasl: {mechanism: aws_msk_iam, role_arn: godwit}`,
			`clusters.primary.sasl.role_arn: "godwit" is not an IAM role ARN`},
		"iam without tls": {`bootstrap_servers: ["b:9098"]
			tls: {enabled: false}
			sasl: {mechanism: aws_msk_iam}`,
			"aws_msk_iam needs TLS"},
		"cert without key": {`bootstrap_servers: ["b:9094"]
			tls: {cert_file: ` + ca + `}`,
			"clusters.primary.tls: cert_file and key_file go together"},
		"missing ca": {`bootstrap_servers: ["b:9094"]
			tls: {ca_file: /nonexistent/ca.pem}`,
			"clusters.primary.tls.ca_file: /nonexistent/ca.pem: no such file or directory"},
		"disabled with settings": {`bootstrap_servers: ["b:9094"]
			tls: {enabled: false, ca_file: ` + ca + `}`,
			"tls settings are given but tls.enabled is false"},
		"unknown tls key": {`bootstrap_servers: ["b:9094"]
			tls: {ca: x}`,
			`unknown key "ca"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(secureYAML(tc.body)))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrUsage) {
				t.Errorf("not a usage error: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n  %v\nlacks\n  %s", err, tc.want)
			}
		})
	}
}

func TestSecurityWarnings(t *testing.T) {
	pw := writeFile(t, "pw", secretPassword, 0o644)
	y := `clusters:
  primary:
    bootstrap_servers: ["b:9096"]
    tls: {insecure_skip_verify: true}
    sasl: {mechanism: scram-sha-512, username: godwit, password_file: ` + pw + `}
  msk:
    bootstrap_servers: ["b-1.x.kafka.us-east-1.amazonaws.com:9098"]
    sasl: {mechanism: aws_msk_iam}
  plaintext:
    bootstrap_servers: ["b:9092"]
    sasl: {mechanism: plain, username: u, password: ` + secretPassword + `}
flows:
  primary->msk: {sync_acls: true}
  msk->primary: {}
  primary->plaintext: {}
`
	c, err := Parse("c.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(c.AllWarnings(), "\n")
	for _, want := range []string{
		"clusters.primary.tls.insecure_skip_verify is true: the brokers' certificates are NOT verified",
		"clusters.primary.sasl.password_file " + pw + " is readable by others (mode 0644)",
		"flows.primary->msk.sync_acls is true but cluster msk uses aws_msk_iam",
		"clusters.plaintext.sasl: mechanism plain without tls sends the password in clear text",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, secretPassword) {
		t.Error("a warning carries the password")
	}
	if got := c.Warnings("msk"); len(got) != 1 {
		t.Errorf("msk warnings %q", got)
	}
	// Flows touching an IAM cluster default to no ACL sync.
	if f := c.Flows["msk->primary"]; *f.SyncACLs {
		t.Error("msk->primary: sync_acls defaults to true with an aws_msk_iam cluster")
	}
	if f := c.Flows["primary->plaintext"]; !*f.SyncACLs {
		t.Error("primary->plaintext: sync_acls default changed")
	}
}

// TestSecretsRedacted checks what config check prints (YAML and JSON of
// Redacted), %v/%+v/%#v of the settings, and slog output.
func TestSecretsRedacted(t *testing.T) {
	y := secureYAML(`bootstrap_servers: ["b:9096"]
		tls: {}
		sasl: {mechanism: scram-sha-512, username: godwit, password: ` + secretPassword + `}`)
	c, err := Parse("c.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	var out bytes.Buffer
	yb, err := yaml.MarshalWithOptions(r, yaml.IndentSequence(true))
	if err != nil {
		t.Fatal(err)
	}
	out.Write(yb)
	jb, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(jb)
	// Even the unredacted config does not marshal its secret.
	yb, _ = yaml.Marshal(c)
	out.Write(yb)
	jb, _ = json.Marshal(c)
	out.Write(jb)
	s := c.Clusters["primary"].SASL
	fmt.Fprintf(&out, "%v %+v %#v %s %v", s, s, s, s, *c.Clusters["primary"])
	slog.New(slog.NewTextHandler(&out, nil)).Info("x", "sasl", s)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "sasl", s)
	if strings.Contains(out.String(), secretPassword) {
		t.Fatalf("secret printed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "password: <redacted>") {
		t.Errorf("redacted YAML lacks password: <redacted>:\n%s", out.String())
	}
	if c.Clusters["primary"].SASL.Password != secretPassword {
		t.Error("Redacted changed the original config")
	}
	// Without TLS/SASL the printed cluster is unchanged (no new keys).
	plain, _ := yaml.Marshal(c.Redacted().Clusters["secondary"])
	if strings.Contains(string(plain), "tls") || strings.Contains(string(plain), "sasl") {
		t.Errorf("plaintext cluster prints security keys:\n%s", plain)
	}
}
