// Package testkit gives integration tests "two Kafka clusters, embedded or
// real" through one helper, so every test runs against the in-process kfake
// sandbox and, when configured, against real Kafka:
//
//	func TestX(t *testing.T) {
//		testkit.ForEachPair(t, func(t *testing.T, p testkit.Pair) {
//			topic := testkit.UniqueName(t, "orders")
//			testkit.CreateTopic(t, p.Primary, topic, 3, nil)
//			...
//		})
//	}
//
// Real clusters are used when GODWIT_TEST_PRIMARY and GODWIT_TEST_SECONDARY
// hold comma-separated host:port lists (scripts/kafka.sh up starts two).
// They are shared across tests and runs, so tests must name their topics and
// groups with UniqueName and never assume an empty cluster.
package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/sandbox"
)

// Environment variables naming the real clusters.
const (
	EnvPrimary   = "GODWIT_TEST_PRIMARY"
	EnvSecondary = "GODWIT_TEST_SECONDARY"
)

// Pair kinds.
const (
	KindKfake = "kfake"
	KindKafka = "kafka"
)

// Pair is two independent clusters, named primary and secondary.
type Pair struct {
	Kind               string // KindKfake or KindKafka
	Primary, Secondary Endpoint
	// Sandbox is the running sandbox for a kfake pair (to stop or restart
	// a cluster), nil for a real pair.
	Sandbox *sandbox.Sandbox
}

// Endpoint is one cluster: its alias in godwit configs and its brokers.
type Endpoint struct {
	Name  string
	Addrs []string
}

// Timeout bounds each helper's calls to a cluster.
const Timeout = 30 * time.Second

// Pairs returns a fresh kfake pair, plus the real pair when the environment
// names one. Everything is cleaned up with t.Cleanup.
func Pairs(t testing.TB) []Pair {
	t.Helper()
	ps := []Pair{KfakePair(t)}
	if p, ok := RealPair(t); ok {
		ps = append(ps, p)
	}
	return ps
}

// ForEachPair runs fn as subtest "kfake" on a fresh sandbox and as subtest
// "kafka" on the real pair, which skips when the environment names none.
func ForEachPair(t *testing.T, fn func(t *testing.T, p Pair)) {
	t.Helper()
	t.Run(KindKfake, func(t *testing.T) { fn(t, KfakePair(t)) })
	t.Run(KindKafka, func(t *testing.T) {
		p, ok := RealPair(t)
		if !ok {
			t.Skipf("no real Kafka: set %s and %s to comma-separated host:port lists (scripts/kafka.sh up starts two clusters)", EnvPrimary, EnvSecondary)
		}
		fn(t, p)
	})
}

// SkipIfShort skips a test that needs clusters (embedded or real) under
// go test -short, the fast lane of unit tests (make test-unit).
func SkipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs a pair of clusters (kfake or real Kafka); run without -short")
	}
}

// KfakePair starts a fresh sandbox (free ports, temporary storage) closed on
// cleanup.
func KfakePair(t testing.TB) Pair {
	t.Helper()
	SkipIfShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	s, err := sandbox.Start(ctx, sandbox.Options{})
	if err != nil {
		t.Fatalf("testkit: starting kfake pair: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testkit: closing kfake pair: %v", err)
		}
	})
	p, sc := s.Cluster(sandbox.Primary), s.Cluster(sandbox.Secondary)
	return Pair{
		Kind:      KindKfake,
		Primary:   Endpoint{Name: p.Name, Addrs: p.Addrs},
		Secondary: Endpoint{Name: sc.Name, Addrs: sc.Addrs},
		Sandbox:   s,
	}
}

// RealPair returns the real clusters named by GODWIT_TEST_PRIMARY and
// GODWIT_TEST_SECONDARY, and false when either is unset.
func RealPair(t testing.TB) (Pair, bool) {
	t.Helper()
	SkipIfShort(t)
	p, s := splitAddrs(os.Getenv(EnvPrimary)), splitAddrs(os.Getenv(EnvSecondary))
	if len(p) == 0 || len(s) == 0 {
		return Pair{}, false
	}
	return Pair{
		Kind:      KindKafka,
		Primary:   Endpoint{Name: sandbox.Primary, Addrs: p},
		Secondary: Endpoint{Name: sandbox.Secondary, Addrs: s},
	}, true
}

