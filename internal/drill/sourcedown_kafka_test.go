package drill

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/config"
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
	sc := shortScenario(t, FaultSourceDown)
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

	// The groups' last commits on the source, read back by the test once
	// the broker is back on its data.
	positions := func(groups []string) groupPositions {
		source.Restart()
		return groupPositions{sourceCommitted(t, p.Primary.Addrs, groups), journalPositions(t, o.Config, o.Flow)}
	}
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

func deref(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}
