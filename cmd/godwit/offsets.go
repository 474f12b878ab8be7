package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/offsets"
)

func init() { commands = append(commands, newOffsetsCmd) }

func newOffsetsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "offsets",
		Short: "Translate consumer-group offsets exactly between clusters; show checkpoint state",
		Long: `Consumer-group offsets translate exactly through the offset map godwit writes on the
target with the data: a group resumes on the other cluster after the last record it
processed, with no replay and no skip. godwit replicate writes checkpoints
(<source>.checkpoints.internal, MirrorMaker 2's format) and commits translated offsets
to groups that are idle on the target; these commands read the same state.`,
		Example: `  # where would group billing resume on the target? (works with the source down)
  godwit offsets translate -c godwit.yaml --flow 'primary->secondary' --group billing -o json

  # every group's checkpoint age and the partitions not yet translatable
  godwit offsets status -c godwit.yaml`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newOffsetsTranslateCmd(g), newOffsetsStatusCmd(g))
	return cmd
}

func newOffsetsTranslateCmd(g *globals) *cobra.Command {
	var flow, group string
	cmd := &cobra.Command{
		Use:   "translate",
		Short: "Translate a group's source offsets to the flow's target (works with only the target reachable)",
		Example: `  godwit offsets translate -c godwit.yaml --flow 'primary->secondary' --group billing
  godwit offsets translate -c godwit.yaml --flow 'primary->secondary' --group billing -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if flow == "" || group == "" {
				return usagef("--flow and --group are required")
			}
			cfg, sel, err := g.loadFlows([]string{flow})
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			tr, err := offsets.TranslateGroup(ctx, cfg, sel[0], group)
			if err != nil {
				return err
			}
			if g.json() {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false) // "A->B", not "A-\u003eB"
				return enc.Encode(tr)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "flow %s, group %s (offsets from the %s)\n", tr.Flow, tr.Group, tr.OffsetsFrom)
			if tr.SourceError != "" {
				fmt.Fprintf(tw, "  source unreachable, translating the last checkpoints: %s\n", tr.SourceError)
			}
			if len(tr.Partitions) == 0 && len(tr.NotTranslatable) == 0 {
				fmt.Fprintln(tw, "  the group has no committed offsets")
			}
			if len(tr.Partitions) > 0 {
				fmt.Fprintln(tw, "  SOURCE TOPIC\tTARGET TOPIC\tPARTITION\tSOURCE OFFSET\tTARGET OFFSET\tUNREPLICATED")
				for _, p := range tr.Partitions {
					un := fmt.Sprint(p.Unreplicated)
					if p.UnreplicatedUpperBound {
						un = "<= " + un
					}
					fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%s\n", p.SourceTopic, p.TargetTopic, p.Partition, p.SourceOffset, p.TargetOffset, un)
				}
			}
			for _, u := range tr.NotTranslatable {
				fmt.Fprintf(tw, "  not translatable: %s[%d] at %d: %s\n", u.SourceTopic, u.Partition, u.SourceOffset, u.Reason)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&flow, "flow", "", "flow, quoted: --flow 'SOURCE->TARGET'")
	cmd.Flags().StringVar(&group, "group", "", "consumer group")
	return cmd
}

func newOffsetsStatusCmd(g *globals) *cobra.Command {
	var flows []string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List groups, their last checkpoint age, and partitions not yet translatable",
		Example: `  godwit offsets status -c godwit.yaml
  godwit offsets status -c godwit.yaml --flow 'primary->secondary' -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, sel, err := g.loadFlows(flows)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			out := struct {
				Flows []*offsets.FlowStatus `json:"flows"`
			}{}
			for _, f := range sel {
				st, err := offsets.Status(ctx, cfg, f, time.Now())
				if err != nil {
					return err
				}
				out.Flows = append(out.Flows, st)
			}
			if g.json() {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false) // "A->B", not "A-\u003eB"
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			for _, f := range out.Flows {
				fmt.Fprintf(tw, "flow %s (checkpoints in %s on the target)\n", f.Flow, f.CheckpointsTopic)
				if f.SourceError != "" {
					fmt.Fprintf(tw, "  source unreachable, showing stored checkpoints only: %s\n", f.SourceError)
				}
				if len(f.Groups) == 0 {
					fmt.Fprintln(tw, "  no groups")
					continue
				}
				fmt.Fprintln(tw, "  GROUP\tCHECKPOINTED PARTITIONS\tLAST CHECKPOINT AGE\tUNREPLICATED\tNOT TRANSLATABLE")
				for _, gs := range f.Groups {
					age := "never"
					if gs.CheckpointAgeSeconds != nil {
						age = (time.Duration(*gs.CheckpointAgeSeconds * float64(time.Second))).Round(100 * time.Millisecond).String()
					}
					fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%d\n", gs.Group, gs.CheckpointedPartitions, age, gs.UnreplicatedRecords, len(gs.NotTranslatable))
				}
				for _, gs := range f.Groups {
					for _, u := range gs.NotTranslatable {
						fmt.Fprintf(tw, "  %s: %s[%d] at %d: %s\n", gs.Group, u.SourceTopic, u.Partition, u.SourceOffset, u.Reason)
					}
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringArrayVar(&flows, "flow", nil, "flow to show (quoted: --flow 'A->B'); repeatable; default all enabled flows")
	return cmd
}
