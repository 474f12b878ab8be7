package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/godwit/godwit/internal/testkit"
)

// TestSyncPlanSchemas: `godwit sync plan` lists the subject versions it
// would register on the target's registry and changes nothing; `sync
// apply` registers them; the next plan is empty.
func TestSyncPlanSchemas(t *testing.T) {
	srcURL, dstURL := testkit.Registries(t)
	p := testkit.KfakePair(t)
	u := testkit.UniqueName(t, "cli")
	path := filepath.Join(t.TempDir(), "godwit.yaml")
	y := fmt.Sprintf(`clusters:
  primary: {bootstrap_servers: [%q], schema_registry: {url: %q}}
  secondary: {bootstrap_servers: [%q], schema_registry: {url: %q}}
flows:
  primary->secondary: {topics: ["none"], schemas: {subjects: ["%s-.*"]}}
`, p.Primary.Addrs[0], srcURL, p.Secondary.Addrs[0], dstURL, u)
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := sr.NewClient(sr.URLs(srcURL))
	if err != nil {
		t.Fatal(err)
	}
	subject := u + "-value"
	id, err := src.RegisterSchema(context.Background(), subject, sr.Schema{Schema: `{"type":"record","name":"Cli","fields":[{"name":"a","type":"int"}]}`}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := runContext(context.Background(), args, &out, &errb)
		return code, out.String() + errb.String()
	}
	actions := func(js string) []string {
		var po struct {
			Flows []struct {
				Schemas struct {
					Actions []struct {
						Kind     string `json:"kind"`
						Subject  string `json:"subject"`
						SourceID int    `json:"source_id"`
					} `json:"actions"`
				} `json:"schemas"`
			} `json:"flows"`
		}
		if err := json.Unmarshal([]byte(js), &po); err != nil {
			t.Fatalf("bad json: %v\n%s", err, js)
		}
		var out []string
		for _, a := range po.Flows[0].Schemas.Actions {
			out = append(out, fmt.Sprintf("%s %s %d", a.Kind, a.Subject, a.SourceID))
		}
		return out
	}
	code, out := run("sync", "plan", "-c", path)
	want := fmt.Sprintf("would register %s version 1 (id %d, AVRO)", subject, id)
	if code != exitOK || !strings.Contains(out, want) {
		t.Fatalf("plan: exit %d, want %q in\n%s", code, want, out)
	}
	code, out = run("sync", "plan", "-c", path, "-o", "json")
	if code != exitOK || fmt.Sprint(actions(out)) != fmt.Sprintf("[register %s %d]", subject, id) {
		t.Fatalf("plan json: exit %d, actions %v\n%s", code, actions(out), out)
	}
	dst, err := sr.NewClient(sr.URLs(dstURL))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.SchemaByVersion(context.Background(), subject, 1); err == nil {
		t.Fatal("plan registered the subject on the target")
	}
	code, out = run("sync", "apply", "-c", path)
	if code != exitOK || !strings.Contains(out, "did register "+subject) {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	got, err := dst.SchemaByVersion(context.Background(), subject, 1)
	if err != nil || got.ID != id {
		t.Fatalf("target after apply: id %d, %v; want id %d", got.ID, err, id)
	}
	code, out = run("sync", "plan", "-c", path, "-o", "json")
	if code != exitOK || len(actions(out)) != 0 {
		t.Fatalf("plan after apply: exit %d, actions %v", code, actions(out))
	}
}
