package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/offsets"
	"github.com/godwit/godwit/internal/replicate"
)

// env is what every contender run shares.
type env struct {
	src, dst string // bootstrap addresses
	// srcRepl is the source bootstrap the contenders use: src, or the
	// WAN proxy in front of it (-wan-delay).
	srcRepl        string
	srcAdm, dstAdm *kadm.Client
	topic          string // source topic
	records        int64
	size           int
	// slots is -slots: godwit's slots and rawpipe's pairs (0: godwit's
	// default).
	slots      int
	partitions int32
	runID      string
	work       string // temp dir: configs, logs, binaries
	self       string // this binary (for rawpipe)
	godwitBin  string
	mm2Libs    string
	timeout    time.Duration
	verify     bool
	// replay: commit depth groups before each contender and measure
	// replay after failover from its checkpoints (replay.go).
	replay bool
	// ckWait overrides how long after the backlog the checkpoints are
	// read at the latest (0: twice the contender's checkpoint interval
	// plus 15 s).
	ckWait time.Duration
	logf   func(string, ...any)
}

// contender is one replicator under test.
type contender struct {
	name        string
	token       string // unique per run and contender: in every name it creates
	prefix      string // target topic = prefix + "." + source topic
	targetTopic string // target of the backlog topic
	// latTopic is the contender's own, initially empty source topic for
	// the latency phase (replicated from the start along with the
	// backlog, so the latency load never adds to another contender's
	// backlog).
	latTopic string
	// command builds the process to run (configs written into e.work).
	command func(e *env) (*exec.Cmd, error)
	// done reports whether every source record is visible on the target.
	done func(ctx context.Context, e *env) (bool, error)
	// settings is a short description for the report.
	settings string
	// srcAlias is the source cluster alias: checkpoints are on the target
	// in <srcAlias>.checkpoints.internal (empty: no checkpoints).
	srcAlias string
	// ckInterval is how often the contender writes checkpoints.
	ckInterval time.Duration
	// ckSettle is how long after the backlog its checkpoints can still
	// improve: godwit 2 x ckInterval + 15 s; MM2 also flushes pending
	// offset syncs only on its offset commit (offset.flush.interval.ms,
	// 60 s), so ckInterval + 60 s + 15 s.
	ckSettle time.Duration
	// translate, if set, is the contender's own translation of a group
	// (partition -> target offset), for a cross-check.
	translate func(ctx context.Context, group string) (map[int32]int64, error)
	// offsetSyncs is MirrorMaker 2's offset-syncs topic on the source.
	offsetSyncs string
}

// contenderNames lists the contenders in their run order.
var contenderNames = []string{"rawpipe", "godwit-eos", "godwit-alo", "mm2-default", "mm2-tuned"}

// slotCount is the godwit slots (and rawpipe pairs) of this run: the
// default unless -slots says otherwise, so a run measures what a user who
// sets nothing gets.
func (e *env) slotCount() int {
	if e.slots > 0 {
		return e.slots
	}
	return config.DefaultSlots
}

