package main

import (
	"io"
	"regexp"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpQuotesFlows: every example, help text and flag description that
// shows a flow name after --flow quotes it. Unquoted, bash reads
// "--flow a->b" as "--flow a-" plus a redirection into a file named b.
func TestHelpQuotesFlows(t *testing.T) {
	unquoted := regexp.MustCompile(`--flow [^'\s]*->`)
	g := &globals{stdout: io.Discard, stderr: io.Discard}
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for what, text := range map[string]string{"example": c.Example, "long": c.Long, "short": c.Short} {
			if m := unquoted.FindString(text); m != "" {
				t.Errorf("godwit %s: %s has an unquoted flow: %q", c.CommandPath(), what, m)
			}
			n++
		}
		if m := unquoted.FindString(c.Flags().FlagUsages()); m != "" {
			t.Errorf("godwit %s: a flag's usage has an unquoted flow: %q", c.CommandPath(), m)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(g))
	if n < 30 {
		t.Fatalf("only %d help texts checked; the command tree was not walked", n)
	}
}
