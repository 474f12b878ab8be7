package replicate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

// TestSourceTopicDeniedByACL: godwit may see a source topic but not read
// it. That topic's partitions stop with an error naming the cluster and
// topic and a metric; every other topic keeps replicating.
func TestSourceTopicDeniedByACL(t *testing.T) {
	src, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("PLAIN", "admin", "admin"), kfake.User("PLAIN", "godwit", "godwit-pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	admin := testkit.Endpoint{Name: "src", Addrs: src.ListenAddrs()}
	adm := kadm.NewClient(testkit.Client(t, admin, kgo.SASL(plain.Auth{User: "admin", Pass: "admin"}.AsMechanism())))
	ok, denied := "ok.orders", "secret.orders"
	ctx := ctxFor(t, time.Minute)
	for _, topic := range []string{ok, denied, naming.HeartbeatTopic} {
		if _, err := adm.CreateTopic(ctx, 2, -1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	grant := func(b *kadm.ACLBuilder) {
		t.Helper()
		res, err := adm.CreateACLs(ctx, b.Allow("User:godwit").AllowHosts("*").ResourcePatternType(kadm.ACLPatternLiteral))
		if err == nil {
			for _, r := range res {
				if r.Err != nil {
					err = r.Err
				}
			}
		}
		if err != nil {
			t.Fatalf("create ACLs: %v", err)
		}
	}
	grant(kadm.NewACLs().Topics(ok, naming.HeartbeatTopic).Operations(kadm.OpAll))
	grant(kadm.NewACLs().Topics(denied).Operations(kadm.OpDescribe, kadm.OpDescribeConfigs))
	grant(kadm.NewACLs().Clusters().Operations(kadm.OpDescribe, kadm.OpDescribeConfigs))

	dst := testkit.KfakePair(t).Secondary
	cfgText := fmt.Sprintf(`clusters:
  src: {bootstrap_servers: [%q], sasl: {mechanism: plain, username: godwit, password: godwit-pw}}
  dst: {bootstrap_servers: [%q]}
flows:
  src->dst: {topics: ["ok\\..*", "secret\\..*"], sync_acls: false, refresh_interval: 1s}
http: {listen: "127.0.0.1:0"}
`, src.ListenAddrs()[0], dst.Addrs[0])
	cfgPath := filepath.Join(t.TempDir(), "godwit.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	prodCl := testkit.Client(t, admin, kgo.SASL(plain.Auth{User: "admin", Pass: "admin"}.AsMechanism()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	prod := workload.NewProducer(prodCl, workload.ProducerConfig{Topic: ok, Partitions: 2})
	if err := prod.Produce(ctx, 100); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := prodCl.ProduceSync(ctx, &kgo.Record{Topic: denied, Partition: int32(i % 2), Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ip := runInProcess(t, cfgPath)
	waitCheck(t, dst, prod.Ledger(), checkCfg("src."+ok, 2), time.Minute)
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		ready, why := ip.r.Ready()
		return !ready && strings.Contains(why, denied) && strings.Contains(why, "not authorized") && strings.Contains(why, "cluster src"),
			fmt.Sprintf("ready=%v %s", ready, why)
	})
	if n := ip.metric("godwit_errors_total", map[string]string{"kind": "authorization"}); n < 1 {
		t.Errorf("godwit_errors_total{kind=authorization} = %v, want >= 1", n)
	}
	if n := ip.metric("godwit_partition_stopped", map[string]string{"topic": denied}); n != 2 {
		t.Errorf("godwit_partition_stopped{topic=%s} = %v, want 2", denied, n)
	}
	// Later records of the readable topic still flow.
	if err := prod.Produce(ctx, 100); err != nil {
		t.Fatal(err)
	}
	waitCheck(t, dst, prod.Ledger(), checkCfg("src."+ok, 2), time.Minute)
}

// TestSourceTopicDisappears: a replicated topic deleted on the source stops
// being replicated; the target keeps its data; a metric counts it.
func TestSourceTopicDisappears(t *testing.T) {
	p := testkit.KfakePair(t)
	topic := testkit.UniqueName(t, "gone")
	adm := testkit.Admin(t, p.Primary)
	if _, err := adm.CreateTopic(ctxFor(t, 30*time.Second), 2, -1, nil, topic); err != nil {
		t.Fatal(err)
	}
	cfgPath, src, dst := flowConfig(t, p, "prefixed", `topics: ["`+topic+`"], refresh_interval: 1s`, false)
	prod := sourceProducer(t, p.Primary, workload.ProducerConfig{Topic: topic, Partitions: 2}, "")
	if err := prod.Produce(ctxFor(t, time.Minute), 50); err != nil {
		t.Fatal(err)
	}
	ip := runInProcess(t, cfgPath)
	target := src + "." + topic
	waitCheck(t, p.Secondary, prod.Ledger(), checkCfg(target, 2), time.Minute)
	if _, err := adm.DeleteTopics(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		n := ip.metric("godwit_source_topics_disappeared_total", map[string]string{"flow": src + "->" + dst})
		return n == 1, fmt.Sprintf("godwit_source_topics_disappeared_total = %v", n)
	})
	if !strings.Contains(ip.logs.String(), "source topic disappeared") {
		t.Error("no warning logged for the disappeared topic")
	}
	// The target keeps every record.
	waitCheck(t, p.Secondary, prod.Ledger(), checkCfg(target, 2), 30*time.Second)
	if ready, why := ip.r.Ready(); !ready {
		t.Errorf("a deleted source topic must not make the replicator unready: %s", why)
	}
}
