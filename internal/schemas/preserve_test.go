package schemas_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/schemas"
	"github.com/godwit/godwit/internal/testkit"
)

// noKafka is a pair for configs whose tests touch only the registries.
var noKafka = testkit.Pair{
	Kind:      testkit.KindKafka,
	Primary:   testkit.Endpoint{Name: "primary", Addrs: []string{"127.0.0.1:1"}},
	Secondary: testkit.Endpoint{Name: "secondary", Addrs: []string{"127.0.0.1:2"}},
}

func avroUser(prefix string, fields ...string) string {
	fs := []string{`{"name":"id","type":"long"}`}
	for _, f := range fields {
		fs = append(fs, fmt.Sprintf(`{"name":%q,"type":"string","default":""}`, f))
	}
	ns := "godwit.n" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, prefix)
	return fmt.Sprintf(`{"type":"record","name":"User","namespace":%q,"fields":[%s]}`, ns, strings.Join(fs, ","))
}

func srClient(t testing.TB, url string) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func register(t testing.TB, cl *sr.Client, subject, schema string) int {
	t.Helper()
	id, err := cl.RegisterSchema(context.Background(), subject, sr.Schema{Schema: schema, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		t.Fatalf("register %s on the source: %v", subject, err)
	}
	return id
}

func setCompat(t testing.TB, cl *sr.Client, subject string, level sr.CompatibilityLevel) {
	t.Helper()
	if r := cl.SetCompatibility(context.Background(), sr.SetCompatibility{Level: level}, subject); r[0].Err != nil {
		t.Fatalf("set compatibility of %s: %v", subject, r[0].Err)
	}
}

func newSyncer(t testing.TB, cfg *config.Config, m *schemas.Metrics) *schemas.Syncer {
	t.Helper()
	f := cfg.Flows["primary->secondary"]
	src, err := schemas.FromConfig(cfg, "primary")
	if err != nil {
		t.Fatal(err)
	}
	dst, err := schemas.FromConfig(cfg, "secondary")
	if err != nil {
		t.Fatal(err)
	}
	return schemas.NewSyncer(schemas.Options{Flow: f, Source: src, Target: dst, Metrics: m})
}

// targetMatches checks every selected source subject version against the
// target through the Confluent API, as a consumer sees it: same versions,
// same IDs, same schema text, same soft-deleted state, same compatibility
// and the same "latest".
func targetMatches(t testing.TB, srcURL, dstURL string, subjects ...string) {
	t.Helper()
	ctx := context.Background()
	src, dst := srClient(t, srcURL), srClient(t, dstURL)
	all := sr.WithParams(ctx, sr.ShowDeleted)
	for _, s := range subjects {
		sv, err := src.SubjectVersions(all, s)
		if err != nil {
			t.Fatalf("source versions of %s: %v", s, err)
		}
		dv, err := dst.SubjectVersions(all, s)
		if err != nil {
			t.Fatalf("target versions of %s: %v", s, err)
		}
		if fmt.Sprint(sv) != fmt.Sprint(dv) {
			t.Fatalf("subject %s: source versions %v, target %v", s, sv, dv)
		}
		live, _ := src.SubjectVersions(ctx, s)
		dlive, _ := dst.SubjectVersions(ctx, s)
		if fmt.Sprint(live) != fmt.Sprint(dlive) {
			t.Errorf("subject %s: live (not soft-deleted) versions: source %v, target %v", s, live, dlive)
		}
		for _, v := range sv {
			a, err := src.SchemaByVersion(all, s, v)
			if err != nil {
				t.Fatal(err)
			}
			b, err := dst.SchemaByVersion(all, s, v)
			if err != nil {
				t.Fatalf("subject %s version %d on the target: %v", s, v, err)
			}
			if a.ID != b.ID || a.Schema.Schema != b.Schema.Schema {
				t.Errorf("subject %s version %d: source id %d %s, target id %d %s", s, v, a.ID, a.Schema.Schema, b.ID, b.Schema.Schema)
			}
			byID, err := dst.SchemaByID(ctx, a.ID)
			if err != nil || byID.Schema != a.Schema.Schema {
				t.Errorf("id %d on the target: %v %q, want %q", a.ID, err, byID.Schema, a.Schema.Schema)
			}
		}
		if len(live) > 0 {
			a, err1 := src.SchemaByVersion(ctx, s, -1)
			b, err2 := dst.SchemaByVersion(ctx, s, -1)
			if err1 != nil || err2 != nil || a.Version != b.Version || a.ID != b.ID {
				t.Errorf("subject %s latest: source %d/id %d (%v), target %d/id %d (%v)", s, a.Version, a.ID, err1, b.Version, b.ID, err2)
			}
		}
		ca := src.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), s)[0]
		cb := dst.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), s)[0]
		if ca.Err != nil || cb.Err != nil || ca.Level != cb.Level {
			t.Errorf("subject %s compatibility: source %v (%v), target %v (%v)", s, ca.Level, ca.Err, cb.Level, cb.Err)
		}
	}
}

