package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
)

// secureEnv is what scripts/kafka.sh env exports for the secure listeners.
type secureEnv struct {
	saslSSL, mtls                string // primary's listeners
	ca, clientCert, clientKey    string
	user, passwordFile, password string
}

func requireSecure(t *testing.T) secureEnv {
	t.Helper()
	e := secureEnv{
		saslSSL:      os.Getenv("GODWIT_TEST_PRIMARY_SASL_SSL"),
		mtls:         os.Getenv("GODWIT_TEST_PRIMARY_MTLS"),
		ca:           os.Getenv("GODWIT_TEST_CA"),
		clientCert:   os.Getenv("GODWIT_TEST_CLIENT_CERT"),
		clientKey:    os.Getenv("GODWIT_TEST_CLIENT_KEY"),
		user:         os.Getenv("GODWIT_TEST_SCRAM_USER"),
		passwordFile: os.Getenv("GODWIT_TEST_SCRAM_PASSWORD_FILE"),
	}
	if e.saslSSL == "" || e.mtls == "" || e.ca == "" || e.passwordFile == "" {
		t.Skip("no secure Kafka listeners: scripts/kafka.sh up starts them; eval \"$(scripts/kafka.sh env)\" exports GODWIT_TEST_PRIMARY_SASL_SSL and friends")
	}
	b, err := os.ReadFile(e.passwordFile)
	if err != nil {
		t.Fatal(err)
	}
	e.password = strings.TrimSpace(string(b))
	return e
}

// parseCluster parses a one-cluster config whose cluster body is yaml.
func parseCluster(t *testing.T, alias, body string) *Cluster {
	t.Helper()
	y := fmt.Sprintf("clusters:\n  %s:\n%s\n", alias, indent(body, "    "))
	cfg, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	c, err := New(cfg, alias)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = pre + strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}

func ping(t *testing.T, c *Cluster) error {
	t.Helper()
	_, err := c.Ping(context.Background(), 15*time.Second)
	return err
}

