package drillreport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Files written by Write, in the output directory.
const (
	FileJSON     = "report.json"
	FileMarkdown = "report.md"
	FileHTML     = "report.html"
)

// JSON encodes the report (the stable contract).
func (r *Report) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Write writes report.json, report.md and report.html into dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := r.JSON()
	if err != nil {
		return err
	}
	h, err := r.HTML()
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{FileJSON: j, FileMarkdown: []byte(r.Markdown()), FileHTML: h} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func passWord(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func atRisk(v *int64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprint(*v)
}

// Markdown renders the report as Markdown.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# godwit drill: %s\n\n", r.Name)
	fmt.Fprintf(&b, "Flow `%s`, fault **%s**", r.Flow, r.Fault)
	if r.Mode != "" {
		fmt.Fprintf(&b, " (%s failover)", r.Mode)
	}
	fmt.Fprintf(&b, ", replicator %s, started %s, %.1f s. Result: **%s**.\n\n", r.Replicator, r.StartedAt.Format("2006-01-02 15:04:05Z"), r.Seconds, passWord(r.Passed))
	fmt.Fprintf(&b, "> %s\n\n", r.Statement)
	b.WriteString("## Objectives\n\n| objective | target | achieved | result |\n|---|---|---|---|\n")
	for _, o := range r.Objectives {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", strings.ToUpper(o.Name), dur(o.Target), dur(o.Achieved), passWord(o.Pass))
	}
	b.WriteString("\n## Workload and replication lag\n\n| phase | records/s | MB/s | max lag (s) | max lag (records) | mean lag (s) |\n|---|---|---|---|---|---|\n")
	for _, t := range r.Throughput {
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.3f | %d | %.3f |\n", t.Phase, t.RecordsPerSec, t.MBPerSec, t.MaxLagSeconds, t.MaxLagRecords, t.MeanLagSeconds)
	}
	b.WriteString("\n## Recovery (RTO)\n\n| phase | starts at (s) | seconds |\n|---|---|---|\n")
	for _, p := range r.RTO.Phases {
		fmt.Fprintf(&b, "| %s | %.2f | %.2f |\n", p.Name, p.Start, p.Seconds)
	}
	fmt.Fprintf(&b, "| **total** | %.2f | **%.2f** |\n", r.RTO.FaultAt, r.RTO.Total)
	t := r.Totals
	fmt.Fprintf(&b, "\n## Records\n\nacknowledged %d, on the target %d, lost %d, godwit reported at risk %s, replayed %d (after the last commit %d, after the last checkpoint %d, by offset translation %d), skipped %d, duplicates on the target %d, produce outcome unknown %d.\n\n",
		t.Acked, t.OnTarget, t.Lost, atRisk(t.AtRisk), t.Replayed, t.ReplayedUncommitted, t.ReplayedCheckpointLag, t.ReplayedTranslation, t.Skipped, t.Duplicates, t.Uncertain)
	b.WriteString(replayedLegend + "\n\n")
	b.WriteString("| topic | partition | last acked offset | target has through | acked | on target | lost | at risk | replayed | after last commit | after last checkpoint | by translation | skipped |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.Partitions {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %s | %d | %d | %d | %d | %d |\n", p.Topic, p.Partition, p.LastAckedOffset, p.TargetHasOffset, p.Acked, p.OnTarget, p.Lost, atRisk(p.AtRisk), p.Replayed, p.ReplayedUncommitted, p.ReplayedCheckpointLag, p.ReplayedTranslation, p.Skipped)
	}
	b.WriteString(r.Connect.Markdown())
	b.WriteString(r.Schemas.Markdown())
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	b.WriteString("\nAll figures were counted by the drill's own checker from sequence numbers in the records, never from the replicator's counters.\n")
	return b.String()
}

// replayedLegend says what the two replay columns count, in the Markdown
// and HTML reports.
const replayedLegend = "Replayed = after last commit + after last checkpoint + by translation, each target record placed by its source offset (godwit-origin headers). " +
	"*After last commit*: processed after the group's last commit the source acknowledged, so processed again: expected with at-least-once consumers. " +
	"*After last checkpoint*: committed on the source after the source offset the failover translated; an unplanned failover translates godwit's last checkpoint, at most checkpoint_interval behind the group's commits. " +
	"*By translation*: before the source offset the failover translated, yet processed again on the target: exact offset translation makes this 0."

// Chart geometry.
const (
	chartW, chartH         = 900, 320
	padL, padR, padT, padB = 60, 20, 20, 40
)

