package audit

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
	"github.com/godwit/godwit/internal/schemas"
)

// IDSchemaParity is the Schema Registry parity check (flows with schemas).
const IDSchemaParity = "schemas.parity"

// DefaultSchemaRecords is how many of the newest records per target
// partition the schema parity check reads.
const DefaultSchemaRecords = 100

// schemaRef is one record's schema ID on the target that does not resolve
// to the source's schema.
type schemaRef struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Field     string `json:"field"`
	TargetID  int    `json:"target_id"`
	SourceID  int    `json:"source_id,omitempty"`
	Problem   string `json:"problem"`
}

// schemaParity: every schema ID referenced by the newest records of each
// replicated topic on the target resolves on the target's registry to a
// schema byte-identical to the source's; and the selected subjects'
// versions, IDs, soft-deletes and compatibility match (nothing for a sync
// pass to do).
func (fa *flowAudit) schemaParity(ctx context.Context) Check {
	f := fa.f
	src, err := schemas.FromConfig(fa.o.Config, f.Source)
	if err != nil {
		return Check{Status: Fail, Evidence: err.Error(), Remedy: "fix clusters." + f.Source + ".schema_registry"}
	}
	dst, err := schemas.FromConfig(fa.o.Config, f.Target)
	if err != nil {
		return Check{Status: Fail, Evidence: err.Error(), Remedy: "fix clusters." + f.Target + ".schema_registry"}
	}
	details := map[string]any{"mode": f.Schemas.Mode}
	var problems []string

	// 1. Subjects, versions, IDs, compatibility.
	plan, _, err := schemas.NewSyncer(schemas.Options{Flow: f, Source: src, Target: dst}).Plan(ctx)
	if err != nil {
		return Check{Status: Fail, Evidence: err.Error(), Remedy: "make both schema registries reachable from here (url, credentials, ca_file) and run the audit again"}
	}
	details["subjects"], details["versions"] = plan.Subjects, plan.Versions
	if n := plan.Behind(); n > 0 {
		var what []string
		for _, a := range plan.Actions {
			what = append(what, a.String())
		}
		for _, c := range plan.Conflicts {
			what = append(what, c.Error())
		}
		details["pending"] = what
		problems = append(problems, fmt.Sprintf("%d of %d subjects not in step on the target: %s", n, plan.Subjects, list(what, 3)))
	}

	// 2. The IDs the target's records use. translate-ids: the map on the
	// target says which source ID each stands for.
	var reverse map[int]int
	if f.TranslatesIDs() {
		m := schemas.NewIDMap(f, fa.dcl)
		if err := m.Load(ctx); err != nil {
			problems = append(problems, fmt.Sprintf("schema id map %s on the target cannot be read: %v", m.Topic(), err))
		} else {
			reverse = map[int]int{}
			for s, t := range m.Snapshot() {
				reverse[t] = s
			}
		}
	}
	n := fa.o.SchemaRecords
	if n <= 0 {
		n = DefaultSchemaRecords
	}
	type idUse struct {
		topic     string
		partition int32
		offset    int64
		field     string
	}
	uses := map[int]idUse{} // target ID -> its first use seen
	records := 0
	var readErrs []string
	for _, topic := range fa.names {
		if naming.IsInternal(topic) || topic == naming.HeartbeatTopic {
			continue
		}
		tt := fa.policy.TargetTopic(topic)
		ends, err := fa.dadm.ListEndOffsets(ctx, tt)
		if err != nil {
			readErrs = append(readErrs, fmt.Sprintf("%s: %v", tt, err))
			continue
		}
		starts, err := fa.dadm.ListStartOffsets(ctx, tt)
		if err != nil {
			readErrs = append(readErrs, fmt.Sprintf("%s: %v", tt, err))
			continue
		}
		ends.Each(func(e kadm.ListedOffset) {
			if e.Err != nil {
				readErrs = append(readErrs, fmt.Sprintf("%s[%d]: %v", tt, e.Partition, e.Err))
				return
			}
			start, _ := starts.Lookup(tt, e.Partition)
			from := max(start.Offset, e.Offset-int64(n))
			if from >= e.Offset {
				return
			}
			recs, err := kafkautil.ReadRange(ctx, fa.dcl, tt, e.Partition, from, e.Offset, true)
			if err != nil {
				readErrs = append(readErrs, fmt.Sprintf("%s[%d]: %v", tt, e.Partition, err))
				return
			}
			for _, r := range recs {
				records++
				for _, fv := range []struct {
					name string
					b    []byte
				}{{"key", r.Key}, {"value", r.Value}} {
					if id, ok := schemas.SchemaID(fv.b); ok {
						if _, seen := uses[id]; !seen {
							uses[id] = idUse{tt, r.Partition, r.Offset, fv.name}
						}
					}
				}
			}
		})
	}
	if len(readErrs) > 0 {
		problems = append(problems, fmt.Sprintf("target records could not be read: %s", list(readErrs, 3)))
	}
	ids := make([]int, 0, len(uses))
	for id := range uses {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	var bad []schemaRef
	for _, tid := range ids {
		u := uses[tid]
		ref := schemaRef{Topic: u.topic, Partition: u.partition, Offset: u.offset, Field: u.field, TargetID: tid}
		tv, found, err := dst.SchemaByID(ctx, tid)
		if err != nil {
			ref.Problem = err.Error()
			bad = append(bad, ref)
			continue
		}
		if !found {
			ref.Problem = fmt.Sprintf("schema id %d is not on the target's registry: consumers of the target cannot decode this record", tid)
			bad = append(bad, ref)
			continue
		}
		sid := tid
		if reverse != nil {
			s, ok := reverse[tid]
			if !ok {
				ref.Problem = fmt.Sprintf("target schema id %d is not in the schema id map: the record was not rewritten by this flow", tid)
				bad = append(bad, ref)
				continue
			}
			sid = s
		}
		ref.SourceID = sid
		sv, found, err := src.SchemaByID(ctx, sid)
		switch {
		case err != nil:
			ref.Problem = err.Error()
		case !found:
			ref.Problem = fmt.Sprintf("source schema id %d is not on the source's registry (deleted permanently there?)", sid)
		case sv.Schema != tv.Schema || sv.SchemaType() != tv.SchemaType():
			ref.Problem = fmt.Sprintf("target schema id %d is not byte-identical to source schema id %d", tid, sid)
		default:
			continue
		}
		bad = append(bad, ref)
	}
	details["records_read"], details["schema_ids"], details["records_per_partition"] = records, len(ids), n
	if len(bad) > 0 {
		details["unresolved"] = bad
		var what []string
		for _, b := range bad {
			what = append(what, fmt.Sprintf("%s[%d]@%d %s: %s", b.Topic, b.Partition, b.Offset, b.Field, b.Problem))
		}
		problems = append(problems, fmt.Sprintf("%d of %d schema IDs in the target's newest records do not resolve to the source's schema: %s", len(bad), len(ids), list(what, 3)))
	}
	if len(problems) > 0 {
		return Check{Status: Fail, Evidence: list(problems, len(problems)), Details: details,
			Remedy: "run `godwit sync plan` to see what the target registry lacks and `godwit sync apply` (or check the replicator's schema sync errors, godwit_schema_sync_errors_total) before failing over; docs/schemas.md"}
	}
	return Check{Status: Pass, Details: details,
		Evidence: fmt.Sprintf("%d subjects / %d versions in step (%s); %d schema IDs in the newest %d records per partition (%d read) resolve on the target to the source's schemas", plan.Subjects, plan.Versions, f.Schemas.Mode, len(ids), n, records)}
}
