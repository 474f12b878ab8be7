package failback_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/failback"
)

// TestFailbackRefusesPrefixed: a prefixed flow is refused before any
// cluster is contacted (the addresses here answer nothing), with an error
// that says why and what to do instead, in the flow's own names.
func TestFailbackRefusesPrefixed(t *testing.T) {
	cfg, err := config.Parse("prefixed.yaml", []byte(`
clusters:
  west: {bootstrap_servers: ["127.0.0.1:1"]}
  east: {bootstrap_servers: ["127.0.0.1:1"]}
flows:
  west->east: {naming: prefixed, separator: "_", topics: ["orders"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	rep, err := failback.Run(ctx, failback.Options{Config: cfg, Flow: cfg.Flows["west->east"]})
	if err == nil || rep != nil {
		t.Fatalf("prefixed flow: report %+v, error %v; want a refusal and no report", rep, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("refusal took %v: it must not contact the clusters", took)
	}
	msg := err.Error()
	t.Logf("%s", msg)
	for _, want := range []string{
		`flow west->east uses naming "prefixed"`,
		"identical naming only", "changed nothing",
		"On east the failed-over topics are named west_<topic>",                      // why, in the flow's names
		"a prefixed east->west flow skips them",                                      // the obvious workaround does not work
		"an identical one would write west_<topic> on west",                          // nor the other one
		"remedy: stay on east", "godwit failover status -c FILE --flow 'west->east'", // what to do now
		"leaving out the records whose header godwit-origin-cluster is west",
		"replicate west->east with naming: identical", // what to do next time
	} {
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(want)) {
			t.Errorf("refusal lacks %q", want)
		}
	}
}