var bandColors = map[string]string{
	"steady": "#eef5ff", "peak": "#ffe9d6", "steady-after": "#eef5ff", "fault": "#ffd6d6",
	"declare": "#fff3c4", "failover": "#e4d8ff", "resume": "#d8f5e0", "recovery": "#d8f5e0", "drain": "#f0f0f0",
}

// lagSVG draws lag seconds over time with phase bands and the RPO line.
func (r *Report) lagSVG() template.HTML {
	var b strings.Builder
	tmax := math.Max(r.Seconds, 1)
	rpo := r.Scenario.Objectives.RPO.D().Seconds()
	var maxLag float64
	for _, s := range r.Lag {
		maxLag = math.Max(maxLag, s.Seconds)
	}
	// Scale to the lag; include the RPO objective unless it is far above
	// (then its line sits on the top edge, marked off scale).
	ymax := math.Max(maxLag*1.25, 0.1)
	offScale := rpo > 4*ymax
	if !offScale {
		ymax = math.Max(ymax, rpo*1.2)
	}
	x := func(t float64) float64 { return padL + t/tmax*float64(chartW-padL-padR) }
	y := func(v float64) float64 { return float64(chartH-padB) - v/ymax*float64(chartH-padT-padB) }
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" id="lag-chart" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, chartW, chartH, chartW, chartH)
	for _, sp := range r.Phases {
		c := bandColors[sp.Name]
		if c == "" {
			c = "#f7f7f7"
		}
		end := sp.End
		if end == 0 {
			end = tmax
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`, x(sp.Start), padT, math.Max(0, x(end)-x(sp.Start)), chartH-padT-padB, c)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#555">%s</text>`, x(sp.Start)+3, padT+12, template.HTMLEscapeString(sp.Name))
	}
	// Axes and ticks.
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, padL, chartH-padB, chartW-padR, chartH-padB)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, padL, padT, padL, chartH-padB)
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y(v)+4, dur(v))
	}
	step := math.Max(1, math.Ceil(tmax/10))
	for t := 0.0; t <= tmax; t += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%.0fs</text>`, x(t), chartH-padB+14, t)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">time since drill start</text>`, (chartW+padL)/2, chartH-6)
	// RPO objective.
	ry, label := y(rpo), "RPO objective "+dur(rpo)
	if offScale {
		ry, label = float64(padT), label+" (off scale, above)"
	}
	fmt.Fprintf(&b, `<line id="rpo-line" x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#c00" stroke-width="1.5" stroke-dasharray="6 4"/>`, padL, ry, chartW-padR, ry)
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#c00" text-anchor="end">%s</text>`, chartW-padR-4, math.Max(ry-4, float64(padT+28)), template.HTMLEscapeString(label))
	// Lag line.
	var pts []string
	for _, s := range r.Lag {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.T), y(s.Seconds)))
	}
	if len(pts) > 0 {
		fmt.Fprintf(&b, `<polyline fill="none" stroke="#1f5fbf" stroke-width="1.8" points="%s"/>`, strings.Join(pts, " "))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// rtoSVG draws the RTO phases as a timeline.
func (r *Report) rtoSVG() template.HTML {
	var b strings.Builder
	const w, rowH = 900, 26
	h := padT + rowH*len(r.RTO.Phases) + 30
	total := math.Max(r.RTO.Total, 0.001)
	for _, p := range r.RTO.Phases {
		total = math.Max(total, p.Start+p.Seconds-r.RTO.FaultAt)
	}
	const left = 180
	x := func(s float64) float64 { return left + s/total*float64(w-left-80) }
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" id="rto-chart" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`, w, h, w, h)
	colors := []string{"#e4572e", "#f3a712", "#a8c686", "#669bbc", "#7b4b94", "#29335c", "#4f772d"}
	for i, p := range r.RTO.Phases {
		yy := padT + i*rowH
		s := p.Start - r.RTO.FaultAt
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-8, yy+16, template.HTMLEscapeString(p.Name))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`, x(s), yy+4, math.Max(1, x(s+p.Seconds)-x(s)), rowH-8, colors[i%len(colors)])
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`, x(s+p.Seconds)+4, yy+16, dur(p.Seconds))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d">RTO %s (from the fault)</text>`, left, h-8, dur(r.RTO.Total))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"pass": passWord, "dur": dur, "atrisk": atRisk, "upper": strings.ToUpper,
	"f2": func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"f3": func(v float64) string { return fmt.Sprintf("%.3f", v) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>godwit drill: {{.R.Name}}</title>
<style>
body { font-family: -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.statement { font-size: 1.1em; background: #f4f7fb; border-left: 4px solid #1f5fbf; padding: 0.8em 1em; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
.PASS { color: #16794c; font-weight: bold; } .FAIL { color: #c00; font-weight: bold; }
</style>
</head>
<body>
<h1>godwit drill: {{.R.Name}} <span class="{{pass .R.Passed}}">{{pass .R.Passed}}</span></h1>
<p>Flow <code>{{.R.Flow}}</code>, fault <b>{{.R.Fault}}</b>{{if .R.Mode}} ({{.R.Mode}} failover){{end}}, replicator {{.R.Replicator}}, started {{.R.StartedAt.Format "2006-01-02 15:04:05Z"}}, {{f2 .R.Seconds}} s.</p>
<p class="statement" id="statement">{{.R.Statement}}</p>
<h2>Objectives</h2>
<table><tr><th class="l">objective</th><th>target</th><th>achieved</th><th>result</th><th class="l">measured as</th></tr>
{{range .R.Objectives}}<tr><td class="l">{{upper .Name}}</td><td>{{dur .Target}}</td><td>{{dur .Achieved}}</td><td class="{{pass .Pass}}">{{pass .Pass}}</td><td class="l">{{.Detail}}</td></tr>
{{end}}</table>
<h2>Replication lag</h2>
{{.Lag}}
<table><tr><th class="l">phase</th><th>records/s</th><th>MB/s</th><th>max lag (s)</th><th>max lag (records)</th><th>mean lag (s)</th></tr>
{{range .R.Throughput}}<tr><td class="l">{{.Phase}}</td><td>{{printf "%.0f" .RecordsPerSec}}</td><td>{{f2 .MBPerSec}}</td><td>{{f3 .MaxLagSeconds}}</td><td>{{.MaxLagRecords}}</td><td>{{f3 .MeanLagSeconds}}</td></tr>
{{end}}</table>
<h2>Recovery timeline (RTO)</h2>
{{.RTO}}
<h2>Records</h2>
<p>acknowledged {{.R.Totals.Acked}}, on the target {{.R.Totals.OnTarget}}, lost <b>{{.R.Totals.Lost}}</b>, godwit reported at risk <b>{{atrisk .R.Totals.AtRisk}}</b>, replayed {{.R.Totals.Replayed}} (after the last commit {{.R.Totals.ReplayedUncommitted}}, after the last checkpoint {{.R.Totals.ReplayedCheckpointLag}}, by offset translation <b>{{.R.Totals.ReplayedTranslation}}</b>), skipped {{.R.Totals.Skipped}}, duplicates on the target {{.R.Totals.Duplicates}}, produce outcome unknown {{.R.Totals.Uncertain}}.</p>
<p><small id="replayed-legend">{{.ReplayedLegend}}</small></p>
<table><tr><th class="l">topic</th><th>partition</th><th>last acked offset</th><th>target has through</th><th>acked</th><th>on target</th><th>lost</th><th>at risk</th><th>replayed</th><th>after last commit</th><th>after last checkpoint</th><th>by translation</th><th>skipped</th></tr>
{{range .R.Partitions}}<tr><td class="l">{{.Topic}}</td><td>{{.Partition}}</td><td>{{.LastAckedOffset}}</td><td>{{.TargetHasOffset}}</td><td>{{.Acked}}</td><td>{{.OnTarget}}</td><td>{{.Lost}}</td><td>{{atrisk .AtRisk}}</td><td>{{.Replayed}}</td><td>{{.ReplayedUncommitted}}</td><td>{{.ReplayedCheckpointLag}}</td><td>{{.ReplayedTranslation}}</td><td>{{.Skipped}}</td></tr>
{{end}}</table>
{{with .R.Connect}}{{.HTMLSection}}{{end}}
{{with .R.Schemas}}{{.HTMLSection}}{{end}}
{{if .R.Notes}}<h2>Notes</h2><ul>{{range .R.Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p><small>Every figure was counted by the drill's own checker from the sequence numbers in the records, never from the replicator's counters. The lag chart shows the age of the oldest acknowledged record not yet on the target.</small></p>
</body>
</html>
`))

// HTML renders a self-contained HTML report (inline SVG, no external assets).
func (r *Report) HTML() ([]byte, error) {
	var b bytes.Buffer
	err := htmlTmpl.Execute(&b, struct {
		R              *Report
		Lag, RTO       template.HTML
		ReplayedLegend string
	}{r, r.lagSVG(), r.rtoSVG(), strings.ReplaceAll(replayedLegend, "*", "")})
	return b.Bytes(), err
}
