package schemas

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Confluent wire format: magic byte 0, then the schema ID as a 4-byte
// big-endian integer, then the encoded data.
const (
	magic      = 0
	headerSize = 5
)

// SchemaID returns the schema ID of a Confluent-framed key or value.
func SchemaID(b []byte) (int, bool) {
	if len(b) < headerSize || b[0] != magic {
		return 0, false
	}
	return int(binary.BigEndian.Uint32(b[1:headerSize])), true
}

// UnwritableError is a record translate-ids cannot make decodable on the
// target: its schema is known on the source but not synced to the target
// (not selected, or refused). Retrying cannot fix it, so the record's
// partition stops (Permanent), naming the schema and what to do.
type UnwritableError struct {
	Field    string // "key" or "value"
	SourceID int
	Reason   string
}

func (e *UnwritableError) Error() string {
	return fmt.Sprintf("%s is written with source schema id %d, which has no id on the target registry: %s", e.Field, e.SourceID, e.Reason)
}

// Permanent marks the error as one retrying cannot fix.
func (e *UnwritableError) Permanent() bool { return true }

// Rewriter rewrites the schema IDs of replicated records for a
// translate-ids flow, through the flow's ID map. For a preserve-ids flow
// it maps each ID to itself and only holds a record back until the
// target's registry serves its schema.
//
// Why exactly-once still holds: the rewrite is a pure function of the
// source bytes and the ID map, whose entries never change (a source ID
// names one content, the target's ID for it is fixed once registered), and
// an entry is durable on the target (the ID map topic and the target
// registry) before any record rewritten with it is produced. The rewritten
// record still commits in the same target transaction as the progress and
// offset-map entries describing it; a retried (aborted, fenced, crashed)
// batch re-reads the same source bytes and produces the same output.
type Rewriter struct {
	flow   string
	ids    *IDMap
	syncer *Syncer
	src    *Registry
	log    *slog.Logger
	m      *Metrics

	mu       sync.Mutex
	lastPass time.Time
	// unwritable holds the last pass's verdict on source IDs it could not
	// map, so the records after the first one of such an ID fail the
	// same way (their partition stops) until a later pass maps it.
	unwritable map[int]error
}

// NewRewriter rewrites through ids; on a miss it runs a sync pass of s
// (which registers what is new on the source and records it in ids).
func NewRewriter(s *Syncer, ids *IDMap, m *Metrics) *Rewriter {
	return &Rewriter{flow: s.o.Flow.Name, ids: ids, syncer: s, src: s.o.Source, log: s.log, m: m, unwritable: map[int]error{}}
}

// minMissPass is how often misses may trigger a sync pass; retryUnwritable
// how often an ID found unwritable is tried again.
const (
	minMissPass     = time.Second
	retryUnwritable = 10 * time.Second
)

// Rewrite returns key and value with their schema IDs translated. A key or
// value that is not Confluent-framed, or whose ID the source registry does
// not know (then it was not schema-encoded, or is undecodable at the source
// too), is returned as it is. A translated one is a new slice: the fetched
// record is never modified, so a redone batch rewrites the same bytes.
func (rw *Rewriter) Rewrite(ctx context.Context, topic string, key, value []byte) ([]byte, []byte, error) {
	k, err := rw.one(ctx, "key", key)
	if err != nil {
		return nil, nil, fmt.Errorf("topic %s: %w", topic, err)
	}
	v, err := rw.one(ctx, "value", value)
	if err != nil {
		return nil, nil, fmt.Errorf("topic %s: %w", topic, err)
	}
	return k, v, nil
}

func (rw *Rewriter) one(ctx context.Context, field string, b []byte) ([]byte, error) {
	id, ok := SchemaID(b)
	if !ok {
		return b, nil
	}
	tgt, ok := rw.ids.Lookup(id)
	if !ok {
		var err error
		if tgt, ok, err = rw.resolve(ctx, field, id); err != nil || !ok {
			return b, err
		}
	}
	if rw.m != nil {
		rw.m.Rewritten.WithLabelValues(rw.flow).Inc()
	}
	if tgt == id {
		return b, nil
	}
	out := make([]byte, len(b))
	copy(out, b)
	binary.BigEndian.PutUint32(out[1:headerSize], uint32(tgt))
	return out, nil
}

// resolve maps a source ID the map does not hold: a sync pass registers
// what the source has that the target lacks. ok is false for an ID the
// source registry does not know (the bytes are copied as they are).
func (rw *Rewriter) resolve(ctx context.Context, field string, id int) (tgt int, ok bool, err error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if tgt, ok := rw.ids.Lookup(id); ok { // another slot resolved it meanwhile
		return tgt, true, nil
	}
	if err, ok := rw.unwritable[id]; ok && time.Since(rw.lastPass) < retryUnwritable {
		return 0, false, err
	}
	if _, found, err := rw.src.SchemaByID(ctx, id); err != nil {
		return 0, false, err // registry unreachable: the batch is retried
	} else if !found {
		rw.log.Warn("record framed with a schema id the source registry does not know; copied unchanged", "field", field, "schema_id", id)
		return 0, false, nil
	}
	if time.Since(rw.lastPass) >= minMissPass {
		rw.lastPass = time.Now()
		p, res, err := rw.syncer.Pass(ctx)
		if err != nil {
			return 0, false, err
		}
		if tgt, ok := rw.ids.Lookup(id); ok {
			delete(rw.unwritable, id)
			return tgt, true, nil
		}
		err = rw.explain(ctx, field, id, p, res)
		rw.unwritable[id] = err
		return 0, false, err
	}
	return 0, false, fmt.Errorf("%s schema id %d not mapped yet; retrying after the next sync pass", field, id)
}

// explain says why a source schema has no target ID after a pass.
func (rw *Rewriter) explain(ctx context.Context, field string, id int, p *Plan, res *Result) error {
	subjects, _ := rw.src.cl.SubjectsByID(deleted(ctx), id)
	var reason string
	for _, s := range subjects {
		for _, c := range p.Conflicts {
			if c.Subject == s {
				reason = c.Error()
			}
		}
		for _, e := range res.Errors {
			if reason == "" && containsSubject(e, s) {
				reason = e
			}
		}
	}
	if reason == "" {
		reason = fmt.Sprintf("its subjects %v are not selected by flows.%s.schemas.subjects/subjects_exclude; select them, or exclude this topic from the flow", subjects, rw.flow)
	}
	return &UnwritableError{Field: field, SourceID: id, Reason: reason}
}

func containsSubject(msg, subject string) bool {
	return subject != "" && strings.Contains(msg, "subject "+subject+" ")
}
