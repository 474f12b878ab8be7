package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/cost"
	"github.com/godwit/godwit/internal/naming"
)

func init() { commands = append(commands, newCostCmd) }

func newCostCmd(g *globals) *cobra.Command {
	var (
		inputFile, pricesFile string
		measure               bool
		window                time.Duration
		flows                 []string
		f                     cost.Inputs
	)
	cmd := &cobra.Command{
		Use:   "cost",
		Short: "Model the monthly cost of cross-region DR per option, with the arithmetic line by line",
		Example: `  # 20 MB/s replicated from us-west-2 to us-east-1, all options
  godwit cost --throughput 20 --source-region us-west-2 --target-region us-east-1

  # measure the throughput of a flow's source over one minute, compare godwit with MSK Replicator
  godwit cost -c godwit.yaml --measure --window 1m --option godwit,msk-replicator`,
		Long: `Models four layers per option (msk-replicator, godwit, mirrormaker2 self-run):
standby compute, duplicate storage, replication and transfer, operations.
Inputs come from --input FILE (YAML, unknown keys rejected) and flags, which
override the file. Unit prices come from an embedded, versioned table whose
entries are illustrative placeholders: pass --prices FILE with your prices.
With -c FILE --measure, the throughput and the stored size are read from the
flow's source cluster (log sizes of the replicated topics over --window).
Decimal GB (1 GB = 1000 MB) unless --gb binary. See docs/cost.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := &cost.Inputs{}
			if inputFile != "" {
				fi, err := cost.LoadInputs(inputFile)
				if err != nil {
					return costErr(err)
				}
				in = fi
			}
			in.Merge(&f)
			if !measure && cmd.Flags().Changed("window") {
				return usagef("--window is only used with --measure")
			}
			if measure {
				if in.ThroughputMBps.IsSet() {
					return usagef("--measure reads the throughput from the cluster; drop throughput_mb_per_s / --throughput")
				}
				m, err := measureSource(cmd.Context(), g, flows, window)
				if err != nil {
					return err
				}
				in.Measured = m
			}
			if err := in.Normalize(); err != nil {
				return costErr(err)
			}
			table, err := cost.EmbeddedPrices()
			if err != nil {
				return err
			}
			if pricesFile != "" {
				if err := table.Override(pricesFile); err != nil {
					return costErr(err)
				}
			}
			rep, err := cost.Compute(in, table)
			if err != nil {
				return costErr(err)
			}
			if g.json() {
				return rep.WriteJSON(g.stdout)
			}
			return rep.WriteText(g.stdout)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&inputFile, "input", "", "inputs file (YAML); flags override its values")
	fl.StringVar(&pricesFile, "prices", "", "price file (YAML) whose entries replace or add to the embedded table")
	fl.BoolVar(&measure, "measure", false, "read throughput and stored size from the flow's source cluster (needs -c)")
	fl.DurationVar(&window, "window", 30*time.Second, "with --measure: time between the two log-size samples")
	fl.StringArrayVar(&flows, "flow", nil, "with --measure: the flow (quoted: --flow 'A->B') whose source and topics are measured; needed when the config has several")
	fl.Var(&f.ThroughputMBps, "throughput", "source produce rate in MB/s (10^6 bytes/s)")
	fl.Var(&f.ReplicatedShare, "replicated-share", "fraction of the throughput that is replicated, 0..1 (default 1)")
	fl.Var(&f.Days, "days", "days priced (default 30 = one month)")
	fl.Var(&f.RetentionHours, "retention-hours", "retention of the replicated topics on the target, hours (default 168)")
	fl.Var(&f.TargetReplicationFactor, "target-rf", "replication factor on the target cluster (default 3)")
	fl.StringVar(&f.SourceRegion, "source-region", "", "source region (default us-west-2)")
	fl.StringVar(&f.TargetRegion, "target-region", "", "target (DR) region (default us-east-1)")
	fl.StringSliceVar(&f.Options, "option", nil, "options to compare: msk-replicator, godwit, mirrormaker2; repeatable or comma-separated (default all)")
	fl.StringVar(&f.GB, "gb", "", "GB definition: decimal (1 GB = 1000 MB, default) or binary (1 GiB = 1024 MiB)")
	fl.StringVar(&f.Standby.BrokerType, "standby-broker-type", "", "standby cluster broker type (default kafka.m5.large)")
	fl.Var(&f.Standby.Brokers, "standby-brokers", "standby cluster broker count (default 3)")
	fl.Var(&f.Standby.Monthly, "standby-monthly", "standby compute as a monthly USD figure, instead of brokers × hours × price")
	fl.Var(&f.MSKReplicator.Replicators, "replicators", "MSK Replicator count (default 1)")
	fl.Var(&f.Godwit.Count, "godwit-workers", "godwit worker instances (default 2)")
	fl.StringVar(&f.Godwit.InstanceType, "godwit-instance", "", "godwit worker instance type (default m5.large)")
	fl.Var(&f.MirrorMaker2.Count, "mm2-workers", "MirrorMaker 2 worker instances (default 2)")
	fl.StringVar(&f.MirrorMaker2.InstanceType, "mm2-instance", "", "MirrorMaker 2 worker instance type (default m5.large)")
	fl.Var(&f.Operations.DrillHours, "drill-hours", "people-hours spent on DR drills in the period (default 0)")
	fl.Var(&f.Operations.HourlyRate, "drill-rate", "USD per people-hour for drills (default 0)")
	return cmd
}

// costErr maps the cost package's input errors to exit 2.
func costErr(err error) error {
	if errors.Is(err, cost.ErrInput) {
		return usageError{err}
	}
	return err
}

// measureSource measures the replicated topics on the selected flow's
// source cluster.
func measureSource(ctx context.Context, g *globals, flows []string, window time.Duration) (*cost.Measurement, error) {
	if window <= 0 {
		return nil, usagef("--window %v: it must be positive", window)
	}
	cfg, sel, err := g.loadFlows(flows)
	if err != nil {
		return nil, err
	}
	if len(sel) != 1 {
		names := make([]string, len(sel))
		for i, f := range sel {
			names[i] = f.Name
		}
		return nil, usagef("--measure prices one flow; pick one with --flow (selected: %v)", names)
	}
	f := sel[0]
	src, err := cluster.New(cfg, f.Source)
	if err != nil {
		return nil, usageError{err}
	}
	cl, err := src.Client("cost-measure", nil)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, window+time.Minute)
	defer cancel()
	adm := kadm.NewClient(cl)
	policy := naming.For(f)
	// The workload only: heartbeat topics are godwit's (or MM2's) own, and
	// internal topics are never replicated.
	topics, err := cost.ReplicatedTopics(ctx, adm, func(t string) bool { return policy.Select(t) == naming.Selected && !policy.Heartbeat(t) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	// Progress goes to stderr (stdout may be JSON): a 30 s window is long
	// to wait in silence.
	m, err := cost.MeasureProgress(ctx, adm, f.Source, topics, window, func(elapsed, window time.Duration, bytes int64, partitions int) {
		if elapsed == 0 {
			fmt.Fprintf(g.stderr, "godwit: measuring the write rate of %d topics (%d partitions) of flow %s on cluster %s for %s (--window); heartbeat and internal topics excluded\n",
				len(topics), partitions, f.Name, f.Source, window)
			return
		}
		step := time.Second
		if window < 10*time.Second {
			step = 100 * time.Millisecond
		}
		rate := float64(bytes) / elapsed.Seconds()
		fmt.Fprintf(g.stderr, "godwit: %s of %s: %.3f MB written so far (%.3f MB/s)\n", elapsed.Round(step), window, float64(bytes)/1e6, rate/1e6)
	})
	if err != nil {
		return nil, costErr(err)
	}
	return m, nil
}
