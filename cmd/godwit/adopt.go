package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/adopt"
	"github.com/godwit/godwit/internal/cluster"
)

func init() { commands = append(commands, newAdoptCmd) }

func newAdoptCmd(g *globals) *cobra.Command {
	var (
		flow, syncs, scan string
		dryRun            bool
	)
	cmd := &cobra.Command{
		Use:   "adopt-mm2",
		Short: "Take a flow over from a stopped MirrorMaker 2: continue where MM2 stopped, with no gap and no re-copy",
		Long: `Reads MirrorMaker 2's offset syncs (mm2-offset-syncs.<target>.internal, on the
source by default, on the target with offset-syncs.topic.location=target) and
matches the remote topics' records against the source from each partition's
last sync (--scan all: from the oldest sync still kept), to find per partition
the first source record MM2 had not copied. It counts the second copies MM2's
at-least-once delivery left in what it matched, and writes, in one
transaction on the target, the flow's starting progress, the offset map below
the takeover point (MM2's syncs and the matched records) and an adoption
record per partition. godwit replicate then continues from there; its
checkpoint loop keeps MM2's <source>.checkpoints.internal monotonic and
translates the groups MM2 checkpointed.

Stop every MirrorMaker 2 instance of the flow first (adoption refuses if a
remote topic grows while it reads). The flow's cluster aliases must be MM2's,
with naming: prefixed and separator "." (what godwit config from-mm2 writes).
A flow godwit already ran is refused. See docs/mm2.md.`,
		Example: `  # what would be adopted, nothing written
  godwit adopt-mm2 -c godwit.yaml --flow 'west->east' --dry-run

  # adopt, counting every duplicate MM2 left since its oldest kept sync
  godwit adopt-mm2 -c godwit.yaml --flow 'west->east' --scan all -o json
  godwit replicate -c godwit.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if flow == "" {
				return usagef("--flow 'A->B' is required")
			}
			if syncs != adopt.SyncsAuto && syncs != adopt.SyncsSource && syncs != adopt.SyncsTarget {
				return usagef("--offset-syncs %q: want auto, source or target", syncs)
			}
			if scan != adopt.ScanTail && scan != adopt.ScanAll {
				return usagef("--scan %q: want tail or all", scan)
			}
			cfg, sel, err := g.loadFlows([]string{flow})
			if err != nil {
				return err
			}
			f := sel[0]
			src, err := cluster.New(cfg, f.Source)
			if err != nil {
				return err
			}
			dst, err := cluster.New(cfg, f.Target)
			if err != nil {
				return err
			}
			rep, err := adopt.Run(cmd.Context(), adopt.Options{Flow: f, Source: src, Target: dst, Logger: g.logger(), Syncs: syncs, Scan: scan, DryRun: dryRun})
			if err != nil {
				return err
			}
			return printAdoption(g, rep)
		},
	}
	cmd.Flags().StringVar(&flow, "flow", "", "the flow to adopt, quoted: --flow 'A->B'")
	cmd.Flags().StringVar(&syncs, "offset-syncs", adopt.SyncsAuto, "where MM2's offset-syncs topic is: auto, source (MM2's default) or target")
	cmd.Flags().StringVar(&scan, "scan", adopt.ScanTail, "what to match against the source: tail (from each partition's last offset sync) or all (from the oldest kept sync: counts every duplicate since)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be adopted; write nothing")
	return cmd
}

func printAdoption(g *globals, rep *adopt.Report) error {
	if g.json() {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	title := "adopted from MirrorMaker 2"
	if rep.DryRun {
		title = "adoption (dry run: nothing written)"
	}
	fmt.Fprintf(g.stdout, "%s: flow %s, offset syncs %s on %s, scan %s\n", title, rep.Flow, rep.SyncsTopic, rep.SyncsOn, rep.Scan)
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCONTINUES AT\tTARGET END\tMATCHED\tDUPLICATES\tNOT YET COPIED\tNOTE")
	for _, p := range rep.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", p.Topic, p.Partition, p.Next, p.TargetEnd, p.Scanned, p.Duplicates, p.Behind, p.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "matched %d target records: %d are second copies MM2 wrote (at-least-once); %d source records MM2 had not copied, godwit copies them\n",
		rep.Scanned, rep.Duplicates, rep.Behind)
	ahead := 0
	for _, c := range rep.Checkpoints {
		if c.Godwit > c.Downstream {
			ahead++
		}
	}
	fmt.Fprintf(g.stdout, "MM2 checkpoints of adopted partitions: %d (godwit translates %d of them past MM2's downstream offset; it never writes a checkpoint below MM2's)\n", len(rep.Checkpoints), ahead)
	return nil
}