// TestPreserveIDs: every version of the selected subjects reaches the
// target registry with its ID and version, soft-deleted state and
// compatibility; a second pass changes nothing; a new version and a new
// subject whose schema the target already holds follow on the next pass;
// unselected subjects stay away.
func TestPreserveIDs(t *testing.T) {
	srcURL, dstURL := testkit.Registries(t)
	u := testkit.UniqueName(t, "pres")
	cfg := testkit.RegistryConfig(t, noKafka, map[string]string{"primary": srcURL, "secondary": dstURL},
		fmt.Sprintf(`primary->secondary: {schemas: {subjects: ["%s-.*"], subjects_exclude: ["%s-skip-.*"]}}`, u, u))
	src := srClient(t, srcURL)
	users, orders, skip := u+"-users-value", u+"-orders-value", u+"-skip-value"
	id1 := register(t, src, users, avroUser(u))
	id2 := register(t, src, users, avroUser(u, "name"))
	id3 := register(t, src, users, avroUser(u, "name", "email"))
	setCompat(t, src, users, sr.CompatBackward)
	// the same schema under a second subject: one ID, two subjects
	if id := register(t, src, orders, avroUser(u, "name")); id != id2 {
		t.Fatalf("the source registry gave the shared schema id %d, want %d", id, id2)
	}
	if err := src.DeleteSchema(context.Background(), users, 3, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	register(t, src, skip, avroUser(u+"_skip"))

	m := schemas.NewMetrics(nil)
	s := newSyncer(t, cfg, m)
	ctx := testkit.Context(t)
	p, res, err := s.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 || len(p.Conflicts) > 0 {
		t.Fatalf("first pass: errors %v, conflicts %v", res.Errors, p.Conflicts)
	}
	if p.Subjects != 2 || p.Versions != 4 {
		t.Errorf("plan saw %d subjects / %d versions, want 2 / 4", p.Subjects, p.Versions)
	}
	if n := countActs(res.Applied, schemas.ActRegister); n != 4 {
		t.Errorf("registered %d versions, want 4: %v", n, res.Applied)
	}
	targetMatches(t, srcURL, dstURL, users, orders)
	if _, found, _ := mustReg(t, dstURL).SchemaByID(ctx, id1); !found {
		t.Errorf("id %d not resolvable on the target", id1)
	}
	if _, err := srClient(t, dstURL).SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), skip); err == nil {
		t.Errorf("excluded subject %s reached the target", skip)
	}
	_ = id3

	// Nothing left to do.
	p, _, err = s.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Actions) != 0 || p.Behind() != 0 {
		t.Fatalf("second plan not empty: %v", p.Actions)
	}

	// Evolution: a new compatible version, and a new subject whose schema
	// the target already has (its content is not imported again).
	id4 := register(t, src, users, avroUser(u, "name", "phone"))
	more := u + "-more-value"
	if id := register(t, src, more, avroUser(u)); id != id1 {
		t.Fatalf("shared schema got id %d on the source, want %d", id, id1)
	}
	_, res, err = s.Pass(ctx)
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("pass after evolution: %v %v", err, res.Errors)
	}
	if n := countActs(res.Applied, schemas.ActRegister); n != 2 {
		t.Errorf("registered %d versions, want 2 (users v4 id %d, %s v1): %v", n, id4, more, res.Applied)
	}
	targetMatches(t, srcURL, dstURL, users, orders, more)
	if v := testutil.ToFloat64(m.Behind.WithLabelValues("primary->secondary")); v != 0 {
		t.Errorf("subjects behind = %v after a clean pass", v)
	}
	if v := testutil.ToFloat64(m.Synced.WithLabelValues("primary->secondary")); v != 6 {
		t.Errorf("versions synced = %v, want 6", v)
	}
}