func TestSASLOverTLS(t *testing.T) {
	e := requireSecure(t)
	for _, mech := range []string{"scram-sha-512", "scram-sha-256", "plain"} {
		t.Run(mech, func(t *testing.T) {
			c := parseCluster(t, "sec", fmt.Sprintf(`
				bootstrap_servers: [%q]
				tls: {ca_file: %q}
				sasl: {mechanism: %s, username: %s, password_file: %q}`, e.saslSSL, e.ca, mech, e.user, e.passwordFile))
			if err := ping(t, c); err != nil {
				t.Fatalf("ping over SASL_SSL with %s: %v", mech, err)
			}
		})
	}
	t.Run("password_env", func(t *testing.T) {
		t.Setenv("GODWIT_TEST_KAFKA_PW", e.password)
		c := parseCluster(t, "sec", fmt.Sprintf(`
			bootstrap_servers: [%q]
			tls: {ca_file: %q, server_name: localhost}
			sasl: {mechanism: SCRAM-SHA-512, username: %s, password_env: GODWIT_TEST_KAFKA_PW}`, e.saslSSL, e.ca, e.user))
		if err := ping(t, c); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMutualTLS(t *testing.T) {
	e := requireSecure(t)
	c := parseCluster(t, "mtls", fmt.Sprintf(`
		bootstrap_servers: [%q]
		tls: {ca_file: %q, cert_file: %q, key_file: %q}`, e.mtls, e.ca, e.clientCert, e.clientKey))
	if err := ping(t, c); err != nil {
		t.Fatalf("ping over mutual TLS: %v", err)
	}
	// Without a client certificate the broker refuses the handshake.
	c = parseCluster(t, "mtls", fmt.Sprintf(`
		bootstrap_servers: [%q]
		tls: {ca_file: %q}`, e.mtls, e.ca))
	err := ping(t, c)
	if err == nil {
		t.Fatal("mutual TLS listener accepted a client without a certificate")
	}
	t.Logf("no client certificate: %v", err)
	// TLS 1.3 reports a missing client certificate in an alert on the
	// first read after the handshake.
	for _, want := range []string{"cluster mtls", "tls.cert_file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestWrongPasswordFailsClearlyWithoutStorm(t *testing.T) {
	e := requireSecure(t)
	dir := t.TempDir()
	wrong := "not-the-password-" + fmt.Sprint(time.Now().UnixNano())
	pf := filepath.Join(dir, "pw")
	if err := os.WriteFile(pf, []byte(wrong+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := parseCluster(t, "wrongpw", fmt.Sprintf(`
		bootstrap_servers: [%q]
		tls: {ca_file: %q}
		sasl: {mechanism: scram-sha-512, username: %s, password_file: %q}`, e.saslSSL, e.ca, e.user, pf))
	start := time.Now()
	err := ping(t, c)
	if err == nil {
		t.Fatal("a wrong password authenticated")
	}
	msg := err.Error()
	t.Logf("wrong password: %v (after %v)", err, time.Since(start))
	for _, want := range []string{"cluster wrongpw", "authentication failed", `user "` + e.user + `"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, wrong) || strings.Contains(msg, e.password) {
		t.Errorf("error leaks a password: %s", msg)
	}
	if !IsAuthError(err) {
		t.Errorf("IsAuthError(%v) = false", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("failing took %v; an authentication failure must not be retried until the timeout", d)
	}

	// Many clients (as a replicator has: admin, members, one producer and
	// consumer per slot) hammering for a few seconds reach the broker only
	// a few times: the guard shares one verdict.
	g := guardFor(c)
	before := g.attemptCount()
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := c.Client(fmt.Sprintf("storm-%d", i), nil, kgo.RetryTimeout(time.Second))
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			for ctx.Err() == nil {
				_, err := adm.BrokerMetadata(ctx)
				if err == nil {
					t.Error("authenticated with a wrong password")
					return
				}
				if ctx.Err() == nil && !IsAuthError(err) {
					t.Errorf("not an authentication error: %v", err)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if n := g.attemptCount() - before; n > 3 {
		t.Errorf("%d authentications reached the broker in 5s from 8 clients; want at most 3 (backoff)", n)
	} else {
		t.Logf("%d authentication(s) reached the broker in 5s from 8 clients retrying every 50ms", n)
	}
}

func (g *authGuard) attemptCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.attempts
}

func TestTLSErrorsNameClusterAndServerName(t *testing.T) {
	e := requireSecure(t)
	t.Run("unknown CA", func(t *testing.T) {
		other := writeCA(t)
		c := parseCluster(t, "badca", fmt.Sprintf(`
			bootstrap_servers: [%q]
			tls: {ca_file: %q}
			sasl: {mechanism: scram-sha-512, username: %s, password_file: %q}`, e.saslSSL, other, e.user, e.passwordFile))
		err := ping(t, c)
		if err == nil {
			t.Fatal("connected with an unknown CA")
		}
		t.Log(err)
		host, _, _ := net.SplitHostPort(e.saslSSL)
		for _, want := range []string{"cluster badca", "unknown authority", fmt.Sprintf("server name %q", host), "tls.ca_file"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
		if !IsTLSError(err) {
			t.Errorf("IsTLSError = false")
		}
	})
	t.Run("hostname mismatch", func(t *testing.T) {
		c := parseCluster(t, "badname", fmt.Sprintf(`
			bootstrap_servers: [%q]
			tls: {ca_file: %q, server_name: kafka.wrong.example}
			sasl: {mechanism: scram-sha-512, username: %s, password_file: %q}`, e.saslSSL, e.ca, e.user, e.passwordFile))
		err := ping(t, c)
		if err == nil {
			t.Fatal("connected with a wrong server name")
		}
		t.Log(err)
		for _, want := range []string{"cluster badname", `expected server name "kafka.wrong.example"`, "valid for: localhost", "tls.server_name"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
	})
	t.Run("TLS to a plaintext port", func(t *testing.T) {
		plain := os.Getenv("GODWIT_TEST_PRIMARY")
		if plain == "" {
			t.Skip("GODWIT_TEST_PRIMARY unset")
		}
		c := parseCluster(t, "notls", fmt.Sprintf(`
			bootstrap_servers: [%q]
			tls: {ca_file: %q}`, plain, e.ca))
		err := ping(t, c)
		if err == nil {
			t.Fatal("TLS handshake with a plaintext listener succeeded")
		}
		t.Log(err)
		if !strings.Contains(err.Error(), "cluster notls") || !strings.Contains(err.Error(), "TLS") {
			t.Errorf("unclear error: %v", err)
		}
	})
}

// writeCA writes a fresh self-signed CA (not the brokers') and returns its
// path.
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "some other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
