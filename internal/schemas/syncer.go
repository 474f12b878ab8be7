package schemas

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/godwit/godwit/internal/config"
)

// Options are a schema syncer's dependencies.
type Options struct {
	Flow   *config.Flow
	Source *Registry
	Target *Registry
	Logger *slog.Logger
	// Metrics may be nil (one-off passes: sync plan, audit).
	Metrics *Metrics
	// Active reports whether this process does the flow's schema sync
	// (the owner of the flow's slot 0); nil means always.
	Active func() bool
	// IDs, for translate-ids, keeps the source -> target ID map on the
	// target; nil otherwise.
	IDs *IDMap
	// Now is the clock.
	Now func() time.Time
}

// Syncer keeps one flow's target registry in step with its source.
type Syncer struct {
	o        Options
	log      *slog.Logger
	src, dst *reader
	ap       *applier
}

// NewSyncer prepares a syncer; Run starts its loop.
func NewSyncer(o Options) *Syncer {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Syncer{
		o:   o,
		log: o.Logger.With("component", "schemas", "flow", o.Flow.Name),
		src: newReader(o.Source),
		dst: newReader(o.Target),
		ap:  &applier{dst: o.Target, mode: o.Flow.Schemas.Mode},
	}
}

// Plan reads both registries and returns what a pass would change.
func (s *Syncer) Plan(ctx context.Context) (*Plan, *Snapshot, error) {
	keep := s.o.Flow.Schemas.SubjectSelected
	src, err := s.src.snapshot(ctx, keep)
	if err != nil {
		return nil, nil, err
	}
	dst, err := s.dst.snapshot(ctx, keep)
	if err != nil {
		return nil, nil, err
	}
	return Diff(s.o.Flow.Name, s.o.Flow.Schemas.Mode, src, dst), dst, nil
}

// Pass runs one sync pass: plan, apply, record the ID map (translate-ids)
// and the metrics. The returned plan is the one applied.
func (s *Syncer) Pass(ctx context.Context) (*Plan, *Result, error) {
	p, dst, err := s.Plan(ctx)
	if err != nil {
		s.failed(err)
		return nil, nil, err
	}
	existing := map[string]bool{}
	for name := range dst.Subjects {
		existing[name] = true
	}
	res := &Result{Applied: []Action{}, Errors: []string{}, IDs: map[int]int{}}
	if len(p.Actions) > 0 {
		res = s.ap.apply(ctx, p, existing)
		for _, a := range res.Applied {
			s.dst.forget(a.Subject)
			s.log.Info("schema sync", "action", a.String())
		}
	}
	if s.o.IDs != nil {
		ids := make(map[int]int, len(p.IDs)+len(res.IDs))
		for k, v := range p.IDs {
			ids[k] = v
		}
		for k, v := range res.IDs {
			ids[k] = v
		}
		if err := s.o.IDs.Record(ctx, ids); err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
	}
	behind := s.behindAfter(p, res)
	for _, c := range p.Conflicts {
		s.log.Error("schema subject cannot be synced", "subject", c.Subject, "version", c.Version, "problem", c.Problem, "remedy", c.Remedy)
	}
	for _, e := range res.Errors {
		s.log.Error("schema sync failed", "err", e)
	}
	if m := s.o.Metrics; m != nil {
		name := s.o.Flow.Name
		m.Synced.WithLabelValues(name).Add(float64(countKind(res.Applied, ActRegister)))
		m.Behind.WithLabelValues(name).Set(float64(behind))
		m.SourceVersions.WithLabelValues(name).Set(float64(p.Versions))
		m.Errors.WithLabelValues(name).Add(float64(len(res.Errors) + len(p.Conflicts)))
		if len(res.Errors) == 0 && len(p.Conflicts) == 0 {
			m.LastSuccess.WithLabelValues(name).Set(float64(s.o.Now().Unix()))
		}
	}
	return p, res, nil
}

// behindAfter counts the subjects still not in step once res is applied.
func (s *Syncer) behindAfter(p *Plan, res *Result) int {
	applied := map[string]int{}
	for _, a := range res.Applied {
		applied[a.Subject]++
	}
	pending := map[string]int{}
	for _, a := range p.Actions {
		pending[a.Subject]++
	}
	behind := map[string]bool{}
	for subject, n := range pending {
		if applied[subject] < n {
			behind[subject] = true
		}
	}
	for _, c := range p.Conflicts {
		behind[c.Subject] = true
	}
	return len(behind)
}

func (s *Syncer) failed(err error) {
	s.log.Error("schema sync pass failed", "err", err)
	if m := s.o.Metrics; m != nil {
		m.Errors.WithLabelValues(s.o.Flow.Name).Inc()
		// Unknown, not 0: the registries could not be compared.
		m.Behind.DeleteLabelValues(s.o.Flow.Name)
	}
}

func countKind(acts []Action, kind string) int {
	n := 0
	for _, a := range acts {
		if a.Kind == kind {
			n++
		}
	}
	return n
}

// Run syncs every interval while this process is the flow's active
// syncer, until ctx ends. Ownership is looked at every second, so a
// process that becomes the syncer (slot 0 assigned at start, or moved
// here) passes at once rather than an interval later.
func (s *Syncer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(min(interval, time.Second))
	defer t.Stop()
	var last time.Time
	for {
		if (s.o.Active == nil || s.o.Active()) && time.Since(last) >= interval {
			last = time.Now()
			pctx, cancel := context.WithTimeout(ctx, max(2*interval, time.Minute))
			if _, _, err := s.Pass(pctx); err != nil && ctx.Err() == nil {
				s.log.Warn("schema sync pass failed; retrying next interval", "err", err, "retry_in", interval)
			}
			cancel()
		} else if s.o.Active != nil && !s.o.Active() {
			last = time.Time{} // pass as soon as ownership (re)arrives
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// String describes the sync for logs.
func (s *Syncer) String() string {
	return fmt.Sprintf("schema sync %s -> %s (%s)", s.o.Source.URL, s.o.Target.URL, s.o.Flow.Schemas.Mode)
}
