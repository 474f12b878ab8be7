package audit_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/godwit/godwit/internal/audit"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/schemas"
	"github.com/godwit/godwit/internal/testkit"
)

// TestAuditSchemaParity: the schema parity check fails while a schema ID
// referenced by the target's records is missing on the target's registry
// (with the record and the ID as evidence), and passes once the schemas
// are in step.
func TestAuditSchemaParity(t *testing.T) {
	p, ok := testkit.RealPair(t)
	if !ok {
		t.Skip("no real Kafka: set GODWIT_TEST_PRIMARY and GODWIT_TEST_SECONDARY")
	}
	srcURL, dstURL := testkit.Registries(t)
	u := strings.NewReplacer(".", "", "_", "", "-", "").Replace(testkit.UniqueName(t, "s"))
	if len(u) > 14 {
		u = u[len(u)-14:]
	}
	n := names{src: "a" + u, dst: "b" + u, prefix: "sch" + u}
	topic := n.prefix + ".orders"
	y := fmt.Sprintf(`clusters:
  %s: {bootstrap_servers: [%s], schema_registry: {url: %q}}
  %s: {bootstrap_servers: [%s], schema_registry: {url: %q}}
flows:
  %s->%s: {topics: [%q], schemas: {subjects: [%q]}}
`, n.src, quote(p.Primary.Addrs), srcURL, n.dst, quote(p.Secondary.Addrs), dstURL, n.src, n.dst, topic, topic+"-.*")
	cfg, err := config.Parse(t.Name()+".yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	testkit.CreateTopic(t, p.Primary, topic, 1, nil)
	target := n.src + "." + topic
	testkit.CreateTopic(t, p.Secondary, target, 1, nil)

	reg, err := sr.NewClient(sr.URLs(srcURL))
	if err != nil {
		t.Fatal(err)
	}
	id, err := reg.RegisterSchema(context.Background(), topic+"-value", sr.Schema{Schema: `{"type":"record","name":"Audit","doc":"` + u + `","fields":[{"name":"a","type":"long"}]}`}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	// Records as a replicator copied them: framed with the source's ID.
	val := []byte{0, 0, 0, 0, 0, 2}
	binary.BigEndian.PutUint32(val[1:5], uint32(id))
	cl := testkit.Client(t, p.Secondary)
	for range 3 {
		if err := cl.ProduceSync(testkit.Context(t), &kgo.Record{Topic: target, Key: []byte("k"), Value: val}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	check := func() audit.Check {
		t.Helper()
		rep, err := audit.Run(testkit.Context(t), audit.Options{Config: cfg, Flows: []*config.Flow{cfg.Flows[n.src+"->"+n.dst]}, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Checks {
			if c.ID == audit.IDSchemaParity {
				return c
			}
		}
		t.Fatalf("no %s check in %+v", audit.IDSchemaParity, rep.Checks)
		return audit.Check{}
	}

	c := check()
	missing := fmt.Sprintf("schema id %d is not on the target's registry", id)
	if c.Status != audit.Fail || !strings.Contains(c.Evidence, missing) || !strings.Contains(c.Evidence, target+"[0]@0 value") ||
		!strings.Contains(c.Evidence, "1 of 1 subjects not in step") || !strings.Contains(c.Remedy, "godwit sync apply") {
		t.Fatalf("with the schema missing on the target: %s %q (remedy %q)", c.Status, c.Evidence, c.Remedy)
	}

	src, _ := schemas.FromConfig(cfg, n.src)
	dst, _ := schemas.FromConfig(cfg, n.dst)
	if _, res, err := schemas.NewSyncer(schemas.Options{Flow: cfg.Flows[n.src+"->"+n.dst], Source: src, Target: dst}).Pass(testkit.Context(t)); err != nil || len(res.Errors) > 0 {
		t.Fatalf("sync pass: %v %v", err, res)
	}
	c = check()
	if c.Status != audit.Pass || !strings.Contains(c.Evidence, "1 schema IDs in the newest 100 records per partition (3 read)") {
		t.Fatalf("in step: %s %q", c.Status, c.Evidence)
	}
}
