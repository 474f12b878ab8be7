package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/testkit"
	"github.com/godwit/godwit/internal/testkit/inproc"
	"github.com/godwit/godwit/internal/workload"
)

// flowFixture is the start of the failover and failback CLI tests: a
// 2-partition topic on a kfake pair, a flow replicating it in this process
// until the test ends, and 100 sequence-numbered records produced.
type flowFixture struct {
	p             testkit.Pair
	topic         string
	cfgPath, flow string
	src, dst      string
	cfg           *config.Config
	ctx           context.Context
	prod          *workload.Producer
}

// newFlowFixture builds it with the given naming; extra is appended to the
// config file before it is loaded.
func newFlowFixture(t *testing.T, naming, extra string) *flowFixture {
	t.Helper()
	fx := &flowFixture{p: testkit.KfakePair(t), topic: testkit.UniqueName(t, "orders")}
	testkit.CreateTopic(t, fx.p.Primary, fx.topic, 2, nil)
	fx.cfgPath, fx.src, fx.dst = testkit.FlowConfigFile(t, fx.p, naming, `topics: ["`+fx.topic+`"], slots: 2`, false)
	fx.flow = fx.src + "->" + fx.dst
	if extra != "" {
		fh, err := os.OpenFile(fx.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = fh.WriteString(extra)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(fx.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	fx.cfg = cfg
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fx.ctx = ctx
	inproc.Flow(t, cfg, fx.flow)
	fx.prod = workload.NewProducer(testkit.Client(t, fx.p.Primary, kgo.RecordPartitioner(kgo.ManualPartitioner())), workload.ProducerConfig{Topic: fx.topic, Partitions: 2})
	if err := fx.prod.Produce(ctx, 100); err != nil {
		t.Fatal(err)
	}
	return fx
}

// cli runs godwit with -c path and returns the exit code, stdout and stderr.
func cli(path string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := runContext(c, append([]string{"-c", path}, args...), &out, &errb)
	return code, out.String(), errb.String()
}
