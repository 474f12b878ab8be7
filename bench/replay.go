package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/workload"
)

// Replay after failover (docs/benchmarks.md, "Replay after failover").
//
// Before a contender starts, one consumer group per depth commits offsets
// on the source backlog topic: every partition at the same fraction of its
// end offset (head = 100 %). After the backlog is replicated the harness
// waits for the contender's checkpoints and reads, from the target only,
// where each group would resume: the newest checkpoint per partition in
// <source alias>.checkpoints.internal (MirrorMaker 2's format; godwit
// writes the same records), decoded with offsets.DecodeCheckpoint.
//
// Every source value starts with a workload identity (partition, sequence
// = source offset: the loader produces idempotently, in order, to a fresh
// topic), so each target record names its source offset whatever the
// contender adds or omits. For a group that consumed every source record
// below S and a resume offset T on the target:
//
//	replayed = target records at offsets >= T whose source offset is < S
//	skipped  = source offsets >= S with no copy at a target offset >= T
//
// (a record copied twice by an at-least-once contender counts once per
// copy in replayed; skipped counts records, not copies).

// depth is one group's committed position, a fraction of each partition's
// end offset.
type depth struct {
	name string
	frac float64
}

var depths = []depth{{"head", 1}, {"50%", 0.5}, {"10%", 0.1}}

func (c *contender) groupOf(d depth) string {
	return "gwbench-" + c.token + "-g" + strings.TrimSuffix(d.name, "%")
}

// commitDepths commits, for every depth, its group's offsets on the source
// topic (a simple commit: generation -1, the group has no members) and
// returns them: group -> partition -> S.
func commitDepths(ctx context.Context, e *env, c *contender) (map[string]map[int32]int64, error) {
	ends, err := e.srcAdm.ListEndOffsets(ctx, e.topic)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	for _, d := range depths {
		g := c.groupOf(d)
		var os kadm.Offsets
		out[g] = map[int32]int64{}
		var ferr error
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				ferr = o.Err
				return
			}
			s := int64(float64(o.Offset) * d.frac)
			os.Add(kadm.Offset{Topic: e.topic, Partition: o.Partition, At: s, LeaderEpoch: -1})
			out[g][o.Partition] = s
		})
		if ferr != nil {
			return nil, ferr
		}
		resp, err := e.srcAdm.CommitOffsets(ctx, g, os)
		if err != nil {
			return nil, fmt.Errorf("commit %s: %w", g, err)
		}
		if err := resp.Error(); err != nil {
			return nil, fmt.Errorf("commit %s: %w", g, err)
		}
	}
	return out, nil
}

// pos is one target record: its target offset and its source offset.
type pos struct{ off, seq int64 }

// readProvenance reads every committed record of topic on addr (until it
// has want records and a second brings nothing, or nothing arrives for
// idle) and returns, per partition in target offset order, each record's
// target offset and the source offset its value names.
func readProvenance(ctx context.Context, addr, topic string, want int64, idle time.Duration) (map[int32][]pos, error) {
	cl, err := newClient(addr,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(8<<20),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := map[int32][]pos{}
	var n, bad int64
	lastData := time.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		got := 0
		fs.EachRecord(func(r *kgo.Record) {
			got++
			id, ok := workload.Decode(r.Value)
			if !ok || id.Partition != r.Partition {
				bad++
				return
			}
			out[r.Partition] = append(out[r.Partition], pos{r.Offset, id.Seq})
		})
		n += int64(got)
		if got > 0 {
			lastData = time.Now()
			continue
		}
		if n >= want || time.Since(lastData) > idle {
			if bad > 0 {
				return out, fmt.Errorf("%d target records without a workload identity for their partition", bad)
			}
			if n < want {
				return out, fmt.Errorf("read %d of %d records", n, want)
			}
			return out, nil
		}
	}
}

// replayCount computes replayed and skipped (see the package comment above)
// for one partition: ps are the target records in offset order, end the
// source partition's end offset, s the group's source offset, t its
// resume offset on the target.
func replayCount(ps []pos, end, s, t int64) (replayed, skipped int64) {
	after := map[int64]bool{}
	for _, p := range ps {
		if p.off < t {
			continue
		}
		if p.seq < s {
			replayed++
		} else {
			after[p.seq] = true
		}
	}
	return replayed, max(0, end-s) - int64(len(after))
}

// ckRecord is a checkpoint with the time it was written.
type ckRecord struct {
	*offsets.Checkpoint
	at time.Time
}

