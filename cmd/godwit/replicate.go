package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	rungroup "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/config"

	"github.com/godwit/godwit/internal/drillstats"
	"github.com/godwit/godwit/internal/metrics"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/replicate"
	"github.com/godwit/godwit/internal/schemas"
)

func init() { commands = append(commands, newReplicateCmd, newStatusCmd) }

func newReplicateCmd(g *globals) *cobra.Command {
	var flows []string
	var instanceID string
	cmd := &cobra.Command{
		Use:   "replicate",
		Short: "Replicate the configured flows until interrupted (SIGINT/SIGTERM)",
		Long: `Runs every enabled flow (or the ones named with --flow) until SIGINT or SIGTERM.
Several godwit processes with the same config share each flow's partitions
through a consumer group on the target cluster.`,
		Example: `  # run every enabled flow, metrics and health on http.listen (/metrics, /healthz, /readyz)
  godwit replicate -c godwit.yaml

  # one flow only, as one of several replicas with a stable identity
  godwit replicate -c godwit.yaml --flow 'primary->secondary' --instance-id godwit-0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, sel, err := g.loadFlows(flows)
			if err != nil {
				return err
			}
			log := g.logger()
			reg := metrics.NewRegistry()
			r, err := replicate.New(cfg, sel, log, replicate.NewMetrics(reg), instanceID)
			if err != nil {
				return err
			}
			return runReplicator(cmd.Context(), cfg, sel, r, reg, log)
		},
	}
	cmd.Flags().StringArrayVar(&flows, "flow", nil, "flow to run (quoted: --flow 'A->B'); repeatable; default all enabled flows")
	cmd.Flags().StringVar(&instanceID, "instance-id", os.Getenv("GODWIT_INSTANCE_ID"),
		"static group membership id (unique per process, stable across restarts, e.g. a StatefulSet pod name): a restarted process takes its slots back at once; env GODWIT_INSTANCE_ID")
	return cmd
}

// runReplicator runs the long-lived parts of `godwit replicate` as one run
// group (the pattern Prometheus's main uses): each part is an execute /
// interrupt pair, the first to return (the replicator on SIGTERM, or any
// part failing) interrupts all the others, and the call returns once every
// part has stopped. Only the replicator watches ctx (SIGINT/SIGTERM): the
// parts that follow it (metrics and health, offsets, schemas, drill stats)
// keep running while it drains and stop when it has, so /readyz and the
// checkpoints stay true to the end and the error returned is the
// replicator's.
func runReplicator(ctx context.Context, cfg *config.Config, sel []*config.Flow, r *replicate.Replicator, reg *prometheus.Registry, log *slog.Logger) error {
	srv, err := metrics.Listen(metrics.Options{Addr: cfg.HTTP.Listen, Registry: reg, Ready: r.Ready, Logger: log, Pprof: cfg.HTTP.Pprof})
	if err != nil {
		return err
	}
	var g rungroup.Group
	rctx, stopReplicator := context.WithCancel(ctx)
	g.Add(func() error { return r.Run(rctx) }, func(error) { stopReplicator() })
	g.Add(srv.Wait, func(error) { srv.Close() })

	// Drill results as metrics, when drills keep their reports where this
	// process can read them.
	if cfg.Drill.Reports != "" {
		names := make([]string, 0, len(sel))
		for _, f := range sel {
			names = append(names, f.Name)
		}
		exp, err := drillstats.New(drillstats.Options{
			Dir: cfg.Drill.Reports, Flows: names, Interval: cfg.Drill.RefreshInterval.D(),
			MaxAge: cfg.Drill.MaxAge.D(), Registerer: reg, Logger: log,
		})
		if err != nil {
			srv.Close()
			return err
		}
		dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.Add(func() error { exp.Run(dctx); return nil }, func(error) { cancel() })
	}
	// Checkpoints and group offset sync run alongside, per flow; Schema
	// Registry subjects follow too, for flows with schemas. Each starts
	// its own goroutines and hands back the stop that waits for them.
	starts := []func(context.Context) (func(), error){
		func(ctx context.Context) (func(), error) {
			return offsets.Start(ctx, cfg, r.Flows(), log, offsets.NewMetrics(reg))
		},
		func(ctx context.Context) (func(), error) {
			return schemas.Start(ctx, cfg, r.Flows(), log, schemas.NewMetrics(reg))
		},
	}
	var started []func()
	for _, start := range starts {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stop, err := start(fctx)
		if err != nil {
			cancel()
			for _, s := range started {
				s()
			}
			srv.Close()
			return err
		}
		started = append(started, func() { cancel(); stop() })
		g.Add(func() error { <-fctx.Done(); stop(); return nil }, func(error) { cancel() })
	}
	err = g.Run()
	log.Info("replicator stopped")
	return err
}

func newStatusCmd(g *globals) *cobra.Command {
	var flows []string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show replication progress per partition, read from the target's stored progress",
		Example: `  godwit status -c godwit.yaml
  godwit status -c godwit.yaml --flow 'primary->secondary' -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, sel, err := g.loadFlows(flows)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			out := struct {
				Flows []*replicate.FlowStatus `json:"flows"`
			}{}
			for _, f := range sel {
				st, err := replicate.Status(ctx, cfg, f)
				if err != nil {
					return err
				}
				out.Flows = append(out.Flows, st)
			}
			if g.json() {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			for _, f := range out.Flows {
				fmt.Fprintf(tw, "flow %s\n", f.Flow)
				if f.SourceError != "" {
					fmt.Fprintf(tw, "  source unreachable, end offsets as last observed: %s\n", f.SourceError)
				}
				if len(f.Partitions) == 0 {
					fmt.Fprintln(tw, "  no progress stored yet (has godwit replicate run for this flow?)")
					continue
				}
				fmt.Fprintln(tw, "  SOURCE TOPIC\tTARGET TOPIC\tPARTITION\tSOURCE END\tREPLICATED\tLAG")
				for _, p := range f.Partitions {
					fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\n", p.SourceTopic, p.TargetTopic, p.Partition, p.SourceEndOffset, p.ReplicatedOffset, p.LagRecords)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringArrayVar(&flows, "flow", nil, "flow to show (quoted: --flow 'A->B'); repeatable; default all enabled flows")
	return cmd
}
