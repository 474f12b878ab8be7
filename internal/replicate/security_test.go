package replicate_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

// secureListeners are the SASL_SSL and mutual-TLS listeners scripts/kafka.sh
// starts beside the plaintext ones (see scripts/kafka.sh env).
type secureListeners struct {
	pair                         testkit.Pair // plaintext, for test producers and checkers
	primarySASL, secondarySASL   string
	primaryMTLS, secondaryMTLS   string
	ca, clientCert, clientKey    string
	user, passwordFile, password string
}

func requireSecureListeners(t *testing.T) secureListeners {
	t.Helper()
	p, ok := testkit.RealPair(t)
	s := secureListeners{
		pair:          p,
		primarySASL:   os.Getenv("GODWIT_TEST_PRIMARY_SASL_SSL"),
		secondarySASL: os.Getenv("GODWIT_TEST_SECONDARY_SASL_SSL"),
		primaryMTLS:   os.Getenv("GODWIT_TEST_PRIMARY_MTLS"),
		secondaryMTLS: os.Getenv("GODWIT_TEST_SECONDARY_MTLS"),
		ca:            os.Getenv("GODWIT_TEST_CA"),
		clientCert:    os.Getenv("GODWIT_TEST_CLIENT_CERT"),
		clientKey:     os.Getenv("GODWIT_TEST_CLIENT_KEY"),
		user:          os.Getenv("GODWIT_TEST_SCRAM_USER"),
		passwordFile:  os.Getenv("GODWIT_TEST_SCRAM_PASSWORD_FILE"),
	}
	if !ok || s.primarySASL == "" || s.secondarySASL == "" || s.primaryMTLS == "" || s.ca == "" || s.passwordFile == "" {
		t.Skip("no secure Kafka listeners: scripts/kafka.sh up starts them; eval \"$(scripts/kafka.sh env)\" exports GODWIT_TEST_PRIMARY_SASL_SSL and friends")
	}
	b, err := os.ReadFile(s.passwordFile)
	if err != nil {
		t.Fatal(err)
	}
	s.password = strings.TrimSpace(string(b))
	return s
}

// secureFlowConfig writes a config whose two clusters use the given
// cluster bodies (%s is replaced by the listener address), with aliases
// unique to the test, and one flow between them.
func secureFlowConfig(t *testing.T, srcAddr, dstAddr, clusterBody, flowBody string) (path, src, dst string) {
	t.Helper()
	id := strings.TrimPrefix(testkit.UniqueName(t, "x"), "x")
	id = strings.NewReplacer("/", "", "_", "", ".", "", "-", "").Replace(id)
	if len(id) > 12 {
		id = id[len(id)-12:]
	}
	src, dst = "a"+id, "b"+id
	var b strings.Builder
	fmt.Fprintf(&b, "clusters:\n  %s:\n%s  %s:\n%s", src, indent(fmt.Sprintf(clusterBody, srcAddr)), dst, indent(fmt.Sprintf(clusterBody, dstAddr)))
	fmt.Fprintf(&b, "flows:\n  %s->%s: {naming: prefixed, %s}\n", src, dst, flowBody)
	b.WriteString("http: {listen: \"127.0.0.1:0\"}\n")
	path = filepath.Join(t.TempDir(), "godwit.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, src, dst
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		b.WriteString("    " + strings.TrimSpace(l) + "\n")
	}
	return b.String()
}

// replicateThrough produces a workload on the plaintext primary, runs the
// flow in process through the secure listeners, and checks the target
// exactly once.
func replicateThrough(t *testing.T, s secureListeners, cfgPath, src, topic string) *inproc {
	t.Helper()
	testkit.CreateTopic(t, s.pair.Primary, topic, 3, nil)
	prod := sourceProducer(t, s.pair.Primary, workload.ProducerConfig{
		Topic: topic, Partitions: 3, ValueSize: 100, Transactional: true, AbortEvery: 4, Headers: true,
	}, testkit.UniqueName(t, "txn"))
	if err := prod.Produce(ctxFor(t, time.Minute), 300); err != nil {
		t.Fatal(err)
	}
	ip := runInProcess(t, cfgPath)
	if err := prod.Produce(ctxFor(t, time.Minute), 300); err != nil {
		t.Fatal(err)
	}
	target := src + "." + topic
	t.Cleanup(func() { deleteTopics(t, s.pair.Secondary, target) })
	waitCheck(t, s.pair.Secondary, prod.Ledger(), checkCfg(target, 3), 90*time.Second)
	return ip
}

func deleteTopics(t *testing.T, e testkit.Endpoint, topics ...string) {
	adm := testkit.Admin(t, e)
	_, _ = adm.DeleteTopics(ctxFor(t, 30*time.Second), topics...)
}

