package workload

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// reader consumes a topic incrementally with raw Fetch requests, tracking
// its own fetch positions so that it knows exactly when it has read up to
// an end offset, even when the tail of a partition is control records or
// aborted data (which a read_committed consumer never surfaces).
type reader struct {
	cl            *kgo.Client
	adm           *kadm.Client
	topic         string
	readCommitted bool

	metaOK  bool
	topicID [16]byte
	leaders map[int32]int32
	parts   map[int32]*partState
	notes   []string // things worth reporting (truncation, log start moved)
}

type partState struct {
	start   int64 // first offset we started reading from
	next    int64 // next offset to fetch
	end     int64 // end offset (HWM or LSO) we are reading up to
	records []*kgo.Record
}

func newReader(cl *kgo.Client, topic string, readCommitted bool) *reader {
	return &reader{
		cl:            cl,
		adm:           kadm.NewClient(cl),
		topic:         topic,
		readCommitted: readCommitted,
		parts:         make(map[int32]*partState),
	}
}

func (rd *reader) refreshMetadata(ctx context.Context) error {
	md, err := rd.adm.Metadata(ctx, rd.topic)
	if err != nil {
		return fmt.Errorf("workload: metadata for %s: %w", rd.topic, err)
	}
	td, ok := md.Topics[rd.topic]
	if !ok {
		return fmt.Errorf("workload: topic %s missing from metadata", rd.topic)
	}
	if td.Err != nil {
		return fmt.Errorf("workload: topic %s: %w", rd.topic, td.Err)
	}
	rd.topicID = td.ID
	rd.leaders = make(map[int32]int32, len(td.Partitions))
	for p, pd := range td.Partitions {
		rd.leaders[p] = pd.Leader
	}
	rd.metaOK = true
	return nil
}

// catchUp reads every partition of the topic up to its current end offset
// (last stable offset if read committed, else high watermark).
func (rd *reader) catchUp(ctx context.Context) error {
	if !rd.metaOK {
		if err := rd.refreshMetadata(ctx); err != nil {
			return err
		}
	}
	starts, err := rd.adm.ListStartOffsets(ctx, rd.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		rd.metaOK = false
		return fmt.Errorf("workload: list start offsets of %s: %w", rd.topic, err)
	}
	var ends kadm.ListedOffsets
	if rd.readCommitted {
		ends, err = rd.adm.ListCommittedOffsets(ctx, rd.topic)
	} else {
		ends, err = rd.adm.ListEndOffsets(ctx, rd.topic)
	}
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		rd.metaOK = false
		return fmt.Errorf("workload: list end offsets of %s: %w", rd.topic, err)
	}
	for p, lo := range ends[rd.topic] {
		start := starts[rd.topic][p].Offset
		st := rd.parts[p]
		if st == nil {
			st = &partState{start: start, next: start}
			rd.parts[p] = st
		}
		if lo.Offset < st.next {
			rd.notes = append(rd.notes, fmt.Sprintf("partition %d: end offset went back from %d to %d (truncated or recreated); re-reading", p, st.next, lo.Offset))
			*st = partState{start: start, next: start}
		}
		if st.next < start {
			rd.notes = append(rd.notes, fmt.Sprintf("partition %d: log start offset %d is past our position %d; records deleted", p, start, st.next))
			st.next = start
		}
		st.end = lo.Offset
	}

	for {
		byLeader := make(map[int32][]int32)
		for p, st := range rd.parts {
			if st.next < st.end {
				byLeader[rd.leaders[p]] = append(byLeader[rd.leaders[p]], p)
			}
		}
		if len(byLeader) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("workload: reading %s: %w", rd.topic, err)
		}
		progressed := false
		for leader, ps := range byLeader {
			slices.Sort(ps)
			adv, err := rd.fetch(ctx, leader, ps)
			if err != nil {
				return err
			}
			progressed = progressed || adv
		}
		if !progressed {
			// Leadership moved or the broker is not ready: back off
			// briefly, bounded by ctx, then refresh metadata.
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("workload: reading %s: %w", rd.topic, ctx.Err())
			case <-t.C:
			}
			if err := rd.refreshMetadata(ctx); err != nil {
				return err
			}
		}
	}
}

func (rd *reader) fetch(ctx context.Context, leader int32, ps []int32) (progressed bool, err error) {
	if leader < 0 {
		rd.metaOK = false
		return false, nil
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.MaxBytes = 64 << 20
	if rd.readCommitted {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = rd.topic
	rt.TopicID = rd.topicID
	for _, p := range ps {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.FetchOffset = rd.parts[p].next
		rp.PartitionMaxBytes = 8 << 20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)

	resp, err := req.RequestWith(ctx, rd.cl.Broker(int(leader)))
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("workload: fetch %s: %w", rd.topic, err)
		}
		rd.metaOK = false
		return false, nil // retried after a metadata refresh
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		rd.metaOK = false
		return false, nil
	}
	iso := kgo.ReadUncommitted()
	if rd.readCommitted {
		iso = kgo.ReadCommitted()
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			st := rd.parts[rp.Partition]
			if st == nil {
				continue
			}
			if perr := kerr.ErrorForCode(rp.ErrorCode); perr != nil {
				if errors.Is(perr, kerr.OffsetOutOfRange) {
					// The next catch-up re-lists start offsets and
					// moves past deleted records (noted as such).
					return false, fmt.Errorf("workload: fetch %s partition %d offset %d: %w", rd.topic, rp.Partition, st.next, perr)
				}
				rd.metaOK = false
				continue
			}
			fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
				Offset:         st.next,
				IsolationLevel: iso,
				Topic:          rd.topic,
				Partition:      rp.Partition,
			}, rp, kgo.DefaultDecompressor(), nil)
			if fp.Err != nil {
				return false, fmt.Errorf("workload: decode %s partition %d at offset %d: %w", rd.topic, rp.Partition, st.next, fp.Err)
			}
			// Records past st.end are kept: the broker only returns
			// data below the high watermark / last stable offset.
			st.records = append(st.records, fp.Records...)
			if next > st.next {
				progressed = true
				st.next = next
			}
		}
	}
	if !rd.metaOK {
		if err := rd.refreshMetadata(ctx); err != nil {
			return progressed, err
		}
	}
	return progressed, nil
}
