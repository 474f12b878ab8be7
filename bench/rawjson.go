package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// rawSchema is the version of the raw results' JSON layout; it changes
// when a field changes meaning or is removed (added fields keep it).
const rawSchema = 1

// rawReport is one run's raw results (-json): what the Markdown section
// shows, unrounded, plus what it summarises (replay per partition) and the
// run's settings and versions, for tools that compare runs.
type rawReport struct {
	Schema     int         `json:"schema"`
	Section    string      `json:"section"`
	Preset     string      `json:"preset"`
	Records    int64       `json:"records"`
	ValueBytes int         `json:"value_bytes"`
	Partitions int32       `json:"partitions"`
	Command    string      `json:"command"`
	Started    time.Time   `json:"started"`
	Machine    machineInfo `json:"machine"`
	Versions   versions    `json:"versions"`
	Settings   runSettings `json:"settings"`
	Load       rawLoad     `json:"load"`
	Contenders []rawResult `json:"contenders"`
}

type rawLoad struct {
	Elapsed time.Duration `json:"elapsed_ns"`
	MBps    float64       `json:"mb_per_s"`
}

// rawResult is a contender's measurements with its settings and the
// rates the tables derive from them.
type rawResult struct {
	result
	Settings  string  `json:"settings"`
	MBps      float64 `json:"mb_per_s"`
	RecPerSec float64 `json:"records_per_s"`
	CPUPerGB  float64 `json:"cpu_s_per_gb"`
}

// machineInfo is the host the run was measured on.
type machineInfo struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemBytes uint64 `json:"mem_bytes"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
}

// versions of what was measured. Empty fields were not found.
type versions struct {
	Go   string `json:"go"`
	Java string `json:"java,omitempty"`
	// Godwit is `git describe --always --dirty` of the checkout the
	// godwit contenders were built from ("-dirty": with uncommitted
	// changes).
	Godwit string `json:"godwit,omitempty"`
	// MirrorMaker2 is the connect-mirror jar's version in -mm2-libs,
	// when an mm2 contender ran.
	MirrorMaker2 string `json:"mirrormaker2,omitempty"`
	// KafkaSource and KafkaTarget are franz-go's guess from the brokers'
	// ApiVersions answers (kversion.VersionGuess).
	KafkaSource string `json:"kafka_source,omitempty"`
	KafkaTarget string `json:"kafka_target,omitempty"`
}

// runSettings are the flags that shape the measurements.
type runSettings struct {
	Contenders     []string      `json:"contenders"`
	Primary        string        `json:"primary"`
	Secondary      string        `json:"secondary"`
	Verify         bool          `json:"verify"`
	Timeout        time.Duration `json:"timeout_ns"`
	Replay         bool          `json:"replay"`
	CheckpointWait time.Duration `json:"checkpoint_wait_ns"` // 0: each contender's own bound
	Latency        *rawLatency   `json:"latency"`            // null: -latency=false
	WAN            *rawWAN       `json:"wan"`                // null: no latency proxy
}

type rawLatency struct {
	RateMBps float64       `json:"rate_mb_per_s"`
	Duration time.Duration `json:"duration_ns"`
	Warmup   time.Duration `json:"warmup_ns"`
}

type rawWAN struct {
	DelayOneWay time.Duration `json:"delay_one_way_ns"`
	Listen      string        `json:"listen"`
	Upstream    string        `json:"upstream"`
}

func (r report) raw() rawReport {
	out := rawReport{
		Schema: rawSchema, Section: r.Section, Preset: r.Preset,
		Records: r.P.records, ValueBytes: r.P.size, Partitions: r.P.partitions,
		Command: r.Command, Started: r.Started, Machine: r.MachineInfo, Versions: r.Versions, Settings: r.Settings,
		Load:       rawLoad{Elapsed: r.LoadTime, MBps: r.LoadMBps},
		Contenders: []rawResult{},
	}
	settings := map[string]string{}
	for _, c := range r.Contenders {
		settings[c.name] = c.settings
	}
	for _, res := range r.Results {
		out.Contenders = append(out.Contenders, rawResult{
			result: res, Settings: settings[res.Name],
			MBps: res.MBps(), RecPerSec: res.RecPerSec(), CPUPerGB: res.CPUPerGB(),
		})
	}
	return out
}

// rawJSONPath is where the raw results go: flagJSON if set ("none":
// nowhere; relative paths from the repository root, as -out), else, with
// -out, <out without .md>/<section>.json (docs/benchmarks/results-mid.json
// for -out docs/benchmarks.md), else nowhere ("").
func rawJSONPath(root, flagJSON, out, section string) string {
	switch {
	case flagJSON == "none":
		return ""
	case flagJSON != "":
		if filepath.IsAbs(flagJSON) {
			return flagJSON
		}
		return filepath.Join(root, flagJSON)
	case out == "":
		return ""
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	return filepath.Join(strings.TrimSuffix(out, filepath.Ext(out)), section+".json")
}

// writeRawJSON writes the raw results through a temporary file and a
// rename, so a reader never sees half a file.
func writeRawJSON(path string, r rawReport) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode raw results: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("raw results: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write raw results: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write raw results %s: %w", path, err)
	}
	return nil
}

// probeMachine reads the host's CPUs and memory.
func probeMachine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				var kb uint64
				fmt.Sscan(f[1], &kb)
				m.MemBytes = kb << 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// describe is the one-line machine description of the Markdown report.
func (m machineInfo) describe(v versions) string {
	mem := ""
	if m.MemBytes > 0 {
		mem = fmt.Sprintf("%.0f GiB RAM", float64(m.MemBytes)/(1<<30))
	}
	return fmt.Sprintf("%d CPUs (%s), %s, %s/%s, %s, %s", m.CPUs, m.CPUModel, mem, m.OS, m.Arch, v.Go, v.Java)
}

// probeVersions finds the versions of the run's parts; one it cannot
// find stays empty rather than failing the run.
func probeVersions(ctx context.Context, root, mm2Libs string, withMM2 bool, src, dst *kadm.Client) versions {
	v := versions{Go: runtime.Version()}
	if o, err := exec.CommandContext(ctx, "java", "-version").CombinedOutput(); err == nil {
		v.Java = strings.SplitN(strings.TrimSpace(string(o)), "\n", 2)[0]
	}
	g := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty")
	g.Dir = root
	if o, err := g.Output(); err == nil {
		v.Godwit = strings.TrimSpace(string(o))
	}
	if withMM2 {
		v.MirrorMaker2 = mm2Version(mm2Libs)
	}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v.KafkaSource, v.KafkaTarget = kafkaVersion(vctx, src), kafkaVersion(vctx, dst)
	return v
}

// mm2Version reads the version from the connect-mirror jar's name.
func mm2Version(libs string) string {
	jars, _ := filepath.Glob(filepath.Join(libs, "connect-mirror-*.jar"))
	for _, j := range jars {
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(j), "connect-mirror-"), ".jar")
		if v != "" && v[0] >= '0' && v[0] <= '9' { // not connect-mirror-client-*
			return v
		}
	}
	return ""
}

func kafkaVersion(ctx context.Context, adm *kadm.Client) string {
	if adm == nil {
		return ""
	}
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		return ""
	}
	var guesses []string
	for _, b := range vs.Sorted() {
		if b.Err == nil {
			if g := b.VersionGuess(); !slices.Contains(guesses, g) {
				guesses = append(guesses, g)
			}
		}
	}
	return strings.Join(guesses, ", ")
}
