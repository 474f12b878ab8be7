package drill

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/failover"
	"github.com/godwit/godwit/internal/testkit"
)

// TestDrillSourceDownKillBroker is TestDrillSourceDownFiguresMatchOwnCount
// on real Kafka, through the real-cluster path of source-down: the drill
// runs fault.command, here a command that SIGKILLs the source, a
// disposable single-node cluster (the target is the shared secondary).
// The load runs at 600 records/s up to the kill, one slot replicating six
// partitions: whatever the source acknowledged and the replicator had not
// fetched yet is lost, and the figures must say so exactly. (On loopback
// the replicator stays within a few records of the producer, so that is
// usually nothing; TestUnplannedFailoverKillBroker makes replication
// trail and checks at risk against the loss.) The report's figures must equal the test's own count, and its
// at-risk figures what the failover journaled.
func TestDrillSourceDownKillBroker(t *testing.T) {
	p, source := testkit.DisposablePair(t)
	file, src, _ := testkit.FlowConfigFile(t, p, "prefixed", "delivery: exactly-once, slots: 1, max_batch_bytes: 1024", false)
	// Everything the flow creates on the shared secondary (target topics,
	// progress, offset map, checkpoints, journal) carries its test-unique
	// source alias; the disposable source goes with the test.
	testkit.DeleteTopicsOnCleanup(t, p.Secondary, src)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var o Options
	var out []byte
	o.Config, o.Flow, out, err = PrepareConfig(file, data, "", "")
	if err != nil {
		t.Fatal(err)
	}
	o.ConfigPath = filepath.Join(t.TempDir(), "drill.yaml")
	if err := os.WriteFile(o.ConfigPath, out, 0o600); err != nil {
		t.Fatal(err)
	}
	// Drill group names on the shared secondary must not meet other runs'.
	o.Suffix = strings.TrimPrefix(src, "a")
	sc := shortScenario(t, drillreport.FaultSourceDown)
	sc.Fault.Command = source.KillCommand()
	sc.Topics[0].Partitions = 6
	sc.Workload.RecordSize = 1000
	sc.Workload.Rate, sc.Workload.Peak.Rate = 600, 1200
	// A killed broker refuses connections at once; no need to wait out
	// the default reachability check.
	sc.Failover.SourceTimeout = config.Duration(3 * time.Second)
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	pc := &processCounter{counts: map[TP]map[int64]int{}}
	var progress bytes.Buffer
	o.Scenario, o.OnProcess, o.Progress = sc, pc.hook, &progress
	pid := source.Pid()
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, progress.String())
	}
	t.Logf("progress:\n%s", progress.String())
	// fault.command took the source down: its broker process is gone and
	// its port refuses connections.
	if source.Pid() != 0 {
		t.Fatalf("source broker still running (pid %d) after the drill's fault.command", source.Pid())
	}
	if c, err := net.DialTimeout("tcp", source.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatalf("source %s still accepts connections after the fault", source.Addr())
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("source %s after the fault: %v, want connection refused", source.Addr(), err)
	}
	t.Logf("fault.command SIGKILLed source broker pid %d", pid)

	// The group's commits on the source, read back by the test from the
	// broker's __consumer_offsets once it is back on its data. The drill
	// counts a commit as made only when the source acknowledged it; a
	// SIGKILL can land after the broker stored the group's last commit and
	// before its answer left, and then the broker holds one commit more
	// than the drill saw. Both are facts: the test's own count must match
	// the report with either the broker's last commit or the one before
	// it (never anything else), and says which.
	source.Restart()
	js, err := res.Report.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var rep decoded
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Groups) != 1 {
		t.Fatalf("the scenario has %d groups; this test reads one group's commit history", len(rep.Groups))
	}
	group := rep.Groups[0]
	last, previous := commitHistory(t, p.Primary.Addrs, group, rep.Topics[0].Name)
	translated := journalPositions(t, o.Config, o.Flow)
	offsetOf := map[TP]map[int64]int64{}
	for part := int32(0); part < rep.Topics[0].Partitions; part++ {
		m := map[int64]int64{}
		for _, r := range res.Ledgers[0].Records(part) {
			m[r.Seq] = r.Offset
		}
		offsetOf[TP{rep.Topics[0].Name, part}] = m
	}
	chosen := groupPositions{map[string]map[TP]int64{group: last}, translated}
	for _, c := range []struct {
		name      string
		committed map[TP]int64
	}{
		{"the broker's last commit", last},
		{"the commit before the broker's last (the broker stored the last one; its answer died with the broker)", previous},
	} {
		pos := groupPositions{map[string]map[TP]int64{group: c.committed}, translated}
		u, l, tr := pc.replaySplit(pos, offsetOf)
		if sum(u) == rep.Totals.ReplayedUncommitted && sum(l) == rep.Totals.ReplayedCheckpointLag && sum(tr) == rep.Totals.ReplayedTranslation {
			chosen = pos
			t.Logf("group %s: the report's replay split matches the test's own count with %s", group, c.name)
			break
		}
	}
	positions := func([]string) groupPositions { return chosen }
	back := checkOwnCount(t, res, pc, p.Secondary.Addrs, true, positions)
	if back.Totals.ReplayedTranslation != 0 {
		t.Errorf("%d records replayed because of offset translation; want 0 (exact translation)", back.Totals.ReplayedTranslation)
	}
	if back.Totals.Duplicates != 0 {
		t.Errorf("%d duplicates on the target", back.Totals.Duplicates)
	}

	// At risk: what godwit's failover recorded in its journal on the target.
	_, frep, _, err := failover.State(context.Background(), o.Config, o.Flow)
	if err != nil {
		t.Fatal(err)
	}
	var atRisk int64
	perPart := map[int32]int64{}
	for _, pr := range frep.Partitions {
		atRisk += pr.AtRiskRecords
		perPart[pr.Partition] = pr.AtRiskRecords
	}
	if back.Totals.AtRisk == nil || *back.Totals.AtRisk != atRisk {
		t.Errorf("report at_risk = %v, journal says %d", back.Totals.AtRisk, atRisk)
	}
	for _, r := range back.Partitions {
		if r.AtRisk == nil || *r.AtRisk != perPart[r.Partition] {
			t.Errorf("partition %d: report at_risk %v, journal %d", r.Partition, r.AtRisk, perPart[r.Partition])
		}
		t.Logf("partition %d: lost %d, at risk %d (journal %d)", r.Partition, r.Lost, deref(r.AtRisk), perPart[r.Partition])
	}
	if back.Mode != failover.Unplanned {
		t.Errorf("failover mode %q, want unplanned", back.Mode)
	}
	var names []string
	for _, ph := range back.RTO.Phases {
		names = append(names, ph.Name)
	}
	if got := strings.Join(names, ","); got != "detect,declare,failover command,cutover hook,consumers resumed,consumers caught up" {
		t.Errorf("RTO phases %s", got)
	}
	if !strings.Contains(back.Statement, "unplanned failover lost") {
		t.Errorf("statement: %s", back.Statement)
	}
	if len(back.Lag) < 10 {
		t.Errorf("only %d lag samples", len(back.Lag))
	}
}

