package cost

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Offsets count records, not bytes, so the byte rate is measured from log
// sizes: DescribeLogDirs reports each replica's size on disk, and the sum
// over the leader replicas of the selected partitions, sampled twice a
// window apart, gives bytes/s. The size is what the broker stores: record
// batches as produced (after producer compression) including batch and
// record headers, which is also what a replicator reads and writes and what
// the target stores. Retention deleting a segment inside the window lowers
// the delta, so measure over a window without deletions or a long one.

// ReplicatedTopics lists the source cluster's topics (internal ones
// excluded) for which selected is true, sorted.
func ReplicatedTopics(ctx context.Context, adm *kadm.Client, selected func(topic string) bool) ([]string, error) {
	td, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	var out []string
	for _, t := range td.Names() {
		if selected(t) {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out, nil
}

// LeaderBytes sums the log size of the leader replica of every partition
// of topics, so a replication factor of 3 is not counted three times.
func LeaderBytes(ctx context.Context, adm *kadm.Client, topics []string) (size int64, partitions int, err error) {
	if len(topics) == 0 {
		return 0, 0, nil
	}
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return 0, 0, fmt.Errorf("metadata: %w", err)
	}
	leaders := map[string]map[int32]int32{}
	set := kadm.TopicsSet{}
	for _, t := range topics {
		td, ok := md.Topics[t]
		if !ok || td.Err != nil {
			return 0, 0, fmt.Errorf("metadata of topic %s: %v", t, td.Err)
		}
		leaders[t] = map[int32]int32{}
		for p, pd := range td.Partitions {
			if pd.Leader < 0 {
				return 0, 0, fmt.Errorf("topic %s partition %d has no leader", t, p)
			}
			leaders[t][p] = pd.Leader
			set.Add(t, p)
		}
	}
	all, err := adm.DescribeAllLogDirs(ctx, set)
	if err != nil {
		return 0, 0, fmt.Errorf("describe log dirs: %w", err)
	}
	found := map[string]map[int32]bool{}
	var dirErr error
	all.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			dirErr = fmt.Errorf("broker %d log dir %s: %w", d.Broker, d.Dir, d.Err)
			return
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.IsFuture || leaders[p.Topic][p.Partition] != p.Broker {
				return
			}
			if found[p.Topic] == nil {
				found[p.Topic] = map[int32]bool{}
			}
			if found[p.Topic][p.Partition] {
				return // a leader reports one current replica; be safe
			}
			found[p.Topic][p.Partition] = true
			size += p.Size
			partitions++
		})
	})
	if dirErr != nil {
		return 0, 0, dirErr
	}
	for t, ps := range leaders {
		for p, l := range ps {
			if !found[t][p] {
				return 0, 0, fmt.Errorf("topic %s partition %d: its leader, broker %d, reported no log size (leadership may have moved; retry)", t, p, l)
			}
		}
	}
	return size, partitions, nil
}

// Progress is told how a measurement goes, so a long window is not
// silent: once after the first sample (elapsed 0), then every few seconds
// with the bytes written to the topics since the first sample.
type Progress func(elapsed, window time.Duration, bytesSoFar int64, partitions int)

// Measure samples LeaderBytes at the start and the end of window and
// returns the byte rate. Each sample's time is the midpoint of its request.
func Measure(ctx context.Context, adm *kadm.Client, cluster string, topics []string, window time.Duration) (*Measurement, error) {
	return MeasureProgress(ctx, adm, cluster, topics, window, nil)
}

// progressEvery is how often MeasureProgress reports: about six times per
// window, at least every second, at most every 10 s.
func progressEvery(window time.Duration) time.Duration {
	return min(max(window/6, time.Second), 10*time.Second)
}

// MeasureProgress is Measure with progress reports. The intermediate
// samples only feed the reports; the rate is from the first and the last.
func MeasureProgress(ctx context.Context, adm *kadm.Client, cluster string, topics []string, window time.Duration, progress Progress) (*Measurement, error) {
	if window <= 0 {
		return nil, inputErrorf("--window %v: it must be positive", window)
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("cluster %s has no topics the flow replicates; nothing to measure", cluster)
	}
	sample := func() (int64, int, time.Time, error) {
		t0 := time.Now()
		b, n, err := LeaderBytes(ctx, adm, topics)
		t1 := time.Now()
		return b, n, t0.Add(t1.Sub(t0) / 2), err
	}
	b0, n0, at0, err := sample()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	if progress != nil {
		progress(0, window, 0, n0)
	}
	timer := time.NewTimer(window)
	defer timer.Stop()
	var tick <-chan time.Time
	if progress != nil {
		t := time.NewTicker(progressEvery(window))
		defer t.Stop()
		tick = t.C
	}
wait:
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			break wait
		case <-tick:
			// A failed intermediate sample only skips a report.
			if b, n, at, err := sample(); err == nil {
				progress(min(at.Sub(at0), window), window, b-b0, n)
			}
		}
	}
	b1, n1, at1, err := sample()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	elapsed := at1.Sub(at0)
	m := &Measurement{
		Cluster:    cluster,
		Topics:     topics,
		Partitions: max(n0, n1),
		Window:     elapsed,
		StartBytes: b0,
		EndBytes:   b1,
	}
	delta := b1 - b0
	if delta < 0 {
		return nil, fmt.Errorf("cluster %s: the replicated topics' log size shrank by %d bytes during the %v window (retention deleted segments); measure again over a longer window", cluster, -delta, elapsed.Round(time.Millisecond))
	}
	m.BytesPerSecond = Dec{quo(ri(delta), new(big.Rat).SetFrac(big.NewInt(elapsed.Nanoseconds()), big.NewInt(int64(time.Second))))}
	return m, nil
}
