package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/failback"
)

func init() { commands = append(commands, newFailbackCmd) }

// envFailbackCrashAfter makes `godwit failback` exit with status 137 right
// after the named step is journaled (tests of resumption).
const envFailbackCrashAfter = "GODWIT_FAILBACK_CRASH_AFTER"

func newFailbackCmd(g *globals) *cobra.Command {
	var (
		flow, tail, groups     string
		dryRun, switchNow      bool
		timeout, sourceTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "failback",
		Short: "Bring a failed-over flow back to its source: recover the unreplicated tail, replicate B's writes back, move groups, restore A->B",
		Long: `After godwit failover of A->B, once A is reachable again:

1. tail: records acknowledged on A beyond the replicated offset at failover
   (never copied) are copied to B with provenance headers, exactly once
   (--tail recover, the default: into the flow's target topic), or into
   <topic>.godwit-unreplicated on B (--tail quarantine) for business
   reconciliation. The report counts them.
2. reverse: the records written on B during the outage are replicated back
   to A by a B->A flow run in this process (identical names; records that
   came from A are never copied back), until its lag is 0.
3. with --switch or --groups (producers and consumers stopped on B and are
   moving to A): wait for reverse lag 0, translate the groups' offsets
   exactly from B to A and commit them on A (groups with no active members),
   then restore A->B: the failed-over mark is cleared and the replicator
   continues from past the recovered tail.

Without --switch the command stops after step 2 (run it again with --switch
when ready). Every step is journaled on B and resumable; --dry-run shows
each step's plan. One failover or failback of a flow runs at a time: a
second run fences the first, which then fails before changing anything
more; a failback does not start while the flow's failover is unfinished.
Needs naming: identical. See docs/failover.md.`,
		Example: `  # what would a failback do?
  godwit failback -c godwit.yaml --flow 'primary->secondary' --dry-run

  # recover the tail and catch A up with B's writes, keep producers on B
  godwit failback -c godwit.yaml --flow 'primary->secondary'

  # producers and consumers stopped on B: move billing groups, restore the flow
  godwit failback -c godwit.yaml --flow 'primary->secondary' --groups 'billing-.*' -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, f, err := failoverFlow(g, flow)
			if err != nil {
				return err
			}
			if tail != failback.TailRecover && tail != failback.TailQuarantine {
				return usagef("--tail %q: use %s or %s", tail, failback.TailRecover, failback.TailQuarantine)
			}
			o := failback.Options{Config: cfg, Flow: f, Tail: tail, DryRun: dryRun, Switch: switchNow,
				Timeout: timeout, SourceTimeout: sourceTimeout, Logger: g.logger()}
			if o.Groups, err = fullMatch("--groups", groups); err != nil {
				return err
			}
			if step := os.Getenv(envFailbackCrashAfter); step != "" {
				o.AfterStep = func(name string) {
					if name == step {
						fmt.Fprintf(g.stderr, "godwit: %s=%s: exiting after step %s\n", envFailbackCrashAfter, step, name)
						os.Exit(137)
					}
				}
			}
			rep, err := failback.Run(cmd.Context(), o)
			if rep != nil {
				if perr := printFailback(g, rep); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&flow, "flow", "", "the failed-over flow (quoted: --flow 'A->B'); required")
	fl.StringVar(&tail, "tail", failback.TailRecover, "A's unreplicated tail: recover (copy to B's topic) or quarantine (to <topic>"+failback.QuarantineSuffix+" on B)")
	fl.BoolVar(&switchNow, "switch", false, "producers and consumers are switching back to A: move groups and restore the flow")
	fl.StringVar(&groups, "groups", "", "regex (full match) of consumer groups to move back (implies --switch); default the flow's groups filters")
	fl.BoolVar(&dryRun, "dry-run", false, "show each step's plan; change nothing")
	fl.DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the reverse flow's lag to reach 0")
	fl.DurationVar(&sourceTimeout, "source-timeout", 10*time.Second, "how long each cluster may take to answer")
	return cmd
}

func printFailback(g *globals, rep *failback.Report) error {
	if g.json() {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	title := "failback"
	if rep.DryRun {
		title = "failback (dry run: nothing changed)"
	}
	fmt.Fprintf(tw, "%s of %s (reverse flow %s, tail %s), operation %s\n", title, rep.Flow, rep.ReverseFlow, rep.Tail, rep.Operation)
	if len(rep.TailParts) > 0 {
		fmt.Fprintln(tw, "  TOPIC\tPARTITION\tTAIL FROM\tTAIL END\tCOPIED TO\tNEXT\tCOPIED\tFILTERED")
		for _, p := range rep.TailParts {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%s\t%d\t%d\t%d\n", p.Topic, p.Partition, p.From, p.End, p.To, p.Next, p.Copied, p.Filtered)
		}
	}
	fmt.Fprintf(tw, "  tail: %d offsets planned, %d records copied, %d filtered (came from the target)\n", rep.TailRecords.Planned, rep.TailRecords.Copied, rep.TailRecords.Filtered)
	if rep.Reverse != nil {
		fmt.Fprintf(tw, "  reverse %s: lag %d records, %d copied, %d not copied back (came from %s)\n", rep.ReverseFlow, rep.Reverse.Lag, rep.Reverse.Copied, rep.Reverse.LoopFiltered, strings.Split(rep.Flow, "->")[0])
	}
	for _, gr := range rep.Groups {
		what := "committed on the source"
		if !gr.Committed {
			what = "not committed"
			if gr.Skipped != "" {
				what += ": " + gr.Skipped
			}
		}
		var replay int64
		for _, p := range gr.Partitions {
			replay += p.Replay
		}
		fmt.Fprintf(tw, "  group %s (%d partitions, replay %d): %s\n", gr.Group, len(gr.Partitions), replay, what)
	}
	if len(rep.Restored) > 0 {
		fmt.Fprintf(tw, "  restored %s for: %v\n", rep.Flow, rep.Restored)
	}
	for _, s := range rep.Steps {
		fmt.Fprintf(tw, "  step %s\trun %s\t%s\t%d ms\tok=%v\t%s\n", s.Name, s.Run, s.StartedAt.Format("15:04:05.000"), s.DurationMs, s.OK, s.Error)
	}
	if rep.Waiting != "" {
		fmt.Fprintf(tw, "  waiting: %s\n", rep.Waiting)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(tw, "  note: %s\n", n)
	}
	if rep.FinishedAt != nil {
		fmt.Fprintf(tw, "finished %s\n", rep.FinishedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}
