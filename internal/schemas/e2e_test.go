package schemas_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/schemas"
	"github.com/godwit/godwit/internal/testkit"
)

const (
	recV1 = `{"type":"record","name":"Rec","namespace":"godwit.e2e","fields":[{"name":"seq","type":"long"},{"name":"name","type":"string"}]}`
	// recV2 adds a field with a default: BACKWARD compatible with v1.
	recV2 = `{"type":"record","name":"Rec","namespace":"godwit.e2e","fields":[{"name":"seq","type":"long"},{"name":"name","type":"string"},{"name":"note","type":"string","default":""}]}`
)

type recOne struct {
	Seq  int64  `avro:"seq"`
	Name string `avro:"name"`
}

type recTwo struct {
	Seq  int64  `avro:"seq"`
	Name string `avro:"name"`
	Note string `avro:"note"`
}

// e2eConfig writes a godwit config with test-unique cluster aliases (so
// the flow's internal topics, group and transactional ids are the test's
// own) and a schema registry per cluster.
func e2eConfig(t *testing.T, p testkit.Pair, srcURL, dstURL, topic, subjects, mode string) (path, src, dst string) {
	t.Helper()
	id := strings.NewReplacer(".", "", "-", "", "_", "", "/", "").Replace(strings.TrimPrefix(testkit.UniqueName(t, "x"), "x"))
	if len(id) > 12 {
		id = id[len(id)-12:]
	}
	src, dst = "a"+id, "b"+id
	y := fmt.Sprintf(`clusters:
  %s: {bootstrap_servers: [%q], schema_registry: {url: %q}}
  %s: {bootstrap_servers: [%q], schema_registry: {url: %q}}
flows:
  %s->%s:
    topics: [%q]
    refresh_interval: 1s
    heartbeats: false
    schemas: {subjects: [%q], mode: %s}
http: {listen: "127.0.0.1:0"}
`, src, p.Primary.Addrs[0], srcURL, dst, p.Secondary.Addrs[0], dstURL, src, dst, topic, subjects, mode)
	path = filepath.Join(t.TempDir(), "godwit.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.DeleteTopicsOnCleanup(t, p.Secondary, dst)
	return path, src, dst
}

// replicator is `godwit replicate` as a real process.
type replicator struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startReplicate(t *testing.T, cfg string) *replicator {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "replicate-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testkit.GodwitBinary(t), "replicate", "-c", cfg, "--log-level", "info")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &replicator{cmd: cmd, log: logf.Name(), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(r.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-r.done
		if t.Failed() {
			b, _ := os.ReadFile(r.log)
			s := string(b)
			if len(s) > 6000 {
				s = s[len(s)-6000:]
			}
			t.Logf("replicator log (tail):\n%s", s)
		}
	})
	return r
}

func (r *replicator) logText() string {
	b, _ := os.ReadFile(r.log)
	return string(b)
}

// produced is what the source producer wrote: per sequence number, the
// schema ID and the record's value bytes.
type produced struct {
	ids   map[int64]int
	bytes map[int64][]byte
}

