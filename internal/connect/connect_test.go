package connect

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The testdata files were captured from a real Kafka Connect 4.3.1 worker
// (distributed mode, MirrorMaker 2 classpath) against the project's real
// secondary cluster; see testdata/README.md.
func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseExpandedCapturedResponse(t *testing.T) {
	cs, err := ParseExpanded(readTestdata(t, "connectors-expanded-4.3.1.json"))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		state string
		tasks string // task states in id order
		cause string // substring of the failure summary (connector's, else task 0's)
	}
	wants := map[string]want{
		"badadmin":  {StateRunning, "RUNNING", ""},
		"badauth":   {StateRunning, "FAILED", "SaslAuthenticationException: Authentication failed during authentication due to invalid credentials"},
		"badpolicy": {StateFailed, "", "class java.lang.String is not an instance of org.apache.kafka.connect.mirror.ReplicationPolicy"},
		"healthy":   {StateRunning, "RUNNING", ""},
		"paused":    {StatePaused, "PAUSED", ""},
		"stopped":   {StateStopped, "", ""},
		"toolarge":  {StateRunning, "FAILED", "RecordTooLargeException"},
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
		w, ok := wants[c.Name]
		if !ok {
			t.Errorf("unexpected connector %q", c.Name)
			continue
		}
		var ts []string
		for _, tk := range c.Tasks {
			ts = append(ts, tk.State)
			if tk.WorkerID != "127.0.0.1:18083" {
				t.Errorf("%s task %d worker %q", c.Name, tk.ID, tk.WorkerID)
			}
		}
		if c.State != w.state || strings.Join(ts, ",") != w.tasks {
			t.Errorf("%s: state %s tasks %v, want %s tasks %s", c.Name, c.State, ts, w.state, w.tasks)
		}
		if c.Type != "source" || c.Class != "org.apache.kafka.connect.mirror.MirrorHeartbeatConnector" || c.WorkerID != "127.0.0.1:18083" {
			t.Errorf("%s: type %q class %q worker %q", c.Name, c.Type, c.Class, c.WorkerID)
		}
		trace := c.Trace
		if trace == "" && len(c.Tasks) > 0 {
			trace = c.Tasks[0].Trace
		}
		if w.cause == "" && trace != "" || !strings.Contains(trace, w.cause) {
			t.Errorf("%s: trace summary %q, want one containing %q", c.Name, trace, w.cause)
		}
		if strings.Contains(trace, "\tat ") || strings.Contains(trace, "at org.apache") {
			t.Errorf("%s: summary kept stack frames: %q", c.Name, trace)
		}
	}
	if got := strings.Join(names, ","); got != "badadmin,badauth,badpolicy,healthy,paused,stopped,toolarge" {
		t.Errorf("connectors %s, want sorted by name", got)
	}
	// The listing's configs carry a SASL JAAS line with a password: no
	// part of a config may survive parsing.
	for _, c := range cs {
		for _, s := range []string{c.Trace, c.Class, c.Name} {
			if strings.Contains(s, "password") {
				t.Errorf("%s: config leaked: %q", c.Name, s)
			}
		}
	}
}

func TestSummarizeKeepsFirstLineAndCauses(t *testing.T) {
	cs, err := ParseExpanded(readTestdata(t, "connectors-expanded-4.3.1.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name != "badauth" {
			continue
		}
		got := c.Tasks[0].Trace
		want := "org.apache.kafka.connect.errors.ConnectException: Unrecoverable exception from producer send callback\n" +
			"Caused by: org.apache.kafka.common.errors.SaslAuthenticationException: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
		if got != want {
			t.Errorf("summary:\n%s\nwant:\n%s", got, want)
		}
		if rc := RootCause(got); !strings.HasPrefix(rc, "org.apache.kafka.common.errors.SaslAuthenticationException:") {
			t.Errorf("root cause %q", rc)
		}
		return
	}
	t.Fatal("badauth not in the capture")
}

func TestParseExpandedRejectsOtherAnswers(t *testing.T) {
	for _, body := range []string{`["a","b"]`, `<html>nginx</html>`, ``} {
		if _, err := ParseExpanded([]byte(body)); err == nil {
			t.Errorf("%q accepted as a connector listing", body)
		}
	}
}

func TestParseURL(t *testing.T) {
	for _, bad := range []string{"", "connect:8083", "ftp://h:1", "http://user:secret@h:8083", "http://h:8083/?x=1", "http://"} {
		_, err := ParseURL(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: error shows the password: %v", bad, err)
		}
	}
	u, err := ParseURL("https://proxy.example/connect/")
	if err != nil || u.Path != "/connect" {
		t.Errorf("path prefix: %v %v", u, err)
	}
}

// TestUnreachableNamesURLAndWhatToCheck: a port nothing listens on.
func TestUnreachableNamesURLAndWhatToCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := New(Config{URL: "http://" + addr, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Connectors(context.Background())
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	for _, s := range []string{"http://" + addr, "unreachable", "REST listener"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

// TestErrorAnswers: Connect's own error body (captured 404) is shown, and
// a 401 says which settings to check.
func TestErrorAnswers(t *testing.T) {
	notFound := readTestdata(t, "status-404-4.3.1.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/connectors" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write(notFound)
	}))
	defer srv.Close()
	c, err := New(Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Connectors(context.Background())
	if err == nil || !strings.Contains(err.Error(), "404 Not Found: No status found for connector nope") || !strings.Contains(err.Error(), "without /connectors") {
		t.Errorf("404: %v", err)
	}
	c, _ = New(Config{URL: srv.URL + "/auth"})
	_, err = c.Connectors(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "connect.username") {
		t.Errorf("401: %v", err)
	}
}

// TestTLSAndBasicAuth serves the captured listing over https with basic
// auth: the client must verify the server with ca_file and send the
// credentials; without the CA it must say so.
func TestTLSAndBasicAuth(t *testing.T) {
	listing := readTestdata(t, "connectors-expanded-4.3.1.json")
	root := readTestdata(t, "root-4.3.1.json")
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "drill" || p != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case r.URL.Path == "/":
			_, _ = w.Write(root)
		case r.URL.Path == "/connectors" && strings.Join(r.URL.Query()["expand"], ",") == "status,info":
			_, _ = w.Write(listing)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{URL: srv.URL, CAFile: ca, Username: "drill", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cs, err := c.Connectors(ctx)
	if err != nil || len(cs) != 7 {
		t.Fatalf("listing over TLS with auth: %d connectors, %v", len(cs), err)
	}
	w, err := c.Worker(ctx)
	if err != nil || w.Version != "4.3.1" || w.KafkaClusterID != "DadTN3GQRFmC0mvn4y98yA" {
		t.Errorf("worker %+v, %v", w, err)
	}

	c, _ = New(Config{URL: srv.URL, CAFile: ca, Username: "drill", Password: "wrong"})
	if _, err := c.Connectors(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong password: %v", err)
	}
	c, _ = New(Config{URL: srv.URL, Username: "drill", Password: "s3cret"})
	if _, err := c.Connectors(ctx); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("no CA: %v", err)
	}
	if _, err := New(Config{URL: strings.Replace(srv.URL, "https", "http", 1), CAFile: ca}); err == nil {
		t.Error("ca_file with an http URL accepted")
	}
}
