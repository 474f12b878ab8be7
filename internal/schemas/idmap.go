package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
)

// IDTopic is the compacted topic on a translate-ids flow's target holding
// its source -> target schema ID map (key: the source ID in decimal).
func IDTopic(f *config.Flow) string {
	return naming.InternalPrefix + f.Source + "-" + f.Target + ".schemaids.internal"
}

// IDEntry is one record of the ID map topic.
type IDEntry struct {
	SourceID int       `json:"source_id"`
	TargetID int       `json:"target_id"`
	At       time.Time `json:"at"`
}

// IDMap is a translate-ids flow's schema ID map. It lives on the target
// (the target knows how its records were rewritten, whoever asks and
// from wherever), and in memory for the data plane. An entry never
// changes: a source ID names one schema content, and the target's ID for
// that content is fixed once registered.
type IDMap struct {
	topic string
	cl    *kgo.Client
	mu    sync.RWMutex
	ids   map[int]int
}

// NewMemoryIDMap is an ID map kept in memory only: for preserve-ids,
// where each ID maps to itself and the map only records which IDs the
// target's registry is known to serve.
func NewMemoryIDMap() *IDMap { return &IDMap{ids: map[int]int{}} }

// NewIDMap uses cl, a client of the flow's target.
func NewIDMap(f *config.Flow, cl *kgo.Client) *IDMap {
	return &IDMap{topic: IDTopic(f), cl: cl, ids: map[int]int{}}
}

// Topic is the map's topic on the target.
func (m *IDMap) Topic() string { return m.topic }

// Ensure creates the map's topic (one partition, compacted) if missing.
func (m *IDMap) Ensure(ctx context.Context) error {
	adm := kadm.NewClient(m.cl)
	cleanup := "compact"
	_, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &cleanup}, m.topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create schema id map topic %s on the target: %w", m.topic, err)
	}
	return nil
}

// Load reads the whole map from the target.
func (m *IDMap) Load(ctx context.Context) error {
	adm := kadm.NewClient(m.cl)
	ends, err := adm.ListEndOffsets(ctx, m.topic)
	if err != nil {
		return fmt.Errorf("schema id map %s: list end offsets: %w", m.topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, m.topic)
	if err != nil {
		return fmt.Errorf("schema id map %s: list start offsets: %w", m.topic, err)
	}
	end, ok := ends.Lookup(m.topic, 0)
	if !ok || end.Err != nil {
		return fmt.Errorf("schema id map %s: no partition 0 on the target (%v)", m.topic, end.Err)
	}
	start, _ := starts.Lookup(m.topic, 0)
	if end.Offset <= start.Offset {
		return nil
	}
	recs, err := kafkautil.ReadRange(ctx, m.cl, m.topic, 0, start.Offset, end.Offset, false)
	if err != nil {
		return fmt.Errorf("schema id map %s: read: %w", m.topic, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		var e IDEntry
		if err := json.Unmarshal(r.Value, &e); err != nil {
			return fmt.Errorf("schema id map %s offset %d: %w", m.topic, r.Offset, err)
		}
		m.ids[e.SourceID] = e.TargetID
	}
	return nil
}

// Lookup returns the target ID for a source ID.
func (m *IDMap) Lookup(src int) (int, bool) {
	m.mu.RLock()
	t, ok := m.ids[src]
	m.mu.RUnlock()
	return t, ok
}

// Len is the number of mapped IDs.
func (m *IDMap) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.ids)
}

// Snapshot copies the map.
func (m *IDMap) Snapshot() map[int]int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[int]int, len(m.ids))
	for k, v := range m.ids {
		out[k] = v
	}
	return out
}

// Record writes the entries the map does not hold yet to the target, then
// keeps them. A source ID already mapped to another target ID is refused:
// records were rewritten with the first, and silently changing it would
// make the target's records disagree with each other.
func (m *IDMap) Record(ctx context.Context, ids map[int]int) error {
	var recs []*kgo.Record
	now := time.Now().UTC()
	m.mu.RLock()
	var conflict error
	for src, tgt := range ids {
		have, ok := m.ids[src]
		switch {
		case ok && have == tgt:
			continue
		case ok:
			conflict = fmt.Errorf("schema id map %s: source id %d is mapped to target id %d, now the target's registry says %d: a target subject was deleted and re-registered; records already written use %d", m.topic, src, have, tgt, have)
			continue
		}
		v, _ := json.Marshal(IDEntry{SourceID: src, TargetID: tgt, At: now})
		recs = append(recs, &kgo.Record{Topic: m.topic, Partition: 0, Key: []byte(strconv.Itoa(src)), Value: v})
	}
	m.mu.RUnlock()
	if len(recs) > 0 && m.cl != nil {
		if err := m.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("schema id map %s: write %d entries to the target: %w", m.topic, len(recs), err)
		}
	}
	if len(recs) > 0 {
		m.mu.Lock()
		for _, r := range recs {
			var e IDEntry
			_ = json.Unmarshal(r.Value, &e)
			if _, ok := m.ids[e.SourceID]; !ok {
				m.ids[e.SourceID] = e.TargetID
			}
		}
		m.mu.Unlock()
	}
	return conflict
}

// OpenIDMap connects to flow f's target, creates the ID map topic if
// needed and loads it. closeFn closes the client.
func OpenIDMap(ctx context.Context, cfg *config.Config, f *config.Flow, log *slog.Logger) (m *IDMap, closeFn func(), err error) {
	dst, err := cluster.New(cfg, f.Target)
	if err != nil {
		return nil, nil, err
	}
	cl, err := dst.Client(f.Name+"-schema-ids", log)
	if err != nil {
		return nil, nil, err
	}
	m = NewIDMap(f, cl)
	if err := m.Ensure(ctx); err != nil {
		cl.Close()
		return nil, nil, cluster.Explain(dst, err)
	}
	if err := m.Load(ctx); err != nil {
		cl.Close()
		return nil, nil, cluster.Explain(dst, err)
	}
	return m, cl.Close, nil
}
