package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// wanProxy is a TCP forwarder that delays every byte by a fixed one-way
// delay in each direction (RTT = 2 x delay), to put a WAN between the
// contenders and the source cluster. It models latency only, not
// bandwidth or loss: data is read as soon as it arrives, held until due
// and written in order. Buffering is bounded per connection and
// direction (maxChunks x chunkSize); when full the reader stops reading
// and TCP backpressure reaches the sender.
//
// Kafka clients reconnect to the brokers' advertised addresses, so the
// upstream must be a listener that advertises the proxy's own address
// (scripts/kafka.sh GODWIT_KAFKA_WAN_PORT / GODWIT_KAFKA_WAN_ADVERTISED_PORT).
type wanProxy struct {
	ln       net.Listener
	upstream string
	delay    time.Duration

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup

	// toClients and toUpstream count the bytes forwarded each way.
	toClients, toUpstream atomic.Int64
}

const (
	wanChunkSize = 64 << 10
	wanMaxChunks = 512 // 32 MiB per connection and direction
)

func startWANProxy(listen, upstream string, delay time.Duration) (*wanProxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &wanProxy{ln: ln, upstream: upstream, delay: delay, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *wanProxy) Addr() string { return p.ln.Addr().String() }

func (p *wanProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *wanProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

func (p *wanProxy) serve(c net.Conn) {
	u, err := net.DialTimeout("tcp", p.upstream, 10*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, true) || !p.track(u, true) {
		c.Close()
		u.Close()
		return
	}
	defer func() {
		p.track(c, false)
		p.track(u, false)
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); delayedCopy(u, c, p.delay, &p.toUpstream) }()
	go func() { defer wg.Done(); delayedCopy(c, u, p.delay, &p.toClients) }()
	wg.Wait()
}

type chunk struct {
	b   []byte
	due time.Time
}

// delayedCopy copies src to dst, each chunk written delay after it was
// read. It closes both connections when either side ends, so the other
// direction ends too.
func delayedCopy(dst, src net.Conn, delay time.Duration, count *atomic.Int64) {
	q := make(chan chunk, wanMaxChunks)
	go func() {
		defer close(q)
		for {
			b := make([]byte, wanChunkSize)
			n, err := src.Read(b)
			if n > 0 {
				q <- chunk{b[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		dst.Close()
		src.Close()
		for range q { // unblock the reader
		}
	}()
	for ch := range q {
		if d := time.Until(ch.due); d > 0 {
			time.Sleep(d)
		}
		n, err := dst.Write(ch.b)
		count.Add(int64(n))
		if err != nil {
			return
		}
	}
}

// Close stops accepting and closes every open connection.
func (p *wanProxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

var _ io.Closer = (*wanProxy)(nil)
