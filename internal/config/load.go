package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// MaxConfigBytes caps what godwit reads as a config (or MM2 properties)
// file. Real configs are a few KiB; the cap keeps a wrong path (a log, a
// device, an endless stream) from exhausting memory before it is refused.
const MaxConfigBytes = 1 << 20

// maxAliasExpansion bounds how many nodes YAML aliases may add to a
// document when expanded. Aliases are useful (one security block shared by
// clusters) but nested ones grow exponentially (the "billion laughs"
// document), so a document whose expansion passes this is refused before
// it is decoded.
const maxAliasExpansion = 100_000

// Stdin is the config path that means "read standard input".
const Stdin = "-"

// Load reads, decodes strictly, defaults and validates a config file.
func Load(path string) (*Config, error) { return LoadContext(context.Background(), path, os.Stdin) }

// LoadContext is Load that gives up when ctx ends (SIGINT/SIGTERM in the
// CLI) and reads stdin from stdin when path is "-".
func LoadContext(ctx context.Context, path string, stdin io.Reader) (*Config, error) {
	data, err := readInput(ctx, path, stdin, "config file not found; pass an existing file with -c/--config (godwit sandbox --write-config FILE writes one)")
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// readInput reads a regular file (or stdin for "-") of at most
// MaxConfigBytes, honouring ctx. Anything else (a FIFO, a device such as
// /dev/zero, a directory, a socket) is refused before it is opened:
// opening a FIFO blocks until a writer appears and a device may never end.
func readInput(ctx context.Context, path string, stdin io.Reader, notFound string) ([]byte, error) {
	if path == Stdin {
		if stdin == nil {
			return nil, &Error{File: "stdin", Msg: "no standard input to read the config from"}
		}
		return readCapped(ctx, "stdin", stdin)
	}
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{File: path, Msg: notFound}
		}
		return nil, &Error{File: path, Msg: err.Error()}
	}
	if !st.Mode().IsRegular() {
		return nil, &Error{File: path, Msg: fmt.Sprintf("is not a regular file (%s); pass a config file, or - to read standard input", fileKind(st.Mode()))}
	}
	if st.Size() > MaxConfigBytes {
		return nil, &Error{File: path, Msg: tooBig(st.Size())}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	defer f.Close()
	return readCapped(ctx, path, f)
}

func tooBig(size int64) string {
	s := "more than 1 MiB"
	if size > 0 {
		s = fmt.Sprintf("%d bytes", size)
	}
	return fmt.Sprintf("is %s, over the 1 MiB limit for a config; is this the right file?", s)
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "not a plain file"
}

// readCapped reads r up to MaxConfigBytes (a file may grow after Stat;
// stdin has no size). The read runs in a goroutine so a signal ends the
// load even when r blocks (a terminal, a pipe nobody writes to); the
// goroutine then ends with the process.
func readCapped(ctx context.Context, name string, r io.Reader) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := io.ReadAll(io.LimitReader(r, MaxConfigBytes+1))
		done <- result{data, err}
	}()
	select {
	case <-ctx.Done():
		return nil, &Error{File: name, Msg: fmt.Sprintf("reading the config stopped: %v", context.Cause(ctx))}
	case res := <-done:
		if res.err != nil {
			return nil, &Error{File: name, Msg: res.err.Error()}
		}
		if len(res.data) > MaxConfigBytes {
			return nil, &Error{File: name, Msg: tooBig(0)}
		}
		return res.data, nil
	}
}

