package testkit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/naming"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// RefuseProduce makes a kfake cluster answer every Produce request that
// writes to topic's listed partitions with NOT_ENOUGH_REPLICAS (retriable:
// franz-go keeps retrying, as a client of an under-replicated standby
// does) for every partition in the request, until the returned function
// is called or the test ends. Requests to other partitions are served
// normally. topic must exist: Produce v13+ names topics by id, which is
// looked up here. It returns how many requests it refused so far, so a test can
// check the fault was hit.
func RefuseProduce(t testing.TB, c *kfake.Cluster, topic string, partitions ...int32) (release func(), refused *atomic.Int64) {
	t.Helper()
	stalled := map[int32]bool{}
	for _, p := range partitions {
		stalled[p] = true
	}
	id := kfakeTopicID(t, c, topic)
	var off atomic.Bool
	refused = &atomic.Int64{}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if off.Load() {
			return nil, nil, false
		}
		c.KeepControl()
		r := req.(*kmsg.ProduceRequest)
		hit := false
		for _, rt := range r.Topics {
			if rt.Topic != topic && rt.TopicID != id {
				continue
			}
			for _, rp := range rt.Partitions {
				if stalled[rp.Partition] {
					hit = true
				}
			}
		}
		if !hit {
			return nil, nil, false
		}
		refused.Add(1)
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				sp.BaseOffset, sp.LogStartOffset = -1, -1
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	release = func() { off.Store(true) }
	t.Cleanup(release)
	return release, refused
}

// kfakeTopicID is topic's id on a kfake cluster.
func kfakeTopicID(t testing.TB, c *kfake.Cluster, topic string) [16]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		t.Fatalf("kfake: metadata of %q: %v", topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		t.Fatalf("kfake: topic %q not found (%v): it must exist before its produce requests can be refused", topic, td.Err)
	}
	return td.ID
}

// SlotProducerIDs are the client ids of a slot's producers
// (replicate/txn.go alternates two), as a broker sees them.
func SlotProducerIDs(f *config.Flow, slot int) []string {
	var ids []string
	for _, name := range naming.SlotProducerClients(f, slot) {
		ids = append(ids, "godwit-"+name) // cluster.Client's client id
	}
	return ids
}

// ThrottleProducers puts a producer_byte_rate quota of bytesPerSecond on
// each client id on a real Kafka cluster, so a replicator's writes to it
// trail a faster source load by construction rather than by luck. The
// returned function (also run when the test ends) removes the quotas.
func ThrottleProducers(t testing.TB, e Endpoint, bytesPerSecond float64, clientIDs ...string) (release func()) {
	t.Helper()
	adm := Admin(t, e)
	var alter, remove []kadm.AlterClientQuotaEntry
	for _, id := range clientIDs {
		ent := []kadm.ClientQuotaEntityComponent{{Type: "client-id", Name: kadm.StringPtr(id)}}
		alter = append(alter, kadm.AlterClientQuotaEntry{Entity: ent, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: bytesPerSecond}}})
		remove = append(remove, kadm.AlterClientQuotaEntry{Entity: ent, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Remove: true}}})
	}
	alterAll := func(ctx context.Context, entries []kadm.AlterClientQuotaEntry) error {
		res, err := adm.AlterClientQuotas(ctx, entries)
		for _, r := range res {
			if err == nil && r.Err != nil {
				err = fmt.Errorf("%v %s", r.Err, r.ErrMessage)
			}
		}
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := alterAll(ctx, alter); err != nil {
		t.Fatalf("throttle producers %v on %s to %.0f B/s: %v", clientIDs, e.Name, bytesPerSecond, err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := alterAll(ctx, remove); err != nil {
				t.Logf("remove producer quotas %v on %s: %v", clientIDs, e.Name, err)
			}
		})
	}
	t.Cleanup(release)
	return release
}
