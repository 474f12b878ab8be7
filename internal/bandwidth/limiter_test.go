package bandwidth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/testkit"
)

// fakeClock is a clock that moves only when a waiter's timer "fires".
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// instant makes every timer fire at once, moving the clock by its length:
// a single sender sees simulated time pass exactly as it waits.
func (c *fakeClock) instant(d time.Duration) <-chan time.Time {
	c.advance(d)
	ch := make(chan time.Time, 1)
	ch <- c.now()
	return ch
}

// TestRateHolds: a sender that always has data, sending chunks of various
// sizes, gets the limit over a minute of simulated time, within one burst.
func TestRateHolds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rate  int64
		chunk int
	}{
		{"1MB/s small requests", 1 << 20, 16 << 10},
		{"1MB/s requests above the burst", 1 << 20, 1 << 20},
		{"50MB/s 1MiB requests", 50 << 20, 1 << 20},
		{"100KB/s", 100 << 10, 32 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{t: time.Unix(0, 0)}
			l := New(tc.rate, 1, c.now)
			l.after = c.instant
			start := c.now()
			sent := 0
			for c.now().Sub(start) < time.Minute {
				if _, err := l.Wait(context.Background(), 0); err != nil {
					t.Fatal(err)
				}
				l.Debit(tc.chunk)
				sent += tc.chunk
			}
			elapsed := c.now().Sub(start).Seconds()
			got := float64(sent) / elapsed
			// Sent = burst + rate*elapsed + at most one chunk of overshoot.
			slack := (l.burst + float64(tc.chunk)) / elapsed
			if got > float64(tc.rate)+slack || got < float64(tc.rate)-slack {
				t.Fatalf("%.0f B/s over %.1f s, want %d ± %.0f", got, elapsed, tc.rate, slack)
			}
			if l.Throttled(0) < 50*time.Second {
				t.Fatalf("throttled %v of a minute, want most of it", l.Throttled(0))
			}
		})
	}
}

// TestCriticalTierFirst: while a critical sender waits out the debt, a bulk
// sender does not get ahead of it: it neither sends nor arms a timer of its
// own, and returns only after the critical one.
func TestCriticalTierFirst(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	l := New(1000, 2, c.now)
	fire := make(chan time.Time)
	var timers []time.Duration
	var mu sync.Mutex
	l.after = func(d time.Duration) <-chan time.Time {
		mu.Lock()
		timers = append(timers, d)
		mu.Unlock()
		return fire
	}
	l.Debit(int(l.burst) + 1000) // one second in debt

	order := make(chan string, 2)
	go func() {
		if _, err := l.Wait(context.Background(), 0); err != nil {
			t.Error(err)
		}
		order <- "critical"
	}()
	testkit.Eventually(t, 10*time.Second, func() (bool, string) { return l.Waiting(0), "critical sender not waiting" })
	go func() {
		if _, err := l.Wait(context.Background(), 1); err != nil {
			t.Error(err)
		}
		order <- "bulk"
	}()
	testkit.Eventually(t, 10*time.Second, func() (bool, string) { return l.Waiting(1), "bulk sender not waiting" })
	mu.Lock()
	if len(timers) != 1 || timers[0] < time.Second {
		t.Fatalf("timers armed %v, want one of about 1 s (the critical sender's)", timers)
	}
	mu.Unlock()
	c.advance(1100 * time.Millisecond)
	fire <- c.now()
	if a, b := <-order, <-order; a != "critical" || b != "bulk" {
		t.Fatalf("order %s, %s", a, b)
	}
	if l.Throttled(1) <= 0 || l.Throttled(0) < time.Second {
		t.Fatalf("throttled: critical %v, bulk %v", l.Throttled(0), l.Throttled(1))
	}
}

// TestWaitCancelled: a waiter leaves with ctx's error and is no longer
// counted as waiting.
func TestWaitCancelled(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	l := New(1000, 1, c.now)
	l.after = func(time.Duration) <-chan time.Time { return nil }
	l.Debit(int(l.burst) * 2)
	if l.Allowance() >= 0 {
		t.Fatalf("allowance %d after a debit beyond the burst, want negative", l.Allowance())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := l.Wait(ctx, 0); done <- err }()
	testkit.Eventually(t, 10*time.Second, func() (bool, string) { return l.Waiting(0), "critical sender not waiting" })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait: %v, want context.Canceled", err)
	}
	if l.Waiting(0) {
		t.Fatal("still counted as waiting")
	}
}
