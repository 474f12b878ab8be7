package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/testkit"
)

// TestReplicateRunGroup: `godwit replicate` serves metrics and health while
// it runs, and on SIGTERM (the command's context ending) every part stops:
// the command returns 0 and the HTTP listener is gone. A part that cannot
// start (the HTTP address taken) fails the command with the address named.
func TestReplicateRunGroup(t *testing.T) {
	p := testkit.KfakePair(t)
	topic := testkit.UniqueName(t, "orders")
	testkit.CreateTopic(t, p.Primary, topic, 2, nil)
	cfgPath, _, _ := testkit.FlowConfigFile(t, p, "prefixed", `topics: ["`+topic+`"], slots: 2`, false)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr testkit.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, []string{"-c", cfgPath, "replicate", "--log-level", "info"}, io.Discard, &stderr)
	}()

	addrRE := regexp.MustCompile(`serving metrics and health.*addr=(\S+)`)
	var addr string
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			return true, ""
		}
		return false, "no 'serving metrics and health' line:\n" + stderr.String()
	})
	get := func(path string) (int, string, error) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		code, body, err := get("/readyz")
		return err == nil && code == http.StatusOK, body
	})
	if code, body, err := get("/metrics"); err != nil || code != http.StatusOK || !strings.Contains(body, "godwit_") {
		t.Fatalf("/metrics: %d %v\n%.500s", code, err, body)
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("replicate exit %d after SIGTERM\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("replicate still running 30 s after SIGTERM\n%s", stderr.String())
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("HTTP listener %s still accepts connections after the command returned", addr)
	}
	if !strings.Contains(stderr.String(), "replicator stopped") {
		t.Fatalf("no 'replicator stopped' line:\n%s", stderr.String())
	}

	// The address taken: the command fails before replicating, naming it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	busy := strings.Replace(string(b), `listen: "127.0.0.1:0"`, `listen: "`+ln.Addr().String()+`"`, 1)
	if err := os.WriteFile(cfgPath, []byte(busy), 0o600); err != nil {
		t.Fatal(err)
	}
	var errb testkit.SyncBuffer
	c2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	if code := runContext(c2, []string{"-c", cfgPath, "replicate"}, io.Discard, &errb); code != exitFailure || !strings.Contains(errb.String(), ln.Addr().String()) || !strings.Contains(errb.String(), "http.listen") {
		t.Fatalf("replicate with http.listen taken: exit %d\n%s", code, errb.String())
	}
}
