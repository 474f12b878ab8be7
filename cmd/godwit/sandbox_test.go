package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/testkit"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestSandboxCommand(t *testing.T) {
	pp, sp := freePort(t), freePort(t)
	cfgFile := filepath.Join(t.TempDir(), "sandbox.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testkit.SyncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- runContext(ctx, []string{"sandbox",
			"--primary-port", strconv.Itoa(pp), "--secondary-port", strconv.Itoa(sp),
			"--data-dir", t.TempDir(), "--write-config", cfgFile}, &stdout, &stderr)
	}()

	testkit.Eventually(t, 30*time.Second, func() (bool, string) {
		select {
		case code := <-exit:
			t.Fatalf("sandbox exited early with %d; stderr:\n%s", code, stderr.String())
		default:
		}
		_, err := os.Stat(cfgFile)
		return err == nil, "the config file"
	})
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatalf("written config does not load: %v", err)
	}
	if f := cfg.Flows["primary->secondary"]; f == nil || !f.ExactlyOnce() || f.Naming != config.NamingPrefixed {
		t.Fatalf("flow primary->secondary not as expected: %+v", f)
	}
	testkit.Eventually(t, 10*time.Second, func() (bool, string) {
		return strings.Contains(stdout.String(), "bootstrap_servers"), "addresses on stdout"
	})
	out := stdout.String()
	ids := map[string]bool{}
	for name, port := range map[string]int{"primary": pp, "secondary": sp} {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if got := cfg.Clusters[name].BootstrapServers; len(got) != 1 || got[0] != addr {
			t.Fatalf("%s bootstrap_servers = %v, want [%s]", name, got, addr)
		}
		if !strings.Contains(out, addr) {
			t.Fatalf("stdout does not show %s:\n%s", addr, out)
		}
		ids[roundTrip(t, cfg.Clusters[name].BootstrapServers, name)] = true
	}
	if len(ids) != 2 {
		t.Fatalf("clusters share an id: %v", ids)
	}

	cancel()
	select {
	case code := <-exit:
		if code != exitOK {
			t.Fatalf("exit code %d, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sandbox did not stop after its context was cancelled")
	}
	// The ports are released.
	for _, p := range []int{pp, sp} {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second); err == nil {
			c.Close()
			t.Fatalf("port %d still accepts connections after exit", p)
		}
	}
}

// roundTrip produces and consumes one record and returns the cluster id.
func roundTrip(t *testing.T, addrs []string, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("hello"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, "hello"); err != nil {
		t.Fatalf("%s: create topic: %v", name, err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "hello", Value: []byte(name)}).FirstErr(); err != nil {
		t.Fatalf("%s: produce: %v", name, err)
	}
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: no record read back: %v", name, ctx.Err())
		}
		var got []string
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if len(got) > 0 {
			if got[0] != name {
				t.Fatalf("%s: read %q", name, got[0])
			}
			break
		}
	}
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("%s: metadata: %v", name, err)
	}
	return md.Cluster
}

func TestSandboxCommandErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"sandbox", "--primary-port", "5000", "--secondary-port", "5000"}, exitUsage, "overlap"},
		{[]string{"sandbox", "--primary-port", "-1"}, exitUsage, "--primary-port"},
		{[]string{"sandbox", "--brokers", "0"}, exitUsage, "--brokers"},
		{[]string{"sandbox", "extra"}, exitUsage, "unknown command"},
		{[]string{"sandbox", "--primary-port", busy, "--secondary-port", "0"}, exitFailure, "free ports"},
	} {
		var stdout, stderr testkit.SyncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		code := runContext(ctx, tc.args, &stdout, &stderr)
		cancel()
		if code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr.String(), tc.code, tc.msg)
		}
	}
}

func TestSandboxCommandInterruptedWhileStarting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr testkit.SyncBuffer
	if code := runContext(ctx, []string{"sandbox", "--primary-port", "0", "--secondary-port", "0"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr.String())
	}
}
