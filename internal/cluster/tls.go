package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// TLSError is a failed TLS handshake with one broker: the address dialed
// and the server name its certificate had to carry.
type TLSError struct {
	Addr       string
	ServerName string
	Err        error
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("TLS handshake with %s (expected server name %q): %v", e.Addr, e.ServerName, e.Err)
}

func (e *TLSError) Unwrap() error { return e.Err }

// tlsConfig builds the cluster's TLS client config, or nil without TLS.
func (c *Cluster) tlsConfig() (*tls.Config, error) {
	t := c.Config.TLS
	if !t.IsEnabled() {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, warned about at start
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		// Errors name the files only: tls.LoadX509KeyPair never quotes
		// key material.
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file %s / key_file %s: %v", t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// tlsDialer dials a broker and completes the TLS handshake within the
// cluster's dial timeout. Handshake failures become *TLSError naming the
// address and expected server name; they are not retried by franz-go (a
// certificate does not fix itself), while TCP dial errors stay net errors
// so a restarting broker is retried as usual.
func tlsDialer(cfg *tls.Config, timeout time.Duration, dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cc := cfg.Clone()
		if cc.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				host = addr
			}
			cc.ServerName = host
		}
		conn := tls.Client(raw, cc)
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			if isTLSProblem(err) {
				return nil, &TLSError{Addr: addr, ServerName: cc.ServerName, Err: err}
			}
			return nil, err
		}
		return conn, nil
	}
}

// isTLSProblem tells a configuration/certificate failure from a network
// failure during the handshake.
func isTLSProblem(err error) bool {
	var (
		cve *tls.CertificateVerificationError
		rhe tls.RecordHeaderError
		ae  tls.AlertError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
	)
	if errors.As(err, &cve) || errors.As(err, &rhe) || errors.As(err, &ae) ||
		errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) {
		return true
	}
	return strings.HasPrefix(err.Error(), "tls: ") || strings.Contains(err.Error(), "remote error: tls: ")
}

// explainTLS turns a TLS error into a message naming the cluster, the
// expected server name and what to change; ok is false for other errors.
func explainTLS(c *Cluster, err error) (error, bool) {
	var te *TLSError
	if !errors.As(err, &te) {
		// With TLS 1.3 a broker that rejects godwit's client certificate
		// says so after the handshake, in an alert on the first read.
		// (crypto/tls reports a received alert as a *net.OpError "remote
		// error: tls: ...", its alert type is unexported.)
		var ae tls.AlertError
		if errors.As(err, &ae) || strings.Contains(err.Error(), "remote error: tls: ") {
			return fmt.Errorf("%s: TLS: the broker refused the connection: if it requires mutual TLS, set tls.cert_file and tls.key_file to a client certificate its CA trusts: %w", c, err), true
		}
		return nil, false
	}
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		rhe tls.RecordHeaderError
		ae  tls.AlertError
	)
	name := te.ServerName
	switch {
	case errors.As(err, &he):
		valid := "no names"
		if he.Certificate != nil {
			var names []string
			names = append(names, he.Certificate.DNSNames...)
			for _, ip := range he.Certificate.IPAddresses {
				names = append(names, ip.String())
			}
			if len(names) > 0 {
				valid = strings.Join(names, ", ")
			}
		}
		return fmt.Errorf("%s: TLS: the certificate of broker %s is not valid for the expected server name %q (it is valid for: %s): connect by a name in the certificate or set tls.server_name: %w", c, te.Addr, name, valid, err), true
	case errors.As(err, &ua):
		issuer := ""
		if ua.Cert != nil {
			issuer = fmt.Sprintf(" (issuer %q)", ua.Cert.Issuer.String())
		}
		return fmt.Errorf("%s: TLS: the certificate of broker %s for server name %q is signed by an unknown authority%s: set tls.ca_file to the CA bundle that signed the brokers' certificates: %w", c, te.Addr, name, issuer, err), true
	case errors.As(err, &ci):
		return fmt.Errorf("%s: TLS: the certificate of broker %s for server name %q is not usable (expired, not yet valid or not for server use): renew it or check the clock: %w", c, te.Addr, name, err), true
	case errors.As(err, &rhe):
		return fmt.Errorf("%s: TLS: broker %s does not speak TLS on this port: use the cluster's TLS listener or turn tls off: %w", c, te.Addr, err), true
	case errors.As(err, &ae), strings.Contains(err.Error(), "remote error: tls: "):
		return fmt.Errorf("%s: TLS: broker %s (server name %q) refused the handshake: if it requires mutual TLS, set tls.cert_file and tls.key_file to a client certificate its CA trusts: %w", c, te.Addr, name, err), true
	}
	return fmt.Errorf("%s: TLS: handshake with broker %s (server name %q) failed: check the cluster's tls settings: %w", c, te.Addr, name, err), true
}
