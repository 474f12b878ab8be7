// Package cluster builds franz-go clients for the clusters named in the
// config, so every component connects the same way (addresses, timeouts,
// and later TLS and SASL) and errors name the cluster alias.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
)

// Cluster is a configured cluster with its alias.
type Cluster struct {
	Alias  string
	Config *config.Cluster

	// NewHooks, if set, gives each new client of this cluster its hooks
	// (e.g. franz-go's Prometheus plugin, which keeps per-client state,
	// labelled with the cluster alias).
	NewHooks func() []kgo.Hook

	// warnings are the config's warnings for this cluster, logged once
	// per process by the first client built with a logger.
	warnings []string
}

// New returns the cluster named alias from cfg.
func New(cfg *config.Config, alias string) (*Cluster, error) {
	c, ok := cfg.Clusters[alias]
	if !ok {
		return nil, fmt.Errorf("cluster %q is not defined in the config", alias)
	}
	return &Cluster{Alias: alias, Config: c, warnings: cfg.Warnings(alias)}, nil
}

// String names the cluster and its addresses, for errors.
func (c *Cluster) String() string {
	return fmt.Sprintf("cluster %s (%s)", c.Alias, strings.Join(c.Config.BootstrapServers, ","))
}

// Opts returns the connection options for this cluster. role names the
// client's job and becomes part of its client id, so broker-side logs and
// quotas can tell godwit's clients apart. If the cluster's TLS or SASL
// settings cannot be loaded (a CA file gone since the config was checked),
// the options make every connection fail with that error; Client reports
// it up front.
func (c *Cluster) Opts(role string, logger *slog.Logger) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Config.BootstrapServers...),
		kgo.DialTimeout(c.Config.DialTimeout.D()),
		kgo.ClientID("godwit-" + role),
	}
	if logger != nil {
		opts = append(opts, kgo.WithLogger(kgoLogger{logger.With("cluster", c.Alias, "client", role)}))
		c.logWarnings(logger)
	}
	if c.NewHooks != nil {
		opts = append(opts, kgo.WithHooks(c.NewHooks()...))
	}
	sec, err := c.SecurityOpts()
	if err != nil {
		opts = append(opts, kgo.Dialer(func(context.Context, string, string) (net.Conn, error) { return nil, err }))
		return opts
	}
	return append(opts, sec...)
}

// SecurityOpts returns the TLS dialer and SASL options for the cluster
// (none for a plaintext cluster without sasl).
func (c *Cluster) SecurityOpts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	tcfg, err := c.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c, err)
	}
	if tcfg != nil {
		opts = append(opts, kgo.Dialer(tlsDialer(tcfg, c.Config.DialTimeout.D(), c.rawDial())))
	} else if c.Config.Dial != nil {
		opts = append(opts, kgo.Dialer(withTimeout(c.Config.Dial, c.Config.DialTimeout.D())))
	}
	mech, err := c.mechanism()
	if err != nil {
		return nil, err
	}
	if mech != nil {
		g := guardFor(c)
		opts = append(opts, kgo.SASL(guardedMechanism{mech, g}), kgo.WithHooks(guardHook{g}))
	}
	return opts, nil
}

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// rawDial opens the TCP connection under TLS: the config's Dial hook when
// set, else a plain dialer.
func (c *Cluster) rawDial() dialFunc {
	if c.Config.Dial != nil {
		return c.Config.Dial
	}
	return (&net.Dialer{}).DialContext
}

// withTimeout bounds a custom dial by the cluster's dial_timeout, which
// franz-go applies only to its own default dialer.
func withTimeout(dial dialFunc, timeout time.Duration) dialFunc {
	if timeout <= 0 {
		return dial
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return dial(ctx, network, addr)
	}
}

// Client returns a new client for this cluster.
func (c *Cluster) Client(role string, logger *slog.Logger, extra ...kgo.Opt) (*kgo.Client, error) {
	if _, err := c.SecurityOpts(); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(c.Opts(role, logger), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c, err)
	}
	return cl, nil
}

