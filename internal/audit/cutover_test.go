package audit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/config"
)

// TestAuditCutoverHookCheck: PASS with the program and timeout only (the
// arguments and leading assignments may hold secrets), WARN without a
// command.
func TestAuditCutoverHookCheck(t *testing.T) {
	for _, tc := range []struct {
		command string
		status  string
		want    string
	}{
		{"", Warn, "no cutover.command configured"},
		{"   ", Warn, "no cutover.command configured"},
		{"/opt/dr/switch-dns --token s3cret", Pass, "cutover.command runs /opt/dr/switch-dns (arguments not shown), timeout 45s"},
		{"API_KEY=s3cret TOKEN=x ./cutover.sh", Pass, "cutover.command runs ./cutover.sh (arguments not shown), timeout 45s"},
	} {
		cfg := &config.Config{Cutover: config.Cutover{Command: tc.command, Timeout: config.Duration(45 * time.Second)}}
		fa := &flowAudit{o: &Options{Config: cfg}}
		c := fa.cutoverHook(context.Background())
		if c.Status != tc.status || c.Evidence != tc.want {
			t.Errorf("command %q: %s %q, want %s %q", tc.command, c.Status, c.Evidence, tc.status, tc.want)
		}
		if strings.Contains(c.Evidence+c.Remedy, "s3cret") {
			t.Errorf("command %q: evidence shows a secret: %q", tc.command, c.Evidence)
		}
	}
}
