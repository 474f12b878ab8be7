package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/metasync"
	"github.com/godwit/godwit/internal/naming"
)

// pingResult is one cluster's reachability, measured once per Run.
type pingResult struct {
	latency   time.Duration
	clusterID string
	err       error
}

// flowAudit audits one flow; it gathers what several checks share (the
// selected topics, the metadata sync plan) once.
type flowAudit struct {
	o      *Options
	f      *config.Flow
	policy naming.Policy
	pings  map[string]pingResult

	src, dst     *cluster.Cluster
	scl, dcl     *kgo.Client
	sadm, dadm   *kadm.Client
	srcOK, dstOK bool
	now          time.Time

	// Shared by the checks, filled by gather.
	gatherErr error
	selected  kadm.TopicDetails // source topics the flow selects
	names     []string          // their names, sorted, heartbeat topics left out (workload only)
	plan      *metasync.Plan
}

func newFlowAudit(o *Options, f *config.Flow, pings map[string]pingResult) *flowAudit {
	return &flowAudit{o: o, f: f, policy: naming.For(f), pings: pings}
}

func (fa *flowAudit) close() {
	if fa.scl != nil {
		fa.scl.Close()
	}
	if fa.dcl != nil {
		fa.dcl.Close()
	}
}

// run returns the flow's checks in their fixed order.
func (fa *flowAudit) run(ctx context.Context) []Check {
	var out []Check
	add := func(c Check) {
		c.Flow = fa.f.Name
		out = append(out, c)
	}
	src, serr := cluster.New(fa.o.Config, fa.f.Source)
	dst, derr := cluster.New(fa.o.Config, fa.f.Target)
	add(fa.reachable(ctx, IDSourceReachable, "source", fa.f.Source, src, serr))
	add(fa.reachable(ctx, IDTargetReachable, "target", fa.f.Target, dst, derr))
	fa.src, fa.dst = src, dst
	fa.now = fa.o.Now()
	if fa.srcOK {
		fa.scl, serr = src.Client("audit", nil, kgo.RetryTimeout(15*time.Second))
		if serr != nil {
			fa.srcOK = false
		} else {
			fa.sadm = kadm.NewClient(fa.scl)
		}
	}
	if fa.dstOK {
		fa.dcl, derr = dst.Client("audit", nil, kgo.RetryTimeout(15*time.Second))
		if derr != nil {
			fa.dstOK = false
		} else {
			fa.dadm = kadm.NewClient(fa.dcl)
		}
	}
	both := fa.srcOK && fa.dstOK
	if both {
		fa.gather(ctx)
	}
	type step struct {
		id, title string
		needSrc   bool
		needDst   bool
		fn        func(context.Context) Check
	}
	steps := []step{
		{IDTopicsPresent, "every selected source topic exists on the target with the same partition count", true, true, fa.topicsPresent},
		{IDConfigDrift, "target topic configs follow the source (excluded configs left out)", true, true, fa.configDrift},
		{IDRetention, "target retention is at least the source's", true, true, fa.retention},
		{IDStandbyRetention, "what the standby stores and what a shorter standby retention would save", true, true, fa.standbyRetention},
		{IDACLDrift, "the target grants what the source grants (ACLs the flow copies)", true, true, fa.acls},
		{IDGroups, "consumer groups with offsets on replicated topics have a fresh checkpoint", true, true, fa.groups},
		{IDLag, "replication lag is within rpo_objective", false, true, fa.lag},
		{IDHeartbeat, "heartbeats arrive on the target within rpo_objective", false, true, fa.heartbeat},
		{IDCapacity, "the target has the brokers and free disk for the replicated data", true, true, fa.capacity},
		{IDInternalTopics, "godwit's internal topics exist", true, true, fa.internalTopics},
		{IDCutoverHook, "a cutover hook is configured", false, false, fa.cutoverHook},
		{IDDrill, "a failover drill succeeded recently", false, false, fa.drill},
	}
	if fa.f.SchemasEnabled() {
		steps = append(steps, step{IDSchemaParity, "records on the target decode through the target's schema registry to the source's schemas; subjects, versions and compatibility match", true, true, fa.schemaParity})
	}
	if fa.o.Profile == ProfileMSKReplicator {
		steps = append(steps,
			step{IDMSKTopics, "MSK Replicator: at most 750 topics per replicator", true, false, fa.mskTopics},
			step{IDMSKRecordSize, "MSK Replicator: records fit its maximum record size", true, false, fa.mskRecordSize},
			step{IDMSKThroughput, "MSK Replicator: source throughput fits one replicator", true, false, fa.mskThroughput},
		)
	}
	for _, s := range steps {
		var c Check
		switch {
		case s.needSrc && !fa.srcOK:
			c = notChecked(fmt.Sprintf("source cluster %s is unreachable (see %s)", fa.f.Source, IDSourceReachable))
		case s.needDst && !fa.dstOK:
			c = notChecked(fmt.Sprintf("target cluster %s is unreachable (see %s)", fa.f.Target, IDTargetReachable))
		case s.needSrc && s.needDst && fa.gatherErr != nil && s.id != IDInternalTopics:
			c = Check{Status: Fail, Evidence: fa.gatherErr.Error(),
				Remedy: "grant godwit's principal the read permissions in docs/security.md (audit needs the same as godwit sync plan) and run the audit again"}
		default:
			c = s.fn(ctx)
		}
		c.ID, c.Title = s.id, s.title
		add(c)
	}
	return out
}

