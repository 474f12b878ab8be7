package metasync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/naming"
)

// ACL is one ACL binding, with Kafka's names for its enums (TOPIC/GROUP,
// LITERAL/PREFIXED, READ/WRITE/..., ALLOW/DENY).
type ACL struct {
	ResourceType string `json:"resource_type"`
	Name         string `json:"name"`
	Pattern      string `json:"pattern"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
}

// ID is the ACL's identity: the key of its ownership record.
func (a ACL) ID() string {
	b, _ := json.Marshal([]string{a.ResourceType, a.Pattern, a.Name, a.Principal, a.Host, a.Operation, a.Permission})
	return string(b)
}

func (a ACL) String() string {
	return fmt.Sprintf("%s %s %s on %s %s %q from host %s", a.Permission, a.Principal, a.Operation, a.Pattern, a.ResourceType, a.Name, a.Host)
}

func fromDescribed(d kadm.DescribedACL) ACL {
	return ACL{
		ResourceType: d.Type.String(), Name: d.Name, Pattern: d.Pattern.String(),
		Principal: d.Principal, Host: d.Host, Operation: d.Operation.String(), Permission: d.Permission.String(),
	}
}

// builder returns an ACL builder matching (or creating) exactly a.
func (a ACL) builder() (*kadm.ACLBuilder, error) {
	op, err := kmsg.ParseACLOperation(a.Operation)
	if err != nil {
		return nil, err
	}
	pat, err := kmsg.ParseACLResourcePatternType(a.Pattern)
	if err != nil {
		return nil, err
	}
	b := kadm.NewACLs().ResourcePatternType(pat).Operations(op)
	switch a.ResourceType {
	case "TOPIC":
		b.Topics(a.Name)
	case "GROUP":
		b.Groups(a.Name)
	default:
		return nil, fmt.Errorf("unsupported resource type %s", a.ResourceType)
	}
	if a.Permission == "DENY" {
		b.MaybeDeny(a.Principal).MaybeDenyHosts(a.Host)
	} else {
		b.MaybeAllow(a.Principal).MaybeAllowHosts(a.Host)
	}
	return b, nil
}

// allTopicGroupACLs matches every topic and group ACL.
func allTopicGroupACLs() *kadm.ACLBuilder {
	return kadm.NewACLs().Topics().Groups().ResourcePatternType(kadm.ACLPatternAny).
		Allow().AllowHosts().Deny().DenyHosts().Operations()
}

// errNoAuthorizer is returned when a cluster has no authorizer.
var errNoAuthorizer = errors.New("no authorizer")

func describeAll(ctx context.Context, adm *kadm.Client) ([]ACL, error) {
	rs, err := adm.DescribeACLs(ctx, allTopicGroupACLs())
	if err != nil {
		if errors.Is(err, kerr.SecurityDisabled) {
			return nil, errNoAuthorizer
		}
		return nil, err
	}
	var out []ACL
	for _, r := range rs {
		if r.Err != nil {
			if errors.Is(r.Err, kerr.SecurityDisabled) {
				return nil, errNoAuthorizer
			}
			if r.ErrMessage != "" {
				return nil, fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
			}
			return nil, r.Err
		}
		for _, d := range r.Described {
			out = append(out, fromDescribed(d))
		}
	}
	return out, nil
}

// mapACL maps a source ACL to the target ACL godwit wants, or returns why
// it is not copied.
func (s *Syncer) mapACL(a ACL, selected []string) (ACL, string) {
	writeOK := s.flow.SyncACLsWrite != nil && *s.flow.SyncACLsWrite
	out := a
	switch a.Pattern {
	case "LITERAL", "PREFIXED":
	default:
		return ACL{}, "pattern " + a.Pattern + " is not copied"
	}
	switch a.ResourceType {
	case "TOPIC":
		switch {
		case a.Pattern == "LITERAL" && a.Name == "*":
			// Every source topic: on the target that is every
			// replicated topic, i.e. the flow's prefix.
			if s.flow.Naming != "identical" {
				out.Pattern, out.Name = "PREFIXED", s.flow.Source+s.flow.Separator
			}
		case a.Pattern == "LITERAL":
			if s.policy.Select(a.Name) != naming.Selected {
				return ACL{}, "topic not replicated by the flow"
			}
			out.Name = s.policy.TargetTopic(a.Name)
		default: // PREFIXED
			match := false
			for _, t := range selected {
				if strings.HasPrefix(t, a.Name) {
					match = true
					break
				}
			}
			if !match {
				return ACL{}, "prefix matches no replicated topic"
			}
			out.Name = s.policy.TargetTopic(a.Name)
		}
	case "GROUP":
		// Groups keep their names on the target.
		if a.Name != "*" && !s.flow.GroupSelected(a.Name) {
			return ACL{}, "group not selected by the flow"
		}
		if strings.HasPrefix(a.Name, naming.InternalPrefix) {
			return ACL{}, "godwit's own group"
		}
	default:
		return ACL{}, "resource type " + a.ResourceType + " is not copied"
	}
	if a.Permission == "ALLOW" && !writeOK {
		switch a.Operation {
		case "WRITE":
			return ACL{}, "ALLOW WRITE is not copied (set sync_acls_write for identical-naming DR)"
		case "ALL":
			out.Operation = "READ"
		}
	}
	return out, ""
}

// owned is the target ACLs godwit created, read from the ownership topic.
func (s *Syncer) readOwned(ctx context.Context) (map[string]ACL, error) {
	out := map[string]ACL{}
	ends, err := s.dstAdm.ListEndOffsets(ctx, s.stateTopic)
	if err != nil {
		return nil, err
	}
	var readErr error
	ends.Each(func(o kadm.ListedOffset) {
		if readErr != nil {
			return
		}
		if o.Err != nil {
			if !errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
				readErr = o.Err
			}
			return
		}
		if o.Offset <= 0 {
			return
		}
		recs, err := kafkautil.ReadRange(ctx, s.dst, s.stateTopic, o.Partition, 0, o.Offset, true)
		if err != nil {
			readErr = err
			return
		}
		for _, r := range recs {
			if r.Value == nil {
				delete(out, string(r.Key))
				continue
			}
			var rec ownRecord
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				s.log.Warn("ignoring unreadable ACL ownership record", "topic", s.stateTopic, "offset", r.Offset, "err", err)
				continue
			}
			out[string(r.Key)] = rec.ACL
		}
	})
	return out, readErr
}

// ownRecord is the value of an ownership record.
type ownRecord struct {
	ACL       ACL    `json:"acl"`
	Source    []ACL  `json:"source,omitempty"`
	Flow      string `json:"flow"`
	CreatedAt string `json:"created_at"`
}

func (s *Syncer) ensureStateTopic(ctx context.Context) error {
	d, err := s.dstAdm.ListTopics(fresh(ctx), s.stateTopic)
	if err != nil {
		return err
	}
	if t, ok := d[s.stateTopic]; ok && t.Err == nil {
		return nil
	}
	_, err = s.dstAdm.CreateTopic(ctx, 1, -1, map[string]*string{
		"cleanup.policy": strp("compact"),
	}, s.stateTopic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create ACL ownership topic %q on cluster %s: %w", s.stateTopic, s.flow.Target, err)
	}
	return nil
}

func (s *Syncer) writeOwned(ctx context.Context, a ACL, src []ACL) error {
	v, _ := json.Marshal(ownRecord{ACL: a, Source: src, Flow: s.flow.Name, CreatedAt: time.Now().UTC().Format(time.RFC3339)})
	return s.dst.ProduceSync(ctx, &kgo.Record{Topic: s.stateTopic, Key: []byte(a.ID()), Value: v}).FirstErr()
}

func (s *Syncer) forgetOwned(ctx context.Context, a ACL) error {
	return s.dst.ProduceSync(ctx, &kgo.Record{Topic: s.stateTopic, Key: []byte(a.ID())}).FirstErr()
}

// planACLs adds the ACL actions: create wanted ACLs missing on the target,
// delete ACLs godwit created whose source ACL is gone. ACLs on the target
// that godwit did not create are never deleted.
func (s *Syncer) planACLs(ctx context.Context, p *Plan, selected []string) error {
	srcACLs, err := describeAll(ctx, s.srcAdm)
	if errors.Is(err, errNoAuthorizer) {
		msg := fmt.Sprintf("source cluster %s has no authorizer (SECURITY_DISABLED): ACL sync skipped", s.flow.Source)
		s.warnOnce("src-acls", msg)
		p.Warnings = append(p.Warnings, Issue{Kind: IssueACLsUnsupported, Message: msg})
		return nil
	}
	if err != nil {
		p.Errors = append(p.Errors, Issue{Kind: IssueACL, Message: fmt.Sprintf("describe ACLs on source cluster %s: %v; ACL sync skipped this pass", s.flow.Source, err)})
		return nil
	}
	dstACLs, err := describeAll(ctx, s.dstAdm)
	if errors.Is(err, errNoAuthorizer) {
		msg := fmt.Sprintf("target cluster %s has no authorizer (SECURITY_DISABLED): ACL sync skipped", s.flow.Target)
		s.warnOnce("dst-acls", msg)
		p.Warnings = append(p.Warnings, Issue{Kind: IssueACLsUnsupported, Message: msg})
		return nil
	}
	if err != nil {
		p.Errors = append(p.Errors, Issue{Kind: IssueACL, Message: fmt.Sprintf("describe ACLs on target cluster %s: %v; ACL sync skipped this pass", s.flow.Target, err)})
		return nil
	}
	owned, err := s.readOwned(ctx)
	if err != nil {
		p.Errors = append(p.Errors, Issue{Kind: IssueACL, Message: fmt.Sprintf("read ACL ownership topic %q on cluster %s: %v; ACL sync skipped this pass", s.stateTopic, s.flow.Target, err)})
		return nil
	}

	want := map[string]ACL{}
	sources := map[string][]ACL{}
	for _, a := range srcACLs {
		t, why := s.mapACL(a, selected)
		if why != "" {
			s.log.Debug("source ACL not copied", "acl", a.String(), "reason", why)
			continue
		}
		want[t.ID()] = t
		sources[t.ID()] = append(sources[t.ID()], a)
	}
	have := map[string]bool{}
	for _, a := range dstACLs {
		have[a.ID()] = true
	}
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if have[id] {
			continue // present: created by us earlier, or by someone else
		}
		a := want[id]
		var from []string
		for _, sa := range sources[id] {
			from = append(from, sa.Operation)
		}
		reason := fmt.Sprintf("source has %s %s %s on %s %s %q", sources[id][0].Permission, a.Principal, strings.Join(from, "+"), sources[id][0].Pattern, strings.ToLower(a.ResourceType), sources[id][0].Name)
		if _, ok := owned[id]; ok {
			reason += " (godwit created it before; it was removed from the target)"
		}
		p.Actions = append(p.Actions, Action{Kind: KindCreateACL, ACL: &a, Reason: reason, sources: sources[id]})
	}
	for _, id := range slices.Sorted(maps.Keys(owned)) {
		if _, ok := want[id]; ok {
			continue
		}
		a := owned[id]
		if !have[id] {
			p.staleOwned = append(p.staleOwned, a)
			continue
		}
		p.Actions = append(p.Actions, Action{Kind: KindDeleteACL, ACL: &a,
			Reason: "godwit created this ACL and its source ACL is gone"})
	}
	return nil
}
