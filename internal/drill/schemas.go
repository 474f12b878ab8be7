package drill

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/drillreport"
	"github.com/godwit/godwit/internal/schemas"
	"github.com/godwit/godwit/internal/workload"
)

// maxSchemaErrors bounds the distinct decode failures a report lists.
const maxSchemaErrors = 5

// schemaRun is the drill's Schema Registry check (flows with schemas):
// the workload writes its values in the Confluent wire format with
// workload.AvroSchema registered on the source's registry, and the
// drill's consumers on the target decode every record they read through
// the target's registry, as an application there would.
type schemaRun struct {
	src, dst *schemas.Registry
	rep      drillreport.SchemaReport

	mu     sync.Mutex
	codecs map[int]*avro.Schema
	errs   map[string]bool
}

func (d *drill) setupSchemas(f *config.Flow) error {
	if !f.SchemasEnabled() {
		return nil
	}
	src, err := schemas.FromConfig(d.o.Config, f.Source)
	if err != nil {
		return err
	}
	dst, err := schemas.FromConfig(d.o.Config, f.Target)
	if err != nil {
		return err
	}
	d.sr = &schemaRun{src: src, dst: dst, codecs: map[int]*avro.Schema{}, errs: map[string]bool{},
		rep: drillreport.SchemaReport{Mode: f.Schemas.Mode, Registry: dst.URL, Subjects: map[string]int{}, Errors: []string{}}}
	return nil
}

// register registers the workload's schema for topic on the source
// (TopicNameStrategy: subject "<topic>-value") and returns its ID.
func (s *schemaRun) register(ctx context.Context, topic string) (uint32, error) {
	subject := topic + "-value"
	id, err := s.src.Client().RegisterSchema(ctx, subject, sr.Schema{Schema: workload.AvroSchema, Type: sr.TypeAvro}, -1, -1)
	if err != nil {
		return 0, fmt.Errorf("register the drill's schema as subject %s on the source's registry %s: %w", subject, s.src.URL, err)
	}
	s.mu.Lock()
	s.rep.Subjects[subject] = id
	s.mu.Unlock()
	return uint32(id), nil
}

// check decodes one record read on the target through the target's
// registry and counts it.
func (s *schemaRun) check(ctx context.Context, r *kgo.Record) {
	if r.Value == nil {
		return // a tombstone has no schema
	}
	err := s.decode(ctx, r.Value)
	if err != nil && ctx.Err() != nil {
		return // the drill is ending: not a verdict on the record
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.rep.Decoded++
		return
	}
	s.rep.Undecodable++
	msg := fmt.Sprintf("%s[%d]@%d: %v", r.Topic, r.Partition, r.Offset, err)
	key := err.Error()
	if !s.errs[key] && len(s.rep.Errors) < maxSchemaErrors {
		s.errs[key] = true
		s.rep.Errors = append(s.rep.Errors, msg)
	}
}

func (s *schemaRun) decode(ctx context.Context, value []byte) error {
	id, ok := schemas.SchemaID(value)
	if !ok {
		return fmt.Errorf("value is not in the Confluent wire format")
	}
	s.mu.Lock()
	codec := s.codecs[id]
	s.mu.Unlock()
	if codec == nil {
		v, found, err := s.dst.SchemaByID(ctx, id)
		switch {
		case err != nil:
			return err
		case !found:
			return fmt.Errorf("schema id %d is not on the target's registry", id)
		}
		if codec, err = avro.Parse(v.Schema); err != nil {
			return fmt.Errorf("schema id %d on the target does not parse as Avro: %w", id, err)
		}
		s.mu.Lock()
		s.codecs[id] = codec
		s.mu.Unlock()
	}
	var rec struct {
		Payload []byte `avro:"payload"`
	}
	if _, err := codec.Decode(value[5:], &rec); err != nil {
		return fmt.Errorf("does not decode with schema id %d of the target: %w", id, err)
	}
	plain, _, _ := workload.Unframe(value)
	if !bytes.Equal(rec.Payload, plain) {
		return fmt.Errorf("decodes with schema id %d of the target to a different payload", id)
	}
	return nil
}

// schemaOutcome puts the check into the report and adds the "schemas"
// objective; it returns whether it passed (true without the check).
func (d *drill) schemaOutcome(r *drillreport.Report) bool {
	if d.sr == nil {
		return true
	}
	d.sr.mu.Lock()
	rep := d.sr.rep
	rep.Errors = append([]string{}, rep.Errors...)
	d.sr.mu.Unlock()
	r.Schemas = &rep
	ob := drillreport.Objective{Name: "schemas", Pass: rep.Pass(), Detail: rep.Summary()}
	if rep.Decoded == 0 && rep.Undecodable == 0 {
		ob.Detail = "no record was read on the target, so none was decoded through its schema registry"
	}
	r.Objectives = append(r.Objectives, ob)
	return ob.Pass
}
