// Package cost models what a cross-region Kafka DR setup costs per month,
// in four layers: standby compute, duplicate storage, replication and
// transfer, and operations. Every amount is exact arithmetic (math/big.Rat)
// on unit prices from a versioned table, shown as a formula a FinOps
// reader can check line by line; amounts are rounded to the cent only for
// each line, and totals are the sums of the rounded lines.
package cost

import (
	"fmt"
	"math/big"
	"strings"
)

// Layers, in display order.
const (
	LayerStandby     = "standby_compute"
	LayerStorage     = "duplicate_storage"
	LayerReplication = "replication_transfer"
	LayerOperations  = "operations"
)

// Layers lists the layers in display order.
var Layers = []string{LayerStandby, LayerStorage, LayerReplication, LayerOperations}

// DaysPerMonth defines the month: monthly prices (GB-month, a monthly
// standby figure) are multiplied by days / 30.
const DaysPerMonth = 30

// Rounding states how amounts are rounded.
const Rounding = "each line is computed exactly and rounded half away from zero to the cent; totals are sums of the rounded lines"

// Cents is an amount rounded to the cent, written with two decimals.
type Cents struct{ r *big.Rat }

// Rat returns the amount.
func (c Cents) Rat() *big.Rat { return new(big.Rat).Set(c.r) }

// String is "$1,234.56".
func (c Cents) String() string { return money(c.r) }

// MarshalJSON writes "1234.56".
func (c Cents) MarshalJSON() ([]byte, error) { return []byte(`"` + c.r.FloatString(2) + `"`), nil }

// Line is one line item: quantity × unit price = amount.
type Line struct {
	Layer  string `json:"layer"`
	Option string `json:"option"`
	// Item names the line within its layer (e.g. "cross-region-transfer").
	Item      string `json:"item"`
	Formula   string `json:"formula"`
	Quantity  Dec    `json:"quantity"`
	Unit      string `json:"unit"`
	UnitPrice Dec    `json:"unit_price"`
	Amount    Cents  `json:"amount"`
	// The unit price's provenance; empty for inputs (drill rate, a
	// monthly standby figure).
	PriceKey        string `json:"price_key,omitempty"`
	PriceSource     string `json:"price_source"`
	PriceAsOf       string `json:"price_as_of,omitempty"`
	PriceAssumption bool   `json:"price_assumption"`
}

// Basis is a derived quantity the lines use, with how it was derived.
type Basis struct {
	Name    string `json:"name"`
	Formula string `json:"formula"`
	Value   Dec    `json:"value"`
	Unit    string `json:"unit"`
}

// OptionCost is one option's lines and total.
type OptionCost struct {
	Option string           `json:"option"`
	Lines  []*Line          `json:"lines"`
	Layers map[string]Cents `json:"layers"`
	Total  Cents            `json:"total"`
}

// Report is the model's result.
type Report struct {
	Currency     string        `json:"currency"`
	GBDefinition string        `json:"gb_definition"`
	Month        string        `json:"month"`
	Rounding     string        `json:"rounding"`
	Route        string        `json:"route"`
	Prices       *PriceTable   `json:"price_table"`
	Inputs       *Inputs       `json:"inputs"`
	Basis        []*Basis      `json:"basis"`
	Options      []*OptionCost `json:"options"`
	// Assumptions lists the prices used that are placeholders.
	Assumptions []*Price `json:"assumed_prices"`
}

