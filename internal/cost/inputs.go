package cost

import (
	"bytes"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// Options compared by the model.
const (
	OptionMSKReplicator = "msk-replicator"
	OptionGodwit        = "godwit"
	OptionMirrorMaker2  = "mirrormaker2"
)

// AllOptions is every option, in display order.
var AllOptions = []string{OptionMSKReplicator, OptionGodwit, OptionMirrorMaker2}

// GB definitions.
const (
	GBDecimal = "decimal" // 1 GB = 1000 MB = 10^9 bytes
	GBBinary  = "binary"  // 1 GiB = 1024 MiB = 2^30 bytes
)

// Inputs describe the workload and the DR setup. Read from YAML with
// unknown keys rejected; flags override single fields (Merge). Unset
// fields take the defaults in Normalize.
type Inputs struct {
	// ThroughputMBps is the source's produce rate in MB/s (10^6 bytes/s).
	ThroughputMBps Dec `yaml:"throughput_mb_per_s" json:"throughput_mb_per_s"`
	// ReplicatedShare is the fraction of that throughput the flows
	// replicate (0..1, default 1).
	ReplicatedShare Dec `yaml:"replicated_share" json:"replicated_share"`
	// Days is the length of the period priced (default 30 = one month).
	Days Dec `yaml:"days" json:"days"`
	// RetentionHours is the target topics' retention (default 168).
	RetentionHours Dec `yaml:"retention_hours" json:"retention_hours"`
	// TargetReplicationFactor is the replication factor on the DR cluster
	// (default 3).
	TargetReplicationFactor Dec    `yaml:"target_replication_factor" json:"target_replication_factor"`
	SourceRegion            string `yaml:"source_region" json:"source_region"`
	TargetRegion            string `yaml:"target_region" json:"target_region"`
	// Options to compare (default all: msk-replicator, godwit, mirrormaker2).
	Options []string `yaml:"options" json:"options"`
	// GB is "decimal" (default, 1 GB = 10^9 bytes) or "binary" (2^30).
	GB string `yaml:"gb" json:"gb"`

	Standby       Standby       `yaml:"standby" json:"standby"`
	MSKReplicator MSKReplicator `yaml:"msk_replicator" json:"msk_replicator"`
	Godwit        Workers       `yaml:"godwit" json:"godwit"`
	MirrorMaker2  Workers       `yaml:"mirrormaker2" json:"mirrormaker2"`
	Operations    Operations    `yaml:"operations" json:"operations"`

	// Measured replaces the throughput and the storage estimate with
	// values read from the source cluster (godwit cost --measure).
	Measured *Measurement `yaml:"-" json:"measured,omitempty"`
}

// Standby is the DR cluster's compute: Brokers × hours × the broker-hour
// price of BrokerType, or a flat Monthly figure when given.
type Standby struct {
	BrokerType string `yaml:"broker_type" json:"broker_type"`
	Brokers    Dec    `yaml:"brokers" json:"brokers"`
	Monthly    Dec    `yaml:"monthly_usd" json:"monthly_usd"`
}

// MSKReplicator sizes the managed option.
type MSKReplicator struct {
	Replicators Dec `yaml:"replicators" json:"replicators"`
}

// Workers sizes a self-run option: Count instances of InstanceType.
type Workers struct {
	InstanceType string `yaml:"instance_type" json:"instance_type"`
	Count        Dec    `yaml:"count" json:"count"`
}

// Operations is the people cost of DR drills.
type Operations struct {
	DrillHours Dec `yaml:"drill_hours" json:"drill_hours"`
	HourlyRate Dec `yaml:"hourly_rate_usd" json:"hourly_rate_usd"`
}

// LoadInputs reads an inputs file strictly.
func LoadInputs(path string) (*Inputs, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, inputErrorf("--input: %v", err)
	}
	return ParseInputs(path, data)
}

// ParseInputs decodes inputs; unknown keys are errors.
func ParseInputs(name string, data []byte) (*Inputs, error) {
	var in Inputs
	if len(bytes.TrimSpace(data)) == 0 {
		return &in, nil
	}
	if err := yaml.NewDecoder(bytes.NewReader(data), yaml.DisallowUnknownField()).Decode(&in); err != nil {
		return nil, inputErrorf("%s: %s", name, yamlMsg(err))
	}
	return &in, nil
}

// Merge copies every field set in o over in (flags over the file).
func (in *Inputs) Merge(o *Inputs) {
	decs := func(dst *Dec, src Dec) {
		if src.IsSet() {
			*dst = src
		}
	}
	strs := func(dst *string, src string) {
		if src != "" {
			*dst = src
		}
	}
	decs(&in.ThroughputMBps, o.ThroughputMBps)
	decs(&in.ReplicatedShare, o.ReplicatedShare)
	decs(&in.Days, o.Days)
	decs(&in.RetentionHours, o.RetentionHours)
	decs(&in.TargetReplicationFactor, o.TargetReplicationFactor)
	strs(&in.SourceRegion, o.SourceRegion)
	strs(&in.TargetRegion, o.TargetRegion)
	if len(o.Options) > 0 {
		in.Options = o.Options
	}
	strs(&in.GB, o.GB)
	strs(&in.Standby.BrokerType, o.Standby.BrokerType)
	decs(&in.Standby.Brokers, o.Standby.Brokers)
	decs(&in.Standby.Monthly, o.Standby.Monthly)
	decs(&in.MSKReplicator.Replicators, o.MSKReplicator.Replicators)
	strs(&in.Godwit.InstanceType, o.Godwit.InstanceType)
	decs(&in.Godwit.Count, o.Godwit.Count)
	strs(&in.MirrorMaker2.InstanceType, o.MirrorMaker2.InstanceType)
	decs(&in.MirrorMaker2.Count, o.MirrorMaker2.Count)
	decs(&in.Operations.DrillHours, o.Operations.DrillHours)
	decs(&in.Operations.HourlyRate, o.Operations.HourlyRate)
	if o.Measured != nil {
		in.Measured = o.Measured
	}
}

