package failover

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/naming"
)

// mark records the selected topics as failed over: from now on the
// replicator leaves them alone.
func (r *runner) mark(ctx context.Context) (*topicsResult, error) {
	store, err := r.store(ctx)
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	if r.st.Topics == nil {
		r.st.Topics = map[string]journal.TopicState{}
	}
	for _, t := range r.params().Topics {
		if _, ok := r.st.Topics[t]; !ok {
			r.st.Topics[t] = journal.TopicState{TargetTopic: store.TargetTopic(t), At: now, Op: r.op.ID, Mode: r.op.Mode}
		}
	}
	return &topicsResult{Topics: r.params().Topics}, nil
}

// topicsResult is mark_failed_over's detail.
type topicsResult struct {
	Topics []string `json:"topics"`
}

// fence bumps the epoch of every slot's transactional id: a running
// replicator's open transaction is aborted and its next commit fails, so
// its next session reads the failed-over mark before writing anything.
func (r *runner) fence(ctx context.Context) (*fenceResult, error) {
	f := r.o.Flow
	if !f.ExactlyOnce() {
		return &fenceResult{Fenced: 0, Note: "at-least-once flow: no transactional ids to fence; replicators drop the topics at their next refresh (refresh_interval)"}, nil
	}
	for n := range f.Slots {
		// Every producer of the slot: a replicator alternates two.
		for _, id := range naming.SlotTransactionalIDs(f, n) {
			cl, err := r.dst.Client(f.Name+"-failover-fence", r.log, kgo.TransactionalID(id), kgo.TransactionTimeout(60*time.Second))
			if err != nil {
				return nil, err
			}
			_, _, err = cl.ProducerID(ctx)
			cl.Close()
			if err != nil {
				return nil, cluster.Explain(r.dst, fmt.Errorf("fence transactional id %q: %w", id, err))
			}
		}
	}
	return &fenceResult{Fenced: f.Slots}, nil
}

// fenceResult is fence's detail.
type fenceResult struct {
	Fenced int    `json:"fenced"`
	Note   string `json:"note,omitempty"`
}