// TestReplicateSCRAMOverTLS replicates through SASL_SSL listeners with
// SCRAM-SHA-512 and a CA file, the password inline in the config, then
// checks that the password appears in none of: the replicator's logs, its
// metrics, `godwit config check` (text and JSON) and `godwit status`.
func TestReplicateSCRAMOverTLS(t *testing.T) {
	s := requireSecureListeners(t)
	topic := testkit.UniqueName(t, "scram")
	cfgPath, src, dst := secureFlowConfig(t, s.primarySASL, s.secondarySASL, `
		bootstrap_servers: ["%s"]
		tls: {ca_file: "`+s.ca+`"}
		sasl: {mechanism: scram-sha-512, username: `+s.user+`, password: "`+s.password+`"}`,
		`topics: ["`+topic+`"], slots: 2`)
	ip := replicateThrough(t, s, cfgPath, src, topic)
	if ok, why := ip.r.Ready(); !ok {
		t.Errorf("not ready: %s", why)
	}

	var out bytes.Buffer
	out.WriteString(ip.logs.String())
	mfs, err := ip.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	enc := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		_ = enc.Encode(mf)
	}
	bin := godwitBinary(t)
	for _, args := range [][]string{
		{"config", "check", "-c", cfgPath},
		{"config", "check", "-c", cfgPath, "-o", "json"},
		{"status", "-c", cfgPath},
		{"status", "-c", cfgPath, "-o", "json"},
		{"status", "-c", cfgPath, "--log-level", "debug"},
	} {
		cmd := exec.Command(bin, args...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("godwit %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		fmt.Fprintf(&out, "\n$ godwit %s\n%s", strings.Join(args, " "), b)
	}
	if !strings.Contains(out.String(), "password: <redacted>") {
		t.Errorf("config check does not show the password redacted")
	}
	if !strings.Contains(out.String(), src+"->"+dst) {
		t.Errorf("status output lacks the flow")
	}
	if strings.Contains(out.String(), s.password) {
		t.Fatalf("the SCRAM password appears in logs, metrics, config check or status output:\n%s", tail(out.String(), 8000))
	}
	t.Logf("checked %d bytes of logs, metrics and command output: no secret", out.Len())
}

// TestReplicateMutualTLS replicates through SSL listeners that require a
// client certificate.
func TestReplicateMutualTLS(t *testing.T) {
	s := requireSecureListeners(t)
	if s.secondaryMTLS == "" || s.clientCert == "" {
		t.Skip("no mutual TLS listeners")
	}
	topic := testkit.UniqueName(t, "mtls")
	cfgPath, src, _ := secureFlowConfig(t, s.primaryMTLS, s.secondaryMTLS, `
		bootstrap_servers: ["%s"]
		tls: {ca_file: "`+s.ca+`", cert_file: "`+s.clientCert+`", key_file: "`+s.clientKey+`"}`,
		`topics: ["`+topic+`"], slots: 2`)
	replicateThrough(t, s, cfgPath, src, topic)
}

// TestReplicateWrongPassword: a wrong password is reported as an
// authentication failure naming the cluster and user, readiness says so,
// the secret is not logged, and the brokers see only a handful of
// attempts (no retry storm) while the flow keeps retrying setup.
func TestReplicateWrongPassword(t *testing.T) {
	s := requireSecureListeners(t)
	wrong := "wrong-" + strings.TrimPrefix(testkit.UniqueName(t, ""), ".")
	t.Setenv("GODWIT_TEST_WRONG_PW", wrong)
	topic := testkit.UniqueName(t, "wrongpw")
	cfgPath, _, dst := secureFlowConfig(t, s.primarySASL, s.secondarySASL, `
		bootstrap_servers: ["%s"]
		tls: {ca_file: "`+s.ca+`"}
		sasl: {mechanism: scram-sha-512, username: `+s.user+`, password_env: GODWIT_TEST_WRONG_PW}`,
		`topics: ["`+topic+`"], slots: 4`)
	ip := runInProcess(t, cfgPath)
	want := "cluster " + dst + " (" + s.secondarySASL + "): authentication failed (sasl scram-sha-512 as user \"" + s.user + "\")"
	testkit.Eventually(t, 30*time.Second, func() (bool, string) {
		ok, why := ip.r.Ready()
		if ok {
			return false, "ready with a wrong password"
		}
		return strings.Contains(why, want), "readiness: " + why
	})
	time.Sleep(8 * time.Second) // let retries happen
	logs := ip.logs.String()
	if strings.Contains(logs, wrong) || strings.Contains(logs, s.password) {
		t.Fatalf("a password is logged:\n%s", tail(logs, 4000))
	}
	// The brokers log every failed SCRAM exchange as SASL_AUTHENTICATION_FAILED
	// returned to a client; franz-go logs it per attempt at warn level.
	attempts := strings.Count(logs, "Authentication failed during authentication due to invalid credentials")
	setupErrs := strings.Count(logs, "flow setup failed")
	t.Logf("over ~10s: %d setup failures logged, %d broker authentication rejections seen in logs", setupErrs, attempts)
	if setupErrs > 8 {
		t.Errorf("%d setup failures in ~10s: retry storm", setupErrs)
	}
	if got := ip.metric("godwit_errors_total", map[string]string{"kind": "setup"}); got > 8 {
		t.Errorf("godwit_errors_total{kind=setup} = %v: retry storm", got)
	}
}
