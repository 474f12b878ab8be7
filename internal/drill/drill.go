package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/sandbox"
	"github.com/godwit/godwit/internal/workload"
)

// Options configure Run.
type Options struct {
	// Config and Flow come from PrepareConfig; ConfigPath is where the
	// prepared YAML is written (for a replicator process).
	Config     *config.Config
	Flow       *config.Flow
	ConfigPath string
	Scenario   *drillreport.Scenario
	// Sandbox, when set, holds the flow's clusters (embedded): source-down
	// stops the source cluster.
	Sandbox *sandbox.Sandbox
	// Suffix is appended to drill topic and group names (".<suffix>") so
	// runs on shared clusters never meet; "" keeps the scenario's names.
	Suffix string
	// Replicator builds the drill's replicator (default InProcess).
	Replicator ReplicatorFactory
	// Failover performs the failover (default GodwitFailover).
	Failover FailoverFunc
	// Progress receives phase lines with elapsed time and live lag; nil
	// is quiet.
	Progress io.Writer
	// Logger receives the replicator's and failover's logs; nil discards.
	Logger *slog.Logger
	// OnProcess, if set, is called for every record a drill consumer
	// processes (tests count replays and skips themselves with it).
	OnProcess func(group string, onTarget bool, topic string, partition int32, seq int64)
	// Cleanup deletes the drill topics on both clusters at the end.
	Cleanup bool
}

// Result is a drill's report plus what tests need to check it.
type Result struct {
	Report  *drillreport.Report
	Ledgers []*workload.Ledger
}

// stream is one drill topic: its producer and ledger.
type stream struct {
	topic, target string
	partitions    int32
	run           uint64
	prod          *workload.Producer
	ledger        *workload.Ledger
}

type drill struct {
	o      Options
	sc     *drillreport.Scenario
	start  time.Time
	log    *slog.Logger
	src    *cluster.Cluster
	dst    *cluster.Cluster
	scl    *kgo.Client // source admin
	pcl    *kgo.Client // source producer
	dcl    *kgo.Client // target admin
	rep    Replicator
	ck     *targetChecker
	groups []*groupRun

	// standby is the config of the standby region's clients (replicator,
	// failover, probe): d.o.Config, or for network-partition a copy whose
	// source connections can be cut (part).
	standby *config.Config
	probe   *cluster.Cluster
	part    *netPartition

	streams []*stream
	phase   atomic.Value // string

	printMu sync.Mutex
	mu      sync.Mutex
	checks  map[string]workload.Report
	samples []drillreport.LagSample
	spans   []drillreport.Span
	notes   []string

	srcUp      atomic.Bool
	downSince  atomic.Int64 // unix nanos since the source failed every probe, 0 = up
	lastStatus time.Time

	conn *connectRun // the Kafka Connect check; nil without connect.url
	sr   *schemaRun  // the Schema Registry check; nil without schemas
}

func (d *drill) since(t time.Time) float64 { return t.Sub(d.start).Seconds() }