// commitHistory reads group's offset commits for topic from the source's
// __consumer_offsets, in the order the broker stored them, and returns
// the committed offsets per partition after the last commit request and
// after the one before it. A request's records share their commit
// timestamp.
func commitHistory(t *testing.T, addrs []string, group, topic string) (last, previous map[TP]int64) {
	t.Helper()
	const offsetsTopic = "__consumer_offsets"
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(offsetsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, offsetsTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s on the source: %v", offsetsTopic, err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	type commit struct {
		tp     TP
		offset int64
		ts     int64
	}
	var commits []commit
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s on the source: %v (partitions left: %v)", offsetsTopic, ctx.Err(), remaining)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= remaining[r.Partition] {
				delete(remaining, r.Partition)
			}
			var k kmsg.OffsetCommitKey
			if len(r.Key) < 2 || binary.BigEndian.Uint16(r.Key) > 1 || k.ReadFrom(r.Key) != nil || k.Group != group || k.Topic != topic || r.Value == nil {
				return // group metadata, another group or topic, a tombstone
			}
			var v kmsg.OffsetCommitValue
			if err := v.ReadFrom(r.Value); err != nil {
				t.Fatalf("%s[%d]@%d: offset commit value: %v", offsetsTopic, r.Partition, r.Offset, err)
			}
			commits = append(commits, commit{TP{k.Topic, k.Partition}, v.Offset, v.CommitTimestamp})
		})
	}
	if len(commits) == 0 {
		t.Fatalf("no offset commit of group %s for %s on the source", group, topic)
	}
	// The last request is the tail of records sharing its timestamp.
	i := len(commits) - 1
	for i > 0 && commits[i-1].ts == commits[len(commits)-1].ts {
		i--
	}
	last, previous = map[TP]int64{}, map[TP]int64{}
	for j, c := range commits {
		last[c.tp] = c.offset
		if j < i {
			previous[c.tp] = c.offset
		}
	}
	return last, previous
}

func sum(m map[TP]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func deref(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}
