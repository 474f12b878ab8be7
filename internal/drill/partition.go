package drill

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/netfault"
)

// netPartition is the network-partition fault. The standby region (the
// replicator, the failover and the drill's source probe) loses its path to
// the source; the primary region (the drill's producers and source
// consumers) keeps writing and reading, and keeps getting
// acknowledgements, until the failover has moved the clients.
//
// The standby side's clients are built from cfg, whose source cluster
// dials through a netfault proxy; the primary side's from the drill's own
// config, which does not. A replicator process cannot be routed through
// the proxy, so it needs fault.command to cut it (and fault.heal_command
// to restore it).
type netPartition struct {
	d     *drill
	proxy *netfault.Proxy
	cfg   *config.Config

	mu            sync.Mutex
	cutAt         time.Time
	resetConns    int
	writesStopped time.Time
	healed        bool
	healErrs      []string
}

func newNetPartition(d *drill) *netPartition {
	src := d.o.Config.Clusters[d.o.Flow.Source]
	proxy := netfault.New(src.Dial)
	cfg := *d.o.Config
	cfg.Clusters = maps.Clone(d.o.Config.Clusters)
	routed := *src
	routed.Dial = proxy.Dial
	cfg.Clusters[d.o.Flow.Source] = &routed
	return &netPartition{d: d, proxy: proxy, cfg: &cfg}
}

// checkReplicator refuses a replicator the proxy cannot cut when no
// fault.command cuts it instead.
func (p *netPartition) checkReplicator(rep Replicator) error {
	if rep.Kind() == "in-process" || p.d.sc.Fault.Command != "" {
		return nil
	}
	return fmt.Errorf("fault network-partition: the replicator runs as a %s, which the drill cannot route through its own cuttable proxy (that works for the in-process replicator: godwit drill --replicator in-process); "+
		"set fault.command to a command that cuts that replicator's network path to cluster %s (e.g. an iptables rule on its host) and fault.heal_command to one that restores it", rep.Kind(), p.d.o.Flow.Source)
}

// runHook runs a fault command (sh -c) with the source alias in the
// environment.
func (p *netPartition) runHook(ctx context.Context, key, command string) error {
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, "sh", "-c", command)
	cmd.Env = append(os.Environ(), "GODWIT_DRILL_SOURCE="+p.d.o.Flow.Source,
		"GODWIT_DRILL_SOURCE_BOOTSTRAP="+strings.Join(p.d.o.Config.Clusters[p.d.o.Flow.Source].BootstrapServers, ","))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", key, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// cut partitions the standby region from the source. The cut is in place
// once the proxy is cut and fault.command (if any) has returned: that is
// cutAt.
func (p *netPartition) cut(ctx context.Context) error {
	p.mu.Lock()
	p.cutAt = time.Now()
	p.resetConns = p.proxy.Partition()
	p.mu.Unlock()
	if c := p.d.sc.Fault.Command; c != "" {
		err := p.runHook(ctx, "fault.command", c)
		p.mu.Lock()
		p.cutAt = time.Now()
		p.mu.Unlock()
		if err != nil {
			return fmt.Errorf("drill: cutting the network with %w (the heal command runs at the end anyway)", err)
		}
	}
	return nil
}

// heal restores the path (once) and records any failure to.
func (p *netPartition) heal(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.healed || p.cutAt.IsZero() {
		return
	}
	p.healed = true
	p.proxy.Heal()
	if c := p.d.sc.Fault.HealCommand; c != "" {
		// Even a cancelled drill must not leave the network cut.
		if err := p.runHook(context.WithoutCancel(ctx), "fault.heal_command", c); err != nil {
			p.healErrs = append(p.healErrs, err.Error())
		}
	}
}

// close heals a path a failed drill left cut and stops the proxy.
func (p *netPartition) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p.heal(ctx)
	p.mu.Lock()
	errs := p.healErrs
	p.mu.Unlock()
	for _, e := range errs {
		p.d.log.Error("the network partition may still be in place: restore it by hand", "err", e)
	}
	_ = p.proxy.Close()
}

