package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as indented JSON (the -o json contract).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteText writes one table per flow: status, check, evidence, and the
// remedy under every check that did not pass.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	flow := "\x00"
	for _, c := range r.Checks {
		if c.Flow != flow {
			if flow != "\x00" {
				fmt.Fprintln(tw)
			}
			flow = c.Flow
			fmt.Fprintf(tw, "flow %s\n", c.Flow)
			fmt.Fprintln(tw, "  STATUS\tCHECK\tEVIDENCE")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Status, c.ID, oneLine(c.Evidence))
		if c.Status != Pass && c.Remedy != "" {
			fmt.Fprintf(tw, "  \t\t→ %s\n", oneLine(c.Remedy))
		}
	}
	fmt.Fprintf(tw, "\n%d passed, %d warnings, %d failed\n", r.Summary.Pass, r.Summary.Warn, r.Summary.Fail)
	return tw.Flush()
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
