// Package netfault puts a network path that can be cut between some
// clients and the servers they dial: a TCP proxy with a partition switch.
// It is the drill's network-partition fault: the standby region's clients
// (replicator, failover, probes) lose the source cluster while the
// primary region's clients, which do not use the proxy, keep working.
//
// Kafka clients connect to the bootstrap address and then to each
// broker's advertised address, so a proxy on the bootstrap address alone
// would be bypassed. The proxy is entered at the dial instead: Dial (a
// kgo.Dialer, or config.Cluster.Dial) sends every connection, to whatever
// broker address, through a local listener for that address, which
// forwards to it.
package netfault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// DialFunc dials an address (net.Dialer.DialContext's signature).
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// ErrClosed is returned by Dial after Close.
var ErrClosed = errors.New("netfault: proxy closed")

// Proxy forwards every connection made through Dial to its address, until
// Partition: then every forwarded connection is reset (both sides see the
// connection die, as when a stateful firewall or NAT between regions
// drops its state) and new connections are blackholed: Dial gets no
// answer until its context ends (as when packets are dropped), or until
// Heal, when it connects. Safe for concurrent use.
type Proxy struct {
	upstream DialFunc

	mu     sync.Mutex
	closed bool
	cut    bool
	healed chan struct{} // closed while the path is up
	routes map[string]net.Listener
	links  map[*link]struct{}
	wg     sync.WaitGroup

	forwarded, reset, held atomic.Int64
}

// link is one forwarded connection; its fields are guarded by Proxy.mu.
type link struct {
	client, up net.Conn
	cancel     context.CancelFunc // aborts the upstream dial
	dead       bool
}

// Stats count what the proxy did, for evidence that a partition took
// effect.
type Stats struct {
	// Forwarded is the number of connections forwarded to an upstream.
	Forwarded int64 `json:"forwarded"`
	// Reset is the number of forwarded connections a partition reset.
	Reset int64 `json:"reset"`
	// Held is the number of dials that met a partition (blackholed: they
	// failed at their deadline, or connected after the heal).
	Held int64 `json:"held"`
}

// New returns a proxy whose path is up. upstream dials the real servers
// (nil: a plain net.Dialer).
func New(upstream DialFunc) *Proxy {
	if upstream == nil {
		upstream = (&net.Dialer{}).DialContext
	}
	up := make(chan struct{})
	close(up)
	return &Proxy{upstream: upstream, healed: up, routes: map[string]net.Listener{}, links: map[*link]struct{}{}}
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	return Stats{Forwarded: p.forwarded.Load(), Reset: p.reset.Load(), Held: p.held.Load()}
}

// Partitioned reports whether the path is cut.
func (p *Proxy) Partitioned() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// PartitionError is a dial that got no answer through a partition.
type PartitionError struct {
	Addr string
	Err  error // the dial context's error
}

func (e *PartitionError) Error() string {
	return fmt.Sprintf("no answer from %s (network partition): %v", e.Addr, e.Err)
}

func (e *PartitionError) Unwrap() error { return e.Err }

// Timeout is true when the dial's deadline passed, as for a dropped SYN,
// so callers treat it like any unreachable address.
func (e *PartitionError) Timeout() bool { return errors.Is(e.Err, context.DeadlineExceeded) }

// Dial connects to addr through the proxy. During a partition it waits
// for Heal or for ctx to end (then it returns a *net.OpError wrapping a
// *PartitionError).
func (p *Proxy) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	counted := false
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, &net.OpError{Op: "dial", Net: network, Err: ErrClosed}
		}
		if !p.cut {
			ln, err := p.routeLocked(addr)
			p.mu.Unlock()
			if err != nil {
				return nil, err
			}
			return (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
		}
		healed := p.healed
		p.mu.Unlock()
		if !counted {
			p.held.Add(1)
			counted = true
		}
		select {
		case <-healed:
		case <-ctx.Done():
			return nil, &net.OpError{Op: "dial", Net: network, Err: &PartitionError{Addr: addr, Err: ctx.Err()}}
		}
	}
}

// routeLocked returns the listener forwarding to addr, starting it on
// first use.
func (p *Proxy) routeLocked(addr string) (net.Listener, error) {
	if ln, ok := p.routes[addr]; ok {
		return ln, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("netfault: listening for %s: %w", addr, err)
	}
	p.routes[addr] = ln
	p.wg.Add(1)
	go p.accept(ln, addr)
	return ln, nil
}

func (p *Proxy) accept(ln net.Listener, addr string) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c, addr)
		}()
	}
}

func (p *Proxy) serve(c net.Conn, addr string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &link{client: c, cancel: cancel}
	p.mu.Lock()
	if p.cut || p.closed {
		// Accepted after the cut: it was open when the path went down.
		p.mu.Unlock()
		resetClose(c)
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()

	up, err := p.upstream(ctx, "tcp", addr)
	p.mu.Lock()
	if err != nil || l.dead {
		p.mu.Unlock()
		if up != nil {
			resetClose(up)
		}
		// The client sees the upstream's refusal as a reset: the
		// proxy has no other way to tell it.
		resetClose(c)
		return
	}
	l.up = up
	p.mu.Unlock()
	p.forwarded.Add(1)

	done := make(chan struct{}, 2)
	pump := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pump(up, c)
	go pump(c, up)
	<-done
	// One side ended: end the other too (Kafka has no use for a half
	// closed connection).
	p.mu.Lock()
	l.dead = true
	p.mu.Unlock()
	_ = c.Close()
	_ = up.Close()
	<-done
}

// resetClose closes c with a TCP reset rather than a FIN, as a cut path
// does: the peer gets ECONNRESET, not a clean end of stream.
func resetClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// killLocked resets a link's connections; it reports whether the link
// was live.
func killLocked(l *link) bool {
	if l.dead {
		return false
	}
	l.dead = true
	l.cancel()
	resetClose(l.client)
	if l.up != nil {
		resetClose(l.up)
	}
	return true
}

// Partition cuts the path: every forwarded connection is reset and new
// dials are blackholed until Heal. It returns the number of connections
// it reset.
func (p *Proxy) Partition() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.cut {
		return 0
	}
	p.cut = true
	p.healed = make(chan struct{})
	n := 0
	for l := range p.links {
		if killLocked(l) {
			n++
		}
	}
	p.reset.Add(int64(n))
	return n
}

// Heal restores the path: dials waiting in the partition connect, and new
// ones do.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		p.cut = false
		close(p.healed)
	}
}

// Close stops the proxy: listeners close, connections are reset, and
// dials waiting in a partition fail with ErrClosed.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.cut {
		p.cut = false
		close(p.healed)
	}
	for _, ln := range p.routes {
		_ = ln.Close()
	}
	for l := range p.links {
		killLocked(l)
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}
