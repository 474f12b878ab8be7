package schemas

import (
	"context"
	"fmt"

	"github.com/godwit/godwit/internal/config"
)

// Result is what an applied plan did.
type Result struct {
	Applied []Action `json:"applied"`
	Errors  []string `json:"errors"`
	// IDs are the source -> target ID pairs learned while applying
	// (translate-ids registrations).
	IDs map[int]int `json:"-"`
}

// applier applies plans on one target registry.
type applier struct {
	dst    *Registry
	mode   string
	method string // resolved import method (preserve-ids)
}

// importMethod resolves schema_registry.import for the target.
func (ap *applier) importMethod(ctx context.Context) (string, error) {
	if ap.method != "" {
		return ap.method, nil
	}
	m := ap.dst.cfg.Import
	if m == "" || m == config.ImportAuto {
		isA, err := ap.dst.IsApicurio(ctx)
		if err != nil {
			return "", err
		}
		m = config.ImportMode
		if isA {
			m = config.ImportApicurio
		}
	}
	ap.method = m
	return m, nil
}

// apply makes the plan's changes. Subjects are independent: an error
// stops the rest of its subject's actions and is reported, other
// subjects go on.
func (ap *applier) apply(ctx context.Context, p *Plan, existing map[string]bool) *Result {
	res := &Result{Applied: []Action{}, Errors: []string{}, IDs: map[int]int{}}
	acts := append([]Action(nil), p.Actions...)
	sortActions(acts)
	failed := map[string]bool{}
	fail := func(subject string, err error) {
		failed[subject] = true
		res.Errors = append(res.Errors, err.Error())
	}
	var regs []Action
	for _, a := range acts {
		if a.Kind == ActRegister {
			regs = append(regs, a)
		}
	}
	if len(regs) > 0 {
		if p.Mode == config.SchemaTranslateIDs {
			ap.registerByContent(ctx, regs, res, fail, failed)
		} else {
			ap.registerWithIDs(ctx, regs, existing, res, fail, failed)
		}
	}
	for _, a := range acts {
		if a.Kind == ActRegister || failed[a.Subject] {
			continue
		}
		var err error
		switch a.Kind {
		case ActSoftDelete:
			v := a.Version
			if p.Mode == config.SchemaPreserveIDs {
				v = a.src.Version
			}
			err = ap.dst.SoftDelete(ctx, a.Subject, v)
		case ActCompatibility:
			err = ap.dst.SetCompatibility(ctx, a.Subject, a.To)
		}
		if err != nil {
			fail(a.Subject, err)
			continue
		}
		res.Applied = append(res.Applied, a)
	}
	return res
}

// registerByContent registers each version by content, in order, and
// learns its target ID (translate-ids). A soft-deleted source version is
// registered and then soft-deleted, so records written with it still
// decode on the target.
func (ap *applier) registerByContent(ctx context.Context, regs []Action, res *Result, fail func(string, error), failed map[string]bool) {
	for _, a := range regs {
		if failed[a.Subject] {
			continue
		}
		id, err := ap.dst.Register(ctx, a.Subject, a.src)
		if err != nil {
			fail(a.Subject, err)
			continue
		}
		a.TargetID = id
		res.IDs[a.SourceID] = id
		if a.src.Deleted {
			got, ok, err := ap.dst.Lookup(ctx, a.Subject, a.src)
			if err == nil && ok {
				err = ap.dst.SoftDelete(ctx, a.Subject, got.Version)
			}
			if err != nil {
				fail(a.Subject, err)
				continue
			}
		}
		res.Applied = append(res.Applied, a)
	}
}

// registerWithIDs registers versions with their source IDs and versions
// (preserve-ids), then reads each back: success is what the target serves.
func (ap *applier) registerWithIDs(ctx context.Context, regs []Action, existing map[string]bool, res *Result, fail func(string, error), failed map[string]bool) {
	method, err := ap.importMethod(ctx)
	if err != nil {
		for _, a := range regs {
			fail(a.Subject, err)
		}
		return
	}
	var done []Action
	switch method {
	case config.ImportApicurio:
		done = ap.importApicurio(ctx, regs, existing, fail, failed)
	default:
		done = ap.importMode(ctx, regs, fail, failed)
	}
	for _, a := range done {
		if failed[a.Subject] {
			continue
		}
		got, err := ap.dst.Version(ctx, a.Subject, a.Version)
		switch {
		case err != nil:
			fail(a.Subject, fmt.Errorf("subject %s version %d (id %d) is not on the target after %s: %w", a.Subject, a.Version, a.SourceID, method, err))
			continue
		case got.ID != a.SourceID || !sameContent(got, a.src):
			fail(a.Subject, fmt.Errorf("subject %s version %d: the target serves id %d%s after %s, want id %d: %s", a.Subject, a.Version, got.ID, differs(got, a.src), method, a.SourceID, methodHint(method)))
			continue
		}
		res.IDs[a.SourceID] = got.ID
		res.Applied = append(res.Applied, a)
	}
}