// readCheckpoints reads the checkpoint topic on addr from the start to its
// end and returns the newest checkpoint per group and partition of
// targetTopic (none if the topic does not exist yet).
func readCheckpoints(ctx context.Context, adm *kadm.Client, addr, ckTopic, targetTopic string) (map[string]map[int32]ckRecord, error) {
	out := map[string]map[int32]ckRecord{}
	err := readAll(ctx, adm, addr, ckTopic, func(r *kgo.Record) {
		if r.Value == nil {
			return
		}
		ck, err := offsets.DecodeCheckpoint(r.Key, r.Value)
		if err != nil || ck.Topic != targetTopic {
			return
		}
		if out[ck.Group] == nil {
			out[ck.Group] = map[int32]ckRecord{}
		}
		out[ck.Group][ck.Partition] = ckRecord{ck, r.Timestamp}
	})
	return out, err
}

// countOffsetSyncs counts MirrorMaker 2's offset syncs for topic per
// partition in its offset-syncs topic (key: topic STRING, partition INT32;
// value: upstream INT64, downstream INT64).
func countOffsetSyncs(ctx context.Context, adm *kadm.Client, addr, syncTopic, topic string) (map[int32]int, error) {
	out := map[int32]int{}
	err := readAll(ctx, adm, addr, syncTopic, func(r *kgo.Record) {
		k := r.Key
		if len(k) < 2 {
			return
		}
		n := int(k[0])<<8 | int(k[1])
		if len(k) != 2+n+4 || string(k[2:2+n]) != topic {
			return
		}
		p := int32(uint32(k[2+n])<<24 | uint32(k[3+n])<<16 | uint32(k[4+n])<<8 | uint32(k[5+n]))
		out[p]++
	})
	return out, err
}

