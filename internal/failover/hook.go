package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// HookResult records a cutover hook run.
type HookResult struct {
	Command    string   `json:"command"`
	ExitCode   int      `json:"exit_code"`
	Output     string   `json:"output"`
	Truncated  bool     `json:"output_truncated,omitempty"`
	DurationMs int64    `json:"duration_ms"`
	Env        []string `json:"env"`
	Error      string   `json:"error,omitempty"`
}

// maxOutput bounds the hook output kept in the journal.
const maxOutput = 16 << 10

// cutover runs the cutover hook (cutover.command or --exec) through
// "sh -c" with the new bootstrap servers, flow, topics and groups in its
// environment, bounded by cutover.timeout.
func (r *runner) cutover(ctx context.Context) (*HookResult, error) {
	command := r.o.Exec
	if command == "" {
		command = r.o.Config.Cutover.Command
	}
	if command == "" {
		return &HookResult{}, nil
	}
	f := r.o.Flow
	p := r.params()
	var targetTopics, groups []string
	for _, t := range p.Topics {
		if ts, ok := r.st.Topics[t]; ok {
			targetTopics = append(targetTopics, ts.TargetTopic)
		}
	}
	gs, err := r.groups()
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		groups = append(groups, g.Group)
	}
	env := []string{
		"GODWIT_FLOW=" + f.Name,
		"GODWIT_FAILOVER_MODE=" + r.op.Mode,
		"GODWIT_FAILOVER_OPERATION=" + r.op.ID,
		"GODWIT_SOURCE_CLUSTER=" + f.Source,
		"GODWIT_TARGET_CLUSTER=" + f.Target,
		"GODWIT_BOOTSTRAP_SERVERS=" + strings.Join(r.dst.Config.BootstrapServers, ","),
		"GODWIT_OLD_BOOTSTRAP_SERVERS=" + strings.Join(r.src.Config.BootstrapServers, ","),
		"GODWIT_TOPICS=" + strings.Join(p.Topics, ","),
		"GODWIT_TARGET_TOPICS=" + strings.Join(targetTopics, ","),
		"GODWIT_GROUPS=" + strings.Join(groups, ","),
	}
	timeout := r.o.Config.Cutover.Timeout.D()
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, "sh", "-c", command)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 2 * time.Second
	out := &capped{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err = cmd.Run()
	res := &HookResult{Command: command, Env: env, DurationMs: time.Since(start).Milliseconds(), Output: out.String(), Truncated: out.truncated}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case hctx.Err() != nil && ctx.Err() == nil:
		res.ExitCode, res.Error = -1, fmt.Sprintf("timed out after %s (cutover.timeout)", timeout)
	case errors.As(err, &ee):
		res.ExitCode, res.Error = ee.ExitCode(), err.Error()
	default:
		res.ExitCode, res.Error = -1, err.Error()
	}
	r.log.Info("cutover hook ran", "exit_code", res.ExitCode, "duration_ms", res.DurationMs)
	if res.Error != "" {
		return res, fmt.Errorf("cutover hook %q failed: %s; output: %s (fix it and run godwit failover again: it continues with the hook)", command, res.Error, strings.TrimSpace(tail(res.Output, 500)))
	}
	return res, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

type capped struct {
	mu        sync.Mutex
	b         bytes.Buffer
	max       int
	truncated bool
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - c.b.Len()
	if room < len(p) {
		c.truncated = true
		if room > 0 {
			c.b.Write(p[:room])
		}
		return len(p), nil
	}
	c.b.Write(p)
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}
