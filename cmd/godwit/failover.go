package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/failback"
	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/journal"
)

func init() { commands = append(commands, newFailoverCmd) }

// envCrashAfter makes `godwit failover` exit with status 137 right after
// the named step is journaled, as if killed there (tests of resumption).
const envCrashAfter = "GODWIT_FAILOVER_CRASH_AFTER"

// envPauseAfter makes `godwit failover` stop right after the named step
// is journaled until a line (or EOF) arrives on stdin, so a test can run
// a second failover of the flow meanwhile (tests of the journal lock).
const envPauseAfter = "GODWIT_FAILOVER_PAUSE_AFTER"

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
stopped. One failover or failback of a flow runs at a time: a second run
fences the first (transactional id godwit-<A>-<B>-journal), which then fails
with exit status 1 before changing anything more. See docs/failover.md.`,
		Example: `  # rehearse: what would a failover do now?
  godwit failover -c godwit.yaml --flow 'primary->secondary' --dry-run

  # planned failover of the orders topics and the billing groups, JSON report
  godwit failover -c godwit.yaml --flow 'primary->secondary' --topics 'orders\..*' --groups 'billing-.*' -o json

  # the journal of the last failover
  godwit failover status -c godwit.yaml --flow 'primary->secondary'`,
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
			crash, pause := os.Getenv(envCrashAfter), os.Getenv(envPauseAfter)
			if crash != "" || pause != "" {
				stdin := bufio.NewReader(cmd.InOrStdin())
				o.AfterStep = func(name string) {
					switch name {
					case crash:
						fmt.Fprintf(g.stderr, "godwit: %s=%s: exiting after step %s\n", envCrashAfter, crash, name)
						os.Exit(137)
					case pause:
						fmt.Fprintf(g.stderr, "godwit: %s=%s: paused after step %s until a line on stdin\n", envPauseAfter, pause, name)
						_, _ = stdin.ReadString('\n')
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
	fl.StringVar(&flow, "flow", "", "flow to fail over (quoted: --flow 'A->B'); required")
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
		Use:   "status",
		Short: "Show a flow's state, its failed-over topics and the journal of its failovers and failbacks (read from the target)",
		Long: `Reads the flow's journal on its target cluster and shows the flow's state
(active, failing-over, failed-over, failing-back, restored), the failed-over
topics, and every failover and failback operation in order: its runs and
every step's start and end, and for a failback the tail recovered or
quarantined. -o json has the same, as the last failover's and the last
failback's reports plus every journal event.`,
		Example: `  godwit failover status -c godwit.yaml --flow 'primary->secondary'
  godwit failover status -c godwit.yaml --flow 'primary->secondary' -o json`,
		Args: cobra.NoArgs,
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
			fb, fbRep, err := failback.State(ctx, cfg, f)
			if err != nil {
				return err
			}
			state := journal.FlowStatus(st, fb)
			if g.json() {
				out := struct {
					Flow             string `json:"flow"`
					State            string `json:"state"`
					FailedOverTopics any    `json:"failed_over_topics"`
					LastFailover     any    `json:"last_failover"`
					LastFailback     any    `json:"last_failback"`
					Journal          any    `json:"journal"`
				}{f.Name, state, st.Topics, rep, fbRep, evs}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			return printFlowStatus(g.stdout, f, state, st, rep, fbRep, evs)
		},
	}
	cmd.Flags().StringVar(&flow, "flow", "", "flow (quoted: --flow 'A->B'); required")
	return cmd
}

