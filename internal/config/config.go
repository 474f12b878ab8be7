// Package config loads, defaults and validates godwit's YAML configuration.
//
// The YAML shape is a contract: scripts and later features build on it, so
// keys are decoded strictly (an unknown key is an error naming its path and
// line) and every default lives in applyDefaults.
package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Naming modes for target topic names.
const (
	NamingPrefixed  = "prefixed"
	NamingIdentical = "identical"
)

// Delivery guarantees.
const (
	DeliveryExactlyOnce = "exactly-once"
	DeliveryAtLeastOnce = "at-least-once"
)

// Producer compression codecs (a flow's compression), as Kafka's
// compression.type names them.
const (
	CompressionNone   = "none"
	CompressionGzip   = "gzip"
	CompressionSnappy = "snappy"
	CompressionLZ4    = "lz4"
	CompressionZstd   = "zstd"
)

// Start positions (a flow may also use an RFC3339 timestamp).
const (
	StartEarliest = "earliest"
	StartLatest   = "latest"
)

// Config is the whole godwit configuration file.
type Config struct {
	Clusters map[string]*Cluster `yaml:"clusters" json:"clusters"`
	Flows    map[string]*Flow    `yaml:"flows" json:"flows"`
	HTTP     HTTP                `yaml:"http" json:"http"`
	// Cutover is the hook `godwit failover` runs once the target is the
	// new primary, so clients move (DNS, service discovery, config).
	Cutover Cutover `yaml:"cutover" json:"cutover"`
	// Drill is where `godwit drill` keeps its reports, which godwit audit
	// judges and godwit replicate exports as metrics.
	Drill Drill `yaml:"drill" json:"drill"`

	// path is the file the config was read from, for error messages.
	path string
	// raw is the YAML it was parsed from, for commands that derive a
	// config from it (drill, failback): the file may be stdin.
	raw []byte
}

// Cluster is one Kafka cluster, named by its alias (the map key).
type Cluster struct {
	BootstrapServers []string `yaml:"bootstrap_servers" json:"bootstrap_servers"`
	// DialTimeout bounds how long connecting to a broker may take, so an
	// unreachable cluster is reported instead of hanging.
	DialTimeout Duration `yaml:"dial_timeout" json:"dial_timeout"`
	// TLS and SASL secure the connection (see security.go and
	// docs/security.md); absent means plaintext without authentication.
	TLS  *TLS  `yaml:"tls,omitempty" json:"tls,omitempty"`
	SASL *SASL `yaml:"sasl,omitempty" json:"sasl,omitempty"`
	// SchemaRegistry is the cluster's Schema Registry (schemas.go).
	SchemaRegistry *SchemaRegistry `yaml:"schema_registry,omitempty" json:"schema_registry,omitempty"`

	// Dial, when set, opens every TCP connection godwit makes to this
	// cluster's brokers (TLS runs on top of it). It is never read from
	// YAML: a drill sets it on its own copy of the config to route the
	// standby region's clients through a network it can cut
	// (internal/netfault), without touching production clients.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error) `yaml:"-" json:"-"`

	// warnings found by validation (insecure settings), see Warnings.
	warnings []string
}

