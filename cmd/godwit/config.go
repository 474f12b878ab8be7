package main

import (
	"encoding/json"
	"fmt"

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
  read -rs GODWIT_WEST_SASL_PASSWORD && export GODWIT_WEST_SASL_PASSWORD   # as the conversion says
  godwit config check -c godwit.yaml`,
		Long: `Convert a MirrorMaker 2 properties file (connect-mirror-maker.properties)
to the equivalent godwit YAML on stdout, with MM2's precedence (A->B.key
over key for flow settings, A.key over key for connection settings).

Connection security is converted first: security.protocol, sasl.mechanism
(PLAIN, SCRAM-SHA-256/512, AWS_MSK_IAM), sasl.jaas.config and the ssl.*
trust and key stores become each cluster's tls and sasl blocks. Passwords
are never copied: the YAML names an environment variable (password_env)
and stderr prints the line that sets it; Java key stores (JKS, PKCS12) come
with the keytool/openssl commands that convert them to the PEM files godwit
reads.

Only flows MM2 runs (A->B.enabled = true) are emitted; the others are
omitted with a note. stderr lists the notes, the steps before the config
can be used, and every MM2 key without a godwit equivalent with the reason
("unmapped MM2 key: KEY = VALUE (FILE:LINE): reason", secrets redacted).
With -o json, stdout is {"yaml", "unmapped", "actions", "notes"} and
stderr stays empty.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conv, err := config.LoadMM2(args[0])
			if err != nil {
				return usageError{err}
			}
			if g.json() {
				unmapped, actions, notes := conv.Unmapped, conv.Actions, conv.Notes
				if unmapped == nil {
					unmapped = []config.MM2Key{}
				}
				if actions == nil {
					actions = []config.MM2Action{}
				}
				if notes == nil {
					notes = []string{}
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false) // flow names and shell commands stay readable
				return enc.Encode(struct {
					YAML     string             `json:"yaml"`
					Unmapped []config.MM2Key    `json:"unmapped"`
					Actions  []config.MM2Action `json:"actions"`
					Notes    []string           `json:"notes"`
				}{string(conv.YAML), unmapped, actions, notes})
			}
			if _, err := g.stdout.Write(conv.YAML); err != nil {
				return err
			}
			return conv.WriteReport(g.stderr, args[0])
		},
	}
}
