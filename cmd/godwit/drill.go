package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/drill"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/drillstats"
)

func init() { commands = append(commands, newDrillCmd) }

func newDrillCmd(g *globals) *cobra.Command {
	var (
		scenarioPath, outDir, flow, replicator string
		cleanup                                bool
	)
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Run a disaster-recovery drill (workload, fault, failover) and write an evidence report",
		Long: `Runs a DR drill on drill topics (` + drillreport.TopicPrefix + `*, never production topics):
a sequence-numbered workload (steady, peak, steady), consumer groups processing
read_committed, a fault (source-down, replicator-crash, network-partition, or
none for a planned failover), godwit failover with the groups moved to the target, and a report
(report.html, report.md, report.json in --out) whose figures are counted by the
drill's own checker from sequence numbers: replication lag over time, records
lost vs godwit's at-risk figure, replayed records by cause (after the last
commit, after godwit's last checkpoint, by offset translation) and skipped
records, RTO phase by phase. drill.prom in --out holds the results as
Prometheus gauges (node_exporter textfile format). With drill.reports in the
config and no --out, everything goes to <drill.reports>/<time>-<flow>, where
godwit audit and godwit replicate read it. The drill runs its own replicator
for the flow, restricted to the drill topics. Exits 1 when an objective is
missed (rpo_objective, rto_objective, or the Kafka Connect check when the
scenario has a connect block).`,
		Example: `  # defaults: 1 topic with 6 partitions, source-down fault (needs fault.command on real clusters)
  godwit drill -c godwit.yaml --scenario drill.yaml --out drill-report

  # scenario file (every key optional; see docs/drill.md)
  #   topics: [{name: orders, partitions: 12}]
  #   workload: {rate: 2000, record_size: 1024, peak: {rate: 10000, duration: 30s}}
  #   fault: {type: replicator-crash, restart_after: 5s}
  #   objectives: {rpo_objective: 2s, rto_objective: 60s}
  godwit drill -c godwit.yaml --scenario crash.yaml -o json

  # network partition between the regions, cut by the drill's own proxy
  #   fault: {type: network-partition}
  godwit drill -c godwit.yaml --scenario partition.yaml --replicator in-process`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			orig, err := g.loadConfig()
			if err != nil {
				return err
			}
			data := orig.Raw()
			sc, err := drillreport.LoadScenario(scenarioPath)
			if err != nil {
				return usageError{err}
			}
			if flow != "" {
				sc.Flow = flow
			}
			cfg, f, prepared, err := drill.PrepareConfig(g.configPath, data, sc.Flow, sc.Failover.CutoverCommand)
			if err != nil {
				return usageError{err}
			}
			switch {
			case outDir != "":
			case orig.Drill.Reports != "":
				// Where godwit audit and godwit replicate look for it.
				outDir = drillreport.ReportDir(orig.Drill.Reports, f.Name, time.Now())
			default:
				outDir = "godwit-drill-" + time.Now().UTC().Format("20060102-150405")
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return fmt.Errorf("drill output directory: %w", err)
			}
			cfgPath := filepath.Join(outDir, "drill-config.yaml")
			if err := os.WriteFile(cfgPath, prepared, 0o600); err != nil {
				return err
			}
			var b [3]byte
			_, _ = rand.Read(b[:])
			o := drill.Options{
				Config: cfg, Flow: f, ConfigPath: cfgPath, Scenario: sc,
				Suffix: hex.EncodeToString(b[:]), Cleanup: cleanup,
			}
			switch replicator {
			case "auto", "process":
				exe, err := os.Executable()
				if err == nil && !strings.HasSuffix(exe, ".test") {
					log, lerr := os.Create(filepath.Join(outDir, "replicator.log"))
					if lerr != nil {
						return lerr
					}
					defer log.Close()
					o.Replicator = drill.Process(exe, log)
				} else if replicator == "process" {
					return usagef("--replicator process: cannot find the godwit executable (%v)", err)
				}
			case "in-process":
			default:
				return usagef("--replicator %q: use auto, process or in-process", replicator)
			}
			return runDrill(g, cmd, o, outDir, orig.Drill.Reports)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&scenarioPath, "scenario", "", "scenario file (YAML; default: the built-in scenario)")
	fl.StringVar(&outDir, "out", "", "directory for report.html, report.md, report.json and drill.prom (default: <drill.reports>/<time>-<flow> when the config sets drill.reports, else godwit-drill-<time>)")
	fl.StringVar(&flow, "flow", "", "flow to drill (quoted: --flow 'A->B'); default the scenario's, else the first enabled flow")
	fl.StringVar(&replicator, "replicator", "auto", "how the drill runs its replicator: process (this binary, SIGKILL for a crash), in-process, or auto (process when possible)")
	fl.BoolVar(&cleanup, "cleanup", false, "delete the drill topics on both clusters at the end")
	return cmd
}