func notChecked(why string) Check {
	return Check{Status: Warn, Evidence: "not checked: " + why, Remedy: "make the cluster reachable and run the audit again"}
}

// reachable pings a cluster (cached per alias within a Run).
func (fa *flowAudit) reachable(ctx context.Context, id, role, alias string, c *cluster.Cluster, newErr error) Check {
	ch := Check{ID: id, Title: fmt.Sprintf("%s cluster %s is reachable and authenticated", role, alias)}
	if newErr != nil {
		ch.Status, ch.Evidence = Fail, newErr.Error()
		ch.Remedy = "define the cluster under clusters: in the config"
		return ch
	}
	pr, ok := fa.pings[alias]
	if !ok {
		start := time.Now()
		cid, err := c.Ping(ctx, fa.o.PingTimeout)
		pr = pingResult{latency: time.Since(start), clusterID: cid, err: err}
		fa.pings[alias] = pr
	}
	sec := securityOf(c.Config)
	ch.Details = map[string]any{
		"cluster": alias, "bootstrap_servers": c.Config.BootstrapServers,
		"latency_ms": float64(pr.latency.Microseconds()) / 1000, "cluster_id": pr.clusterID, "security": sec,
	}
	if pr.err != nil {
		ch.Status = Fail
		ch.Evidence = fmt.Sprintf("no metadata answer within %s (%s): %v", fmtDur(fa.o.PingTimeout), sec, pr.err)
		ch.Remedy = "check bootstrap_servers, network and firewall, and the cluster's tls/sasl settings (godwit config check -c FILE; docs/security.md)"
		return ch
	}
	if role == "source" {
		fa.srcOK = true
	} else {
		fa.dstOK = true
	}
	ch.Status = Pass
	ch.Evidence = fmt.Sprintf("cluster %s answered a metadata request in %s (%s)", alias, fmtDur(pr.latency), sec)
	return ch
}

func securityOf(c *config.Cluster) string {
	tls := "plaintext"
	if c.TLS != nil && (c.TLS.Enabled == nil || *c.TLS.Enabled) {
		tls = "TLS"
		if c.TLS.CertFile != "" {
			tls = "mutual TLS"
		}
	}
	switch {
	case c.SASL == nil:
		return tls + ", no SASL"
	case c.SASL.Username != "":
		return fmt.Sprintf("%s, SASL %s as %q", tls, c.SASL.Mechanism, c.SASL.Username)
	default:
		return fmt.Sprintf("%s, SASL %s", tls, c.SASL.Mechanism)
	}
}

