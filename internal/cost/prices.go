package cost

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
)

// Price keys.
const (
	KeyBrokerHour     = "msk-broker-hour"     // standby broker, per broker-hour (item: broker type)
	KeyStorageGBMonth = "storage-gb-month"    // broker storage, per GB-month
	KeyReplicatorHour = "msk-replicator-hour" // MSK Replicator, per replicator-hour
	KeyReplicatorGB   = "msk-replicator-gb"   // MSK Replicator, per GB processed
	KeyTransferGB     = "transfer-gb"         // cross-region data transfer, per GB (region: SRC>DST)
	KeyInstanceHour   = "instance-hour"       // self-run worker, per instance-hour (item: instance type)
)

// AnyRegion matches every region in a price entry.
const AnyRegion = "*"

//go:embed prices.yaml
var embeddedPrices []byte

// Price is one unit price with its provenance.
type Price struct {
	Key        string `yaml:"key" json:"key"`
	Item       string `yaml:"item" json:"item,omitempty"`
	Region     string `yaml:"region" json:"region"`
	Price      Dec    `yaml:"price" json:"price"`
	Unit       string `yaml:"unit" json:"unit"`
	Source     string `yaml:"source" json:"source"`
	AsOf       string `yaml:"as_of" json:"as_of"`
	Assumption bool   `yaml:"assumption" json:"assumption"`
	Note       string `yaml:"note" json:"note,omitempty"`

	// Origin is "embedded" or the override file it came from.
	Origin string `yaml:"-" json:"origin"`
}

// PriceTable is a versioned list of prices.
type PriceTable struct {
	Version  string   `yaml:"version" json:"version"`
	Currency string   `yaml:"currency" json:"currency"`
	Prices   []*Price `yaml:"prices" json:"-"`

	// Overrides names the files applied on top of the embedded table.
	Overrides []string `yaml:"-" json:"overrides,omitempty"`
}

// EmbeddedPrices returns the table compiled into godwit.
func EmbeddedPrices() (*PriceTable, error) {
	t, err := parsePrices("embedded prices.yaml", embeddedPrices)
	if err != nil {
		return nil, err
	}
	for _, p := range t.Prices {
		p.Origin = "embedded"
	}
	return t, nil
}

// ErrInput marks an error in the user's input (an input or price file, or
// a flag); the CLI exits 2 for it.
var ErrInput = errors.New("bad cost input")

// inputError wraps a message as ErrInput.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }
func (e *inputError) Unwrap() error { return ErrInput }

func inputErrorf(format string, args ...any) error {
	return &inputError{fmt.Sprintf(format, args...)}
}

func parsePrices(name string, data []byte) (*PriceTable, error) {
	var t PriceTable
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, inputErrorf("%s: empty price file; it needs a prices: list", name)
	}
	if err := yaml.NewDecoder(bytes.NewReader(data), yaml.DisallowUnknownField()).Decode(&t); err != nil {
		return nil, inputErrorf("%s: %s", name, yamlMsg(err))
	}
	for i, p := range t.Prices {
		where := fmt.Sprintf("%s: prices[%d] (%s)", name, i, p.Key)
		switch {
		case p == nil:
			return nil, inputErrorf("%s: prices[%d] is empty", name, i)
		case p.Key == "":
			return nil, inputErrorf("%s: prices[%d]: key is missing", name, i)
		case !knownKey(p.Key):
			return nil, inputErrorf("%s: unknown key %q; use one of %s", where, p.Key, strings.Join(keys(), ", "))
		case !p.Price.IsSet():
			return nil, inputErrorf("%s: price is missing", where)
		case p.Price.Sign() < 0:
			return nil, inputErrorf("%s: price %s is negative", where, p.Price)
		case p.Source == "":
			return nil, inputErrorf("%s: source is missing; say where the price comes from", where)
		case p.AsOf == "":
			return nil, inputErrorf("%s: as_of is missing; give the date the price was taken", where)
		}
		if p.Region == "" {
			p.Region = AnyRegion
		}
		if (p.Key == KeyBrokerHour || p.Key == KeyInstanceHour) && p.Item == "" {
			return nil, inputErrorf("%s: item is missing; name the broker or instance type", where)
		}
	}
	if t.Currency != "" && t.Currency != "USD" {
		return nil, inputErrorf("%s: currency %q: only USD is supported", name, t.Currency)
	}
	return &t, nil
}

func keys() []string {
	return []string{KeyBrokerHour, KeyStorageGBMonth, KeyReplicatorHour, KeyReplicatorGB, KeyTransferGB, KeyInstanceHour}
}

func knownKey(k string) bool {
	for _, x := range keys() {
		if x == k {
			return true
		}
	}
	return false
}

// Override applies the prices in file on top of t: an entry with the same
// key, item and region replaces the old one, others are added.
func (t *PriceTable) Override(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return inputErrorf("--prices: %v", err)
	}
	o, err := parsePrices(file, data)
	if err != nil {
		return err
	}
	for _, p := range o.Prices {
		p.Origin = file
		replaced := false
		for i, q := range t.Prices {
			if q.Key == p.Key && q.Item == p.Item && q.Region == p.Region {
				t.Prices[i], replaced = p, true
				break
			}
		}
		if !replaced {
			t.Prices = append(t.Prices, p)
		}
	}
	t.Overrides = append(t.Overrides, file)
	return nil
}

// Lookup returns the price for key and item in region, preferring an entry
// for the exact region over one for "*". Among equal matches the last
// (an override added later) wins.
func (t *PriceTable) Lookup(key, item, region string) (*Price, error) {
	var exact, wild *Price
	for _, p := range t.Prices {
		if p.Key != key || p.Item != item {
			continue
		}
		switch p.Region {
		case region:
			exact = p
		case AnyRegion:
			wild = p
		}
	}
	if exact != nil {
		return exact, nil
	}
	if wild != nil {
		return wild, nil
	}
	what := key
	if item != "" {
		what += " for " + item
	}
	return nil, inputErrorf("no price for %s in region %s; add one to a --prices file, e.g.\n"+
		"prices:\n  - {key: %s, item: %q, region: %q, price: \"0.00\", unit: ..., source: \"...\", as_of: \"YYYY-MM-DD\"}",
		what, region, key, item, region)
}

// yamlMsg shortens a go-yaml error to one line: "line N: what".
func yamlMsg(err error) string {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		tk := ye.GetToken()
		msg := ye.GetMessage()
		var uf *yaml.UnknownFieldError
		if errors.As(err, &uf) {
			msg = fmt.Sprintf("unknown key %q; remove it or fix its spelling (keys are snake_case, see docs/cost.md)", tk.Value)
		}
		return fmt.Sprintf("line %d: %s", tk.Position.Line, msg)
	}
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
