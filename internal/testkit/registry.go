package testkit

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/config"
)

// Environment variables naming the real Schema Registries (one per
// cluster, Apicurio Registry's Confluent API, started by
// scripts/registry.sh up) and the script that starts disposable ones.
const (
	EnvPrimaryRegistry   = "GODWIT_TEST_PRIMARY_REGISTRY"
	EnvSecondaryRegistry = "GODWIT_TEST_SECONDARY_REGISTRY"
	EnvRegistrySh        = "GODWIT_TEST_REGISTRY_SH"
)

// Registries are the shared real registries of the primary and secondary
// clusters. They skip t when the environment names none. They are shared
// across tests and runs: tests select only subjects named with UniqueName,
// and never register on the secondary directly (it receives the primary's
// IDs; a registration of its own would take an ID the primary hands out
// later). A test that needs a target with IDs of its own uses
// DisposableRegistry.
func Registries(t testing.TB) (primary, secondary string) {
	t.Helper()
	primary, secondary = os.Getenv(EnvPrimaryRegistry), os.Getenv(EnvSecondaryRegistry)
	if primary == "" || secondary == "" {
		t.Skipf("no real Schema Registries: set %s and %s (eval \"$(scripts/registry.sh env)\" after scripts/registry.sh up)", EnvPrimaryRegistry, EnvSecondaryRegistry)
	}
	return primary, secondary
}

// DisposableRegistry starts a fresh, empty registry owned by t (its own
// state folder and port, through scripts/registry.sh) and kills it on
// cleanup; it returns its Confluent API URL. It skips t when the
// distribution is not cached (GODWIT_TEST_REGISTRY_SH unset).
func DisposableRegistry(t testing.TB) string {
	t.Helper()
	script := os.Getenv(EnvRegistrySh)
	if script == "" {
		t.Skipf("no disposable Schema Registry: %s is unset (eval \"$(scripts/registry.sh env)\" sets it once scripts/registry.sh up has cached the distribution)", EnvRegistrySh)
	}
	dir := t.TempDir()
	var port int
	var out string
	var err error
	for attempt := 1; ; attempt++ {
		port = freePortPair(t)
		t0 := time.Now()
		out, err = runRegistry(dir, port, "up")
		if err == nil {
			t.Logf("disposable Schema Registry on 127.0.0.1:%d ready in %v", port, time.Since(t0).Round(time.Millisecond))
			break
		}
		_, _ = runRegistry(dir, port, "kill")
		if attempt == 3 || !strings.Contains(out, "already in use") {
			t.Fatalf("testkit: starting a disposable Schema Registry: %v\n%s", err, out)
		}
	}
	t.Cleanup(func() {
		if out, err := runRegistry(dir, port, "kill"); err != nil {
			t.Errorf("testkit: stopping the disposable Schema Registry on port %d: %v\n%s", port, err, out)
		}
	})
	return fmt.Sprintf("http://127.0.0.1:%d/apis/ccompat/v7", port)
}

func runRegistry(dir string, port int, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, os.Getenv(EnvRegistrySh), cmd)
	c.Env = append(os.Environ(),
		"GODWIT_REGISTRY_DIR="+dir,
		"GODWIT_REGISTRY_CLUSTERS=primary",
		"GODWIT_PRIMARY_REGISTRY_PORT="+strconv.Itoa(port),
		// A test binary that dies before its cleanup takes the registry with it.
		"GODWIT_REGISTRY_WATCH_PID="+strconv.Itoa(os.Getpid()),
	)
	var b bytes.Buffer
	c.Stdout, c.Stderr = &b, &b
	err := c.Run()
	if err != nil {
		err = fmt.Errorf("scripts/registry.sh %s: %w", cmd, err)
	}
	return b.String(), err
}

// freePortPair is a free port whose successor is free too (the registry's
// management interface listens there).
func freePortPair(t testing.TB) int {
	t.Helper()
	for range 100 {
		p := freePort(t)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatal("testkit: no free pair of loopback ports")
	return 0
}

// RegistryConfig is Config with a schema_registry on each cluster that
// registries names (alias -> Confluent API URL).
func RegistryConfig(t testing.TB, p Pair, registries map[string]string, flows string) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("clusters:\n")
	for _, e := range []Endpoint{p.Primary, p.Secondary} {
		fmt.Fprintf(&b, "  %s:\n    bootstrap_servers: [%s]\n", e.Name, quoteAll(e.Addrs))
		if u := registries[e.Name]; u != "" {
			fmt.Fprintf(&b, "    schema_registry: {url: %q}\n", u)
		}
	}
	b.WriteString("flows:\n")
	for _, l := range strings.Split(dedent(flows), "\n") {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("http:\n  listen: \"127.0.0.1:0\"\n")
	c, err := config.Parse(t.Name()+".yaml", []byte(b.String()))
	if err != nil {
		t.Fatalf("testkit: config: %v\n%s", err, b.String())
	}
	return c
}
