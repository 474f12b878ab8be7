package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/workload"
)

func newClient(addr string, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(addr, ",")...), kgo.ClientID("godwit-bench")}, opts...)...)
}

func createTopic(ctx context.Context, adm *kadm.Client, name string, partitions int32) error {
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, name)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", name, resp.Err)
	}
	return nil
}

// deleteMatching deletes every topic and group whose name contains token
// (a per-run unique string, so nothing of anyone else's can match).
func deleteMatching(ctx context.Context, adm *kadm.Client, token string) []string {
	var gone []string
	if tds, err := adm.ListTopicsWithInternal(ctx); err == nil {
		var names []string
		for _, n := range tds.Names() {
			if strings.Contains(n, token) {
				names = append(names, n)
			}
		}
		if len(names) > 0 {
			if resp, err := adm.DeleteTopics(ctx, names...); err == nil {
				for _, r := range resp.Sorted() {
					if r.Err == nil {
						gone = append(gone, r.Topic)
					}
				}
			}
		}
	}
	if gs, err := adm.ListGroups(ctx); err == nil {
		var names []string
		for _, g := range gs.Groups() {
			if strings.Contains(g, token) {
				names = append(names, g)
			}
		}
		if len(names) > 0 {
			_, _ = adm.DeleteGroups(ctx, names...)
		}
	}
	return gone
}

// sumEnd is the sum of a topic's high watermarks (0 if it does not exist yet).
func sumEnd(ctx context.Context, adm *kadm.Client, topic string) (int64, int, error) {
	offs, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	var sum int64
	n := 0
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			sum += o.Offset
			n++
		}
	})
	return sum, n, nil
}

// payload is random (incompressible) bytes that record values are sliced
// from: values are never modified, so slices can be shared.
type payload struct{ buf []byte }

func newPayload() payload {
	b := make([]byte, 4<<20)
	_, _ = rand.Read(b)
	return payload{b}
}

func (p payload) value(i int64, size int) []byte {
	if size >= len(p.buf) {
		return p.buf[:size%len(p.buf)]
	}
	off := int((i * 7919) % int64(len(p.buf)-size))
	return p.buf[off : off+size]
}

// load produces n records of size bytes round-robin over the topic's
// partitions, acks=all, idempotent, uncompressed. Each value is random
// bytes behind a workload identity (partition, sequence within the
// partition): on a fresh topic written in order by one idempotent
// producer the sequence is the record's source offset (replay.go).
func load(ctx context.Context, addr, topic string, n int64, size int, partitions int32, logf func(string, ...any)) (time.Duration, error) {
	cl, err := newClient(addr,
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedBytes(256<<20),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	pl := newPayload()
	var failed atomic.Int64
	var firstErr atomic.Value
	t0 := time.Now()
	last := t0
	for i := int64(0); i < n; i++ {
		part := int32(i % int64(partitions))
		v := make([]byte, size)
		copy(v, pl.value(i, size))
		copy(v, workload.Encode(workload.ID{Partition: part, Seq: i / int64(partitions)}, workload.IDSize))
		r := &kgo.Record{Partition: part, Value: v}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				if failed.Add(1) == 1 {
					firstErr.Store(err)
				}
			}
		})
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			logf("  loaded %d / %d", i, n)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("%d records failed to produce, first: %v", f, firstErr.Load())
	}
	return time.Since(t0), nil
}

// countCommitted counts the records a read_committed consumer sees in
// topic, from the start, until it has want records and one more second
// brings nothing, or nothing arrives for idle.
func countCommitted(ctx context.Context, addr, topic string, want int64, idle time.Duration) (int64, error) {
	cl, err := newClient(addr,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(8<<20),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var n int64
	lastData := time.Now()
	for {
		wait := time.Second
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		got := 0
		fs.EachRecord(func(*kgo.Record) { got++ })
		n += int64(got)
		if got > 0 {
			lastData = time.Now()
			continue
		}
		if n >= want || time.Since(lastData) > idle {
			return n, nil
		}
	}
}

// latencyRun produces at rateMBps to srcTopic for dur and measures, for
// every record produced after warmup, the time from its produce timestamp
// until a read_committed consumer of dstTopic on the target received it.
func latencyRun(ctx context.Context, srcAddr, dstAddr, srcTopic, dstTopic string, partitions int32, size int, rateMBps float64, dur, warmup time.Duration) (lat []time.Duration, achievedMBps float64, err error) {
	// The target topic is the replica of a topic nothing was written to
	// before this phase: reading it from the start reads only this
	// phase's records (and works before the replicator has created it).
	cons, err := newClient(dstAddr,
		kgo.ConsumeTopics(dstTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return nil, 0, err
	}
	defer cons.Close()
	prod, err := newClient(srcAddr,
		kgo.DefaultProduceTopic(srcTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(time.Millisecond),
	)
	if err != nil {
		return nil, 0, err
	}
	defer prod.Close()

	var mu sync.Mutex
	var produced int64
	cctx, stopCons := context.WithCancel(ctx)
	defer stopCons()
	t0 := time.Now()
	measureFrom := t0.Add(warmup)
	var seen int64
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				if r.Timestamp.Before(measureFrom) {
					return
				}
				mu.Lock()
				lat = append(lat, now.Sub(r.Timestamp))
				seen++
				mu.Unlock()
			})
		}
	}()

	pl := newPayload()
	perRecord := float64(size) / 1e6
	tick := 10 * time.Millisecond
	tk := time.NewTicker(tick)
	var i int64
	var owed float64
	var measured int64
	for now := range tk.C {
		if now.Sub(t0) >= dur || ctx.Err() != nil {
			break
		}
		owed += rateMBps * tick.Seconds() / perRecord
		for ; owed >= 1; owed-- {
			r := &kgo.Record{Partition: int32(i % int64(partitions)), Value: pl.value(i, size), Timestamp: time.Now()}
			if !r.Timestamp.Before(measureFrom) {
				measured++
			}
			prod.Produce(ctx, r, nil)
			i++
		}
	}
	tk.Stop()
	elapsed := time.Since(t0)
	produced = i
	if err := prod.Flush(ctx); err != nil {
		return nil, 0, err
	}
	achievedMBps = float64(produced) * perRecord / elapsed.Seconds()
	// wait for the tail to arrive (bounded)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		s := seen
		mu.Unlock()
		if s >= measured {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopCons()
	<-consDone
	mu.Lock()
	defer mu.Unlock()
	if seen < measured {
		return lat, achievedMBps, fmt.Errorf("latency phase: %d of %d measured records arrived within 60 s after the load stopped", seen, measured)
	}
	return lat, achievedMBps, nil
}
