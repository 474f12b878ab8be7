package main

import (
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newCompletionCmd) }

// newCompletionCmd replaces cobra's default completion command (which
// would also offer powershell and hide the install steps in subcommands).
func newCompletionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script for bash, zsh or fish",
		Long: `Print a shell completion script to stdout. It completes subcommands and
flags; flow names are not completed (they come from the config file).`,
		Example: `  # bash, this shell only (needs the bash-completion package):
  source <(godwit completion bash)
  # bash, every new shell:
  godwit completion bash > /etc/bash_completion.d/godwit

  # zsh (compinit must be enabled):
  godwit completion zsh > "${fpath[1]}/_godwit"

  # fish:
  godwit completion fish > ~/.config/fish/completions/godwit.fish`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh" && args[0] != "fish") {
				return usagef("completion needs one shell: bash, zsh or fish")
			}
			return nil
		},
		ValidArgs:             []string{"bash", "zsh", "fish"},
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(g.stdout, true)
			case "zsh":
				return root.GenZshCompletion(g.stdout)
			default:
				return root.GenFishCompletion(g.stdout, true)
			}
		},
	}
}
