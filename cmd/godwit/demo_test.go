package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"html"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/testkit"
)

// htmlVoid are the HTML elements without a closing tag.
var htmlVoid = map[string]bool{"meta": true, "br": true, "img": true, "link": true, "input": true, "hr": true}

// checkHTML tokenizes an HTML document (encoding/xml in its tolerant HTML
// mode) and checks that every element is closed in order, so the report is
// well formed; it returns the element names seen.
func checkHTML(t *testing.T, doc []byte) map[string]int {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	seen := map[string]int{}
	var stack []string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("report.html does not parse: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			seen[e.Name.Local]++
			if !htmlVoid[e.Name.Local] {
				stack = append(stack, e.Name.Local)
			}
		case xml.EndElement:
			if htmlVoid[e.Name.Local] {
				continue
			}
			if len(stack) == 0 || stack[len(stack)-1] != e.Name.Local {
				t.Fatalf("report.html: </%s> closes %v", e.Name.Local, stack)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Fatalf("report.html: unclosed elements %v", stack)
	}
	return seen
}

// TestDemo runs `godwit demo` end to end and checks its report: the HTML
// parses, holds both inline SVG charts and the statement, uses no external
// asset, and (with Chromium installed) renders to a non-empty screenshot.
func TestDemo(t *testing.T) {
	testkit.SkipIfShort(t) // two embedded clusters and a whole drill
	out := filepath.Join(t.TempDir(), "report")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	code := runContext(ctx, []string{"demo", "--out", out}, &stdout, &stderr)
	t.Logf("demo took %v:\n%s", time.Since(start), stdout.String())
	if code != exitOK {
		t.Fatalf("demo exit %d: %s", code, stderr.String())
	}
	htmlPath := filepath.Join(out, "report.html")
	if !strings.Contains(stdout.String(), "report: "+htmlPath) {
		t.Errorf("demo does not say where the report is")
	}
	for _, want := range []string{"us-west-2", "us-east-1", "FAULT source-down", "detected", "consumers caught up", "unplanned failover lost"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	js, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Statement string `json:"statement"`
		Passed    bool   `json:"passed"`
		Fault     string `json:"fault"`
		Mode      string `json:"failover_mode"`
	}
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Fault != "source-down" || rep.Mode != "unplanned" || !rep.Passed {
		t.Errorf("report: fault %q mode %q passed %v", rep.Fault, rep.Mode, rep.Passed)
	}
	doc, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	seen := checkHTML(t, doc)
	if seen["svg"] < 2 || seen["polyline"] < 1 || seen["table"] < 3 {
		t.Errorf("report.html elements: %v", seen)
	}
	s := string(doc)
	for _, want := range []string{`id="lag-chart"`, `id="rto-chart"`, "RPO objective", html.EscapeString(rep.Statement)} {
		if !strings.Contains(s, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, bad := range []string{"http://", "https://", "<script src", "<link"} {
		if strings.Contains(strings.ReplaceAll(s, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("report.html refers to an external asset (%q)", bad)
		}
	}
	if hook, err := os.ReadFile(filepath.Join(out, "cutover.txt")); err != nil || !strings.Contains(string(hook), "us-east-1") {
		t.Errorf("cutover hook output: %q, %v", hook, err)
	}
	if md, err := os.ReadFile(filepath.Join(out, "report.md")); err != nil || !strings.Contains(string(md), rep.Statement) {
		t.Errorf("report.md: %v, statement missing", err)
	}

	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no %s (scripts/test.sh installs it): skipping the rendering check", chromium)
	}
	shot := filepath.Join(t.TempDir(), "report.png")
	cctx, ccancel := context.WithTimeout(ctx, 90*time.Second)
	defer ccancel()
	cmd := exec.CommandContext(cctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--window-size=1000,1600", "--screenshot="+shot, "file://"+htmlPath)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, b)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// Non-empty: many distinct colours (text, chart bands, the lag line).
	colours := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	if len(colours) < 20 {
		t.Errorf("screenshot %dx%d has only %d colours: the report did not render", b.Dx(), b.Dy(), len(colours))
	}
	t.Logf("screenshot %dx%d, %d colours", b.Dx(), b.Dy(), len(colours))
}

func TestDrillCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("fault: {type: meteor}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "godwit.yaml")
	if err := os.WriteFile(cfg, []byte("clusters:\n  a: {bootstrap_servers: [\"127.0.0.1:1\"]}\n  b: {bootstrap_servers: [\"127.0.0.1:2\"]}\nflows:\n  a->b: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"drill"}, "no config file"},
		{[]string{"drill", "-c", cfg, "--scenario", bad}, "fault.type"},
		{[]string{"drill", "-c", cfg, "--replicator", "thread"}, "--replicator"},
	} {
		var stdout, stderr bytes.Buffer
		code := runContext(context.Background(), append(tc.args, "--out", filepath.Join(dir, "out")), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
