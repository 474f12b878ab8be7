package replicate_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/testkit"
)

// upstreamClustersJava runs MirrorMaker 2's own
// RemoteClusterUtils.upstreamClusters against a cluster: the clusters it
// believes replicate into it, from the heartbeat topics it finds.
const upstreamClustersJava = `
import java.util.*;
import org.apache.kafka.connect.mirror.RemoteClusterUtils;

public class Upstream {
    public static void main(String[] args) throws Exception {
        Map<String, Object> props = new HashMap<>();
        props.put("bootstrap.servers", args[0]);
        for (String s : new TreeSet<>(RemoteClusterUtils.upstreamClusters(props))) {
            System.out.println(s);
        }
    }
}
`

func upstreamClusters(t *testing.T, libs string, e testkit.Endpoint) map[string]bool {
	t.Helper()
	out := testkit.RunJava(t, libs, upstreamClustersJava, 2*time.Minute, strings.Join(e.Addrs, ","))
	set := map[string]bool{}
	for _, l := range strings.Fields(out) {
		set[l] = true
	}
	return set
}

// TestHeartbeatsMM2Tooling: with godwit replicating a flow, MM2's tooling
// on the target (RemoteClusterUtils.upstreamClusters, from the cached
// connect-mirror jars) names the flow's source alias, and nothing else
// new: the heartbeats arrive as <source>.heartbeats in MM2's record
// format, not as <source>.godwit.heartbeats (which MM2 reads as an
// upstream cluster called "godwit").
func TestHeartbeatsMM2Tooling(t *testing.T) {
	libs := testkit.MM2Libs(t)
	testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
		topic := testkit.UniqueName(t, "hbmm2")
		testkit.CreateTopic(t, p.Primary, topic, 1, nil)
		// A source an older godwit wrote to still has the legacy topic:
		// it must not reach the target.
		if d, err := testkit.Admin(t, p.Primary).ListTopics(ctxFor(t, 30*time.Second), naming.LegacyHeartbeatTopic); err != nil || !d.Has(naming.LegacyHeartbeatTopic) {
			testkit.CreateTopic(t, p.Primary, naming.LegacyHeartbeatTopic, 1, nil)
		}
		cfgPath, src, dst := flowConfig(t, p, "prefixed", `topics: ["`+topic+`"], heartbeat_interval: 200ms`, false)
		target := src + "." + naming.HeartbeatTopic
		testkit.DeleteTopicsOnCleanup(t, p.Secondary, src)
		before := upstreamClusters(t, libs, p.Secondary)
		runInProcess(t, cfgPath)

		cl := testkit.Client(t, p.Secondary, kgo.ConsumeTopics(target), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		var hb *kgo.Record
		testkit.Eventually(t, 60*time.Second, func() (bool, string) {
			fs := cl.PollFetches(ctxFor(t, 2*time.Second))
			fs.EachRecord(func(r *kgo.Record) {
				if s, d, _, ok := naming.ParseHeartbeat(r.Key, r.Value); ok && s == src && d == dst {
					hb = r
				}
			})
			return hb != nil, "no heartbeat from " + src + " in " + target + " on the target yet"
		})
		if o, ok := naming.OriginOf(hb.Headers); !ok || o.Cluster != src || o.Topic != naming.HeartbeatTopic {
			t.Errorf("heartbeat provenance %+v, %v; want cluster %s topic %s", o, ok, src, naming.HeartbeatTopic)
		}

		// Let a discovery pass or two run, so the legacy topic would have
		// been picked up by now.
		n := 0
		testkit.Eventually(t, 60*time.Second, func() (bool, string) {
			cl.PollFetches(ctxFor(t, 2*time.Second)).EachRecord(func(*kgo.Record) { n++ })
			return n >= 15, fmt.Sprintf("%d more heartbeats, want 15", n)
		})
		after := upstreamClusters(t, libs, p.Secondary)
		var added []string
		for c := range after {
			if !before[c] {
				added = append(added, c)
			}
		}
		sort.Strings(added)
		// Other tests share the real target and add their own aliases:
		// what this flow adds is its source alias and nothing else.
		if !after[src] || (after["godwit"] && !before["godwit"]) || (p.Kind == testkit.KindKfake && len(added) != 1) {
			t.Errorf("RemoteClusterUtils.upstreamClusters on the target gained %q; want %s (and nothing else on a fresh target), never godwit (before: %d clusters)", added, src, len(before))
		}
		td, err := testkit.Admin(t, p.Secondary).ListTopics(ctxFor(t, 30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var mine []string
		for _, n := range td.Names() {
			if strings.HasPrefix(n, src+".") && strings.Contains(n, "heartbeats") {
				mine = append(mine, n)
			}
		}
		if len(mine) != 1 || mine[0] != target {
			t.Errorf("heartbeat topics of %s on the target: %v, want only %s (the legacy %s is not replicated)", src, mine, target, naming.LegacyHeartbeatTopic)
		}
		t.Logf("upstreamClusters on %s: gained %v (of %d)", p.Secondary.Name, added, len(after))
	})
}
