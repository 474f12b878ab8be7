package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/logging"
)

// Exit codes are part of the CLI contract.
const (
	exitOK      = 0
	exitFailure = 1 // a failure or a failed check
	exitUsage   = 2 // bad flags, bad config
)

// usageError marks an error as the user's input (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// globals are the flags every command shares.
type globals struct {
	configPath string
	output     string
	logLevel   string
	stdout     io.Writer
	stderr     io.Writer
	// stdin is read for -c - ; ctx ends on SIGINT/SIGTERM, also while
	// the config loads.
	stdin io.Reader
	ctx   context.Context
}

func (g *globals) logger() *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(g.logLevel)) // validated in PersistentPreRunE
	// One component/flow key per line: loggers are passed between
	// components, each adding its own labels.
	return slog.New(logging.Unique(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: lvl})))
}

// loadConfig loads -c/--config; a problem with it is a usage error.
func (g *globals) loadConfig() (*config.Config, error) {
	if g.configPath == "" {
		return nil, usagef("no config file: pass -c/--config FILE, or -c - for standard input (godwit sandbox --write-config FILE writes one)")
	}
	ctx := g.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	c, err := config.LoadContext(ctx, g.configPath, g.stdin)
	if err != nil {
		return nil, usageError{err}
	}
	// Risky but valid settings (insecure TLS, world-readable secrets,
	// PLAIN without TLS) are said before any command acts on them.
	for _, w := range c.AllWarnings() {
		fmt.Fprintf(g.stderr, "godwit: warning: %s\n", w)
	}
	return c, nil
}

// loadFlows loads the config and the named flows (every enabled flow when
// names is empty); both kinds of problem are usage errors.
func (g *globals) loadFlows(names []string) (*config.Config, []*config.Flow, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	sel, err := cfg.SelectFlows(names)
	if err != nil {
		return nil, nil, usageError{err}
	}
	return cfg, sel, nil
}

func (g *globals) json() bool { return g.output == "json" }

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "godwit",
		Short: "Cross-cluster disaster recovery for Apache Kafka: replicate, translate offsets, fail over, prove it",
		Example: `  # try it on two in-process clusters
  godwit sandbox --write-config sandbox.yaml &
  godwit replicate -c sandbox.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch g.output {
			case "text", "json":
			default:
				return usagef("-o/--output %q: use text or json", g.output)
			}
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
				return usagef("--log-level %q: use debug, info, warn or error", g.logLevel)
			}
			return nil
		},
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVarP(&g.configPath, "config", "c", "", "config file (YAML), - for standard input")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	for _, add := range commands {
		root.AddCommand(add(g))
	}
	return root
}

// commands registers subcommands; each command file appends its
// constructor in init so files stay independent.
var commands []func(*globals) *cobra.Command

// run runs the CLI; SIGINT and SIGTERM cancel the commands' context.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, stdout, stderr)
}

// isCobraUsage recognises cobra's own argument errors, which are not typed.
func isCobraUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "accepts ") ||
		strings.HasPrefix(s, "requires ") || strings.HasPrefix(s, "unknown flag") ||
		strings.Contains(s, "arg(s)")
}
