package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/metrics"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/replicate"
	"github.com/godwit/godwit/internal/schemas"
)

// Replicator is the replicator a drill runs for its flow and may crash.
type Replicator interface {
	// Start starts it (again); it runs until Kill or Stop.
	Start(ctx context.Context) error
	// Kill stops it as abruptly as the implementation can (SIGKILL for a
	// process) and waits until it is gone.
	Kill() error
	// Stop stops it gracefully and waits.
	Stop() error
	// Kind names the implementation for the report.
	Kind() string
}

// ReplicatorFactory builds the drill's replicator for cfg (written to
// cfgPath) and flow.
type ReplicatorFactory func(cfg *config.Config, cfgPath string, flow *config.Flow, logger *slog.Logger) Replicator

// InProcess runs replicate.Replicator and the offsets checkpoint loop in
// this process. Kill cancels its context (the closest an in-process
// replicator gets to a crash).
func InProcess(cfg *config.Config, _ string, flow *config.Flow, logger *slog.Logger) Replicator {
	return &inProcess{cfg: cfg, flow: flow, log: logger}
}

type inProcess struct {
	cfg    *config.Config
	flow   *config.Flow
	log    *slog.Logger
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
}

func (p *inProcess) Kind() string { return "in-process" }

func (p *inProcess) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil {
		return errors.New("drill: replicator already running")
	}
	reg := metrics.NewRegistry()
	r, err := replicate.New(p.cfg, []*config.Flow{p.flow}, p.log, replicate.NewMetrics(reg), "godwit-drill-0")
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopOffsets, err := offsets.Start(rctx, p.cfg, r.Flows(), p.log, offsets.NewMetrics(reg))
	if err != nil {
		cancel()
		return err
	}
	stopSchemas, err := schemas.Start(rctx, p.cfg, r.Flows(), p.log, schemas.NewMetrics(reg))
	if err != nil {
		stopOffsets()
		cancel()
		return err
	}
	done := make(chan error, 1)
	go func() {
		err := r.Run(rctx)
		stopSchemas()
		stopOffsets()
		done <- err
	}()
	p.cancel, p.done = cancel, done
	return nil
}

func (p *inProcess) stop() error {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.cancel, p.done = nil, nil
	p.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case err := <-done:
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		return err
	case <-time.After(30 * time.Second):
		return errors.New("drill: in-process replicator did not stop within 30s")
	}
}

func (p *inProcess) Kill() error { return p.stop() }
func (p *inProcess) Stop() error { return p.stop() }

// Process returns a factory running `BINARY replicate -c CFG --flow F` as a
// child process; Kill sends SIGKILL.
func Process(binary string, logTo io.Writer) ReplicatorFactory {
	return func(_ *config.Config, cfgPath string, flow *config.Flow, _ *slog.Logger) Replicator {
		return &process{bin: binary, cfgPath: cfgPath, flow: flow.Name, logTo: logTo}
	}
}

type process struct {
	bin, cfgPath, flow string
	logTo              io.Writer
	mu                 sync.Mutex
	cmd                *exec.Cmd
	done               chan error
}

func (p *process) Kind() string { return "process" }

func (p *process) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return errors.New("drill: replicator already running")
	}
	cmd := exec.Command(p.bin, "replicate", "-c", p.cfgPath, "--flow", p.flow, "--instance-id", "godwit-drill-0", "--log-level", "warn")
	out := p.logTo
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("drill: starting replicator %s: %w", p.bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	p.cmd, p.done = cmd, done
	return nil
}

func (p *process) signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("drill: replicator did not exit within %v of %v; killed", wait, sig)
	}
}

func (p *process) Kill() error { return p.signal(syscall.SIGKILL, 10*time.Second) }
func (p *process) Stop() error { return p.signal(syscall.SIGTERM, 30*time.Second) }