// Flow replicates from one cluster to another; its name is "A->B".
type Flow struct {
	Enabled            *bool    `yaml:"enabled" json:"enabled"`
	Topics             []string `yaml:"topics" json:"topics"`
	TopicsExclude      []string `yaml:"topics_exclude" json:"topics_exclude"`
	Groups             []string `yaml:"groups" json:"groups"`
	GroupsExclude      []string `yaml:"groups_exclude" json:"groups_exclude"`
	Naming             string   `yaml:"naming" json:"naming"`
	Separator          string   `yaml:"separator" json:"separator"`
	Start              string   `yaml:"start" json:"start"`
	Delivery           string   `yaml:"delivery" json:"delivery"`
	RefreshInterval    Duration `yaml:"refresh_interval" json:"refresh_interval"`
	CheckpointInterval Duration `yaml:"checkpoint_interval" json:"checkpoint_interval"`
	// GroupPositionInterval is how often the checkpoint loop reads the
	// selected groups' committed offsets from the source (one batched
	// OffsetFetch per coordinator) and writes the changed checkpoints, so
	// the target's picture of a group trails its commits by about this
	// much rather than by checkpoint_interval (docs/offsets.md).
	GroupPositionInterval Duration `yaml:"group_position_interval" json:"group_position_interval"`
	// Slots is the number of exactly-once ownership units a flow's
	// partitions are hashed into. Each slot has one transactional producer
	// and is owned by one godwit instance at a time, so it bounds the
	// parallelism of one flow across all instances.
	Slots int `yaml:"slots" json:"slots"`
	// Heartbeats writes a record every HeartbeatInterval to the source's
	// heartbeat topic, which the flow replicates like any other topic.
	Heartbeats        *bool    `yaml:"heartbeats" json:"heartbeats"`
	HeartbeatInterval Duration `yaml:"heartbeat_interval" json:"heartbeat_interval"`
	// CreateTopics lets the replicator create missing target topics and add
	// partitions (metadata sync). When false a missing target topic stops
	// that topic with an error.
	CreateTopics      *bool    `yaml:"create_topics" json:"create_topics"`
	ReplicationFactor int      `yaml:"replication_factor" json:"replication_factor"`
	SyncTopicConfigs  *bool    `yaml:"sync_topic_configs" json:"sync_topic_configs"`
	ConfigsExclude    []string `yaml:"configs_exclude" json:"configs_exclude"`
	SyncACLs          *bool    `yaml:"sync_acls" json:"sync_acls"`
	SyncACLsWrite     *bool    `yaml:"sync_acls_write" json:"sync_acls_write"`
	SyncGroupOffsets  *bool    `yaml:"sync_group_offsets" json:"sync_group_offsets"`
	RPOObjective      Duration `yaml:"rpo_objective" json:"rpo_objective"`
	// MaxBatchBytes bounds how much one transaction (or at-least-once
	// commit unit) carries before it is committed.
	MaxBatchBytes int `yaml:"max_batch_bytes" json:"max_batch_bytes"`
	// CommitInterval is the longest a transaction stays open collecting
	// records before it is committed.
	CommitInterval Duration `yaml:"commit_interval" json:"commit_interval"`
	// MemoryBudget bounds the record bytes this flow's slot workers in one
	// process hold in their Kafka clients: fetched and not yet copied,
	// produced and not yet acknowledged. It is split evenly over the
	// slots the process owns, so it bounds the flow's memory in each
	// process whatever the backlog; smaller budgets mean smaller
	// fetches, which cost throughput over high-latency links.
	MemoryBudget ByteSize `yaml:"memory_budget" json:"memory_budget"`
	// Compression is the codec of the batches godwit writes to the
	// target (MM2: producer.compression.type). none by default: source
	// data is often compressed or incompressible already, and
	// compressing costs godwit's CPU on every batch (docs/benchmarks.md).
	Compression string `yaml:"compression" json:"compression"`
	// MaxBytesPerSecond caps the bytes per second the flow writes to the
	// target brokers, after compression, summed over its instances: each
	// takes the share of the slots it owns (bandwidth.go); 0: no cap.
	MaxBytesPerSecond ByteSize `yaml:"max_bytes_per_second" json:"max_bytes_per_second,omitempty"`
	// Tiers rank the flow's topics by criticality under the cap.
	Tiers []Tier `yaml:"tiers" json:"tiers,omitempty"`
	// Schemas syncs Schema Registry subjects along with the data
	// (schemas.go).
	Schemas *Schemas `yaml:"schemas" json:"schemas"`

	// Resolved fields, filled by Validate.
	Name   string `yaml:"-" json:"name"`
	Source string `yaml:"-" json:"source"`
	Target string `yaml:"-" json:"target"`

	topics, topicsExclude, groups, groupsExclude []*regexp.Regexp
	startTime                                    time.Time
}

