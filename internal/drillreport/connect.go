package drillreport

import (
	"fmt"
	"html/template"
	"os"
	"regexp"
	"strings"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/connect"
)

// ConnectSpec is the optional Kafka Connect check: the drill lists the
// connectors of the target region's Connect cluster before the fault and
// after the failover (a Kafka cluster can be up while its connectors
// cannot read, write or authenticate).
type ConnectSpec struct {
	// URL is a Connect worker's REST base URL in the target region; empty
	// turns the check off.
	URL string `yaml:"url" json:"url,omitempty"`
	// ExpectRunning names the connectors that must be RUNNING with every
	// task RUNNING after the failover (names or regexes, full match).
	// Empty: every connector is in scope, and only a FAILED connector or
	// task fails the check.
	ExpectRunning []string `yaml:"expect_running" json:"expect_running,omitempty"`
	// Timeout bounds each listing, and is how long the check after the
	// failover keeps polling for the connectors to be healthy.
	Timeout config.Duration `yaml:"timeout" json:"timeout"`
	// Username with PasswordEnv or PasswordFile: HTTP basic auth. The
	// password itself is never in the scenario: the scenario is copied
	// into the report.
	Username     string `yaml:"username" json:"username,omitempty"`
	PasswordEnv  string `yaml:"password_env" json:"password_env,omitempty"`
	PasswordFile string `yaml:"password_file" json:"password_file,omitempty"`
	// CAFile verifies an https URL's certificate (default: system roots).
	CAFile string `yaml:"ca_file" json:"ca_file,omitempty"`
}

// Enabled reports whether the scenario asks for the check.
func (c ConnectSpec) Enabled() bool { return c.URL != "" }

func (c *ConnectSpec) fill(d ConnectSpec) {
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
}

func (c ConnectSpec) validate() error {
	if !c.Enabled() {
		if len(c.ExpectRunning) > 0 || c.Username != "" || c.PasswordEnv != "" || c.PasswordFile != "" || c.CAFile != "" {
			return fmt.Errorf("connect: set connect.url (the Connect REST URL in the target region) for the other connect keys to take effect")
		}
		return nil
	}
	u, err := connect.ParseURL(c.URL)
	if err != nil {
		return fmt.Errorf("connect.url: %w", err)
	}
	if c.Timeout.D() <= 0 {
		return fmt.Errorf("connect.timeout must be positive")
	}
	if _, err := expectPatterns(c.ExpectRunning); err != nil {
		return err
	}
	hasPass := c.PasswordEnv != "" || c.PasswordFile != ""
	switch {
	case c.PasswordEnv != "" && c.PasswordFile != "":
		return fmt.Errorf("connect: set one of password_env and password_file")
	case c.Username != "" && !hasPass:
		return fmt.Errorf("connect.username needs password_env or password_file (a password is not written in the scenario: it is copied into the report)")
	case c.Username == "" && hasPass:
		return fmt.Errorf("connect: password_env or password_file without username")
	case c.CAFile != "" && u.Scheme != "https":
		return fmt.Errorf("connect.ca_file is only used with an https url")
	}
	return nil
}

// Patterns compiles ExpectRunning (full match each).
func (c ConnectSpec) Patterns() ([]*regexp.Regexp, error) { return expectPatterns(c.ExpectRunning) }

func expectPatterns(exprs []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(exprs))
	for i, e := range exprs {
		if strings.TrimSpace(e) == "" {
			return nil, fmt.Errorf("connect.expect_running[%d] is empty", i)
		}
		re, err := regexp.Compile("^(?:" + e + ")$")
		if err != nil {
			return nil, fmt.Errorf("connect.expect_running[%d] %q: %v", i, e, err)
		}
		out = append(out, re)
	}
	return out, nil
}

// Password is the basic-auth password from PasswordEnv or PasswordFile
// ("" without either).
func (c ConnectSpec) Password() (string, error) {
	switch {
	case c.PasswordEnv != "":
		v := os.Getenv(c.PasswordEnv)
		if v == "" {
			return "", fmt.Errorf("connect.password_env: environment variable %s is not set or empty", c.PasswordEnv)
		}
		return v, nil
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("connect.password_file: %w", err)
		}
		if p := strings.TrimRight(string(b), "\r\n"); p != "" {
			return p, nil
		}
		return "", fmt.Errorf("connect.password_file: %s is empty", c.PasswordFile)
	}
	return "", nil
}

