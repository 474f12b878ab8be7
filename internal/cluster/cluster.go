// Package cluster builds franz-go clients for the clusters named in the
// config, so every component connects the same way (addresses, timeouts,
// and later TLS and SASL) and errors name the cluster alias.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
}

// New returns the cluster named alias from cfg.
func New(cfg *config.Config, alias string) (*Cluster, error) {
	c, ok := cfg.Clusters[alias]
	if !ok {
		return nil, fmt.Errorf("cluster %q is not defined in the config", alias)
	}
	return &Cluster{Alias: alias, Config: c}, nil
}

// String names the cluster and its addresses, for errors.
func (c *Cluster) String() string {
	return fmt.Sprintf("cluster %s (%s)", c.Alias, strings.Join(c.Config.BootstrapServers, ","))
}

// Opts returns the connection options for this cluster. role names the
// client's job and becomes part of its client id, so broker-side logs and
// quotas can tell godwit's clients apart.
func (c *Cluster) Opts(role string, logger *slog.Logger) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Config.BootstrapServers...),
		kgo.DialTimeout(c.Config.DialTimeout.D()),
		kgo.ClientID("godwit-" + role),
	}
	if logger != nil {
		opts = append(opts, kgo.WithLogger(kgoLogger{logger.With("cluster", c.Alias, "client", role)}))
	}
	return opts
}

// Client returns a new client for this cluster.
func (c *Cluster) Client(role string, logger *slog.Logger, extra ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append(c.Opts(role, logger), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c, err)
	}
	return cl, nil
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
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: unreachable (no answer in time): check the addresses, that the brokers run, and network/firewall: %w", c, err)
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState), errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Errorf("%s: authentication failed: check the cluster's sasl settings and credentials: %w", c, err)
	case errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed):
		return fmt.Errorf("%s: not authorized: grant godwit's principal the ACLs listed in docs/security.md: %w", c, err)
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "unable to dial") {
		return fmt.Errorf("%s: unreachable: check the addresses and that the brokers run: %w", c, err)
	}
	return fmt.Errorf("%s: %w", c, err)
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
