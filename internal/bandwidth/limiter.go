// Package bandwidth makes a flow's cross-region bandwidth a budget: a
// byte-rate limiter shared by the flow's slots, charged with the bytes
// its producers actually write to the target (after compression, as the
// network sees them), that serves more critical tiers first.
//
// The limiter charges after the fact: franz-go tells it what each request
// to a target broker weighed once it is written, and senders wait while
// the flow is in debt. Nothing is dropped or reordered inside a partition,
// so exactly-once and the memory budget are untouched; a throttled flow
// only copies later. Over any window longer than a few bursts the rate
// holds to the limit: every byte written is paid for before the next send.
package bandwidth

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// minBurst keeps small limits from stalling on one large produce request.
const minBurst = 64 << 10

// Limiter is a token bucket in bytes with tiered waiting.
type Limiter struct {
	rate  float64 // bytes per second
	burst float64
	now   func() time.Time
	after func(time.Duration) <-chan time.Time // time.After; tests replace it

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	waiting []int         // senders waiting, per tier (0: most critical)
	changed chan struct{} // closed and replaced when waiters must look again
	// throttled is the time senders of each tier spent waiting; a tier
	// whose senders wait at once counts each of them.
	throttled []time.Duration
}

// New returns a limiter of bytesPerSecond for tiers tiers (at least 1).
// now is the clock (nil: time.Now).
func New(bytesPerSecond int64, tiers int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	tiers = max(tiers, 1)
	rate := float64(max(bytesPerSecond, 1))
	// A quarter second of traffic: enough that the producer's requests
	// pipeline, small enough that the rate holds over a few seconds.
	burst := max(rate/4, minBurst)
	return &Limiter{
		rate: rate, burst: burst, now: now, after: time.After,
		tokens: burst, last: now(),
		waiting: make([]int, tiers), changed: make(chan struct{}),
		throttled: make([]time.Duration, tiers),
	}
}

// BytesPerSecond is the limit.
func (l *Limiter) BytesPerSecond() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(l.rate)
}

// SetRate changes the limit (an instance's share of a flow's cap follows
// the slots it owns); the allowance keeps what was earned at the old rate.
func (l *Limiter) SetRate(bytesPerSecond int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill()
	l.rate = float64(max(bytesPerSecond, 1))
	l.burst = max(l.rate/4, minBurst)
	l.tokens = min(l.tokens, l.burst)
	l.broadcast() // waiters recompute their delay
}

// Debit charges n bytes written to the target.
func (l *Limiter) Debit(n int) {
	if n <= 0 {
		return
	}
	l.mu.Lock()
	l.refill()
	l.tokens -= float64(n)
	l.mu.Unlock()
}

// Allowance is the bytes that may be sent now (negative: the debt senders
// wait out).
func (l *Limiter) Allowance() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill()
	return int64(l.tokens)
}

// Throttled is the total time senders of tier waited.
func (l *Limiter) Throttled(tier int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.throttled[l.clamp(tier)]
}

// Waiting reports whether senders of tier are waiting now.
func (l *Limiter) Waiting(tier int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiting[l.clamp(tier)] > 0
}

func (l *Limiter) clamp(tier int) int { return min(max(tier, 0), len(l.waiting)-1) }

func (l *Limiter) refill() {
	now := l.now()
	if dt := now.Sub(l.last); dt > 0 {
		l.tokens = min(l.burst, l.tokens+l.rate*dt.Seconds())
		l.last = now
	}
}

// delay is how long tier must wait before it may send, or -1 when a more
// critical tier waits (then wait for changed). Callers hold mu.
func (l *Limiter) delay(tier int) time.Duration {
	for i := range tier {
		if l.waiting[i] > 0 {
			return -1
		}
	}
	l.refill()
	if l.tokens > 0 {
		return 0
	}
	// Long enough to pay the debt back and have something to send.
	need := -l.tokens + 1
	return time.Duration(need / l.rate * float64(time.Second))
}

func (l *Limiter) broadcast() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Wait blocks until a sender of tier may send: the flow is not in debt and
// no more critical tier waits. It returns how long it waited, or ctx's
// error.
func (l *Limiter) Wait(ctx context.Context, tier int) (time.Duration, error) {
	l.mu.Lock()
	tier = l.clamp(tier)
	if l.delay(tier) == 0 {
		l.mu.Unlock()
		return 0, nil
	}
	start := l.now()
	l.waiting[tier]++
	defer func() {
		l.waiting[tier]--
		l.throttled[tier] += l.now().Sub(start)
		// Less critical tiers may go now.
		l.broadcast()
		l.mu.Unlock()
	}()
	for {
		d := l.delay(tier)
		if d == 0 {
			return l.now().Sub(start), nil
		}
		changed := l.changed
		l.mu.Unlock()
		var timer <-chan time.Time // nil: wait for a change only
		if d > 0 {
			timer = l.after(d)
		}
		var err error
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-changed:
		case <-timer:
		}
		l.mu.Lock()
		if err != nil {
			return l.now().Sub(start), err
		}
	}
}

// Hook charges a limiter with every request a franz-go client writes to
// a broker (kgo.WithHooks on the target producer): the bytes the network
// carries, after compression, with request framing and the transaction
// and metadata requests that ride along. Partial writes count too: those
// bytes crossed the link.
type Hook struct{ L *Limiter }

// OnBrokerWrite implements kgo.HookBrokerWrite.
func (h Hook) OnBrokerWrite(_ kgo.BrokerMetadata, _ int16, bytesWritten int, _, _ time.Duration, _ error) {
	h.L.Debit(bytesWritten)
}

var _ kgo.HookBrokerWrite = Hook{}