func newContender(name string, e *env) (*contender, error) {
	short := map[string]string{"rawpipe": "rp", "godwit-eos": "ge", "godwit-alo": "ga", "mm2-default": "md", "mm2-tuned": "mt"}[name]
	if short == "" {
		return nil, fmt.Errorf("unknown contender %q (known: %s)", name, strings.Join(contenderNames, ", "))
	}
	token := e.runID + short
	c := &contender{name: name, token: token, latTopic: "gwbench-" + token + "-lat"}
	topics := []string{e.topic, c.latTopic}
	hwmDone := func(ctx context.Context, e *env) (bool, error) {
		n, _, err := sumEnd(ctx, e.dstAdm, c.targetTopic)
		return n >= e.records, err
	}
	switch name {
	case "rawpipe":
		c.prefix = token
		pipes := e.slotCount()
		c.settings = fmt.Sprintf("franz-go consume -> produce, %d independent consumer/producer pairs (as many as godwit's slots), fetch max 64 MiB / 8 MiB per partition, linger 5 ms, 256 MiB buffer each, no progress kept", pipes)
		c.command = func(e *env) (*exec.Cmd, error) {
			return exec.Command(e.self, "rawpipe", "-src", e.srcRepl, "-dst", e.dst, "-topics", strings.Join(topics, ","), "-prefix", c.prefix,
				"-partitions", fmt.Sprint(e.partitions), "-pipes", fmt.Sprint(pipes)), nil
		}
		c.done = hwmDone
	case "godwit-eos", "godwit-alo":
		delivery := config.DeliveryExactlyOnce
		if name == "godwit-alo" {
			delivery = config.DeliveryAtLeastOnce
		}
		srcAlias, dstAlias := "p"+token, "s"+token
		c.prefix = srcAlias
		c.srcAlias, c.ckInterval = srcAlias, config.DefaultCheckpointInterval
		c.ckSettle = 2*c.ckInterval + 15*time.Second
		slots := e.slotCount()
		c.settings = fmt.Sprintf("delivery %s, slots %d, start earliest, every other setting default", delivery, slots)
		cfgPath := filepath.Join(e.work, name+".yaml")
		var cfg *config.Config
		var flow *config.Flow
		c.command = func(e *env) (*exec.Cmd, error) {
			y := fmt.Sprintf(`clusters:
  %[1]s: { bootstrap_servers: [%[3]q] }
  %[2]s: { bootstrap_servers: [%[4]q] }
flows:
  %[1]s->%[2]s:
    topics: [%[5]s]
    start: earliest
    delivery: %[6]s
    slots: %[7]d
http: { listen: "127.0.0.1:0" }
`, srcAlias, dstAlias, e.srcRepl, e.dst, quoteList(topics), delivery, slots)
			if err := os.WriteFile(cfgPath, []byte(y), 0o644); err != nil {
				return nil, err
			}
			var err error
			if cfg, err = config.Load(cfgPath); err != nil {
				return nil, err
			}
			flow = cfg.Flows[srcAlias+"->"+dstAlias]
			return exec.Command(e.godwitBin, "replicate", "-c", cfgPath), nil
		}
		c.translate = func(ctx context.Context, group string) (map[int32]int64, error) {
			gt, err := offsets.TranslateGroup(ctx, cfg, flow, group)
			if err != nil {
				return nil, err
			}
			out := map[int32]int64{}
			for _, r := range gt.Partitions {
				if r.SourceTopic == e.topic {
					out[r.Partition] = r.TargetOffset
				}
			}
			return out, nil
		}
		// Data visible is not enough for exactly-once (the high watermark
		// counts transaction markers): done is when godwit's own committed
		// progress has reached the source end offset on every partition.
		c.done = func(ctx context.Context, e *env) (bool, error) {
			if ok, err := hwmDone(ctx, e); !ok || err != nil {
				return false, err
			}
			st, err := replicate.Status(ctx, cfg, flow)
			if err != nil {
				return false, err
			}
			n := 0
			for _, p := range st.Partitions {
				if p.SourceTopic != e.topic {
					continue
				}
				if p.ReplicatedOffset < p.SourceEndOffset {
					return false, nil
				}
				n++
			}
			return n == int(e.partitions), nil
		}
	case "mm2-default", "mm2-tuned":
		srcAlias, dstAlias := "a"+token, "b"+token
		c.prefix = srcAlias
		tuned := name == "mm2-tuned"
		c.srcAlias, c.ckInterval = srcAlias, 60*time.Second // emit.checkpoints.interval.seconds default
		c.offsetSyncs = "mm2-offset-syncs." + dstAlias + ".internal"
		if tuned {
			c.ckInterval = 5 * time.Second
		}
		c.ckSettle = c.ckInterval + 75*time.Second
		c.settings = "defaults apart from cluster addresses, the topic and replication factors of 1"
		if tuned {
			c.settings = strings.Join(mm2Tuning(e.partitions, srcAlias, dstAlias), ", ")
		}
		c.command = func(e *env) (*exec.Cmd, error) {
			props := mm2Properties(srcAlias, dstAlias, e.srcRepl, e.dst, strings.Join(topics, ", "))
			if tuned {
				props = append(props, mm2Tuning(e.partitions, srcAlias, dstAlias)...)
			}
			pf := filepath.Join(e.work, name+".properties")
			if err := os.WriteFile(pf, []byte(strings.Join(props, "\n")+"\n"), 0o644); err != nil {
				return nil, err
			}
			lf := filepath.Join(e.work, name+"-log4j2.properties")
			if err := os.WriteFile(lf, []byte(mm2Log4j(filepath.Join(e.work, name+".log"))), 0o644); err != nil {
				return nil, err
			}
			// The JVM flags are those of Kafka's connect-mirror-maker.sh
			// (kafka-run-class.sh defaults: 2 GiB heap, G1).
			args := []string{"-Xms256M", "-Xmx2G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
				"-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
				"-Djava.awt.headless=true", "-Dlog4j2.configurationFile=" + lf,
				"-cp", filepath.Join(e.mm2Libs, "*"), "org.apache.kafka.connect.mirror.MirrorMaker", pf}
			return exec.Command("java", args...), nil
		}
		c.done = hwmDone
	}
	c.targetTopic = c.targetOf(e.topic)
	return c, nil
}

