package replicate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/config"
)

func TestSlotBudget(t *testing.T) {
	flow := func(budget config.ByteSize, slots, maxBatch int) *config.Flow {
		return &config.Flow{MemoryBudget: budget, Slots: slots, MaxBatchBytes: maxBatch}
	}
	tests := []struct {
		name                       string
		f                          *config.Flow
		owned, brokers, partitions int
		want                       slotBudget
	}{
		{
			// 64 MiB over 16 slots: 4 MiB each; half for fetches, one in
			// flight and one being copied; a quarter for records in flight.
			name: "default", f: flow(64<<20, 16, 4<<20), owned: 16, brokers: 1, partitions: 2,
			want: slotBudget{fetchBytes: 1 << 20, partitionBytes: 512 << 10, produceBytes: 1 << 20, fetchers: 1, brokers: 1},
		},
		{
			// Three brokers lead the slot's partitions: three responses
			// can be buffered at once, so each is smaller.
			name: "three brokers", f: flow(64<<20, 16, 4<<20), owned: 16, brokers: 3, partitions: 8,
			want: slotBudget{fetchBytes: 512 << 10, partitionBytes: 256 << 10, produceBytes: 1 << 20, fetchers: 3, brokers: 3},
		},
		{
			// Fewer partitions than brokers: at most one response per
			// partition's leader.
			name: "one partition, many brokers", f: flow(64<<20, 16, 4<<20), owned: 16, brokers: 6, partitions: 1,
			want: slotBudget{fetchBytes: 1 << 20, partitionBytes: 512 << 10, produceBytes: 1 << 20, fetchers: 1, brokers: 6},
		},
		{
			// A large budget never fetches more than before budgets
			// existed: two batches, one per partition.
			name: "large budget", f: flow(4<<30, 16, 4<<20), owned: 16, brokers: 1, partitions: 2,
			want: slotBudget{fetchBytes: 8 << 20, partitionBytes: 4 << 20, produceBytes: 64 << 20, fetchers: 1, brokers: 1},
		},
		{
			// A tiny max_batch_bytes keeps fetches tiny, so a transaction
			// still carries about one batch (tests rely on it).
			name: "small batches", f: flow(64<<20, 1, 1024), owned: 1, brokers: 1, partitions: 1,
			want: slotBudget{fetchBytes: 2048, partitionBytes: 1024, produceBytes: 16 << 20, fetchers: 1, brokers: 1},
		},
		{
			// Four of the 16 slots here (the others run elsewhere): each
			// gets a quarter of the budget, not a sixteenth.
			name: "four owned", f: flow(64<<20, 16, 4<<20), owned: 4, brokers: 1, partitions: 2,
			want: slotBudget{fetchBytes: 4 << 20, partitionBytes: 2 << 20, produceBytes: 4 << 20, fetchers: 1, brokers: 1},
		},
		{
			// The smallest share still fetches minFetchBytes.
			name: "minimum share", f: flow(config.MinSlotMemory*16, 16, 4<<20), owned: 16, brokers: 5, partitions: 5,
			want: slotBudget{fetchBytes: minFetchBytes, partitionBytes: minFetchBytes / 2, produceBytes: 64 << 10, fetchers: 5, brokers: 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newSlotBudget(tt.f, tt.owned, tt.brokers, tt.partitions); got != tt.want {
				t.Errorf("newSlotBudget = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// reserve admits records while they fit the slot's allowance, waits for
// the target's answers when they do not, and always lets one record go
// alone, however large: the target may accept records larger than the
// allowance, and refusing them here would stop the partition for nothing.
func TestReserve(t *testing.T) {
	s := &session{acked: make(chan struct{}, 1), budget: slotBudget{produceBytes: 1000}}
	ctx := ctxTimeout(t, 10*time.Second)
	if err := s.reserve(ctx, 600); err != nil {
		t.Fatal(err)
	}
	// Full: a cancelled wait gives up without counting the record.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.reserve(cancelled, 600); !errors.Is(err, context.Canceled) {
		t.Fatalf("reserve over the allowance with a cancelled context = %v, want context.Canceled", err)
	}
	if err := s.reserve(ctx, 400); err != nil { // exactly full
		t.Fatal(err)
	}
	if s.unacked != 1000 {
		t.Fatalf("unacked = %d, want 1000", s.unacked)
	}

	done := make(chan error, 1)
	go func() { done <- s.reserve(ctx, 600) }()
	s.release(400) // 600 + 600 still does not fit
	select {
	case err := <-done:
		t.Fatalf("reserve returned (%v) with 600 of 1000 in flight and 600 more asked", err)
	default:
	}
	s.release(600) // nothing in flight: it goes
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("reserve still waiting with nothing in flight")
	}
	s.release(600)
	if err := s.reserve(ctx, 5000); err != nil {
		t.Fatalf("a record larger than the allowance, alone: %v", err)
	}
	if s.unacked != 5000 {
		t.Fatalf("unacked = %d, want 5000", s.unacked)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