func splitAddrs(v string) []string {
	var out []string
	for _, a := range strings.Split(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// UniqueName returns prefix plus the test name and a random suffix, usable
// as a topic or group name and unique across tests and runs.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 120 { // topic names are limited to 249 characters
		name = name[len(name)-120:]
	}
	return fmt.Sprintf("%s.%s.%s", prefix, name, hex.EncodeToString(b[:]))
}

// Context returns a context cancelled after Timeout or on cleanup.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// Client returns a franz-go client for e, closed on cleanup. opts are
// applied after the seed brokers.
func Client(t testing.TB, e Endpoint, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(e.Addrs...), kgo.DialTimeout(5 * time.Second)}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("testkit: client for %s %v: %v", e.Name, e.Addrs, err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns an admin client for e, closed on cleanup.
func Admin(t testing.TB, e Endpoint) *kadm.Client {
	t.Helper()
	return kadm.NewClient(Client(t, e))
}

// CreateTopic creates topic on e with the broker's default replication
// factor, waits until every partition has a leader, and deletes it on
// cleanup.
func CreateTopic(t testing.TB, e Endpoint, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	adm := Admin(t, e)
	resp, err := adm.CreateTopic(Context(t), partitions, -1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("testkit: creating topic %s on %s: %v", topic, e.Name, err)
	}
	t.Cleanup(func() { // real clusters are shared; leave them as found
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, topic)
	})
	ctx := Context(t)
	Eventually(t, Timeout, func() (bool, string) {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return false, fmt.Sprintf("metadata of %s on %s: %v", topic, e.Name, err)
		}
		td, ok := md.Topics[topic]
		if !ok || td.Err != nil || len(td.Partitions) != int(partitions) {
			return false, fmt.Sprintf("topic %s on %s not ready: %+v", topic, e.Name, td)
		}
		for _, p := range td.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return false, fmt.Sprintf("topic %s partition %d on %s has no leader (%v)", topic, p.Partition, e.Name, p.Err)
			}
		}
		return true, ""
	})
}

// Eventually calls cond until it returns true, failing the test with cond's
// last message once timeout passes. Polling backs off from 10ms to 250ms.
func Eventually(t testing.TB, timeout time.Duration, cond func() (ok bool, msg string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testkit: condition not met within %v: %s", timeout, msg)
		}
		timer := time.NewTimer(min(wait, time.Until(deadline)+time.Millisecond))
		<-timer.C
		wait = min(wait*2, 250*time.Millisecond)
	}
}

// Config returns a parsed godwit config for the pair: clusters primary and
// secondary plus flows. flows is either a full "flows:" block or the body
// under it (e.g. `primary->secondary: {topics: ["x"]}`); empty means one
// default primary->secondary flow. http.listen is 127.0.0.1:0 so tests do
// not collide.
func Config(t testing.TB, p Pair, flows string) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("clusters:\n")
	for _, e := range []Endpoint{p.Primary, p.Secondary} {
		fmt.Fprintf(&b, "  %s:\n    bootstrap_servers: [%s]\n", e.Name, quoteAll(e.Addrs))
	}
	flows = strings.TrimRight(flows, " \t\n")
	switch {
	case strings.TrimSpace(flows) == "":
		fmt.Fprintf(&b, "flows:\n  %s->%s: {}\n", p.Primary.Name, p.Secondary.Name)
	case strings.HasPrefix(strings.TrimSpace(flows), "flows:"):
		b.WriteString(dedent(flows) + "\n")
	default:
		b.WriteString("flows:\n")
		for _, l := range strings.Split(dedent(flows), "\n") {
			b.WriteString("  " + l + "\n")
		}
	}
	b.WriteString("http:\n  listen: \"127.0.0.1:0\"\n")
	c, err := config.Parse(t.Name()+".yaml", []byte(b.String()))
	if err != nil {
		t.Fatalf("testkit: config: %v\n%s", err, b.String())
	}
	return c
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// dedent removes the common leading whitespace, so snippets may be written
// indented inside Go raw strings. Tabs count as one column; use spaces.
func dedent(s string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if common < 0 || n < common {
			common = n
		}
	}
	for i, l := range lines {
		if len(l) >= common && common > 0 {
			lines[i] = l[common:]
		}
	}
	return strings.Join(lines, "\n")
}