// produce writes records seq [from, to) with the Confluent wire format
// (franz-go's sr.Serde) for schema id, v1 or v2 shape.
func produce(t *testing.T, cl *kgo.Client, topic string, serde *sr.Serde, id int, v2 bool, from, to int64, out *produced) {
	t.Helper()
	var recs []*kgo.Record
	for seq := from; seq < to; seq++ {
		var v any = recOne{Seq: seq, Name: fmt.Sprintf("n%d", seq)}
		if v2 {
			v = recTwo{Seq: seq, Name: fmt.Sprintf("n%d", seq), Note: "v2"}
		}
		b, err := serde.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		out.ids[seq], out.bytes[seq] = id, b
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(seq)), Value: b})
	}
	if err := cl.ProduceSync(testkit.Context(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// decoded is what the target consumer read: per sequence number, the
// schema ID in the record and the value bytes.
type decoded struct {
	ids   map[int64]int
	bytes map[int64][]byte
}

// consumeAndDecode reads the target topic from the start until n records
// decoded, each through the target registry (ID -> schema -> Avro decode),
// and checks every sequence number came once with its fields.
func consumeAndDecode(t *testing.T, p testkit.Pair, topic, registry string, n int64) decoded {
	t.Helper()
	cl := testkit.Client(t, p.Secondary, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	reg := srClient(t, registry)
	var mu sync.Mutex
	schemasByID := map[int]*avro.Schema{}
	resolve := func(id int) (*avro.Schema, error) {
		mu.Lock()
		defer mu.Unlock()
		if s, ok := schemasByID[id]; ok {
			return s, nil
		}
		ss, err := reg.SchemaByID(context.Background(), id)
		if err != nil {
			return nil, err
		}
		s, err := avro.Parse(ss.Schema)
		if err != nil {
			return nil, err
		}
		schemasByID[id] = s
		return s, nil
	}
	got := decoded{ids: map[int64]int{}, bytes: map[int64][]byte{}}
	var pending []*kgo.Record
	var lastErr error
	testkit.Eventually(t, 2*time.Minute, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { pending = append(pending, r) })
		// A record whose schema has not reached the target registry yet
		// waits (preserve-ids follows within the refresh interval).
		var still []*kgo.Record
		for _, r := range pending {
			id, payload, err := (&sr.ConfluentHeader{}).DecodeID(r.Value)
			if err != nil {
				t.Fatalf("target record at offset %d is not Confluent-framed: %v", r.Offset, err)
			}
			s, err := resolve(id)
			if err != nil {
				lastErr = fmt.Errorf("offset %d: schema id %d on the target: %w", r.Offset, id, err)
				still = append(still, r)
				continue
			}
			var m map[string]any
			if _, err := s.Decode(payload, &m); err != nil {
				t.Fatalf("target record at offset %d (schema id %d) does not decode: %v", r.Offset, id, err)
			}
			seq, _ := m["seq"].(int64)
			if _, dup := got.ids[seq]; dup {
				t.Fatalf("seq %d twice on the target", seq)
			}
			if m["name"] != fmt.Sprintf("n%d", seq) {
				t.Fatalf("seq %d decoded with name %v", seq, m["name"])
			}
			got.ids[seq], got.bytes[seq] = id, r.Value
		}
		pending = still
		return int64(len(got.ids)) == n, fmt.Sprintf("%d of %d records decoded on the target (%d waiting; last: %v)", len(got.ids), n, len(pending), lastErr)
	})
	return got
}

// TestReplicateSchemas is the proof on real registries and real Kafka: a
// producer writes Avro records in the Confluent wire format on the source,
// `godwit replicate` copies data and schemas, a consumer decodes every
// record through the target registry; a compatible v2 registered
// mid-stream follows.
func TestReplicateSchemas(t *testing.T) {
	pair, ok := testkit.RealPair(t)
	if !ok {
		t.Skip("no real Kafka: set GODWIT_TEST_PRIMARY and GODWIT_TEST_SECONDARY")
	}
	srcURL, dstURL := testkit.Registries(t)

	// preserve-ids: the target's records are byte for byte the source's,
	// IDs included, and the IDs resolve on the target.
	t.Run("preserve-ids", func(t *testing.T) {
		got, sent, _, _ := replicateAvro(t, pair, srcURL, dstURL, "preserve-ids")
		for seq, b := range sent.bytes {
			if string(got.bytes[seq]) != string(b) {
				t.Fatalf("seq %d: target value differs from the source's (id %d on the source, %d on the target)", seq, sent.ids[seq], got.ids[seq])
			}
		}
	})

	// translate-ids: the target registry already has schemas of its own,
	// so the source's IDs mean something else there; records are
	// rewritten to the target's IDs and still decode.
	own := ownRegistry(t)
	oc := srClient(t, own)
	t.Run("translate-ids", func(t *testing.T) {
		// The source's IDs for the two schemas (registration by content
		// is idempotent: the scenario gets the same ones), and target IDs
		// of its own beyond them, so every translated ID differs.
		pre := testkit.UniqueName(t, "pre")
		hi := max(register(t, srClient(t, srcURL), pre+"-a-value", recV1), register(t, srClient(t, srcURL), pre+"-b-value", recV2))
		for i := 0; ; i++ {
			if register(t, oc, fmt.Sprintf("%s-own-%d-value", pre, i), fmt.Sprintf(`{"type":"record","name":"Own%d","doc":%q,"fields":[{"name":"x","type":"int"}]}`, i, pre)) > hi {
				break
			}
		}
		got, sent, srcIDs, flow := replicateAvro(t, pair, srcURL, own, "translate-ids")
		rewritten := 0
		for seq, sid := range sent.ids {
			tid := got.ids[seq]
			if tid != sid {
				rewritten++
			}
			// the target ID names the same schema the source ID does
			a, _ := srClient(t, srcURL).SchemaByID(context.Background(), sid)
			b, _ := oc.SchemaByID(context.Background(), tid)
			if a.Schema != b.Schema {
				t.Fatalf("seq %d: source id %d is %s, target id %d is %s", seq, sid, a.Schema, tid, b.Schema)
			}
			// only the 4 ID bytes differ
			sb, tb := sent.bytes[seq], got.bytes[seq]
			if len(sb) != len(tb) || string(sb[5:]) != string(tb[5:]) || sb[0] != tb[0] {
				t.Fatalf("seq %d: payload changed beyond the schema id", seq)
			}
		}
		if rewritten != len(sent.ids) {
			t.Errorf("%d of %d records got a new schema id; the target's own schemas should have made every source id (%v) differ", rewritten, len(sent.ids), srcIDs)
		}
		// The map lives on the target: a fresh reader finds both IDs.
		m := schemas.NewIDMap(flow, testkit.Client(t, pair.Secondary))
		if err := m.Load(testkit.Context(t)); err != nil {
			t.Fatal(err)
		}
		for _, sid := range srcIDs {
			tid, ok := m.Lookup(sid)
			if !ok || tid == sid {
				t.Errorf("id map %s on the target: source id %d -> %d (%v)", m.Topic(), sid, tid, ok)
			}
		}
	})

	// A target subject with a history of its own that the source's
	// version is incompatible with: the target registry refuses it, the
	// sync error names subject and version, and the partition whose
	// records need that schema stops (nothing is written undecodable).
	t.Run("translate-ids-refused", func(t *testing.T) {
		topic := testkit.UniqueName(t, "refused")
		testkit.CreateTopic(t, pair.Primary, topic, 1, nil)
		subject := topic + "-value"
		register(t, oc, subject, `{"type":"record","name":"Rec","namespace":"godwit.e2e","fields":[{"name":"seq","type":"string"}]}`)
		setCompat(t, oc, subject, sr.CompatBackward)
		cfg, src, _ := e2eConfig(t, pair, srcURL, own, topic, topic+"-.*", "translate-ids")
		reg := srClient(t, srcURL)
		id := register(t, reg, subject, recV1)
		setCompat(t, reg, subject, sr.CompatBackward)
		serde := sr.NewSerde()
		s1 := avro.MustParse(recV1)
		serde.Register(id, recOne{}, sr.EncodeFn(func(v any) ([]byte, error) { return s1.Encode(v) }))
		sent := produced{ids: map[int64]int{}, bytes: map[int64][]byte{}}
		produce(t, testkit.Client(t, pair.Primary), topic, serde, id, false, 0, 10, &sent)
		r := startReplicate(t, cfg)
		refused := fmt.Sprintf("refused subject %s version 1 (source id %d)", subject, id)
		testkit.Eventually(t, 2*time.Minute, func() (bool, string) {
			l := r.logText()
			return strings.Contains(l, refused) && strings.Contains(l, "partition "+topic+"[0] stopped"),
				"waiting for the refusal naming subject and version, and the stopped partition, in the replicator log"
		})
		if n := len(consumedSoFar(t, pair, src+"."+topic)); n != 0 {
			t.Errorf("%d records reached the target without a schema the target registry accepted", n)
		}
	})
}

// replicateAvro runs the scenario for mode and returns what the target
// consumer decoded, what the producer sent and the source's schema IDs.
func replicateAvro(t *testing.T, p testkit.Pair, srcURL, dstURL, mode string) (decoded, produced, []int, *config.Flow) {
	t.Helper()
	topic := testkit.UniqueName(t, "avro")
	testkit.CreateTopic(t, p.Primary, topic, 2, nil)
	subject := topic + "-value"
	cfg, src, dst := e2eConfig(t, p, srcURL, dstURL, topic, topic+"-.*", mode)
	reg := srClient(t, srcURL)
	id1 := register(t, reg, subject, recV1)
	setCompat(t, reg, subject, sr.CompatBackward)
	serde := sr.NewSerde()
	s1, s2 := avro.MustParse(recV1), avro.MustParse(recV2)
	serde.Register(id1, recOne{}, sr.EncodeFn(func(v any) ([]byte, error) { return s1.Encode(v) }))
	prod := testkit.Client(t, p.Primary)
	sent := produced{ids: map[int64]int{}, bytes: map[int64][]byte{}}
	produce(t, prod, topic, serde, id1, false, 0, 200, &sent)

	startReplicate(t, cfg)
	// Mid-stream: a compatible v2, and records written with it.
	testkit.Eventually(t, time.Minute, func() (bool, string) {
		ok := len(consumedSoFar(t, p, src+"."+topic)) > 0
		return ok, "no record replicated yet"
	})
	id2 := register(t, reg, subject, recV2)
	if id2 == id1 {
		t.Fatal("v2 got v1's id")
	}
	serde.Register(id2, recTwo{}, sr.EncodeFn(func(v any) ([]byte, error) { return s2.Encode(v) }))
	produce(t, prod, topic, serde, id2, true, 200, 400, &sent)

	got := consumeAndDecode(t, p, src+"."+topic, dstURL, 400)
	v2seen := 0
	for seq := int64(200); seq < 400; seq++ {
		if got.ids[seq] != got.ids[0] {
			v2seen++
		}
	}
	if v2seen != 200 {
		t.Errorf("%d of 200 v2 records carry a schema id other than v1's on the target", v2seen)
	}
	return got, sent, []int{id1, id2}, &config.Flow{Name: src + "->" + dst, Source: src, Target: dst}
}

// consumedSoFar reads what the target topic holds now (read_committed).
func consumedSoFar(t *testing.T, p testkit.Pair, topic string) []*kgo.Record {
	t.Helper()
	cl := testkit.Client(t, p.Secondary, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return cl.PollFetches(ctx).Records()
}
