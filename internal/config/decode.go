package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Duration is a time.Duration written as a Go duration string ("10s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML accepts Go duration strings. It takes the AST node rather
// than bytes so a bad value can be reported at its line and key path (goccy
// passes errors from byte unmarshalers through without a position).
func (d *Duration) UnmarshalYAML(n ast.Node) error {
	var tk *token.Token
	if n != nil {
		tk = n.GetToken()
	}
	var s string
	switch v := n.(type) {
	case nil, *ast.NullNode:
		*d = 0 // left for the default
		return nil
	case *ast.StringNode:
		s = v.Value
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		s = tk.Value
	case *ast.AliasNode:
		return &valueError{tk, "an alias cannot be used for a duration; write the value, such as 10s"}
	default:
		return &valueError{tk, "want a duration such as 10s or 1m30s"}
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		hint := ""
		if _, nerr := strconv.ParseFloat(strings.TrimSpace(s), 64); nerr == nil {
			hint = " (a bare number has no unit)"
		}
		return &valueError{tk, fmt.Sprintf("%q is not a duration%s; use a value such as 500ms, 10s or 1m30s", s, hint)}
	}
	if v < 0 {
		return &valueError{tk, fmt.Sprintf("%q is negative; durations must be positive", s)}
	}
	*d = Duration(v)
	return nil
}

// valueError is a bad value found by a custom unmarshaler, with the token
// it was found at so yamlError can name the line and key path.
type valueError struct {
	tk  *token.Token
	msg string
}

func (e *valueError) Error() string { return e.msg }

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes the duration as a string, as in the YAML.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

// UnmarshalJSON reads what MarshalJSON writes (a duration string), so JSON
// documents holding durations (drill reports) decode back.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("duration %s: want a string such as \"10s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// decode checks the document's shape, then decodes it strictly. It
// returns the parsed document too (nil when it does not parse) so the
// locator does not parse it again: parsing is the expensive part.
func decode(path string, data []byte) (*Config, *ast.File, error) {
	var c Config
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, &Error{File: path, Msg: "config file is empty; it needs at least clusters: and flows:"}
	}
	if err := checkStructure(path, data); err != nil {
		return nil, nil, err
	}
	// A syntax error is left to the decoder, which reports it with its
	// position.
	f, perr := parser.ParseBytes(data, 0)
	if perr != nil {
		f = nil
	}
	if f != nil {
		if err := checkAliases(path, f); err != nil {
			return nil, nil, err
		}
		if err := checkZeroDurations(path, f); err != nil {
			return nil, nil, err
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data), yaml.DisallowUnknownField())
	if err := dec.Decode(&c); err != nil {
		return nil, nil, yamlError(path, f, err)
	}
	return &c, f, nil
}

// yamlError turns a go-yaml error into one line: file:line: key.path: what
// is wrong and what to do.
func yamlError(path string, f *ast.File, err error) error {
	loc := newLocator(path, f)
	var ve *valueError
	if errors.As(err, &ve) {
		if ve.tk == nil {
			return &Error{File: path, Msg: ve.msg}
		}
		line := ve.tk.Position.Line
		return &Error{File: path, Line: line, Path: loc.pathAt(line, ve.tk.Position.Column), Msg: ve.msg}
	}
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil {
		return &Error{File: path, Msg: err.Error()}
	}
	tk := ye.GetToken()
	line := tk.Position.Line
	keyPath := loc.pathAt(line, tk.Position.Column)
	msg := ye.GetMessage()
	var uf *yaml.UnknownFieldError
	if errors.As(err, &uf) {
		msg = fmt.Sprintf("unknown key %q; remove it or fix its spelling (keys are snake_case, see README)", tk.Value)
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msg = fmt.Sprintf("wrong type: %s", msg)
		if want := kindName(te.DstType); want != "" {
			msg = fmt.Sprintf("wrong type: want %s, got %s", want, describeToken(tk))
		}
	}
	var ue *yaml.UnexpectedNodeTypeError
	if errors.As(err, &ue) {
		msg = fmt.Sprintf("wrong type: %s", msg)
	}
	var se *yaml.SyntaxError
	if errors.As(err, &se) {
		msg = fmt.Sprintf("YAML syntax error: %s", msg)
	}
	return &Error{File: path, Line: line, Path: keyPath, Msg: msg}
}

// describeToken names what a value token starts.
func describeToken(tk *token.Token) string {
	switch tk.Value {
	case "[", "-":
		return "a list"
	case "{":
		return "a mapping"
	}
	return strconv.Quote(tk.Value)
}

// kindName describes what a YAML value must look like for a Go type.
func kindName(t reflect.Type) string {
	if t == nil {
		return ""
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return ""
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

func newLocator(file string, f *ast.File) *locator {
	l := &locator{file: file}
	if f == nil || len(f.Docs) == 0 {
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

// pathAt returns the key path whose key token starts at line:col, else
// the rightmost path on that line starting at or before col (the key a
// value belongs to), else the last path on that line.
func (l *locator) pathAt(line, col int) string {
	best, bestCol, last := "", -1, ""
	for _, e := range l.paths {
		if e.line != line {
			continue
		}
		if e.col == col {
			return e.path
		}
		if e.col < col && e.col > bestCol {
			best, bestCol = e.path, e.col
		}
		last = e.path
	}
	if best != "" {
		return best
	}
	return last
}

func (l *locator) errorf(path, format string, args ...any) *Error {
	return &Error{File: l.file, Line: l.line(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}
