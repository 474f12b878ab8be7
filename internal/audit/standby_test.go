package audit_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/godwit/godwit/internal/audit"
	"github.com/godwit/godwit/internal/testkit"
)

// TestStandbyRetention: a target log retention has already trimmed holds
// its retention's worth of traffic, so a standby retention of 1 day instead
// of 7 frees 6/7 of it; the report says so with the bytes, the consequence
// and the commands.
func TestStandbyRetention(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		n := uniqueNames(t)
		cfg := pairConfig(t, p, n, "")
		topic := n.prefix + ".events"
		testkit.CreateTopic(t, p.Primary, topic, 1, map[string]*string{"retention.ms": kadm.StringPtr("604800000")})
		produce(t, p.Primary, topic, 0, 50)
		stop := runReplicator(t, cfg)
		t.Cleanup(func() { cleanupTargets(p, n) })
		target := n.src + "." + topic
		dst := testkit.Admin(t, p.Secondary)
		testkit.Eventually(t, time.Minute, func() (bool, string) {
			ends, err := dst.ListEndOffsets(testkit.Context(t), target)
			if err != nil {
				return false, err.Error()
			}
			o, _ := ends.Lookup(target, 0)
			return o.Offset >= 50, "target end offset below 50"
		})
		stop()
		// What retention does: the oldest records are gone on the target.
		ro := kadm.Offsets{}
		ro.Add(kadm.Offset{Topic: target, Partition: 0, At: 10})
		if _, err := dst.DeleteRecords(testkit.Context(t), ro); err != nil {
			t.Fatal(err)
		}

		var c *audit.Check
		rep := runAudit(t, cfg)
		for i := range rep.Checks {
			if rep.Checks[i].ID == audit.IDStandbyRetention {
				c = &rep.Checks[i]
			}
		}
		if c == nil {
			t.Fatal("no topics.standby_retention check")
		}
		b, _ := json.Marshal(c.Details)
		var d struct {
			Topics []struct {
				TargetTopic string `json:"target_topic"`
				Stored      int64  `json:"stored_bytes"`
				Saved       int64  `json:"saved_bytes"`
				Full        bool   `json:"full"`
			} `json:"topics"`
			Saved int64 `json:"saved_bytes"`
		}
		if err := json.Unmarshal(b, &d); err != nil || len(d.Topics) != 1 {
			t.Fatalf("details: %v %s", err, b)
		}
		row := d.Topics[0]
		if row.TargetTopic != target || !row.Full || row.Stored <= 0 {
			t.Fatalf("row %+v, want %s full with stored bytes", row, target)
		}
		if want := row.Stored - row.Stored/7; row.Saved != want || d.Saved != want {
			t.Fatalf("saved %d (total %d), want 6/7 of %d = %d", row.Saved, d.Saved, row.Stored, want)
		}
		for _, s := range []string{"would free about", "consumers can rewind at most 1d", "data at risk"} {
			if !strings.Contains(c.Evidence, s) {
				t.Errorf("evidence lacks %q: %s", s, c.Evidence)
			}
		}
		if !strings.Contains(c.Remedy, "retention.ms=86400000") || !strings.Contains(c.Remedy, "godwit cost --retention-hours 24") {
			t.Errorf("remedy: %s", c.Remedy)
		}
	})
}