func (c *contender) targetOf(topic string) string { return c.prefix + "." + topic }

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// mm2Properties is "MM2 default": cluster addresses, the flow and its
// topics (a comma list), and replication factors of 1 (the test brokers are single nodes).
func mm2Properties(srcAlias, dstAlias, src, dst, topics string) []string {
	return []string{
		"clusters = " + srcAlias + ", " + dstAlias,
		srcAlias + ".bootstrap.servers = " + src,
		dstAlias + ".bootstrap.servers = " + dst,
		srcAlias + "->" + dstAlias + ".enabled = true",
		srcAlias + "->" + dstAlias + ".topics = " + topics,
		"replication.factor = 1",
		"offset-syncs.topic.replication.factor = 1",
		"checkpoints.topic.replication.factor = 1",
		"heartbeats.topic.replication.factor = 1",
		"config.storage.replication.factor = 1",
		"offset.storage.replication.factor = 1",
		"status.storage.replication.factor = 1",
	}
}

// mm2Tuning is "MM2 tuned": one task per partition, bigger fetches and
// producer batches, checkpoints and group offset sync every 5 s instead of
// 60 s (group offset sync enabled).
func mm2Tuning(partitions int32, srcAlias, dstAlias string) []string {
	// Every task has its own consumer and producer, so per-client memory
	// is kept moderate: tasks.max x these must fit the 2 GiB heap.
	return []string{
		fmt.Sprintf("tasks.max = %d", partitions),
		srcAlias + ".consumer.fetch.max.bytes = 16777216",
		srcAlias + ".consumer.max.partition.fetch.bytes = 4194304",
		srcAlias + ".consumer.max.poll.records = 2000",
		dstAlias + ".producer.batch.size = 262144",
		dstAlias + ".producer.linger.ms = 10",
		"emit.checkpoints.interval.seconds = 5",
		"sync.group.offsets.enabled = true",
		"sync.group.offsets.interval.seconds = 5",
	}
}

