package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/schemas"
)

// schemaSyncOut is one flow's schema sync in `godwit sync plan|apply`.
type schemaSyncOut struct {
	*schemas.Plan
	Result *schemas.Result `json:"result,omitempty"`
}

// syncSchemas plans (and with apply, runs) one schema sync pass for f;
// nil when the flow has no schema sync.
func syncSchemas(ctx context.Context, cfg *config.Config, f *config.Flow, log *slog.Logger, apply bool) (*schemaSyncOut, error) {
	if !f.SchemasEnabled() {
		return nil, nil
	}
	src, err := schemas.FromConfig(cfg, f.Source)
	if err != nil {
		return nil, err
	}
	dst, err := schemas.FromConfig(cfg, f.Target)
	if err != nil {
		return nil, err
	}
	opts := schemas.Options{Flow: f, Source: src, Target: dst, Logger: log}
	if f.TranslatesIDs() && apply {
		ids, closeIDs, err := schemas.OpenIDMap(ctx, cfg, f, log)
		if err != nil {
			return nil, err
		}
		defer closeIDs()
		opts.IDs = ids
	}
	s := schemas.NewSyncer(opts)
	if !apply {
		p, _, err := s.Plan(ctx)
		if err != nil {
			return nil, err
		}
		return &schemaSyncOut{Plan: p}, nil
	}
	p, r, err := s.Pass(ctx)
	if err != nil {
		return nil, err
	}
	return &schemaSyncOut{Plan: p, Result: r}, nil
}

func printSchemaSync(w io.Writer, so *schemaSyncOut) {
	if so == nil {
		return
	}
	p := so.Plan
	fmt.Fprintf(w, "  schemas (%s): %d subjects, %d versions on the source\n", p.Mode, p.Subjects, p.Versions)
	acts, verb := p.Actions, "would"
	if so.Result != nil {
		acts, verb = so.Result.Applied, "did"
	}
	if len(acts) == 0 && len(p.Conflicts) == 0 {
		fmt.Fprintln(w, "    no changes")
	}
	for _, a := range acts {
		fmt.Fprintf(w, "    %s %s\n", verb, a)
	}
	for _, c := range p.Conflicts {
		fmt.Fprintf(w, "    error: %s\n", c.Error())
	}
	if so.Result != nil {
		for _, e := range so.Result.Errors {
			fmt.Fprintf(w, "    error: %s\n", e)
		}
	}
	for _, wn := range p.Warnings {
		fmt.Fprintf(w, "    warning: %s\n", wn)
	}
}
