package config

import (
	"fmt"
	"io"

	"github.com/goccy/go-yaml/scanner"
	"github.com/goccy/go-yaml/token"
)

// Structural limits checked on the token stream before the document is
// parsed. The YAML parser's cost is not linear in the input for some
// shapes: a deeply nested flow collection ("[[[[...") grows its error
// paths with the depth (a 1 MiB file took 22 GB before the kernel killed
// it), and a block mapping costs the square of its key count (100,000 keys
// take 20 s to parse). The tokenizer itself is linear, so counting there
// keeps any input under MaxConfigBytes within a fraction of a second.
const (
	// maxFlowDepth bounds [ and { nesting; configs use one or two levels.
	maxFlowDepth = 64
	// maxMappingKeys bounds the keys of one mapping; a config's largest
	// mapping is its flows: or clusters:, tens of entries.
	maxMappingKeys = 5000
	// maxTokens bounds the document's tokens: a list of 10,000 topic
	// names is about 20,000.
	maxTokens = 100_000
)

// checkStructure refuses a document that would exceed the limits above.
func checkStructure(path string, data []byte) error {
	tks, ok := tokenize(data)
	if !ok {
		return &Error{File: path, Msg: fmt.Sprintf("has more than %d YAML tokens; a config is far smaller; is this the right file?", maxTokens)}
	}
	// Block mapping keys share their mapping's column; a key (or a
	// sequence entry, or a document start) at a smaller column ends the
	// mappings indented deeper. levels is the stack of open block
	// mappings, innermost last.
	type level struct{ col, keys int }
	var levels []level
	depth := 0
	for i, tk := range tks {
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			depth++
			if depth > maxFlowDepth {
				return &Error{File: path, Line: tk.Position.Line, Msg: fmt.Sprintf("YAML [ ] and { } are nested more than %d deep; a config needs two or three levels", maxFlowDepth)}
			}
		case token.SequenceEndType, token.MappingEndType:
			if depth > 0 {
				depth--
			}
		case token.DocumentHeaderType:
			levels = levels[:0]
		case token.SequenceEntryType:
			for len(levels) > 0 && levels[len(levels)-1].col > tk.Position.Column {
				levels = levels[:len(levels)-1]
			}
		case token.MappingValueType:
			if depth > 0 || i == 0 {
				continue
			}
			key := tks[i-1]
			col := key.Position.Column
			for len(levels) > 0 && levels[len(levels)-1].col > col {
				levels = levels[:len(levels)-1]
			}
			if n := len(levels); n > 0 && levels[n-1].col == col {
				levels[n-1].keys++
				if levels[n-1].keys > maxMappingKeys {
					return &Error{File: path, Line: key.Position.Line, Msg: fmt.Sprintf("a YAML mapping has more than %d keys; a config's largest mapping (flows:, clusters:) has tens; is this the right file?", maxMappingKeys)}
				}
				continue
			}
			levels = append(levels, level{col: col, keys: 1})
		}
	}
	return nil
}

// tokenize is lexer.Tokenize stopping after maxTokens, so a document of
// a million one-byte tokens costs no more than one at the limit. ok is
// false when it stopped.
func tokenize(data []byte) (tks token.Tokens, ok bool) {
	var s scanner.Scanner
	s.Init(string(data))
	for {
		sub, err := s.Scan()
		if err == io.EOF {
			return tks, true
		}
		tks.Add(sub...)
		if len(tks) > maxTokens {
			return nil, false
		}
	}
}
