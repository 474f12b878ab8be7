// Package sandbox runs named, independent in-process Kafka clusters (kfake)
// for trying godwit out, for tests and for drills.
//
// Each cluster has its own listeners, cluster ID and storage. Clusters keep
// their data on disk (in Options.DataDir, or in a temporary directory removed
// by Close), so StopCluster and RestartCluster behave like a broker going
// down and coming back on the same ports with the same data.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
)

// Default cluster names, in flow order (the first replicates to the second).
const (
	Primary   = "primary"
	Secondary = "secondary"
)

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// DefaultReadyTimeout bounds how long Start and RestartCluster wait for a
// cluster to answer metadata when the context has no earlier deadline.
const DefaultReadyTimeout = 15 * time.Second

// BrokerConfigs are the broker-level configs every sandbox cluster starts
// with. Transactions work out of the box in kfake; these pin the limits a
// replicator depends on to Kafka's defaults so behaviour matches a real
// cluster.
var BrokerConfigs = map[string]string{
	// Upper bound for a producer's transaction.timeout.ms (Kafka: 15 min).
	// franz-go's default TransactionTimeout (40s) is well below it.
	"transaction.max.timeout.ms": "900000",
	// Transactional IDs expire after 7 days of inactivity, as in Kafka.
	"transactional.id.expiration.ms": "604800000",
	// Single-broker clusters: one replica, and acks=all needs only it.
	"default.replication.factor": "1",
	"min.insync.replicas":        "1",
}

// Options configures Start. The zero value starts "primary" and "secondary"
// on free ports with one broker each and temporary storage.
type Options struct {
	// Names of the clusters to start; default [primary secondary]. The
	// first replicates to the second in WriteConfig.
	Names []string
	// Ports maps a cluster name to its first broker's port; further
	// brokers use the following ports. Missing or 0 picks free ports.
	Ports map[string]int
	// DataDir, if set, persists each cluster in DataDir/<name>: a later
	// Start with the same DataDir finds the same topics, records, groups,
	// offsets and cluster ID. If empty, a temporary directory is used and
	// removed by Close.
	DataDir string
	// Brokers per cluster; default 1.
	Brokers int
	// HTTPListen is the http.listen address WriteConfig writes; default
	// config.DefaultHTTPListen.
	HTTPListen string
	// Logger receives the clusters' logs (kfake's info level is mapped to
	// debug, it logs per request). Nil discards them.
	Logger *slog.Logger
}

// Cluster is one running (or stopped) sandbox cluster. Addrs and ID do not
// change across StopCluster/RestartCluster.
type Cluster struct {
	Name  string
	Addrs []string // host:port of each broker
	ID    string   // Kafka cluster ID, as reported by metadata

	dir   string
	ports []int

	mu   sync.Mutex
	fake *kfake.Cluster // nil while stopped
}

// Fake returns the underlying kfake cluster, or nil while the cluster is
// stopped. It changes on RestartCluster.
func (c *Cluster) Fake() *kfake.Cluster {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fake
}

// Running reports whether the cluster is started.
func (c *Cluster) Running() bool { return c.Fake() != nil }

// Sandbox is a set of running clusters. Cluster, Clusters and Fake are safe
// for concurrent use; StopCluster, RestartCluster and Close are meant to be
// called from one goroutine (a test or a drill driving the sandbox).
type Sandbox struct {
	opts     Options
	clusters []*Cluster
	tmpDir   string // removed on Close when DataDir was empty

	closeOnce sync.Once
	closeErr  error
}

