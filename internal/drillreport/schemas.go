package drillreport

import (
	"fmt"
	"html/template"
	"strings"
)

// SchemaReport is the drill's Schema Registry check (flows with schemas):
// the workload's values were written in the Confluent wire format with a
// schema registered on the source's registry, and every record the
// drill's consumers read on the target was decoded through the target's
// registry (its schema ID resolved there, the Avro payload decoded with
// that schema and compared with what was produced).
type SchemaReport struct {
	// Mode is the flow's schemas.mode.
	Mode string `json:"mode"`
	// Registry is the target registry's URL.
	Registry string `json:"registry"`
	// Subjects are the workload's subjects on the source, with the
	// schema ID each was written with.
	Subjects map[string]int `json:"subjects"`
	// Decoded and Undecodable count the records read on the target.
	Decoded     int64 `json:"decoded"`
	Undecodable int64 `json:"undecodable"`
	// Errors are the first distinct reasons records could not be decoded.
	Errors []string `json:"errors"`
}

// Pass is true when records were read on the target and all decoded.
func (r *SchemaReport) Pass() bool { return r != nil && r.Decoded > 0 && r.Undecodable == 0 }

// Summary is one line for the objective and the Markdown report.
func (r *SchemaReport) Summary() string {
	s := fmt.Sprintf("%d records read on the target decoded through its schema registry (%s, %s), %d could not be decoded", r.Decoded, r.Registry, r.Mode, r.Undecodable)
	if len(r.Errors) > 0 {
		s += ": " + strings.Join(r.Errors, "; ")
	}
	return s
}

// Markdown renders the section ("" without the check).
func (r *SchemaReport) Markdown() string {
	if r == nil {
		return ""
	}
	return "\n## Schema Registry\n\n" + r.Summary() + ".\n"
}

// HTMLSection renders the section of the HTML report ("" without the check).
func (r *SchemaReport) HTMLSection() template.HTML {
	if r == nil {
		return ""
	}
	status := "pass"
	if !r.Pass() {
		status = "fail"
	}
	return template.HTML(`<h2>Schema Registry</h2><p class="` + status + `">` + template.HTMLEscapeString(r.Summary()) + `.</p>`)
}
