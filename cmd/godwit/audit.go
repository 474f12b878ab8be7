package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/audit"
)

func init() { commands = append(commands, newAuditCmd) }

// errAuditFailed makes `godwit audit` exit 1 after printing its report.
var errAuditFailed = errors.New("audit: at least one check failed")

func newAuditCmd(g *globals) *cobra.Command {
	var (
		flows   []string
		profile string
		window  time.Duration
		timeout time.Duration
		standby time.Duration
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check, read-only, that the standby could take production traffic now: PASS / WARN / FAIL per check",
		Long: `Audits each flow: both clusters reachable and authenticated, every selected
topic on the target with the source's partitions, config drift, target
retention, ACL drift by principal, consumer groups without a fresh
checkpoint, replication lag and heartbeat freshness against rpo_objective,
target brokers and free disk, what a shorter standby retention would save
(--standby-retention), godwit's internal topics, cutover hook and
drill age. --profile msk-replicator adds MSK Replicator's limits (750 topics,
10 MB records, 1 GB/s per replicator), computed from the clusters.
Every check prints its evidence and, when it did not pass, what to do.
Changes nothing. Exits 1 if any check failed, 0 otherwise. See docs/audit.md.`,
		Example: `  godwit audit -c godwit.yaml
  godwit audit -c godwit.yaml --flow 'primary->secondary' -o json

  # also check MSK Replicator's limits, measuring throughput over 30s
  godwit audit -c godwit.yaml --profile msk-replicator --window 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch profile {
			case audit.ProfileNone, audit.ProfileMSKReplicator:
			default:
				return usagef("--profile %q: use %s", profile, audit.ProfileMSKReplicator)
			}
			if window <= 0 {
				return usagef("--window %v: it must be positive", window)
			}
			if timeout <= 0 {
				return usagef("--timeout %v: it must be positive", timeout)
			}
			if standby <= 0 {
				return usagef("--standby-retention %v: it must be positive, e.g. 24h", standby)
			}
			cfg, sel, err := g.loadFlows(flows)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute+window)
			defer cancel()
			rep, err := audit.Run(ctx, audit.Options{
				Config: cfg, Flows: sel, Profile: profile, Logger: g.logger(),
				Now: time.Now, PingTimeout: timeout, ThroughputWindow: window, StandbyRetention: standby,
			})
			if err != nil {
				return err
			}
			if g.json() {
				err = rep.WriteJSON(g.stdout)
			} else {
				err = rep.WriteText(g.stdout)
			}
			if err != nil {
				return err
			}
			if rep.Failed() {
				return fmt.Errorf("%w (%d failed, %d warnings)", errAuditFailed, rep.Summary.Fail, rep.Summary.Warn)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&flows, "flow", nil, "flow to audit (quoted: --flow 'A->B'); repeatable; default all enabled flows")
	fl.StringVar(&profile, "profile", "", "add a product's limits: msk-replicator")
	fl.DurationVar(&window, "window", 10*time.Second, "with --profile msk-replicator: time between the two log-size samples that measure throughput")
	fl.DurationVar(&standby, "standby-retention", audit.DefaultStandbyRetention, "the shorter standby retention topics.standby_retention prices (what it would free, and what it costs)")
	fl.DurationVar(&timeout, "timeout", 10*time.Second, "how long each cluster may take to answer the reachability check")
	return cmd
}
