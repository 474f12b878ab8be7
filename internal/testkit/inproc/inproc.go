// Package inproc runs godwit's long-running parts inside a test process, as
// `godwit replicate` runs them, for the end-to-end tests of the packages
// that read what they write (failover, failback). It is a package of its own
// because testkit must not import the engines it tests.
package inproc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/replicate"
	"github.com/godwit/godwit/internal/testkit"
)

// Logger discards unless the test runs with -v.
func Logger() *slog.Logger {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// ContextFor is a context that ends after d or with the test.
func ContextFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Flow runs a flow and its checkpoint loop until the test ends, built from
// replicate.NewFlow and offsets.NewSyncer with a registry of their own so
// the clients carry no shared metric hooks. Their errors are not checked:
// the tests that use it kill clusters under it on purpose.
func Flow(t testing.TB, cfg *config.Config, flow string) {
	t.Helper()
	f := cfg.Flows[flow]
	if f == nil {
		t.Fatalf("inproc: flow %q is not in the config", flow)
	}
	src, err := cluster.New(cfg, f.Source)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := cluster.New(cfg, f.Target)
	if err != nil {
		t.Fatal(err)
	}
	log := Logger()
	reg := prometheus.NewRegistry()
	fl := replicate.NewFlow(replicate.Options{Flow: f, Source: src, Target: dst, Logger: log, Metrics: replicate.NewMetrics(reg)})
	sy := offsets.NewSyncer(offsets.Options{Flow: f, Source: src, Target: dst, Logger: log, Metrics: offsets.NewMetrics(reg)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = fl.Run(ctx); done <- struct{}{} }()
	go func() { _ = sy.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		for range 2 {
			select {
			case <-done:
			case <-timeout.C:
				t.Logf("inproc: flow %s did not stop within 30s", flow)
				return
			}
		}
	})
}

// Advanced waits for a positive sign that a flow's replicator is alive and
// copying after what the test just produced, for the checks that something
// must NOT have been copied: two more of the flow's heartbeats (written on
// the source every second, replicated as <source>.heartbeats) reach the
// target. A record the replicator should still copy would have had the same
// time to arrive.
func Advanced(t *testing.T, p testkit.Pair, f *config.Flow) {
	t.Helper()
	hb := naming.For(f).TargetTopic(naming.HeartbeatTopic)
	sum := func() (n int64) {
		ends, err := testkit.Admin(t, p.Secondary).ListEndOffsets(ContextFor(t, 30*time.Second), hb)
		if err != nil {
			t.Fatal(err)
		}
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n
	}
	from := sum()
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		n := sum()
		return n >= from+2, fmt.Sprintf("%s on the target: %d heartbeats since the produce, want 2 (is the replicator running?)", hb, n-from)
	})
}