func mm2Log4j(file string) string {
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

// run runs one contender on the loaded source topic and measures it.
func (c *contender) run(ctx context.Context, e *env, lat *latencyOpts) (res result) {
	res = result{Name: c.name, Records: e.records, Bytes: e.records * int64(e.size), Counted: -1}
	fail := func(err error) result { res.Err = err.Error(); return res }
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		a := deleteMatching(cctx, e.dstAdm, c.token)
		b := deleteMatching(cctx, e.srcAdm, c.token)
		e.logf("  %s: deleted topics %v", c.name, append(a, b...))
	}()
	if err := createTopic(ctx, e.srcAdm, c.latTopic, e.partitions); err != nil {
		return fail(err)
	}
	var committed map[string]map[int32]int64
	var err error
	if e.replay && c.srcAlias != "" {
		if committed, err = commitDepths(ctx, e, c); err != nil {
			return fail(fmt.Errorf("commit depth groups: %w", err))
		}
	}
	cmd, err := c.command(e)
	if err != nil {
		return fail(err)
	}
	logPath := filepath.Join(e.work, c.name+".out")
	lf, err := os.Create(logPath)
	if err != nil {
		return fail(err)
	}
	defer lf.Close()
	cmd.Stdout, cmd.Stderr = lf, lf
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	pid := cmd.Process.Pid
	e.logf("  %s: started pid %d (output %s)", c.name, pid, logPath)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	alive := true
	defer func() {
		if alive {
			stopProcess(cmd, exited, e.logf)
		}
	}()
	samp := newTreeSampler(pid)
	samp.Start(250 * time.Millisecond)
	deadline := time.After(e.timeout)
	tk := time.NewTicker(200 * time.Millisecond)
	defer tk.Stop()
	var lastErr error
	lastLog := time.Now()
wait:
	for {
		select {
		case err := <-exited:
			alive = false
			samp.Stop()
			return fail(fmt.Errorf("exited early (%v); see %s", err, logPath))
		case <-deadline:
			samp.Stop()
			return fail(fmt.Errorf("not complete after %v (last check error: %v); see %s", e.timeout, lastErr, logPath))
		case <-ctx.Done():
			samp.Stop()
			return fail(ctx.Err())
		case <-tk.C:
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			ok, err := c.done(cctx, e)
			cancel()
			if ok {
				res.Elapsed = time.Since(t0)
				break wait
			}
			lastErr = err
			if time.Since(lastLog) > 10*time.Second {
				lastLog = time.Now()
				n, _, _ := sumEnd(ctx, e.dstAdm, c.targetTopic)
				e.logf("  %s: %.0fs, target end offsets sum %d / %d", c.name, time.Since(t0).Seconds(), n, e.records)
			}
		}
	}
	samp.Stop()
	backlogDone := time.Now()
	res.CPU, res.PeakRSS = samp.Totals()
	e.logf("  %s: replicated in %v, CPU %v, peak RSS %s", c.name, res.Elapsed.Round(time.Millisecond), res.CPU, fmtMiB(res.PeakRSS))

	if e.verify {
		n, err := countCommitted(ctx, e.dst, c.targetTopic, e.records, 5*time.Second)
		if err != nil {
			e.logf("  %s: verify: %v", c.name, err)
		}
		res.Counted = n
		e.logf("  %s: %d records on the target (read_committed)", c.name, n)
	}
	if lat != nil {
		e.logf("  %s: latency phase, %.0f MB/s for %v", c.name, lat.rate, lat.dur)
		l, got, err := latencyRun(ctx, e.src, e.dst, c.latTopic, c.targetOf(c.latTopic), e.partitions, e.size, lat.rate, lat.dur, lat.warmup)
		if err != nil {
			res.Err = err.Error()
		}
		res.LatencyN = len(l)
		res.LatencyRateMBps = got
		if len(l) > 0 {
			res.LatencyP50 = percentile(l, 50)
			res.LatencyP99 = percentile(l, 99)
			res.LatencyMax = percentile(l, 100)
		}
		e.logf("  %s: latency p50 %v p99 %v (n=%d)", c.name, res.LatencyP50, res.LatencyP99, res.LatencyN)
	}
	if committed != nil {
		settle := e.ckWait
		if settle <= 0 {
			settle = c.ckSettle
		}
		res.ReplaySettle = settle
		e.logf("  %s: replay: reading checkpoints until %v after the backlog was complete (earlier if exact)", c.name, settle)
		rows, read, err := replayPhase(ctx, e, c, committed, backlogDone, settle)
		res.Replay, res.ReplayRead = rows, read
		if err != nil {
			res.ReplayErr = err.Error()
			e.logf("  %s: replay: %v", c.name, err)
		}
		for _, r := range rows {
			e.logf("  %s: group at %s: replayed %d (max %d per partition), skipped %d, no checkpoint %d/%d, stale %d; %s", c.name, r.Depth, r.Replayed, r.MaxPart, r.Skipped, r.NoCk, r.Partitions, r.Stale, r.Note)
		}
	}
	stopProcess(cmd, exited, e.logf)
	alive = false
	return res
}

type latencyOpts struct {
	rate        float64
	dur, warmup time.Duration
}

// stopProcess ends exactly the contender's own process: SIGTERM, then
// SIGKILL after 30 s.
func stopProcess(cmd *exec.Cmd, exited <-chan error, logf func(string, ...any)) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		logf("  pid %d did not stop within 30 s of SIGTERM: SIGKILL", cmd.Process.Pid)
		_ = cmd.Process.Kill()
		<-exited
	}
}
