package replicate

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
)

// observer is a flow's source observer (invariant 6): every
// flowstate.ObserveInterval it reads the source's log start and end
// offsets of every partition of the slots this process owns and persists
// them on the target, one record per slot in the flow's observed topic,
// with a producer of its own and outside the data transactions. A target
// that refuses data on some partitions (or a slot stuck retrying) then
// makes the lag and the data at risk grow instead of freezing at the last
// committed progress record, and a failover after the source and the
// replicator died counts everything the source acknowledged up to the
// last persisted observation.
//
// It also owns the lag gauges: observed source end minus the committed
// progress read back from the target, so /metrics agrees with status and
// failover, which read the same two records. When the source cannot be
// observed the lag series is withdrawn (unknown) rather than left at its
// last value or 0; godwit_source_observed_timestamp_seconds says since
// when.
type observer struct {
	f        *Flow
	src, dst *kgo.Client
	srcAdm   *kadm.Client
	dstAdm   *kadm.Client
	topic    string

	// known is the last successful observation of each partition (kept
	// while the source is unreachable: it is what "unknown since" names).
	known map[flowstate.TP]flowstate.PartitionObservation
	// persisted is the last observation the target acknowledged.
	persisted map[flowstate.TP]flowstate.PartitionObservation
	// progress caches each owned slot's committed progress record by the
	// progress partition's last stable offset, so an idle slot is not
	// re-read every second.
	progress map[int]cachedProgress
	// reported are the partitions this instance exports series for.
	reported map[flowstate.TP]bool
	failing  bool
}

type cachedProgress struct {
	lso  int64
	next map[flowstate.TP]int64
}

func (f *Flow) newObserver() (*observer, error) {
	src, err := f.opts.Source.Client(f.cfg.Name+"-observer", f.log, kgo.RetryTimeout(flowstate.ObserveInterval))
	if err != nil {
		return nil, err
	}
	dst, err := f.opts.Target.Client(f.cfg.Name+"-observer", f.log,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// An observation is superseded a second later: a duplicate is
		// harmless, and no idempotent sequence can wedge the writer.
		kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(2*flowstate.ObserveInterval),
		kgo.MetadataMinAge(250*time.Millisecond),
	)
	if err != nil {
		src.Close()
		return nil, err
	}
	return &observer{
		f: f, src: src, dst: dst, srcAdm: kadm.NewClient(src), dstAdm: kadm.NewClient(dst),
		topic:     naming.ObservedTopic(f.cfg),
		known:     map[flowstate.TP]flowstate.PartitionObservation{},
		persisted: map[flowstate.TP]flowstate.PartitionObservation{},
		progress:  map[int]cachedProgress{},
		reported:  map[flowstate.TP]bool{},
	}, nil
}