func mustReg(t testing.TB, url string) *schemas.Registry {
	t.Helper()
	r, err := schemas.New("x", &config.SchemaRegistry{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func countActs(acts []schemas.Action, kind string) int {
	n := 0
	for _, a := range acts {
		if a.Kind == kind {
			n++
		}
	}
	return n
}

// TestPreserveIDsRefusals: against a target registry with IDs and subjects
// of its own, preserve-ids never overwrites: a subject whose target
// version holds another schema, and an ID the target uses for another
// schema, are conflicts naming subject, version and IDs, with a remedy;
// IMPORT mode forced on a registry that ignores the requested id is an
// error saying so, found by reading the version back.
func TestPreserveIDsRefusals(t *testing.T) {
	srcURL, _ := testkit.Registries(t)
	own := ownRegistry(t)
	u := testkit.UniqueName(t, "ref")
	src, tgt := srClient(t, srcURL), srClient(t, own)

	diverged := u + "-diverged-value"
	sid := register(t, src, diverged, avroUser(u+"d"))
	register(t, tgt, diverged, avroUser(u+"d", "other"))
	// The target hands out IDs up to past the source's next one.
	taken := u + "-taken-value"
	for i := 0; ; i++ {
		if id := register(t, tgt, fmt.Sprintf("%s-own-%d-value", u, i), avroUser(fmt.Sprintf("%so%d", u, i))); id > sid+5 {
			break
		}
	}
	tid := register(t, src, taken, avroUser(u+"t"))
	if tid > sid+5 {
		t.Skipf("the source registry handed out id %d, beyond the target's %d", tid, sid+5)
	}

	cfg := testkit.RegistryConfig(t, noKafka, map[string]string{"primary": srcURL, "secondary": own},
		fmt.Sprintf(`primary->secondary: {schemas: {subjects: ["%s-(diverged|taken)-value"]}}`, u))
	p, res, err := newSyncer(t, cfg, nil).Pass(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, c := range p.Conflicts {
		msgs = append(msgs, c.Error())
	}
	msgs = append(msgs, res.Errors...)
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		fmt.Sprintf("subject %s version 1: the target's version 1 is id", diverged),
		"delete the subject on the target",
		fmt.Sprintf("subject %s version 1: id %d is already used on the target", taken, tid),
		"use schemas.mode: translate-ids",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("want %q in:\n%s", want, all)
		}
	}
	if n := countActs(res.Applied, schemas.ActRegister); n != 0 {
		t.Errorf("registered %d versions over the target's own: %v", n, res.Applied)
	}
	if p.Behind() != 2 {
		t.Errorf("subjects behind %d, want 2", p.Behind())
	}

	// IMPORT mode on a registry whose Confluent API ignores the id.
	fresh := u + "-fresh-value"
	fid := register(t, src, fresh, avroUser(u+"f"))
	cfg = testkit.RegistryConfig(t, noKafka, map[string]string{"primary": srcURL, "secondary": own},
		fmt.Sprintf(`primary->secondary: {schemas: {subjects: [%q]}}`, fresh))
	cfg.Clusters["secondary"].SchemaRegistry.Import = config.ImportMode
	_, res, err = newSyncer(t, cfg, nil).Pass(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0], fmt.Sprintf("want %d", fid)) || !strings.Contains(res.Errors[0], "ignored the requested id") {
		t.Fatalf("IMPORT mode on Apicurio: errors %v", res.Errors)
	}
}
