package offsets_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/replicate"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/workload"
)

// flowConfig writes a config with cluster aliases unique to the test (real
// clusters are shared).
func flowConfig(t *testing.T, p testkit.Pair, naming, flowBody string, bidirectional bool) (path, src, dst string) {
	return testkit.FlowConfigFile(t, p, naming, flowBody, bidirectional)
}

// inproc runs a replicator and its checkpoint loops in this process, as
// `godwit replicate` does.
type inproc struct {
	cfg    *config.Config
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func runInProcess(t *testing.T, cfgPath string, flows ...string) *inproc {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := cfg.SelectFlows(flows)
	if err != nil {
		t.Fatal(err)
	}
	ip := &inproc{cfg: cfg, reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r, err := replicate.New(cfg, sel, log, replicate.NewMetrics(ip.reg), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ip.cancel = cancel
	stop, err := offsets.Start(ctx, cfg, r.Flows(), log, offsets.NewMetrics(ip.reg))
	if err != nil {
		t.Fatal(err)
	}
	go func() { err := r.Run(ctx); stop(); ip.done <- err }()
	t.Cleanup(ip.stop)
	return ip
}

func (ip *inproc) stop() {
	ip.cancel()
	select {
	case err := <-ip.done:
		ip.done <- err
	case <-time.After(30 * time.Second):
	}
}

// metric sums a metric family's samples whose labels include want.
func (ip *inproc) metric(name string, want map[string]string) float64 {
	return testkit.MetricSum(ip.reg, name, want)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// rec is a committed record of a partition: its offset and workload id.
type rec struct {
	off int64
	id  workload.ID
}

// readAll returns the committed records of a partition with their ids.
func readAll(t *testing.T, e testkit.Endpoint, topic string, part int32) []rec {
	t.Helper()
	cl := testkit.Client(t, e)
	ctx := ctxFor(t, time.Minute)
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, part)
	rs, err := kafkautil.ReadRange(ctx, cl, topic, part, 0, end.Offset, true)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]rec, 0, len(rs))
	for _, r := range rs {
		id, ok := workload.Identify(r.Key, r.Value)
		if !ok {
			t.Fatalf("%s[%d]@%d is not a workload record", topic, part, r.Offset)
		}
		out = append(out, rec{r.Offset, id})
	}
	return out
}

// consumedOffset is what a consumer that processed the first k records
// commits: the offset after the k-th record (0 when k is 0).
func consumedOffset(rs []rec, k int) int64 {
	if k == 0 {
		return 0
	}
	return rs[k-1].off + 1
}

// commit commits offsets for a group with no members (what a consumer
// that processed the records and left does).
func commit(t *testing.T, e testkit.Endpoint, group, topic string, offs map[int32]int64) {
	t.Helper()
	var os kadm.Offsets
	for p, o := range offs {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
	}
	if err := testkit.Admin(t, e).CommitAllOffsets(ctxFor(t, 30*time.Second), group, os); err != nil {
		t.Fatalf("commit %s on %s: %v", group, e.Name, err)
	}
}

func committed(t *testing.T, e testkit.Endpoint, group, topic string) map[int32]int64 {
	t.Helper()
	r, err := testkit.Admin(t, e).FetchOffsets(ctxFor(t, 30*time.Second), group)
	if err != nil {
		return nil
	}
	out := map[int32]int64{}
	for p, o := range r[topic] {
		if o.Err == nil && o.At >= 0 {
			out[p] = o.At
		}
	}
	return out
}

// waitCaughtUp waits until every partition of topic is replicated to the
// source end.
func waitCaughtUp(t *testing.T, cfg *config.Config, flow, topic string, partitions int) {
	t.Helper()
	testkit.Eventually(t, 90*time.Second, func() (bool, string) {
		st, err := replicate.Status(context.Background(), cfg, cfg.Flows[flow])
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, p := range st.Partitions {
			if p.SourceTopic != topic {
				continue
			}
			if p.LagRecords != 0 {
				return false, fmt.Sprintf("%s[%d] lag %d", topic, p.Partition, p.LagRecords)
			}
			n++
		}
		return n == partitions, fmt.Sprintf("%d of %d partitions have progress", n, partitions)
	})
}

// waitSynced waits until the target group's committed offsets are the
// checkpoints of the source group's current offsets on every partition.
func waitSynced(t *testing.T, dstE testkit.Endpoint, src, group, targetTopic string, want map[int32]int64) map[int32]int64 {
	t.Helper()
	cl := testkit.Client(t, dstE)
	var got map[int32]int64
	testkit.Eventually(t, 60*time.Second, func() (bool, string) {
		cks, err := offsets.ReadCheckpoints(context.Background(), cl, offsets.CheckpointsTopic(src))
		if err != nil {
			return false, err.Error()
		}
		ck := map[int32]int64{}
		for _, c := range cks {
			if c.Group == group && c.Topic == targetTopic {
				if c.Upstream != want[c.Partition] {
					return false, fmt.Sprintf("checkpoint %s[%d] upstream %d, source group at %d", targetTopic, c.Partition, c.Upstream, want[c.Partition])
				}
				ck[c.Partition] = c.Downstream
			}
		}
		if len(ck) != len(want) {
			return false, fmt.Sprintf("checkpoints for %d of %d partitions", len(ck), len(want))
		}
		got = committed(t, dstE, group, targetTopic)
		for p, d := range ck {
			if got[p] != d {
				return false, fmt.Sprintf("target group %s[%d] at %d, checkpoint %d", targetTopic, p, got[p], d)
			}
		}
		return true, ""
	})
	return got
}

// firstAfterFailover joins group on the target with a real consumer
// (read_committed) and returns the first record it reads per partition,
// waiting for every partition in expect; it never commits.
func firstAfterFailover(t *testing.T, e testkit.Endpoint, group, topic string, expect []int32) map[int32]rec {
	t.Helper()
	cl := testkit.Client(t, e, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	out := map[int32]rec{}
	ctx := ctxFor(t, 60*time.Second)
	for ctx.Err() == nil {
		done := true
		for _, p := range expect {
			if _, ok := out[p]; !ok {
				done = false
			}
		}
		if done {
			break
		}
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := out[r.Partition]; ok {
				return
			}
			id, _ := workload.Identify(r.Key, r.Value)
			out[r.Partition] = rec{r.Offset, id}
		})
	}
	cl.LeaveGroup()
	return out
}

// replaySkip compares the first record read on the target with the
// record that follows the k consumed ones in the source's order (by
// identity): replay > 0 means already-processed records were read again,
// skip > 0 means unprocessed records were jumped over.
func replaySkip(srcRecs []rec, k int, first rec, got bool) (replay, skip int) {
	if k == len(srcRecs) {
		if got {
			for i, r := range srcRecs {
				if r.id == first.id {
					return len(srcRecs) - i, 0
				}
			}
		}
		return 0, 0
	}
	if !got {
		return 0, len(srcRecs) - k
	}
	for i, r := range srcRecs {
		if r.id == first.id {
			if i < k {
				return k - i, 0
			}
			return 0, i - k
		}
	}
	return 0, len(srcRecs) - k // not from this run at all
}