// fault cuts the path, then detects and declares like source-down; the
// primary region's clients keep running.
func (p *netPartition) fault(ctx context.Context, rto *drillreport.RTO, tF time.Time) error {
	d, sc := p.d, p.d.sc
	d.printf("FAULT network-partition: cutting the network path from %s's side (replicator, failover, probes) to %s; producers and consumers in %s keep running",
		d.o.Flow.Target, d.o.Flow.Source, d.o.Flow.Source)
	if err := p.cut(ctx); err != nil {
		return err
	}
	d.printf("partition: %d open connections to %s reset; new ones get no answer", p.resetConns, d.o.Flow.Source)
	ok := waitFor(ctx, sc.Failover.Timeout.D(), func() bool {
		ds := d.downSince.Load()
		return ds != 0 && time.Since(time.Unix(0, ds)) >= sc.Failover.DetectAfter.D()
	})
	if !ok {
		return fmt.Errorf("drill: the source still answered the standby side's probes %v after the network partition: is fault.command cutting the path from this host?", sc.Failover.Timeout.D())
	}
	tD := time.Now()
	rto.Add("detect", d.since(tF), d.since(tD))
	d.printf("detected: %s has failed every probe from %s's side for %v", d.o.Flow.Source, d.o.Flow.Target, sc.Failover.DetectAfter.D())
	d.setPhase("declare")
	_ = kafkautil.Sleep(ctx, sc.Failover.DecisionDelay.D())
	rto.Add("declare", d.since(tD), d.since(time.Now()))
	d.printf("declared: failing over (decision delay %v)", sc.Failover.DecisionDelay.D())
	return nil
}

// clientsMoved stops the primary region's producers and consumers once the
// failover (and its cutover hook) moved them; from here the ledger is final.
func (p *netPartition) clientsMoved(wl *running) {
	wl.stopAll()
	p.mu.Lock()
	p.writesStopped = time.Now()
	p.mu.Unlock()
	p.d.printf("clients moved: %s's producers and consumers stopped (%d records acknowledged in all)", p.d.o.Flow.Source, p.d.acked())
}

