package drill

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/godwit/godwit/internal/connect"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/kafkautil"
)

// connectRun is the drill's Connect check state.
type connectRun struct {
	spec     drillreport.ConnectSpec
	client   *connect.Client
	patterns []*regexp.Regexp
	// targetID is the drill target's Kafka cluster id ("" if unknown).
	targetID string

	mu     sync.Mutex
	checks []drillreport.ConnectCheck
}

// setupConnect builds the REST client; a scenario without connect.url
// leaves d.conn nil and every check a no-op.
func (d *drill) setupConnect(ctx context.Context) error {
	spec := d.sc.Connect
	if !spec.Enabled() {
		return nil
	}
	pass, err := spec.Password()
	if err != nil {
		return err
	}
	cl, err := connect.New(connect.Config{URL: spec.URL, Username: spec.Username, Password: pass, CAFile: spec.CAFile, Timeout: spec.Timeout.D()})
	if err != nil {
		return err
	}
	pats, err := spec.Patterns()
	if err != nil {
		return err
	}
	d.conn = &connectRun{spec: spec, client: cl, patterns: pats}
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if md, err := kadm.NewClient(d.dcl).BrokerMetadata(mctx); err == nil {
		d.conn.targetID = md.Cluster
	}
	return nil
}

// startConnectCheck runs the check before the fault in the background (so
// a slow REST API does not stretch the workload phase); the returned
// function waits for it.
func (d *drill) startConnectCheck(ctx context.Context) (wait func()) {
	if d.conn == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.connectCheck(ctx, "before fault", false)
	}()
	return func() { <-done }
}

// connectCheckAfter checks the connectors once the target has taken over,
// polling until they are healthy or connect.timeout passes.
func (d *drill) connectCheckAfter(ctx context.Context) {
	if d.conn == nil {
		return
	}
	phase := "after failover"
	if !d.sc.FailsOver() {
		phase = "after recovery"
	}
	// Its own band in the lag chart: up to connect.timeout spent polling
	// is not part of the recovery before it.
	d.setPhase("connect check")
	d.connectCheck(ctx, phase, true)
}

func (d *drill) connectCheck(ctx context.Context, phase string, poll bool) {
	cr := d.conn
	t0 := time.Now()
	deadline := t0.Add(cr.spec.Timeout.D())
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var c drillreport.ConnectCheck
	attempts := 0
	for {
		attempts++
		cur := drillreport.ConnectCheck{Phase: phase, At: d.since(t0),
			Connectors: []connect.Connector{}, Problems: []string{}, Warnings: []string{}}
		err := cr.look(cctx, &cur)
		if err != nil && cctx.Err() != nil && attempts > 1 {
			// Cut short by the check's own deadline: the previous
			// attempt says more (connection refused, 503, ...).
			break
		}
		c = cur
		if err != nil {
			c.Error = err.Error()
		} else {
			c.Problems, c.Warnings = evaluateConnect(cr.patterns, c.Connectors)
			if cr.targetID != "" && c.KafkaClusterID != "" && c.KafkaClusterID != cr.targetID {
				c.Warnings = append(c.Warnings, fmt.Sprintf("the worker keeps its state on Kafka cluster %s, not on the drill's target %s (%s): check that connect.url is the target region's Connect cluster", c.KafkaClusterID, d.o.Flow.Target, cr.targetID))
			}
		}
		if c.Healthy() || !poll || kafkautil.Sleep(cctx, 500*time.Millisecond) != nil {
			break
		}
	}
	c.Attempts, c.Seconds = attempts, time.Since(t0).Seconds()
	switch {
	case c.Error != "":
		d.printf("kafka connect %s: %s", phase, c.Error)
	case c.Healthy():
		d.printf("kafka connect %s: %d connector(s), no problem", phase, len(c.Connectors))
	default:
		d.printf("kafka connect %s: %d connector(s); %s", phase, len(c.Connectors), strings.Join(c.Problems, "; "))
	}
	cr.mu.Lock()
	cr.checks = append(cr.checks, c)
	cr.mu.Unlock()
}

func (cr *connectRun) look(ctx context.Context, c *drillreport.ConnectCheck) error {
	w, err := cr.client.Worker(ctx)
	if err != nil {
		return err
	}
	c.WorkerVersion, c.KafkaClusterID = w.Version, w.KafkaClusterID
	cs, err := cr.client.Connectors(ctx)
	if err != nil {
		return err
	}
	c.Connectors = cs
	return nil
}

