package adopt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/naming"
)

func jsonValue(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// ensureTopic creates one of the flow's compacted internal topics on the
// target with the replicator's settings, or checks its partition count.
func ensureTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe %s: %w", topic, err)
	}
	if d, ok := td[topic]; ok && d.Err == nil {
		if int32(len(d.Partitions)) != partitions {
			return fmt.Errorf("internal topic %s has %d partitions, want %d (the flow's slots): set slots: %d, or delete the flow's internal topics", topic, len(d.Partitions), partitions, len(d.Partitions))
		}
		return nil
	}
	resp, err := adm.CreateTopic(ctx, partitions, -1, map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"segment.ms":                kadm.StringPtr("3600000"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.1"),
	}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create %s: %w", topic, err)
	}
	return nil
}

// commit writes recs in one transaction: progress, offset map and
// adoption records appear together or not at all (invariant 2).
func commit(ctx context.Context, o Options, recs []*kgo.Record) error {
	f := o.Flow
	cl, err := o.Target.Client(f.Name+"-adopt-writer", o.Logger,
		kgo.TransactionalID(naming.AdoptTransactionalID(f)),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(naming.ProgressTopic(f)))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin adoption transaction: %w", err)
	}
	res := cl.ProduceSync(ctx, recs...)
	commit := kgo.TryCommit
	if res.FirstErr() != nil {
		commit = kgo.TryAbort
	}
	if err := cl.EndTransaction(ctx, commit); err != nil {
		return fmt.Errorf("end adoption transaction: %w", err)
	}
	if err := res.FirstErr(); err != nil {
		return fmt.Errorf("write adoption records (aborted, nothing written): %w", err)
	}
	return nil
}
