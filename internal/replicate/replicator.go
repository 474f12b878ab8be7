package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
)

// Replicator runs several flows in one process.
type Replicator struct {
	flows []*Flow
}

// New builds a Replicator for the given flows of cfg. instanceID, when not
// empty, makes this process a static member of each flow's group (Kafka's
// group.instance.id): restarted with the same id it takes its slots back
// at once instead of after the session timeout. Give each process its own.
func New(cfg *config.Config, flows []*config.Flow, logger *slog.Logger, m *Metrics, instanceID string) (*Replicator, error) {
	r := &Replicator{}
	for _, fc := range flows {
		src, err := cluster.New(cfg, fc.Source)
		if err != nil {
			return nil, err
		}
		dst, err := cluster.New(cfg, fc.Target)
		if err != nil {
			return nil, err
		}
		src.NewHooks = m.ClientHooks(src.Alias)
		dst.NewHooks = m.ClientHooks(dst.Alias)
		f := NewFlow(Options{Flow: fc, Source: src, Target: dst, Logger: logger, Metrics: m, InstanceID: instanceID})
		m.addFlow(f)
		r.flows = append(r.flows, f)
	}
	return r, nil
}

// Flows returns the flows being run.
func (r *Replicator) Flows() []*Flow { return r.flows }

// Run runs every flow until ctx ends. It returns the first flow error that
// is not retryable (a configuration problem), after stopping the others.
func (r *Replicator) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(r.flows))
	for _, f := range r.flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.Run(ctx); err != nil {
				errs <- fmt.Errorf("flow %s: %w", f.Name(), err)
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// Ready reports whether every flow is ready, with the reasons if not.
func (r *Replicator) Ready() (bool, string) {
	var reasons []string
	for _, f := range r.flows {
		if ok, why := f.Ready(); !ok {
			reasons = append(reasons, f.Name()+": "+why)
		}
	}
	return len(reasons) == 0, strings.Join(reasons, "; ")
}
