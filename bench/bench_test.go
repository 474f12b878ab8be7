package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// comm with spaces and a ')' inside, as the kernel allows.
	line := "4242 (java (x) y) S 4000 4242 4242 0 -1 4194560 1000 0 0 0 250 75 3 4 20 0 33 0 123456 5000000 20000 18446744073709551615\n"
	s, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if s.PID != 4242 || s.PPID != 4000 || s.Comm != "java (x) y" {
		t.Fatalf("pid/ppid/comm: %+v", s)
	}
	if s.UTime != 250 || s.STime != 75 || s.CUTime != 3 || s.CSTime != 4 {
		t.Fatalf("times: %+v", s)
	}
	if got, want := s.CPU(), 3250*time.Millisecond; got != want {
		t.Fatalf("CPU() = %v, want %v (own time only)", got, want)
	}
	for _, bad := range []string{"", "12 S 1", "x (a) S 1 2 3", "12 (a) S 1 2"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\tgodwit\nVmPeak:\t 1000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t 7000 kB\n"
	got, err := parseVmHWM([]byte(status))
	if err != nil || got != 81234*1024 {
		t.Fatalf("parseVmHWM = %d, %v", got, err)
	}
	if _, err := parseVmHWM([]byte("Name:\tkthreadd\n")); err == nil {
		t.Fatal("no VmHWM: want an error")
	}
}

func TestDescendants(t *testing.T) {
	ppid := map[int]int{10: 1, 11: 10, 12: 10, 13: 11, 20: 1, 21: 20}
	got := descendants(10, ppid)
	seen := map[int]bool{}
	for _, p := range got {
		seen[p] = true
	}
	if len(got) != 4 || !seen[10] || !seen[11] || !seen[12] || !seen[13] {
		t.Fatalf("descendants(10) = %v", got)
	}
}

