package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestUniqueKeys(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	root := slog.New(Unique(h))
	rep := root.With("component", "replicate", "flow", "a->b")
	meta := rep.With("component", "metasync", "flow", "a->b")
	meta.Info("synced", "topics", 3)
	rep.Info("slot", "slot", 1, "flow", "override")
	meta.WithGroup("g").Info("grouped", "component", "inner")
	root.Info("plain", "k", 1, "k", 2)
	got := buf.String()
	want := `level=INFO msg=synced component=metasync flow=a->b topics=3
level=INFO msg=slot component=replicate flow=override slot=1
level=INFO msg=grouped component=metasync flow=a->b g.component=inner
level=INFO msg=plain k=2
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		if strings.Count(line, "component=") > 1 && !strings.Contains(line, "g.component") {
			t.Errorf("repeated key: %s", line)
		}
	}
}