// Start starts every cluster and waits until each answers a metadata
// request. On error, clusters already started are closed.
func Start(ctx context.Context, opts Options) (*Sandbox, error) {
	if len(opts.Names) == 0 {
		opts.Names = []string{Primary, Secondary}
	}
	if opts.Brokers <= 0 {
		opts.Brokers = 1
	}
	if opts.HTTPListen == "" {
		opts.HTTPListen = config.DefaultHTTPListen
	}
	seen := map[string]bool{}
	for _, n := range opts.Names {
		if !validName.MatchString(n) || seen[n] {
			return nil, fmt.Errorf("sandbox: cluster name %q is repeated or not of letters, digits, '_' and '-'", n)
		}
		seen[n] = true
	}
	for n, p := range opts.Ports {
		if !seen[n] {
			return nil, fmt.Errorf("sandbox: port given for unknown cluster %q (clusters: %v)", n, opts.Names)
		}
		if p < 0 || p+opts.Brokers-1 > 65535 {
			return nil, fmt.Errorf("sandbox: cluster %q: port %d out of range", n, p)
		}
	}

	s := &Sandbox{opts: opts}
	root := opts.DataDir
	if root == "" {
		d, err := os.MkdirTemp("", "godwit-sandbox-")
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		s.tmpDir, root = d, d
	}
	for _, name := range opts.Names {
		c := &Cluster{Name: name, dir: filepath.Join(root, name)}
		if p := opts.Ports[name]; p > 0 {
			for i := range opts.Brokers {
				c.ports = append(c.ports, p+i)
			}
		}
		s.clusters = append(s.clusters, c)
		if err := s.start(ctx, c); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

// start starts c's kfake cluster (on c.ports, or free ports the first time)
// and waits for it to answer metadata.
func (s *Sandbox) start(ctx context.Context, c *Cluster) error {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("sandbox: cluster %s: %w", c.Name, err)
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(s.opts.Brokers),
		kfake.DataDir(c.dir),
		kfake.BrokerConfigs(BrokerConfigs),
		// Like Kafka's num.partitions (kfake's default is 10) for
		// CreateTopics with -1 partitions.
		kfake.DefaultNumPartitions(1),
		// Ignored when c.dir holds a persisted cluster: its ID wins.
		kfake.ClusterID(newClusterID()),
	}
	if len(c.ports) > 0 {
		kopts = append(kopts, kfake.Ports(c.ports...))
	}
	if s.opts.Logger != nil {
		kopts = append(kopts, kfake.WithLogger(slogAdapter{s.opts.Logger.With("cluster", c.Name)}))
	}
	fake, err := kfake.NewCluster(kopts...)
	if err != nil {
		return fmt.Errorf("sandbox: starting cluster %s (ports %v): %w", c.Name, c.ports, err)
	}
	addrs := fake.ListenAddrs()
	id, err := waitReady(ctx, addrs)
	if err != nil {
		fake.Close()
		return fmt.Errorf("sandbox: cluster %s at %v: %w", c.Name, addrs, err)
	}
	ports := make([]int, 0, len(addrs))
	for _, a := range addrs {
		p, err := portOf(a)
		if err != nil {
			fake.Close()
			return fmt.Errorf("sandbox: cluster %s: %w", c.Name, err)
		}
		ports = append(ports, p)
	}
	if c.Addrs != nil { // a restart: same ports and data, so same addresses and ID
		if !slices.Equal(addrs, c.Addrs) || id != c.ID {
			fake.Close()
			return fmt.Errorf("sandbox: cluster %s restarted as %s at %v, was %s at %v", c.Name, id, addrs, c.ID, c.Addrs)
		}
	} else {
		c.Addrs, c.ID, c.ports = addrs, id, ports
	}
	c.mu.Lock()
	c.fake = fake
	c.mu.Unlock()
	return nil
}

// waitReady polls metadata until the cluster answers with a cluster ID, or
// the context (or DefaultReadyTimeout) expires.
func waitReady(ctx context.Context, addrs []string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultReadyTimeout)
		defer cancel()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DialTimeout(time.Second))
	if err != nil {
		return "", err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for {
		md, err := adm.BrokerMetadata(ctx)
		if err == nil && md.Cluster != "" && len(md.Brokers) == len(addrs) {
			return md.Cluster, nil
		}
		if err == nil {
			err = fmt.Errorf("metadata lists %d of %d brokers", len(md.Brokers), len(addrs))
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("not answering metadata: %w (last error: %v)", ctx.Err(), err)
		case <-retry.C:
		}
	}
}

// Cluster returns the named cluster, or nil.
func (s *Sandbox) Cluster(name string) *Cluster {
	for _, c := range s.clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Clusters returns the clusters in Options.Names order.
func (s *Sandbox) Clusters() []*Cluster { return slices.Clone(s.clusters) }

// StopCluster shuts the named cluster down as a crashed-then-stopped broker
// would look from outside: its listeners close and open connections drop.
// Its state is saved so RestartCluster brings it back. Stopping a stopped
// cluster is a no-op.
func (s *Sandbox) StopCluster(name string) error {
	c := s.Cluster(name)
	if c == nil {
		return fmt.Errorf("sandbox: no cluster %q", name)
	}
	c.mu.Lock()
	fake := c.fake
	c.fake = nil
	c.mu.Unlock()
	if fake != nil {
		fake.Close()
	}
	return nil
}

// RestartCluster starts a stopped cluster again on the same ports with the
// same data and cluster ID, and waits until it answers metadata. It fails if
// another process took one of its ports meanwhile. Restarting a running
// cluster is a no-op.
func (s *Sandbox) RestartCluster(ctx context.Context, name string) error {
	c := s.Cluster(name)
	if c == nil {
		return fmt.Errorf("sandbox: no cluster %q", name)
	}
	if c.Running() {
		return nil
	}
	return s.start(ctx, c)
}

// Close stops every cluster (saving its state when Options.DataDir is set)
// and removes the temporary directory. It is safe to call more than once.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for _, c := range s.clusters {
			errs = append(errs, s.StopCluster(c.Name))
		}
		if s.tmpDir != "" {
			errs = append(errs, os.RemoveAll(s.tmpDir))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// newClusterID returns a random ID shaped like Kafka's (a base64url UUID).
func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func portOf(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// slogAdapter sends kfake's logs to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Logf(level kfake.LogLevel, format string, args ...any) {
	var lvl slog.Level
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	case kfake.LogLevelInfo:
		lvl = slog.LevelDebug // kfake logs per request at info
	case kfake.LogLevelDebug:
		lvl = slog.LevelDebug - 4
	default:
		return
	}
	ctx := context.Background()
	if !a.l.Enabled(ctx, lvl) {
		return
	}
	a.l.Log(ctx, lvl, fmt.Sprintf(format, args...))
}
