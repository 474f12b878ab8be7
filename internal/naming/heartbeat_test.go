package naming

import (
	"bytes"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/config"
)

func flowFor(t *testing.T, naming string) *config.Flow {
	t.Helper()
	c, err := config.Parse("t.yaml", []byte(`clusters:
  a: {bootstrap_servers: ["h:1"]}
  b: {bootstrap_servers: ["h:2"]}
flows:
  a->b: {topics: ["orders.*"], naming: `+naming+`}
`))
	if err != nil {
		t.Fatal(err)
	}
	return c.Flows["a->b"]
}

// TestHeartbeatNaming: heartbeats are replicated as <source>.heartbeats
// whatever the naming (as MM2 does), whatever the topic filter, and never
// back to the cluster they came from; the legacy topic is not replicated
// any more (its target name, for the audit's fallback, keeps the old
// naming).
func TestHeartbeatNaming(t *testing.T) {
	for _, tc := range []struct {
		naming, topic, target string
		why                   Reason
	}{
		{"prefixed", "heartbeats", "a.heartbeats", Selected},
		{"identical", "heartbeats", "a.heartbeats", Selected},
		{"prefixed", "godwit.heartbeats", "a.godwit.heartbeats", ReasonGodwit},
		{"identical", "godwit.heartbeats", "godwit.heartbeats", ReasonGodwit},
		// Heartbeats from further upstream follow the topic filter and get
		// one more prefix (MM2's hop count); from the target, never.
		{"identical", "c.heartbeats", "a.c.heartbeats", ReasonFilter},
		{"prefixed", "c.heartbeats", "a.c.heartbeats", ReasonFilter},
		{"identical", "b.heartbeats", "a.b.heartbeats", ReasonCycle},
		{"prefixed", "b.heartbeats", "a.b.heartbeats", ReasonCycle},
		{"identical", "orders", "orders", Selected},
	} {
		p := For(flowFor(t, tc.naming))
		if got := p.TargetTopic(tc.topic); got != tc.target {
			t.Errorf("%s %s: target %q, want %q", tc.naming, tc.topic, got, tc.target)
		}
		if got := p.Select(tc.topic); got != tc.why {
			t.Errorf("%s %s: select %q, want %q", tc.naming, tc.topic, got, tc.why)
		}
	}
}

// TestHeartbeatRecord checks MM2's Heartbeat wire format byte for byte
// (key: STRING source, STRING target; value: INT16 version 0, INT64 ms).
func TestHeartbeatRecord(t *testing.T) {
	at := time.UnixMilli(0x0102030405)
	k, v := HeartbeatRecord("west", "east", at)
	wantK := []byte{0, 4, 'w', 'e', 's', 't', 0, 4, 'e', 'a', 's', 't'}
	wantV := []byte{0, 0, 0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x05}
	if !bytes.Equal(k, wantK) || !bytes.Equal(v, wantV) {
		t.Fatalf("key %x value %x, want %x %x", k, v, wantK, wantV)
	}
	s, d, got, ok := ParseHeartbeat(k, v)
	if !ok || s != "west" || d != "east" || !got.Equal(at) {
		t.Errorf("parse: %q %q %v %v", s, d, got, ok)
	}
	for _, bad := range [][2][]byte{{k[:5], v}, {k, v[:9]}, {append(k, 0), v}, {k, append([]byte{0, 1}, v[2:]...)}} {
		if _, _, _, ok := ParseHeartbeat(bad[0], bad[1]); ok {
			t.Errorf("ParseHeartbeat(%x, %x) accepted", bad[0], bad[1])
		}
	}
}
