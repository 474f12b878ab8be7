package adopt

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/kafkautil"
)

// readChunk is how many offsets one read of either side asks for.
const readChunk = 5000

// backLimit bounds how far below the starting sync adoption looks for the
// source record of a duplicate (MM2 re-sends from its last committed
// source offset, which can lie before the sync).
const backLimit = 1_000_000

// recordHash identifies a record by what MM2 copies unchanged: key,
// value (nil distinct from empty), headers in order and timestamp.
func recordHash(r *kgo.Record) uint64 {
	h := fnv.New64a()
	var n [9]byte
	field := func(b []byte, null bool) {
		if null {
			n[0] = 0
			h.Write(n[:1])
			return
		}
		n[0] = 1
		binary.BigEndian.PutUint64(n[1:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field(r.Key, r.Key == nil)
	field(r.Value, r.Value == nil)
	for _, hd := range r.Headers {
		field([]byte(hd.Key), false)
		field(hd.Value, hd.Value == nil)
	}
	binary.BigEndian.PutUint64(n[1:], uint64(r.Timestamp.UnixMilli()))
	h.Write(n[1:])
	return h.Sum64()
}

// side reads one partition forward in chunks.
type side struct {
	cl        *kgo.Client
	topic     string
	partition int32
	committed bool
	pos, end  int64
	buf       []*kgo.Record
}

// next returns the next record, or nil at end.
func (s *side) next(ctx context.Context) (*kgo.Record, error) {
	for len(s.buf) == 0 {
		if s.pos >= s.end {
			return nil, nil
		}
		to := min(s.pos+readChunk, s.end)
		recs, err := kafkautil.ReadRange(ctx, s.cl, s.topic, s.partition, s.pos, to, s.committed)
		if err != nil {
			return nil, fmt.Errorf("read %s[%d] from %d: %w", s.topic, s.partition, s.pos, err)
		}
		s.buf = recs
		s.pos = to // offsets without a record (markers, compaction) are skipped
		if n := len(recs); n > 0 && recs[n-1].Offset+1 > s.pos {
			s.pos = recs[n-1].Offset + 1
		}
	}
	r := s.buf[0]
	s.buf = s.buf[1:]
	return r, nil
}

// scanResult is what matching a target stretch against the source found.
type scanResult struct {
	next    int64 // first source offset MM2 had not copied
	scanned int64 // target records matched
	dups    int64 // of which second copies
	// copies are, per source offset seen in the stretch, the target
	// offsets of its copies (buildRuns picks the one to map).
	copies map[int64][]int64
}

// scan matches the target records of tp from the sync's downstream
// offset to targetEnd against the source records from its upstream
// offset: every target record must be the next source record in order or
// a second copy of one already copied. It says where MM2 stopped.
func scan(ctx context.Context, src, dst *kgo.Client, tp flowstate.TP, targetTopic string, from Sync, targetEnd, srcStart, srcEnd int64) (*scanResult, error) {
	s := &side{cl: src, topic: tp.Topic, partition: tp.Partition, pos: from.Upstream, end: srcEnd}
	t := &side{cl: dst, topic: targetTopic, partition: tp.Partition, committed: true, pos: from.Downstream, end: targetEnd}
	res := &scanResult{next: from.Upstream, copies: map[int64][]int64{}}
	seen := map[uint64]int64{} // hash -> source offset, of source records already matched or loaded below
	lo := from.Upstream        // lowest source offset loaded into seen
	expect, err := s.next(ctx)
	if err != nil {
		return nil, err
	}
	var expectHash uint64
	if expect != nil {
		expectHash = recordHash(expect)
	}
	for {
		r, err := t.next(ctx)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return res, nil
		}
		h := recordHash(r)
		res.scanned++
		if expect != nil && h == expectHash {
			res.copies[expect.Offset] = append(res.copies[expect.Offset], r.Offset)
			seen[h] = expect.Offset
			res.next = expect.Offset + 1
			if expect, err = s.next(ctx); err != nil {
				return nil, err
			}
			if expect != nil {
				expectHash = recordHash(expect)
			}
			continue
		}
		off, ok := seen[h]
		for !ok && lo > srcStart && from.Upstream-lo < backLimit {
			// A re-send of records from before the sync: load
			// the source below what is loaded.
			down := max(srcStart, lo-readChunk)
			recs, err := kafkautil.ReadRange(ctx, src, tp.Topic, tp.Partition, down, lo, false)
			if err != nil {
				return nil, fmt.Errorf("read %s[%d] from %d: %w", tp.Topic, tp.Partition, down, err)
			}
			for _, sr := range recs {
				if _, dup := seen[recordHash(sr)]; !dup {
					seen[recordHash(sr)] = sr.Offset
				}
			}
			lo = down
			off, ok = seen[h]
		}
		if !ok {
			return nil, fmt.Errorf("target %s[%d] offset %d matches no source record of %s[%d] between offsets %d and %d: it is not a copy MirrorMaker 2 made of this partition in order (a gap in MM2's copy, a record changed by a transform, or a target topic with message.timestamp.type=LogAppendTime), so adoption cannot tell where MM2 stopped; check the partition, or adopt from a later sync with --scan tail",
				targetTopic, tp.Partition, r.Offset, tp.Topic, tp.Partition, lo, res.next)
		}
		res.dups++
		res.copies[off] = append(res.copies[off], r.Offset)
	}
}

// floorWindow is how far around the offset of its timestamp the source
// record of the target's first record is looked for.
const floorWindow = 2 * readChunk

// findFloor finds the source record of the target partition's first
// record, from its timestamp (MM2 keeps CreateTime timestamps): that pair
// lets a group below every kept offset sync replay from the target's start
// instead of skipping to the oldest sync. It reports false when the first
// record is the sync itself or its source record is not found (compacted
// or deleted on the source since).
func findFloor(ctx context.Context, src, dst *kgo.Client, p *part, from Sync) (Sync, bool, error) {
	if from.Downstream <= p.dstStart {
		return Sync{}, false, nil
	}
	recs, err := kafkautil.ReadRange(ctx, dst, p.target, p.tp.Partition, p.dstStart, min(p.dstStart+readChunk, from.Downstream), true)
	if err != nil {
		return Sync{}, false, fmt.Errorf("read %s[%d] from %d: %w", p.target, p.tp.Partition, p.dstStart, err)
	}
	if len(recs) == 0 {
		return Sync{}, false, nil
	}
	first := recs[0]
	want := recordHash(first)
	lo, hi := p.srcStart, min(from.Upstream+1, p.srcEnd)
	offs, err := kadm.NewClient(src).ListOffsetsAfterMilli(ctx, first.Timestamp.UnixMilli(), p.tp.Topic)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return Sync{}, false, fmt.Errorf("source offset of timestamp %d in %s[%d]: %w", first.Timestamp.UnixMilli(), p.tp.Topic, p.tp.Partition, err)
	}
	if o, ok := offs.Lookup(p.tp.Topic, p.tp.Partition); ok && o.Offset >= 0 {
		lo, hi = max(lo, o.Offset-floorWindow), min(hi, o.Offset+floorWindow)
	}
	for pos := lo; pos < hi; pos += readChunk {
		recs, err := kafkautil.ReadRange(ctx, src, p.tp.Topic, p.tp.Partition, pos, min(pos+readChunk, hi), false)
		if err != nil {
			return Sync{}, false, fmt.Errorf("read %s[%d] from %d: %w", p.tp.Topic, p.tp.Partition, pos, err)
		}
		for _, r := range recs {
			if recordHash(r) == want {
				return Sync{Upstream: r.Offset, Downstream: first.Offset}, true, nil
			}
		}
	}
	return Sync{}, false, nil
}
