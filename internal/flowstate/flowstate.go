// Package flowstate holds the formats a flow keeps on its target cluster,
// the part of invariant 1 ("the target knows how far replication got")
// every command reads: source partition names (TP) and how they hash to
// slots, the progress records, the offset map entries and the
// observations of the source's end offsets. The replicator writes them;
// offsets, failover, failback, status and the MM2 adoption read (or
// seed) them. It depends on nothing of godwit's but kafkautil, so any
// package can read a flow's state without importing the data plane.
package flowstate

import (
	"cmp"
	"hash/fnv"
	"strconv"
)

// TP names a source topic partition.
type TP struct {
	Topic     string
	Partition int32
}

func (tp TP) String() string { return tp.Topic + "[" + strconv.Itoa(int(tp.Partition)) + "]" }

// Compare orders partitions by topic, then partition number.
func (tp TP) Compare(o TP) int {
	if c := cmp.Compare(tp.Topic, o.Topic); c != 0 {
		return c
	}
	return cmp.Compare(tp.Partition, o.Partition)
}

// SlotOf maps a source partition to one of n slots. Partitions of a topic
// land in consecutive slots, so a topic's load spreads across instances.
// It is part of the on-target format: progress and offset map records of
// a partition live in partition SlotOf of their topics.
func SlotOf(tp TP, n int) int {
	h := fnv.New32a()
	h.Write([]byte(tp.Topic))
	return int((uint64(h.Sum32()) + uint64(tp.Partition)) % uint64(n))
}