// ConnectReport is the Kafka Connect part of a drill report.
type ConnectReport struct {
	URL           string         `json:"url"`
	ExpectRunning []string       `json:"expect_running"`
	Checks        []ConnectCheck `json:"checks"`
	// Pass: the last check (after the failover) found no problem.
	Pass bool `json:"pass"`
}

// ConnectCheck is one look at the Connect cluster.
type ConnectCheck struct {
	// Phase is "before fault", "after failover" or "after recovery".
	Phase string `json:"phase"`
	// At is when the check started, in seconds since the drill started;
	// Seconds is how long it took (after the failover: until the
	// connectors were healthy, or the timeout).
	At       float64 `json:"at_s"`
	Seconds  float64 `json:"seconds"`
	Attempts int     `json:"attempts"`
	// WorkerVersion and KafkaClusterID are what the worker that answered
	// reports about itself (GET /).
	WorkerVersion  string `json:"worker_version,omitempty"`
	KafkaClusterID string `json:"kafka_cluster_id,omitempty"`
	// Error is why the REST API could not be read (the connectors are
	// then unknown).
	Error      string              `json:"error,omitempty"`
	Connectors []connect.Connector `json:"connectors"`
	// Problems fail the objective (when this is the last check).
	Problems []string `json:"problems"`
	// Warnings are shown but fail nothing: FAILED connectors outside
	// expect_running, a worker on another Kafka cluster than the target.
	Warnings []string `json:"warnings"`
}

// Healthy reports whether the check read the REST API and found no problem.
func (c *ConnectCheck) Healthy() bool { return c.Error == "" && len(c.Problems) == 0 }

// Last is the report's last check (nil without any).
func (r *ConnectReport) Last() *ConnectCheck {
	if r == nil || len(r.Checks) == 0 {
		return nil
	}
	return &r.Checks[len(r.Checks)-1]
}

// Sentence is the report statement's clause about Kafka Connect.
func (r *ConnectReport) Sentence() string {
	last := r.Last()
	if last == nil || last.Phase == "before fault" {
		return "Kafka Connect at " + r.URL + " was not checked after the failover"
	}
	head := "Kafka Connect at " + r.URL + " " + last.Phase
	switch {
	case last.Error != "":
		return head + " could not be read (" + last.Error + ")"
	case !last.Healthy():
		ps := last.Problems
		more := ""
		if len(ps) > 3 {
			ps, more = ps[:3], fmt.Sprintf(" (and %d more)", len(last.Problems)-3)
		}
		return head + ": " + strings.Join(ps, "; ") + more
	case len(r.ExpectRunning) > 0:
		n := 0
		for _, c := range last.Connectors {
			if matchesAny(r.ExpectRunning, c.Name) {
				n++
			}
		}
		return fmt.Sprintf("%s: the %d expected connector(s) of %d RUNNING with every task", head, n, len(last.Connectors))
	default:
		return fmt.Sprintf("%s: no FAILED connector or task among %d", head, len(last.Connectors))
	}
}

