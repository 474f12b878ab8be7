package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// EnvKafkaSh names scripts/kafka.sh; `scripts/kafka.sh env` exports it when
// the broker jars are cached, which is what a disposable cluster needs.
const EnvKafkaSh = "GODWIT_TEST_KAFKA_SH"

// DisposableHeap keeps a disposable broker light: tests run it next to the
// shared pair on a 2-core machine.
const DisposableHeap = "-Xms128m -Xmx384m"

// disposableProps shortens the broker session so a broker restarted after
// a SIGKILL registers again within seconds: by default the controller
// refuses the new incarnation until the old one's 9 s session expires.
const disposableProps = "broker.session.timeout.ms=2000\nbroker.heartbeat.interval.ms=500"

// Disposable is a single-node real Kafka cluster owned by one test, so the
// test may kill it: the shared pair must never be stopped. It is started
// by scripts/kafka.sh in a temporary state folder on ports of its own.
type Disposable struct {
	t      testing.TB
	script string
	dir    string
	port   int
	cport  int
	// Started is how long the first start took, Restarted the last
	// Restart (both until the broker answered metadata).
	Started, Restarted time.Duration
}

// DisposableKafka starts a fresh single-node Kafka cluster for t and stops
// it (SIGKILL, its data removed) on cleanup. It skips t when the
// environment has no GODWIT_TEST_KAFKA_SH (real Kafka not set up).
func DisposableKafka(t testing.TB) *Disposable {
	t.Helper()
	script := os.Getenv(EnvKafkaSh)
	if script == "" {
		t.Skipf("no disposable real Kafka: %s is unset (eval \"$(scripts/kafka.sh env)\" sets it once scripts/kafka.sh up has cached the broker jars)", EnvKafkaSh)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("testkit: %s=%s: %v (point it at scripts/kafka.sh)", EnvKafkaSh, script, err)
	}
	d := &Disposable{t: t, script: script, dir: t.TempDir()}
	// Ports are picked below the ephemeral range, where no client
	// connection can take them between our check and the broker's bind
	// (or while the broker is down between Kill and Restart). Another
	// test may still pick the same ones: then the start fails with "in
	// use" and is tried again on other ports.
	var out string
	var err error
	for attempt := 1; ; attempt++ {
		d.port, d.cport = freePort(t), freePort(t)
		if d.port == d.cport {
			continue
		}
		t0 := time.Now()
		out, err = d.run("up")
		if err == nil {
			d.Started = time.Since(t0)
			break
		}
		_, _ = d.run("kill")
		_ = os.RemoveAll(filepath.Join(d.dir, "primary"))
		if attempt == 3 || !strings.Contains(out, "already in use") {
			t.Fatalf("testkit: starting a disposable Kafka cluster: %v\n%s", err, out)
		}
	}
	t.Cleanup(func() {
		if out, err := d.run("kill"); err != nil {
			t.Errorf("testkit: stopping the disposable Kafka cluster on %s: %v\n%s", d.Addr(), err, out)
		}
	})
	t.Logf("disposable Kafka %s (pid %d) ready in %v", d.Addr(), d.Pid(), d.Started.Round(time.Millisecond))
	return d
}

// DisposablePair is a pair whose primary is a fresh disposable cluster
// (which the test may kill) and whose secondary is the shared real
// secondary. It skips t unless both are configured.
func DisposablePair(t testing.TB) (Pair, *Disposable) {
	t.Helper()
	real, ok := RealPair(t)
	if !ok {
		t.Skipf("no real Kafka: set %s and %s (scripts/kafka.sh up starts two clusters; eval \"$(scripts/kafka.sh env)\")", EnvPrimary, EnvSecondary)
	}
	d := DisposableKafka(t)
	return Pair{Kind: KindKafka, Primary: d.Endpoint(), Secondary: real.Secondary}, d
}

// Addr is the broker's host:port.
func (d *Disposable) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(d.port)) }

// Endpoint is the cluster as a testkit endpoint named "disposable".
func (d *Disposable) Endpoint() Endpoint {
	return Endpoint{Name: "disposable", Addrs: []string{d.Addr()}}
}

// Dir is the cluster's state folder (data, logs, server.properties).
func (d *Disposable) Dir() string { return filepath.Join(d.dir, "primary") }

