package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// ByteSize is an amount of memory, written as bytes (67108864) or with a
// binary unit (64MiB, 512KiB, 1GiB), which is how memory limits are
// usually stated (Kubernetes Mi/Gi, GOMEMLIMIT).
type ByteSize int64

// Bytes returns the size in bytes.
func (b ByteSize) Bytes() int64 { return int64(b) }

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first so "MiB" is not read as "B".
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1},
}

// ParseByteSize reads "64MiB", "512KiB", "1GiB", "100B" or a bare number
// of bytes.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	num, mult := s, int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size; use bytes or a whole number with a binary unit, such as 64MiB, 512KiB or 1GiB", s)
	}
	if n < 0 {
		return 0, fmt.Errorf("%q is negative; sizes must be positive", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(n * mult), nil
}

// String writes the size with the largest binary unit that divides it
// exactly, so what a config says round-trips as written.
func (b ByteSize) String() string {
	for _, u := range byteUnits[:3] {
		if b != 0 && int64(b)%u.mult == 0 {
			return strconv.FormatInt(int64(b)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// UnmarshalYAML takes the AST node so a bad value is reported at its line
// and key path, as Duration does.
func (b *ByteSize) UnmarshalYAML(n ast.Node) error {
	var tk *token.Token
	if n != nil {
		tk = n.GetToken()
	}
	var s string
	switch v := n.(type) {
	case nil, *ast.NullNode:
		*b = 0 // left for the default
		return nil
	case *ast.StringNode:
		s = v.Value
	case *ast.IntegerNode:
		s = tk.Value
	case *ast.AliasNode:
		return &valueError{tk, "an alias cannot be used for a size; write the value, such as 64MiB"}
	default:
		return &valueError{tk, "want a size such as 64MiB, 512KiB or a number of bytes"}
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return &valueError{tk, err.Error()}
	}
	*b = v
	return nil
}

// MarshalYAML writes the size as String does.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// MarshalJSON writes the size as a string, as in the YAML.
func (b ByteSize) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(b.String())), nil }

// UnmarshalJSON reads what MarshalJSON writes, or a number of bytes.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	s := string(data)
	if u, err := strconv.Unquote(s); err == nil {
		s = u
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return fmt.Errorf("size: %w", err)
	}
	*b = v
	return nil
}