func matchesAny(exprs []string, name string) bool {
	pats, _ := expectPatterns(exprs)
	for _, re := range pats {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// TaskStates is "0 RUNNING, 1 FAILED" (or "no tasks").
func TaskStates(c connect.Connector) string {
	if len(c.Tasks) == 0 {
		return "no tasks"
	}
	parts := make([]string, len(c.Tasks))
	for i, t := range c.Tasks {
		parts[i] = fmt.Sprintf("%d %s", t.ID, t.State)
	}
	return strings.Join(parts, ", ")
}

// shortClass drops a connector class's package.
func shortClass(class string) string {
	return class[strings.LastIndexByte(class, '.')+1:]
}

// traces lists the failure summaries of a check, one per FAILED connector
// or task.
func (c *ConnectCheck) traces() []string {
	var out []string
	for _, cn := range c.Connectors {
		if cn.Trace != "" {
			out = append(out, fmt.Sprintf("%s: %s", cn.Name, cn.Trace))
		}
		for _, t := range cn.Tasks {
			if t.Trace != "" {
				out = append(out, fmt.Sprintf("%s task %d: %s", cn.Name, t.ID, t.Trace))
			}
		}
	}
	return out
}

func (c *ConnectCheck) heading() string {
	s := fmt.Sprintf("%s: at %.1f s, took %s (%d request(s))", c.Phase, c.At, dur(c.Seconds), c.Attempts)
	if c.WorkerVersion != "" {
		s += fmt.Sprintf("; worker %s, Kafka cluster %s", c.WorkerVersion, c.KafkaClusterID)
	}
	return s
}

// Markdown renders the Kafka Connect section ("" without the check).
func (r *ConnectReport) Markdown() string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Kafka Connect\n\n`%s`", r.URL)
	if len(r.ExpectRunning) > 0 {
		fmt.Fprintf(&b, ", expected RUNNING: `%s`", strings.Join(r.ExpectRunning, "`, `"))
	}
	fmt.Fprintf(&b, ". Result: **%s**.\n", passWord(r.Pass))
	for i := range r.Checks {
		c := &r.Checks[i]
		fmt.Fprintf(&b, "\n### %s\n\n", c.heading())
		if c.Error != "" {
			fmt.Fprintf(&b, "Not read: %s\n", c.Error)
			continue
		}
		b.WriteString("| connector | type | class | state | worker | tasks |\n|---|---|---|---|---|---|\n")
		for _, cn := range c.Connectors {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", cn.Name, cn.Type, shortClass(cn.Class), cn.State, cn.WorkerID, TaskStates(cn))
		}
		for _, p := range c.Problems {
			fmt.Fprintf(&b, "\n- problem: %s", p)
		}
		for _, w := range c.Warnings {
			fmt.Fprintf(&b, "\n- warning: %s", w)
		}
		for _, t := range c.traces() {
			fmt.Fprintf(&b, "\n- trace %s", strings.ReplaceAll(t, "\n", " / "))
		}
		b.WriteString("\n")
	}
	return b.String()
}

var connectTmpl = template.Must(template.New("connect").Funcs(template.FuncMap{
	"pass": passWord, "tasks": TaskStates, "short": shortClass, "join": strings.Join,
}).Parse(`<h2 id="connect">Kafka Connect</h2>
<p><code>{{.URL}}</code>{{if .ExpectRunning}}, expected RUNNING: <code>{{join .ExpectRunning ", "}}</code>{{end}}. Result: <span class="{{pass .Pass}}">{{pass .Pass}}</span></p>
{{range .Checks}}<p><b>{{.Heading}}</b></p>
{{if .Error}}<p class="FAIL">Not read: {{.Error}}</p>
{{else}}<table><tr><th class="l">connector</th><th class="l">type</th><th class="l">class</th><th class="l">state</th><th class="l">worker</th><th class="l">tasks</th></tr>
{{range .Connectors}}<tr><td class="l">{{.Name}}</td><td class="l">{{.Type}}</td><td class="l" title="{{.Class}}">{{short .Class}}</td><td class="l">{{.State}}</td><td class="l">{{.WorkerID}}</td><td class="l">{{tasks .}}</td></tr>
{{end}}</table>
{{if or .Problems .Warnings .Traces}}<ul>{{range .Problems}}<li class="FAIL">{{.}}</li>{{end}}{{range .Warnings}}<li>warning: {{.}}</li>{{end}}{{range .Traces}}<li><pre style="white-space: pre-wrap; margin: 0">{{.}}</pre></li>{{end}}</ul>{{end}}
{{end}}{{end}}`))

// HTMLSection renders the Kafka Connect section of the HTML report ("" without
// the check).
func (r *ConnectReport) HTMLSection() template.HTML {
	if r == nil {
		return ""
	}
	type view struct {
		*ConnectCheck
		Heading string
		Traces  []string
	}
	data := struct {
		*ConnectReport
		Checks []view
	}{ConnectReport: r}
	for i := range r.Checks {
		c := &r.Checks[i]
		data.Checks = append(data.Checks, view{c, c.heading(), c.traces()})
	}
	var b strings.Builder
	if err := connectTmpl.Execute(&b, data); err != nil {
		return template.HTML("<p>Kafka Connect section: " + template.HTMLEscapeString(err.Error()) + "</p>")
	}
	return template.HTML(b.String())
}
