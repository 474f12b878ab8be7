package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/metasync"
)

func init() { commands = append(commands, newSyncCmd) }

func newSyncCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Show or apply metadata sync: target topics, partitions, configs, ACLs and schemas",
		Example: `  godwit sync plan -c godwit.yaml
  godwit sync apply -c godwit.yaml --flow 'primary->secondary'`,
		Long: `Metadata sync makes the target ready to take production traffic: it creates
the flow's target topics with the source's partition counts and configs, adds
partitions, follows config changes and copies topic and group ACLs; for flows
with schemas, the target's Schema Registry gets the source's subject versions
(docs/schemas.md). The replicator runs it every refresh_interval; these
commands run one pass.`,
	}
	cmd.AddCommand(newSyncPassCmd(g, false), newSyncPassCmd(g, true))
	return cmd
}

func newSyncPassCmd(g *globals, apply bool) *cobra.Command {
	var flows []string
	c := &cobra.Command{
		Use:   "plan",
		Short: "Print what metadata sync would create or change, changing nothing",
		Example: `  # what would change on the target (plan), then change it (apply)
  godwit sync plan -c godwit.yaml
  godwit sync apply -c godwit.yaml --flow 'primary->secondary' -o json`,
		Long: `Prints, per flow, the topics, partitions, configs and ACLs a sync pass would
create or change on the target, with the reason for each and any warnings
or errors (topics that cannot be replicated). Changes nothing. Exits 0 once
the plan is computed, 1 if a cluster cannot be read.`,
		Args: cobra.NoArgs,
	}
	if apply {
		c.Use = "apply"
		c.Short = "Run one metadata sync pass and exit"
		c.Long = `Runs one metadata sync pass per flow: creates missing target topics, adds
partitions, applies config changes and creates/deletes ACLs, then prints what
it did. Exits 0 when everything was applied, 1 if anything failed (each
error names the topic or ACL and the reason; other changes still apply).`
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, sel, err := g.loadFlows(flows)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
		defer cancel()
		log := g.logger()
		m := metasync.NewMetrics(prometheus.NewRegistry())
		type flowOut struct {
			*metasync.Plan
			Result *metasync.Result `json:"result,omitempty"`
			// Schemas is the flow's Schema Registry sync (flows with
			// schemas enabled).
			Schemas *schemaSyncOut `json:"schemas,omitempty"`
		}
		var out struct {
			Flows []flowOut `json:"flows"`
		}
		failed := 0
		for _, f := range sel {
			p, r, err := syncFlow(ctx, cfg, f, log, m, apply)
			if err != nil {
				return err
			}
			so, err := syncSchemas(ctx, cfg, f, log, apply)
			if err != nil {
				return err
			}
			out.Flows = append(out.Flows, flowOut{Plan: p, Result: r, Schemas: so})
			if r != nil {
				failed += len(r.Errors)
			}
			if so != nil && so.Result != nil {
				failed += len(so.Result.Errors) + len(so.Plan.Conflicts)
			}
		}
		if g.json() {
			enc := json.NewEncoder(g.stdout)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(out); err != nil {
				return err
			}
		} else {
			for _, fo := range out.Flows {
				printSync(g.stdout, fo.Plan, fo.Result)
				printSchemaSync(g.stdout, fo.Schemas)
			}
		}
		if failed > 0 {
			return fmt.Errorf("sync apply: %d error(s); see above", failed)
		}
		return nil
	}
	c.Flags().StringArrayVar(&flows, "flow", nil, "flow (quoted: --flow 'A->B'); repeatable; default all enabled flows")
	return c
}

func syncFlow(ctx context.Context, cfg *config.Config, f *config.Flow, sl *slog.Logger, m *metasync.Metrics, apply bool) (*metasync.Plan, *metasync.Result, error) {
	src, err := cluster.New(cfg, f.Source)
	if err != nil {
		return nil, nil, err
	}
	dst, err := cluster.New(cfg, f.Target)
	if err != nil {
		return nil, nil, err
	}
	scl, err := src.Client(f.Name+"-sync-source", sl, kgo.RetryTimeout(30*time.Second))
	if err != nil {
		return nil, nil, err
	}
	defer scl.Close()
	dcl, err := dst.Client(f.Name+"-sync-target", sl, kgo.RetryTimeout(30*time.Second))
	if err != nil {
		return nil, nil, err
	}
	defer dcl.Close()
	s := metasync.New(f, scl, dcl, sl, m)
	topics, err := s.SourceTopics(ctx)
	if err != nil {
		return nil, nil, cluster.Explain(src, err)
	}
	p, err := s.Plan(ctx, topics)
	if err != nil {
		return nil, nil, err
	}
	if !apply {
		return p, nil, nil
	}
	r, err := s.Apply(ctx, p)
	return p, r, err
}

func printSync(w io.Writer, p *metasync.Plan, r *metasync.Result) {
	fmt.Fprintf(w, "flow %s (%d topics)\n", p.Flow, len(p.Topics))
	acts := p.Actions
	verb := "would"
	if r != nil {
		acts, verb = r.Applied, "did"
	}
	if len(acts) == 0 {
		fmt.Fprintln(w, "  no changes")
	}
	for _, a := range acts {
		fmt.Fprintf(w, "  %s %s: %s (%s)\n", verb, strings.ReplaceAll(a.Kind, "_", " "), describeAction(a), a.Reason)
	}
	warns, errs := p.Warnings, p.Errors
	if r != nil {
		warns, errs = r.Warnings, r.Errors
	}
	for _, i := range warns {
		fmt.Fprintf(w, "  warning: %s\n", i.Message)
	}
	for _, i := range errs {
		fmt.Fprintf(w, "  error: %s\n", i.Message)
	}
}

func describeAction(a metasync.Action) string {
	switch a.Kind {
	case metasync.KindCreateTopic:
		return fmt.Sprintf("%s with %d partitions, %d configs", a.TargetTopic, a.Partitions, len(a.Configs))
	case metasync.KindAddPartitions:
		return fmt.Sprintf("%s %d -> %d partitions", a.TargetTopic, a.From, a.Partitions)
	case metasync.KindAlterConfig:
		if a.Value == nil {
			return fmt.Sprintf("%s reset %s to the target default", a.TargetTopic, a.Key)
		}
		return fmt.Sprintf("%s set %s=%s", a.TargetTopic, a.Key, *a.Value)
	default:
		if a.ACL != nil {
			return a.ACL.String()
		}
		return ""
	}
}