// finish heals the path, reads what the source still holds through it,
// and adds the partition's evidence to the report.
func (p *netPartition) finish(ctx context.Context, r *drillreport.Report, fo *FailoverResult) {
	d := p.d
	p.heal(ctx)
	healedAt := time.Now()
	d.printf("healed: the network path to %s is restored (the source was never down)", d.o.Flow.Source)
	p.mu.Lock()
	np := &drillreport.NetworkPartitionReport{Method: "proxy", CutAt: d.since(p.cutAt), HealedAt: d.since(healedAt), Proxy: drillreport.ProxyStats(p.proxy.Stats())}
	if !p.writesStopped.IsZero() {
		np.WritesStoppedAt = d.since(p.writesStopped)
	}
	for _, e := range p.healErrs {
		r.Notes = append(r.Notes, "the network partition may still be in place: "+e)
	}
	writesStopped := p.writesStopped
	p.mu.Unlock()
	if d.sc.Fault.Command != "" {
		np.Method = "proxy+command"
	}
	r.NetworkPartition = np

	// The observation per partition, as the failover used it.
	frep, _ := fo.rawReport()
	obs := map[TP]failover.PartitionReport{}
	if frep != nil {
		for _, pr := range frep.Partitions {
			obs[TP{pr.SourceTopic, pr.Partition}] = pr
		}
	}
	// Lost records per partition (acknowledged, not on the target), by
	// source offset.
	lostOffsets := map[TP][]int64{}
	var newestLost time.Time
	for _, st := range d.streams {
		for part := int32(0); part < st.partitions; part++ {
			tp := TP{st.topic, part}
			acked := st.ledger.Records(part)
			d.ck.view(st.topic, part, func(s *seqSet) {
				for _, a := range acked {
					if !s.has(a.Seq) {
						lostOffsets[tp] = append(lostOffsets[tp], a.Offset)
						if a.Timestamp.After(newestLost) {
							newestLost = a.Timestamp
						}
					}
				}
			})
			o, ok := obs[tp]
			if !ok {
				continue
			}
			po := drillreport.PartitionObservation{Topic: st.topic, Partition: part, ObservedEndOffset: o.SourceEndOffset, ObservedAt: o.SourceEndObservedAt}
			for _, a := range acked {
				if a.Offset >= o.SourceEndOffset {
					po.AckedAfterObservation++
				}
			}
			np.AckedAfterObservation += po.AckedAfterObservation
			if np.LastObservedAt == nil || o.SourceEndObservedAt.After(*np.LastObservedAt) {
				t := o.SourceEndObservedAt
				np.LastObservedAt = &t
			}
			np.Partitions = append(np.Partitions, po)
		}
	}
	sort.Slice(np.Partitions, func(i, j int) bool {
		a, b := np.Partitions[i], np.Partitions[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	if np.LastObservedAt != nil {
		np.ObservedBeforeCut = p.cutAt.Sub(*np.LastObservedAt).Seconds()
	}
	var atRisk int64
	if r.Totals.AtRisk != nil {
		atRisk = *r.Totals.AtRisk
	}
	np.Unexplained = r.Totals.Lost - atRisk - np.AckedAfterObservation
	if rec, err := p.recoverable(ctx, lostOffsets); err != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("after the heal, reading the source's offsets through the restored path failed: %v", err))
	} else {
		np.RecoverableOnSource = &rec
	}

	// With the primary still writing, the loss runs until the clients
	// moved, not until the fault: the RPO must say so.
	if r.Totals.Lost > 0 && !writesStopped.IsZero() {
		var oldestLost time.Time
		for _, st := range d.streams {
			for part := int32(0); part < st.partitions; part++ {
				acked := st.ledger.Records(part)
				d.ck.view(st.topic, part, func(s *seqSet) {
					for _, a := range acked {
						if !s.has(a.Seq) {
							if oldestLost.IsZero() || a.Timestamp.Before(oldestLost) {
								oldestLost = a.Timestamp
							}
							break
						}
					}
				})
			}
		}
		if !oldestLost.IsZero() {
			r.LossWindow = max(r.LossWindow, writesStopped.Sub(oldestLost).Seconds())
			r.RPOSeconds = max(r.RPOSeconds, r.LossWindow)
			passed := true
			for i := range r.Objectives {
				ob := &r.Objectives[i]
				if ob.Name == "rpo" {
					ob.Achieved = r.RPOSeconds
					ob.Pass = r.RPOSeconds <= ob.Target
					ob.Detail = "worst replication lag before the partition, or the age of the oldest lost record when the primary's writes stopped (the failover moved the clients) if larger"
				}
				passed = passed && ob.Pass
			}
			r.Passed = passed
		}
	}

	np.Explanation = p.explain(r, np)
	r.Statement = strings.TrimSuffix(r.Statement, ".") + "; " + np.Explanation
}

// recoverable counts the lost records the source still holds, reading its
// offsets through the healed path (the standby side's view).
func (p *netPartition) recoverable(ctx context.Context, lost map[TP][]int64) (int64, error) {
	src, err := cluster.New(p.cfg, p.d.o.Flow.Source)
	if err != nil {
		return 0, err
	}
	cl, err := src.Client("drill-heal-check", nil, kgo.RetryTimeout(15*time.Second))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	topics := make([]string, 0, len(p.d.streams))
	for _, st := range p.d.streams {
		topics = append(topics, st.topic)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(cctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, cluster.Explain(src, err)
	}
	ends, err := adm.ListEndOffsets(cctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, cluster.Explain(src, err)
	}
	var n int64
	for tp, offs := range lost {
		s, _ := starts.Lookup(tp.Topic, tp.Partition)
		e, _ := ends.Lookup(tp.Topic, tp.Partition)
		for _, o := range offs {
			if o >= s.Offset && o < e.Offset {
				n++
			}
		}
	}
	return n, nil
}

// explain is the sentence the statement ends with.
func (p *netPartition) explain(r *drillreport.Report, np *drillreport.NetworkPartitionReport) string {
	var b strings.Builder
	if r.Totals.AtRisk == nil || np.LastObservedAt == nil {
		fmt.Fprintf(&b, "in the network partition the primary kept acknowledging writes until the clients moved %.1f s after the cut; the failover reported no observation of the source, so the lost records cannot be compared with one", np.WritesStoppedAt-np.CutAt)
	} else {
		fmt.Fprintf(&b, "godwit's at-risk figure comes from its last observation of the source's end offsets, which cannot see past the partition, while the primary kept acknowledging writes until the clients moved %.1f s after the cut: %d of the lost records were acknowledged after that observation (at or past the end offsets it saw), so lost %d = at risk %d + %d acknowledged after the observation",
			np.WritesStoppedAt-np.CutAt, np.AckedAfterObservation, r.Totals.Lost, *r.Totals.AtRisk, np.AckedAfterObservation)
		if np.Unexplained != 0 {
			fmt.Fprintf(&b, " %+d that neither explains (see the per-partition figures)", np.Unexplained)
		}
	}
	if np.RecoverableOnSource != nil {
		fmt.Fprintf(&b, "; after the heal the source still holds %d of the %d lost records (godwit failback recovers them)", *np.RecoverableOnSource, r.Totals.Lost)
	}
	b.WriteString(".")
	return b.String()
}

// rawReport returns internal/failover's report when the failover was
// godwit's.
func (fo *FailoverResult) rawReport() (*failover.Report, bool) {
	if fo == nil {
		return nil, false
	}
	rep, ok := fo.Report.(*failover.Report)
	return rep, ok
}
