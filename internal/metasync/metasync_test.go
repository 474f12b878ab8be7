package metasync_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/metasync"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/testkit"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// flowConfig builds a config with unique cluster aliases (so internal
// topic names never collide on shared real clusters) and one flow whose
// body is body (YAML flow mapping content, e.g. `topics: ["x"]`).
func flowConfig(t testing.TB, src, dst []string, body string) (*config.Config, *config.Flow) {
	t.Helper()
	sfx := randHex(3)
	a, b := "a"+sfx, "b"+sfx
	y := fmt.Sprintf("clusters:\n  %s: {bootstrap_servers: [%s]}\n  %s: {bootstrap_servers: [%s]}\nflows:\n  %s->%s: {%s}\nhttp: {listen: \"127.0.0.1:0\"}\n",
		a, quote(src), b, quote(dst), a, b, body)
	cfg, err := config.Parse(t.Name()+".yaml", []byte(y))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	return cfg, cfg.Flows[a+"->"+b]
}

func quote(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func topicsRegex(names ...string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", regexp.QuoteMeta(n))
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// dropTopics deletes topics on e at cleanup (real clusters are shared).
func dropTopics(t testing.TB, adm *kadm.Client, topics ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, topics...)
	})
}

func pass(t testing.TB, s *metasync.Syncer) (*metasync.Plan, *metasync.Result) {
	t.Helper()
	ctx := testkit.Context(t)
	topics, err := s.SourceTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The heartbeat topic is always selected; on the shared real
	// clusters other tests have created it, so leave it out of these
	// tests' plans (replicate's tests cover heartbeats).
	delete(topics, naming.HeartbeatTopic)
	delete(topics, naming.LegacyHeartbeatTopic)
	p, r, err := s.Pass(ctx, topics)
	if err != nil {
		t.Fatal(err)
	}
	return p, r
}

func dynamicConfigs(t testing.TB, adm *kadm.Client, topic string) map[string]string {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(testkit.Context(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, rc := range rcs {
		if rc.Err != nil {
			t.Fatalf("describe configs of %s: %v", topic, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig && c.Value != nil {
				out[c.Key] = *c.Value
			}
		}
	}
	return out
}

func partitions(t testing.TB, adm *kadm.Client, topic string) int {
	t.Helper()
	d, err := adm.ListTopics(kadm.WithAuthorizedOps(testkit.Context(t)), topic)
	if err != nil {
		t.Fatal(err)
	}
	td, ok := d[topic]
	if !ok || td.Err != nil {
		return 0
	}
	return len(td.Partitions)
}

func hasIssue(is []metasync.Issue, kind, topic, contains string) bool {
	for _, i := range is {
		if i.Kind == kind && (topic == "" || i.Topic == topic) && strings.Contains(i.Message, contains) {
			return true
		}
	}
	return false
}

func TestTopicsConfigsPartitions(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		srcAdm, dstAdm := testkit.Admin(t, p.Primary), testkit.Admin(t, p.Secondary)
		topic := testkit.UniqueName(t, "ms")
		testkit.CreateTopic(t, p.Primary, topic, 3, map[string]*string{
			"cleanup.policy":      kadm.StringPtr("compact"),
			"retention.ms":        kadm.StringPtr("123456789"),
			"min.insync.replicas": kadm.StringPtr("1"), // excluded by default
			"segment.ms":          kadm.StringPtr("7200000"),
		})
		_, flow := flowConfig(t, p.Primary.Addrs, p.Secondary.Addrs,
			`topics: `+topicsRegex(topic)+`, configs_exclude: ["segment\\.ms"]`)
		reg := prometheus.NewRegistry()
		s := metasync.New(flow, testkit.Client(t, p.Primary), testkit.Client(t, p.Secondary), testLogger(t), metasync.NewMetrics(reg))
		target := flow.Source + "." + topic
		dropTopics(t, dstAdm, target, metasync.ACLStateTopic(flow))

		// New topic: created with partitions and non-default configs;
		// excluded ones are not copied.
		plan, res := pass(t, s)
		if len(plan.Actions) != 1 || plan.Actions[0].Kind != metasync.KindCreateTopic {
			t.Fatalf("want one create_topic, got %+v", plan.Actions)
		}
		if len(res.Errors) != 0 {
			t.Fatalf("errors: %+v", res.Errors)
		}
		if res.Ready[topic] != 3 {
			t.Fatalf("ready = %d, want 3", res.Ready[topic])
		}
		if n := partitions(t, dstAdm, target); n != 3 {
			t.Fatalf("target partitions = %d, want 3", n)
		}
		got := dynamicConfigs(t, dstAdm, target)
		if got["cleanup.policy"] != "compact" || got["retention.ms"] != "123456789" {
			t.Fatalf("target configs %v: want cleanup.policy=compact retention.ms=123456789", got)
		}
		if got["message.timestamp.type"] != "CreateTime" {
			t.Fatalf("target configs %v: want message.timestamp.type=CreateTime", got)
		}
		for _, k := range []string{"min.insync.replicas", "segment.ms"} {
			if _, ok := got[k]; ok {
				t.Fatalf("excluded config %s copied: %v", k, got)
			}
		}

		// A second pass finds nothing to do.
		if plan, _ := pass(t, s); len(plan.Actions) != 0 {
			t.Fatalf("second pass not idempotent: %+v", plan.Actions)
		}

		// A source config change reaches the target; a key reset to its
		// default on the source is reset on the target.
		ctx := testkit.Context(t)
		resp, err := srcAdm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
			{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("987654321")},
			{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("2000000")},
			{Op: kadm.DeleteConfig, Name: "cleanup.policy"},
		}, topic)
		if err == nil {
			err = resp[0].Err
		}
		if err != nil {
			t.Fatal(err)
		}
		_, res = pass(t, s)
		if len(res.Errors) != 0 {
			t.Fatalf("errors: %+v", res.Errors)
		}
		got = dynamicConfigs(t, dstAdm, target)
		if got["retention.ms"] != "987654321" || got["max.message.bytes"] != "2000000" {
			t.Fatalf("config change not synced: %v", got)
		}
		if _, ok := got["cleanup.policy"]; ok {
			t.Fatalf("cleanup.policy override not removed after the source reset it: %v", got)
		}

		// A partition increase reaches the target.
		if _, err := srcAdm.UpdatePartitions(ctx, 5, topic); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, func() (bool, string) {
			n := partitions(t, srcAdm, topic)
			return n == 5, fmt.Sprintf("source partitions %d", n)
		})
		plan, res = pass(t, s)
		if len(plan.Actions) != 1 || plan.Actions[0].Kind != metasync.KindAddPartitions || plan.Actions[0].From != 3 || plan.Actions[0].Partitions != 5 {
			t.Fatalf("want add_partitions 3->5, got %+v", plan.Actions)
		}
		if res.Ready[topic] != 5 || partitions(t, dstAdm, target) != 5 {
			t.Fatalf("partitions not added: ready %d", res.Ready[topic])
		}
	})
}

