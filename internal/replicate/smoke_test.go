package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
)

func TestSmokeKfake(t *testing.T) {
	a, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	y := fmt.Sprintf("clusters:\n  primary: {bootstrap_servers: [%q]}\n  secondary: {bootstrap_servers: [%q]}\nflows:\n  primary->secondary: {topics: [\"orders\"], slots: 4}\n", a.ListenAddrs()[0], b.ListenAddrs()[0])
	cfg, err := config.Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	pcl, _ := kgo.NewClient(kgo.SeedBrokers(a.ListenAddrs()...))
	defer pcl.Close()
	for i := range 1000 {
		pcl.Produce(context.Background(), &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprint(i)), Value: []byte("v")}, nil)
	}
	if err := pcl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r, err := New(cfg, []*config.Flow{cfg.Flows["primary->secondary"]}, log, NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	bcl, _ := kgo.NewClient(kgo.SeedBrokers(b.ListenAddrs()...))
	defer bcl.Close()
	adm := kadm.NewClient(bcl)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(context.Background(), "primary.orders")
		var n int64
		if err == nil {
			ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		}
		t.Logf("target end sum %d", n)
		if n >= 1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("timeout")
		}
		time.Sleep(500 * time.Millisecond)
	}
	st, err := Status(context.Background(), cfg, cfg.Flows["primary->secondary"])
	t.Logf("status %+v %v", st, err)
	cancel()
	t.Log(<-done)
}
