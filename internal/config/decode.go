package config

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Duration is a time.Duration written as a Go duration string ("10s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML accepts Go duration strings.
func (d *Duration) UnmarshalYAML(b []byte) error {
	var s string
	if err := yaml.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as 10s or 1m30s")
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a duration; use a value such as 500ms, 10s or 1m30s", s)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative; durations must be positive", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes the duration as a string, as in the YAML.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

func decode(path string, data []byte) (*Config, error) {
	var c Config
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{File: path, Msg: "config file is empty; it needs at least clusters: and flows:"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data), yaml.DisallowUnknownField())
	if err := dec.Decode(&c); err != nil {
		return nil, yamlError(path, data, err)
	}
	return &c, nil
}

// yamlError turns a go-yaml error into one line: file:line: key.path: what
// is wrong and what to do.
func yamlError(path string, data []byte, err error) error {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil {
		return &Error{File: path, Msg: err.Error()}
	}
	tk := ye.GetToken()
	line := tk.Position.Line
	keyPath := newLocator(path, data).pathAt(line, tk.Position.Column)
	msg := ye.GetMessage()
	var uf *yaml.UnknownFieldError
	if errors.As(err, &uf) {
		msg = fmt.Sprintf("unknown key %q; remove it or fix its spelling (keys are snake_case, see README)", tk.Value)
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msg = fmt.Sprintf("wrong type: %s", msg)
	}
	return &Error{File: path, Line: line, Path: keyPath, Msg: msg}
}

// locator maps key paths ("flows.a->b.topics[0]") to lines in the file so
// validation errors can point at the offending line.
type locator struct {
	file  string
	paths []located
}

type located struct {
	path      string
	line, col int
}

func newLocator(file string, data []byte) *locator {
	l := &locator{file: file}
	f, err := parser.ParseBytes(data, 0)
	if err != nil || len(f.Docs) == 0 {
		return l
	}
	l.walk("", f.Docs[0].Body)
	return l
}

func (l *locator) walk(prefix string, n ast.Node) {
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, v := range n.Values {
			l.walkPair(prefix, v)
		}
	case *ast.MappingValueNode:
		l.walkPair(prefix, n)
	case *ast.SequenceNode:
		for i, v := range n.Values {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			if v != nil {
				tk := v.GetToken()
				l.paths = append(l.paths, located{p, tk.Position.Line, tk.Position.Column})
			}
			l.walk(p, v)
		}
	}
}

func (l *locator) walkPair(prefix string, mv *ast.MappingValueNode) {
	key := mv.Key.String()
	key = strings.Trim(key, `"'`)
	p := key
	if prefix != "" {
		p = prefix + "." + key
	}
	tk := mv.Key.GetToken()
	l.paths = append(l.paths, located{p, tk.Position.Line, tk.Position.Column})
	l.walk(p, mv.Value)
}

// line returns the line of a key path, or of its nearest located parent.
func (l *locator) line(path string) int {
	for p := path; p != ""; {
		for _, e := range l.paths {
			if e.path == p {
				return e.line
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// pathAt returns the key path whose key token starts at line:col, or the
// last path on that line.
func (l *locator) pathAt(line, col int) string {
	best := ""
	for _, e := range l.paths {
		if e.line == line && e.col == col {
			return e.path
		}
		if e.line == line {
			best = e.path
		}
	}
	return best
}

func (l *locator) errorf(path, format string, args ...any) *Error {
	return &Error{File: l.file, Line: l.line(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}