// Normalize fills defaults and validates; errors are ErrInput.
func (in *Inputs) Normalize() error {
	def := func(d *Dec, v string) {
		if !d.IsSet() {
			*d = D(v)
		}
	}
	defs := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&in.ReplicatedShare, "1")
	def(&in.Days, "30")
	def(&in.RetentionHours, "168")
	def(&in.TargetReplicationFactor, "3")
	defs(&in.SourceRegion, "us-west-2")
	defs(&in.TargetRegion, "us-east-1")
	if len(in.Options) == 0 {
		in.Options = append([]string(nil), AllOptions...)
	}
	defs(&in.GB, GBDecimal)
	defs(&in.Standby.BrokerType, "kafka.m5.large")
	def(&in.Standby.Brokers, "3")
	def(&in.MSKReplicator.Replicators, "1")
	defs(&in.Godwit.InstanceType, "m5.large")
	def(&in.Godwit.Count, "2")
	defs(&in.MirrorMaker2.InstanceType, "m5.large")
	def(&in.MirrorMaker2.Count, "2")
	def(&in.Operations.DrillHours, "0")
	def(&in.Operations.HourlyRate, "0")

	if in.Measured == nil {
		if !in.ThroughputMBps.IsSet() {
			return inputErrorf("throughput_mb_per_s (--throughput) is required: the source's produce rate in MB/s, or measure it with -c FILE --measure")
		}
		if in.ThroughputMBps.Sign() <= 0 {
			return inputErrorf("throughput_mb_per_s (--throughput) is %s: it must be a positive number of MB/s", in.ThroughputMBps)
		}
	} else if in.ThroughputMBps.IsSet() {
		return inputErrorf("throughput_mb_per_s (--throughput) and --measure both give the throughput; use one")
	}
	type check struct {
		name string
		v    Dec
		pos  bool // must be > 0 (else >= 0)
		int  bool
	}
	for _, c := range []check{
		{"replicated_share (--replicated-share)", in.ReplicatedShare, false, false},
		{"days (--days)", in.Days, true, false},
		{"retention_hours (--retention-hours)", in.RetentionHours, false, false},
		{"target_replication_factor (--target-rf)", in.TargetReplicationFactor, true, true},
		{"standby.brokers (--standby-brokers)", in.Standby.Brokers, false, true},
		{"standby.monthly_usd (--standby-monthly)", in.Standby.Monthly, false, false},
		{"msk_replicator.replicators (--replicators)", in.MSKReplicator.Replicators, false, true},
		{"godwit.count (--godwit-workers)", in.Godwit.Count, false, true},
		{"mirrormaker2.count (--mm2-workers)", in.MirrorMaker2.Count, false, true},
		{"operations.drill_hours (--drill-hours)", in.Operations.DrillHours, false, false},
		{"operations.hourly_rate_usd (--drill-rate)", in.Operations.HourlyRate, false, false},
	} {
		if !c.v.IsSet() {
			continue
		}
		if c.v.Sign() < 0 || (c.pos && c.v.Sign() == 0) {
			want := "zero or more"
			if c.pos {
				want = "positive"
			}
			return inputErrorf("%s is %s: it must be %s", c.name, c.v, want)
		}
		if c.int && !c.v.IsInt() {
			return inputErrorf("%s is %s: it must be a whole number", c.name, c.v)
		}
	}
	if in.ReplicatedShare.Rat().Cmp(ri(1)) > 0 {
		return inputErrorf("replicated_share (--replicated-share) is %s: it is a fraction between 0 and 1", in.ReplicatedShare)
	}
	seen := map[string]bool{}
	for i, o := range in.Options {
		o = strings.TrimSpace(strings.ToLower(o))
		switch o {
		case "mm2", "mirrormaker", "mirror-maker-2":
			o = OptionMirrorMaker2
		case "msk", "mskreplicator":
			o = OptionMSKReplicator
		}
		if !contains(AllOptions, o) {
			return inputErrorf("option %q (--option) is unknown; use %s", in.Options[i], strings.Join(AllOptions, ", "))
		}
		if seen[o] {
			return inputErrorf("option %q (--option) is given twice", o)
		}
		seen[o] = true
		in.Options[i] = o
	}
	if in.GB != GBDecimal && in.GB != GBBinary {
		return inputErrorf("gb (--gb) is %q: use decimal (1 GB = 1000 MB) or binary (1 GiB = 1024 MiB)", in.GB)
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Measurement is what --measure read from the source cluster.
type Measurement struct {
	Cluster    string   `json:"cluster"`
	Topics     []string `json:"topics"`
	Partitions int      `json:"partitions"`
	// Window is the time between the two log-size samples.
	Window time.Duration `json:"window_ns"`
	// StartBytes and EndBytes are the sums of the leader replicas' log
	// sizes (DescribeLogDirs) at the window's start and end.
	StartBytes int64 `json:"start_bytes"`
	EndBytes   int64 `json:"end_bytes"`
	// BytesPerSecond is (EndBytes - StartBytes) / Window.
	BytesPerSecond Dec `json:"bytes_per_second"`
}

func (m *Measurement) rate() *big.Rat { return m.BytesPerSecond.Rat() }

func (m *Measurement) windowSeconds() *big.Rat {
	return new(big.Rat).SetFrac(big.NewInt(m.Window.Nanoseconds()), big.NewInt(int64(time.Second)))
}
