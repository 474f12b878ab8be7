// Package connect reads the state of a Kafka Connect cluster through its REST
// API: which connectors exist, their type and class, and the state, worker
// and failure trace of each connector and task. godwit drill uses it to show
// that the standby region's connectors work after a failover: a Kafka
// cluster can be up while its connectors cannot read, write or authenticate.
//
// Only what the REST API reports is kept; connector configs are never kept
// (they routinely hold credentials).
package connect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

// Connector and task states as Kafka Connect reports them.
const (
	StateRunning    = "RUNNING"
	StatePaused     = "PAUSED"
	StateStopped    = "STOPPED"
	StateFailed     = "FAILED"
	StateUnassigned = "UNASSIGNED"
	StateRestarting = "RESTARTING"
)

// Connector is one connector's status.
type Connector struct {
	Name string `json:"name"`
	// Type is "source" or "sink" (as reported; "unknown" while a worker
	// cannot load the plugin).
	Type string `json:"type"`
	// Class is the connector.class of its config; nothing else of the
	// config is kept.
	Class    string `json:"class,omitempty"`
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	// Trace is the failure summary of a FAILED connector (see Summarize).
	Trace string `json:"trace,omitempty"`
	Tasks []Task `json:"tasks"`
}

// Task is one task's status.
type Task struct {
	ID       int    `json:"id"`
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	// Trace is the failure summary of a FAILED task (see Summarize).
	Trace string `json:"trace,omitempty"`
}

// TaskCounts counts c's tasks by state.
func (c Connector) TaskCounts() map[string]int {
	m := map[string]int{}
	for _, t := range c.Tasks {
		m[t.State]++
	}
	return m
}

// Worker is what GET / reports about the worker that answered.
type Worker struct {
	Version        string `json:"version"`
	Commit         string `json:"commit"`
	KafkaClusterID string `json:"kafka_cluster_id"`
}

// Config tells a Client where and how to reach the REST API.
type Config struct {
	// URL is the worker's REST base URL (e.g. http://connect:8083), with
	// a path prefix when it sits behind a proxy.
	URL string
	// Username and Password, if Username is set, are sent as HTTP basic
	// auth (Connect's BasicAuthSecurityRestExtension).
	Username, Password string
	// CAFile is a PEM bundle that verifies an https URL's certificate
	// (default: the system's roots).
	CAFile string
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
}

// Client reads a Connect cluster's state.
type Client struct {
	base *url.URL
	cfg  Config
	http *http.Client
}

// New checks cfg and returns a client; it does not contact the worker.
func New(cfg Config) (*Client, error) {
	u, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	// HTTPS_PROXY/NO_PROXY apply as for any HTTP client (loopback is
	// never proxied): some regions' Connect clusters are only reachable
	// through one.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		if u.Scheme != "https" {
			return nil, fmt.Errorf("kafka connect: a CA file (%s) is only used with an https URL, and %s is %s", cfg.CAFile, u.Redacted(), u.Scheme)
		}
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka connect: reading the CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka connect: %s holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &Client{base: u, cfg: cfg, http: &http.Client{Transport: tr, Timeout: cfg.Timeout}}, nil
}

// ParseURL checks a REST base URL: http or https, a host, no credentials
// (they would end up in reports and logs; use Config.Username/Password),
// no query.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("kafka connect url %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("kafka connect url %q: use http://host:port or https://host:port (the worker's REST listener)", raw)
	case u.Host == "":
		return nil, fmt.Errorf("kafka connect url %q: no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("kafka connect url %s: remove the credentials from the URL and set username with password_env or password_file", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("kafka connect url %q: give the REST base URL without a query or fragment", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// URL is the base URL the client queries.
func (c *Client) URL() string { return c.base.String() }

// Worker returns what GET / reports: version and the Kafka cluster id
// the worker stores its state in.
func (c *Client) Worker(ctx context.Context) (Worker, error) {
	var w Worker
	body, err := c.get(ctx, "/", nil)
	if err != nil {
		return w, err
	}
	if err := json.Unmarshal(body, &w); err != nil || w.Version == "" {
		return w, fmt.Errorf("kafka connect at %s: GET / did not answer like a Kafka Connect worker (%s); check that the URL is the worker's REST listener", c.base, snippet(body))
	}
	return w, nil
}

// Connectors lists every connector with its status, sorted by name, in
// one request: GET /connectors?expand=status&expand=info.
func (c *Client) Connectors(ctx context.Context) ([]Connector, error) {
	body, err := c.get(ctx, "/connectors", url.Values{"expand": {"status", "info"}})
	if err != nil {
		return nil, err
	}
	cs, err := ParseExpanded(body)
	if err != nil {
		return nil, fmt.Errorf("kafka connect at %s: %w", c.base, err)
	}
	return cs, nil
}

func (c *Client) get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("kafka connect: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if c.cfg.Username != "" {
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, explain(c.base, err)
	}
	defer resp.Body.Close()
	// A status listing of thousands of connectors with traces stays well
	// below this; the limit only guards against a wrong URL streaming.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("kafka connect at %s: reading the answer to GET %s: %w", c.base, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, statusError(c.base, path, resp.StatusCode, body, c.cfg.Username != "")
	}
	return body, nil
}

