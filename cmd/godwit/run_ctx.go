package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/godwit/godwit/internal/config"
)

// runContext runs the CLI with ctx as every command's cmd.Context(); run
// wraps it with signal handling, tests call it with a cancellable context.
// It returns the process exit code.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr, stdin: os.Stdin, ctx: ctx}
	root := newRootCmd(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "godwit: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, config.ErrUsage) || isCobraUsage(err) {
		return exitUsage
	}
	return exitFailure
}
