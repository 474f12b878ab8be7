package drillreport

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/godwit/godwit/internal/config"
)

// TopicPrefix is put in front of every drill topic (and group) so a drill
// never touches production topics.
const TopicPrefix = "godwit-drill."

// Fault types.
const (
	FaultSourceDown       = "source-down"
	FaultReplicatorCrash  = "replicator-crash"
	FaultNetworkPartition = "network-partition"
	FaultNone             = "none"
)

// Scenario describes a drill. Every default is in Defaults.
type Scenario struct {
	Name       string         `yaml:"name" json:"name"`
	Flow       string         `yaml:"flow" json:"flow"`
	Topics     []TopicSpec    `yaml:"topics" json:"topics"`
	Workload   WorkloadSpec   `yaml:"workload" json:"workload"`
	Groups     []GroupSpec    `yaml:"groups" json:"groups"`
	Fault      FaultSpec      `yaml:"fault" json:"fault"`
	Failover   FailoverSpec   `yaml:"failover" json:"failover"`
	Phases     PhasesSpec     `yaml:"phases" json:"phases"`
	Objectives ObjectivesSpec `yaml:"objectives" json:"objectives"`
	// Connect is the optional Kafka Connect check (connect.go).
	Connect ConnectSpec `yaml:"connect" json:"connect"`
}

// TopicSpec is a drill topic; Name gets TopicPrefix unless it has it.
type TopicSpec struct {
	Name       string `yaml:"name" json:"name"`
	Partitions int32  `yaml:"partitions" json:"partitions"`
}

// WorkloadSpec is the producer load (records per second over all topics).
type WorkloadSpec struct {
	Rate       int      `yaml:"rate" json:"rate"`
	RecordSize int      `yaml:"record_size" json:"record_size"`
	Keys       *bool    `yaml:"keys" json:"keys"`
	Peak       PeakSpec `yaml:"peak" json:"peak"`
}

// PeakSpec is the peak phase: Rate for Duration.
type PeakSpec struct {
	Rate     int             `yaml:"rate" json:"rate"`
	Duration config.Duration `yaml:"duration" json:"duration"`
}

// GroupSpec is a consumer group that processes the drill topics
// read_committed with an idempotency check; Name gets TopicPrefix.
type GroupSpec struct {
	Name string `yaml:"name" json:"name"`
}

// FaultSpec is the fault to inject.
type FaultSpec struct {
	Type string `yaml:"type" json:"type"`
	// Command takes the source down on real clusters (sh -c); embedded
	// clusters are stopped directly. For network-partition it cuts the
	// replicator's network path to the source (required when the
	// replicator runs as a process: the drill cannot route a process
	// through its own cuttable proxy).
	Command string `yaml:"command" json:"command,omitempty"`
	// HealCommand restores what a network-partition Command cut, at the
	// end of the drill (the source was never down).
	HealCommand string `yaml:"heal_command" json:"heal_command,omitempty"`
	// RestartAfter is how long a crashed replicator stays down.
	RestartAfter config.Duration `yaml:"restart_after" json:"restart_after"`
}

// FailoverSpec times the failover.
type FailoverSpec struct {
	// DetectAfter: the source counts as down once it has failed every
	// probe for this long.
	DetectAfter config.Duration `yaml:"detect_after" json:"detect_after"`
	// DecisionDelay stands for the human deciding to fail over.
	DecisionDelay config.Duration `yaml:"decision_delay" json:"decision_delay"`
	// Timeout bounds the failover and the consumers catching up.
	Timeout config.Duration `yaml:"timeout" json:"timeout"`
	// SourceTimeout is how long the failover waits for the source to
	// answer before failing over unplanned (godwit failover
	// --source-timeout). In a network partition that drops packets the
	// failover spends all of it.
	SourceTimeout config.Duration `yaml:"source_timeout" json:"source_timeout"`
	// CutoverCommand is the cutover hook the drill's failover runs (and
	// times). The config's cutover.command is never run by a drill: it
	// would move production clients. Empty: no hook.
	CutoverCommand string `yaml:"cutover_command" json:"cutover_command,omitempty"`
}

// PhasesSpec are the phase lengths around the peak.
type PhasesSpec struct {
	Steady config.Duration `yaml:"steady" json:"steady"` // before the peak
	After  config.Duration `yaml:"after" json:"after"`   // steady again, before the fault
}

// ObjectivesSpec are the pass/fail objectives.
type ObjectivesSpec struct {
	RPO config.Duration `yaml:"rpo_objective" json:"rpo_objective"`
	RTO config.Duration `yaml:"rto_objective" json:"rto_objective"`
}

// Defaults is the one place every default lives.
var Defaults = Scenario{
	Name:   "drill",
	Topics: []TopicSpec{{Name: "orders", Partitions: 6}},
	Workload: WorkloadSpec{
		Rate: 500, RecordSize: 512,
		Peak: PeakSpec{Rate: 2000, Duration: config.Duration(5 * time.Second)},
	},
	Groups: []GroupSpec{{Name: "billing"}},
	Fault:  FaultSpec{Type: FaultSourceDown, RestartAfter: config.Duration(2 * time.Second)},
	Failover: FailoverSpec{
		DetectAfter:   config.Duration(time.Second),
		DecisionDelay: config.Duration(2 * time.Second),
		Timeout:       config.Duration(60 * time.Second),
		SourceTimeout: config.Duration(10 * time.Second),
	},
	Phases:     PhasesSpec{Steady: config.Duration(8 * time.Second), After: config.Duration(4 * time.Second)},
	Objectives: ObjectivesSpec{RPO: config.Duration(5 * time.Second), RTO: config.Duration(60 * time.Second)},
	Connect:    ConnectSpec{Timeout: config.Duration(10 * time.Second)},
}