func (d *drill) printf(format string, args ...any) {
	if d.o.Progress == nil {
		return
	}
	d.printMu.Lock()
	defer d.printMu.Unlock()
	fmt.Fprintf(d.o.Progress, "[%6.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *drill) note(format string, args ...any) {
	d.mu.Lock()
	d.notes = append(d.notes, fmt.Sprintf(format, args...))
	d.mu.Unlock()
}

func (d *drill) setPhase(name string) {
	now := time.Now()
	d.mu.Lock()
	if n := len(d.spans); n > 0 && d.spans[n-1].End == 0 {
		d.spans[n-1].End = d.since(now)
		d.spans[n-1].AckedEnd = d.acked()
	}
	d.spans = append(d.spans, drillreport.Span{Name: name, Start: d.since(now), AckedStart: d.acked()})
	d.mu.Unlock()
	d.phase.Store(name)
}

func (d *drill) acked() int64 {
	var n int64
	for _, s := range d.streams {
		n += int64(s.ledger.Len())
	}
	return n
}

// Run runs a drill. The returned error means the drill could not be
// carried out; a drill that ran but missed an objective returns a report
// with Passed false and no error.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Config == nil || o.Flow == nil || o.Scenario == nil {
		return nil, errors.New("drill: Config, Flow and Scenario are required")
	}
	if o.Replicator == nil {
		o.Replicator = InProcess
	}
	if o.Failover == nil {
		o.Failover = GodwitFailover
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &drill{o: o, sc: o.Scenario, start: time.Now(), log: o.Logger}
	d.phase.Store("setup")
	d.srcUp.Store(true)
	defer d.close()
	if err := d.setup(ctx); err != nil {
		return nil, err
	}
	rep, err := d.run(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{Report: rep}
	for _, s := range d.streams {
		res.Ledgers = append(res.Ledgers, s.ledger)
	}
	return res, nil
}

func (d *drill) name(n string) string {
	if d.o.Suffix == "" {
		return n
	}
	return n + "." + d.o.Suffix
}

func (d *drill) run(ctx context.Context) (*drillreport.Report, error) {
	sc := d.sc
	bg, stopBG := context.WithCancel(ctx)
	var bgWG sync.WaitGroup
	defer func() { stopBG(); bgWG.Wait() }()
	goBG := func(fn func(context.Context)) {
		bgWG.Add(1)
		go func() { defer bgWG.Done(); fn(bg) }()
	}
	goBG(d.ck.run)
	goBG(d.probeLoop)

	// Consumers on the source.
	srcCtx, stopSrcConsumers := context.WithCancel(ctx)
	defer stopSrcConsumers()
	var consWG sync.WaitGroup
	for _, g := range d.groups {
		if err := g.start(srcCtx, &consWG, false); err != nil {
			return nil, err
		}
	}

	// Wait for the replicator to have created the target topics and
	// copied a first record, so the steady phase measures steady state.
	var rate atomic.Int64
	rate.Store(int64(sc.Workload.Rate))
	prodCtx, stopProducers := context.WithCancel(ctx)
	defer stopProducers()
	prodDone := make(chan struct{})
	d.setPhase("warmup")
	go func() { d.produce(prodCtx, &rate); close(prodDone) }()
	goBG(d.sampleLoop)
	// Warm-up: until the replicator has copied what was produced once, so
	// the steady phase measures steady state, not the replicator starting.
	d.printf("warm-up: waiting for the first records on %s", d.o.Flow.Target)
	var marks map[TP]int
	if !waitFor(ctx, 60*time.Second, func() bool {
		if marks == nil && d.acked() > 0 {
			marks = d.ackedMarks()
		}
		return marks != nil && d.reached(marks)
	}) {
		return nil, fmt.Errorf("drill: nothing reached the target within 60s of producing; is the replicator running? (%s)", d.rep.Kind())
	}
	d.setPhase("steady")
	d.printf("steady: %d records/s, %d-byte records", sc.Workload.Rate, sc.Workload.RecordSize)
	if kafkautil.Sleep(ctx, sc.Phases.Steady.D()) != nil {
		return nil, ctx.Err()
	}
	d.setPhase("peak")
	rate.Store(int64(sc.Workload.Peak.Rate))
	d.printf("peak: %d records/s for %v", sc.Workload.Peak.Rate, sc.Workload.Peak.Duration.D())
	if kafkautil.Sleep(ctx, sc.Workload.Peak.Duration.D()) != nil {
		return nil, ctx.Err()
	}
	d.setPhase("steady-after")
	waitConnect := d.startConnectCheck(ctx)
	rate.Store(int64(sc.Workload.Rate))
	d.printf("steady again: %d records/s", sc.Workload.Rate)
	if kafkautil.Sleep(ctx, sc.Phases.After.D()) != nil {
		return nil, ctx.Err()
	}

	waitConnect()
	wl := &running{stopProducers: stopProducers, prodDone: prodDone, stopSrcConsumers: stopSrcConsumers, consWG: &consWG}
	rto := &drillreport.RTO{}
	var fo *FailoverResult
	var foErr error
	switch sc.Fault.Type {
	case drillreport.FaultReplicatorCrash:
		if err := d.crash(ctx, rto, wl); err != nil {
			return nil, err
		}
		stopSrcConsumers()
		consWG.Wait()
	case drillreport.FaultSourceDown, drillreport.FaultNone, drillreport.FaultNetworkPartition:
		fo, foErr = d.failover(ctx, rto, wl)
		if foErr != nil && fo == nil {
			return nil, foErr
		}
	}
	d.connectCheckAfter(ctx)
	d.setPhase("end")
	stopBG()
	bgWG.Wait()
	r, err := d.buildReport(ctx, rto, fo, foErr)
	if err == nil && d.part != nil {
		d.part.finish(ctx, r, fo)
	}
	return r, err
}

// checkerComplete waits until the checker has read every record the
// (now quiet) target holds, as counted by the final check.
func (d *drill) checkerComplete(ctx context.Context) {
	waitFor(ctx, 20*time.Second, func() bool {
		d.ck.mu.Lock()
		defer d.ck.mu.Unlock()
		for _, st := range d.streams {
			rep := d.checks[st.topic]
			for p, pr := range rep.PerPartition {
				if int(p) < len(d.ck.parts[st.topic]) && d.ck.parts[st.topic][p].count < pr.Records-pr.OtherRuns-pr.Unexpected {
					return false
				}
			}
		}
		return true
	})
}

// finalCheck compares each target topic with its ledger (workload.Check:
// reads the target to its end, read_committed).
func (d *drill) finalCheck(ctx context.Context) {
	d.checks = map[string]workload.Report{}
	for _, st := range d.streams {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		rep, err := workload.Check(cctx, d.dcl, st.ledger, workload.CheckConfig{
			Topic: st.target, IgnoreHeaders: []string{"godwit-*"},
		})
		cancel()
		if err != nil {
			d.note("checking %s on the target: %v", st.target, err)
		}
		d.checks[st.topic] = rep
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
