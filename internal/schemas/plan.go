package schemas

import (
	"fmt"
	"sort"

	"github.com/godwit/godwit/internal/config"
)

// Action kinds.
const (
	// ActRegister registers a source version on the target: with its ID
	// and version (preserve-ids) or by content (translate-ids).
	ActRegister = "register"
	// ActSoftDelete soft-deletes a target version whose source version is.
	ActSoftDelete = "soft-delete"
	// ActCompatibility sets the target subject's compatibility level to
	// the source's effective level.
	ActCompatibility = "compatibility"
)

// Action is one change a sync pass makes on the target registry.
type Action struct {
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	// Version is the source version (register, soft-delete).
	Version int `json:"version,omitempty"`
	// SourceID is the source schema ID; TargetID the ID on the target
	// (preserve-ids: the same; translate-ids: known once registered).
	SourceID int    `json:"source_id,omitempty"`
	TargetID int    `json:"target_id,omitempty"`
	Type     string `json:"schema_type,omitempty"`
	// From and To are compatibility levels.
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	Reason string `json:"reason"`

	src Version
}

func (a Action) String() string {
	switch a.Kind {
	case ActRegister:
		id := fmt.Sprintf("id %d", a.SourceID)
		if a.TargetID != 0 && a.TargetID != a.SourceID {
			id = fmt.Sprintf("source id %d -> target id %d", a.SourceID, a.TargetID)
		}
		return fmt.Sprintf("register %s version %d (%s, %s): %s", a.Subject, a.Version, id, a.Type, a.Reason)
	case ActSoftDelete:
		return fmt.Sprintf("soft-delete %s version %d (id %d): %s", a.Subject, a.Version, a.SourceID, a.Reason)
	case ActCompatibility:
		from := a.From
		if from == "" {
			from = "(none)"
		}
		return fmt.Sprintf("compatibility of %s: %s -> %s: %s", a.Subject, from, a.To, a.Reason)
	}
	return a.Kind + " " + a.Subject
}

// Conflict is a target subject version that godwit will not overwrite:
// the subject is behind until someone resolves it.
type Conflict struct {
	Subject  string `json:"subject"`
	Version  int    `json:"version,omitempty"`
	SourceID int    `json:"source_id,omitempty"`
	TargetID int    `json:"target_id,omitempty"`
	Problem  string `json:"problem"`
	Remedy   string `json:"remedy"`
}

func (c Conflict) Error() string {
	return fmt.Sprintf("subject %s version %d: %s; %s", c.Subject, c.Version, c.Problem, c.Remedy)
}

// Plan is what a sync pass would change on the target registry.
type Plan struct {
	Flow string `json:"flow"`
	Mode string `json:"mode"`
	// Subjects and Versions count the selected source subjects and their
	// versions.
	Subjects  int        `json:"subjects"`
	Versions  int        `json:"versions"`
	Actions   []Action   `json:"actions"`
	Conflicts []Conflict `json:"conflicts"`
	// Warnings are target subjects or versions the source does not have
	// (registered on the target directly).
	Warnings []string `json:"warnings"`
	// IDs maps source schema IDs to target IDs for every source version
	// already on the target (translate-ids; preserve-ids maps each ID to
	// itself).
	IDs map[int]int `json:"-"`
}

// Behind is the number of selected subjects the target does not hold in
// full (an action or a conflict pending).
func (p *Plan) Behind() int {
	behind := map[string]bool{}
	for _, a := range p.Actions {
		behind[a.Subject] = true
	}
	for _, c := range p.Conflicts {
		behind[c.Subject] = true
	}
	return len(behind)
}

// Diff computes what makes the target hold every source subject version
// of the snapshot: mode is config.SchemaPreserveIDs or SchemaTranslateIDs.
func Diff(flow, mode string, src, dst *Snapshot) *Plan {
	p := &Plan{Flow: flow, Mode: mode, Actions: []Action{}, Conflicts: []Conflict{}, Warnings: []string{}, IDs: map[int]int{}}
	// Target IDs of the target's selected subjects, to see a source ID
	// the target already uses for something else.
	dstIDs := map[int]Version{}
	for _, sub := range dst.Subjects {
		for _, v := range sub.Versions {
			dstIDs[v.ID] = v
		}
	}
	for _, name := range src.Names() {
		s := src.Subjects[name]
		p.Subjects++
		p.Versions += len(s.Versions)
		t := dst.Subjects[name]
		if mode == config.SchemaTranslateIDs {
			p.diffTranslate(s, t)
		} else {
			p.diffPreserve(s, t, dstIDs)
		}
		p.compat(s, t, dst.Global)
	}
	for _, name := range dst.Names() {
		if _, ok := src.Subjects[name]; !ok {
			p.Warnings = append(p.Warnings, fmt.Sprintf("subject %s is on the target only (registered there directly, or deleted on the source)", name))
		}
	}
	return p
}

