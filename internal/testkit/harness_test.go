package testkit_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/godwit/godwit/internal/testkit"
)

// TestPairRoundTrip is the first integration test: on each pair, records
// written to each cluster read back from it, and the clusters are distinct.
func TestPairRoundTrip(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		ids := map[string]string{}
		for _, e := range []testkit.Endpoint{p.Primary, p.Secondary} {
			topic := testkit.UniqueName(t, "roundtrip")
			testkit.CreateTopic(t, e, topic, 2, nil)

			want := map[string]bool{}
			prod := testkit.Client(t, e)
			for i := range 10 {
				v := fmt.Sprintf("%s-%d", e.Name, i)
				want[v] = true
				r := &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}
				if err := prod.ProduceSync(testkit.Context(t), r).FirstErr(); err != nil {
					t.Fatalf("produce to %s: %v", e.Name, err)
				}
			}

			cons := testkit.Client(t, e,
				kgo.ConsumeTopics(topic),
				kgo.ConsumerGroup(testkit.UniqueName(t, "group")),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxWait(200*time.Millisecond))
			got := map[string]bool{}
			testkit.Eventually(t, testkit.Timeout, func() (bool, string) {
				fs := cons.PollRecords(testkit.Context(t), 100)
				fs.EachError(func(tp string, part int32, err error) { t.Fatalf("fetch %s/%d on %s: %v", tp, part, e.Name, err) })
				fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
				return len(got) == len(want), fmt.Sprintf("%s: read %d of %d records", e.Name, len(got), len(want))
			})
			for v := range want {
				if !got[v] {
					t.Fatalf("%s: record %q not read back", e.Name, v)
				}
			}

			md, err := testkit.Admin(t, e).BrokerMetadata(testkit.Context(t))
			if err != nil {
				t.Fatalf("metadata of %s: %v", e.Name, err)
			}
			dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(testkit.Context(t), testkit.Client(t, e))
			if err == nil {
				err = kerr.ErrorForCode(dc.ErrorCode)
			}
			if err != nil {
				t.Fatalf("describe cluster %s: %v", e.Name, err)
			}
			if md.Cluster == "" || dc.ClusterID != md.Cluster {
				t.Fatalf("%s: metadata cluster id %q, DescribeCluster %q", e.Name, md.Cluster, dc.ClusterID)
			}
			ids[e.Name] = md.Cluster
		}
		if ids[p.Primary.Name] == ids[p.Secondary.Name] {
			t.Fatalf("primary and secondary share cluster id %q: they must be different clusters", ids[p.Primary.Name])
		}
	})
}

func TestConfig(t *testing.T) {
	p := testkit.Pair{
		Kind:      testkit.KindKafka,
		Primary:   testkit.Endpoint{Name: "primary", Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}},
		Secondary: testkit.Endpoint{Name: "secondary", Addrs: []string{"127.0.0.1:3"}},
	}
	c := testkit.Config(t, p, "")
	if f := c.Flows["primary->secondary"]; f == nil || !f.TopicSelected("x") {
		t.Fatalf("default flow missing: %+v", c.Flows)
	}
	if got := c.Clusters["primary"].BootstrapServers; strings.Join(got, ",") != "127.0.0.1:1,127.0.0.1:2" {
		t.Fatalf("bootstrap_servers = %v", got)
	}
	c = testkit.Config(t, p, `
		primary->secondary:
		  topics: ["orders"]
		  delivery: at-least-once
		secondary->primary:
		  enabled: false
	`)
	if f := c.Flows["primary->secondary"]; f.ExactlyOnce() || f.TopicSelected("x") || !f.TopicSelected("orders") {
		t.Fatalf("flow not as given: %+v", f)
	}
	if c.Flows["secondary->primary"].IsEnabled() {
		t.Fatal("secondary->primary should be disabled")
	}
	c = testkit.Config(t, p, "flows:\n  primary->secondary:\n    naming: identical\n")
	if c.Flows["primary->secondary"].Naming != "identical" {
		t.Fatal("full flows: block not used")
	}
}

func TestUniqueName(t *testing.T) {
	a, b := testkit.UniqueName(t, "topic"), testkit.UniqueName(t, "topic")
	if a == b || !strings.HasPrefix(a, "topic.TestUniqueName.") {
		t.Fatalf("names %q, %q", a, b)
	}
	t.Run("sub/with space", func(t *testing.T) {
		if n := testkit.UniqueName(t, "g"); strings.ContainsAny(n, "/ ") {
			t.Fatalf("unsafe name %q", n)
		}
	})
}

func TestEventually(t *testing.T) {
	n := 0
	testkit.Eventually(t, 5*time.Second, func() (bool, string) { n++; return n == 3, "" })
	if n != 3 {
		t.Fatalf("cond called %d times", n)
	}
}

func TestRealPairFromEnv(t *testing.T) {
	t.Setenv(testkit.EnvPrimary, "")
	t.Setenv(testkit.EnvSecondary, "h:1")
	if _, ok := testkit.RealPair(t); ok {
		t.Fatal("RealPair with one variable unset")
	}
	if ps := testkit.Pairs(t); len(ps) != 1 || ps[0].Kind != testkit.KindKfake || ps[0].Sandbox == nil {
		t.Fatalf("Pairs = %+v", ps)
	}
	t.Setenv(testkit.EnvPrimary, " a:1, b:2 ,")
	p, ok := testkit.RealPair(t)
	if !ok || strings.Join(p.Primary.Addrs, ",") != "a:1,b:2" || p.Secondary.Addrs[0] != "h:1" || p.Kind != testkit.KindKafka {
		t.Fatalf("RealPair = %+v, %v", p, ok)
	}
}