// observeLoop runs the observer until ctx ends.
func (f *Flow) observeLoop(ctx context.Context) {
	o, err := f.newObserver()
	if err != nil {
		f.log.Error("source observer not started: lag and data at risk rest on the progress records alone", "err", err)
		return
	}
	defer o.src.Close()
	defer o.dst.Close()
	defer o.dropSeries(nil)
	t := time.NewTicker(flowstate.ObserveInterval)
	defer t.Stop()
	for {
		o.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick observes, persists and exports once.
func (o *observer) tick(ctx context.Context) {
	f := o.f
	slots := map[int][]flowstate.TP{}
	topics := map[string]bool{}
	for _, s := range f.ownedSlots() {
		for tp := range f.partitionsForSlot(int(s)) {
			slots[int(s)] = append(slots[int(s)], tp)
			topics[tp.Topic] = true
		}
	}
	owned := map[flowstate.TP]bool{}
	for _, tps := range slots {
		for _, tp := range tps {
			owned[tp] = true
		}
	}
	o.dropSeries(owned)
	if len(topics) == 0 {
		return
	}
	now := f.now()
	fresh := o.observe(ctx, slices.Sorted(maps.Keys(topics)), now)
	if fresh > 0 {
		o.persist(ctx, slots, now)
	}
	o.export(ctx, slots, now)
}

// observe reads the source's offsets of topics' partitions and returns
// how many were observed.
func (o *observer) observe(ctx context.Context, topics []string, now time.Time) int {
	f := o.f
	// Bounded by the interval, so an unreachable source does not hold
	// up the export of "unknown".
	octx, cancel := context.WithTimeout(ctx, flowstate.ObserveInterval)
	defer cancel()
	ends, err := o.srcAdm.ListEndOffsets(octx, topics...)
	var starts kadm.ListedOffsets
	if err == nil {
		starts, err = o.srcAdm.ListStartOffsets(octx, topics...)
	}
	if err != nil {
		if ctx.Err() == nil {
			o.noteFailure(cluster.Explain(f.opts.Source, fmt.Errorf("flow %s: observe source end offsets: %w", f.cfg.Name, err)))
		}
		return 0
	}
	n := 0
	var perr error
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			if perr == nil {
				perr = fmt.Errorf("flow %s: observe %s[%d] on %s: %w", f.cfg.Name, e.Topic, e.Partition, f.opts.Source, e.Err)
			}
			return
		}
		s, ok := starts.Lookup(e.Topic, e.Partition)
		if !ok || s.Err != nil {
			return
		}
		tp := flowstate.TP{Topic: e.Topic, Partition: e.Partition}
		o.known[tp] = flowstate.PartitionObservation{Topic: e.Topic, Partition: e.Partition, LogStart: s.Offset, End: e.Offset, At: now.UnixMilli()}
		n++
	})
	if perr != nil {
		o.noteFailure(perr)
	} else if o.failing {
		o.failing = false
		f.log.Info("source observable again")
	}
	return n
}

func (o *observer) noteFailure(err error) {
	o.f.m.Errors.WithLabelValues(o.f.cfg.Name, "observe").Inc()
	if !o.failing {
		o.failing = true
		o.f.log.Warn("cannot observe the source's end offsets; lag is unknown until it answers (godwit_source_observed_timestamp_seconds says since when)", "err", err)
	}
}

// persist writes one observation record per owned slot.
func (o *observer) persist(ctx context.Context, slots map[int][]flowstate.TP, now time.Time) {
	f := o.f
	var recs []*kgo.Record
	var wrote []flowstate.TP
	for slot, tps := range slots {
		ob := &flowstate.Observation{Version: 1, Flow: f.cfg.Name, Slot: slot, WrittenAt: now.UnixMilli()}
		for _, tp := range tps {
			if k, ok := o.known[tp]; ok {
				ob.Partitions = append(ob.Partitions, k)
				wrote = append(wrote, tp)
			}
		}
		if len(ob.Partitions) == 0 {
			continue
		}
		sort.Slice(ob.Partitions, func(i, j int) bool {
			return flowstate.TP{Topic: ob.Partitions[i].Topic, Partition: ob.Partitions[i].Partition}.Compare(
				flowstate.TP{Topic: ob.Partitions[j].Topic, Partition: ob.Partitions[j].Partition}) < 0
		})
		v, err := flowstate.EncodeObservation(ob)
		if err != nil {
			f.log.Error("encode observation", "err", err)
			return
		}
		recs = append(recs, &kgo.Record{Topic: o.topic, Partition: int32(slot), Key: flowstate.ObservedKey(slot), Value: v, Timestamp: now})
	}
	if len(recs) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 2*flowstate.ObserveInterval)
	defer cancel()
	if err := o.dst.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		if ctx.Err() == nil {
			f.m.Errors.WithLabelValues(f.cfg.Name, "observe").Inc()
			f.log.Warn("cannot persist the source observation on the target; failover would count from the previous one", "topic", o.topic, "err", cluster.Explain(f.opts.Target, err))
		}
		return
	}
	for _, tp := range wrote {
		o.persisted[tp] = o.known[tp]
		f.m.ObservedAt.WithLabelValues(f.cfg.Name, tp.Topic, strconv.Itoa(int(tp.Partition))).Set(float64(o.known[tp].At) / 1000)
	}
}

