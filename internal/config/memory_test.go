package config

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

func TestMemoryBudgetValues(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		wantErr string
	}{
		{"64MiB", 64 << 20, ""},
		{"8192KiB", 8 << 20, ""},
		{"1GiB", 1 << 30, ""},
		{`"48 MiB"`, 48 << 20, ""},
		{"33554432", 32 << 20, ""},
		{"16777216B", 16 << 20, ""},
		{"", DefaultMemoryBudget, ""}, // null: the default
		{"64MB", 0, `"64MB" is not a size; use bytes or a whole number with a binary unit, such as 64MiB, 512KiB or 1GiB`},
		{"1.5GiB", 0, `"1.5GiB" is not a size`},
		{"-1MiB", 0, `"-1MiB" is negative`},
		{"99999999999GiB", 0, `"99999999999GiB" is too large`},
		{"[1]", 0, "want a size such as 64MiB"},
		{"1MiB", 0, "memory_budget 1MiB gives each of the 16 slots less than 256KiB; set it to at least 4MiB or lower slots"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, err := Parse("m.yaml", []byte(base("    memory_budget: "+tt.in+"\n")))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "m.yaml:") || !strings.Contains(err.Error(), "flows.a->b") {
					t.Errorf("error = %v, want m.yaml:N: flows.a->b...: ...%s...", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Flows["a->b"].MemoryBudget; got != tt.want {
				t.Errorf("memory_budget = %d, want %d", got, tt.want)
			}
		})
	}
}

// Many slots raise the default so every slot gets its minimum share: a
// legal slots value never makes the default budget invalid.
func TestMemoryBudgetDefaultFollowsSlots(t *testing.T) {
	for _, tt := range []struct {
		slots string
		want  ByteSize
	}{
		{"1", DefaultMemoryBudget},
		{"16", DefaultMemoryBudget},
		{"1024", 1024 * MinSlotMemory},
	} {
		c, err := Parse("m.yaml", []byte(base("    slots: "+tt.slots+"\n")))
		if err != nil {
			t.Fatalf("slots %s: %v", tt.slots, err)
		}
		if got := c.Flows["a->b"].MemoryBudget; got != tt.want {
			t.Errorf("slots %s: memory_budget default %s, want %s", tt.slots, got, tt.want)
		}
	}
}

// What config check prints must read back as the same size, in YAML and
// JSON.
func TestByteSizeRoundTrip(t *testing.T) {
	for _, b := range []ByteSize{1, 1000, 1 << 10, 1536, 64 << 20, 3 << 30, DefaultMemoryBudget} {
		y, err := yaml.Marshal(map[string]ByteSize{"v": b})
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]ByteSize
		if err := yaml.Unmarshal(y, &back); err != nil || back["v"] != b {
			t.Errorf("YAML %q: got %v (%v), want %d", y, back["v"], err, b)
		}
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var jb ByteSize
		if err := json.Unmarshal(j, &jb); err != nil || jb != b {
			t.Errorf("JSON %s: got %d (%v), want %d", j, jb, err, b)
		}
	}
	if s := ByteSize(64 << 20).String(); s != "64MiB" {
		t.Errorf("String() = %q, want 64MiB", s)
	}
	if s := ByteSize(1536).String(); s != "1536B" {
		t.Errorf("String() = %q, want 1536B (1.5KiB is not a whole number of KiB)", s)
	}
	var jb ByteSize
	if err := json.Unmarshal([]byte("2048"), &jb); err != nil || jb != 2048 {
		t.Errorf("JSON number 2048: got %d (%v)", jb, err)
	}
}

func TestPprofKey(t *testing.T) {
	c, err := Parse("p.yaml", []byte(base("    topics: [x]\n")+"http: {listen: \"127.0.0.1:0\", pprof: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.HTTP.Pprof {
		t.Error("http.pprof: true not read")
	}
	c, err = Parse("p.yaml", []byte(base("    topics: [x]\n")))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Pprof {
		t.Error("http.pprof defaults to true; profiles must be opt-in")
	}
}
