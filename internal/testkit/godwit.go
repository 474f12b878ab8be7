package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// GodwitBinary builds cmd/godwit once per test process, as the release
// build does (CGO_ENABLED=0, -trimpath), for tests that run godwit as a
// real process (kill -9, scale-out, CLI, deployment checks).
func GodwitBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "godwit-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "godwit")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "github.com/godwit/godwit/cmd/godwit")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FlowConfigFile writes a config for the pair whose cluster aliases are
// unique to the test ("a<id>", "b<id>"), so tests sharing the real
// clusters never share progress topics, groups or transactional ids. The
// flow src->dst gets naming and the flow body (YAML inside {}); with
// bidirectional, dst->src gets the same. It returns the file and aliases.
func FlowConfigFile(t testing.TB, p Pair, naming, flowBody string, bidirectional bool) (path, src, dst string) {
	t.Helper()
	id := strings.TrimPrefix(UniqueName(t, "x"), "x")
	id = strings.NewReplacer("/", "", "_", "", ".", "", "-", "").Replace(id)
	if len(id) > 12 {
		id = id[len(id)-12:]
	}
	src, dst = "a"+id, "b"+id
	var b strings.Builder
	fmt.Fprintf(&b, "clusters:\n  %s: {bootstrap_servers: [%s]}\n  %s: {bootstrap_servers: [%s]}\n", src, quoteAll(p.Primary.Addrs), dst, quoteAll(p.Secondary.Addrs))
	fmt.Fprintf(&b, "flows:\n  %s->%s: {naming: %s, %s}\n", src, dst, naming, flowBody)
	if bidirectional {
		fmt.Fprintf(&b, "  %s->%s: {naming: %s, %s}\n", dst, src, naming, flowBody)
	}
	b.WriteString("http: {listen: \"127.0.0.1:0\"}\n")
	path = filepath.Join(t.TempDir(), "godwit.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, src, dst
}
