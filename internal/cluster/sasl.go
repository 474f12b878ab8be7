package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	kaws "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/godwit/godwit/internal/config"
)

// Credentials refresh this long before they expire (aws_msk_iam), so a
// connection never signs with credentials about to lapse.
const iamExpiryWindow = 5 * time.Minute

// mechanism returns the cluster's SASL mechanism, or nil without SASL.
// Passwords are resolved at every authentication (a rotated password_file
// is picked up) and never stored outside the config.
func (c *Cluster) mechanism() (sasl.Mechanism, error) {
	s := c.Config.SASL
	if s == nil {
		return nil, nil
	}
	password := func() (string, error) {
		pw, err := s.ResolvePassword()
		if err != nil {
			return "", fmt.Errorf("%s: %w", c, err)
		}
		return pw, nil
	}
	switch s.Mechanism {
	case config.MechanismPlain:
		return plain.Plain(func(context.Context) (plain.Auth, error) {
			pw, err := password()
			return plain.Auth{User: s.Username, Pass: pw}, err
		}), nil
	case config.MechanismScramSHA256, config.MechanismScramSHA512:
		fn := func(context.Context) (scram.Auth, error) {
			pw, err := password()
			return scram.Auth{User: s.Username, Pass: pw}, err
		}
		if s.Mechanism == config.MechanismScramSHA256 {
			return scram.Sha256(fn), nil
		}
		return scram.Sha512(fn), nil
	case config.MechanismAWSMSKIAM:
		p := iamProviderFor(c)
		return kaws.ManagedStreamingIAM(func(ctx context.Context) (kaws.Auth, error) {
			creds, err := p.retrieve(ctx)
			if err != nil {
				return kaws.Auth{}, fmt.Errorf("%s: aws_msk_iam: getting AWS credentials: %w", c, err)
			}
			return kaws.Auth{
				AccessKey:    creds.AccessKeyID,
				SecretKey:    creds.SecretAccessKey,
				SessionToken: creds.SessionToken,
				UserAgent:    "godwit",
			}, nil
		}), nil
	}
	return nil, fmt.Errorf("%s: unsupported sasl mechanism %q", c, s.Mechanism)
}

// iamProvider resolves AWS credentials for one cluster: the SDK's default
// chain (environment, shared config/profile, web identity, instance role),
// optionally assuming role_arn, cached and refreshed iamExpiryWindow
// before expiry. One provider serves every client of the cluster.
type iamProvider struct {
	alias   string
	region  string
	roleARN string
	// load builds the base AWS config (tests replace it).
	load func(ctx context.Context, opts ...func(*awsconfig.LoadOptions) error) (aws.Config, error)

	mu    sync.Mutex
	creds aws.CredentialsProvider
}

var iamProviders sync.Map // key -> *iamProvider

func iamProviderFor(c *Cluster) *iamProvider {
	s := c.Config.SASL
	key := strings.Join([]string{c.Alias, s.Region, s.RoleARN}, "\x00")
	p, _ := iamProviders.LoadOrStore(key, &iamProvider{alias: c.Alias, region: s.Region, roleARN: s.RoleARN, load: awsconfig.LoadDefaultConfig})
	return p.(*iamProvider)
}

func (p *iamProvider) retrieve(ctx context.Context) (aws.Credentials, error) {
	p.mu.Lock()
	if p.creds == nil {
		// Loading reads files and the environment only; a failure is
		// retried at the next authentication.
		opts := []func(*awsconfig.LoadOptions) error{
			awsconfig.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) {
				o.ExpiryWindow = iamExpiryWindow
				o.ExpiryWindowJitterFrac = 0.2
			}),
		}
		if p.region != "" {
			opts = append(opts, awsconfig.WithRegion(p.region))
		}
		cfg, err := p.load(ctx, opts...)
		if err != nil {
			p.mu.Unlock()
			return aws.Credentials{}, fmt.Errorf("loading the AWS configuration: %w", err)
		}
		p.creds = cfg.Credentials
		if p.roleARN != "" {
			ar := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), p.roleARN, func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = sessionName(p.alias)
			})
			p.creds = aws.NewCredentialsCache(ar, func(o *aws.CredentialsCacheOptions) {
				o.ExpiryWindow = iamExpiryWindow
				o.ExpiryWindowJitterFrac = 0.2
			})
		}
		if p.creds == nil {
			p.mu.Unlock()
			return aws.Credentials{}, errors.New("no AWS credentials found (environment, shared config/profile, web identity or instance role)")
		}
	}
	creds := p.creds
	p.mu.Unlock()
	return creds.Retrieve(ctx)
}