// gather reads the selected source topics and the metadata sync plan.
func (fa *flowAudit) gather(ctx context.Context) {
	s := metasync.New(fa.f, fa.scl, fa.dcl, fa.o.Logger, nil)
	sel, err := s.SourceTopics(ctx)
	if err != nil {
		fa.gatherErr = cluster.Explain(fa.src, err)
		return
	}
	fa.selected = sel
	for n := range sel {
		// Workload only: heartbeat topics are godwit's (or MM2's) own
		// and not counted among the selected topics.
		if fa.policy.Heartbeat(n) {
			continue
		}
		fa.names = append(fa.names, n)
	}
	sort.Strings(fa.names)
	p, err := s.Plan(ctx, sel)
	if err != nil {
		fa.gatherErr = err
		return
	}
	fa.plan = p
}

// cutoverHook: is there a command that moves the clients?
func (fa *flowAudit) cutoverHook(context.Context) Check {
	c := fa.o.Config.Cutover
	prog := commandName(c.Command)
	if prog == "" {
		return Check{Status: Warn, Evidence: "no cutover.command configured",
			Remedy: "set cutover.command (run by godwit failover once the target is writable: switch DNS, bootstrap lists or service discovery to the target), or document how clients are moved and rehearse it"}
	}
	// Only the program: the rest of the command line may hold secrets.
	return Check{Status: Pass, Evidence: fmt.Sprintf("cutover.command runs %s (arguments not shown), timeout %s", prog, fmtDur(c.Timeout.D()))}
}

// commandName is the program a shell command line runs: its first word
// after leading VAR=value assignments (which are not shown either).
func commandName(cmd string) string {
	for _, w := range strings.Fields(cmd) {
		if i := strings.IndexByte(w, '='); i > 0 && !strings.ContainsAny(w[:i], `/"'$`) {
			continue
		}
		return w
	}
	return ""
}

// drill judges the flow's drill reports under drill.reports by the newest
// drill: PASS when it met its objectives within drill.max_age; FAIL when
// it missed one within max_age (recent measured evidence that a failover
// now would miss the objectives); WARN when the newest passing drill is
// older than max_age, there is none, or nothing can be judged.
func (fa *flowAudit) drill(context.Context) Check {
	d := fa.o.Config.Drill
	flow := fa.f.Name
	run := fmt.Sprintf("run `godwit drill -c FILE --flow '%s'` (it writes its report into drill.reports)", flow)
	if d.Reports == "" {
		return Check{Status: Warn, Evidence: "godwit drill reports are not configured (drill.reports is empty)",
			Remedy: "set drill.reports to a directory and " + run + ", at least every drill.max_age"}
	}
	reports, bad, err := drillreport.LoadReports(d.Reports)
	if err != nil {
		return Check{Status: Warn, Evidence: fmt.Sprintf("cannot read drill.reports %s: %v", d.Reports, err),
			Remedy: "make the directory readable by the user running godwit audit"}
	}
	maxAge := d.MaxAge.D()
	det := map[string]any{"reports_dir": d.Reports, "max_age_s": maxAge.Seconds(), "unreadable": len(bad)}
	unreadable := ""
	if len(bad) > 0 {
		unreadable = fmt.Sprintf("; %s could not be read (%v)", plural(len(bad), "report", "reports"), bad[0])
	}
	l := drillreport.LatestBy(reports, func(r *drillreport.Report) string { return r.Flow })[flow]
	if l == nil {
		det["reports"] = 0
		return Check{Status: Warn, Details: det,
			Evidence: fmt.Sprintf("no drill report for flow %s in %s (%s of other flows)%s", flow, d.Reports, plural(len(reports), "report", "reports"), unreadable),
			Remedy:   run}
	}
	det["reports"] = l.Reports
	newest, passing := l.Newest, l.NewestPassing
	det["newest"] = drillDetails(newest, fa.now)
	if passing != nil {
		det["newest_passing"] = drillDetails(passing, fa.now)
	}
	age := fa.now.Sub(newest.Finished())
	switch {
	case newest.Report.Passed && age <= maxAge:
		return Check{Status: Pass, Details: det,
			Evidence: "newest drill passed: " + drillSummary(newest, fa.now) + fmt.Sprintf(" (max_age %s)", fmtAge(maxAge)) + unreadable}
	case !newest.Report.Passed && age <= maxAge:
		ev := fmt.Sprintf("newest drill missed %s: %s", newest.Report.Missed(), drillSummary(newest, fa.now))
		if passing != nil {
			ev += fmt.Sprintf("; newest passing drill ended %s ago", fmtAge(fa.now.Sub(passing.Finished())))
		}
		return Check{Status: Fail, Details: det, Evidence: ev + unreadable,
			Remedy: fmt.Sprintf("read the drill's report (%s), fix what made it miss the objective, then %s", filepath.Join(filepath.Dir(newest.Path), drillreport.FileHTML), run)}
	case passing != nil:
		ev := fmt.Sprintf("newest passing drill is older than max_age %s: %s", fmtAge(maxAge), drillSummary(passing, fa.now))
		if passing != newest {
			ev += fmt.Sprintf("; the newest drill (ended %s ago) missed %s", fmtAge(age), newest.Report.Missed())
		}
		return Check{Status: Warn, Details: det, Evidence: ev + unreadable, Remedy: run}
	default:
		return Check{Status: Warn, Details: det,
			Evidence: fmt.Sprintf("no drill of flow %s passed; the newest, older than max_age %s, missed %s: %s", flow, fmtAge(maxAge), newest.Report.Missed(), drillSummary(newest, fa.now)) + unreadable,
			Remedy:   run}
	}
}

