package offsets

import (
	"context"
	"log/slog"
	"sync"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
)

// checkpointSlot is the slot whose owner runs a flow's checkpoint loop, so
// one instance of a flow does it however many run.
const checkpointSlot = 0

// RunningFlow is what the checkpoint loops need of a flow this process
// replicates (replicate.Flow): its configuration and whether this process
// owns one of its slots. An interface, so offsets does not depend on the
// data plane.
type RunningFlow interface {
	Config() *config.Flow
	OwnsSlot(slot int) bool
}

// Start runs a checkpoint loop for every flow of a replicator
// (replicate.Replicator.Flows), each active while this process owns the
// flow's slot 0. The returned stop function ends them and waits.
func Start[F RunningFlow](ctx context.Context, cfg *config.Config, flows []F, log *slog.Logger, m *Metrics) (stop func(), err error) {
	var syncers []*Syncer
	for _, f := range flows {
		fc := f.Config()
		src, err := cluster.New(cfg, fc.Source)
		if err != nil {
			return nil, err
		}
		dst, err := cluster.New(cfg, fc.Target)
		if err != nil {
			return nil, err
		}
		syncers = append(syncers, NewSyncer(Options{
			Flow: fc, Source: src, Target: dst, Logger: log, Metrics: m,
			Active: func() bool { return f.OwnsSlot(checkpointSlot) },
		}))
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, s := range syncers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(ctx); err != nil {
				s.log.Error("checkpoint loop could not start", "err", err)
			}
		}()
	}
	return func() { cancel(); wg.Wait() }, nil
}
