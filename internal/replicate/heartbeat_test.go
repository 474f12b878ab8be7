package replicate_test

import (
	"testing"
	"time"

	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/testkit"
)

// TestHeartbeatTopicCompacted: the heartbeats topic godwit creates on a
// source keeps one heartbeat per flow (compacted, segments rolled so the
// cleaner runs), not every heartbeat for the retention period. Only a
// cluster where the topic does not exist yet can show it: the shared
// real pair has had one for a long time.
func TestHeartbeatTopicCompacted(t *testing.T) {
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		adm := testkit.Admin(t, p.Primary)
		if d, err := adm.ListTopics(ctxFor(t, 30*time.Second), naming.HeartbeatTopic); err == nil && d.Has(naming.HeartbeatTopic) {
			t.Skipf("%s already exists on %s; godwit does not alter it", naming.HeartbeatTopic, p.Primary.Name)
		}
		topic := testkit.UniqueName(t, "hb")
		testkit.CreateTopic(t, p.Primary, topic, 1, nil)
		cfgPath, _, _ := flowConfig(t, p, "prefixed", `topics: ["`+topic+`"]`, false)
		runInProcess(t, cfgPath)
		testkit.Eventually(t, 30*time.Second, func() (bool, string) {
			rc, err := adm.DescribeTopicConfigs(ctxFor(t, 10*time.Second), naming.HeartbeatTopic)
			if err != nil {
				return false, err.Error()
			}
			c, err := rc.On(naming.HeartbeatTopic, nil)
			if err != nil {
				return false, err.Error()
			}
			got := map[string]string{}
			for _, kv := range c.Configs {
				got[kv.Key] = kv.MaybeValue()
			}
			return got["cleanup.policy"] == "compact" && got["segment.ms"] == "3600000",
				"cleanup.policy=" + got["cleanup.policy"] + " segment.ms=" + got["segment.ms"]
		})
	})
}
