package testkit_test

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/testkit"
)

// TestDisposableKafkaKillRestart: records acknowledged (acks=all) before a
// SIGKILL are all there after Restart on the same data; while killed the
// broker process is gone and its port refuses connections.
func TestDisposableKafkaKillRestart(t *testing.T) {
	d := testkit.DisposableKafka(t)
	e := d.Endpoint()
	topic := testkit.UniqueName(t, "survive")
	testkit.CreateTopic(t, e, topic, 2, nil)
	cl := testkit.Client(t, e, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(3))
	const n = 200
	ctx := testkit.Context(t)
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: fmt.Appendf(nil, "%d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	pid := d.Pid()
	if pid == 0 {
		t.Fatal("no broker pid")
	}
	d.Kill()
	if err := syscall.Kill(pid, 0); err == nil && !zombie(pid) {
		t.Fatalf("broker pid %d still running after Kill", pid)
	}
	if d.Pid() != 0 {
		t.Fatalf("pid file still names %d after Kill", d.Pid())
	}
	// Killing a dead cluster is not an error (a drill's fault command may
	// run twice).
	if out, err := exec.Command("sh", "-c", d.KillCommand()).CombinedOutput(); err != nil {
		t.Fatalf("second kill: %v\n%s", err, out)
	}
	d.Restart()
	if d.Pid() == 0 || d.Pid() == pid {
		t.Fatalf("after Restart pid %d (before %d)", d.Pid(), pid)
	}
	rd := testkit.Client(t, e, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]bool{}
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for len(got) < n && rctx.Err() == nil {
		rd.PollFetches(rctx).EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
	}
	if len(got) != n {
		t.Fatalf("after kill -9 and restart: %d of %d acknowledged records readable", len(got), n)
	}
	t.Logf("start %v, restart %v; %d acknowledged records survived kill -9", d.Started.Round(time.Millisecond), d.Restarted.Round(time.Millisecond), n)
}

// zombie reports whether pid is a zombie (killed, not yet reaped by its
// parent, which for a detached broker is init).
func zombie(pid int) bool {
	out, err := exec.Command("ps", "-o", "stat=", "-p", fmt.Sprint(pid)).Output()
	return err != nil || len(out) == 0 || out[0] == 'Z'
}
