// Package metrics serves godwit's HTTP endpoints: Prometheus metrics from
// the process's own registry, liveness and readiness, and, when an operator
// opts in, Go's runtime profiles.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Server serves /metrics, /healthz, /readyz and, opted in, /debug/pprof/.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	log  *slog.Logger
	done chan error // receives Serve's outcome once: nil after Close
}

// Options are the server's address and dependencies.
type Options struct {
	Addr     string
	Registry *prometheus.Registry
	// Ready reports readiness and, when not ready, why.
	Ready  func() (bool, string)
	Logger *slog.Logger
	// Pprof serves Go's profiles under /debug/pprof/ (heap, allocs,
	// goroutine, profile, trace). Off by default: a CPU profile or trace
	// costs CPU while it runs and the goroutine dump shows internals, so
	// only an operator who asked for it (http.pprof) gets them.
	Pprof bool
}

// Listen binds o.Addr and serves in the background until Close.
func Listen(o Options) (*Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := o.Ready(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", why)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if o.Pprof {
		// Registered on this mux, not http.DefaultServeMux (which the
		// net/http/pprof import also fills), so the profiles are served
		// only here and only when asked for.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.listen %s: %w (set http.listen to a free address)", o.Addr, err)
	}
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln, log: o.Logger.With("component", "http"), done: make(chan error, 1)}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else {
			s.log.Error("http server stopped", "err", err)
			err = fmt.Errorf("http server on %s: %w", ln.Addr(), err)
		}
		s.done <- err
	}()
	s.log.Info("serving metrics and health", "addr", ln.Addr().String(), "pprof", o.Pprof)
	return s, nil
}

// Wait blocks until the server stops: nil after Close, the serve error
// otherwise (a process whose health endpoint died should not keep running
// unobserved).
func (s *Server) Wait() error { return <-s.done }

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
