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
// do. It consumes the source topic from the start (read_committed, no
// group, no offset storage) and produces every record unchanged (key,
// value, headers, timestamp) to the same partition of the target topic,
// with the client settings godwit's slot workers use for fetching and
// batching. It keeps no progress and gives no guarantee beyond the
// idempotent producer's: it is what any client-based replicator costs at
// minimum. It runs as its own process so /proc measures it alone.
func rawPipe(args []string) error {
	fs := flag.NewFlagSet("rawpipe", flag.ExitOnError)
	src := fs.String("src", "", "source bootstrap")
	dst := fs.String("dst", "", "target bootstrap")
	topicList := fs.String("topics", "", "source topics, comma separated")
	prefix := fs.String("prefix", "", "target topic = <prefix>.<source topic>")
	partitions := fs.Int("partitions", 0, "partitions of the target topics to create")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	prod, err := newClient(*dst,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedBytes(256<<20),
	)
	if err != nil {
		return err
	}
	defer prod.Close()
	topics := strings.Split(*topicList, ",")
	target := map[string]string{}
	for _, t := range topics {
		target[t] = *prefix + "." + t
		if err := createTopic(ctx, kadm.NewClient(prod), target[t], int32(*partitions)); err != nil {
			return err
		}
	}
	cons, err := newClient(*src,
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
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
