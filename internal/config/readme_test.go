package config

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestREADMEConfigs: every YAML config in README.md is a valid config, so
// a reader copying one gets a working start.
func TestREADMEConfigs(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(data, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d YAML blocks in README.md, want the sample config and the TLS/SASL example", len(blocks))
	}
	t.Setenv("GODWIT_PRIMARY_SASL_PASSWORD", "x")
	for i, b := range blocks {
		y := b[1]
		if !regexp.MustCompile(`(?m)^flows:`).Match(y) {
			// A clusters-only excerpt: give it a flow so it is a whole config.
			y = append(append([]byte(nil), y...), []byte("flows:\n  primary->secondary: {topics: [\".*\"]}\n")...)
		}
		if _, err := Parse("README.md block "+string(rune('1'+i)), y); err != nil {
			t.Errorf("README.md YAML block %d: %v\n%s", i+1, err, y)
		}
	}
}