// checkAliases refuses a document whose aliases would expand past
// maxAliasExpansion nodes. Sizes are computed once per anchor in document
// order (an alias can only refer to an anchor defined before it), so the
// check is linear in the document whatever it would expand to.
func checkAliases(path string, f *ast.File) error {
	anchors := map[string]int{}
	// size returns the node count of n with aliases expanded; literal
	// counts them as written.
	literal := 0
	var size func(n ast.Node) int
	sum := func(ns ...ast.Node) int {
		s := 1
		for _, v := range ns {
			s = sat(s + size(v))
		}
		return s
	}
	size = func(n ast.Node) int {
		if n == nil {
			return 0
		}
		literal++
		switch n := n.(type) {
		case *ast.DocumentNode:
			return size(n.Body)
		case *ast.MappingNode:
			s := 1
			for _, v := range n.Values {
				s = sat(s + size(v))
			}
			return s
		case *ast.MappingValueNode:
			return sum(n.Key, n.Value)
		case *ast.MappingKeyNode:
			return sum(n.Value)
		case *ast.SequenceNode:
			return sum(n.Values...)
		case *ast.TagNode:
			return sum(n.Value)
		case *ast.AnchorNode:
			s := size(n.Value)
			if n.Name != nil {
				anchors[n.Name.GetToken().Value] = s
			}
			return s
		case *ast.AliasNode:
			if n.Value != nil {
				if s, ok := anchors[n.Value.GetToken().Value]; ok {
					return s
				}
			}
		}
		return 1
	}
	expanded := 0
	for _, d := range f.Docs {
		expanded = sat(expanded + size(d))
	}
	if expanded-literal > maxAliasExpansion {
		line := 0
		for _, d := range f.Docs {
			if a := ast.Filter(ast.AliasType, d); len(a) > 0 {
				line = a[0].GetToken().Position.Line
				break
			}
		}
		return &Error{File: path, Line: line, Msg: fmt.Sprintf("YAML aliases expand to more than %d extra values (nested aliases grow exponentially); write the values out or use fewer nested aliases", maxAliasExpansion)}
	}
	return nil
}

// sat adds without overflowing: expansion sizes only need to be compared
// with the limit.
func sat(v int) int {
	if v < 0 || v > 1<<40 {
		return 1 << 40
	}
	return v
}

// zeroMeansUnset lists the duration keys where an explicit 0 has a
// meaning (it is also what `config check` prints for them when unset).
var zeroMeansUnset = map[string]bool{"rpo_objective": true}

var durationType = reflect.TypeFor[Duration]()

// checkZeroDurations refuses an explicit zero duration (commit_interval:
// 0s) where zero means nothing: decoding cannot tell it from an omitted
// key, so it would silently become the default. It walks the document
// alongside the Config type, so every Duration field is covered.
func checkZeroDurations(path string, f *ast.File) error {
	if len(f.Docs) == 0 {
		return nil
	}
	return zeroWalk(path, "", f.Docs[0].Body, reflect.TypeFor[Config]())
}

func zeroWalk(file, prefix string, n ast.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if a, ok := n.(*ast.AnchorNode); ok {
		n = a.Value
	}
	m, ok := n.(*ast.MappingNode)
	var values []*ast.MappingValueNode
	if ok {
		values = m.Values
	} else if mv, ok := n.(*ast.MappingValueNode); ok {
		values = []*ast.MappingValueNode{mv}
	}
	for _, mv := range values {
		key := strings.Trim(mv.Key.String(), `"'`)
		p := key
		if prefix != "" {
			p = prefix + "." + key
		}
		var ft reflect.Type
		switch t.Kind() {
		case reflect.Map:
			ft = t.Elem()
		case reflect.Struct:
			for i := 0; i < t.NumField(); i++ {
				sf := t.Field(i)
				if name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ","); name == key {
					ft = sf.Type
					break
				}
			}
		}
		if ft == nil {
			continue
		}
		if ft == durationType {
			v := mv.Value
			if a, ok := v.(*ast.AnchorNode); ok {
				v = a.Value
			}
			sc, ok := v.(ast.ScalarNode)
			if !ok || zeroMeansUnset[key] {
				continue
			}
			if _, isNull := v.(*ast.NullNode); isNull {
				continue
			}
			if d, err := time.ParseDuration(strings.TrimSpace(fmt.Sprint(sc.GetValue()))); err == nil && d == 0 {
				tk := v.GetToken()
				return &Error{File: file, Line: tk.Position.Line, Path: p, Msg: fmt.Sprintf("%s is zero, which means nothing here (it would not become the default); give a positive duration such as 10s, or remove the key for the default", tk.Value)}
			}
			continue
		}
		if err := zeroWalk(file, p, mv.Value, ft); err != nil {
			return err
		}
	}
	return nil
}
