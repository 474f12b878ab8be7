package drill

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/testkit"
)

// TestDrillSchemas: with schema registries on both clusters, the drill
// writes its workload in the Confluent wire format (Avro, schema
// registered on the source's registry), the replicator syncs the schema,
// and every record the drill reads on the target decodes through the
// target's registry; the report says how many did and did not.
func TestDrillSchemas(t *testing.T) {
	srcURL, dstURL := testkit.Registries(t)
	s := testkit.KfakePair(t).Sandbox
	var b bytes.Buffer
	if err := s.WriteConfig(&b); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	clusters := raw["clusters"].(map[string]any)
	urls := map[string]string{"primary": srcURL, "secondary": dstURL}
	for alias, c := range clusters {
		c.(map[string]any)["schema_registry"] = map[string]any{"url": urls[alias]}
	}
	data, err := yaml.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg, flow, out, err := PrepareConfig("sandbox.yaml", data, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !flow.SchemasEnabled() || !flow.Schemas.SubjectSelected(drillreport.TopicPrefix+"x-value") || flow.Schemas.SubjectSelected("orders-value") {
		t.Fatalf("drill flow schemas: %+v", flow.Schemas)
	}
	path := filepath.Join(t.TempDir(), "drill.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	res, err := Run(context.Background(), Options{
		Config: cfg, Flow: flow, ConfigPath: path, Scenario: shortScenario(t, drillreport.FaultNone),
		Sandbox: s, Progress: &progress, Suffix: testkit.UniqueName(t, "s")[len(testkit.UniqueName(t, "s"))-8:],
	})
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, progress.String())
	}
	r := res.Report
	sr := r.Schemas
	if sr == nil {
		t.Fatal("report has no schemas section")
	}
	if sr.Undecodable != 0 || sr.Decoded < r.Totals.OnTarget || len(sr.Subjects) != 1 {
		t.Fatalf("schemas: decoded %d (on target %d), undecodable %d, subjects %v, errors %v", sr.Decoded, r.Totals.OnTarget, sr.Undecodable, sr.Subjects, sr.Errors)
	}
	found := false
	for _, o := range r.Objectives {
		if o.Name == "schemas" {
			found = o.Pass
		}
	}
	if !found || !r.Passed {
		t.Errorf("schemas objective not passed: %+v", r.Objectives)
	}
	md := r.Markdown()
	if !strings.Contains(md, "## Schema Registry") || !strings.Contains(md, ", 0 could not be decoded") {
		t.Errorf("markdown lacks the schema section:\n%s", md)
	}
}
