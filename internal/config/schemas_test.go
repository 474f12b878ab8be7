package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

func registryYAML(primary, secondary, flow string) string {
	return "clusters:\n" +
		"  primary:\n    bootstrap_servers: [\"127.0.0.1:19092\"]\n" + indentLines(primary, "    ") +
		"  secondary:\n    bootstrap_servers: [\"127.0.0.1:29092\"]\n" + indentLines(secondary, "    ") +
		"flows:\n  primary->secondary:\n" + indentLines(flow, "    ")
}

func TestSchemasDefaults(t *testing.T) {
	both := registryYAML(`schema_registry: {url: "http://127.0.0.1:18081/apis/ccompat/v7"}`,
		`schema_registry: {url: "http://127.0.0.1:28081/apis/ccompat/v7"}`, `topics: [".*"]`)
	c, err := Parse("t.yaml", []byte(both))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Flows["primary->secondary"]
	if !f.SchemasEnabled() || f.Schemas.Mode != SchemaPreserveIDs || f.TranslatesIDs() {
		t.Fatalf("both clusters have a registry: want schemas enabled, preserve-ids; got %+v", f.Schemas)
	}
	if !f.Schemas.SubjectSelected("orders-value") {
		t.Error("default subjects should select everything")
	}
	r := c.Clusters["primary"].SchemaRegistry
	if r.Timeout.D() != DefaultSchemaRegistryTimeout || r.Import != ImportAuto {
		t.Errorf("registry defaults: %+v", r)
	}

	one := registryYAML(`schema_registry: {url: "http://127.0.0.1:18081"}`, ``, `topics: [".*"]`)
	c, err = Parse("t.yaml", []byte(one))
	if err != nil {
		t.Fatal(err)
	}
	if c.Flows["primary->secondary"].SchemasEnabled() {
		t.Error("only the source has a registry: schemas must default to off")
	}

	sel := registryYAML(`schema_registry: {url: "http://a"}`, `schema_registry: {url: "http://b"}`,
		`schemas: {mode: translate-ids, subjects: ["orders-.*"], subjects_exclude: [".*-key"]}`)
	c, err = Parse("t.yaml", []byte(sel))
	if err != nil {
		t.Fatal(err)
	}
	f = c.Flows["primary->secondary"]
	if !f.TranslatesIDs() {
		t.Error("mode translate-ids not applied")
	}
	for subject, want := range map[string]bool{"orders-value": true, "orders-key": false, "payments-value": false, "xorders-value": false} {
		if got := f.Schemas.SubjectSelected(subject); got != want {
			t.Errorf("SubjectSelected(%q) = %v, want %v", subject, got, want)
		}
	}
}

func TestSchemasConfigErrors(t *testing.T) {
	pw := writeFile(t, "pw", secretPassword+"\n", 0o600)
	for name, c := range map[string]struct {
		yaml string
		want string
	}{
		"enabled without target registry": {
			registryYAML(`schema_registry: {url: "http://a"}`, ``, `schemas: {enabled: true}`),
			"cluster secondary has no schema_registry"},
		"bad mode": {
			registryYAML(`schema_registry: {url: "http://a"}`, `schema_registry: {url: "http://b"}`, `schemas: {mode: keep}`),
			`"keep" is not a schema mode`},
		"bad subject regex": {
			registryYAML(`schema_registry: {url: "http://a"}`, `schema_registry: {url: "http://b"}`, `schemas: {subjects: ["("]}`),
			"schemas.subjects[0]: invalid regex"},
		"not a url": {
			registryYAML(`schema_registry: {url: "localhost:8081"}`, ``, `topics: [".*"]`),
			"schema_registry.url"},
		"credentials in url": {
			registryYAML(`schema_registry: {url: "http://u:p@a"}`, ``, `topics: [".*"]`),
			"credentials in the URL"},
		"two passwords": {
			registryYAML(`schema_registry: {url: "https://a", username: u, password: x, password_file: `+pw+`}`, ``, `topics: [".*"]`),
			"at most one of password"},
		"password without user": {
			registryYAML(`schema_registry: {url: "https://a", password_file: `+pw+`}`, ``, `topics: [".*"]`),
			"needs a username"},
		"unset env": {
			registryYAML(`schema_registry: {url: "https://a", username: u, password_env: GODWIT_TEST_UNSET_SR_PW}`, ``, `topics: [".*"]`),
			"GODWIT_TEST_UNSET_SR_PW is not set"},
		"ca on http": {
			registryYAML(`schema_registry: {url: "http://a", ca_file: `+pw+`}`, ``, `topics: [".*"]`),
			"applies to https URLs only"},
		"bad import": {
			registryYAML(`schema_registry: {url: "http://a", import: zip}`, ``, `topics: [".*"]`),
			`"zip" is not an import method`},
		"unknown key": {
			registryYAML(`schema_registry: {url: "http://a", urls: x}`, ``, `topics: [".*"]`),
			"urls"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want error containing %q, got %v", c.want, err)
			}
		})
	}
}

// The registry password never leaves the process: not in config check's
// output (Redacted), not in JSON or YAML of an unredacted config, not in
// %v / %#v.
func TestRegistryPasswordRedacted(t *testing.T) {
	y := registryYAML(`schema_registry: {url: "https://a", username: godwit, password: `+secretPassword+`}`,
		`schema_registry: {url: "https://b"}`, `topics: [".*"]`)
	c, err := Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Clusters["primary"].SchemaRegistry
	if pw, err := r.ResolvePassword(); err != nil || pw != secretPassword {
		t.Fatalf("ResolvePassword = %q, %v", pw, err)
	}
	red := c.Redacted()
	if red.Clusters["primary"].SchemaRegistry.Password != RedactedValue {
		t.Error("Redacted kept the registry password")
	}
	if c.Clusters["primary"].SchemaRegistry.Password != secretPassword {
		t.Error("Redacted changed the original")
	}
	js, _ := json.Marshal(c)
	ym, _ := yaml.Marshal(c)
	for what, out := range map[string]string{
		"json": string(js), "yaml": string(ym),
		"%v": fmt.Sprintf("%v", *r), "%#v": fmt.Sprintf("%#v", *r), "%+v": fmt.Sprintf("%+v", r),
	} {
		if strings.Contains(out, secretPassword) {
			t.Errorf("%s leaks the registry password: %s", what, out)
		}
	}
	if !strings.Contains(string(js), `"url":"https://a"`) {
		t.Errorf("json lost the url: %s", js)
	}
}
