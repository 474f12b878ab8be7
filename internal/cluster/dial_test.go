package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// recordingDial dials for real and records every address and the time
// its context had left.
type recordingDial struct {
	mu    sync.Mutex
	addrs []string
	left  []time.Duration
}

func (r *recordingDial) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	r.mu.Lock()
	r.addrs = append(r.addrs, addr)
	if dl, ok := ctx.Deadline(); ok {
		r.left = append(r.left, time.Until(dl))
	} else {
		r.left = append(r.left, -1)
	}
	r.mu.Unlock()
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

func (r *recordingDial) seen() ([]string, []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.addrs...), append([]time.Duration(nil), r.left...)
}

func TestDialHookCarriesEveryConnection(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	addr := fake.ListenAddrs()[0]
	c := parseCluster(t, "a", fmt.Sprintf("bootstrap_servers: [%q]\ndial_timeout: 3s", addr))
	rec := &recordingDial{}
	c.Config.Dial = rec.dial
	if err := ping(t, c); err != nil {
		t.Fatalf("ping through the dial hook: %v", err)
	}
	addrs, left := rec.seen()
	if len(addrs) == 0 {
		t.Fatal("the client connected without the dial hook")
	}
	for i, a := range addrs {
		if a != addr {
			t.Errorf("dial %d went to %s, want %s", i, a, addr)
		}
		// franz-go applies dial_timeout to its own dialer only; the hook
		// must get it from us.
		if left[i] < 0 || left[i] > 3*time.Second {
			t.Errorf("dial %d: context deadline in %v, want at most dial_timeout 3s", i, left[i])
		}
	}

	// A hook that cannot reach the cluster makes it unreachable, with the
	// usual explanation.
	c.Config.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("no route to host")}
	}
	_, err = c.Ping(context.Background(), time.Second)
	if err == nil || !strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), "cluster a") {
		t.Errorf("ping through a failing hook: %v", err)
	}
}

func TestDialHookUnderTLS(t *testing.T) {
	e := requireSecure(t)
	c := parseCluster(t, "mtls", fmt.Sprintf(`
		bootstrap_servers: [%q]
		tls: {ca_file: %q, cert_file: %q, key_file: %q}`, e.mtls, e.ca, e.clientCert, e.clientKey))
	rec := &recordingDial{}
	c.Config.Dial = rec.dial
	if err := ping(t, c); err != nil {
		t.Fatalf("ping over mutual TLS through the dial hook: %v", err)
	}
	if addrs, _ := rec.seen(); len(addrs) == 0 {
		t.Fatal("the TLS client connected without the dial hook")
	}
}