var warned sync.Map // alias + warning -> struct{}

// logWarnings logs the cluster's config warnings (insecure settings) once
// per process.
func (c *Cluster) logWarnings(logger *slog.Logger) {
	for _, w := range c.warnings {
		if _, dup := warned.LoadOrStore(c.Alias+"\x00"+w, struct{}{}); !dup {
			logger.Warn("INSECURE OR INEFFECTIVE SETTING: "+w, "cluster", c.Alias)
		}
	}
}

// Ping checks that the cluster answers metadata within timeout and returns
// its cluster id; the error names the alias and the addresses tried.
func (c *Cluster) Ping(ctx context.Context, timeout time.Duration) (string, error) {
	cl, err := c.Client("ping", nil, kgo.RetryTimeout(timeout))
	if err != nil {
		return "", err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return "", Explain(c, err)
	}
	return md.Cluster, nil
}

// Explain wraps err with the cluster's identity and a hint for the common
// causes, so a user knows which cluster failed and what to check.
func Explain(c *Cluster, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := explainTLS(c, err); ok {
		return e
	}
	var backoff *AuthBackoffError
	var firstEOF *kgo.ErrFirstReadEOF
	switch {
	case errors.As(err, &backoff):
		return fmt.Errorf("%s: authentication failed%s (not retrying before %s to avoid a storm of failed logins): check the cluster's sasl settings and credentials: %w", c, c.who(), backoff.Until.Format(time.TimeOnly), err)
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("%s: authentication failed%s: check the cluster's sasl settings and credentials: %w", c, c.who(), err)
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Errorf("%s: the brokers do not offer sasl mechanism %q on this listener: check sasl.mechanism and the listener's port: %w", c, c.mechanismName(), err)
	case errors.As(err, &firstEOF):
		return fmt.Errorf("%s: the broker closed the connection at once: the listener probably requires TLS or SASL that this cluster's config lacks (or the reverse): check tls and sasl: %w", c, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: unreachable (no answer in time): check the addresses, that the brokers run, and network/firewall: %w", c, err)
	case errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed):
		return fmt.Errorf("%s: not authorized: grant godwit's principal the ACLs listed in docs/security.md: %w", c, err)
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "unable to dial") {
		return fmt.Errorf("%s: unreachable: check the addresses and that the brokers run: %w", c, err)
	}
	return fmt.Errorf("%s: %w", c, err)
}

// who names the sasl identity for auth errors (never the secret).
func (c *Cluster) who() string {
	s := c.Config.SASL
	switch {
	case s == nil:
		return " (no sasl configured)"
	case s.Username != "":
		return fmt.Sprintf(" (sasl %s as user %q)", s.Mechanism, s.Username)
	}
	return fmt.Sprintf(" (sasl %s)", s.Mechanism)
}

func (c *Cluster) mechanismName() string {
	if c.Config.SASL == nil {
		return ""
	}
	return c.Config.SASL.Mechanism
}

// IsAuthError reports whether err is an authentication failure (or the
// backoff after one): retrying soon will not help, the credentials must
// change.
func IsAuthError(err error) bool {
	return isAuthFailure(err)
}

// IsTLSError reports whether err is a TLS handshake failure (certificate,
// server name, protocol); retrying will not help until the config or the
// certificates change.
func IsTLSError(err error) bool {
	var te *TLSError
	return errors.As(err, &te)
}

type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case k.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelDebug
	case k.l.Enabled(ctx, slog.LevelInfo):
		// franz-go's info level is chatty about normal operation;
		// warnings and errors are what an operator needs.
		return kgo.LogLevelWarn
	default:
		return kgo.LogLevelError
	}
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var l slog.Level
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelInfo:
		l = slog.LevelInfo
	default:
		l = slog.LevelDebug
	}
	k.l.Log(context.Background(), l, msg, keyvals...)
}