// evaluateConnect finds what fails the check in a listing: with patterns,
// a pattern no connector matches and a matched connector that is not
// RUNNING with at least one task, every task RUNNING; without, any FAILED
// connector or task. FAILED connectors outside the patterns are warnings.
func evaluateConnect(patterns []*regexp.Regexp, cs []connect.Connector) (problems, warnings []string) {
	problems, warnings = []string{}, []string{}
	inScope := map[string]bool{}
	for _, re := range patterns {
		n := 0
		for _, c := range cs {
			if re.MatchString(c.Name) {
				inScope[c.Name] = true
				n++
			}
		}
		if n == 0 {
			problems = append(problems, fmt.Sprintf("no connector matches expect_running %q", strings.TrimSuffix(strings.TrimPrefix(re.String(), "^(?:"), ")$")))
		}
	}
	for _, c := range cs {
		failed := failures(c)
		switch {
		case len(patterns) == 0:
			problems = append(problems, failed...)
		case !inScope[c.Name]:
			for _, f := range failed {
				warnings = append(warnings, f+" (not in expect_running)")
			}
		case c.State != connect.StateRunning:
			p := fmt.Sprintf("%s is %s, expected RUNNING", c.Name, c.State)
			if c.Trace != "" {
				p += ": " + connect.RootCause(c.Trace)
			}
			problems = append(problems, p)
		case len(c.Tasks) == 0:
			problems = append(problems, fmt.Sprintf("%s is RUNNING with no task, so it moves no data", c.Name))
		default:
			for _, t := range c.Tasks {
				if t.State == connect.StateRunning {
					continue
				}
				p := fmt.Sprintf("%s task %d is %s, expected RUNNING", c.Name, t.ID, t.State)
				if t.Trace != "" {
					p += ": " + connect.RootCause(t.Trace)
				}
				problems = append(problems, p)
			}
		}
	}
	return problems, warnings
}

// failures lists c's FAILED connector and tasks with their root causes.
func failures(c connect.Connector) []string {
	var out []string
	if c.State == connect.StateFailed {
		out = append(out, fmt.Sprintf("%s FAILED: %s", c.Name, connect.RootCause(c.Trace)))
	}
	for _, t := range c.Tasks {
		if t.State == connect.StateFailed {
			out = append(out, fmt.Sprintf("%s task %d FAILED: %s", c.Name, t.ID, connect.RootCause(t.Trace)))
		}
	}
	return out
}

// connectOutcome puts the checks into the report and, with the check on,
// adds the "connect" objective; it returns whether that objective passed
// (true without the check).
func (d *drill) connectOutcome(r *drillreport.Report) bool {
	if d.conn == nil {
		return true
	}
	cr := d.conn
	cr.mu.Lock()
	checks := append([]drillreport.ConnectCheck(nil), cr.checks...)
	cr.mu.Unlock()
	sort.SliceStable(checks, func(i, j int) bool { return checks[i].At < checks[j].At })
	rep := &drillreport.ConnectReport{URL: cr.client.URL(), ExpectRunning: append([]string{}, cr.spec.ExpectRunning...), Checks: checks}
	ob := drillreport.Objective{Name: "connect", Target: cr.spec.Timeout.D().Seconds()}
	last := rep.Last()
	switch {
	case last == nil || last.Phase == "before fault":
		ob.Detail = "the check after the failover did not run"
	default:
		rep.Pass = last.Healthy()
		ob.Achieved = last.Seconds
		ob.Detail = "Kafka Connect at " + rep.URL + " " + last.Phase + ": "
		if len(rep.ExpectRunning) > 0 {
			ob.Detail += "every connector in expect_running RUNNING with all its tasks, polled until connect.timeout"
		} else {
			ob.Detail += "no FAILED connector or task, polled until connect.timeout"
		}
		switch {
		case last.Error != "":
			ob.Detail += "; " + last.Error
		case !rep.Pass:
			ob.Detail += "; " + strings.Join(last.Problems, "; ")
		}
	}
	ob.Pass = rep.Pass
	r.Connect = rep
	r.Objectives = append(r.Objectives, ob)
	return ob.Pass
}
