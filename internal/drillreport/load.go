package drillreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Stored is a drill report read back from disk.
type Stored struct {
	Path   string
	Report *Report
}

// Finished is when the drill ended (its start plus its duration).
func (s Stored) Finished() time.Time {
	return s.Report.StartedAt.Add(time.Duration(s.Report.Seconds * float64(time.Second)))
}

// ReadReport decodes one report.json.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("drill report %s: %w (is it a godwit drill report.json?)", path, err)
	}
	if r.Flow == "" || r.StartedAt.IsZero() {
		return nil, fmt.Errorf("drill report %s: no flow or started_at (is it a godwit drill report.json?)", path)
	}
	return &r, nil
}

// LoadReports reads every report.json in dir and in its direct
// subdirectories (one per drill, as `godwit drill` writes them there),
// oldest first. A directory that does not exist holds no reports. Files
// that cannot be read or decoded are returned as errors alongside the
// reports that could; err is only about dir itself.
func LoadReports(dir string) (reports []Stored, bad []error, err error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, fmt.Errorf("drill reports directory: %w", err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, FileJSON))
	if err != nil {
		return nil, nil, err
	}
	sub, err := filepath.Glob(filepath.Join(dir, "*", FileJSON))
	if err != nil {
		return nil, nil, err
	}
	if len(paths)+len(sub) == 0 {
		// Glob hides read errors; say why an unreadable directory is empty.
		if _, err := os.ReadDir(dir); err != nil {
			return nil, nil, fmt.Errorf("drill reports directory: %w", err)
		}
	}
	for _, p := range append(paths, sub...) {
		r, err := ReadReport(p)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		reports = append(reports, Stored{Path: p, Report: r})
	}
	sort.SliceStable(reports, func(i, j int) bool { return reports[i].Finished().Before(reports[j].Finished()) })
	return reports, bad, nil
}

// Latest is what a flow's drill reports say: the newest drill and the
// newest one that met every objective.
type Latest struct {
	Reports       int
	Newest        *Stored
	NewestPassing *Stored
}

// LatestBy groups reports (oldest first, as LoadReports returns them) by
// key and keeps each group's newest drill and newest passing drill.
func LatestBy(reports []Stored, key func(*Report) string) map[string]*Latest {
	out := map[string]*Latest{}
	for i := range reports {
		s := &reports[i]
		k := key(s.Report)
		l := out[k]
		if l == nil {
			l = &Latest{}
			out[k] = l
		}
		l.Reports++
		l.Newest = s
		if s.Report.Passed {
			l.NewestPassing = s
		}
	}
	return out
}

// Objective returns the report's objective of that name (rpo, rto).
func (r *Report) Objective(name string) (Objective, bool) {
	for _, o := range r.Objectives {
		if o.Name == name {
			return o, true
		}
	}
	return Objective{}, false
}

// Missed lists the objectives the drill missed, as "RTO 95.0 s > 60.0 s"
// (or with the reason when the figure is within the objective but the
// recovery did not complete).
func (r *Report) Missed() string {
	var out []string
	for _, o := range r.Objectives {
		switch {
		case o.Pass:
		case o.Achieved > o.Target:
			out = append(out, fmt.Sprintf("%s %s > %s", strings.ToUpper(o.Name), dur(o.Achieved), dur(o.Target)))
		default:
			out = append(out, fmt.Sprintf("%s not met (%s)", strings.ToUpper(o.Name), o.Detail))
		}
	}
	return strings.Join(out, ", ")
}

// ReportDir is the directory `godwit drill` writes a drill's report into
// under a reports directory: the drill's start time (UTC) and its flow.
func ReportDir(reports, flow string, started time.Time) string {
	name := strings.NewReplacer("->", "-to-", "/", "_", string(filepath.Separator), "_").Replace(flow)
	return filepath.Join(reports, started.UTC().Format("20060102-150405")+"-"+name)
}
