package workload

import (
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is a full copy of one produced record, as the source acknowledged it.
type Record struct {
	Partition int32
	Seq       int64
	Offset    int64 // source offset
	Key       []byte
	Value     []byte
	Headers   []kgo.RecordHeader
	Timestamp time.Time
}

// ID returns the record's identity within run.
func (r Record) ID(run uint64) ID { return ID{Run: run, Partition: r.Partition, Seq: r.Seq} }

// Ledger holds what one producer wrote to one topic: acknowledged (and, if
// transactional, committed) records per partition in source offset order,
// records of aborted transactions, and records whose outcome is unknown
// (produce or commit failed). Sequence numbers are contiguous per partition
// over the union of the three sets. A Ledger is safe for concurrent use;
// recorded Records are never modified.
type Ledger struct {
	mu         sync.RWMutex
	topic      string
	partitions int32
	run        uint64
	acked      [][]Record
	aborted    [][]Record
	uncertain  [][]Record
}

// NewLedger returns an empty ledger.
func NewLedger(topic string, partitions int32, run uint64) *Ledger {
	return &Ledger{
		topic:      topic,
		partitions: partitions,
		run:        run,
		acked:      make([][]Record, partitions),
		aborted:    make([][]Record, partitions),
		uncertain:  make([][]Record, partitions),
	}
}

func (l *Ledger) Topic() string     { return l.topic }
func (l *Ledger) Partitions() int32 { return l.partitions }
func (l *Ledger) RunID() uint64     { return l.run }

func (l *Ledger) get(set [][]Record, p int32) []Record {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if p < 0 || int(p) >= len(set) {
		return nil
	}
	return slices.Clone(set[p])
}

// Records returns the acknowledged records of partition p in source order.
func (l *Ledger) Records(p int32) []Record { return l.get(l.acked, p) }

// Aborted returns the records of partition p written in aborted transactions.
func (l *Ledger) Aborted(p int32) []Record { return l.get(l.aborted, p) }

// Uncertain returns the records of partition p whose outcome is unknown.
func (l *Ledger) Uncertain(p int32) []Record { return l.get(l.uncertain, p) }

func (l *Ledger) count(set [][]Record) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := 0
	for _, rs := range set {
		n += len(rs)
	}
	return n
}

// Len is the number of acknowledged records.
func (l *Ledger) Len() int { return l.count(l.acked) }

// AbortedLen is the number of records in aborted transactions.
func (l *Ledger) AbortedLen() int { return l.count(l.aborted) }

// UncertainLen is the number of records with unknown outcome.
func (l *Ledger) UncertainLen() int { return l.count(l.uncertain) }

// Add records acknowledged records (they must be in source offset order per
// partition).
func (l *Ledger) Add(rs ...Record) { l.add(l.acked, rs) }

// AddAborted records records written in aborted transactions.
func (l *Ledger) AddAborted(rs ...Record) { l.add(l.aborted, rs) }

// AddUncertain records records whose outcome is unknown.
func (l *Ledger) AddUncertain(rs ...Record) { l.add(l.uncertain, rs) }

func (l *Ledger) add(set [][]Record, rs []Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rs {
		if r.Partition >= 0 && int(r.Partition) < len(set) {
			set[r.Partition] = append(set[r.Partition], r)
		}
	}
}

// snapshot is a consistent copy of a ledger for one evaluation.
type snapshot struct {
	run                       uint64
	partitions                int32
	acked, aborted, uncertain [][]Record
}

func (l *Ledger) snapshot() snapshot {
	l.mu.RLock()
	defer l.mu.RUnlock()
	s := snapshot{run: l.run, partitions: l.partitions}
	for p := range l.acked {
		// Records are immutable; clipping the slices is enough.
		s.acked = append(s.acked, slices.Clip(l.acked[p]))
		s.aborted = append(s.aborted, slices.Clip(l.aborted[p]))
		s.uncertain = append(s.uncertain, slices.Clip(l.uncertain[p]))
	}
	return s
}