// runDrill runs a drill, writes its report and drill.prom into outDir and
// prints the outcome; a missed objective is an error (exit 1). reportsDir
// is the config's drill.reports ("" when not set).
func runDrill(g *globals, cmd *cobra.Command, o drill.Options, outDir, reportsDir string) error {
	if !g.json() {
		o.Progress = g.stdout
	}
	if o.Logger == nil {
		lg, err := os.Create(filepath.Join(outDir, "godwit.log"))
		if err != nil {
			return err
		}
		defer lg.Close()
		o.Logger = (&globals{logLevel: g.logLevel, stderr: lg}).logger()
	}
	res, err := drill.Run(cmd.Context(), o)
	if err != nil {
		return err
	}
	r := res.Report
	if err := r.Write(outDir); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if err := writeDrillProm(outDir, reportsDir, r); err != nil {
		return err
	}
	if g.json() {
		js, err := r.JSON()
		if err != nil {
			return err
		}
		if _, err := g.stdout.Write(js); err != nil {
			return err
		}
	} else {
		html, _ := filepath.Abs(filepath.Join(outDir, drillreport.FileHTML))
		fmt.Fprintf(g.stdout, "\n%s\n\n", r.Statement)
		for _, ob := range r.Objectives {
			fmt.Fprintf(g.stdout, "  %-4s objective %-8s achieved %-8s %s\n", strings.ToUpper(ob.Name), fmtSeconds(ob.Target), fmtSeconds(ob.Achieved), map[bool]string{true: "PASS", false: "FAIL"}[ob.Pass])
		}
		fmt.Fprintf(g.stdout, "\nreport: %s (also report.md, report.json and %s, the results as Prometheus metrics, in %s)\n", html, drillProm, outDir)
	}
	if !r.Passed {
		var missed []string
		for _, ob := range r.Objectives {
			if !ob.Pass {
				missed = append(missed, fmt.Sprintf("%s (objective %s, achieved %s)", strings.ToUpper(ob.Name), fmtSeconds(ob.Target), fmtSeconds(ob.Achieved)))
			}
		}
		return fmt.Errorf("drill objective missed: %s", strings.Join(missed, ", "))
	}
	return nil
}

func fmtSeconds(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.0fms", s*1000)
	}
	return fmt.Sprintf("%.1fs", s)
}

// drillProm is the file runDrill writes the drill's results to as
// Prometheus metrics.
const drillProm = "drill.prom"

// writeDrillProm writes outDir/drill.prom (node_exporter textfile
// format): the godwit_drill_* gauges of this drill and, when drill.reports
// is configured, of the drills stored there, so the file also says when
// the last passing drill was.
func writeDrillProm(outDir, reportsDir string, r *drillreport.Report) error {
	self, err := filepath.Abs(filepath.Join(outDir, drillreport.FileJSON))
	if err != nil {
		return err
	}
	var reports []drillreport.Stored
	var unreadable int
	found := false
	if reportsDir != "" {
		stored, bad, err := drillreport.LoadReports(reportsDir)
		if err != nil {
			return fmt.Errorf("reading drill.reports for %s: %w", drillProm, err)
		}
		for _, s := range stored {
			if p, err := filepath.Abs(s.Path); err == nil && p == self {
				found = true
			}
		}
		reports, unreadable = stored, len(bad)
	}
	if !found {
		reports = append(reports, drillreport.Stored{Path: self, Report: r})
		sort.SliceStable(reports, func(i, j int) bool { return reports[i].Finished().Before(reports[j].Finished()) })
	}
	if err := drillstats.WriteTextfile(filepath.Join(outDir, drillProm), reports, unreadable); err != nil {
		return fmt.Errorf("writing %s: %w", drillProm, err)
	}
	return nil
}
