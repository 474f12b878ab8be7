package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/config"
)

func init() { commands = append(commands, newConfigCmd) }

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a godwit config or convert a MirrorMaker 2 config",
		Example: `  godwit config check -c godwit.yaml
  godwit config from-mm2 connect-mirror-maker.properties > godwit.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("config needs a subcommand: check or from-mm2 (see godwit config --help)")
		},
	}
	cmd.AddCommand(newConfigCheckCmd(g), newConfigFromMM2Cmd(g))
	return cmd
}

func newConfigCheckCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Validate -c FILE and print the resolved config (defaults filled in, secrets redacted)",
		Example: `  godwit config check -c godwit.yaml
  godwit config check -c godwit.yaml -o json`,
		Long: `Validate -c FILE and print the resolved config: every default filled in
and secrets redacted, as YAML (or JSON with -o json). A problem is reported
on one line as FILE:LINE: key.path: what is wrong and what to do, with exit
code 2.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.loadConfig()
			if err != nil {
				return err
			}
			r := c.Redacted()
			if g.json() {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			out, err := yaml.MarshalWithOptions(r, yaml.IndentSequence(true))
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(g.stdout, "# %s is valid; resolved config with defaults:\n", c.Path()); err != nil {
				return err
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
}

func newConfigFromMM2Cmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "from-mm2 FILE",
		Short: "Convert a MirrorMaker 2 properties file to godwit YAML",
		Example: `  godwit config from-mm2 connect-mirror-maker.properties > godwit.yaml
  godwit config check -c godwit.yaml`,
		Long: `Convert a MirrorMaker 2 properties file (connect-mirror-maker.properties)
to the equivalent godwit YAML on stdout. Every MM2 key without a godwit
equivalent is listed on stderr as "unmapped MM2 key: KEY = VALUE" (secret
values redacted). Flows are emitted for each A->B pair the file mentions;
pairs without A->B.enabled = true get enabled: false, as MM2 does not run
them. With -o json, stdout is {"yaml": ..., "unmapped": [...]}.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conv, err := config.LoadMM2(args[0])
			if err != nil {
				return usageError{err}
			}
			if g.json() {
				unmapped := conv.Unmapped
				if unmapped == nil {
					unmapped = []config.MM2Key{}
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					YAML     string          `json:"yaml"`
					Unmapped []config.MM2Key `json:"unmapped"`
				}{string(conv.YAML), unmapped})
			}
			if _, err := g.stdout.Write(conv.YAML); err != nil {
				return err
			}
			for _, u := range conv.Unmapped {
				v := u.Value
				if strings.ContainsAny(v, "\n\r\t") {
					v = strconv.Quote(v) // keep one key per line
				}
				line := fmt.Sprintf("unmapped MM2 key: %s = %s (%s:%d)", u.Key, v, args[0], u.Line)
				if u.Reason != "" {
					line += ": " + u.Reason
				}
				fmt.Fprintln(g.stderr, line)
			}
			return nil
		},
	}
}
