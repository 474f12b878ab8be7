package config

import (
	"path/filepath"
	"time"
)

// Defaults, all in one place. MM2's equivalents are noted where ours differ
// on purpose.
const (
	DefaultNaming             = NamingPrefixed
	DefaultSeparator          = "."
	DefaultStart              = StartEarliest
	DefaultDelivery           = DeliveryExactlyOnce
	DefaultRefreshInterval    = 10 * time.Second // MM2: 600 s, MSK Replicator: ~30 s
	DefaultCheckpointInterval = 1 * time.Second  // MM2: 60 s
	// DefaultGroupPositionInterval: group commits reach the target's
	// checkpoints within about this (MM2: emit.checkpoints.interval, 60 s).
	DefaultGroupPositionInterval = 100 * time.Millisecond
	DefaultHeartbeatInterval     = 1 * time.Second // MM2: 1 s
	DefaultSlots                 = 16
	DefaultMaxBatchBytes         = 4 << 20
	DefaultCommitInterval        = 100 * time.Millisecond
	// DefaultCompression: none. franz-go's own default (snappy) spends
	// CPU on every batch, which buys nothing on data that is already
	// compressed or incompressible (profiles in issue 14).
	DefaultCompression = CompressionNone
	// DefaultMemoryBudget favours a cross-region link over the smallest
	// footprint: with 16 slots a partition gets about 1 MiB of fetch per
	// round trip (~14 MB/s at 70 ms RTT; 32MiB would give 256 KiB, ~3.7
	// MB/s). 32MiB kept one replicator of 16 slots at about 130 MiB RSS,
	// 16MiB with GOMEMLIMIT=70MiB under 100 MiB (docs/operations.md,
	// Sizing): set those where memory matters more than WAN throughput.
	DefaultMemoryBudget ByteSize = 128 << 20
	// MinSlotMemory is the smallest share of memory_budget a slot may
	// get: below it fetches are too small to keep up with anything.
	MinSlotMemory         ByteSize = 256 << 10
	DefaultDialTimeout             = 10 * time.Second
	DefaultHTTPListen              = "127.0.0.1:9464"
	DefaultCutoverTimeout          = 30 * time.Second
	// A monthly game day, with some slack.
	DefaultDrillMaxAge          = 30 * 24 * time.Hour
	DefaultDrillRefreshInterval = time.Minute
	// DefaultSchemaMode keeps the source's schema IDs, so records are
	// copied byte for byte.
	DefaultSchemaMode            = SchemaPreserveIDs
	DefaultSchemaRegistryTimeout = 15 * time.Second
)

// DefaultGroupsExclude mirrors MM2's groups.exclude, plus godwit's own
// groups.
var DefaultGroupsExclude = []string{`console-consumer-.*`, `connect-.*`, `__.*`, `godwit\..*`}

func (c *Config) applyDefaults() {
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultHTTPListen
	}
	if c.Cutover.Timeout == 0 {
		c.Cutover.Timeout = Duration(DefaultCutoverTimeout)
	}
	if c.Drill.MaxAge == 0 {
		c.Drill.MaxAge = Duration(DefaultDrillMaxAge)
	}
	if c.Drill.RefreshInterval == 0 {
		c.Drill.RefreshInterval = Duration(DefaultDrillRefreshInterval)
	}
	// Relative to the config file, so every command finds the same
	// directory wherever it is started.
	if r := c.Drill.Reports; r != "" && !filepath.IsAbs(r) {
		c.Drill.Reports = filepath.Join(filepath.Dir(c.path), r)
	}
	for _, cl := range c.Clusters {
		if cl == nil {
			continue
		}
		if cl.DialTimeout == 0 {
			cl.DialTimeout = Duration(DefaultDialTimeout)
		}
		cl.applySecurityDefaults()
		if cl.SchemaRegistry != nil {
			cl.SchemaRegistry.applyDefaults()
		}
	}
	c.iamFlowDefaults()
	for name, f := range c.Flows {
		if f == nil {
			continue
		}
		f.applyDefaults()
		c.schemaFlowDefaults(name, f)
	}
}

func (f *Flow) applyDefaults() {
	if f.Topics == nil {
		f.Topics = []string{".*"}
	}
	if f.Groups == nil {
		f.Groups = []string{".*"}
	}
	if f.GroupsExclude == nil {
		f.GroupsExclude = append([]string(nil), DefaultGroupsExclude...)
	}
	if f.Tiers == nil {
		f.Tiers = []Tier{}
	}
	if f.TopicsExclude == nil {
		f.TopicsExclude = []string{}
	}
	if f.ConfigsExclude == nil {
		f.ConfigsExclude = []string{}
	}
	if f.Naming == "" {
		f.Naming = DefaultNaming
	}
	if f.Separator == "" {
		f.Separator = DefaultSeparator
	}
	if f.Start == "" {
		f.Start = DefaultStart
	}
	if f.Delivery == "" {
		f.Delivery = DefaultDelivery
	}
	if f.RefreshInterval == 0 {
		f.RefreshInterval = Duration(DefaultRefreshInterval)
	}
	if f.CheckpointInterval == 0 {
		f.CheckpointInterval = Duration(DefaultCheckpointInterval)
	}
	if f.GroupPositionInterval == 0 {
		f.GroupPositionInterval = Duration(min(DefaultGroupPositionInterval, f.CheckpointInterval.D()))
	}
	if f.HeartbeatInterval == 0 {
		f.HeartbeatInterval = Duration(DefaultHeartbeatInterval)
	}
	if f.Slots == 0 {
		f.Slots = DefaultSlots
	}
	if f.MaxBatchBytes == 0 {
		f.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if f.CommitInterval == 0 {
		f.CommitInterval = Duration(DefaultCommitInterval)
	}
	if f.Compression == "" {
		f.Compression = DefaultCompression
	}
	if f.MemoryBudget == 0 {
		// Many slots need more than the default: every slot gets at
		// least its minimum share.
		f.MemoryBudget = max(DefaultMemoryBudget, ByteSize(max(f.Slots, 1))*MinSlotMemory)
	}
	t, fl := true, false
	for _, p := range []**bool{&f.Enabled, &f.Heartbeats, &f.CreateTopics, &f.SyncTopicConfigs, &f.SyncACLs, &f.SyncGroupOffsets} {
		if *p == nil {
			*p = &t
		}
	}
	if f.SyncACLsWrite == nil {
		f.SyncACLsWrite = &fl
	}
}