// readAll calls f for every record of topic on addr, from the start to the
// end offsets listed first (nothing if the topic does not exist).
func readAll(ctx context.Context, adm *kadm.Client, addr, topic string, f func(*kgo.Record)) error {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	parts := map[int32]kgo.Offset{}
	for p := range want {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl, err := newClient(addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fs.EachRecord(func(r *kgo.Record) {
			if w, ok := want[r.Partition]; ok && r.Offset+1 >= w {
				delete(want, r.Partition)
			}
			f(r)
		})
	}
	return nil
}

// replayRow is one contender x depth result.
type replayRow struct {
	Depth      string       `json:"depth"`
	Partitions int          `json:"partitions"`    // partitions of the topic
	NoCk       int          `json:"no_checkpoint"` // partitions without a checkpoint
	Stale      int          `json:"stale"`         // partitions whose checkpoint's upstream offset is not the group's
	Replayed   int64        `json:"replayed"`      // sum over partitions
	MaxPart    int64        `json:"replayed_max"`  // largest per partition
	Skipped    int64        `json:"skipped"`
	Note       string       `json:"note,omitempty"`
	Parts      []replayPart `json:"per_partition"` // by partition; the table shows only the sums
}

// replayPart is one partition of a replayRow.
type replayPart struct {
	Partition int32 `json:"partition"`
	Group     int64 `json:"group_offset"` // S, committed on the source
	// Upstream and Downstream are the newest checkpoint's source and
	// target offsets (-1: no checkpoint, and nothing counted).
	Upstream   int64 `json:"checkpoint_upstream"`
	Downstream int64 `json:"checkpoint_downstream"`
	Replayed   int64 `json:"replayed"`
	Skipped    int64 `json:"skipped"`
}

// replayPhase waits for the contender's checkpoints of the depth groups
// and measures replay. done is when the backlog was complete; settle is
// how long after done the checkpoints are read at the latest (earlier if
// every partition of every group already translates with no replay and
// no skip, which cannot improve).
func replayPhase(ctx context.Context, e *env, c *contender, committed map[string]map[int32]int64, done time.Time, settle time.Duration) ([]replayRow, time.Duration, error) {
	prov, err := readProvenance(ctx, e.dst, c.targetTopic, e.records, 10*time.Second)
	if err != nil {
		return nil, 0, fmt.Errorf("read target: %w", err)
	}
	ends, err := e.srcAdm.ListEndOffsets(ctx, e.topic)
	if err != nil {
		return nil, 0, err
	}
	end := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { end[o.Partition] = o.Offset })
	ckTopic := offsets.CheckpointsTopic(c.srcAlias)
	deadline := done.Add(settle)
	var rows []replayRow
	var cks map[string]map[int32]ckRecord
	for {
		cks, err = readCheckpoints(ctx, e.dstAdm, e.dst, ckTopic, c.targetTopic)
		if err != nil {
			e.logf("  %s: read %s: %v", c.name, ckTopic, err)
		}
		rows = rows[:0]
		perfect := true
		for _, d := range depths {
			g := c.groupOf(d)
			row := replayRow{Depth: d.name, Partitions: len(end)}
			for p, s := range committed[g] {
				ck, ok := cks[g][p]
				if !ok {
					row.NoCk++
					row.Parts = append(row.Parts, replayPart{Partition: p, Group: s, Upstream: -1, Downstream: -1})
					perfect = false
					continue
				}
				if ck.Upstream != s {
					row.Stale++
				}
				r, sk := replayCount(prov[p], end[p], s, ck.Downstream)
				row.Parts = append(row.Parts, replayPart{Partition: p, Group: s, Upstream: ck.Upstream, Downstream: ck.Downstream, Replayed: r, Skipped: sk})
				row.Replayed += r
				row.MaxPart = max(row.MaxPart, r)
				row.Skipped += sk
				if r != 0 || sk != 0 {
					perfect = false
				}
			}
			slices.SortFunc(row.Parts, func(a, b replayPart) int { return cmp.Compare(a.Partition, b.Partition) })
			rows = append(rows, row)
		}
		if perfect || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return rows, time.Since(done), ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	read := time.Since(done)
	var syncNote string
	if c.offsetSyncs != "" {
		if n, err := countOffsetSyncs(ctx, e.srcAdm, e.src, c.offsetSyncs, e.topic); err != nil {
			syncNote = "offset syncs: " + err.Error()
		} else {
			total, lo, hi := 0, -1, 0
			for p := range end {
				total += n[p]
				if lo < 0 || n[p] < lo {
					lo = n[p]
				}
				hi = max(hi, n[p])
			}
			syncNote = fmt.Sprintf("%d offset syncs written for the topic (%d-%d per partition)", total, lo, hi)
		}
	}
	// Cross-checks: the target group's committed offsets (godwit syncs
	// them by default, MM2 with sync.group.offsets.enabled), and for
	// godwit its `offsets translate` answer.
	for i, d := range depths {
		g := c.groupOf(d)
		var notes []string
		if fo, err := e.dstAdm.FetchOffsets(ctx, g); err == nil {
			eq, n := 0, 0
			fo.Each(func(o kadm.OffsetResponse) {
				if o.Topic != c.targetTopic || o.Err != nil {
					return
				}
				n++
				if ck, ok := cks[g][o.Partition]; ok && ck.Downstream == o.At {
					eq++
				}
			})
			if n > 0 {
				notes = append(notes, fmt.Sprintf("target group committed on %d partitions, = checkpoint on %d", n, eq))
			} else {
				notes = append(notes, "no target group offsets")
			}
		}
		if c.translate != nil {
			ts, err := c.translate(ctx, g)
			if err != nil {
				notes = append(notes, "offsets translate: "+err.Error())
			} else {
				eq := 0
				for p, t := range ts {
					if ck, ok := cks[g][p]; ok && ck.Downstream == t {
						eq++
					}
				}
				notes = append(notes, fmt.Sprintf("`offsets translate` = checkpoint on %d/%d", eq, len(ts)))
			}
		}
		if syncNote != "" && i == 0 {
			notes = append(notes, syncNote)
		}
		rows[i].Note = strings.Join(notes, "; ")
	}
	return rows, read, nil
}

// replayTable renders the replay results.
func replayTable(rs []result) string {
	var b strings.Builder
	b.WriteString("| contender | group at | replayed (sum) | replayed (max per partition) | skipped | partitions without checkpoint | stale checkpoints | read after (bound) | cross-checks |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rs {
		if r.ReplayErr != "" {
			fmt.Fprintf(&b, "| %s | | failed: %s | | | | | | |\n", r.Name, strings.ReplaceAll(r.ReplayErr, "|", "/"))
		}
		for _, row := range r.Replay {
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d / %d | %d | %.0f s (%.0f s) | %s |\n",
				r.Name, row.Depth, row.Replayed, row.MaxPart, row.Skipped, row.NoCk, row.Partitions, row.Stale, r.ReplayRead.Seconds(), r.ReplaySettle.Seconds(), row.Note)
		}
	}
	return b.String()
}
