package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/drill"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/sandbox"
)

func init() { commands = append(commands, newDemoCmd) }

// Demo cluster names: two regions.
const (
	demoPrimary   = "us-west-2"
	demoSecondary = "us-east-1"
)

func newDemoCmd(g *globals) *cobra.Command {
	var outDir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Two embedded clusters, replication, an unplanned failover drill and its report, in under a minute",
		Long: `Starts two in-process Kafka clusters named ` + demoPrimary + ` and ` + demoSecondary + `, replicates
` + demoPrimary + `->` + demoSecondary + ` exactly once, runs the default drill (steady and peak workload,
a consumer group, then ` + demoPrimary + ` goes down: detection, decision, unplanned
failover, the group resumes on ` + demoSecondary + `) and writes the report (report.html,
report.md, report.json) to --out. Nothing outside the process is touched.`,
		Example: `  godwit demo
  godwit demo --out /tmp/godwit-demo && xdg-open /tmp/godwit-demo/report.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return err
			}
			if !g.json() {
				fmt.Fprintf(g.stdout, "godwit demo: starting two embedded clusters, %s and %s\n", demoPrimary, demoSecondary)
			}
			s, err := sandbox.Start(cmd.Context(), sandbox.Options{Names: []string{demoPrimary, demoSecondary}})
			if err != nil {
				return err
			}
			defer s.Close()
			var raw bytes.Buffer
			if err := s.WriteConfig(&raw); err != nil {
				return err
			}
			sc, err := drillreport.LoadScenario("")
			if err != nil {
				return err
			}
			sc.Name = "demo: " + demoPrimary + " goes down"
			// A stand-in for moving clients (DNS, service discovery): it
			// records where they go, in the report directory.
			hookOut, err := filepath.Abs(filepath.Join(outDir, "cutover.txt"))
			if err != nil {
				return err
			}
			sc.Failover.CutoverCommand = `echo "clients of $GODWIT_TARGET_TOPICS now use $GODWIT_BOOTSTRAP_SERVERS ($GODWIT_TARGET_CLUSTER), groups $GODWIT_GROUPS" > ` + shellQuote(hookOut)
			cfgPath := filepath.Join(outDir, "godwit-demo.yaml")
			cfg, f, prepared, err := drill.PrepareConfig(cfgPath, raw.Bytes(), "", sc.Failover.CutoverCommand)
			if err != nil {
				return err
			}
			if err := os.WriteFile(cfgPath, prepared, 0o600); err != nil {
				return err
			}
			return runDrill(g, cmd, drill.Options{
				Config: cfg, Flow: f, ConfigPath: cfgPath, Scenario: sc, Sandbox: s,
			}, outDir, "")
		},
	}
	cmd.Flags().StringVar(&outDir, "out", "godwit-demo", "directory for the report (report.html, report.md, report.json, drill.prom)")
	return cmd
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