// TestTreeSamplerFakeProc runs the sampler over a synthetic /proc.
func TestTreeSamplerFakeProc(t *testing.T) {
	root := t.TempDir()
	write := func(pid, ppid int, utime, stime, hwmKB int) {
		d := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		stat := strconv.Itoa(pid) + " (p) S " + strconv.Itoa(ppid) + " 0 0 0 -1 0 0 0 0 0 " + strconv.Itoa(utime) + " " + strconv.Itoa(stime) + " 0 0 20 0 1 0 0 0 0"
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "status"), []byte("VmHWM:\t"+strconv.Itoa(hwmKB)+" kB\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(100, 1, 100, 50, 1024)  // root: 1.5 s
	write(101, 100, 20, 30, 2048) // child: 0.5 s
	write(200, 1, 999, 999, 9999) // unrelated
	s := newTreeSampler(100)
	s.procRoot = root
	s.Sample()
	write(101, 100, 40, 60, 1024) // child grew CPU, HWM cannot shrink: max kept
	s.Sample()
	cpu, rss := s.Totals()
	if cpu != 2500*time.Millisecond {
		t.Fatalf("cpu = %v, want 2.5s", cpu)
	}
	if rss != (1024+2048)*1024 {
		t.Fatalf("peak rss = %d", rss)
	}
}

func TestPercentile(t *testing.T) {
	var xs []time.Duration
	for i := 100; i >= 1; i-- {
		xs = append(xs, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(xs, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("empty: want 0")
	}
}

func TestResultRates(t *testing.T) {
	r := result{Elapsed: 2 * time.Second, Records: 1000, Bytes: 2e9, CPU: 10 * time.Second}
	if r.MBps() != 1000 || r.RecPerSec() != 500 || r.CPUPerGB() != 5 {
		t.Fatalf("MBps %v rec/s %v CPU/GB %v", r.MBps(), r.RecPerSec(), r.CPUPerGB())
	}
	tab := throughputTable([]result{r, {Name: "x", Err: "boom | bang"}})
	if !strings.Contains(tab, "| 2.00 s | 1000.0 | 500 | 5.0 |") || !strings.Contains(tab, "failed: boom / bang") {
		t.Fatal(tab)
	}
}

func TestSpliceSection(t *testing.T) {
	b, e := "<!-- bench:x begin -->", "<!-- bench:x end -->"
	doc := spliceSection("# Title\n", b, e, b+"\none\n"+e+"\n")
	if doc != "# Title\n\n"+b+"\none\n"+e+"\n" {
		t.Fatalf("append: %q", doc)
	}
	doc2 := spliceSection(doc+"tail\n", b, e, b+"\ntwo\n"+e+"\n")
	if doc2 != "# Title\n\n"+b+"\ntwo\n"+e+"\ntail\n" {
		t.Fatalf("replace: %q", doc2)
	}
}

func TestMM2Properties(t *testing.T) {
	p := strings.Join(mm2Properties("a1", "b1", "h:1", "h:2", "t"), "\n")
	for _, want := range []string{"clusters = a1, b1", "a1->b1.enabled = true", "a1->b1.topics = t", "replication.factor = 1"} {
		if !strings.Contains(p, want) {
			t.Errorf("missing %q in\n%s", want, p)
		}
	}
	if tn := strings.Join(mm2Tuning(32, "a1", "b1"), "\n"); !strings.Contains(tn, "tasks.max = 32") || !strings.Contains(tn, "b1.producer.batch.size") {
		t.Errorf("tuning: %s", tn)
	}
}

func TestReplayCount(t *testing.T) {
	// Source partition of 10 records (offsets 0..9); target copy with a
	// transaction marker at target offset 5 (source 0..4 at 0..4, 5..9 at
	// 6..10).
	var ps []pos
	for s := int64(0); s < 10; s++ {
		off := s
		if s >= 5 {
			off++
		}
		ps = append(ps, pos{off, s})
	}
	for _, c := range []struct {
		s, t, replayed, skipped int64
	}{
		{5, 5, 0, 0},   // exact (resume at the marker)
		{5, 6, 0, 0},   // exact (after the marker)
		{5, 3, 2, 0},   // source 3 and 4 again
		{5, 8, 0, 2},   // source 5 and 6 never read
		{10, 11, 0, 0}, // head
		{10, 0, 10, 0}, // from the start
		{0, 11, 0, 10}, // at the end: everything skipped
	} {
		r, sk := replayCount(ps, 10, c.s, c.t)
		if r != c.replayed || sk != c.skipped {
			t.Errorf("S=%d T=%d: replayed %d skipped %d, want %d %d", c.s, c.t, r, sk, c.replayed, c.skipped)
		}
	}
	// at-least-once duplicates: source 3..4 copied twice (again at 11, 12)
	dup := append(append([]pos(nil), ps...), pos{11, 3}, pos{12, 4})
	if r, sk := replayCount(dup, 10, 5, 6); r != 2 || sk != 0 {
		t.Errorf("duplicates: replayed %d skipped %d, want 2 0", r, sk)
	}
}

func TestDepthGroups(t *testing.T) {
	c := &contender{token: "bx"}
	got := []string{}
	for _, d := range depths {
		got = append(got, c.groupOf(d))
	}
	if strings.Join(got, ",") != "gwbench-bx-ghead,gwbench-bx-g50,gwbench-bx-g10" {
		t.Fatal(got)
	}
}

// TestWANProxyDelay checks that the proxy adds its delay in each
// direction and forwards bytes unchanged, in order.
func TestWANProxyDelay(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	const delay = 40 * time.Millisecond
	px, err := startWANProxy("127.0.0.1:0", echo.Addr().String(), delay)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	c, err := net.Dial("tcp", px.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 300<<10) // several chunks
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	t0 := time.Now()
	go func() { _, _ = c.Write(msg) }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	rtt := time.Since(t0)
	if !bytes.Equal(got, msg) {
		t.Fatal("bytes changed")
	}
	if rtt < 2*delay || rtt > 2*delay+time.Second {
		t.Fatalf("round trip %v, want about %v", rtt, 2*delay)
	}
}

// TestRawJSONRoundTrip checks that the raw results keep every measurement
// exactly (durations in nanoseconds, replay per partition) under the
// documented names, and decode back to what was written.
func TestRawJSONRoundTrip(t *testing.T) {
	eos := result{
		Name: "godwit-eos", Elapsed: 2*time.Second + 7, Records: 1000, Bytes: 2e9, Counted: 1000,
		CPU: 10*time.Second + 3, PeakRSS: 123 << 20,
		LatencyN: 5000, LatencyP50: 41*time.Millisecond + 1, LatencyP99: 97*time.Millisecond + 2, LatencyMax: time.Second + 3, LatencyRateMBps: 9.97,
		Replay: []replayRow{{Depth: "50%", Partitions: 2, NoCk: 1, Stale: 0, Replayed: 3, MaxPart: 3, Skipped: 0, Note: "n",
			Parts: []replayPart{
				{Partition: 0, Group: 500, Upstream: 500, Downstream: 497, Replayed: 3},
				{Partition: 1, Group: 400, Upstream: -1, Downstream: -1},
			}}},
		ReplayRead: 17 * time.Second, ReplaySettle: 17 * time.Second,
	}
	failed := result{Name: "mm2-default", Err: "boom", Counted: -1}
	rep := report{
		Preset: "mid", Section: "results-mid", P: preset{records: 1000, size: 1024, partitions: 2, latencyDur: 30 * time.Second},
		Command: "go run ./bench -preset mid", Started: time.Date(2026, 11, 27, 8, 31, 0, 0, time.UTC),
		MachineInfo: machineInfo{CPUs: 2, CPUModel: "AMD EPYC", MemBytes: 8 << 30, OS: "linux", Arch: "amd64"},
		Versions:    versions{Go: "go1.26.8", Java: "openjdk 17", Godwit: "9d3b50c-dirty", MirrorMaker2: "4.3.1", KafkaSource: "v4.1", KafkaTarget: "v4.1"},
		Settings: runSettings{Contenders: []string{"godwit-eos", "mm2-default"}, Primary: "p:1", Secondary: "s:2", Verify: true,
			Timeout: 30 * time.Minute, Replay: true, Latency: &rawLatency{RateMBps: 10, Duration: 30 * time.Second, Warmup: 5 * time.Second},
			WAN: &rawWAN{DelayOneWay: 25 * time.Millisecond, Listen: "l:1", Upstream: "u:2"}},
		LoadTime: 3 * time.Second, LoadMBps: 341.3,
		Results:    []result{eos, failed},
		Contenders: []*contender{{name: "godwit-eos", settings: "delivery exactly-once"}, {name: "mm2-default", settings: "defaults"}},
	}
	raw := rep.raw()
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	var back rawReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, raw) {
		t.Fatalf("round trip changed the results:\n got %+v\nwant %+v", back, raw)
	}
	if back.Contenders[0].result.Elapsed != eos.Elapsed || back.Contenders[0].Settings != "delivery exactly-once" {
		t.Fatalf("contender 0 = %+v", back.Contenders[0])
	}

	// The names tools read.
	var doc struct {
		Schema     int `json:"schema"`
		Contenders []map[string]any
		Settings   map[string]any
		Versions   map[string]any
		Load       map[string]any
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	c := doc.Contenders[0]
	for k, want := range map[string]any{
		"name": "godwit-eos", "elapsed_ns": float64(2e9 + 7), "mb_per_s": eos.MBps(), "records_per_s": eos.RecPerSec(),
		"cpu_ns": float64(10e9 + 3), "cpu_s_per_gb": eos.CPUPerGB(), "peak_rss_bytes": float64(123 << 20),
		"latency_p50_ns": float64(41e6 + 1), "latency_p99_ns": float64(97e6 + 2), "latency_max_ns": float64(1e9 + 3),
		"replay_read_after_ns": float64(17e9), "settings": "delivery exactly-once",
	} {
		if c[k] != want {
			t.Errorf("contenders[0].%s = %v, want %v", k, c[k], want)
		}
	}
	parts := c["replay"].([]any)[0].(map[string]any)["per_partition"].([]any)
	if len(parts) != 2 || parts[1].(map[string]any)["checkpoint_downstream"] != float64(-1) {
		t.Errorf("replay per partition = %v", parts)
	}
	if doc.Contenders[1]["error"] != "boom" {
		t.Errorf("failed contender = %v", doc.Contenders[1])
	}
	if doc.Schema != rawSchema || doc.Versions["godwit"] != "9d3b50c-dirty" || doc.Load["mb_per_s"] != 341.3 ||
		doc.Settings["latency"].(map[string]any)["rate_mb_per_s"] != float64(10) || doc.Settings["wan"].(map[string]any)["delay_one_way_ns"] != float64(25e6) {
		t.Errorf("schema %d, versions %v, load %v, settings %v", doc.Schema, doc.Versions, doc.Load, doc.Settings)
	}

	rep.RawJSON = "benchmarks/results-mid.json"
	if md := rep.markdown(); !strings.Contains(md, "[`benchmarks/results-mid.json`](benchmarks/results-mid.json)") {
		t.Errorf("Markdown does not link the raw results:\n%s", md)
	}
}

func TestRawJSONPath(t *testing.T) {
	for _, c := range []struct{ flag, out, want string }{
		{"", "docs/benchmarks.md", "/r/docs/benchmarks/results-mid.json"},
		{"", "/abs/b.md", "/abs/b/results-mid.json"},
		{"", "", ""},
		{"none", "docs/benchmarks.md", ""},
		{"x.json", "", "/r/x.json"},
		{"/tmp/x.json", "docs/benchmarks.md", "/tmp/x.json"},
	} {
		if got := rawJSONPath("/r", c.flag, c.out, "results-mid"); got != c.want {
			t.Errorf("rawJSONPath(-json %q, -out %q) = %q, want %q", c.flag, c.out, got, c.want)
		}
	}
}

func TestMM2Version(t *testing.T) {
	d := t.TempDir()
	for _, f := range []string{"connect-mirror-client-4.3.1.jar", "connect-mirror-4.3.1.jar", "kafka-clients-4.3.1.jar"} {
		if err := os.WriteFile(filepath.Join(d, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if v := mm2Version(d); v != "4.3.1" {
		t.Fatalf("mm2Version = %q", v)
	}
	if v := mm2Version(t.TempDir()); v != "" {
		t.Fatalf("no jars: %q", v)
	}
}

func TestCheckComplete(t *testing.T) {
	ok := []result{{Name: "godwit-eos", Counted: 100}, {Name: "mm2-default", Counted: 100}}
	if err := checkComplete(ok, 100, true); err != nil {
		t.Fatalf("complete run rejected: %v", err)
	}
	for _, tc := range []struct {
		name string
		res  []result
		want string
	}{
		{"error", []result{{Name: "mm2-default", Err: "timed out", Counted: -1}}, "mm2-default: timed out"},
		{"short", []result{{Name: "godwit-alo", Counted: 99}}, "godwit-alo: 99 records"},
		{"duplicates", []result{{Name: "rawpipe", Counted: 101}}, "rawpipe: 101 records"},
	} {
		err := checkComplete(tc.res, 100, true)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to name %q", tc.name, err, tc.want)
		}
	}
	if err := checkComplete([]result{{Name: "godwit-eos", Counted: -1}}, 100, false); err != nil {
		t.Errorf("unverified run without error rejected: %v", err)
	}
}
