// Command bench compares godwit with a raw franz-go pipe (the ceiling for
// any client-based replicator) and MirrorMaker 2 on two real Kafka
// clusters (scripts/kafka.sh up). See docs/benchmarks.md.
//
//	go run ./bench -preset smoke
//	go run ./bench -preset mid -out docs/benchmarks.md
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/workload"
)

type preset struct {
	records    int64
	size       int
	partitions int32
	latencyDur time.Duration
}

var presets = map[string]preset{
	"smoke": {100_000, 1024, 8, 15 * time.Second},
	"mid":   {500_000, 1024, 32, 30 * time.Second},
	"full":  {2_000_000, 1024, 32, 60 * time.Second},
	// p1000: many partitions, each with a small backlog (500 records):
	// what per-partition and per-transaction costs (markers, fetch
	// sessions, offset-map entries) do to a replicator.
	"p1000": {500_000, 1024, 1000, 30 * time.Second},
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "rawpipe" {
		if err := rawPipe(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "rawpipe:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	presetName := flag.String("preset", "full", "smoke (100k x 1 KiB, 8 partitions) | mid (500k x 1 KiB, 32) | full (2M x 1 KiB, 32) | p1000 (500k x 1 KiB, 1000)")
	records := flag.Int64("records", 0, "records to load (0: the preset's)")
	size := flag.Int("size", 0, "record value size in bytes (0: the preset's)")
	partitions := flag.Int("partitions", 0, "source partitions (0: the preset's)")
	slots := flag.Int("slots", 0, "godwit's slots, and rawpipe's consumer/producer pairs (0: godwit's default, config.DefaultSlots)")
	contenders := flag.String("contenders", strings.Join(contenderNames, ","), "contenders to run, in order")
	primary := flag.String("primary", "127.0.0.1:19092", "source cluster bootstrap (scripts/kafka.sh primary)")
	secondary := flag.String("secondary", "127.0.0.1:29092", "target cluster bootstrap (scripts/kafka.sh secondary)")
	out := flag.String("out", "", "Markdown file whose results section for this preset is replaced (e.g. docs/benchmarks.md); empty: stdout only")
	latency := flag.Bool("latency", true, "after the backlog, measure end-to-end latency under a steady load")
	latRate := flag.Float64("latency-rate", 10, "steady load of the latency phase, MB/s")
	latDur := flag.Duration("latency-duration", 0, "length of the latency phase (0: the preset's)")
	latWarm := flag.Duration("latency-warmup", 5*time.Second, "records produced in the first part of the latency phase are not measured")
	verify := flag.Bool("verify", true, "count the target's records with a read_committed consumer after each backlog run")
	check := flag.Bool("check", false, "exit 1 unless every contender replicated every record (with -verify: counted exactly the loaded records on the target); for CI, where numbers are not asserted")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up on a contender after this long")
	replay := flag.Bool("replay", true, "commit source groups at head / 50% / 10% before each contender and measure replay after failover from its checkpoints")
	ckWait := flag.Duration("checkpoint-wait", 0, "read checkpoints at the latest this long after the backlog is complete (0: godwit 2 x checkpoint interval + 15 s = 17 s; MM2 checkpoint interval + offset.flush.interval.ms (60 s) + 15 s: default 135 s, tuned 80 s)")
	wanDelay := flag.Duration("wan-delay", 0, "one-way delay of a latency proxy between the contenders and the source (RTT = 2x); needs -wan-listen and -wan-upstream")
	wanListen := flag.String("wan-listen", "", "address the latency proxy listens on: the source's WAN listener must advertise it (scripts/kafka.sh GODWIT_KAFKA_WAN_ADVERTISED_PORT)")
	wanUpstream := flag.String("wan-upstream", "", "the source broker's WAN listener (scripts/kafka.sh GODWIT_KAFKA_WAN_PORT) the proxy forwards to")
	section := flag.String("section", "", "results section of -out to replace (default: results-<preset>)")
	jsonOut := flag.String("json", "", "file for the raw results as JSON (relative: from the repository root); default with -out: <out without .md>/<section>.json, e.g. docs/benchmarks/results-mid.json; none: not written")
	mm2Libs := flag.String("mm2-libs", "", "MirrorMaker 2 classpath folder (default: <repo>/.cache/connect-mirror-4.3.1/libs, fetched by scripts/kafka.sh)")
	flag.Parse()

	p, ok := presets[*presetName]
	if !ok {
		return fmt.Errorf("unknown -preset %q", *presetName)
	}
	if *records > 0 {
		p.records = *records
	}
	if *size > 0 {
		p.size = *size
	}
	if *partitions > 0 {
		p.partitions = int32(*partitions)
	}
	if *latDur > 0 {
		p.latencyDur = *latDur
	}
	if p.size < workload.IDSize {
		return fmt.Errorf("-size must be at least %d (the record identity)", workload.IDSize)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, err := repoRoot()
	if err != nil {
		return err
	}
	if *mm2Libs == "" {
		*mm2Libs = filepath.Join(root, ".cache", "connect-mirror-4.3.1", "libs")
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	var rid [3]byte
	_, _ = rand.Read(rid[:])
	runID := "b" + hex.EncodeToString(rid[:])
	work, err := os.MkdirTemp("", "godwit-bench-"+runID+"-")
	if err != nil {
		return err
	}
	logf("run %s, work dir %s (configs, logs)", runID, work)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var wan *wanDesc
	var wanPx *wanProxy
	srcRepl := *primary
	if *wanDelay > 0 || *wanListen != "" || *wanUpstream != "" {
		if *wanListen == "" || *wanUpstream == "" {
			return fmt.Errorf("-wan-delay needs -wan-listen and -wan-upstream")
		}
		px, err := startWANProxy(*wanListen, *wanUpstream, *wanDelay)
		if err != nil {
			return fmt.Errorf("latency proxy: %w", err)
		}
		defer px.Close()
		srcRepl, wanPx = px.Addr(), px
		wan = &wanDesc{delay: *wanDelay, listen: px.Addr(), upstream: *wanUpstream}
		logf("latency proxy %s -> %s, %v each way (RTT %v): contenders read the source through it", px.Addr(), *wanUpstream, *wanDelay, 2**wanDelay)
	}
	e := &env{
		src: *primary, srcRepl: srcRepl, dst: *secondary, topic: "gwbench-" + runID + "-src",
		records: p.records, size: p.size, partitions: p.partitions, slots: *slots,
		runID: runID, work: work, self: self, mm2Libs: *mm2Libs, timeout: *timeout, verify: *verify, logf: logf,
		replay: *replay, ckWait: *ckWait,
	}
	var cs []*contender
	for _, n := range strings.Split(*contenders, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		c, err := newContender(n, e)
		if err != nil {
			return err
		}
		cs = append(cs, c)
		if strings.HasPrefix(n, "godwit") && e.godwitBin == "" {
			e.godwitBin = filepath.Join(work, "godwit")
			logf("building godwit into %s", e.godwitBin)
			b := exec.CommandContext(ctx, "go", "build", "-o", e.godwitBin, "./cmd/godwit")
			b.Dir, b.Stdout, b.Stderr = root, os.Stderr, os.Stderr
			if err := b.Run(); err != nil {
				return fmt.Errorf("go build ./cmd/godwit: %w", err)
			}
		}
		if strings.HasPrefix(n, "mm2") {
			if _, err := os.Stat(filepath.Join(*mm2Libs, "connect-mirror-4.3.1.jar")); err != nil {
				return fmt.Errorf("MirrorMaker 2 jars not found in %s (run scripts/kafka.sh fetch): %w", *mm2Libs, err)
			}
		}
	}

	srcCl, err := newClient(e.src)
	if err != nil {
		return err
	}
	defer srcCl.Close()
	// The completion check polls the target's end offsets every 200 ms,
	// starting before the contender has created the target topic. kgo
	// caches partition leaders for sharded requests for MetadataMinAge
	// (5 s by default), so "topic unknown" would stick for up to 5 s
	// after the topic exists and inflate every time to replicate.
	dstCl, err := newClient(e.dst, kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer dstCl.Close()
	e.srcAdm, e.dstAdm = kadm.NewClient(srcCl), kadm.NewClient(dstCl)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := e.srcAdm.DeleteTopics(cctx, e.topic); err != nil {
			logf("delete %s: %v", e.topic, err)
		}
	}()

	logf("loading %d records x %d B into %s (%d partitions) on %s", e.records, e.size, e.topic, e.partitions, e.src)
	if err := createTopic(ctx, e.srcAdm, e.topic, e.partitions); err != nil {
		return err
	}
	loadTime, err := load(ctx, e.src, e.topic, e.records, e.size, e.partitions, logf)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	loadMBps := float64(e.records*int64(e.size)) / 1e6 / loadTime.Seconds()
	logf("loaded in %v (%.1f MB/s)", loadTime.Round(time.Millisecond), loadMBps)

	var lat *latencyOpts
	if *latency {
		lat = &latencyOpts{rate: *latRate, dur: p.latencyDur, warmup: *latWarm}
	}
	var results []result
	for _, c := range cs {
		if ctx.Err() != nil {
			break
		}
		logf("contender %s", c.name)
		r := c.run(ctx, e, lat)
		if wanPx != nil {
			e.logf("  latency proxy: %.1f MB to the contenders, %.1f MB to the source so far", float64(wanPx.toClients.Load())/1e6, float64(wanPx.toUpstream.Load())/1e6)
		}
		if r.Err != "" {
			logf("  %s: %s", c.name, r.Err)
		}
		results = append(results, r)
	}

	id := *section
	if id == "" {
		id = "results-" + *presetName
	}
	withMM2 := false
	var names []string
	for _, c := range cs {
		names = append(names, c.name)
		withMM2 = withMM2 || strings.HasPrefix(c.name, "mm2")
	}
	settings := runSettings{
		Contenders: names, Primary: *primary, Secondary: *secondary, Verify: *verify,
		Timeout: *timeout, Replay: *replay, CheckpointWait: *ckWait,
	}
	if lat != nil {
		settings.Latency = &rawLatency{RateMBps: lat.rate, Duration: lat.dur, Warmup: lat.warmup}
	}
	if wan != nil {
		settings.WAN = &rawWAN{DelayOneWay: wan.delay, Listen: wan.listen, Upstream: wan.upstream}
	}
	mi, vers := probeMachine(), probeVersions(ctx, root, *mm2Libs, withMM2, e.srcAdm, e.dstAdm)
	rep := report{
		Preset: *presetName, Section: id, P: p, Command: commandLine(), Started: time.Now(),
		LoadTime: loadTime, LoadMBps: loadMBps, Results: results, Contenders: cs, Latency: lat,
		Machine: mi.describe(vers), MachineInfo: mi, Versions: vers, Settings: settings, WAN: wan,
	}
	var mdPath string
	if *out != "" {
		mdPath = *out
		if !filepath.IsAbs(mdPath) {
			mdPath = filepath.Join(root, mdPath)
		}
	}
	jsonPath := rawJSONPath(root, *jsonOut, *out, id)
	if jsonPath != "" && mdPath != "" {
		if rel, err := filepath.Rel(filepath.Dir(mdPath), jsonPath); err == nil && !strings.HasPrefix(rel, "..") {
			rep.RawJSON = filepath.ToSlash(rel)
		}
	}
	md := rep.markdown()
	fmt.Println(md)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %s not written", strings.TrimSpace(*out+" "+jsonPath))
	}
	if jsonPath != "" {
		if err := writeRawJSON(jsonPath, rep.raw()); err != nil {
			return err
		}
		logf("wrote %s", jsonPath)
	}
	if mdPath != "" {
		if err := replaceSection(mdPath, id, md); err != nil {
			return err
		}
		logf("wrote %s", mdPath)
	}
	if *check {
		return checkComplete(results, e.records, *verify)
	}
	return nil
}

// checkComplete is -check: every contender finished its backlog and, when
// verified, the target holds exactly the loaded records.
func checkComplete(results []result, records int64, verified bool) error {
	var bad []string
	for _, r := range results {
		switch {
		case r.Err != "":
			bad = append(bad, fmt.Sprintf("%s: %s", r.Name, r.Err))
		case verified && r.Counted != records:
			bad = append(bad, fmt.Sprintf("%s: %d records on the target (read_committed), loaded %d", r.Name, r.Counted, records))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not every contender replicated every record:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above the working directory: run from the godwit repository")
		}
		d = parent
	}
}

func commandLine() string {
	args := []string{"go run ./bench"}
	flag.Visit(func(f *flag.Flag) {
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			args = append(args, fmt.Sprintf("-%s=%s", f.Name, f.Value))
			return
		}
		args = append(args, fmt.Sprintf("-%s %s", f.Name, f.Value))
	})
	return strings.Join(args, " ")
}