// drillSummary is one drill's evidence: when, what, the measured figures.
func drillSummary(s *drillreport.Stored, now time.Time) string {
	r := s.Report
	var rpoObj, rtoObj float64
	if o, ok := r.Objective("rpo"); ok {
		rpoObj = o.Target
	}
	if o, ok := r.Objective("rto"); ok {
		rtoObj = o.Target
	}
	sec := func(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }
	return fmt.Sprintf("scenario %q, fault %s, ended %s (%s ago); RPO %s (objective %s), RTO %s (objective %s), %d acknowledged records lost, %d replayed by offset translation; report %s",
		r.Name, r.Fault, s.Finished().UTC().Format(time.RFC3339), fmtAge(now.Sub(s.Finished())),
		fmtDur(sec(r.RPOSeconds)), fmtDur(sec(rpoObj)), fmtDur(sec(r.RTO.Total)), fmtDur(sec(rtoObj)),
		r.Totals.Lost, r.Totals.ReplayedTranslation, s.Path)
}

func drillDetails(s *drillreport.Stored, now time.Time) map[string]any {
	r := s.Report
	return map[string]any{
		"report": s.Path, "scenario": r.Name, "fault": r.Fault, "passed": r.Passed,
		"finished_at": s.Finished().UTC().Format(time.RFC3339), "age_s": now.Sub(s.Finished()).Seconds(),
		"rpo_s": r.RPOSeconds, "rto_s": r.RTO.Total, "lost": r.Totals.Lost,
		"replayed": r.Totals.Replayed, "replayed_translation": r.Totals.ReplayedTranslation,
		"objectives": r.Objectives,
	}
}

// fmtAge is fmtDur for ages that run into days.
func fmtAge(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return fmtDur(d)
}

// Formatting shared by the checks. Durations and sizes have one format
// each, so tests can normalise them.

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func fmtBytes(b int64) string {
	const unit = 1000
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	f := float64(b)
	for _, u := range []string{"kB", "MB", "GB", "TB", "PB"} {
		f /= unit
		if f < unit {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return fmt.Sprintf("%.1f EB", f/unit)
}

// list joins up to max items and says how many more there are.
func list(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, "; ")
	}
	return strings.Join(items[:max], "; ") + fmt.Sprintf("; and %d more", len(items)-max)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func (fa *flowAudit) syncHint() string {
	return fmt.Sprintf("run `godwit sync plan -c FILE --flow '%s'` to see the changes and `godwit sync apply` (or a running replicator) to make them", fa.f.Name)
}
