package sandbox_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/sandbox"
)

func start(t *testing.T, opts sandbox.Options) *sandbox.Sandbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sandbox.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func client(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t *testing.T, addrs []string, topic string) {
	t.Helper()
	adm := kadm.NewClient(client(t, addrs))
	if _, err := adm.CreateTopic(ctxT(t), 1, -1, nil, topic); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

func produce(t *testing.T, addrs []string, topic string, values ...string) {
	t.Helper()
	cl := client(t, addrs)
	for _, v := range values {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

// consume reads n records of topic from the start.
func consume(t *testing.T, addrs []string, topic string, n int, opts ...kgo.Opt) []string {
	t.Helper()
	cl := client(t, addrs, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	ctx := ctxT(t)
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s: got %d of %d records: %v", topic, len(got), n, err)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

func roundTrip(t *testing.T, c *sandbox.Cluster, topic string) {
	t.Helper()
	createTopic(t, c.Addrs, topic)
	want := []string{c.Name + "-1", c.Name + "-2", c.Name + "-3"}
	produce(t, c.Addrs, topic, want...)
	got := consume(t, c.Addrs, topic, len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: read %v, wrote %v", c.Name, got, want)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestStartRoundTripAndDistinctIDs(t *testing.T) {
	s := start(t, sandbox.Options{})
	cs := s.Clusters()
	if len(cs) != 2 || cs[0].Name != sandbox.Primary || cs[1].Name != sandbox.Secondary {
		t.Fatalf("clusters = %v, want primary, secondary", cs)
	}
	ids := map[string]bool{}
	for _, c := range cs {
		if s.Cluster(c.Name) != c || len(c.Addrs) != 1 || c.ID == "" || !c.Running() || c.Fake() == nil {
			t.Fatalf("cluster %+v not as expected", c)
		}
		ids[c.ID] = true
		roundTrip(t, c, "round-trip")
		md, err := kadm.NewClient(client(t, c.Addrs)).BrokerMetadata(ctxT(t))
		if err != nil || md.Cluster != c.ID {
			t.Fatalf("%s: metadata cluster id %q (%v), want %q", c.Name, md.Cluster, err, c.ID)
		}
	}
	if len(ids) != 2 {
		t.Fatalf("cluster IDs are not distinct: %v", ids)
	}
	if s.Cluster("nope") != nil {
		t.Fatal("Cluster(nope) != nil")
	}
}

// freePorts returns a port p such that p..p+n-1 were all free: a
// multi-broker cluster takes consecutive ports.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		var lns []net.Listener
		base := freePort(t)
		for i := range n {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if len(lns) == n {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

func TestFixedPortsAndBrokers(t *testing.T) {
	p1 := freePorts(t, 2)
	p2 := freePorts(t, 2)
	for p2 == p1 || p2 == p1+1 || p2+1 == p1 {
		p2 = freePorts(t, 2)
	}
	s := start(t, sandbox.Options{Names: []string{"a", "b"}, Ports: map[string]int{"a": p1, "b": p2}, Brokers: 2})
	a, b := s.Cluster("a"), s.Cluster("b")
	want := []string{"127.0.0.1:" + strconv.Itoa(p1), "127.0.0.1:" + strconv.Itoa(p1+1)}
	if fmt.Sprint(a.Addrs) != fmt.Sprint(want) {
		t.Fatalf("a.Addrs = %v, want %v", a.Addrs, want)
	}
	if len(b.Addrs) != 2 {
		t.Fatalf("b.Addrs = %v, want 2 brokers", b.Addrs)
	}
	if b.Addrs[0] != "127.0.0.1:"+strconv.Itoa(p2) {
		t.Fatalf("b.Addrs = %v, want first port %d", b.Addrs, p2)
	}
	roundTrip(t, b, "two-brokers")
}

func TestTransactions(t *testing.T) {
	s := start(t, sandbox.Options{})
	c := s.Cluster(sandbox.Secondary)
	createTopic(t, c.Addrs, "txn")
	cl := client(t, c.Addrs, kgo.TransactionalID("txn-test"), kgo.TransactionTimeout(10*time.Second))
	ctx := ctxT(t)
	for i, commit := range []bool{false, true} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		v := fmt.Sprintf("txn-%d-commit=%v", i, commit)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "txn", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction (commit=%v): %v", commit, err)
		}
	}
	got := consume(t, c.Addrs, "txn", 1, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if got[0] != "txn-1-commit=true" {
		t.Fatalf("read committed got %v, want only the committed record", got)
	}
}

func TestDataDirPersistsAcrossClose(t *testing.T) {
	dir := t.TempDir()
	s, err := sandbox.Start(ctxT(t), sandbox.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Cluster(sandbox.Primary)
	id, addrs := c.ID, c.Addrs
	createTopic(t, addrs, "kept")
	produce(t, addrs, "kept", "one", "two")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, sandbox.Primary, "meta.json")); err != nil {
		t.Fatalf("no persisted state in DataDir/primary: %v", err)
	}

	s2 := start(t, sandbox.Options{DataDir: dir})
	c2 := s2.Cluster(sandbox.Primary)
	if c2.ID != id {
		t.Fatalf("cluster id after restart = %s, want %s", c2.ID, id)
	}
	if s2.Cluster(sandbox.Secondary).ID == id {
		t.Fatal("secondary took primary's id")
	}
	if got := consume(t, c2.Addrs, "kept", 2); fmt.Sprint(got) != "[one two]" {
		t.Fatalf("after restart read %v, want [one two]", got)
	}
}

func TestStopRestartSamePortsSameData(t *testing.T) {
	s := start(t, sandbox.Options{})
	c := s.Cluster(sandbox.Primary)
	id, addrs := c.ID, c.Addrs
	createTopic(t, addrs, "t")
	produce(t, addrs, "t", "before")

	if err := s.StopCluster(sandbox.Primary); err != nil {
		t.Fatal(err)
	}
	if c.Running() || c.Fake() != nil {
		t.Fatal("stopped cluster reports running")
	}
	if err := s.StopCluster(sandbox.Primary); err != nil { // idempotent
		t.Fatal(err)
	}
	// Down means refused connections, not a hang.
	if conn, err := net.DialTimeout("tcp", addrs[0], time.Second); err == nil {
		conn.Close()
		t.Fatalf("stopped cluster still accepts connections on %s", addrs[0])
	}
	// The other cluster is unaffected.
	roundTrip(t, s.Cluster(sandbox.Secondary), "still-up")

	if err := s.RestartCluster(ctxT(t), sandbox.Primary); err != nil {
		t.Fatal(err)
	}
	if !c.Running() || c.ID != id || fmt.Sprint(c.Addrs) != fmt.Sprint(addrs) {
		t.Fatalf("after restart: running=%v id=%s addrs=%v, want id=%s addrs=%v", c.Running(), c.ID, c.Addrs, id, addrs)
	}
	produce(t, addrs, "t", "after")
	if got := consume(t, addrs, "t", 2); fmt.Sprint(got) != "[before after]" {
		t.Fatalf("read %v, want [before after]", got)
	}
	if err := s.RestartCluster(ctxT(t), sandbox.Primary); err != nil { // no-op when running
		t.Fatal(err)
	}
	if err := s.StopCluster("nope"); err == nil {
		t.Fatal("StopCluster(nope) succeeded")
	}
}

func TestWriteConfigParses(t *testing.T) {
	s := start(t, sandbox.Options{HTTPListen: "127.0.0.1:0"})
	var b bytes.Buffer
	if err := s.WriteConfig(&b); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("sandbox.yaml", b.Bytes())
	if err != nil {
		t.Fatalf("config does not parse: %v\n%s", err, b.String())
	}
	for _, c := range s.Clusters() {
		if got := cfg.Clusters[c.Name].BootstrapServers; fmt.Sprint(got) != fmt.Sprint(c.Addrs) {
			t.Fatalf("%s bootstrap_servers = %v, want %v", c.Name, got, c.Addrs)
		}
	}
	f := cfg.Flows["primary->secondary"]
	if f == nil || f.Source != "primary" || f.Target != "secondary" || !f.ExactlyOnce() ||
		f.Naming != config.NamingPrefixed || !f.TopicSelected("anything") || cfg.HTTP.Listen != "127.0.0.1:0" {
		t.Fatalf("unexpected config: %+v http=%+v\n%s", f, cfg.HTTP, b.String())
	}
}

func TestOptionErrors(t *testing.T) {
	for _, o := range []sandbox.Options{
		{Names: []string{"a", "a"}},
		{Names: []string{"a/b"}},
		{Names: []string{"a", "b"}, Ports: map[string]int{"c": 1}},
	} {
		if s, err := sandbox.Start(ctxT(t), o); err == nil {
			s.Close()
			t.Errorf("Start(%+v) succeeded", o)
		}
	}
	// A taken port is an error, not a silent move.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if s, err := sandbox.Start(ctxT(t), sandbox.Options{Ports: map[string]int{"secondary": port}}); err == nil {
		s.Close()
		t.Fatal("Start on a taken port succeeded")
	}
	s := start(t, sandbox.Options{Names: []string{"solo"}})
	if err := s.WriteConfig(new(bytes.Buffer)); err == nil {
		t.Fatal("WriteConfig with one cluster succeeded")
	}
}

func TestCloseRemovesTemporaryStorage(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	s, err := sandbox.Start(ctxT(t), sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 1 {
		t.Fatalf("want one temporary directory in %s, have %d", tmp, len(ents))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("Close left %d entries in %s", len(ents), tmp)
	}
}
