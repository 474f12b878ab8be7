package replicate_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/replicate"
	"github.com/godwit/godwit/internal/testkit"
)

func godwitBinary(t *testing.T) string { return testkit.GodwitBinary(t) }

func flowConfig(t *testing.T, p testkit.Pair, naming string, flowBody string, bidirectional bool) (path, src, dst string) {
	return testkit.FlowConfigFile(t, p, naming, flowBody, bidirectional)
}

// proc is a godwit replicate process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startReplicator(t *testing.T, cfgPath string, extra ...string) *proc {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "replicator-*.log")
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"replicate", "-c", cfgPath, "--log-level", "info"}, extra...)
	cmd := exec.Command(godwitBinary(t), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, log: logf.Name(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill9()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("replicator %d log (tail):\n%s", cmd.Process.Pid, tail(string(b), 4000))
		}
	})
	return p
}

func (p *proc) kill9() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// terminate sends SIGTERM and returns the exit code and how long the
// process took to exit.
func (p *proc) terminate(timeout time.Duration) (int, time.Duration) {
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill9()
		return -1, time.Since(start)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// inproc runs flows of a config file in this process (faster than a
// subprocess, and lets a test read metrics, readiness and logs).
type inproc struct {
	r      *replicate.Replicator
	reg    *prometheus.Registry
	logs   *testkit.SyncBuffer
	cancel context.CancelFunc
	done   chan error
}

func runInProcess(t *testing.T, cfgPath string, flows ...string) *inproc {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := cfg.SelectFlows(flows)
	if err != nil {
		t.Fatal(err)
	}
	ip := &inproc{reg: prometheus.NewRegistry(), logs: &testkit.SyncBuffer{}, done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(ip.logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	ip.r, err = replicate.New(cfg, sel, log, replicate.NewMetrics(ip.reg), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ip.cancel = cancel
	go func() { ip.done <- ip.r.Run(ctx) }()
	t.Cleanup(func() { _ = ip.stop() })
	return ip
}

// stop cancels the replicator and waits for it (bounded).
func (ip *inproc) stop() error {
	ip.cancel()
	select {
	case err := <-ip.done:
		ip.done <- err
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("replicator did not stop within 30s")
	}
}

// metric sums a metric family's samples whose labels include want.
func (ip *inproc) metric(name string, want map[string]string) float64 {
	return testkit.MetricSum(ip.reg, name, want)
}

// testWriter copies logs to stderr only when verbose (not t.Log: client
// goroutines may log after a test ends); the buffer keeps everything for
// assertions.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		return os.Stderr.Write(p)
	}
	return len(p), nil
}
