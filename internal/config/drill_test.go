package config

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDrillReportsKey(t *testing.T) {
	minimal := "clusters:\n  a: {bootstrap_servers: [\"h:1\"]}\n  b: {bootstrap_servers: [\"h:2\"]}\nflows:\n  a->b: {}\n"

	c, err := Parse("/etc/godwit/godwit.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Drill.Reports != "" || c.Drill.MaxAge.D() != DefaultDrillMaxAge || c.Drill.RefreshInterval.D() != DefaultDrillRefreshInterval {
		t.Errorf("defaults: %+v, want no reports, max_age %v, refresh_interval %v", c.Drill, DefaultDrillMaxAge, DefaultDrillRefreshInterval)
	}

	// A relative directory is relative to the config file, an absolute one
	// is kept.
	for in, want := range map[string]string{
		"drills":             "/etc/godwit/drills",
		"../var/drills":      "/etc/var/drills",
		"/var/lib/godwit/dr": "/var/lib/godwit/dr",
	} {
		c, err := Parse("/etc/godwit/godwit.yaml", []byte(minimal+"drill: {reports: "+in+", max_age: 168h, refresh_interval: 10s}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Drill.Reports != filepath.Clean(want) || c.Drill.MaxAge.D() != 168*time.Hour || c.Drill.RefreshInterval.D() != 10*time.Second {
			t.Errorf("reports %q: got %+v, want %s, 168h, 10s", in, c.Drill, want)
		}
	}

	// Strict like every other key.
	_, err = Parse("bad.yaml", []byte(minimal+"drill: {report: x}\n"))
	if want := `bad.yaml:6: drill.report: unknown key "report"`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("unknown key: %v, want %s...", err, want)
	}
	_, err = Parse("bad.yaml", []byte(minimal+"drill: {max_age: 30d}\n"))
	if err == nil || !strings.Contains(err.Error(), "drill.max_age") {
		t.Errorf("bad max_age: %v, want an error naming drill.max_age", err)
	}
}

// Drill reports hold scenario durations; they must decode back.
func TestDurationJSONRoundTrip(t *testing.T) {
	in := struct {
		D Duration `json:"d"`
	}{Duration(90 * time.Second)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := in
	out.D = 0
	if err := json.Unmarshal(b, &out); err != nil || out.D != in.D {
		t.Errorf("%s decoded to %v, %v; want %v", b, out.D.D(), err, in.D.D())
	}
	if err := json.Unmarshal([]byte(`{"d": 5}`), &out); err == nil {
		t.Error("a bare number decoded as a duration")
	}
}
