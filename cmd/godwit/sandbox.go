package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/godwit/godwit/internal/sandbox"
)

func init() { commands = append(commands, newSandboxCmd) }

// Default sandbox ports, fixed so a written config stays valid across runs,
// and apart from scripts/kafka.sh (19092, 29092) so both can run at once.
const (
	defaultPrimaryPort   = 19192
	defaultSecondaryPort = 29192
)

func newSandboxCmd(g *globals) *cobra.Command {
	var (
		dataDir              string
		primaryPort, secPort int
		writeConfig          string
		brokers              int
	)
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run two in-process Kafka clusters (primary, secondary) to try godwit on",
		Long: `Run two independent in-process Kafka clusters, primary and secondary, and
print their addresses and a ready godwit config replicating primary->secondary.
Runs until Ctrl-C or SIGTERM. Without --data-dir the clusters' data is
discarded on exit; with it, a later run with the same directory resumes the
same topics, records, groups and cluster IDs.`,
		Example: `  godwit sandbox --write-config sandbox.yaml
  godwit sandbox --data-dir ./sandbox-data --primary-port 0 --secondary-port 0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if brokers < 1 || brokers > 16 {
				return usagef("--brokers %d: use 1 to 16", brokers)
			}
			for _, p := range []struct {
				flag string
				v    int
			}{{"--primary-port", primaryPort}, {"--secondary-port", secPort}} {
				if p.v < 0 || p.v+brokers-1 > 65535 {
					return usagef("%s %d: use a port between 1 and 65535, or 0 for a free one", p.flag, p.v)
				}
			}
			if primaryPort != 0 && secPort != 0 && primaryPort < secPort+brokers && secPort < primaryPort+brokers {
				return usagef("--primary-port %d and --secondary-port %d overlap; the clusters need different ports", primaryPort, secPort)
			}
			s, err := sandbox.Start(cmd.Context(), sandbox.Options{
				Ports:   map[string]int{sandbox.Primary: primaryPort, sandbox.Secondary: secPort},
				DataDir: dataDir,
				Brokers: brokers,
				Logger:  g.logger().With("component", "sandbox"),
			})
			switch {
			case err != nil && cmd.Context().Err() != nil:
				return nil // interrupted while starting: a clean stop
			case errors.Is(err, syscall.EADDRINUSE):
				return fmt.Errorf("%w (is another sandbox running? pass other ports, or --primary-port 0 --secondary-port 0 for free ports)", err)
			case err != nil:
				return err
			}
			defer s.Close()

			var cfg bytes.Buffer
			if err := s.WriteConfig(&cfg); err != nil {
				return err
			}
			if writeConfig != "" {
				if err := writeFileAtomic(writeConfig, cfg.Bytes()); err != nil {
					return fmt.Errorf("--write-config: %w", err)
				}
			}
			if err := printSandbox(g, s, dataDir, writeConfig, cfg.String()); err != nil {
				return err
			}

			<-cmd.Context().Done()
			if err := s.Close(); err != nil {
				return fmt.Errorf("stopping sandbox: %w", err)
			}
			if !g.json() {
				fmt.Fprintln(g.stderr, "sandbox stopped")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "keep the clusters' data in DIR/primary and DIR/secondary across runs (default: discarded on exit)")
	f.IntVar(&primaryPort, "primary-port", defaultPrimaryPort, "port of the primary cluster (0: a free port)")
	f.IntVar(&secPort, "secondary-port", defaultSecondaryPort, "port of the secondary cluster (0: a free port)")
	f.StringVar(&writeConfig, "write-config", "", "also write the godwit config to FILE")
	f.IntVar(&brokers, "brokers", 1, "brokers per cluster, on consecutive ports")
	return cmd
}

type sandboxClusterOut struct {
	Name  string   `json:"name"`
	Addrs []string `json:"bootstrap_servers"`
	ID    string   `json:"cluster_id"`
}

func printSandbox(g *globals, s *sandbox.Sandbox, dataDir, configFile, cfg string) error {
	var cs []sandboxClusterOut
	for _, c := range s.Clusters() {
		cs = append(cs, sandboxClusterOut{c.Name, c.Addrs, c.ID})
	}
	if g.json() {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"clusters":    cs,
			"data_dir":    dataDir,
			"config_file": configFile,
			"config":      cfg,
		})
	}
	var b strings.Builder
	b.WriteString("godwit sandbox: two in-process Kafka clusters are running; Ctrl-C stops them.\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "  %-10s %s  (cluster id %s)\n", c.Name, strings.Join(c.Addrs, ","), c.ID)
	}
	if dataDir != "" {
		fmt.Fprintf(&b, "data: %s (kept across runs)\n", dataDir)
	} else {
		b.WriteString("data: temporary (discarded on exit; --data-dir keeps it)\n")
	}
	if configFile != "" {
		fmt.Fprintf(&b, "config written to %s (use it with -c %s)\n", configFile, configFile)
	}
	b.WriteString("\n" + cfg)
	_, err := fmt.Fprint(g.stdout, b.String())
	return err
}

// writeFileAtomic writes via a temporary file and rename, so a reader never
// sees a partial config.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
