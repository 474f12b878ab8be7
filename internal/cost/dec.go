package cost

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Dec is an exact decimal (a big.Rat) read from text, so 0.1 is one tenth
// and not the nearest float64. The zero Dec is "unset".
type Dec struct{ r *big.Rat }

// D parses s and panics on a bad literal; for constants and tests.
func D(s string) Dec {
	d, err := ParseDec(s)
	if err != nil {
		panic(err)
	}
	return d
}

// ParseDec parses a decimal such as "50", "0.08", "1e3" or "1,000.5"
// (thousands separators are allowed for readability).
func ParseDec(s string) (Dec, error) {
	t := strings.ReplaceAll(strings.TrimSpace(s), "_", "")
	t = strings.ReplaceAll(t, ",", "")
	t = strings.TrimPrefix(t, "$")
	if t == "" || strings.ContainsAny(t, "/") {
		return Dec{}, fmt.Errorf("%q is not a number", s)
	}
	r, ok := new(big.Rat).SetString(t)
	if !ok {
		return Dec{}, fmt.Errorf("%q is not a number", s)
	}
	return Dec{r}, nil
}

// IsSet reports whether the value was given.
func (d Dec) IsSet() bool { return d.r != nil }

// Rat returns the value (zero when unset).
func (d Dec) Rat() *big.Rat {
	if d.r == nil {
		return new(big.Rat)
	}
	return new(big.Rat).Set(d.r)
}

// Sign is -1, 0 or +1 (0 when unset).
func (d Dec) Sign() int {
	if d.r == nil {
		return 0
	}
	return d.r.Sign()
}

// IsInt reports whether the value is a whole number.
func (d Dec) IsInt() bool { return d.r == nil || d.r.IsInt() }

// Or returns d, or def when d is unset.
func (d Dec) Or(def Dec) Dec {
	if d.IsSet() {
		return d
	}
	return def
}

// String writes the value exactly when it has at most 9 decimals, else
// rounded to 9 decimals with a leading "≈".
func (d Dec) String() string { return fmtRat(d.Rat()) }

// Set implements pflag.Value.
func (d *Dec) Set(s string) error {
	v, err := ParseDec(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Type implements pflag.Value.
func (d *Dec) Type() string { return "number" }

// UnmarshalYAML reads a YAML number or a quoted number exactly, from its
// source text.
func (d *Dec) UnmarshalYAML(n ast.Node) error {
	var s string
	switch v := n.(type) {
	case nil, *ast.NullNode:
		*d = Dec{}
		return nil
	case *ast.StringNode:
		s = v.Value
	case *ast.IntegerNode, *ast.FloatNode:
		s = n.GetToken().Value
	default:
		return fmt.Errorf("line %d: want a number, got %q", n.GetToken().Position.Line, n.String())
	}
	v, err := ParseDec(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.GetToken().Position.Line, err)
	}
	*d = v
	return nil
}

// MarshalJSON writes the exact decimal as a JSON string ("" when unset is
// written as null).
func (d Dec) MarshalJSON() ([]byte, error) {
	if d.r == nil {
		return []byte("null"), nil
	}
	return []byte(`"` + plain(d.r) + `"`), nil
}

// --- arithmetic on *big.Rat, all exact ---

func mul(xs ...*big.Rat) *big.Rat {
	out := big.NewRat(1, 1)
	for _, x := range xs {
		out.Mul(out, x)
	}
	return out
}

func quo(a, b *big.Rat) *big.Rat { return new(big.Rat).Quo(a, b) }

func ri(n int64) *big.Rat { return new(big.Rat).SetInt64(n) }

// roundCents rounds half away from zero to a whole number of cents.
func roundCents(r *big.Rat) *big.Rat {
	c := mul(r, ri(100))
	num, den := new(big.Int).Set(c.Num()), c.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Mul(m, big.NewInt(2)).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return new(big.Rat).SetFrac(q, big.NewInt(100))
}

// plain writes r without grouping: exact if it has at most 9 decimals,
// else rounded to 9 decimals.
func plain(r *big.Rat) string {
	s := r.FloatString(9)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// exactWithin reports whether r has at most 9 decimals.
func exactWithin(r *big.Rat) bool {
	x := mul(r, ri(1_000_000_000))
	return x.IsInt()
}

// fmtRat writes r with thousands separators for people; values that need
// more than 9 decimals get "≈".
func fmtRat(r *big.Rat) string {
	s := group(plain(r))
	if !exactWithin(r) {
		s = "≈" + s
	}
	return s
}

// money writes r (already rounded to cents) as $1,234.56.
func money(r *big.Rat) string {
	s := r.FloatString(2)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	s = "$" + group(s)
	if neg {
		s = "-" + s
	}
	return s
}

// price writes a unit price: at least 2 decimals, exact up to 9.
func price(r *big.Rat) string {
	s := plain(r)
	if i := strings.IndexByte(s, '.'); i < 0 {
		s += ".00"
	} else if len(s)-i-1 < 2 {
		s += strings.Repeat("0", 2-(len(s)-i-1))
	}
	return "$" + group(s)
}

// group inserts thousands separators in the integer part of a decimal.
func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac := s, ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		intPart, frac = s[:i], s[i:]
	}
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String() + frac
	if neg {
		out = "-" + out
	}
	return out
}
