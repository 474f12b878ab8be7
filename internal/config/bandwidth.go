package config

import (
	"fmt"
	"regexp"
)

// Bandwidth settings of a flow (docs/bandwidth.md): a cap on the bytes it
// writes to the target and the criticality tiers that share the cap.

// Tier ranks a selection of the flow's topics. Tiers are listed most
// critical first; under the flow's max_bytes_per_second a tier's senders
// go before those of every tier below it. A topic belongs to the first
// tier whose topics match it (and whose topics_exclude does not); topics
// no tier names form an implicit last tier, DefaultTierName.
type Tier struct {
	Name          string   `yaml:"name" json:"name"`
	Topics        []string `yaml:"topics" json:"topics"`
	TopicsExclude []string `yaml:"topics_exclude" json:"topics_exclude"`
	// RPOObjective is this tier's own objective (default: the flow's).
	RPOObjective Duration `yaml:"rpo_objective" json:"rpo_objective"`

	topics, topicsExclude []*regexp.Regexp
}

// DefaultTierName is the tier of the topics no configured tier names.
const DefaultTierName = "default"

// TierNames lists the flow's tiers, most critical first, ending with
// DefaultTierName unless the last configured tier catches every topic
// (it is listed all the same: a flow always has a last tier).
func (f *Flow) TierNames() []string {
	out := make([]string, 0, len(f.Tiers)+1)
	for _, t := range f.Tiers {
		out = append(out, t.Name)
	}
	return append(out, DefaultTierName)
}

// TierOf is the index in TierNames of topic's tier.
func (f *Flow) TierOf(topic string) int {
	for i, t := range f.Tiers {
		if matchAny(t.topics, topic) && !matchAny(t.topicsExclude, topic) {
			return i
		}
	}
	return len(f.Tiers)
}

// TierObjective is the rpo_objective of tier i in TierNames (0: none).
func (f *Flow) TierObjective(i int) Duration {
	if i < len(f.Tiers) && f.Tiers[i].RPOObjective > 0 {
		return f.Tiers[i].RPOObjective
	}
	return f.RPOObjective
}

func (f *Flow) compileBandwidth(loc *locator, p string) error {
	if f.MaxBytesPerSecond < 0 {
		return loc.errorf(p+".max_bytes_per_second", "max_bytes_per_second must be positive (e.g. 20MiB), or omitted for no cap; got %d", f.MaxBytesPerSecond)
	}
	if f.MaxBytesPerSecond > 0 && f.MaxBytesPerSecond < 64<<10 {
		return loc.errorf(p+".max_bytes_per_second", "max_bytes_per_second %s is below 64KiB/s, less than one produce request per second; raise it", f.MaxBytesPerSecond)
	}
	seen := map[string]bool{}
	for i := range f.Tiers {
		t := &f.Tiers[i]
		tp := fmt.Sprintf("%s.tiers[%d]", p, i)
		switch {
		case t.Name == "":
			return loc.errorf(tp+".name", "a tier needs a name (e.g. critical, bulk)")
		case t.Name == DefaultTierName:
			return loc.errorf(tp+".name", "%q is the implicit last tier of topics no tier names; call this tier something else", t.Name)
		case seen[t.Name]:
			return loc.errorf(tp+".name", "tier %q is listed twice; tier names must be unique", t.Name)
		case len(t.Topics) == 0:
			return loc.errorf(tp+".topics", "tier %q selects no topics; list regexes, e.g. topics: [\"orders.*\"]", t.Name)
		case t.RPOObjective < 0:
			return loc.errorf(tp+".rpo_objective", "rpo_objective must be positive, got %s", t.RPOObjective.D())
		}
		seen[t.Name] = true
		var err error
		if t.topics, err = compileAll(loc, tp+".topics", t.Topics); err != nil {
			return err
		}
		if t.topicsExclude, err = compileAll(loc, tp+".topics_exclude", t.TopicsExclude); err != nil {
			return err
		}
	}
	return nil
}