// Pid is the broker JVM's process id, 0 when it is not running.
func (d *Disposable) Pid() int {
	b, err := os.ReadFile(filepath.Join(d.Dir(), "kafka.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// KillCommand is a shell command that SIGKILLs the broker and returns once
// its process is gone and its port refuses connections: usable as a
// drill's fault.command. Kill runs the same command.
func (d *Disposable) KillCommand() string {
	var b strings.Builder
	b.WriteString("env")
	for _, kv := range d.env() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GODWIT_KAFKA_DIR", "GODWIT_KAFKA_CLUSTERS", "GODWIT_PRIMARY_PORT", "GODWIT_PRIMARY_CONTROLLER_PORT", "GODWIT_KAFKA_SECURE":
			b.WriteString(" " + shellQuote(kv))
		}
	}
	b.WriteString(" " + shellQuote(d.script) + " kill")
	return b.String()
}

// Kill SIGKILLs the broker (a crash: no controlled shutdown) and waits
// until its port refuses connections.
func (d *Disposable) Kill() {
	d.t.Helper()
	t0 := time.Now()
	pid := d.Pid()
	cmd := exec.Command("sh", "-c", d.KillCommand())
	out, err := cmd.CombinedOutput()
	if err != nil {
		d.t.Fatalf("testkit: killing disposable Kafka %s: %v\n%s", d.Addr(), err, out)
	}
	if c, err := net.DialTimeout("tcp", d.Addr(), time.Second); err == nil {
		c.Close()
		d.t.Fatalf("testkit: %s still accepts connections after the kill", d.Addr())
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		d.t.Fatalf("testkit: %s after the kill: %v, want connection refused", d.Addr(), err)
	}
	d.t.Logf("disposable Kafka %s: pid %d killed (SIGKILL) in %v", d.Addr(), pid, time.Since(t0).Round(time.Millisecond))
}

// Restart starts the killed broker again on the same data and ports and
// waits until it answers metadata with its cluster id.
func (d *Disposable) Restart() {
	d.t.Helper()
	t0 := time.Now()
	out, err := d.run("up")
	if err != nil {
		d.t.Fatalf("testkit: restarting disposable Kafka %s: %v\n%s", d.Addr(), err, out)
	}
	d.Restarted = time.Since(t0)
	d.t.Logf("disposable Kafka %s restarted on the same data (pid %d) in %v", d.Addr(), d.Pid(), d.Restarted.Round(time.Millisecond))
}

// CreateTopic creates topic on the disposable cluster and waits until every
// partition has a leader. Unlike testkit.CreateTopic it registers no
// deletion: the cluster goes with the test, and a deletion against a
// killed cluster would only wait for its timeout.
func (d *Disposable) CreateTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	adm := Admin(t, d.Endpoint())
	resp, err := adm.CreateTopic(Context(t), partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("testkit: creating topic %s on disposable Kafka %s: %v", topic, d.Addr(), err)
	}
	Eventually(t, Timeout, func() (bool, string) {
		md, err := adm.Metadata(Context(t), topic)
		if err != nil {
			return false, fmt.Sprintf("metadata of %s: %v", topic, err)
		}
		td := md.Topics[topic]
		if td.Err != nil || len(td.Partitions) != int(partitions) {
			return false, fmt.Sprintf("topic %s not ready: %+v", topic, td)
		}
		for _, p := range td.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return false, fmt.Sprintf("topic %s partition %d has no leader (%v)", topic, p.Partition, p.Err)
			}
		}
		return true, ""
	})
}

// DeleteTopicsOnCleanup deletes, when t ends, every topic on e whose name
// contains substr: what a flow with test-unique aliases (FlowConfigFile)
// created on a shared cluster (target topics, progress, offset map,
// checkpoints, journal).
func DeleteTopicsOnCleanup(t testing.TB, e Endpoint, substr string) {
	t.Helper()
	if substr == "" {
		t.Fatal("testkit: DeleteTopicsOnCleanup needs a non-empty substring")
	}
	adm := Admin(t, e)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		tds, err := adm.ListTopics(ctx)
		if err != nil {
			t.Logf("testkit: listing topics on %s to delete the test's: %v", e.Name, err)
			return
		}
		var del []string
		for _, td := range tds.Sorted() {
			if strings.Contains(td.Topic, substr) {
				del = append(del, td.Topic)
			}
		}
		if len(del) > 0 {
			_, _ = adm.DeleteTopics(ctx, del...)
		}
	})
}

func (d *Disposable) env() []string {
	return []string{
		"GODWIT_KAFKA_DIR=" + d.dir,
		"GODWIT_KAFKA_CLUSTERS=primary",
		"GODWIT_PRIMARY_PORT=" + strconv.Itoa(d.port),
		"GODWIT_PRIMARY_CONTROLLER_PORT=" + strconv.Itoa(d.cport),
		"GODWIT_KAFKA_SECURE=0",
		"GODWIT_KAFKA_WAN_PORT=", // a developer's bench setting must not reach this cluster
		"GODWIT_KAFKA_HEAP=" + DisposableHeap,
		"GODWIT_KAFKA_SERVER_PROPS=" + disposableProps,
		"GODWIT_KAFKA_START_TIMEOUT=120",
		// A test binary that dies before its cleanup takes the broker with it.
		"GODWIT_KAFKA_WATCH_PID=" + strconv.Itoa(os.Getpid()),
	}
}

// run runs scripts/kafka.sh cmd for this cluster and returns its output.
func (d *Disposable) run(cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, d.script, cmd)
	c.Env = append(os.Environ(), d.env()...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	if err != nil {
		err = fmt.Errorf("scripts/kafka.sh %s: %w", cmd, err)
	}
	return out.String(), err
}

// freePort returns a loopback port below the ephemeral range that nothing
// listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	lo, hi := 20000, ephemeralLow()
	if hi-lo < 1000 {
		lo, hi = 10000, 20000
	}
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatalf("testkit: no free loopback port in [%d, %d)", lo, hi)
	return 0
}

// ephemeralLow is the first port the kernel hands out to outgoing
// connections (32768 when unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 20000 {
		return 32768
	}
	return n
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
