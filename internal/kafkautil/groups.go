package kafkautil

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// GroupActivity is what a cluster says about one consumer group, across
// both group protocols.
type GroupActivity struct {
	Protocol string // "classic", "consumer" (KIP-848) or "" when unknown to the cluster
	State    string
	Members  int
	// Err: the group's state could not be read; treat it as active.
	Err error
}

// Active reports whether the group has members or is not settled empty.
// Callers must not overwrite an active group's offsets.
func (a GroupActivity) Active() bool {
	return a.Err != nil || a.Members > 0 || (a.State != "" && a.State != "Empty" && a.State != "Dead")
}

// GroupInspector describes groups with DescribeGroups and, on brokers that
// serve it, ConsumerGroupDescribe: DescribeGroups alone reports a KIP-848
// consumer group with members as unknown or dead. It remembers whether the
// cluster supports the second; not safe for concurrent use.
type GroupInspector struct {
	adm     *kadm.Client
	nextGen int // 0 unknown, 1 supported, -1 not
}

// NewGroupInspector inspects groups through adm.
func NewGroupInspector(adm *kadm.Client) *GroupInspector { return &GroupInspector{adm: adm} }

// Describe returns every named group's activity. The error is for the
// whole request (nothing could be described); per-group failures are in
// GroupActivity.Err.
func (gi *GroupInspector) Describe(ctx context.Context, names ...string) (map[string]GroupActivity, error) {
	out := make(map[string]GroupActivity, len(names))
	if len(names) == 0 {
		return out, nil
	}
	classic, err := gi.adm.DescribeGroups(ctx, names...)
	if err != nil {
		var se *kadm.ShardErrors
		if !errors.As(err, &se) || se.AllFailed {
			return nil, fmt.Errorf("describe groups: %w", err)
		}
	}
	for _, g := range names {
		d, ok := classic[g]
		switch {
		case !ok:
			out[g] = GroupActivity{Err: fmt.Errorf("group %q: coordinator did not answer: %w", g, err)}
		case d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound):
			out[g] = GroupActivity{Err: fmt.Errorf("group %q: %w", g, d.Err)}
		case d.Err == nil && d.State != "Dead":
			out[g] = GroupActivity{Protocol: "classic", State: d.State, Members: len(d.Members)}
		default:
			out[g] = GroupActivity{}
		}
	}
	if err := gi.probe(ctx); err != nil {
		return nil, err
	}
	if gi.nextGen < 0 {
		return out, nil
	}
	ng, err := gi.adm.DescribeConsumerGroups(ctx, names...)
	if err != nil {
		var se *kadm.ShardErrors
		if !errors.As(err, &se) || se.AllFailed {
			return nil, fmt.Errorf("describe consumer-protocol groups: %w", err)
		}
	}
	for _, g := range names {
		if out[g].Err != nil {
			continue
		}
		d, ok := ng[g]
		switch {
		case !ok:
			out[g] = GroupActivity{Err: fmt.Errorf("group %q: coordinator did not answer ConsumerGroupDescribe: %w", g, err)}
		case d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound):
			// A classic group answers "not a consumer group" here;
			// its classic view stands.
			if out[g].Protocol != "classic" {
				out[g] = GroupActivity{Err: fmt.Errorf("group %q: %w", g, d.Err)}
			}
		case d.Err == nil && (len(d.Members) > 0 || (d.State != "" && d.State != "Empty" && d.State != "Dead")):
			out[g] = GroupActivity{Protocol: "consumer", State: d.State, Members: len(d.Members)}
		}
	}
	return out, nil
}

func (gi *GroupInspector) probe(ctx context.Context) error {
	if gi.nextGen != 0 {
		return nil
	}
	vs, err := gi.adm.ApiVersions(ctx)
	if err != nil {
		return fmt.Errorf("api versions: %w", err)
	}
	gi.nextGen = -1
	for _, v := range vs {
		if v.Err != nil {
			gi.nextGen = 0
			return fmt.Errorf("api versions of broker %d: %w", v.NodeID, v.Err)
		}
		if _, ok := v.KeyMaxVersion(kmsg.ConsumerGroupDescribe.Int16()); ok {
			gi.nextGen = 1
		}
	}
	return nil
}

// CommitIfIdle commits offs as group's offsets on the cluster adm talks
// to, unless the group has members there (a is its activity there, from
// Describe): a translated position never moves a live consumer. where
// names the cluster in the reasons. It returns "" once committed, else
// why it did not commit.
func CommitIfIdle(ctx context.Context, adm *kadm.Client, group string, a GroupActivity, where string, offs kadm.Offsets) string {
	switch {
	case a.Err != nil:
		return "cannot describe the group on " + where + ": " + a.Err.Error()
	case a.Active():
		return fmt.Sprintf("active on %s (state %s, %d members): its offsets are not overwritten", where, a.State, a.Members)
	case len(offs) == 0:
		return "no translatable offsets"
	}
	resp, err := adm.CommitOffsets(ctx, group, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return "commit refused: " + err.Error()
	}
	return ""
}
