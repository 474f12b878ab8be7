package offsets_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/testkit"
)

// TestActiveNextGenTargetGroupUntouched: a target group that uses the
// KIP-848 consumer protocol is as active as a classic one while it has
// members, even though the classic DescribeGroups does not see it; group
// offset sync must leave it alone and resume once it is gone.
func TestActiveNextGenTargetGroupUntouched(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		topic := testkit.UniqueName(t, "t")
		group := testkit.UniqueName(t, "g")
		testkit.CreateTopic(t, p.Primary, topic, 1, nil)
		produce(t, p.Primary, topic, 1, 200)
		cfgPath, src, dst := flowConfig(t, p, "prefixed", `topics: ["`+topic+`"], slots: 1`, false)
		flow := src + "->" + dst
		target := src + "." + topic
		ip := runInProcess(t, cfgPath)
		waitCaughtUp(t, ip.cfg, flow, topic, 1)
		recs := readAll(t, p.Primary, topic, 0)

		want := map[int32]int64{0: consumedOffset(recs, 50)}
		commit(t, p.Primary, group, topic, want)
		synced := waitSynced(t, p.Secondary, src, group, target, want)

		// A consumer-protocol member joins the group on the target.
		cons := testkit.Client(t, p.Secondary, kgo.ConsumerGroup(group), kgo.ConsumeTopics(target), kgo.DisableAutoCommit(),
			kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		polling := make(chan struct{})
		go func() {
			defer close(polling)
			for {
				if fs := cons.PollFetches(context.Background()); fs.IsClientClosed() {
					return
				}
			}
		}()
		adm := testkit.Admin(t, p.Secondary)
		testkit.Eventually(t, 30*time.Second, func() (bool, string) {
			d, err := adm.DescribeConsumerGroups(ctxFor(t, 10*time.Second), group)
			if err != nil {
				return false, err.Error()
			}
			g := d[group]
			return g.Err == nil && len(g.Members) == 1, "waiting for the consumer-protocol member: state " + g.State
		})

		skipped := ip.metric("godwit_group_sync_skipped_total", map[string]string{"flow": flow, "reason": "active"})
		want[0] = consumedOffset(recs, 120)
		commit(t, p.Primary, group, topic, want)
		testkit.Eventually(t, 30*time.Second, func() (bool, string) {
			c, _ := checkpoint(t, p.Secondary, src, group, target, 0)
			return c.Upstream == want[0] && ip.metric("godwit_group_sync_skipped_total", map[string]string{"flow": flow, "reason": "active"}) >= skipped+2,
				"waiting for the new checkpoint and two passes that skip the active group"
		})
		if got := committed(t, p.Secondary, group, target); got[0] != synced[0] {
			t.Errorf("active consumer-protocol target group moved from %d to %d", synced[0], got[0])
		}

		cons.Close()
		<-polling
		waitSynced(t, p.Secondary, src, group, target, want)
	})
}
