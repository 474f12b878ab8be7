package main

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript scripts run "godwit": the test binary
// re-executes itself as the godwit command, calling run like main does.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"godwit": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs every testdata/script/*.txtar. Each script starts in a
// fresh $WORK holding the archive's files. Besides the standard commands:
//
//	exec godwit ARGS...            run the CLI (must exit 0; "! exec" for non-zero)
//	exitcode CODE PROGRAM ARGS...  run PROGRAM and require exit code CODE,
//	                               keeping stdout/stderr for later checks
//
// Run with -testwork to keep $WORK, or UPDATE_SCRIPTS=1 to rewrite cmp
// golden files from the actual output.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       os.Getenv("UPDATE_SCRIPTS") != "",
		Cmds:                map[string]func(*testscript.TestScript, bool, []string){"exitcode": cmdExitCode},
	})
}

// cmdExitCode implements "exitcode CODE PROGRAM ARGS...": exit codes are
// part of the CLI contract (0 ok, 1 failure, 2 usage/config error), and
// "! exec" only checks for non-zero.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: bad CODE %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}
