package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "# bash completion V2 for godwit",
		"zsh":  "#compdef godwit",
		"fish": "# fish completion for godwit",
	} {
		var out, errb bytes.Buffer
		if code := runContext(context.Background(), []string{"completion", shell}, &out, &errb); code != exitOK {
			t.Fatalf("completion %s: exit %d: %s", shell, code, errb.String())
		}
		if !strings.HasPrefix(out.String(), want) || !strings.Contains(out.String(), "godwit") {
			t.Errorf("completion %s: output starts %q", shell, out.String()[:min(80, out.Len())])
		}
	}
	for _, args := range [][]string{{"completion"}, {"completion", "powershell"}, {"completion", "bash", "zsh"}} {
		var out, errb bytes.Buffer
		if code := runContext(context.Background(), args, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errb.String())
		}
	}
}

// TestEveryCommandHasExample: every command's --help shows a worked
// example, and every godwit invocation in an example names real commands
// and flags.
func TestEveryCommandHasExample(t *testing.T) {
	g := &globals{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	root := newRootCmd(g)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Name() == "help" || c.Hidden {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no Example: add a worked example to its cobra.Command", c.CommandPath())
			return
		}
		for _, line := range strings.Split(c.Example, "\n") {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "godwit ") {
				continue
			}
			for _, cut := range []string{" >", " &", " |", " #"} {
				if i := strings.Index(line, cut); i >= 0 {
					line = line[:i]
				}
			}
			args := strings.Fields(line)[1:]
			found, rest, err := newRootCmd(g).Find(args)
			if err != nil {
				t.Errorf("%s example %q: %v", c.CommandPath(), line, err)
				continue
			}
			if err := found.ParseFlags(rest); err != nil {
				t.Errorf("%s example %q: %v", c.CommandPath(), line, err)
			}
		}
	}
	walk(root)
}
