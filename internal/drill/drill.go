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
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
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

func (d *drill) setup(ctx context.Context) error {
	var err error
	f := d.o.Flow
	if d.src, err = cluster.New(d.o.Config, f.Source); err != nil {
		return err
	}
	if d.dst, err = cluster.New(d.o.Config, f.Target); err != nil {
		return err
	}
	d.standby = d.o.Config
	if d.sc.Fault.Type == drillreport.FaultNetworkPartition {
		d.part = newNetPartition(d)
		d.standby = d.part.cfg
	}
	if d.probe, err = cluster.New(d.standby, f.Source); err != nil {
		return err
	}
	// Built now (started once the topics exist) so a replicator the fault
	// cannot work with is refused before anything is created.
	d.rep = d.o.Replicator(d.standby, d.o.ConfigPath, f, d.log.With("component", "replicator"))
	if d.part != nil {
		if err := d.part.checkReplicator(d.rep); err != nil {
			return err
		}
	}
	if d.scl, err = d.src.Client("drill-admin", nil, kgo.RetryTimeout(10*time.Second)); err != nil {
		return err
	}
	if d.pcl, err = d.src.Client("drill-producer", nil,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(5*time.Second), kgo.RetryTimeout(5*time.Second),
		kgo.ProducerLinger(5*time.Millisecond)); err != nil {
		return err
	}
	if d.dcl, err = d.dst.Client("drill-admin", nil); err != nil {
		return err
	}
	if err := d.setupConnect(ctx); err != nil {
		return err
	}
	pol := naming.For(f)
	w := d.sc.Workload
	nullKey := 0
	if !*w.Keys {
		nullKey = 1
	}
	if err := d.setupSchemas(f); err != nil {
		return err
	}
	for _, t := range d.sc.Topics {
		st := &stream{topic: d.name(t.Name), partitions: t.Partitions}
		st.target = pol.TargetTopic(st.topic)
		var schemaID uint32
		if d.sr != nil {
			if schemaID, err = d.sr.register(ctx, st.topic); err != nil {
				return err
			}
		}
		st.prod = workload.NewProducer(d.pcl, workload.ProducerConfig{
			Topic: st.topic, Partitions: t.Partitions, ValueSize: w.RecordSize,
			NullKeyEvery: nullKey, SchemaID: schemaID,
			// The producer never goes faster than the peak; the drill
			// paces each phase below it.
			Rate: max(w.Peak.Rate, w.Rate) / len(d.sc.Topics),
		})
		st.ledger, st.run = st.prod.Ledger(), st.prod.Ledger().RunID()
		d.streams = append(d.streams, st)
	}
	for _, g := range d.sc.Groups {
		d.groups = append(d.groups, newGroupRun(d.name(g.Name), d))
	}

	// Topics first, so the replicator finds them when it starts.
	adm := kadm.NewClient(d.scl)
	for _, st := range d.streams {
		resp, err := adm.CreateTopic(ctx, st.partitions, -1, nil, st.topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return cluster.Explain(d.src, fmt.Errorf("creating drill topic %s: %w", st.topic, err))
		}
	}
	d.printf("created %d drill topic(s) on %s: %s", len(d.streams), f.Source, d.topicList())

	if err := d.rep.Start(ctx); err != nil {
		return err
	}
	d.printf("replicator started (%s), flow %s", d.rep.Kind(), f.Name)

	targets := make([]string, 0, len(d.streams))
	for _, st := range d.streams {
		targets = append(targets, st.target)
	}
	ccl, err := d.dst.Client("drill-checker", nil,
		kgo.ConsumeTopics(targets...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.MetadataMinAge(250*time.Millisecond),
		kgo.FetchMaxWait(250*time.Millisecond))
	if err != nil {
		return err
	}
	d.ck = newTargetChecker(ccl, d.streams)
	d.ck.sr = d.sr
	return nil
}

func (d *drill) topicList() string {
	s := ""
	for i, st := range d.streams {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s (%d partitions)", st.topic, st.partitions)
	}
	return s
}

func (d *drill) close() {
	if d.rep != nil {
		_ = d.rep.Stop()
	}
	if d.part != nil {
		d.part.close()
	}
	if d.o.Cleanup && d.scl != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var src, dst []string
		for _, st := range d.streams {
			src, dst = append(src, st.topic), append(dst, st.target)
		}
		if d.srcUp.Load() {
			_, _ = kadm.NewClient(d.scl).DeleteTopics(ctx, src...)
		}
		_, _ = kadm.NewClient(d.dcl).DeleteTopics(ctx, dst...)
		cancel()
	}
	if d.ck != nil {
		d.ck.cl.Close()
	}
	if d.pcl != nil {
		closeWithin(d.pcl, 3*time.Second)
	}
	if d.scl != nil {
		closeWithin(d.scl, 3*time.Second)
	}
	if d.dcl != nil {
		d.dcl.Close()
	}
}

