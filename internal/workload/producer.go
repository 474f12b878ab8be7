package workload

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProducerConfig configures a workload Producer.
type ProducerConfig struct {
	Topic      string
	Partitions int32

	// ValueSize is the total value size in bytes; values are never
	// smaller than IDSize.
	ValueSize int
	// SchemaID, if not 0, frames every value in the Confluent wire
	// format with this schema ID (Frame; the schema is AvroSchema), as a
	// producer using a Schema Registry writes them. ValueSize is the
	// plain encoding's size.
	SchemaID uint32

	// Transactional produces in transactions of TxnRecords records
	// (default 10); every AbortEvery-th transaction is aborted (0 = never).
	// The client must be built with kgo.TransactionalID.
	Transactional bool
	AbortEvery    int
	TxnRecords    int

	// Every NullKeyEvery-th record (counted over all records of this
	// producer) has a nil key, every TombstoneEvery-th a nil value. A
	// tombstone carries its identity in its key, so a record that would be
	// both keeps its key (tombstone wins).
	NullKeyEvery   int
	TombstoneEvery int

	// Headers adds headers: "gw-seq" (the seq), "gw-dup" twice with
	// different values (order matters) and "gw-empty" with an empty value.
	Headers bool

	// Rate limits produce to records per second; 0 = as fast as possible.
	Rate int

	// Timestamps sets explicit CreateTime timestamps:
	// TimestampBase + (seq*Partitions + partition) ms. TimestampBase
	// defaults to 24h before NewProducer (in the past, but well inside
	// default retention). Without Timestamps the client stamps records at
	// produce time; the ledger records whatever the source acknowledged.
	Timestamps    bool
	TimestampBase time.Time

	// RunID distinguishes this workload from others on the same topic;
	// 0 picks a random one.
	RunID uint64
}

// Producer produces a sequence-numbered workload and records a Ledger.
// The client must use kgo.RecordPartitioner(kgo.ManualPartitioner()).
type Producer struct {
	cl     *kgo.Client
	cfg    ProducerConfig
	ledger *Ledger

	mu    sync.Mutex // serialises Produce
	count int64      // records attempted so far
	txns  int64      // transactions begun so far
	seqs  []int64    // next seq per partition
}

// NewProducer returns a producer writing to cfg.Topic through cl.
func NewProducer(cl *kgo.Client, cfg ProducerConfig) *Producer {
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	if cfg.ValueSize < IDSize {
		cfg.ValueSize = IDSize
	}
	if cfg.TxnRecords <= 0 {
		cfg.TxnRecords = 10
	}
	if cfg.TimestampBase.IsZero() {
		cfg.TimestampBase = time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	}
	if cfg.RunID == 0 {
		cfg.RunID = NewRunID()
	}
	return &Producer{
		cl:     cl,
		cfg:    cfg,
		ledger: NewLedger(cfg.Topic, cfg.Partitions, cfg.RunID),
		seqs:   make([]int64, cfg.Partitions),
	}
}

// Ledger returns the producer's ledger (live; safe to read concurrently).
func (p *Producer) Ledger() *Ledger { return p.ledger }

// Config returns the effective configuration (defaults filled in).
func (p *Producer) Config() ProducerConfig { return p.cfg }

func every(n int, i int64) bool { return n > 0 && i%int64(n) == 0 }

// next builds the next record; it assigns partitions round robin.
func (p *Producer) next() Record {
	p.count++
	part := int32((p.count - 1) % int64(p.cfg.Partitions))
	seq := p.seqs[part]
	p.seqs[part]++
	id := ID{Run: p.cfg.RunID, Partition: part, Seq: seq}
	r := Record{Partition: part, Seq: seq, Offset: -1}
	switch {
	case every(p.cfg.TombstoneEvery, p.count):
		r.Key = Encode(id, IDSize)
	case every(p.cfg.NullKeyEvery, p.count):
		r.Value = Encode(id, p.cfg.ValueSize)
	default:
		r.Key = []byte(fmt.Sprintf("key-%d-%d", part, seq))
		r.Value = Encode(id, p.cfg.ValueSize)
	}
	if p.cfg.SchemaID != 0 && r.Value != nil {
		r.Value = Frame(p.cfg.SchemaID, r.Value)
	}
	if p.cfg.Headers {
		r.Headers = []kgo.RecordHeader{
			{Key: "gw-seq", Value: []byte(strconv.FormatInt(seq, 10))},
			{Key: "gw-dup", Value: []byte("first")},
			{Key: "gw-dup", Value: []byte("second")},
			{Key: "gw-empty", Value: []byte{}},
		}
	}
	if p.cfg.Timestamps {
		r.Timestamp = p.cfg.TimestampBase.Add(time.Duration(seq*int64(p.cfg.Partitions)+int64(part)) * time.Millisecond)
	}
	return r
}