// Compute prices the inputs. in must have been normalized.
func Compute(in *Inputs, t *PriceTable) (*Report, error) {
	gbBytes, gbName, gbDef := ri(1_000_000_000), "GB", "decimal: 1 GB = 1000 MB = 10^9 bytes (MB/s means 10^6 bytes/s)"
	if in.GB == GBBinary {
		gbBytes, gbName, gbDef = ri(1<<30), "GiB", "binary: 1 GiB = 1024 MiB = 2^30 bytes (MB/s still means 10^6 bytes/s)"
	}
	mbPerGB := quo(gbBytes, ri(1_000_000))
	rep := &Report{
		Currency:     "USD",
		GBDefinition: gbDef,
		Month:        fmt.Sprintf("%d days; monthly prices are multiplied by days / %d", DaysPerMonth, DaysPerMonth),
		Rounding:     Rounding,
		Route:        in.SourceRegion + " -> " + in.TargetRegion,
		Prices:       t,
		Inputs:       in,
	}
	basis := func(name, formula string, v *big.Rat, unit string) *big.Rat {
		rep.Basis = append(rep.Basis, &Basis{Name: name, Formula: formula + " = " + fmtRat(v) + " " + unit, Value: Dec{v}, Unit: unit})
		return v
	}

	days := in.Days.Rat()
	hours := basis("hours", fmt.Sprintf("%s d × 24 h/d", in.Days), mul(days, ri(24)), "h")
	seconds := mul(days, ri(86400))
	months := quo(days, ri(DaysPerMonth))
	share := in.ReplicatedShare.Rat()
	rf := in.TargetReplicationFactor.Rat()

	var mbps *big.Rat
	var replicated, stored *big.Rat
	if m := in.Measured; m != nil {
		mbps = quo(m.rate(), ri(1_000_000))
		basis("throughput (measured)", fmt.Sprintf("(%s − %s) bytes of leader log size ÷ %s s window ÷ 10^6 bytes/MB (cluster %s, %d partitions of %d topics)",
			fmtRat(ri(m.EndBytes)), fmtRat(ri(m.StartBytes)), fmtRat(m.windowSeconds()), m.Cluster, m.Partitions, len(m.Topics)), mbps, "MB/s")
		replicated = basis("replicated volume", fmt.Sprintf("%s MB/s × %s share × %s s (%s d) ÷ %s MB/%s",
			fmtRat(mbps), in.ReplicatedShare, fmtRat(seconds), in.Days, fmtRat(mbPerGB), gbName),
			quo(mul(mbps, share, seconds), mbPerGB), gbName)
		stored = basis("duplicate storage (measured)", fmt.Sprintf("%s bytes (leader replicas of the replicated topics now) × %s share ÷ %s bytes/%s × %s target RF",
			fmtRat(ri(m.EndBytes)), in.ReplicatedShare, fmtRat(gbBytes), gbName, in.TargetReplicationFactor),
			mul(quo(mul(ri(m.EndBytes), share), gbBytes), rf), gbName)
	} else {
		mbps = in.ThroughputMBps.Rat()
		replicated = basis("replicated volume", fmt.Sprintf("%s MB/s × %s share × %s s (%s d) ÷ %s MB/%s",
			in.ThroughputMBps, in.ReplicatedShare, fmtRat(seconds), in.Days, fmtRat(mbPerGB), gbName),
			quo(mul(mbps, share, seconds), mbPerGB), gbName)
		retS := mul(in.RetentionHours.Rat(), ri(3600))
		stored = basis("duplicate storage", fmt.Sprintf("%s MB/s × %s share × %s s retention (%s h) ÷ %s MB/%s × %s target RF",
			in.ThroughputMBps, in.ReplicatedShare, fmtRat(retS), in.RetentionHours, fmtRat(mbPerGB), gbName, in.TargetReplicationFactor),
			mul(quo(mul(mbps, share, retS), mbPerGB), rf), gbName)
	}

	used := map[*Price]bool{}
	lookup := func(key, item, region string) (*Price, error) {
		p, err := t.Lookup(key, item, region)
		if err == nil && p.Assumption && !used[p] {
			used[p] = true
			rep.Assumptions = append(rep.Assumptions, p)
		}
		return p, err
	}
	priced := func(l *Line, p *Price, qty *big.Rat) *Line {
		l.Quantity, l.UnitPrice = Dec{qty}, p.Price
		l.Amount = Cents{roundCents(mul(qty, p.Price.Rat()))}
		l.PriceKey, l.PriceSource, l.PriceAsOf, l.PriceAssumption = p.Key, p.Source, p.AsOf, p.Assumption
		return l
	}
	input := func(l *Line, qty *big.Rat, unitPrice Dec) *Line {
		l.Quantity, l.UnitPrice = Dec{qty}, unitPrice
		l.Amount = Cents{roundCents(mul(qty, unitPrice.Rat()))}
		l.PriceSource = "input"
		return l
	}
	perUnit := func(p *Price) string { return price(p.Price.Rat()) + "/" + unitName(p.Unit, gbName) }

	// Lines shared by every option.
	var standby, storage, ops *Line
	if in.Standby.Monthly.IsSet() {
		standby = input(&Line{Layer: LayerStandby, Item: "standby-cluster", Unit: "month",
			Formula: fmt.Sprintf("%s/month (given) × %s month (%s d ÷ %d)", price(in.Standby.Monthly.Rat()), fmtRat(months), in.Days, DaysPerMonth),
		}, months, in.Standby.Monthly)
	} else {
		p, err := lookup(KeyBrokerHour, in.Standby.BrokerType, in.TargetRegion)
		if err != nil {
			return nil, err
		}
		qty := mul(in.Standby.Brokers.Rat(), hours)
		standby = priced(&Line{Layer: LayerStandby, Item: "standby-brokers", Unit: "broker-hour",
			Formula: fmt.Sprintf("%s brokers (%s) × %s h × %s", in.Standby.Brokers, in.Standby.BrokerType, fmtRat(hours), perUnit(p)),
		}, p, qty)
	}
	{
		p, err := lookup(KeyStorageGBMonth, "", in.TargetRegion)
		if err != nil {
			return nil, err
		}
		qty := mul(stored, months)
		storage = priced(&Line{Layer: LayerStorage, Item: "target-storage", Unit: gbName + "-month",
			Formula: fmt.Sprintf("%s %s × %s month (%s d ÷ %d) × %s", fmtRat(stored), gbName, fmtRat(months), in.Days, DaysPerMonth, perUnit(p)),
		}, p, qty)
	}
	ops = input(&Line{Layer: LayerOperations, Item: "drills", Unit: "hour",
		Formula: fmt.Sprintf("%s drill h × %s/h (given)", in.Operations.DrillHours, price(in.Operations.HourlyRate.Rat())),
	}, in.Operations.DrillHours.Rat(), in.Operations.HourlyRate)

	var transfer *Line
	route := in.SourceRegion + ">" + in.TargetRegion
	if in.SourceRegion == in.TargetRegion {
		transfer = input(&Line{Layer: LayerReplication, Item: "cross-region-transfer", Unit: gbName,
			Formula: fmt.Sprintf("%s %s × $0.00/%s (same region %s: no cross-region transfer)", fmtRat(replicated), gbName, gbName, in.SourceRegion),
		}, replicated, D("0"))
		transfer.PriceSource = "same region"
	} else {
		p, err := lookup(KeyTransferGB, "", route)
		if err != nil {
			return nil, err
		}
		transfer = priced(&Line{Layer: LayerReplication, Item: "cross-region-transfer", Unit: gbName,
			Formula: fmt.Sprintf("%s %s × %s (%s → %s)", fmtRat(replicated), gbName, perUnit(p), in.SourceRegion, in.TargetRegion),
		}, p, replicated)
	}

	for _, opt := range in.Options {
		oc := &OptionCost{Option: opt, Layers: map[string]Cents{}}
		var repl []*Line
		switch opt {
		case OptionMSKReplicator:
			ph, err := lookup(KeyReplicatorHour, "", in.TargetRegion)
			if err != nil {
				return nil, err
			}
			pg, err := lookup(KeyReplicatorGB, "", in.TargetRegion)
			if err != nil {
				return nil, err
			}
			n := in.MSKReplicator.Replicators
			repl = append(repl,
				priced(&Line{Layer: LayerReplication, Item: "replicator-hours", Unit: "replicator-hour",
					Formula: fmt.Sprintf("%s replicator × %s h × %s", n, fmtRat(hours), perUnit(ph)),
				}, ph, mul(n.Rat(), hours)),
				priced(&Line{Layer: LayerReplication, Item: "data-processed", Unit: gbName,
					Formula: fmt.Sprintf("%s %s processed × %s", fmtRat(replicated), gbName, perUnit(pg)),
				}, pg, replicated))
		case OptionGodwit, OptionMirrorMaker2:
			w := in.Godwit
			if opt == OptionMirrorMaker2 {
				w = in.MirrorMaker2
			}
			p, err := lookup(KeyInstanceHour, w.InstanceType, in.TargetRegion)
			if err != nil {
				return nil, err
			}
			repl = append(repl, priced(&Line{Layer: LayerReplication, Item: "worker-instances", Unit: "instance-hour",
				Formula: fmt.Sprintf("%s workers (%s, self-run) × %s h × %s", w.Count, w.InstanceType, fmtRat(hours), perUnit(p)),
			}, p, mul(w.Count.Rat(), hours)))
		}
		repl = append(repl, transfer)
		for _, l := range append(append([]*Line{standby, storage}, repl...), ops) {
			c := *l
			c.Option = opt
			oc.Lines = append(oc.Lines, &c)
		}
		total := new(big.Rat)
		for _, layer := range Layers {
			sum := new(big.Rat)
			for _, l := range oc.Lines {
				if l.Layer == layer {
					sum.Add(sum, l.Amount.r)
				}
			}
			oc.Layers[layer] = Cents{sum}
			total.Add(total, sum)
		}
		oc.Total = Cents{total}
		rep.Options = append(rep.Options, oc)
	}
	return rep, nil
}

// unitName renders a price unit, using GiB when the binary definition is
// in force.
func unitName(u, gbName string) string {
	if gbName == "GB" {
		return u
	}
	return strings.ReplaceAll(u, "GB", gbName)
}

// Option returns the named option's cost, or nil.
func (r *Report) Option(name string) *OptionCost {
	for _, o := range r.Options {
		if o.Option == name {
			return o
		}
	}
	return nil
}

// Line returns the option's line with item, or nil.
func (o *OptionCost) Line(item string) *Line {
	for _, l := range o.Lines {
		if l.Item == item {
			return l
		}
	}
	return nil
}