func TestTargetMorePartitionsAndFaults(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		dstAdm := testkit.Admin(t, p.Secondary)
		more := testkit.UniqueName(t, "more")
		missing := testkit.UniqueName(t, "miss")
		testkit.CreateTopic(t, p.Primary, more, 2, nil)
		testkit.CreateTopic(t, p.Primary, missing, 1, nil)

		// replication_factor beyond the target's brokers: a clear error
		// with the broker count; the other topic still syncs.
		_, flow := flowConfig(t, p.Primary.Addrs, p.Secondary.Addrs,
			`topics: `+topicsRegex(more, missing)+`, replication_factor: 99`)
		testkit.CreateTopic(t, p.Secondary, flow.Source+"."+more, 4, nil)
		dropTopics(t, dstAdm, flow.Source+"."+missing)
		s := metasync.New(flow, testkit.Client(t, p.Primary), testkit.Client(t, p.Secondary), testLogger(t), nil)
		plan, res := pass(t, s)
		if !hasIssue(plan.Errors, metasync.IssueReplicationFactor, missing, "broker(s) of target cluster") {
			t.Fatalf("want replication_factor error naming the broker count, got %+v", plan.Errors)
		}
		if _, ok := res.Ready[missing]; ok {
			t.Fatalf("topic %s with an impossible replication factor must not be ready", missing)
		}
		if !hasIssue(plan.Warnings, metasync.IssueTargetMorePartitions, more, "has 4 partitions") {
			t.Fatalf("want target_more_partitions warning, got %+v", plan.Warnings)
		}
		if res.Ready[more] != 2 {
			t.Fatalf("topic with more target partitions: ready %d, want 2 (replication continues)", res.Ready[more])
		}

		// create_topics: false never creates and names the topic.
		_, flow2 := flowConfig(t, p.Primary.Addrs, p.Secondary.Addrs,
			`topics: `+topicsRegex(missing)+`, create_topics: false`)
		s2 := metasync.New(flow2, testkit.Client(t, p.Primary), testkit.Client(t, p.Secondary), testLogger(t), nil)
		plan, res = pass(t, s2)
		if !hasIssue(plan.Errors, metasync.IssueTargetMissing, missing, "create_topics is false") || len(plan.Actions) != 0 {
			t.Fatalf("want target_topic_missing and no actions, got %+v %+v", plan.Errors, plan.Actions)
		}
		if partitions(t, dstAdm, flow2.Source+"."+missing) != 0 || res.Ready[missing] != 0 {
			t.Fatal("create_topics: false created a topic")
		}
	})
}

// TestUnsafeConfigStopsTopic: a target that would compact away what the
// source keeps, with config sync off, stops the topic with an error.
func TestUnsafeConfigStopsTopic(t *testing.T) {
	p := testkit.KfakePair(t)
	topic := testkit.UniqueName(t, "unsafe")
	testkit.CreateTopic(t, p.Primary, topic, 1, nil)
	_, flow := flowConfig(t, p.Primary.Addrs, p.Secondary.Addrs, `topics: `+topicsRegex(topic)+`, sync_topic_configs: false`)
	testkit.CreateTopic(t, p.Secondary, flow.Source+"."+topic, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")})
	s := metasync.New(flow, testkit.Client(t, p.Primary), testkit.Client(t, p.Secondary), testLogger(t), nil)
	plan, res := pass(t, s)
	if !hasIssue(plan.Errors, metasync.IssueUnsafeConfig, topic, "compact") {
		t.Fatalf("want unsafe_config error, got %+v", plan.Errors)
	}
	if res.Ready[topic] != 0 {
		t.Fatal("unsafe topic must not be replicated")
	}
}
