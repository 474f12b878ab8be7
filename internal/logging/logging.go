// Package logging holds godwit's slog plumbing.
package logging

import (
	"context"
	"log/slog"
	"slices"
)

// Unique wraps h so that every key appears once per line. Components
// label their loggers with With("component", ..., "flow", ...) and pass
// them on, so a logger handed from one component to another would
// otherwise print "component=replicate ... component=metasync" and the
// flow twice. The last value given for a key wins: the innermost
// component, or the value passed to the log call itself.
func Unique(h slog.Handler) slog.Handler { return &unique{inner: h} }

type unique struct {
	inner slog.Handler
	attrs []slog.Attr // With attrs not yet handed to inner
}

func (u *unique) Enabled(ctx context.Context, l slog.Level) bool { return u.inner.Enabled(ctx, l) }

func (u *unique) WithAttrs(as []slog.Attr) slog.Handler {
	attrs := slices.Clone(u.attrs)
	for _, a := range as {
		attrs = replaceOrAppend(attrs, a)
	}
	return &unique{inner: u.inner, attrs: attrs}
}

// WithGroup hands the pending attrs to inner first: keys inside a group
// are a different namespace.
func (u *unique) WithGroup(name string) slog.Handler {
	if name == "" {
		return u
	}
	inner := u.inner
	if len(u.attrs) > 0 {
		inner = inner.WithAttrs(u.attrs)
	}
	return &unique{inner: inner.WithGroup(name)}
}

func (u *unique) Handle(ctx context.Context, r slog.Record) error {
	if len(u.attrs) == 0 && r.NumAttrs() < 2 {
		return u.inner.Handle(ctx, r)
	}
	attrs := slices.Clone(u.attrs)
	r.Attrs(func(a slog.Attr) bool {
		attrs = replaceOrAppend(attrs, a)
		return true
	})
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(attrs...)
	return u.inner.Handle(ctx, out)
}

func replaceOrAppend(attrs []slog.Attr, a slog.Attr) []slog.Attr {
	if a.Key != "" {
		for i := range attrs {
			if attrs[i].Key == a.Key {
				attrs[i] = a
				return attrs
			}
		}
	}
	return append(attrs, a)
}