// closeWithin closes cl without waiting more than limit (a client of a
// dead cluster may take long to leave its group).
func closeWithin(cl *kgo.Client, limit time.Duration) {
	done := make(chan struct{})
	go func() { cl.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
	}
}

// produce paces every stream at the current phase's rate until ctx ends
// or producing fails (the source is down).
func (d *drill) produce(ctx context.Context, rate *atomic.Int64) {
	var wg sync.WaitGroup
	for _, st := range d.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			const tick = 50 * time.Millisecond
			t := time.NewTicker(tick)
			defer t.Stop()
			var due float64
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				due += float64(rate.Load()) / float64(len(d.streams)) * tick.Seconds()
				n := int(due)
				if n == 0 {
					continue
				}
				due -= float64(n)
				// Stopping happens between chunks: a chunk is never cut
				// short by ctx (workload.Producer.send appends to its
				// failed list unlocked when its pacer sees ctx end while
				// promises still run: a data race). A dead source fails
				// the chunk's records when the producer client is closed.
				if err := st.prod.Produce(context.WithoutCancel(ctx), n); err != nil {
					if ctx.Err() == nil {
						d.printf("producer to %s stopped: %v", st.topic, err)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
}

// sampleLoop samples replication lag (from the ledger and the checker)
// every 250ms and prints a live line every second.
func (d *drill) sampleLoop(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := d.sample()
		if time.Since(d.lastStatus) >= time.Second {
			d.lastStatus = time.Now()
			d.printf("%-10s lag %6d records %6.2f s   acked %d", s.Phase, s.Records, s.Seconds, d.acked())
		}
	}
}

func (d *drill) sample() drillreport.LagSample {
	now := time.Now()
	var recs int64
	var oldest time.Time
	for _, st := range d.streams {
		for p := int32(0); p < st.partitions; p++ {
			acked := st.ledger.Records(p)
			d.ck.view(st.topic, p, func(s *seqSet) {
				n, o := lagOf(acked, s)
				recs += n
				if n > 0 && (oldest.IsZero() || o.Before(oldest)) {
					oldest = o
				}
			})
		}
	}
	s := drillreport.LagSample{T: d.since(now), Phase: d.phase.Load().(string), Records: recs}
	if !oldest.IsZero() {
		s.Seconds = max(0, now.Sub(oldest).Seconds())
	}
	d.mu.Lock()
	d.samples = append(d.samples, s)
	d.mu.Unlock()
	return s
}

// probeLoop checks the source every 250ms, from the standby side.
func (d *drill) probeLoop(ctx context.Context) {
	for ctx.Err() == nil {
		t0 := time.Now()
		_, err := d.probe.Ping(ctx, 750*time.Millisecond)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			d.downSince.Store(0)
		} else if d.downSince.Load() == 0 {
			d.downSince.Store(t0.UnixNano())
		}
		select {
		case <-ctx.Done():
		case <-time.After(250*time.Millisecond - time.Since(t0)):
		}
	}
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

// allOnTarget reports whether every acknowledged record is on the target
// (as far as the checker has read).
func (d *drill) allOnTarget() bool {
	for _, st := range d.streams {
		for p := int32(0); p < st.partitions; p++ {
			acked := st.ledger.Records(p)
			var n int64
			d.ck.view(st.topic, p, func(s *seqSet) { n, _ = lagOf(acked, s) })
			if n > 0 {
				return false
			}
		}
	}
	return true
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
	rto := &drillreport.RTO{}
	var fo *FailoverResult
	var foErr error
	switch sc.Fault.Type {
	case drillreport.FaultReplicatorCrash:
		if err := d.crash(ctx, rto, stopProducers, prodDone); err != nil {
			return nil, err
		}
		stopSrcConsumers()
		consWG.Wait()
	case drillreport.FaultSourceDown, drillreport.FaultNone, drillreport.FaultNetworkPartition:
		fo, foErr = d.failover(ctx, rto, stopProducers, prodDone, stopSrcConsumers, &consWG)
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

// crash kills the replicator, restarts it after RestartAfter and waits
// until every record acknowledged before the restart is on the target.
func (d *drill) crash(ctx context.Context, rto *drillreport.RTO, stopProducers func(), prodDone chan struct{}) error {
	sc := d.sc
	d.setPhase("fault")
	tF := time.Now()
	rto.FaultAt = d.since(tF)
	d.printf("FAULT replicator-crash: killing the replicator (%s)", d.rep.Kind())
	if err := d.rep.Kill(); err != nil {
		d.note("killing the replicator: %v", err)
	}
	_ = kafkautil.Sleep(ctx, sc.Fault.RestartAfter.D())
	tR := time.Now()
	rto.Add("replicator down", d.since(tF), d.since(tR))
	d.setPhase("recovery")
	if err := d.rep.Start(ctx); err != nil {
		return fmt.Errorf("drill: restarting the replicator: %w", err)
	}
	tS := time.Now()
	rto.Add("replicator restart", d.since(tR), d.since(tS))
	d.printf("replicator restarted")
	// Caught up: everything acknowledged before the restart is on the target.
	marks := d.ackedMarks()
	ok := waitFor(ctx, sc.Failover.Timeout.D(), func() bool { return d.reached(marks) })
	tC := time.Now()
	rto.Add("replication caught up", d.since(tS), d.since(tC))
	if !ok {
		d.note("replication did not catch up within %v after the restart", sc.Failover.Timeout.D())
		rto.Incomplete = true
	}
	d.printf("replication caught up")
	rto.Total = tC.Sub(tF).Seconds()
	// Let it run steady again, then drain.
	_ = kafkautil.Sleep(ctx, min(sc.Phases.After.D(), 3*time.Second))
	stopProducers()
	<-prodDone
	d.setPhase("drain")
	if !waitFor(ctx, sc.Failover.Timeout.D(), d.allOnTarget) {
		d.note("not every acknowledged record reached the target within %v of the producers stopping", sc.Failover.Timeout.D())
	}
	d.finalCheck(ctx)
	// Consumers (still on the source) catch up too.
	waitFor(ctx, sc.Failover.Timeout.D(), func() bool {
		for _, g := range d.groups {
			if !g.processedAll() {
				return false
			}
		}
		return true
	})
	return d.rep.Stop()
}

// ackedMarks is the number of acknowledged records per partition now.
func (d *drill) ackedMarks() map[TP]int {
	m := map[TP]int{}
	for _, st := range d.streams {
		for p := int32(0); p < st.partitions; p++ {
			m[TP{st.topic, p}] = len(st.ledger.Records(p))
		}
	}
	return m
}

// reached reports whether the first marks[tp] acknowledged records of every
// partition are on the target.
func (d *drill) reached(marks map[TP]int) bool {
	for _, st := range d.streams {
		for p := int32(0); p < st.partitions; p++ {
			acked := st.ledger.Records(p)[:marks[TP{st.topic, p}]]
			var n int64
			d.ck.view(st.topic, p, func(s *seqSet) { n, _ = lagOf(acked, s) })
			if n > 0 {
				return false
			}
		}
	}
	return true
}

// injectSourceDown takes the source down: the embedded cluster is stopped,
// real clusters run fault.command.
func (d *drill) injectSourceDown(ctx context.Context) error {
	if d.o.Sandbox != nil && d.o.Sandbox.Cluster(d.o.Flow.Source) != nil {
		return d.o.Sandbox.StopCluster(d.o.Flow.Source)
	}
	if d.sc.Fault.Command == "" {
		return fmt.Errorf("fault source-down on real clusters needs fault.command (a command that takes cluster %s down)", d.o.Flow.Source)
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, "sh", "-c", d.sc.Fault.Command)
	cmd.Env = append(os.Environ(), "GODWIT_DRILL_SOURCE="+d.o.Flow.Source)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("fault.command: %v: %s", err, out)
	}
	return nil
}

func (d *drill) failover(ctx context.Context, rto *drillreport.RTO, stopProducers func(), prodDone chan struct{}, stopSrcConsumers func(), consWG *sync.WaitGroup) (*FailoverResult, error) {
	sc := d.sc
	d.setPhase("fault")
	tF := time.Now()
	rto.FaultAt = d.since(tF)
	var tD time.Time
	if sc.Fault.Type == drillreport.FaultSourceDown {
		d.printf("FAULT source-down: taking cluster %s down", d.o.Flow.Source)
		if err := d.injectSourceDown(ctx); err != nil {
			return nil, err
		}
		d.srcUp.Store(false)
		// The source region is gone: its producers and consumers with it.
		stopProducers()
		stopSrcConsumers()
		// Records in flight to the dead cluster never complete: closing
		// the producer fails them (outcome unknown), so the ledger is
		// final: every acknowledged record is in it.
		closeWithin(d.pcl, 5*time.Second)
		select {
		case <-prodDone:
		case <-time.After(10 * time.Second):
			d.note("the producers did not stop within 10s of the source going down; records acknowledged after that are not counted")
		}
		consWG.Wait()
		// Detect: every probe failed for DetectAfter.
		ok := waitFor(ctx, sc.Failover.Timeout.D(), func() bool {
			ds := d.downSince.Load()
			return ds != 0 && time.Since(time.Unix(0, ds)) >= sc.Failover.DetectAfter.D()
		})
		if !ok {
			return nil, fmt.Errorf("drill: the source still answered %v after the fault", sc.Failover.Timeout.D())
		}
		tD = time.Now()
		rto.Add("detect", d.since(tF), d.since(tD))
		d.printf("detected: %s has failed every probe for %v", d.o.Flow.Source, sc.Failover.DetectAfter.D())
		d.setPhase("declare")
		_ = kafkautil.Sleep(ctx, sc.Failover.DecisionDelay.D())
		rto.Add("declare", d.since(tD), d.since(time.Now()))
		d.printf("declared: failing over (decision delay %v)", sc.Failover.DecisionDelay.D())
	} else if d.part != nil {
		if err := d.part.fault(ctx, rto, tF); err != nil {
			return nil, err
		}
	} else {
		d.printf("planned failover: stopping producers and consumers on %s", d.o.Flow.Source)
		stopProducers()
		<-prodDone
		stopSrcConsumers()
		consWG.Wait()
		rto.Add("stop clients", d.since(tF), d.since(time.Now()))
	}

	d.setPhase("failover")
	d.printf("failover: %s", map[bool]string{true: "planned", false: "unplanned"}[sc.Planned()])
	tC := time.Now()
	topics := make([]string, 0, len(d.streams))
	for _, st := range d.streams {
		topics = append(topics, st.topic)
	}
	groups := make([]string, 0, len(d.groups))
	for _, g := range d.groups {
		groups = append(groups, g.name)
	}
	fo, foErr := d.o.Failover(ctx, FailoverRequest{
		Config: d.standby, Flow: d.o.Flow, Topics: topics, Groups: groups,
		Timeout: sc.Failover.Timeout.D(), SourceTimeout: sc.Failover.SourceTimeout.D(),
		Logger: d.log.With("component", "failover"),
	})
	tE := time.Now()
	if foErr != nil {
		d.printf("failover failed: %v", foErr)
		d.note("failover: %v", foErr)
	}
	var hook time.Duration
	if fo != nil {
		for _, s := range fo.Steps {
			if s.Name == "cutover" {
				hook += s.Duration
			}
		}
	}
	hook = min(hook, tE.Sub(tC))
	rto.Add("failover command", d.since(tC), d.since(tE.Add(-hook)))
	rto.Add("cutover hook", d.since(tE.Add(-hook)), d.since(tE))
	d.printf("failover done in %.1fs", tE.Sub(tC).Seconds())
	if d.part != nil {
		d.part.clientsMoved(stopProducers, prodDone, stopSrcConsumers, consWG)
	}
	// The replicator is fenced for the failed-over topics; the drill
	// stops it so nothing else writes the target.
	if err := d.rep.Stop(); err != nil {
		d.note("stopping the replicator: %v", err)
	}
	if fo == nil {
		return nil, foErr
	}

	// Consumers resume on the target.
	d.setPhase("resume")
	tgtCtx, stopTgt := context.WithCancel(ctx)
	defer stopTgt()
	var tgtWG sync.WaitGroup
	for _, g := range d.groups {
		g.committedOnTarget = fo.GroupOffsets[g.name]
		g.setTranslatedFrom(fo.GroupSourceOffsets[g.name])
		if err := g.start(tgtCtx, &tgtWG, true); err != nil {
			return fo, err
		}
	}
	// What the target holds now is final: count it, and make sure the
	// live checker has read all of it.
	d.finalCheck(ctx)
	d.checkerComplete(ctx)
	resumed := waitFor(ctx, sc.Failover.Timeout.D(), func() bool {
		for _, g := range d.groups {
			if g.assigned.Load() == 0 {
				return false
			}
		}
		return true
	})
	var tR time.Time
	for _, g := range d.groups {
		tR = maxTime(tR, time.Unix(0, g.assigned.Load()))
	}
	if !resumed {
		tR = time.Now()
		rto.Incomplete = true
		d.note("consumers were not assigned their partitions on the target within %v", sc.Failover.Timeout.D())
	}
	rto.Add("consumers resumed", d.since(tE), d.since(tR))
	d.printf("consumers resumed on %s", d.o.Flow.Target)
	caught := waitFor(ctx, sc.Failover.Timeout.D(), func() bool {
		for _, g := range d.groups {
			if !g.caughtUpOnTarget() {
				return false
			}
		}
		return true
	})
	tU := time.Now()
	if !caught {
		rto.Incomplete = true
		d.note("consumers did not catch up on the target within %v", sc.Failover.Timeout.D())
	}
	rto.Add("consumers caught up", d.since(tR), d.since(tU))
	rto.Total = tU.Sub(tF).Seconds()
	d.printf("consumers caught up: RTO %.1fs", rto.Total)
	stopTgt()
	tgtWG.Wait()
	return fo, foErr
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
