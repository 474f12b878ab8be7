package schemas

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Subject is one subject of a registry: its versions in version order and
// its effective compatibility level.
type Subject struct {
	Name          string    `json:"subject"`
	Versions      []Version `json:"versions"`
	Compatibility string    `json:"compatibility"`
}

// Live is the subject's versions that are not soft-deleted.
func (s *Subject) Live() []Version {
	var out []Version
	for _, v := range s.Versions {
		if !v.Deleted {
			out = append(out, v)
		}
	}
	return out
}

// version returns the subject's version n.
func (s *Subject) version(n int) (Version, bool) {
	for _, v := range s.Versions {
		if v.Version == n {
			return v, true
		}
	}
	return Version{}, false
}

// Snapshot is what a registry holds for the selected subjects.
type Snapshot struct {
	Subjects map[string]*Subject
	// Global is the registry's default compatibility level, which a new
	// subject gets.
	Global string
}

// Names is the snapshot's subjects in order.
func (s *Snapshot) Names() []string {
	out := make([]string, 0, len(s.Subjects))
	for n := range s.Subjects {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// VersionCount is the number of subject versions in the snapshot.
func (s *Snapshot) VersionCount() int {
	n := 0
	for _, sub := range s.Subjects {
		n += len(sub.Versions)
	}
	return n
}

// reader reads snapshots of one registry. A subject version's ID and
// content never change once registered, so they are read once and kept;
// each pass re-reads only the subject list, version lists (which also say
// what is soft-deleted) and compatibility levels.
type reader struct {
	reg *Registry
	mu  sync.Mutex
	// cache holds subject versions by subject and version.
	cache map[string]map[int]Version
}

func newReader(reg *Registry) *reader {
	return &reader{reg: reg, cache: map[string]map[int]Version{}}
}

// parallel bounds the requests one snapshot has in flight.
const parallel = 8

// snapshot reads every subject selected by keep.
func (rd *reader) snapshot(ctx context.Context, keep func(string) bool) (*Snapshot, error) {
	names, err := rd.reg.Subjects(ctx)
	if err != nil {
		return nil, err
	}
	global, err := rd.reg.Compatibility(ctx, "")
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Subjects: map[string]*Subject{}, Global: global}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, parallel)
	)
	for _, name := range names {
		if keep != nil && !keep(name) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			sub, err := rd.subject(ctx, name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			if sub != nil {
				snap.Subjects[name] = sub
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return snap, nil
}

func (rd *reader) subject(ctx context.Context, name string) (*Subject, error) {
	all, isDeleted, err := rd.reg.Versions(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, nil // deleted meanwhile, or never had a version
	}
	sub := &Subject{Name: name}
	for _, n := range all {
		v, err := rd.version(ctx, name, n)
		if err != nil {
			return nil, err
		}
		v.Deleted = isDeleted[n]
		sub.Versions = append(sub.Versions, v)
	}
	if sub.Compatibility, err = rd.reg.Compatibility(ctx, name); err != nil {
		return nil, err
	}
	return sub, nil
}

func (rd *reader) version(ctx context.Context, subject string, n int) (Version, error) {
	rd.mu.Lock()
	v, ok := rd.cache[subject][n]
	rd.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := rd.reg.Version(ctx, subject, n)
	if err != nil {
		return Version{}, err
	}
	if v.Subject == "" {
		v.Subject = subject
	}
	if v.Version != n {
		return Version{}, fmt.Errorf("schema registry of %s answered version %d for subject %s version %d", rd.reg.Alias, v.Version, subject, n)
	}
	rd.put(v)
	return v, nil
}

func (rd *reader) put(v Version) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.cache[v.Subject] == nil {
		rd.cache[v.Subject] = map[int]Version{}
	}
	v.Deleted = false
	rd.cache[v.Subject][v.Version] = v
}

// forget drops what the cache holds for subject (the target's subject
// changed under us: re-read it whole).
func (rd *reader) forget(subject string) {
	rd.mu.Lock()
	delete(rd.cache, subject)
	rd.mu.Unlock()
}