// sessionName is the STS role session name, visible in CloudTrail.
func sessionName(alias string) string {
	var b strings.Builder
	b.WriteString("godwit-")
	for _, r := range alias {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("=,.@-_", r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// ---- authentication guard

// Authentication failures are not retryable in franz-go (a request fails
// at once with SASL_AUTHENTICATION_FAILED), but each of godwit's many
// clients (admin, group member, one producer and consumer per slot) keeps
// reconnecting on its own: metadata refreshes, group rejoins, the flow's
// setup retries. Against a wrong password that is a storm of failed
// logins, which can lock an account or flood broker logs. The guard
// shares one verdict per cluster and credential: after a failure, further
// authentications fail locally, without contacting the broker, until a
// backoff (2s doubling to authBackoffMax) passes; then one connection
// tries again. A success clears it.

const (
	authBackoffMin = 2 * time.Second
	authBackoffMax = 60 * time.Second
)

// AuthBackoffError is returned instead of authenticating while a recent
// authentication failure of the same cluster and credentials backs off.
// It wraps the broker's failure (kerr.SaslAuthenticationFailed).
type AuthBackoffError struct {
	Until time.Time
	Last  error
}

func (e *AuthBackoffError) Error() string {
	return fmt.Sprintf("not authenticating again until %s after a failed authentication: %v", e.Until.Format(time.RFC3339), e.Last)
}

func (e *AuthBackoffError) Unwrap() error { return e.Last }

type authGuard struct {
	mu       sync.Mutex
	failures int
	until    time.Time
	probing  bool // a post-backoff attempt is in flight
	last     error
	attempts int // authentications that reached the broker (tests)
	now      func() time.Time
}

var authGuards sync.Map // key -> *authGuard

// guardFor returns the guard for c's cluster and credentials: the same
// guard for every client built from equal settings in this process.
func guardFor(c *Cluster) *authGuard {
	s := c.Config.SASL
	h := sha256.New()
	for _, v := range []string{c.Alias, strings.Join(c.Config.BootstrapServers, ","), s.Mechanism, s.Username, s.Password, s.PasswordEnv, s.PasswordFile, s.Region, s.RoleARN} {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	key := hex.EncodeToString(h.Sum(nil))
	g, _ := authGuards.LoadOrStore(key, &authGuard{now: time.Now})
	return g.(*authGuard)
}

// admit reports whether an authentication may go to the broker.
func (g *authGuard) admit() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failures > 0 {
		if g.now().Before(g.until) || g.probing {
			return &AuthBackoffError{Until: g.until, Last: g.last}
		}
		g.probing = true
	}
	g.attempts++
	return nil
}

func (g *authGuard) result(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var be *AuthBackoffError
	switch {
	case errors.As(err, &be):
		return // our own refusal, not a verdict
	case err == nil:
		g.failures, g.probing, g.last = 0, false, nil
	case isAuthFailure(err):
		g.failures++
		g.probing = false
		d := authBackoffMin << min(g.failures-1, 10)
		g.until = g.now().Add(min(d, authBackoffMax))
		g.last = err
	default:
		// A network problem says nothing about the credentials; let
		// the next connection try.
		g.probing = false
	}
}

func isAuthFailure(err error) bool {
	return errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) || errors.Is(err, kerr.UnsupportedSaslMechanism)
}

// guardedMechanism asks the guard before each authentication.
type guardedMechanism struct {
	sasl.Mechanism
	g *authGuard
}

func (m guardedMechanism) Authenticate(ctx context.Context, host string) (sasl.Session, []byte, error) {
	if err := m.g.admit(); err != nil {
		return nil, nil, err
	}
	return m.Mechanism.Authenticate(ctx, host)
}

// guardHook reports each connection's outcome (SASL included) to the guard.
type guardHook struct{ g *authGuard }

var _ kgo.HookBrokerConnect = guardHook{}

func (h guardHook) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.g.result(err)
}
