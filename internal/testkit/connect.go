package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnvConnectLibs overrides where StartConnect finds the Kafka Connect
// classpath (a folder of jars with connect-runtime); by default it is the
// MirrorMaker 2 classpath scripts/kafka.sh fetches into .cache/.
const EnvConnectLibs = "GODWIT_CONNECT_LIBS"

// ConnectWorker is a real Kafka Connect worker (distributed mode) started
// by StartConnect.
type ConnectWorker struct {
	// URL is the REST base URL (http://127.0.0.1:<port>).
	URL string
	// Log is the worker's log file.
	Log string
	// Ready is how long the worker took from exec until its REST API
	// answered and it accepted a connector config.
	Ready time.Duration

	cmd  *exec.Cmd
	done chan error
}

// StartConnect starts a distributed Kafka Connect worker whose internal
// topics and group live on e (unique names, deleted on cleanup), with its
// REST API on a free loopback port, and stops it on cleanup. It skips the
// test when java or the Connect classpath is missing. Connector client
// overrides are allowed (connector.client.config.override.policy=All) so
// tests can give a connector its own producer settings.
func StartConnect(t testing.TB, e Endpoint) *ConnectWorker {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("no java on PATH: a Kafka Connect worker needs a JRE 17+")
	}
	libs, err := connectLibs()
	if err != nil {
		t.Skip(err.Error())
	}
	id := UniqueName(t, "godwit-connect")
	dir := t.TempDir()
	w := &ConnectWorker{Log: filepath.Join(dir, "worker.log")}
	t0 := time.Now()
	// A port picked from a closed listener can be taken before Jetty binds
	// it; a second port is tried when the worker exits early.
	for attempt := 1; ; attempt++ {
		port, err := loopbackPort()
		if err != nil {
			t.Fatal(err)
		}
		w.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
		props := filepath.Join(dir, "worker.properties")
		if err := os.WriteFile(props, []byte(connectWorkerProps(e, id, port)), 0o600); err != nil {
			t.Fatal(err)
		}
		l4j := filepath.Join(dir, "log4j2.properties")
		if err := os.WriteFile(l4j, []byte(connectLog4j(w.Log)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(dir, "worker.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		// Small heap and C1 only: the worker runs a few connectors for a
		// test on a 2-core machine, and starts about twice as fast so.
		w.cmd = exec.Command(java, "-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
			"-Djava.awt.headless=true", "-Dlog4j2.configurationFile="+l4j,
			"-cp", filepath.Join(libs, "*"), "org.apache.kafka.connect.cli.ConnectDistributed", props)
		w.cmd.Stdout, w.cmd.Stderr = out, out
		if err := w.cmd.Start(); err != nil {
			out.Close()
			t.Fatalf("testkit: starting Kafka Connect: %v", err)
		}
		out.Close()
		w.done = make(chan error, 1)
		go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(w.cmd, w.done)
		if err := w.waitREST(90 * time.Second); err != nil {
			exited := w.stop()
			if exited && attempt == 1 && strings.Contains(w.tail(), "Address already in use") {
				continue
			}
			t.Fatalf("testkit: Kafka Connect at %s: %v\nlog tail:\n%s", w.URL, err, w.tail())
		}
		break
	}
	t.Cleanup(func() {
		w.stop()
		// The real clusters are shared: leave them as found.
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addrs...))
		if err != nil {
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		adm := kadm.NewClient(cl)
		_, _ = adm.DeleteTopics(ctx, id+".configs", id+".offsets", id+".status")
		_, _ = adm.DeleteGroups(ctx, id)
	})
	// A distributed worker answers REST before it has joined its group;
	// it is ready once it accepts a connector config (see PutConnector).
	w.Ready = time.Since(t0)
	return w
}

func connectWorkerProps(e Endpoint, id string, port int) string {
	return strings.Join([]string{
		"bootstrap.servers=" + strings.Join(e.Addrs, ","),
		"group.id=" + id,
		"config.storage.topic=" + id + ".configs",
		"offset.storage.topic=" + id + ".offsets",
		"status.storage.topic=" + id + ".status",
		"config.storage.replication.factor=1",
		"offset.storage.replication.factor=1",
		"status.storage.replication.factor=1",
		"offset.storage.partitions=1",
		"status.storage.partitions=1",
		"key.converter=org.apache.kafka.connect.json.JsonConverter",
		"value.converter=org.apache.kafka.connect.json.JsonConverter",
		fmt.Sprintf("listeners=http://127.0.0.1:%d", port),
		"rest.advertised.host.name=127.0.0.1",
		"connector.client.config.override.policy=All",
		// The classpath's connectors declare themselves to the
		// ServiceLoader; skipping the reflective scan of every jar halves
		// the worker's start on a busy 2-core machine (7 s instead of 15 s).
		"plugin.discovery=service_load",
		"offset.flush.interval.ms=1000",
	}, "\n") + "\n"
}

func connectLog4j(file string) string {
	return `status = error
appender.f.type = File
appender.f.name = F
appender.f.fileName = ` + file + `
appender.f.layout.type = PatternLayout
appender.f.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.f.ref = F
`
}

// connectLibs finds the Connect classpath: $GODWIT_CONNECT_LIBS, else
// $GODWIT_CACHE/connect-mirror-*/libs (the cache scripts/kafka.sh uses),
// else <repo>/.cache/connect-mirror-*/libs.
func connectLibs() (string, error) {
	if d := os.Getenv(EnvConnectLibs); d != "" {
		return d, nil
	}
	if c := os.Getenv("GODWIT_CACHE"); c != "" {
		if jars, _ := filepath.Glob(filepath.Join(c, "connect-mirror-*", "libs", "connect-runtime-*.jar")); len(jars) > 0 {
			return filepath.Dir(jars[len(jars)-1]), nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory: set %s to a Kafka Connect classpath folder", EnvConnectLibs)
		}
		dir = parent
	}
	jars, _ := filepath.Glob(filepath.Join(dir, ".cache", "connect-mirror-*", "libs", "connect-runtime-*.jar"))
	if len(jars) == 0 {
		return "", fmt.Errorf("no Kafka Connect classpath in %s/.cache (scripts/kafka.sh fetch brings it; or set %s)", dir, EnvConnectLibs)
	}
	return filepath.Dir(jars[len(jars)-1]), nil
}

func loopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testkit: finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (w *ConnectWorker) waitREST(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-w.done:
			w.done <- err
			return fmt.Errorf("the worker exited: %v", err)
		default:
		}
		resp, err := hc.Get(w.URL + "/connectors")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("REST API not answering within %v (last: %v)", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the worker (SIGTERM, then SIGKILL after 20s) and reports
// whether it had already exited.
func (w *ConnectWorker) stop() (exited bool) {
	select {
	case err := <-w.done:
		w.done <- err
		return true
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.done:
		w.done <- err
	case <-time.After(20 * time.Second):
		_ = w.cmd.Process.Kill()
		w.done <- <-w.done
	}
	return false
}

func (w *ConnectWorker) tail() string {
	var b strings.Builder
	for _, f := range []string{filepath.Join(filepath.Dir(w.Log), "worker.out"), w.Log} {
		data, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		b.WriteString(strings.Join(lines, "\n") + "\n")
	}
	return b.String()
}

// PutConnector creates (or updates) connector name with config through the
// REST API, retrying while the worker is still joining its group.
func (w *ConnectWorker) PutConnector(t testing.TB, name string, config map[string]string) {
	t.Helper()
	body, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	var last string
	Eventually(t, 60*time.Second, func() (bool, string) {
		req, err := http.NewRequest(http.MethodPut, w.URL+"/connectors/"+name+"/config", bytes.NewReader(body))
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, fmt.Sprintf("PUT connector %s: %v", name, err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		last = fmt.Sprintf("PUT connector %s: %d %s", name, resp.StatusCode, msg)
		switch {
		case resp.StatusCode/100 == 2:
			return true, ""
		case resp.StatusCode == http.StatusBadRequest:
			t.Fatalf("testkit: %s", last) // a bad config does not get better
		}
		return false, last // 409 rebalancing, 500 not yet joined
	})
}

// ConnectorStatus is GET /connectors/<name>/status.
type ConnectorStatus struct {
	Connector struct {
		State string `json:"state"`
	} `json:"connector"`
	Tasks []struct {
		ID    int    `json:"id"`
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"tasks"`
}

// WaitConnector polls connector name's status until ok accepts it.
func (w *ConnectWorker) WaitConnector(t testing.TB, name string, timeout time.Duration, ok func(ConnectorStatus) bool) ConnectorStatus {
	t.Helper()
	var st ConnectorStatus
	Eventually(t, timeout, func() (bool, string) {
		resp, err := http.Get(w.URL + "/connectors/" + name + "/status")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		st = ConnectorStatus{}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &st) != nil {
			return false, fmt.Sprintf("status of %s: %d %s", name, resp.StatusCode, body)
		}
		return ok(st), fmt.Sprintf("status of %s: %s", name, body)
	})
	return st
}
