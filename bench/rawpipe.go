package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// rawPipe is the ceiling contender: the least a franz-go replicator must
// do. It consumes the source topics from the start (read_committed, no
// group, no offset storage) and produces every record unchanged (key,
// value, headers, timestamp) to the same partition of the target topic,
// with the client settings godwit's slot workers use for fetching and
// batching, and the same parallelism: the partitions are split over
// -pipes independent consumer/producer pairs (godwit: one pair per slot).
// It keeps no progress and gives no guarantee beyond the idempotent
// producer's: it is what any client-based replicator costs at minimum. It
// runs as its own process so /proc measures it alone.
func rawPipe(args []string) error {
	fs := flag.NewFlagSet("rawpipe", flag.ExitOnError)
	src := fs.String("src", "", "source bootstrap")
	dst := fs.String("dst", "", "target bootstrap")
	topicList := fs.String("topics", "", "source topics, comma separated")
	prefix := fs.String("prefix", "", "target topic = <prefix>.<source topic>")
	partitions := fs.Int("partitions", 0, "partitions of every source topic (and of the target topics it creates)")
	pipes := fs.Int("pipes", 16, "independent consumer/producer pairs")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	adm, err := newClient(*dst)
	if err != nil {
		return err
	}
	topics := strings.Split(*topicList, ",")
	target := map[string]string{}
	for _, t := range topics {
		target[t] = *prefix + "." + t
		if err := createTopic(ctx, kadm.NewClient(adm), target[t], int32(*partitions)); err != nil {
			adm.Close()
			return err
		}
	}
	adm.Close()
	assign := make([]map[string]map[int32]kgo.Offset, *pipes)
	i := 0
	for _, t := range topics {
		for p := range int32(*partitions) {
			k := i % *pipes
			i++
			if assign[k] == nil {
				assign[k] = map[string]map[int32]kgo.Offset{}
			}
			if assign[k][t] == nil {
				assign[k][t] = map[int32]kgo.Offset{}
			}
			assign[k][t][p] = kgo.NewOffset().AtStart()
		}
	}
	errs := make(chan error, *pipes)
	n := 0
	for _, parts := range assign {
		if parts == nil {
			continue
		}
		n++
		go func() { errs <- pipe(ctx, *src, *dst, parts, target) }()
	}
	for range n {
		if err := <-errs; err != nil {
			stop()
			return err
		}
	}
	return nil
}

// pipe copies the given partitions until ctx ends.
func pipe(ctx context.Context, src, dst string, parts map[string]map[int32]kgo.Offset, target map[string]string) error {
	prod, err := newClient(dst,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedBytes(256<<20),
	)
	if err != nil {
		return err
	}
	defer prod.Close()
	cons, err := newClient(src,
		kgo.ConsumePartitions(parts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(8<<20),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer cons.Close()
	failed := make(chan error, 1)
	onErr := func(_ *kgo.Record, err error) {
		if err != nil {
			select {
			case failed <- err:
			default:
			}
		}
	}
	for {
		fetches := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		select {
		case err := <-failed:
			return fmt.Errorf("produce: %w", err)
		default:
		}
		fetches.EachError(func(t string, p int32, err error) {
			fmt.Fprintf(os.Stderr, "rawpipe: fetch %s[%d]: %v\n", t, p, err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			prod.Produce(ctx, &kgo.Record{
				Topic: target[r.Topic], Partition: r.Partition,
				Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp,
			}, onErr)
		})
	}
}