// explain turns a transport error into what to check.
func explain(base *url.URL, err error) error {
	hint := "check that a Kafka Connect worker runs there, that its REST listener (listeners=) is reachable from this machine, and the URL's host and port"
	var cert x509.UnknownAuthorityError
	var host x509.HostnameError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &cert):
		hint = "the worker's certificate is not signed by a trusted CA: set connect.ca_file to the CA that signs it"
	case errors.As(err, &host):
		hint = "the worker's certificate does not name this host: use the host name its certificate was issued for"
	case errors.As(err, &dnsErr):
		hint = "the host name does not resolve from this machine: check the URL"
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		hint = "no answer in time: check that the worker is up and not overloaded, and that no firewall drops the connection"
	}
	return fmt.Errorf("kafka connect at %s is unreachable: %v; %s", base, err, hint)
}

// statusError reports a non-2xx answer with Connect's own message
// ({"error_code":...,"message":...}) when there is one.
func statusError(base *url.URL, path string, code int, body []byte, withAuth bool) error {
	var ce struct {
		Code    int    `json:"error_code"`
		Message string `json:"message"`
	}
	msg := snippet(body)
	if json.Unmarshal(body, &ce) == nil && ce.Message != "" {
		msg = ce.Message
	}
	hint := ""
	switch {
	case code == http.StatusUnauthorized && !withAuth:
		hint = "; the worker requires authentication: set connect.username and connect.password_env or password_file"
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		hint = "; check connect.username and its password"
	case code == http.StatusNotFound:
		hint = "; check that the URL is the worker's REST base URL (without /connectors)"
	}
	return fmt.Errorf("kafka connect at %s: GET %s answered %d %s: %s%s", base, path, code, http.StatusText(code), msg, hint)
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return "empty body"
	}
	return s
}

// expanded is one value of GET /connectors?expand=status&expand=info.
type expanded struct {
	Status *struct {
		Name      string `json:"name"`
		Connector struct {
			State    string `json:"state"`
			WorkerID string `json:"worker_id"`
			Trace    string `json:"trace"`
		} `json:"connector"`
		Tasks []struct {
			ID       int    `json:"id"`
			State    string `json:"state"`
			WorkerID string `json:"worker_id"`
			Trace    string `json:"trace"`
		} `json:"tasks"`
		Type string `json:"type"`
	} `json:"status"`
	Info *struct {
		Config map[string]string `json:"config"`
		Type   string            `json:"type"`
	} `json:"info"`
}

// ParseExpanded decodes the answer to GET
// /connectors?expand=status&expand=info: an object keyed by connector name.
// A connector whose status is missing (deleted while listing) gets state
// UNASSIGNED, as Connect reports a connector no worker runs.
func ParseExpanded(body []byte) ([]Connector, error) {
	var m map[string]expanded
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("the connector listing is not a Kafka Connect expand=status answer (%v): %s", err, snippet(body))
	}
	out := make([]Connector, 0, len(m))
	for name, e := range m {
		c := Connector{Name: name, State: StateUnassigned, Tasks: []Task{}}
		if e.Info != nil {
			c.Type, c.Class = e.Info.Type, e.Info.Config["connector.class"]
		}
		if s := e.Status; s != nil {
			if s.Type != "" {
				c.Type = s.Type
			}
			c.State, c.WorkerID = s.Connector.State, s.Connector.WorkerID
			c.Trace = Summarize(s.Connector.Trace)
			for _, t := range s.Tasks {
				c.Tasks = append(c.Tasks, Task{ID: t.ID, State: t.State, WorkerID: t.WorkerID, Trace: Summarize(t.Trace)})
			}
			sort.Slice(c.Tasks, func(i, j int) bool { return c.Tasks[i].ID < c.Tasks[j].ID })
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Summarize keeps what an operator needs from a Java stack trace: its
// first line (the exception Connect caught) and every "Caused by:" line
// (the root cause is usually the last), without the stack frames.
func Summarize(trace string) string {
	trace = strings.TrimSpace(trace)
	if trace == "" {
		return ""
	}
	lines := strings.Split(trace, "\n")
	keep := []string{strings.TrimSpace(lines[0])}
	for _, l := range lines[1:] {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "Caused by:") {
			keep = append(keep, l)
		}
	}
	s := strings.Join(keep, "\n")
	if len(s) > 2000 {
		s = s[:2000] + "..."
	}
	return s
}

// RootCause is the last line of a summary: the deepest cause.
func RootCause(summary string) string {
	if i := strings.LastIndexByte(summary, '\n'); i >= 0 {
		return strings.TrimPrefix(summary[i+1:], "Caused by: ")
	}
	return summary
}