func (p *Plan) diffPreserve(s, t *Subject, dstIDs map[int]Version) {
	for _, v := range s.Versions {
		if t != nil {
			if tv, ok := t.version(v.Version); ok {
				if tv.ID != v.ID || !sameContent(tv, v) {
					p.Conflicts = append(p.Conflicts, Conflict{
						Subject: s.Name, Version: v.Version, SourceID: v.ID, TargetID: tv.ID,
						Problem: fmt.Sprintf("the target's version %d is id %d%s, the source's id %d", v.Version, tv.ID, differs(tv, v), v.ID),
						Remedy:  "the target registered this subject on its own: delete the subject on the target (soft, then permanent) so godwit imports it, or use schemas.mode: translate-ids",
					})
					return // later versions would not line up either
				}
				p.IDs[v.ID] = tv.ID
				if v.Deleted && !tv.Deleted {
					p.Actions = append(p.Actions, Action{Kind: ActSoftDelete, Subject: s.Name, Version: v.Version, SourceID: v.ID, TargetID: v.ID, Reason: "soft-deleted on the source", src: v})
				}
				if !v.Deleted && tv.Deleted {
					p.Conflicts = append(p.Conflicts, Conflict{
						Subject: s.Name, Version: v.Version, SourceID: v.ID, TargetID: tv.ID,
						Problem: "soft-deleted on the target but live on the source",
						Remedy:  "the Confluent API cannot undelete a version: delete it permanently on the target so godwit imports it again",
					})
				}
				continue
			}
		}
		if other, ok := dstIDs[v.ID]; ok && !sameContent(other, v) {
			p.Conflicts = append(p.Conflicts, idTaken(s.Name, v, other))
			return
		}
		p.Actions = append(p.Actions, Action{Kind: ActRegister, Subject: s.Name, Version: v.Version, SourceID: v.ID, TargetID: v.ID, Type: v.SchemaType(), Reason: reasonNew(t, v), src: v})
	}
}

func (p *Plan) diffTranslate(s, t *Subject) {
	used := map[int]bool{} // target versions already matched
	for _, v := range s.Versions {
		var match *Version
		if t != nil {
			for i := range t.Versions {
				tv := &t.Versions[i]
				if !used[tv.Version] && sameContent(*tv, v) {
					match = tv
					break
				}
			}
		}
		if match == nil {
			p.Actions = append(p.Actions, Action{Kind: ActRegister, Subject: s.Name, Version: v.Version, SourceID: v.ID, Type: v.SchemaType(), Reason: reasonNew(t, v), src: v})
			continue
		}
		used[match.Version] = true
		p.IDs[v.ID] = match.ID
		if v.Deleted && !match.Deleted {
			p.Actions = append(p.Actions, Action{Kind: ActSoftDelete, Subject: s.Name, Version: match.Version, SourceID: v.ID, TargetID: match.ID, Reason: "soft-deleted on the source", src: v})
		}
	}
}

// compat sets the target subject's level when its effective level (its
// own, or for a new subject the target's default) is not the source's.
func (p *Plan) compat(s, t *Subject, targetGlobal string) {
	from := targetGlobal
	if t != nil {
		from = t.Compatibility
	}
	if from != s.Compatibility && s.Compatibility != "" {
		p.Actions = append(p.Actions, Action{Kind: ActCompatibility, Subject: s.Name, From: from, To: s.Compatibility, Reason: "the source's effective level"})
	}
}

func idTaken(subject string, v, other Version) Conflict {
	return Conflict{
		Subject: subject, Version: v.Version, SourceID: v.ID, TargetID: v.ID,
		Problem: fmt.Sprintf("id %d is already used on the target by subject %s version %d for a different schema", v.ID, other.Subject, other.Version),
		Remedy:  "the target allocates IDs of its own: use schemas.mode: translate-ids for this flow, or an empty target registry",
	}
}

func reasonNew(t *Subject, v Version) string {
	what := "new version on the source"
	if t == nil {
		what = "subject not on the target"
	}
	if v.Deleted {
		what += " (soft-deleted there: kept soft-deleted)"
	}
	return what
}

func differs(tv, v Version) string {
	if !sameContent(tv, v) {
		return " with a different schema"
	}
	return ""
}

// sortActions orders actions as they must be applied: per subject,
// versions in order, then soft-deletes, then the compatibility level.
func sortActions(acts []Action) {
	rank := map[string]int{ActRegister: 0, ActSoftDelete: 1, ActCompatibility: 2}
	sort.SliceStable(acts, func(i, j int) bool {
		a, b := acts[i], acts[j]
		if a.Subject != b.Subject {
			return a.Subject < b.Subject
		}
		if rank[a.Kind] != rank[b.Kind] {
			return rank[a.Kind] < rank[b.Kind]
		}
		return a.Version < b.Version
	})
}
