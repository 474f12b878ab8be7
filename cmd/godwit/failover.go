package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/failover"
)

func init() { commands = append(commands, newFailoverCmd) }

// envCrashAfter makes `godwit failover` exit with status 137 right after
// the named step is journaled, as if killed there (tests of resumption).
const envCrashAfter = "GODWIT_FAILOVER_CRASH_AFTER"

func newFailoverCmd(g *globals) *cobra.Command {
	var (
		flow, topics, groups, execCmd string
		dryRun                        bool
		timeout, sourceTimeout        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Fail a flow's topics and consumer groups over to its target cluster (planned or unplanned), journaled and resumable",
		Long: `Makes the flow's target cluster the primary for the selected topics and groups.

Planned (the source answers within --source-timeout): waits until everything
is copied (lag 0, bounded by --timeout), translates the groups' offsets one
last time, marks the topics failed over (the replicator stops writing them),
fences running replicators, commits the translated offsets on the target for
groups with no active members there, and runs the cutover hook.

Unplanned (the source does not answer): proceeds from what the target holds
(stored progress and checkpoints) and reports the data at risk per partition.

Every step is journaled on the target (godwit.<A>-<B>.journal.internal): run
the same command again after an interruption and it continues where it
stopped. See docs/failover.md.`,
		Example: `  # rehearse: what would a failover do now?
  godwit failover -c godwit.yaml --flow primary->secondary --dry-run

  # planned failover of the orders topics and the billing groups, JSON report
  godwit failover -c godwit.yaml --flow primary->secondary --topics 'orders\..*' --groups 'billing-.*' -o json

  # the journal of the last failover
  godwit failover status -c godwit.yaml --flow primary->secondary`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, f, err := failoverFlow(g, flow)
			if err != nil {
				return err
			}
			o := failover.Options{Config: cfg, Flow: f, DryRun: dryRun, Timeout: timeout, SourceTimeout: sourceTimeout, Exec: execCmd, Logger: g.logger()}
			if o.Topics, err = fullMatch("--topics", topics); err != nil {
				return err
			}
			if o.Groups, err = fullMatch("--groups", groups); err != nil {
				return err
			}
			if step := os.Getenv(envCrashAfter); step != "" {
				o.AfterStep = func(name string) {
					if name == step {
						fmt.Fprintf(g.stderr, "godwit: %s=%s: exiting after step %s\n", envCrashAfter, step, name)
						os.Exit(137)
					}
				}
			}
			rep, err := failover.Run(cmd.Context(), o)
			if rep != nil {
				if perr := printFailover(g, rep); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&flow, "flow", "", "flow to fail over (A->B); required")
	fl.StringVar(&topics, "topics", "", "regex (full match) of source topics to fail over; default every topic the flow replicates")
	fl.StringVar(&groups, "groups", "", "regex (full match) of consumer groups to move; default the flow's groups filters")
	fl.BoolVar(&dryRun, "dry-run", false, "report lag, data at risk and group offsets; change nothing")
	fl.DurationVar(&timeout, "timeout", 5*time.Minute, "planned failover: how long to wait for lag 0")
	fl.DurationVar(&sourceTimeout, "source-timeout", 10*time.Second, "how long the source may take to answer before the failover is unplanned")
	fl.StringVar(&execCmd, "exec", "", "cutover hook command (overrides cutover.command)")
	cmd.AddCommand(newFailoverStatusCmd(g))
	return cmd
}

func newFailoverStatusCmd(g *globals) *cobra.Command {
	var flow string
	cmd := &cobra.Command{
		Use:     "status",
		Short:   "Show a flow's failed-over topics and the journal of its last failover (read from the target)",
		Example: `  godwit failover status -c godwit.yaml --flow primary->secondary -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, f, err := failoverFlow(g, flow)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			st, rep, evs, err := failover.State(ctx, cfg, f)
			if err != nil {
				return err
			}
			if g.json() {
				out := struct {
					Flow             string      `json:"flow"`
					FailedOverTopics any         `json:"failed_over_topics"`
					LastFailover     any         `json:"last_failover"`
					Journal          interface{} `json:"journal"`
				}{f.Name, st.Topics, rep, evs}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "flow %s\n", f.Name)
			if len(st.Topics) == 0 {
				fmt.Fprintln(tw, "  no topic failed over")
			} else {
				fmt.Fprintln(tw, "  FAILED-OVER TOPIC\tTARGET TOPIC\tAT\tMODE\tOPERATION")
				for _, t := range st.FailedOverTopics() {
					ts := st.Topics[t]
					fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", t, ts.TargetTopic, ts.At.Format(time.RFC3339), ts.Mode, ts.Op)
				}
			}
			if rep == nil {
				fmt.Fprintln(tw, "  no failover journaled")
				return tw.Flush()
			}
			state := "in progress (interrupted? run godwit failover again to continue)"
			if rep.FinishedAt != nil {
				state = "finished " + rep.FinishedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "last failover %s (%s), started %s, %s\n", rep.Operation, rep.Mode, rep.StartedAt.Format(time.RFC3339), state)
			fmt.Fprintln(tw, "  TIME\tRUN\tSTEP\tPHASE\tOK\tDURATION\tERROR")
			for _, e := range evs {
				if e.Op != rep.Operation {
					continue
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%v\t%s\t%s\n", e.At.Format("15:04:05.000"), e.Run, e.Step, e.Phase, e.OK, time.Duration(e.DurationMs)*time.Millisecond, e.Error)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&flow, "flow", "", "flow (A->B); required")
	return cmd
}

func failoverFlow(g *globals, flow string) (*config.Config, *config.Flow, error) {
	if flow == "" {
		return nil, nil, usagef("--flow A->B is required: a failover is deliberate")
	}
	cfg, sel, err := g.loadFlows([]string{flow})
	if err != nil {
		return nil, nil, err
	}
	return cfg, sel[0], nil
}

func fullMatch(flag, expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	if _, err := regexp.Compile(expr); err != nil {
		return nil, usagef("%s %q: %v", flag, expr, err)
	}
	return regexp.MustCompile(`^(?:` + expr + `)$`), nil
}

func printFailover(g *globals, rep *failover.Report) error {
	if g.json() {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	title := "failover"
	if rep.DryRun {
		title = "failover (dry run: nothing changed)"
	}
	fmt.Fprintf(tw, "%s of %s: mode %s, operation %s\n", title, rep.Flow, rep.Mode, rep.Operation)
	if len(rep.Partitions) > 0 {
		fmt.Fprintln(tw, "  SOURCE TOPIC\tTARGET TOPIC\tPARTITION\tSOURCE END\tREPLICATED\tAT RISK")
		for _, p := range rep.Partitions {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\n", p.SourceTopic, p.TargetTopic, p.Partition, p.SourceEndOffset, p.ReplicatedOffset, p.AtRiskRecords)
		}
	}
	fmt.Fprintf(tw, "  data at risk: %d records, ~%d bytes (estimate), %.1f s\n", rep.RPO.Records, rep.RPO.Bytes, rep.RPO.Seconds)
	for _, gr := range rep.Groups {
		what := "committed on the target"
		if !gr.Committed {
			what = "not committed"
			if gr.Skipped != "" {
				what += ": " + gr.Skipped
			}
		}
		fmt.Fprintf(tw, "  group %s (%d partitions, offsets from %s): %s\n", gr.Group, len(gr.Partitions), gr.OffsetsFrom, what)
	}
	if rep.Cutover != nil {
		fmt.Fprintf(tw, "  cutover hook: exit %d in %d ms\n", rep.Cutover.ExitCode, rep.Cutover.DurationMs)
	}
	for _, s := range rep.Steps {
		fmt.Fprintf(tw, "  step %s\trun %s\t%s\t%d ms\tok=%v\t%s\n", s.Name, s.Run, s.StartedAt.Format("15:04:05.000"), s.DurationMs, s.OK, s.Error)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(tw, "  note: %s\n", n)
	}
	if rep.FinishedAt != nil {
		fmt.Fprintf(tw, "finished %s\n", rep.FinishedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}