// export sets the lag gauges from the observation and the progress
// committed on the target.
func (o *observer) export(ctx context.Context, slots map[int][]flowstate.TP, now time.Time) {
	f := o.f
	next := o.committed(ctx, slots)
	for _, tps := range slots {
		for _, tp := range tps {
			part := strconv.Itoa(int(tp.Partition))
			k, ok := o.known[tp]
			o.reported[tp] = true
			if !ok || now.Sub(time.UnixMilli(k.At)) > flowstate.StaleObservation {
				// Unknown: no value rather than a stale or zero one.
				f.m.Lag.DeleteLabelValues(f.cfg.Name, tp.Topic, part)
				f.m.SourceEnd.DeleteLabelValues(f.cfg.Name, tp.Topic, part)
				continue
			}
			f.m.SourceEnd.WithLabelValues(f.cfg.Name, tp.Topic, part).Set(float64(k.End))
			if n, ok := next[tp]; ok {
				f.m.Lag.WithLabelValues(f.cfg.Name, tp.Topic, part).Set(float64(max(k.End-n, 0)))
			}
		}
	}
}

// committed returns the next source offset committed on the target for
// the owned slots' partitions, from the progress records (cached while a
// slot's progress partition does not move). A slot whose progress cannot
// be read keeps its previous figures.
func (o *observer) committed(ctx context.Context, slots map[int][]flowstate.TP) map[flowstate.TP]int64 {
	f := o.f
	out := map[flowstate.TP]int64{}
	rctx, cancel := context.WithTimeout(ctx, flowstate.ObserveInterval)
	defer cancel()
	lsos, err := o.dstAdm.ListCommittedOffsets(rctx, f.progressTopic)
	if err == nil {
		err = lsos.Error()
	}
	for slot := range slots {
		c, cached := o.progress[slot]
		if err == nil {
			if l, ok := lsos.Lookup(f.progressTopic, int32(slot)); ok && (!cached || l.Offset != c.lso) {
				if fresh, rerr := o.readProgress(rctx, slot, l.Offset); rerr == nil {
					c, cached = fresh, true
					o.progress[slot] = c
				}
			}
		}
		if cached {
			for tp, n := range c.next {
				out[tp] = n
			}
		}
	}
	for slot := range o.progress {
		if _, ok := slots[slot]; !ok {
			delete(o.progress, slot)
		}
	}
	return out
}

func (o *observer) readProgress(ctx context.Context, slot int, lso int64) (cachedProgress, error) {
	c := cachedProgress{lso: lso, next: map[flowstate.TP]int64{}}
	rec, err := kafkautil.LastRecord(ctx, o.dst, o.f.progressTopic, int32(slot), 0, lso, true)
	if err != nil || rec == nil {
		return c, err
	}
	p, err := flowstate.DecodeProgress(rec.Value)
	if err != nil {
		return c, err
	}
	for _, pp := range p.Partitions {
		c.next[flowstate.TP{Topic: pp.Topic, Partition: pp.Partition}] = pp.Next
	}
	return c, nil
}

// dropSeries withdraws the series of partitions this instance no longer
// owns (all of them when keep is nil): their new owner exports them.
func (o *observer) dropSeries(keep map[flowstate.TP]bool) {
	f := o.f
	for tp := range o.reported {
		if keep[tp] {
			continue
		}
		part := strconv.Itoa(int(tp.Partition))
		f.m.Lag.DeleteLabelValues(f.cfg.Name, tp.Topic, part)
		f.m.SourceEnd.DeleteLabelValues(f.cfg.Name, tp.Topic, part)
		f.m.ObservedAt.DeleteLabelValues(f.cfg.Name, tp.Topic, part)
		delete(o.reported, tp)
		delete(o.known, tp)
		delete(o.persisted, tp)
	}
}
