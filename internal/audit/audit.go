// Package audit checks, read-only, whether a flow's standby could take
// production traffic now: both clusters answer, the target has every
// replicated topic with the source's partitions, configs, retention and
// ACLs, consumer groups have fresh checkpoints, replication and heartbeats
// are within the flow's rpo_objective, the target has room for the data,
// and godwit's internal topics exist. Each check is PASS, WARN or FAIL with
// the evidence it was decided on and what to do about it. `godwit audit`
// prints the report and exits 1 if any check failed.
//
// The audit never writes to either cluster.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/godwit/godwit/internal/config"
)

// Check statuses.
const (
	Pass = "PASS"
	Warn = "WARN"
	Fail = "FAIL"
)

// Profiles add checks for a replication product's limits.
const (
	ProfileNone          = ""
	ProfileMSKReplicator = "msk-replicator"
)

// Profiles lists the valid --profile values.
var Profiles = []string{ProfileMSKReplicator}

// Check IDs, in the order they are reported for each flow.
const (
	IDSourceReachable = "source.reachable"
	IDTargetReachable = "target.reachable"
	IDTopicsPresent   = "topics.present"
	IDConfigDrift     = "topics.config_drift"
	IDRetention       = "topics.retention"
	IDACLDrift        = "acls.drift"
	IDGroups          = "groups.checkpoints"
	IDLag             = "replication.lag"
	IDHeartbeat       = "replication.heartbeat"
	IDCapacity        = "target.capacity"
	IDInternalTopics  = "internal.topics"
	IDCutoverHook     = "cutover.hook"
	IDDrill           = "drill.last"
	IDMSKTopics       = "msk.topics"
	IDMSKRecordSize   = "msk.record_size"
	IDMSKThroughput   = "msk.throughput"
)

// Check is one audited property of one flow.
type Check struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Status string `json:"status"`
	Flow   string `json:"flow"`
	// Evidence is what the status was decided on, with the numbers.
	Evidence string `json:"evidence"`
	// Remedy says what to do; empty for PASS.
	Remedy string `json:"remedy,omitempty"`
	// Details holds the evidence as data (lists of topics, principals,
	// groups, measured values) for -o json consumers.
	Details any `json:"details,omitempty"`
}

// Summary counts the checks by status.
type Summary struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
}

// Report is the JSON contract of `godwit audit -o json`.
type Report struct {
	Profile string  `json:"profile,omitempty"`
	Checks  []Check `json:"checks"`
	Summary Summary `json:"summary"`
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool { return r.Summary.Fail > 0 }

// Options are Run's inputs. Config and Flows are required; the rest have
// defaults.
type Options struct {
	Config *config.Config
	Flows  []*config.Flow
	// Profile adds a product's limits (ProfileMSKReplicator).
	Profile string
	Logger  *slog.Logger
	// Now is the clock ages are measured against (default time.Now).
	Now func() time.Time
	// PingTimeout bounds the reachability check of each cluster
	// (default 10s).
	PingTimeout time.Duration
	// ThroughputWindow is how long the msk-replicator profile measures
	// the source's byte rate (default 10s).
	ThroughputWindow time.Duration
	// SchemaRecords is how many of the newest records per target
	// partition the schema parity check reads (default
	// DefaultSchemaRecords).
	SchemaRecords int
	// StandbyRetention is the shorter standby retention the
	// topics.standby_retention report prices (default
	// DefaultStandbyRetention).
	StandbyRetention time.Duration
}

// ErrProfile is returned for an unknown profile.
var ErrProfile = errors.New("unknown audit profile")

// Run audits each flow and returns every check, flows in the given order
// and checks in a fixed order within a flow. An error means the audit
// itself could not run (bad options); problems with the clusters are
// checks.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Config == nil || len(o.Flows) == 0 {
		return nil, errors.New("audit: no config or no flows")
	}
	switch o.Profile {
	case ProfileNone, ProfileMSKReplicator:
	default:
		return nil, fmt.Errorf("%w %q: use %v", ErrProfile, o.Profile, Profiles)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 10 * time.Second
	}
	if o.StandbyRetention <= 0 {
		o.StandbyRetention = DefaultStandbyRetention
	}
	if o.ThroughputWindow <= 0 {
		o.ThroughputWindow = 10 * time.Second
	}
	rep := &Report{Profile: o.Profile, Checks: []Check{}}
	pings := map[string]pingResult{}
	for _, f := range o.Flows {
		fa := newFlowAudit(&o, f, pings)
		rep.Checks = append(rep.Checks, fa.run(ctx)...)
		fa.close()
	}
	for _, c := range rep.Checks {
		switch c.Status {
		case Pass:
			rep.Summary.Pass++
		case Warn:
			rep.Summary.Warn++
		default:
			rep.Summary.Fail++
		}
	}
	return rep, nil
}
