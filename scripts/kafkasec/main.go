// Command kafkasec prepares the secure listeners of the test clusters
// started by scripts/kafka.sh (test material, not for production):
//
//	go run ./scripts/kafkasec certs DIR
//	    writes a test CA, a broker certificate for 127.0.0.1/localhost and a
//	    client certificate (mutual TLS) into DIR, plus broker-ssl.properties
//	    with the PEM key store inline; existing files are kept.
//	go run ./scripts/kafkasec scram ADDR USER PASSWORD_FILE
//	    creates or updates USER's SCRAM-SHA-512 and SCRAM-SHA-256
//	    credentials through the admin API of the broker at ADDR.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "certs":
		if len(os.Args) != 3 {
			usage()
		}
		err = certs(os.Args[2])
	case "scram":
		if len(os.Args) != 5 {
			usage()
		}
		err = scramUser(os.Args[2], os.Args[3], os.Args[4])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kafkasec:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kafkasec certs DIR | kafkasec scram ADDR USER PASSWORD_FILE")
	os.Exit(2)
}

type keyPair struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

func newCert(tmpl *x509.Certificate, parent *keyPair) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().AddDate(5, 0, 0)
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, der: der, key: key}, nil
}

func (k *keyPair) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.der})
}

func (k *keyPair) keyPEM() ([]byte, error) {
	b, err := x509.MarshalPKCS8PrivateKey(k.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b}), nil
}

// certs writes ca.pem, broker.pem, broker.key, client.pem, client.key and
// broker-ssl.properties into dir, unless ca.pem already exists.
func certs(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "broker-ssl.properties")); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := newCert(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "godwit test CA", Organization: []string{"godwit tests"}},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil)
	if err != nil {
		return err
	}
	broker, err := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost", Organization: []string{"godwit tests"}},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, ca)
	if err != nil {
		return err
	}
	client, err := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "godwit-client", Organization: []string{"godwit tests"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca)
	if err != nil {
		return err
	}
	brokerKey, err := broker.keyPEM()
	if err != nil {
		return err
	}
	clientKey, err := client.keyPEM()
	if err != nil {
		return err
	}
	// The chain is the broker's certificate alone: Kafka's inline PEM
	// key store reads one certificate per value reliably, and clients
	// hold the CA anyway.
	chain := broker.certPEM()
	files := []struct {
		name string
		data []byte
	}{
		{"ca.pem", ca.certPEM()},
		{"broker.pem", chain},
		{"broker.key", brokerKey},
		{"client.pem", client.certPEM()},
		{"client.key", clientKey},
		// Kafka reads PEM key stores inline (ssl.keystore.type=PEM) with an
		// unencrypted PKCS#8 key; a properties value continues over lines
		// ending in a backslash.
		{"broker-ssl.properties", []byte(strings.Join([]string{
			"ssl.keystore.type=PEM",
			"ssl.keystore.certificate.chain=" + inline(chain),
			"ssl.keystore.key=" + inline(brokerKey),
			"ssl.truststore.type=PEM",
			"ssl.truststore.certificates=" + inline(ca.certPEM()),
			"",
		}, "\n"))},
	}
	for _, f := range files {
		// broker-ssl.properties last: its presence marks a complete set.
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func inline(pemData []byte) string {
	lines := strings.Split(strings.TrimSpace(string(pemData)), "\n")
	return strings.Join(lines, " \\\n  ")
}

func scramUser(addr, user, passwordFile string) error {
	b, err := os.ReadFile(passwordFile)
	if err != nil {
		return err
	}
	password := strings.TrimRight(string(b), "\r\n")
	if password == "" {
		return errors.New("empty password file")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	// One mechanism per request: a request may alter a user only once.
	for _, mech := range []kadm.ScramMechanism{kadm.ScramSha512, kadm.ScramSha256} {
		var lastErr error
		for ctx.Err() == nil {
			var res kadm.AlteredUserSCRAMs
			res, lastErr = adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
				{User: user, Mechanism: mech, Iterations: 4096, Password: password},
			})
			if lastErr == nil {
				res.EachError(func(a kadm.AlteredUserSCRAM) { lastErr = fmt.Errorf("%v %s", a.Err, a.ErrMessage) })
			}
			if lastErr == nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if lastErr != nil {
			return fmt.Errorf("creating %v credentials for %s on %s: %v", mech, user, addr, lastErr)
		}
	}
	return nil
}
