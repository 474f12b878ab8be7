// Package inproc runs godwit's long-running parts inside a test process, as
// `godwit replicate` runs them, for the end-to-end tests of the packages
// that read what they write (failover, failback). It is a package of its own
// because testkit must not import the engines it tests.
package inproc

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/replicate"
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
