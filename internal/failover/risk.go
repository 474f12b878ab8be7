package failover

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/offsets"
)

type assessResult struct {
	lagResult
	groupsResult
}

// assess computes the data at risk and the groups' offsets from the
// target alone (unplanned).
func (r *runner) assess(ctx context.Context) (*assessResult, error) {
	store, err := r.store(ctx)
	if err != nil {
		return nil, err
	}
	// The source observer's records (written every second outside the
	// data transactions) know the source's end even where the target
	// stopped taking data; the progress record's own observation is the
	// fallback (a flow last run by an older godwit) and whichever knows
	// more of the source wins.
	observed, err := flowstate.ReadObservations(ctx, r.dcl, naming.ObservedTopic(r.o.Flow))
	if err != nil {
		return nil, cluster.Explain(r.dst, fmt.Errorf("flow %s: read the source observations: %w", r.o.Flow.Name, err))
	}
	topics := r.topicSet()
	now := r.now()
	var res assessResult
	for _, tp := range store.Partitions() {
		if !topics[tp.Topic] {
			continue
		}
		p, _ := store.Progress(tp)
		ob := flowstate.Later(flowstate.FromProgress(p), observed[tp])
		pr := PartitionReport{SourceTopic: tp.Topic, TargetTopic: p.TargetTopic, Partition: tp.Partition,
			SourceEndOffset: max(ob.End, p.Next), ReplicatedOffset: p.Next}
		if ob.At > 0 {
			pr.SourceEndObservedAt = ob.ObservedAt()
			age := max(now.Sub(pr.SourceEndObservedAt).Seconds(), 0)
			pr.ObservationAgeSeconds = &age
		}
		pr.AtRiskRecords = pr.SourceEndOffset - pr.ReplicatedOffset
		res.Partitions = append(res.Partitions, pr)
	}
	sortPartitions(res.Partitions)
	r.estimate(ctx, res.Partitions)
	res.RPO = sumRPO(res.Partitions)
	// Groups from the checkpoints the replicator stored on the target.
	cks, err := offsets.ReadCheckpoints(ctx, r.dcl, offsets.CheckpointsTopic(r.o.Flow.Source))
	if err != nil {
		return nil, cluster.Explain(r.dst, err)
	}
	committed := map[string]map[flowstate.TP]offsets.Committed{}
	for _, c := range cks {
		if !r.groupSelected(c.Group) {
			continue
		}
		topic, ok := store.SourceTopic(c.Topic)
		if !ok {
			continue
		}
		if committed[c.Group] == nil {
			committed[c.Group] = map[flowstate.TP]offsets.Committed{}
		}
		committed[c.Group][flowstate.TP{Topic: topic, Partition: c.Partition}] = offsets.Committed{Offset: c.Upstream, Metadata: c.Metadata}
	}
	res.Groups = r.translate(ctx, store, committed, offsets.FromCheckpoints)
	// How old each position is: the replay an unplanned failover causes
	// is what the group committed after it.
	conf, err := offsets.ReadConfirmation(ctx, r.dcl, r.o.Flow)
	if err != nil {
		r.log.Warn("cannot read the group positions confirmation; group position ages rest on checkpoint time stamps", "err", cluster.Explain(r.dst, err))
	}
	pos := offsets.GroupPositions(cks, conf)
	for i := range res.Groups {
		g := &res.Groups[i]
		if p, ok := pos[g.Group]; ok {
			at := p.ObservedAt
			g.PositionBasis, g.PositionObservedAt = p.Basis, &at
			g.PositionAgeSeconds = max(0, r.op.StartedAt.Sub(at).Seconds())
		}
	}
	return &res, nil
}

// estimate fills the bytes and seconds estimates of partitions with data
// at risk from their last replicated records on the target.
func (r *runner) estimate(ctx context.Context, ps []PartitionReport) {
	for i := range ps {
		p := &ps[i]
		if p.AtRiskRecords <= 0 {
			continue
		}
		avg, lastTS, ok := r.sampleTarget(ctx, p.TargetTopic, p.Partition)
		if !ok {
			continue
		}
		p.AtRiskBytesEstimate = int64(avg * float64(p.AtRiskRecords))
		if !lastTS.IsZero() && !p.SourceEndObservedAt.IsZero() {
			p.AtRiskSeconds = max(p.SourceEndObservedAt.Sub(lastTS).Seconds(), 0)
		}
	}
}

const sampleRecords = 100

func (r *runner) sampleTarget(ctx context.Context, topic string, part int32) (avg float64, last time.Time, ok bool) {
	adm := kadm.NewClient(r.dcl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, time.Time{}, false
	}
	e, found := ends.Lookup(topic, part)
	if !found || e.Err != nil || e.Offset <= 0 {
		return 0, time.Time{}, false
	}
	recs, err := readTail(ctx, r.dcl, topic, part, e.Offset)
	if err != nil || len(recs) == 0 {
		return 0, time.Time{}, false
	}
	var total int
	for _, rec := range recs {
		total += len(rec.Key) + len(rec.Value)
		for _, h := range rec.Headers {
			if !strings.HasPrefix(h.Key, naming.HeaderPrefix) { // godwit's provenance headers are not source bytes
				total += len(h.Key) + len(h.Value)
			}
		}
	}
	return float64(total) / float64(len(recs)), recs[len(recs)-1].Timestamp, true
}

// staleObservation: an observation of the source end offsets older than
// this at failover means the replicator had lost the source before it.
const staleObservation = 3 * time.Second

func sumRPO(ps []PartitionReport) RPO {
	var out RPO
	for _, p := range ps {
		out.Records += p.AtRiskRecords
		out.Bytes += p.AtRiskBytesEstimate
		out.Seconds = max(out.Seconds, p.AtRiskSeconds)
		if at := p.SourceEndObservedAt; !at.IsZero() && (out.ObservedAt == nil || at.Before(*out.ObservedAt)) {
			out.ObservedAt = &at
		}
	}
	out.BytesEstimated = true
	return out
}

// readTail reads up to sampleRecords committed records below end.
func readTail(ctx context.Context, cl *kgo.Client, topic string, part int32, end int64) ([]*kgo.Record, error) {
	return kafkautil.ReadRange(ctx, cl, topic, part, max(end-2*sampleRecords, 0), end, true)
}
