package drill

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godwit/godwit/internal/drillreport"
)

// produce paces every stream at the current phase's rate until ctx ends
// or producing fails (the source is down).
func (d *drill) produce(ctx context.Context, rate *atomic.Int64) {
	var wg sync.WaitGroup
	for _, st := range d.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			const tick = 50 * time.Millisecond
			t := time.NewTicker(tick)
			defer t.Stop()
			var due float64
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				due += float64(rate.Load()) / float64(len(d.streams)) * tick.Seconds()
				n := int(due)
				if n == 0 {
					continue
				}
				due -= float64(n)
				// Stopping happens between chunks: a chunk is never cut
				// short by ctx (workload.Producer.send appends to its
				// failed list unlocked when its pacer sees ctx end while
				// promises still run: a data race). A dead source fails
				// the chunk's records when the producer client is closed.
				if err := st.prod.Produce(context.WithoutCancel(ctx), n); err != nil {
					if ctx.Err() == nil {
						d.printf("producer to %s stopped: %v", st.topic, err)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
}

// sampleLoop samples replication lag (from the ledger and the checker)
// every 250ms and prints a live line every second.
func (d *drill) sampleLoop(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := d.sample()
		if time.Since(d.lastStatus) >= time.Second {
			d.lastStatus = time.Now()
			d.printf("%-10s lag %6d records %6.2f s   acked %d", s.Phase, s.Records, s.Seconds, d.acked())
		}
	}
}

func (d *drill) sample() drillreport.LagSample {
	now := time.Now()
	var recs int64
	var oldest time.Time
	for _, st := range d.streams {
		for p := int32(0); p < st.partitions; p++ {
			acked := st.ledger.Records(p)
			d.ck.view(st.topic, p, func(s *seqSet) {
				n, o := lagOf(acked, s)
				recs += n
				if n > 0 && (oldest.IsZero() || o.Before(oldest)) {
					oldest = o
				}
			})
		}
	}
	s := drillreport.LagSample{T: d.since(now), Phase: d.phase.Load().(string), Records: recs}
	if !oldest.IsZero() {
		s.Seconds = max(0, now.Sub(oldest).Seconds())
	}
	d.mu.Lock()
	d.samples = append(d.samples, s)
	d.mu.Unlock()
	return s
}

// probeLoop checks the source every 250ms, from the standby side.
func (d *drill) probeLoop(ctx context.Context) {
	for ctx.Err() == nil {
		t0 := time.Now()
		_, err := d.probe.Ping(ctx, 750*time.Millisecond)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			d.downSince.Store(0)
		} else if d.downSince.Load() == 0 {
			d.downSince.Store(t0.UnixNano())
		}
		select {
		case <-ctx.Done():
		case <-time.After(250*time.Millisecond - time.Since(t0)):
		}
	}
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

// allOnTarget reports whether every acknowledged record is on the target
// (as far as the checker has read).
func (d *drill) allOnTarget() bool {
	for _, st := range d.streams {
		for p := int32(0); p < st.partitions; p++ {
			acked := st.ledger.Records(p)
			var n int64
			d.ck.view(st.topic, p, func(s *seqSet) { n, _ = lagOf(acked, s) })
			if n > 0 {
				return false
			}
		}
	}
	return true
}