func methodHint(method string) string {
	if method == config.ImportMode {
		return "the target registry ignored the requested id (no IMPORT mode support); for Apicurio Registry set schema_registry.import: apicurio, else use schemas.mode: translate-ids"
	}
	return "the registry's log says why the import skipped it (an id or version already taken); compare both registries with `godwit audit`"
}

// importMode uses the Confluent API's IMPORT mode: each subject is put in
// IMPORT mode, its versions registered with id and version, and its
// previous mode restored.
func (ap *applier) importMode(ctx context.Context, regs []Action, fail func(string, error), failed map[string]bool) []Action {
	var done []Action
	bySubject := map[string][]Action{}
	var order []string
	for _, a := range regs {
		if _, ok := bySubject[a.Subject]; !ok {
			order = append(order, a.Subject)
		}
		bySubject[a.Subject] = append(bySubject[a.Subject], a)
	}
	for _, subject := range order {
		prev, err := ap.dst.Mode(ctx, subject)
		if err == nil && prev != "IMPORT" {
			err = ap.dst.SetMode(ctx, subject, "IMPORT")
		}
		if err != nil {
			fail(subject, err)
			continue
		}
		for _, a := range bySubject[subject] {
			id, err := ap.dst.RegisterWithID(ctx, a.src)
			if err == nil && id != a.SourceID {
				err = fmt.Errorf("subject %s version %d: the target gave id %d, want %d: %s", subject, a.Version, id, a.SourceID, methodHint(config.ImportMode))
			}
			if err == nil && a.src.Deleted {
				err = ap.dst.SoftDelete(ctx, subject, a.Version)
			}
			if err != nil {
				fail(subject, err)
				break
			}
			done = append(done, a)
		}
		if prev != "IMPORT" {
			if err := ap.dst.SetMode(ctx, subject, prev); err != nil {
				fail(subject, err)
			}
		}
	}
	return done
}

// importApicurio sends every version whose content is new to the target
// in one import archive, and registers the others (content the target
// has under another subject) through the Confluent API.
func (ap *applier) importApicurio(ctx context.Context, regs []Action, existing map[string]bool, fail func(string, error), failed map[string]bool) []Action {
	imp := newApicurioImport()
	var viaImport, viaRegister []Action
	for _, a := range regs {
		v, found, err := ap.dst.SchemaByID(ctx, a.SourceID)
		switch {
		case err != nil:
			fail(a.Subject, err)
		case found && !sameContent(Version{Schema: v.Schema, Type: v.Type, References: v.References}, a.src):
			fail(a.Subject, idTaken(a.Subject, a.src, Version{Subject: "(another subject)", Schema: v.Schema}))
		case found:
			viaRegister = append(viaRegister, a)
		default:
			viaImport = append(viaImport, a)
		}
	}
	for _, a := range viaImport {
		if !failed[a.Subject] {
			imp.add(a.src, !existing[a.Subject])
		}
	}
	var done []Action
	if len(imp.versions) > 0 {
		z, err := imp.zip()
		if err == nil {
			err = ap.dst.apicurioImportZip(ctx, z)
		}
		if err != nil {
			for _, a := range viaImport {
				fail(a.Subject, err)
			}
		} else {
			for _, a := range viaImport {
				if failed[a.Subject] {
					continue
				}
				if existing[a.Subject] {
					if err := ap.dst.appendLatest(ctx, a.Subject, a.Version); err != nil {
						fail(a.Subject, err)
						continue
					}
				}
				done = append(done, a)
			}
		}
	}
	for _, a := range viaRegister {
		if failed[a.Subject] {
			continue
		}
		if _, err := ap.dst.Register(ctx, a.Subject, a.src); err != nil {
			fail(a.Subject, err)
			continue
		}
		if a.src.Deleted {
			if err := ap.dst.SoftDelete(ctx, a.Subject, a.Version); err != nil {
				fail(a.Subject, err)
				continue
			}
		}
		done = append(done, a)
	}
	return done
}