// printFlowStatus tells the flow's story: its state, the failed-over
// topics, then every operation of the journal in the order it started,
// each with its runs' step events; the last failover and failback add
// what their reports know (mode, tail counts, reverse flow, waiting).
func printFlowStatus(w io.Writer, f *config.Flow, state string, st *journal.FlowState, rep *failover.Report, fbRep *failback.Report, evs []journal.Event) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "flow %s: %s\n", f.Name, state)
	switch state {
	case journal.StatusFailingOver:
		fmt.Fprintf(tw, "  the last failover is unfinished: if no godwit failover of %s is running, run it again to continue\n", f.Name)
	case journal.StatusFailingBack:
		if fbRep != nil && fbRep.Waiting != "" {
			fmt.Fprintf(tw, "  waiting: %s\n", fbRep.Waiting)
		} else {
			fmt.Fprintf(tw, "  the last failback is unfinished: if no godwit failback of %s is running, run it again to continue\n", f.Name)
		}
	}
	if len(st.Topics) == 0 {
		fmt.Fprintln(tw, "  no topic failed over")
	} else {
		fmt.Fprintln(tw, "  FAILED-OVER TOPIC\tTARGET TOPIC\tAT\tMODE\tOPERATION")
		for _, t := range st.FailedOverTopics() {
			ts := st.Topics[t]
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", t, ts.TargetTopic, ts.At.Format(time.RFC3339), ts.Mode, ts.Op)
		}
	}
	// Operations in the order their first event was written.
	var ops []string
	byOp := map[string][]journal.Event{}
	for _, e := range evs {
		if _, ok := byOp[e.Op]; !ok {
			ops = append(ops, e.Op)
		}
		byOp[e.Op] = append(byOp[e.Op], e)
	}
	if rep != nil && byOp[rep.Operation] == nil {
		ops = append(ops, rep.Operation)
	}
	if fbRep != nil && byOp[fbRep.Operation] == nil {
		ops = append(ops, fbRep.Operation)
	}
	if len(ops) == 0 {
		fmt.Fprintln(tw, "no failover journaled")
		return tw.Flush()
	}
	for _, op := range ops {
		opEvs := byOp[op]
		runs := map[string]bool{}
		finished := ""
		for _, e := range opEvs {
			runs[e.Run] = true
			if e.Phase == journal.PhaseFinish {
				finished = "finished " + e.At.Format(time.RFC3339)
			}
		}
		if finished == "" {
			finished = "unfinished"
		}
		started := ""
		if len(opEvs) > 0 {
			started = "started " + opEvs[0].At.Format(time.RFC3339) + ", "
		}
		if strings.HasPrefix(op, journal.FailbackOpPrefix) {
			policy, tail := failback.TailOf(op, fbRep, opEvs)
			fmt.Fprintf(tw, "failback %s (tail %s): %s%s, %d run(s)\n", op, policy, started, finished, len(runs))
			if tail != nil {
				what := "recovered into " + f.Target + "'s topics"
				if policy == failback.TailQuarantine {
					what = "quarantined into <topic>" + failback.QuarantineSuffix + " on " + f.Target
				}
				fmt.Fprintf(tw, "  tail: %d records %s (%d offsets planned), %d filtered (came from %s)\n", tail.Copied, what, tail.Planned, tail.Filtered, f.Target)
			}
			if fbRep != nil && op == fbRep.Operation {
				if fbRep.Reverse != nil {
					fmt.Fprintf(tw, "  reverse %s: lag %d records, %d copied, %d not copied back (came from %s)\n", fbRep.ReverseFlow, fbRep.Reverse.Lag, fbRep.Reverse.Copied, fbRep.Reverse.LoopFiltered, f.Source)
				}
				for _, gr := range fbRep.Groups {
					fmt.Fprintf(tw, "  group %s: %s\n", gr.Group, groupOutcome(gr.Committed, gr.Skipped, "committed on "+f.Source))
				}
				if len(fbRep.Restored) > 0 {
					fmt.Fprintf(tw, "  restored %s for: %s\n", f.Name, strings.Join(fbRep.Restored, ", "))
				}
			}
		} else {
			mode := ""
			if rep != nil && op == rep.Operation {
				mode = " (" + rep.Mode + ")"
			}
			fmt.Fprintf(tw, "failover %s%s: %s%s, %d run(s)\n", op, mode, started, finished, len(runs))
			if rep != nil && op == rep.Operation {
				fmt.Fprintf(tw, "  topics: %s; data at risk: %d records\n", strings.Join(rep.Topics, ", "), rep.RPO.Records)
				for _, gr := range rep.Groups {
					fmt.Fprintf(tw, "  group %s: %s\n", gr.Group, groupOutcome(gr.Committed, gr.Skipped, "committed on "+f.Target))
				}
				if rep.Cutover != nil {
					fmt.Fprintf(tw, "  cutover hook: exit %d in %d ms\n", rep.Cutover.ExitCode, rep.Cutover.DurationMs)
				}
			}
		}
		if len(opEvs) > 0 {
			fmt.Fprintln(tw, "  TIME\tRUN\tSTEP\tPHASE\tOK\tDURATION\tERROR")
		}
		for _, e := range opEvs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%v\t%s\t%s\n", e.At.Format("15:04:05.000"), e.Run, e.Step, e.Phase, e.OK, time.Duration(e.DurationMs)*time.Millisecond, e.Error)
		}
	}
	return tw.Flush()
}

func groupOutcome(committed bool, skipped, done string) string {
	if committed {
		return done
	}
	if skipped != "" {
		return "not committed: " + skipped
	}
	return "not committed"
}

func failoverFlow(g *globals, flow string) (*config.Config, *config.Flow, error) {
	if flow == "" {
		return nil, nil, usagef("--flow 'A->B' is required: a failover is deliberate")
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
		unplanned := rep.Mode == failover.Unplanned
		head := "  SOURCE TOPIC\tTARGET TOPIC\tPARTITION\tSOURCE END\tREPLICATED\tAT RISK"
		if unplanned {
			// The bound of each at-risk figure: what the source
			// acknowledged after its observation is not counted.
			head += "\tSOURCE END OBSERVED"
		}
		fmt.Fprintln(tw, head)
		for _, p := range rep.Partitions {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d", p.SourceTopic, p.TargetTopic, p.Partition, p.SourceEndOffset, p.ReplicatedOffset, p.AtRiskRecords)
			if unplanned {
				if p.ObservationAgeSeconds != nil {
					fmt.Fprintf(tw, "\t%.1f s before", *p.ObservationAgeSeconds)
				} else {
					fmt.Fprint(tw, "\tunknown (never observed)")
				}
			}
			fmt.Fprintln(tw)
		}
	}
	fmt.Fprintf(tw, "  data at risk: %d records, ~%d bytes (estimate), %.1f s\n", rep.RPO.Records, rep.RPO.Bytes, rep.RPO.Seconds)
	if at := rep.RPO.ObservedAt; at != nil && rep.Mode == failover.Unplanned {
		fmt.Fprintf(tw, "  source end offsets last observed %s (%.1f s before the failover started): data at risk misses only what the source acknowledged after that\n", at.UTC().Format(time.RFC3339), rep.RPO.ObservationAgeSeconds)
	}
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