// LoadScenario reads a scenario file; "" returns the defaults.
func LoadScenario(path string) (*Scenario, error) {
	if path == "" {
		return ParseScenario("", nil)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return ParseScenario(path, b)
}

// ParseScenario decodes a scenario strictly (unknown keys are errors),
// fills defaults and validates it.
func ParseScenario(path string, data []byte) (*Scenario, error) {
	var s Scenario
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.UnmarshalWithOptions(data, &s, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
			return nil, fmt.Errorf("scenario %s: %s", path, yaml.FormatError(err, false, true))
		}
	}
	s.fill()
	if err := s.Validate(); err != nil {
		if path != "" {
			return nil, fmt.Errorf("scenario %s: %w", path, err)
		}
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return &s, nil
}

func (s *Scenario) fill() {
	d := Defaults
	if s.Name == "" {
		s.Name = d.Name
	}
	if len(s.Topics) == 0 {
		s.Topics = append([]TopicSpec(nil), d.Topics...)
	}
	for i := range s.Topics {
		if s.Topics[i].Partitions == 0 {
			s.Topics[i].Partitions = d.Topics[0].Partitions
		}
		if s.Topics[i].Name != "" && !strings.HasPrefix(s.Topics[i].Name, TopicPrefix) {
			s.Topics[i].Name = TopicPrefix + s.Topics[i].Name
		}
	}
	w := &s.Workload
	if w.Rate == 0 {
		w.Rate = d.Workload.Rate
	}
	if w.RecordSize == 0 {
		w.RecordSize = d.Workload.RecordSize
	}
	if w.Keys == nil {
		t := true
		w.Keys = &t
	}
	if w.Peak.Rate == 0 {
		w.Peak.Rate = max(d.Workload.Peak.Rate, w.Rate)
	}
	if w.Peak.Duration == 0 {
		w.Peak.Duration = d.Workload.Peak.Duration
	}
	if len(s.Groups) == 0 {
		s.Groups = append([]GroupSpec(nil), d.Groups...)
	}
	for i := range s.Groups {
		if s.Groups[i].Name != "" && !strings.HasPrefix(s.Groups[i].Name, TopicPrefix) {
			s.Groups[i].Name = TopicPrefix + s.Groups[i].Name
		}
	}
	if s.Fault.Type == "" {
		s.Fault.Type = d.Fault.Type
	}
	if s.Fault.RestartAfter == 0 {
		s.Fault.RestartAfter = d.Fault.RestartAfter
	}
	f := &s.Failover
	if f.DetectAfter == 0 {
		f.DetectAfter = d.Failover.DetectAfter
	}
	if f.DecisionDelay == 0 {
		f.DecisionDelay = d.Failover.DecisionDelay
	}
	if f.Timeout == 0 {
		f.Timeout = d.Failover.Timeout
	}
	if f.SourceTimeout == 0 {
		f.SourceTimeout = d.Failover.SourceTimeout
	}
	if s.Phases.Steady == 0 {
		s.Phases.Steady = d.Phases.Steady
	}
	if s.Phases.After == 0 {
		s.Phases.After = d.Phases.After
	}
	if s.Objectives.RPO == 0 {
		s.Objectives.RPO = d.Objectives.RPO
	}
	if s.Objectives.RTO == 0 {
		s.Objectives.RTO = d.Objectives.RTO
	}
	s.Connect.fill(d.Connect)
}

// Validate checks a filled scenario.
func (s *Scenario) Validate() error {
	seen := map[string]bool{}
	for i, t := range s.Topics {
		if t.Name == "" {
			return fmt.Errorf("topics[%d]: name is required", i)
		}
		if seen[t.Name] {
			return fmt.Errorf("topics[%d]: %s is listed twice", i, t.Name)
		}
		seen[t.Name] = true
		if t.Partitions < 1 || t.Partitions > 1000 {
			return fmt.Errorf("topics[%d] %s: partitions %d: use 1 to 1000", i, t.Name, t.Partitions)
		}
	}
	if s.Workload.Rate < 1 || s.Workload.Peak.Rate < 1 {
		return fmt.Errorf("workload: rate and peak.rate must be at least 1 record/s")
	}
	if s.Workload.RecordSize < 32 || s.Workload.RecordSize > 1<<20 {
		return fmt.Errorf("workload.record_size %d: use 32 bytes to 1 MiB", s.Workload.RecordSize)
	}
	for i, g := range s.Groups {
		if g.Name == "" {
			return fmt.Errorf("groups[%d]: name is required", i)
		}
	}
	switch s.Fault.Type {
	case FaultSourceDown, FaultReplicatorCrash, FaultNone:
		if s.Fault.HealCommand != "" {
			return fmt.Errorf("fault.heal_command is for network-partition only (fault.type is %s)", s.Fault.Type)
		}
	case FaultNetworkPartition:
		if (s.Fault.Command == "") != (s.Fault.HealCommand == "") {
			return fmt.Errorf("fault network-partition: set fault.command (cuts the replicator's network path to the source) and fault.heal_command (restores it at the end) together, or neither (the in-process replicator, e.g. godwit drill --replicator in-process, is cut by the drill's own proxy)")
		}
	default:
		return fmt.Errorf("fault.type %q: use source-down, replicator-crash, network-partition or none", s.Fault.Type)
	}
	if err := s.Connect.validate(); err != nil {
		return err
	}
	return nil
}

// FailsOver reports whether the scenario ends with a failover.
func (s *Scenario) FailsOver() bool { return s.Fault.Type != FaultReplicatorCrash }

// Planned reports whether the failover is planned (no fault).
func (s *Scenario) Planned() bool { return s.Fault.Type == FaultNone }
