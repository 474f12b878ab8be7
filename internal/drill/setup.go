package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/workload"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

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