// Produce produces n more records. Acknowledged (committed) records go to
// the ledger, records of aborted transactions to its aborted list, and
// records whose outcome is unknown to its uncertain list. It returns the
// first error; records that failed are never reported as acknowledged.
func (p *Producer) Produce(ctx context.Context, n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pace := newPacer(p.cfg.Rate)
	if !p.cfg.Transactional {
		rs := make([]Record, n)
		for i := range rs {
			rs[i] = p.next()
		}
		acked, failed, err := p.send(ctx, rs, pace)
		p.ledger.Add(acked...)
		p.ledger.AddUncertain(failed...)
		return err
	}
	for done := 0; done < n; {
		k := min(p.cfg.TxnRecords, n-done)
		rs := make([]Record, k)
		for i := range rs {
			rs[i] = p.next()
		}
		done += k
		if err := p.txn(ctx, rs, pace); err != nil {
			// Records not yet generated keep their seqs unassigned, so
			// sequence numbers stay contiguous.
			return err
		}
	}
	return nil
}

func (p *Producer) txn(ctx context.Context, rs []Record, pace *pacer) error {
	if err := p.cl.BeginTransaction(); err != nil {
		p.ledger.AddUncertain(rs...)
		return fmt.Errorf("workload: begin transaction: %w", err)
	}
	p.txns++
	abort := every(p.cfg.AbortEvery, p.txns)
	written, failed, err := p.send(ctx, rs, pace)
	commit := kgo.TryCommit
	if abort || err != nil {
		commit = kgo.TryAbort
	}
	// EndTransaction must not be cut short by ctx: an unfinished
	// transaction would leave the client unusable.
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	endErr := p.cl.EndTransaction(endCtx, commit)
	switch {
	case endErr != nil:
		p.ledger.AddUncertain(append(written, failed...)...)
		return errors.Join(err, fmt.Errorf("workload: end transaction (commit=%v): %w", commit == kgo.TryCommit, endErr))
	case commit == kgo.TryAbort:
		p.ledger.AddAborted(written...)
		p.ledger.AddAborted(failed...) // aborted whether or not they were written
		return err
	default:
		p.ledger.Add(written...)
		return nil
	}
}

// send produces rs and waits for all of them. It returns the acknowledged
// records sorted by (partition, offset), the failed ones, and the first error.
func (p *Producer) send(ctx context.Context, rs []Record, pace *pacer) (acked, failed []Record, err error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range rs {
		if perr := pace.wait(ctx); perr != nil {
			// Callbacks of records already handed over may still run.
			mu.Lock()
			failed = append(failed, rs[i:]...) // never handed to the client
			errs = append(errs, perr)
			mu.Unlock()
			break
		}
		r := &rs[i]
		kr := &kgo.Record{
			Topic:     p.cfg.Topic,
			Partition: r.Partition,
			Key:       r.Key,
			Value:     r.Value,
			Headers:   slices.Clone(r.Headers),
			Timestamp: r.Timestamp,
		}
		want := r.Partition
		wg.Add(1)
		p.cl.Produce(ctx, kr, func(kr *kgo.Record, perr error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if perr == nil && kr.Partition != want {
				perr = fmt.Errorf("workload: record for partition %d landed in partition %d; the client must use kgo.ManualPartitioner", want, kr.Partition)
			}
			if perr != nil {
				failed = append(failed, *r)
				errs = append(errs, perr)
				return
			}
			r.Offset = kr.Offset
			r.Timestamp = kr.Timestamp
			acked = append(acked, *r)
		})
	}
	wg.Wait()
	slices.SortFunc(acked, func(a, b Record) int {
		if a.Partition != b.Partition {
			return cmp.Compare(a.Partition, b.Partition)
		}
		return cmp.Compare(a.Offset, b.Offset)
	})
	slices.SortFunc(failed, func(a, b Record) int {
		if a.Partition != b.Partition {
			return cmp.Compare(a.Partition, b.Partition)
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	if len(errs) > 0 {
		err = fmt.Errorf("workload: produce to %s: %d record(s) failed, first: %w", p.cfg.Topic, len(errs), errs[0])
	}
	return acked, failed, err
}

// pacer spaces records evenly at a fixed rate.
type pacer struct {
	start    time.Time
	interval time.Duration
	n        int64
}

func newPacer(rate int) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{start: time.Now(), interval: time.Second / time.Duration(rate)}
}

func (p *pacer) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.interval == 0 {
		return nil
	}
	due := p.start.Add(time.Duration(p.n) * p.interval)
	p.n++
	d := time.Until(due)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
