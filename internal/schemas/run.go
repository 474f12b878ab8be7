package schemas

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/godwit/godwit/internal/config"
)

// Flow is what the schema sync needs of a running flow (a
// *replicate.Flow): its config and whether this process owns slot 0.
type Flow interface {
	Config() *config.Flow
	OwnsSlot(slot int) bool
	// SetRewriter installs the data plane's record rewrite (translate-ids).
	SetRewriter(func(ctx context.Context, topic string, key, value []byte) ([]byte, []byte, error))
}

// syncSlot is the slot whose owner syncs a flow's schemas, so one process
// writes to the target registry at a time (the offsets sync uses the same).
const syncSlot = 0

// Start runs the schema sync of every flow that has it, alongside the
// replicator, each every refresh_interval on the owner of the flow's slot
// 0. stop ends them and waits.
func Start[F Flow](ctx context.Context, cfg *config.Config, flows []F, log *slog.Logger, m *Metrics) (stop func(), err error) {
	var syncers []*Syncer
	var intervals []config.Duration
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	for _, f := range flows {
		fc := f.Config()
		if !fc.SchemasEnabled() {
			continue
		}
		src, err := FromConfig(cfg, fc.Source)
		if err != nil {
			return nil, err
		}
		dst, err := FromConfig(cfg, fc.Target)
		if err != nil {
			return nil, err
		}
		o := Options{
			Flow: fc, Source: src, Target: dst, Logger: log, Metrics: m,
			Active: func() bool { return f.OwnsSlot(syncSlot) },
		}
		if fc.TranslatesIDs() {
			// Every process rewrites the records of the slots it owns, so
			// every process loads the map; records are rewritten only
			// once their schema's target ID is on the target.
			ids, closeIDs, err := OpenIDMap(ctx, cfg, fc, log)
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("flow %s: schema id map: %w", fc.Name, err)
			}
			closers = append(closers, closeIDs)
			o.IDs = ids
		} else {
			// preserve-ids: records are copied unchanged, but only once
			// the target's registry serves their schema IDs, so a
			// consumer of the target never meets a record before its
			// schema.
			o.IDs = NewMemoryIDMap()
		}
		s := NewSyncer(o)
		f.SetRewriter(NewRewriter(s, o.IDs, m).Rewrite)
		syncers = append(syncers, s)
		intervals = append(intervals, fc.RefreshInterval)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, s := range syncers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.log.Info("schema sync started", "sync", s.String())
			s.Run(ctx, intervals[i].D())
		}()
	}
	return func() { cancel(); wg.Wait(); closeAll() }, nil
}
