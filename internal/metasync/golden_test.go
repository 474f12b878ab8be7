package metasync_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/godwit/godwit/internal/metasync"
	"github.com/godwit/godwit/internal/testkit"
)

// TestPlanGolden: `sync plan` output for a prepared drift (partitions
// missing, configs differing, a target override to remove, a missing
// topic, a target with more partitions, ACLs to copy) matches
// testdata/plan_drift.json. UPDATE_GOLDEN=1 rewrites it.
func TestPlanGolden(t *testing.T) {
	p := testkit.KfakePair(t) // fresh clusters: fixed names, nothing to normalise
	s1 := func(v string) *string { return kadm.StringPtr(v) }
	testkit.CreateTopic(t, p.Primary, "orders", 4, map[string]*string{"cleanup.policy": s1("compact"), "retention.ms": s1("3600000"), "min.insync.replicas": s1("1")})
	testkit.CreateTopic(t, p.Primary, "payments", 1, map[string]*string{"max.message.bytes": s1("2097152")})
	testkit.CreateTopic(t, p.Primary, "big", 2, nil)
	testkit.CreateTopic(t, p.Primary, "ignored", 1, nil)
	testkit.CreateTopic(t, p.Secondary, "primary.orders", 2, map[string]*string{"retention.ms": s1("100"), "segment.ms": s1("600000"), "cleanup.policy": s1("compact")})
	testkit.CreateTopic(t, p.Secondary, "primary.big", 6, nil)
	srcAdm := testkit.Admin(t, p.Primary)
	createACLs(t, srcAdm,
		aclSpec{kmsg.ACLResourceTypeTopic, "orders", kadm.ACLPatternLiteral, "User:alice", kadm.OpRead},
		aclSpec{kmsg.ACLResourceTypeTopic, "orders", kadm.ACLPatternLiteral, "User:alice", kadm.OpWrite},
		aclSpec{kmsg.ACLResourceTypeTopic, "pay", kadm.ACLPatternPrefixed, "User:bob", kadm.OpAll},
		aclSpec{kmsg.ACLResourceTypeGroup, "billing", kadm.ACLPatternLiteral, "User:bob", kadm.OpAll},
		aclSpec{kmsg.ACLResourceTypeTopic, "ignored", kadm.ACLPatternLiteral, "User:bob", kadm.OpRead},
	)
	cfg := testkit.Config(t, p, `primary->secondary: {topics: ["orders", "payments", "big"], configs_exclude: ["segment\\.bytes"]}`)
	flow := cfg.Flows["primary->secondary"]
	s := metasync.New(flow, testkit.Client(t, p.Primary), testkit.Client(t, p.Secondary), testLogger(t), nil)
	topics, err := s.SourceTopics(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := s.Plan(testkit.Context(t), topics)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "plan_drift.json")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("plan differs from %s (UPDATE_GOLDEN=1 rewrites it):\n%s", path, got)
	}
	// Planning changed nothing.
	if n := partitions(t, testkit.Admin(t, p.Secondary), "primary.payments"); n != 0 {
		t.Fatal("plan created a topic")
	}
}
