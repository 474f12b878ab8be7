package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/godwit/godwit/"

// layers is the table in docs/architecture.md ("Who may import whom"): a
// package may import only packages of a lower layer, so nothing points
// back up and two packages of one layer (failover and failback) share
// only what lies below them. A new package needs a row here and there.
var layers = map[string]int{
	// Foundations: no godwit package below them.
	"internal/bandwidth": 0,
	"internal/config":    0,
	"internal/connect":   0,
	"internal/cost":      0,
	"internal/kafkautil": 0,
	"internal/logging":   0,
	"internal/metrics":   0,
	"internal/netfault":  0,
	"internal/workload":  0,
	// Names, clients, embedded clusters and the drill's formats.
	"internal/cluster":     1,
	"internal/naming":      1,
	"internal/sandbox":     1,
	"internal/drillreport": 1,
	"internal/flowstate":   1,
	// State on the target that several commands read and write.
	"internal/journal":    2,
	"internal/metasync":   2,
	"internal/drillstats": 2,
	"internal/testkit":    2,
	"internal/schemas":    2,
	// The data plane, then offsets on top of its formats.
	"internal/replicate": 3,
	"internal/offsets":   4,
	// Commands' engines: none of them imports another.
	"internal/failover": 5,
	"internal/failback": 5,
	"internal/audit":    5,
	"internal/adopt":    5,
	"internal/drill":    6,
	// Runs the engines inside tests (imports replicate and offsets).
	"internal/testkit/inproc": 5,
	// Binaries and their tests.
	"cmd/godwit":        7,
	"bench":             7,
	"deploy":            7,
	"scripts/kafkasec":  7,
	"internal/archtest": 7,
}

// readOnly must stay cheap to import and free of Kafka test clusters:
// godwit audit and the drill exporter run beside production.
var readOnly = []string{"internal/drillreport", "internal/drillstats", "internal/audit"}

type pkg struct {
	path    string
	imports []string // godwit packages, direct
	deps    []string // every package, transitive
}

func list(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .Deps \" \"}}", module+"...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 3 {
			t.Fatalf("go list line %q", sc.Text())
		}
		p := pkg{path: strings.TrimPrefix(f[0], module), deps: strings.Fields(f[2])}
		for _, i := range strings.Fields(f[1]) {
			if strings.HasPrefix(i, module) {
				p.imports = append(p.imports, strings.TrimPrefix(i, module))
			}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestLayers: every package's godwit imports are of a lower layer.
func TestLayers(t *testing.T) {
	for _, p := range list(t) {
		l, ok := layers[p.path]
		if !ok {
			t.Errorf("%s is not in the layer table: add it to layers here and to \"Who may import whom\" in docs/architecture.md", p.path)
			continue
		}
		for _, i := range p.imports {
			li, ok := layers[i]
			if ok && li >= l {
				t.Errorf("%s (layer %d) imports %s (layer %d): a package imports only lower layers (docs/architecture.md, Who may import whom)", p.path, l, i, li)
			}
		}
	}
}

// TestReadOnlyPackagesStayLight: the report readers pull in neither the
// drill engine nor in-process Kafka clusters.
func TestReadOnlyPackagesStayLight(t *testing.T) {
	banned := []string{"github.com/twmb/franz-go/pkg/kfake", module + "internal/drill", module + "internal/sandbox",
		module + "internal/netfault", module + "internal/failover", module + "internal/failback", module + "internal/testkit"}
	for _, p := range list(t) {
		if !slices.Contains(readOnly, p.path) {
			continue
		}
		for _, b := range banned {
			if slices.Contains(p.deps, b) {
				t.Errorf("%s depends on %s (go list -deps ./%s)", p.path, b, p.path)
			}
		}
	}
}

// TestProductionCodeHasNoTestKit: only tests import the test kit.
func TestProductionCodeHasNoTestKit(t *testing.T) {
	for _, p := range list(t) {
		if strings.HasPrefix(p.path, "internal/testkit") {
			continue
		}
		for _, d := range p.deps {
			if d == module+"internal/testkit" || strings.HasPrefix(d, module+"internal/testkit/") {
				t.Errorf("%s depends on %s, which is for tests only", p.path, d)
			}
		}
	}
}
