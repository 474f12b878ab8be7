package netfault

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// echoServer echoes lines; ended receives once per connection that ended.
type echoServer struct {
	ln    net.Listener
	ended chan error
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, ended: make(chan error, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						s.ended <- err
						return
					}
					if _, err := io.WriteString(c, line); err != nil {
						s.ended <- err
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

// roundTrip writes a line and reads it back within 5s.
func roundTrip(c net.Conn, msg string) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg+"\n" {
		return errors.New("echo mismatch: " + got)
	}
	return nil
}

// waitUntil polls cond every millisecond until it holds or 5s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPartitionResetsBlackholesAndHeals(t *testing.T) {
	a, b := startEcho(t), startEcho(t)
	p := New(nil)
	defer p.Close()
	ctx := context.Background()

	// Path up: connections to two upstreams go through, each through
	// its own route, not directly.
	ca, err := p.Dial(ctx, "tcp", a.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := p.Dial(ctx, "tcp", b.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	for _, c := range []net.Conn{ca, cb} {
		if err := roundTrip(c, "before"); err != nil {
			t.Fatalf("through the proxy before the partition: %v", err)
		}
	}
	if ca.RemoteAddr().String() == a.addr() {
		t.Fatal("Dial connected directly, not through the proxy")
	}
	if s := p.Stats(); s.Forwarded != 2 {
		t.Fatalf("stats %+v, want 2 forwarded", s)
	}

	// Cut: both open connections die on both sides.
	if n := p.Partition(); n != 2 {
		t.Errorf("Partition reset %d connections, want 2", n)
	}
	if !p.Partitioned() {
		t.Error("Partitioned() false after Partition")
	}
	for i, c := range []net.Conn{ca, cb} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Errorf("client %d: read after the partition: %v, want the connection reset", i, err)
		}
	}
	for i := range 2 {
		select {
		case <-a.ended:
		case <-b.ended:
		case <-time.After(5 * time.Second):
			t.Fatalf("upstream side of connection %d still open after the partition", i)
		}
	}

	// New connections get no answer: the dial fails at its deadline with
	// a timeout, like a dropped SYN.
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = p.Dial(dctx, "tcp", a.addr())
	cancel()
	var ne net.Error
	var pe *PartitionError
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &pe) || pe.Addr != a.addr() {
		t.Fatalf("dial during the partition: %v, want a timeout naming %s", err, a.addr())
	}
	if !strings.Contains(err.Error(), "network partition") {
		t.Errorf("error does not say why: %v", err)
	}

	// A dial still waiting when the path heals connects.
	type result struct {
		c   net.Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := p.Dial(ctx, "tcp", a.addr())
		res <- result{c, err}
	}()
	waitUntil(t, "the second dial is held by the partition", func() bool { return p.Stats().Held == 2 })
	select {
	case r := <-res:
		t.Fatalf("dial returned during the partition: %v", r.err)
	default:
	}
	p.Heal()
	if p.Partitioned() {
		t.Error("Partitioned() true after Heal")
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("held dial after the heal: %v", r.err)
	}
	defer r.c.Close()
	if err := roundTrip(r.c, "after"); err != nil {
		t.Fatalf("held dial's connection after the heal: %v", err)
	}
	cn, err := p.Dial(ctx, "tcp", b.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	if err := roundTrip(cn, "after"); err != nil {
		t.Fatalf("new connection after the heal: %v", err)
	}
	if s := p.Stats(); s != (Stats{Forwarded: 4, Reset: 2, Held: 2}) {
		t.Errorf("stats %+v, want 4 forwarded, 2 reset, 2 held", s)
	}

	// A second cut works the same way.
	if n := p.Partition(); n != 2 {
		t.Errorf("second Partition reset %d connections, want 2", n)
	}
	p.Heal()
}

func TestCloseReleasesHeldDials(t *testing.T) {
	a := startEcho(t)
	p := New(nil)
	c, err := p.Dial(context.Background(), "tcp", a.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.Partition()
	errc := make(chan error, 1)
	go func() {
		_, err := p.Dial(context.Background(), "tcp", a.addr())
		errc <- err
	}()
	waitUntil(t, "the dial is held", func() bool { return p.Stats().Held == 1 })
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("held dial after Close: %v, want ErrClosed", err)
	}
	if _, err := p.Dial(context.Background(), "tcp", a.addr()); !errors.Is(err, ErrClosed) {
		t.Errorf("dial after Close: %v, want ErrClosed", err)
	}
}

func TestUpstreamRefusalResetsTheClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close() // nothing listens there any more
	p := New(nil)
	defer p.Close()
	c, err := p.Dial(context.Background(), "tcp", gone)
	if err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		var ne net.Error
		if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Errorf("read from a proxied connection whose upstream refused: %v, want it closed", err)
		}
	} else {
		// The reset can beat the client's side of the handshake.
		t.Logf("dial: %v", err)
	}
	if s := p.Stats(); s.Forwarded != 0 {
		t.Errorf("stats %+v: nothing should count as forwarded", s)
	}
}