// Cutover is the failover hook: Command runs through "sh -c" with
// environment variables naming the new bootstrap servers, the flow and the
// groups (docs/failover.md), bounded by Timeout. Empty Command: no hook.
type Cutover struct {
	Command string   `yaml:"command" json:"command"`
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// Drill locates drill reports. Reports is a directory holding report.json
// files directly or one subdirectory down (one per drill, as `godwit drill`
// writes them); a relative path is relative to the config file's
// directory. Empty Reports: not configured.
type Drill struct {
	Reports string `yaml:"reports" json:"reports"`
	// MaxAge is how old a flow's newest passing drill may be before the
	// audit warns.
	MaxAge Duration `yaml:"max_age" json:"max_age"`
	// RefreshInterval is how often godwit replicate re-reads the reports
	// for its godwit_drill_* metrics.
	RefreshInterval Duration `yaml:"refresh_interval" json:"refresh_interval"`
}

// HTTP is the metrics/health endpoint.
type HTTP struct {
	Listen string `yaml:"listen" json:"listen"`
	// Pprof serves Go's runtime profiles under /debug/pprof/ on Listen,
	// for finding where memory or CPU goes in a running replicator. Off
	// by default: profiles expose internals and a CPU profile costs CPU
	// while it runs.
	Pprof bool `yaml:"pprof" json:"pprof"`
}

// IsEnabled reports whether the flow runs (default true).
func (f *Flow) IsEnabled() bool { return f.Enabled == nil || *f.Enabled }

// HeartbeatsEnabled reports whether heartbeats are written (default true).
func (f *Flow) HeartbeatsEnabled() bool { return f.Heartbeats == nil || *f.Heartbeats }

// CreatesTopics reports whether missing target topics are created.
func (f *Flow) CreatesTopics() bool { return f.CreateTopics == nil || *f.CreateTopics }

// ExactlyOnce reports whether the flow writes transactionally.
func (f *Flow) ExactlyOnce() bool { return f.Delivery == DeliveryExactlyOnce }

// StartTime is the parsed RFC3339 start position, or zero for
// earliest/latest.
func (f *Flow) StartTime() time.Time { return f.startTime }

// TopicSelected reports whether a source topic name passes the flow's
// include and exclude regexes (full match). Built-in exclusions (internal
// topics, cycles) are the naming package's job.
func (f *Flow) TopicSelected(topic string) bool {
	return matchAny(f.topics, topic) && !matchAny(f.topicsExclude, topic)
}

// GroupSelected reports whether a consumer group passes the flow's group
// filters.
func (f *Flow) GroupSelected(group string) bool {
	return matchAny(f.groups, group) && !matchAny(f.groupsExclude, group)
}

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// Path is the file the config was loaded from ("" when built in code).
func (c *Config) Path() string { return c.path }

// Raw is the YAML the config was parsed from (nil when built in code).
func (c *Config) Raw() []byte { return c.raw }

// FlowNames returns the flow names in a stable order.
func (c *Config) FlowNames() []string {
	names := make([]string, 0, len(c.Flows))
	for n := range c.Flows {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SelectFlows returns the named flows, or every enabled flow when names is
// empty.
func (c *Config) SelectFlows(names []string) ([]*Flow, error) {
	if len(names) == 0 {
		var out []*Flow
		for _, n := range c.FlowNames() {
			if f := c.Flows[n]; f.IsEnabled() {
				out = append(out, f)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%s: no enabled flows; add one under flows: (e.g. primary->secondary)", c.display())
		}
		return out, nil
	}
	var out []*Flow
	for _, n := range names {
		f, ok := c.Flows[n]
		if !ok {
			return nil, fmt.Errorf("%s: flow %q is not defined; defined flows: %s%s", c.display(), n, strings.Join(c.FlowNames(), ", "), c.cutFlowHint(n))
		}
		out = append(out, f)
	}
	return out, nil
}

// cutFlowHint explains a flow name that ends in "-": an unquoted
// --flow a->b reaches godwit as "a-", the shell having taken ">b" as a
// redirection (and created a file named b).
func (c *Config) cutFlowHint(n string) string {
	if !strings.HasSuffix(n, "-") {
		return ""
	}
	example := n + ">TARGET"
	for _, name := range c.FlowNames() {
		if strings.HasPrefix(name, n+">") {
			example = name
			break
		}
	}
	return fmt.Sprintf(`; the name looks cut at "-": an unquoted > is a shell redirection (it also created a file named after the target); quote it: --flow '%s'`, example)
}

func (c *Config) display() string {
	if c.path == "" {
		return "config"
	}
	return c.path
}

// ParseFlowName splits "A->B" into its source and target aliases.
func ParseFlowName(name string) (source, target string, err error) {
	src, dst, ok := strings.Cut(name, "->")
	src, dst = strings.TrimSpace(src), strings.TrimSpace(dst)
	if !ok || src == "" || dst == "" || strings.Contains(dst, "->") {
		return "", "", fmt.Errorf("flow name %q must be SOURCE->TARGET, e.g. primary->secondary", name)
	}
	return src, dst, nil
}

// ErrUsage marks errors caused by bad input (exit code 2).
var ErrUsage = errors.New("usage error")

// Error is a config problem located in the file.
type Error struct {
	File string
	Line int // 0 when unknown
	Path string
	Msg  string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Path != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// Unwrap lets callers detect config errors as usage errors.
func (e *Error) Unwrap() error { return ErrUsage }

// Parse decodes config bytes; path is used in error messages only.
func Parse(path string, data []byte) (*Config, error) {
	c, f, err := decode(path, data)
	if err != nil {
		return nil, err
	}
	c.path = path
	c.raw = data
	c.applyDefaults()
	if err := c.validate(newLocator(path, f)); err != nil {
		return nil, err
	}
	return c, nil
}
