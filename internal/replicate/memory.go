package replicate

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
)

// Where a slot's memory goes, measured with pprof while catching up a
// backlog (docs/operations.md, Sizing): fetch responses (franz-go reads
// each into a buffer of its own, and the records decoded from it point
// into that buffer, or into its decompressed copy, until the target has
// acknowledged them), the decoded record structs, the records produced and
// not yet acknowledged, and the produce requests being written. So one
// slot's share of memory_budget is split into fetches in flight, the fetch
// being copied, and records in flight to the target, with the rest left
// for the per-record structs around them.

// recordMemOverhead is what one record in flight to the target costs
// beyond its key, value and header bytes: the record produced, its
// provenance headers, the client's promise, and the batch and offset-map
// entries kept until commit. Charging it bounds memory for small records,
// where these structs outweigh the data.
const recordMemOverhead = 512

// minFetchBytes keeps fetches from shrinking to a size that costs more in
// round trips than it saves in memory.
const minFetchBytes = 64 << 10

// slotBudget is one slot's share of its flow's memory_budget, as the
// limits its clients are built with.
type slotBudget struct {
	// fetchBytes is FetchMaxBytes: the most one fetch response carries.
	fetchBytes int32
	// partitionBytes is FetchMaxPartitionBytes.
	partitionBytes int32
	// produceBytes bounds the bytes (records plus recordMemOverhead each)
	// produced and not yet acknowledged; one record alone always goes.
	produceBytes int64
	// fetchers is the number of fetch responses the consumer may hold at
	// once (one per source broker it fetches from) fetchBytes was sized
	// for, out of the source's brokers.
	fetchers, brokers int
}

// newSlotBudget splits memory_budget evenly over the flow's slots this
// process owns (owned), and a slot's share as follows: half for fetch
// responses (fetchers in flight or buffered, plus the one being copied),
// a quarter for records in flight to the target, a quarter for the
// record structs around both. Fetches are never larger than they were
// before the budget existed (two batches, one batch per partition), so a
// small max_batch_bytes still makes small transactions.
func newSlotBudget(f *config.Flow, owned, brokers, partitions int) slotBudget {
	fetchers := fetchersFor(brokers, partitions)
	share := f.MemoryBudget.Bytes() / int64(max(owned, 1))
	fetch := share / 2 / int64(fetchers+1)
	fetch = min(max(fetch, minFetchBytes), 2*int64(f.MaxBatchBytes), 1<<30)
	// As before budgets: a fetch carries two partitions' worth, so one
	// partition with a backlog leaves room for the others in the
	// same response.
	part := min(fetch/2, int64(f.MaxBatchBytes))
	return slotBudget{
		fetchBytes:     int32(fetch),
		partitionBytes: int32(part),
		produceBytes:   max(share/4, 1),
		fetchers:       fetchers,
		brokers:        brokers,
	}
}

// fetchersFor is how many fetch responses a consumer of n partitions can
// hold at once: franz-go keeps one per broker it fetches from, and a
// slot's partitions are led by at most min(brokers, n) brokers.
func fetchersFor(brokers, partitions int) int {
	return max(min(brokers, partitions), 1)
}

// rebudget keeps the slot within its share when this process's slots or
// the slot's partitions change (a rebalance, a new topic): the in-flight
// allowance changes at once, and new fetch sizes by consuming anew with
// them from where copying got to. It runs at a batch boundary, where
// everything polled has been produced into transactions already closed,
// so nothing is skipped (records fetched again are dropped by copy as
// already copied).
func (s *session) rebudget(ctx context.Context) error {
	b := newSlotBudget(s.w.f.cfg, s.w.f.ownedSlotCount(), s.budget.brokers, len(s.consumed))
	if b == s.budget {
		return nil
	}
	if b.fetchBytes == s.budget.fetchBytes && b.partitionBytes == s.budget.partitionBytes {
		s.budget = b
		return nil
	}
	parts := map[string]map[int32]kgo.Offset{}
	for tp := range s.consumed {
		if parts[tp.Topic] == nil {
			parts[tp.Topic] = map[int32]kgo.Offset{}
		}
		parts[tp.Topic][tp.Partition] = kgo.NoResetOffset().At(s.active[tp].pending)
	}
	s.log.Debug("slot memory share changed; consuming with new fetch sizes", "owned_slots", s.w.f.ownedSlotCount(),
		"partitions", len(s.consumed), "fetch_bytes", b.fetchBytes, "was", s.budget.fetchBytes)
	s.cons.Close()
	s.cons = nil
	return s.newConsumer(ctx, parts)
}

// reserve waits until n more bytes fit in the slot's records in flight to
// the target (or nothing is in flight, so a record larger than the whole
// allowance still goes, alone), then counts them. release gives them
// back when the target has answered.
func (s *session) reserve(ctx context.Context, n int64) error {
	for {
		s.mu.Lock()
		if s.unacked == 0 || s.unacked+n <= s.budget.produceBytes {
			s.unacked += n
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		select {
		case <-s.acked:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *session) release(n int64) {
	s.mu.Lock()
	s.unacked -= n
	s.mu.Unlock()
	// One waiter (the session's goroutine), which re-checks after every
	// wake-up: a pending signal is enough.
	select {
	case s.acked <- struct{}{}:
	default:
	}
}
