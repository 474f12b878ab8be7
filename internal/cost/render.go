package cost

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

var layerTitle = map[string]string{
	LayerStandby:     "standby compute",
	LayerStorage:     "duplicate storage",
	LayerReplication: "replication & transfer",
	LayerOperations:  "operations",
}

// WriteJSON writes the report as indented JSON (the -o json contract).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report with one formula per line.
func (r *Report) WriteText(w io.Writer) error {
	in := r.Inputs
	var b strings.Builder
	fmt.Fprintf(&b, "godwit cost: %s, %s days, currency %s\n", strings.ReplaceAll(r.Route, "->", "→"), in.Days, r.Currency)
	fmt.Fprintf(&b, "  units:    %s\n", r.GBDefinition)
	fmt.Fprintf(&b, "  month:    %s\n", r.Month)
	fmt.Fprintf(&b, "  rounding: %s\n", r.Rounding)
	src := "embedded table " + r.Prices.Version
	if len(r.Prices.Overrides) > 0 {
		src += ", overridden by " + strings.Join(r.Prices.Overrides, ", ")
	}
	fmt.Fprintf(&b, "  prices:   %s\n", src)

	b.WriteString("\nbasis\n")
	for _, x := range r.Basis {
		fmt.Fprintf(&b, "  %s: %s\n", x.Name, x.Formula)
	}
	for _, o := range r.Options {
		fmt.Fprintf(&b, "\noption %s\n", o.Option)
		var parts []string
		for _, l := range o.Lines {
			title := layerTitle[l.Layer]
			fmt.Fprintf(&b, "  %-23s %s = %s\n", title+":", l.Formula, l.Amount)
			parts = append(parts, l.Amount.String())
		}
		fmt.Fprintf(&b, "  %-23s %s = %s\n", "total:", strings.Join(parts, " + "), o.Total)
	}

	if len(r.Options) > 1 {
		fmt.Fprintf(&b, "\ncomparison (USD for %s days)\n", in.Days)
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "  OPTION\tSTANDBY\tSTORAGE\tREPLICATION\tOPERATIONS\tTOTAL\t\n")
		for _, o := range r.Options {
			fmt.Fprintf(tw, "  %s\t", o.Option)
			for _, layer := range Layers {
				fmt.Fprintf(tw, "%s\t", o.Layers[layer])
			}
			fmt.Fprintf(tw, "%s\t\n", o.Total)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if len(r.Assumptions) > 0 {
		b.WriteString("\nassumed prices: illustrative placeholders, not verified list prices; override them with --prices FILE\n")
		for _, p := range r.Assumptions {
			what := p.Key
			if p.Item != "" {
				what += " " + p.Item
			}
			fmt.Fprintf(&b, "  %s (region %s): %s/%s; source: %s; as of %s\n", what, p.Region, price(p.Price.Rat()), p.Unit, p.Source, p.AsOf)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
