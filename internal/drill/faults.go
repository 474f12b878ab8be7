package drill

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/kafkautil"
)

// running is the workload a fault phase stops: the producers (prodDone
// closes once they returned) and the consumers on the source.
type running struct {
	stopProducers    func()
	prodDone         chan struct{}
	stopSrcConsumers func()
	consWG           *sync.WaitGroup
}

// stopAll stops the producers and the source consumers and waits for them:
// from here the ledger is final.
func (w *running) stopAll() {
	w.stopProducers()
	<-w.prodDone
	w.stopSrcConsumers()
	w.consWG.Wait()
}

// crash kills the replicator, restarts it after RestartAfter and waits
// until every record acknowledged before the restart is on the target.
func (d *drill) crash(ctx context.Context, rto *drillreport.RTO, wl *running) error {
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
	wl.stopProducers()
	<-wl.prodDone
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

func (d *drill) failover(ctx context.Context, rto *drillreport.RTO, wl *running) (*FailoverResult, error) {
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
		wl.stopProducers()
		wl.stopSrcConsumers()
		// Records in flight to the dead cluster never complete: closing
		// the producer fails them (outcome unknown), so the ledger is
		// final: every acknowledged record is in it.
		closeWithin(d.pcl, 5*time.Second)
		select {
		case <-wl.prodDone:
		case <-time.After(10 * time.Second):
			d.note("the producers did not stop within 10s of the source going down; records acknowledged after that are not counted")
		}
		wl.consWG.Wait()
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
		wl.stopAll()
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
		d.part.clientsMoved(wl)
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
