package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/testkit"
)

// TestConfigStdinEndsOnSIGTERM: with -c - and a standard input nobody
// writes to, SIGTERM ends the load (exit 2, saying why) instead of being
// ignored until SIGKILL.
func TestConfigStdinEndsOnSIGTERM(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// testscript.Main runs the godwit command when argv[0] is "godwit".
	cmd := exec.Command(exe, "config", "check", "-c", "-")
	cmd.Args[0] = "godwit"
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Signal once a thread blocks reading the pipe: by then the signal
	// handler is installed (it is, before any command runs).
	testkit.Eventually(t, 30*time.Second, func() (bool, string) {
		tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "task", "*", "wchan"))
		for _, w := range tasks {
			if b, _ := os.ReadFile(w); strings.Contains(string(b), "pipe_read") || strings.Contains(string(b), "pipe_wait") {
				return true, ""
			}
		}
		return false, "godwit is not reading stdin yet"
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("exit: %v, want exit code %d; stderr: %s", err, exitUsage, stderr.String())
	}
	if !strings.Contains(stderr.String(), "godwit: stdin: reading the config stopped: ") {
		t.Errorf("stderr = %q, want it to say the read stopped", stderr.String())
	}
}
