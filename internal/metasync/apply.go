package metasync

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Pass plans and applies one sync of sourceTopics.
func (s *Syncer) Pass(ctx context.Context, sourceTopics kadm.TopicDetails) (*Plan, *Result, error) {
	p, err := s.Plan(ctx, sourceTopics)
	if err != nil {
		if s.m != nil {
			s.m.Passes.WithLabelValues(s.flowLabel(), "error").Inc()
			s.m.Errors.WithLabelValues(s.flowLabel(), IssueDescribe).Inc()
		}
		return nil, nil, err
	}
	r, err := s.Apply(ctx, p)
	return p, r, err
}

// Apply carries out a plan. Problems with single topics or ACLs are in the
// result's Errors and Warnings and never stop the other changes; Ready
// says which partitions may be replicated afterwards.
func (s *Syncer) Apply(ctx context.Context, p *Plan) (*Result, error) {
	r := &Result{
		Applied:  []Action{},
		Warnings: append([]Issue{}, p.Warnings...),
		Errors:   append([]Issue{}, p.Errors...),
		Ready:    map[string]int32{},
	}
	for _, i := range p.Errors {
		s.countErr(i.Kind)
		s.logOnce(true, i)
	}
	for _, i := range p.Warnings {
		s.countWarn(i.Kind)
		s.logOnce(false, i)
	}
	for _, ts := range p.Topics {
		if ts.Blocked == "" {
			r.Ready[ts.Topic] = min(ts.SourcePartitions, ts.TargetPartitions)
		}
	}
	alters := map[string][]Action{}
	var aclActions []Action
	for _, a := range p.Actions {
		switch a.Kind {
		case KindCreateTopic:
			if s.createTopic(ctx, a, r) {
				s.done(r, a)
				r.Ready[a.Topic] = a.Partitions
			}
		case KindAddPartitions:
			resp, err := s.dstAdm.UpdatePartitions(ctx, int(a.Partitions), a.TargetTopic)
			if err == nil {
				err = resp.Error()
				if c, ok := resp[a.TargetTopic]; ok && c.Err != nil && c.ErrMessage != "" {
					err = fmt.Errorf("%w: %s", c.Err, c.ErrMessage)
				}
			}
			if err != nil {
				s.fail(r, IssueAddPartitions, a.Topic, "", fmt.Sprintf("add partitions to target topic %q on cluster %s (%d -> %d): %v; partitions %d..%d are not replicated until this succeeds",
					a.TargetTopic, s.flow.Target, a.From, a.Partitions, err, a.From, a.Partitions-1))
				continue
			}
			s.done(r, a)
			s.log.Info("added target partitions", "topic", a.Topic, "target_topic", a.TargetTopic, "from", a.From, "to", a.Partitions)
			if _, ok := r.Ready[a.Topic]; ok {
				r.Ready[a.Topic] = a.Partitions
			}
		case KindAlterConfig:
			alters[a.Topic] = append(alters[a.Topic], a)
		default:
			aclActions = append(aclActions, a)
		}
	}
	topics := make([]string, 0, len(alters))
	for t := range alters {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		s.alterConfigs(ctx, t, alters[t], p, r)
	}
	s.applyACLs(ctx, p, aclActions, r)
	sortIssues(r.Warnings)
	sortIssues(r.Errors)
	if s.m != nil {
		res := "ok"
		if len(r.Errors) > 0 {
			res = "error"
		}
		s.m.Passes.WithLabelValues(s.flowLabel(), res).Inc()
	}
	return r, nil
}

// logOnce logs a planned issue the first time it is seen, so a standing
// problem does not flood the log every refresh (metrics count every pass).
func (s *Syncer) logOnce(isErr bool, i Issue) {
	s.warnMu.Lock()
	seen := s.warned[i.Message]
	s.warned[i.Message] = true
	s.warnMu.Unlock()
	if seen {
		return
	}
	if isErr {
		s.log.Error("metadata sync: "+i.Message, "topic", i.Topic, "key", i.Key, "kind", i.Kind)
	} else {
		s.log.Warn("metadata sync: "+i.Message, "topic", i.Topic, "key", i.Key, "kind", i.Kind)
	}
}

func (s *Syncer) done(r *Result, a Action) {
	r.Applied = append(r.Applied, a)
	s.countAction(a)
}

func (s *Syncer) fail(r *Result, kind, topic, key, msg string) {
	r.Errors = append(r.Errors, Issue{Kind: kind, Topic: topic, Key: key, Message: msg})
	s.countErr(kind)
	s.log.Error("metadata sync: "+msg, "topic", topic, "key", key)
}

func (s *Syncer) warn(r *Result, kind, topic, key, msg string) {
	r.Warnings = append(r.Warnings, Issue{Kind: kind, Topic: topic, Key: key, Message: msg})
	s.countWarn(kind)
	s.log.Warn("metadata sync: "+msg, "topic", topic, "key", key)
}

func errWithMessage(err error, msg string) error {
	if err != nil && msg != "" {
		return fmt.Errorf("%w: %s", err, msg)
	}
	return err
}

// createTopic creates a's target topic. A config the target refuses is
// left out with a warning, unless the copy would not be faithful without
// it (cleanup.policy, max.message.bytes, message.timestamp.type).
func (s *Syncer) createTopic(ctx context.Context, a Action, r *Result) bool {
	cfgs := map[string]*string{}
	for k, v := range a.Configs {
		cfgs[k] = strp(v)
	}
	try := func(cfgs map[string]*string) error {
		resp, err := s.dstAdm.CreateTopic(ctx, a.Partitions, a.ReplicationFactor, cfgs, a.TargetTopic)
		return errWithMessage(err, resp.ErrMessage)
	}
	err := try(cfgs)
	if err != nil && configRefusal(err) && len(cfgs) > 1 {
		refused := s.refusedCreateConfigs(ctx, a, cfgs)
		if len(refused) > 0 {
			for _, k := range slices.Sorted(maps.Keys(refused)) {
				if isSafetyKey(k) {
					s.fail(r, IssueCreateTopic, a.Topic, k, fmt.Sprintf("create target topic %q on cluster %s: the target refuses %s=%s (%v); not creating it, as without it the copy would not be faithful",
						a.TargetTopic, s.flow.Target, k, a.Configs[k], refused[k]))
					return false
				}
			}
			for _, k := range slices.Sorted(maps.Keys(refused)) {
				s.warn(r, IssueConfigRefused, a.Topic, k, fmt.Sprintf("target cluster %s refuses config %s=%s for topic %q (%v); created without it, the target's default applies",
					s.flow.Target, k, a.Configs[k], a.TargetTopic, refused[k]))
				delete(cfgs, k)
			}
			err = try(cfgs)
		}
	}
	switch {
	case err == nil:
		s.log.Info("created target topic", "topic", a.Topic, "target_topic", a.TargetTopic, "partitions", a.Partitions, "configs", len(cfgs))
		return true
	case errors.Is(err, kerr.TopicAlreadyExists):
		// Created concurrently (another instance); the next pass checks
		// its partitions and configs.
		s.log.Info("target topic created concurrently; rechecking next pass", "topic", a.Topic, "target_topic", a.TargetTopic)
		return false
	}
	rf := "the target's default"
	if a.ReplicationFactor > 0 {
		rf = fmt.Sprint(a.ReplicationFactor)
	}
	hint := ""
	switch {
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		hint = "; grant godwit's principal CREATE on the topic (or cluster) on the target"
	case errors.Is(err, kerr.PolicyViolation):
		hint = "; the target's create.topic.policy refuses it"
	case errors.Is(err, kerr.InvalidReplicationFactor):
		hint = "; lower replication_factor or add brokers to the target"
	}
	s.fail(r, IssueCreateTopic, a.Topic, "", fmt.Sprintf("create target topic %q on cluster %s (%d partitions, replication factor %s): %v%s",
		a.TargetTopic, s.flow.Target, a.Partitions, rf, err, hint))
	return false
}

func configRefusal(err error) bool {
	return errors.Is(err, kerr.InvalidConfig) || errors.Is(err, kerr.PolicyViolation) || errors.Is(err, kerr.InvalidRequest)
}

// refusedCreateConfigs finds the configs the target refuses, one at a time
// with validate-only creates.
func (s *Syncer) refusedCreateConfigs(ctx context.Context, a Action, cfgs map[string]*string) map[string]error {
	out := map[string]error{}
	for k, v := range cfgs {
		resp, err := s.dstAdm.ValidateCreateTopics(ctx, a.Partitions, a.ReplicationFactor, map[string]*string{k: v}, a.TargetTopic)
		if err != nil {
			return nil
		}
		if c, ok := resp[a.TargetTopic]; ok && c.Err != nil && configRefusal(c.Err) {
			out[k] = errWithMessage(c.Err, c.ErrMessage)
		}
	}
	return out
}

// alterConfigs applies a topic's config changes in one incremental alter;
// if the target refuses it, each key is tried alone so the refused ones
// are named. A refused key stops the topic only if the target's remaining
// value makes the copy unfaithful.
func (s *Syncer) alterConfigs(ctx context.Context, topic string, acts []Action, p *Plan, r *Result) {
	target := acts[0].TargetTopic
	op := func(a Action) kadm.AlterConfig {
		if a.Value == nil {
			return kadm.AlterConfig{Op: kadm.DeleteConfig, Name: a.Key}
		}
		return kadm.AlterConfig{Op: kadm.SetConfig, Name: a.Key, Value: a.Value}
	}
	alter := func(ops []kadm.AlterConfig) error {
		resp, err := s.dstAdm.AlterTopicConfigs(ctx, ops, target)
		if err != nil {
			return err
		}
		for _, x := range resp {
			if x.Err != nil {
				return errWithMessage(x.Err, x.ErrMessage)
			}
		}
		return nil
	}
	var ops []kadm.AlterConfig
	for _, a := range acts {
		ops = append(ops, op(a))
	}
	refused := map[string]error{}
	if err := alter(ops); err != nil {
		if len(acts) == 1 {
			refused[acts[0].Key] = err
		} else {
			for _, a := range acts {
				if err := alter([]kadm.AlterConfig{op(a)}); err != nil {
					refused[a.Key] = err
				} else {
					s.done(r, a)
				}
			}
		}
	} else {
		for _, a := range acts {
			s.done(r, a)
		}
		s.log.Info("synced target topic configs", "topic", topic, "target_topic", target, "changed", len(acts))
		return
	}
	if len(refused) == 0 {
		return
	}
	sf := p.unsafe[topic]
	projected := map[string]string{}
	if sf != nil {
		projected = maps.Clone(sf.projected)
	}
	for _, a := range acts {
		if _, ok := refused[a.Key]; ok && sf != nil {
			projected[a.Key] = sf.dst[a.Key]
		}
	}
	if sf != nil {
		if key, why := unsafeReason(sf.src, projected); key != "" {
			if _, ok := refused[key]; ok {
				delete(r.Ready, topic)
				s.fail(r, IssueUnsafeConfig, topic, key, fmt.Sprintf("topic %q not replicated: target cluster %s refuses %s on %q (%v) and %s",
					topic, s.flow.Target, key, target, refused[key], why))
				s.countErr("blocked")
			}
		}
	}
	for _, a := range acts {
		err, ok := refused[a.Key]
		if !ok {
			continue
		}
		what := "reset to the target default"
		if a.Value != nil {
			what = "set to " + *a.Value
		}
		s.warn(r, IssueConfigRefused, topic, a.Key, fmt.Sprintf("target cluster %s refuses %s on topic %q being %s (%v); the target keeps its value",
			s.flow.Target, a.Key, target, what, err))
	}
}

// applyACLs creates and deletes ACLs, recording ownership first so a crash
// between the two steps never leaves an ACL godwit created unrecorded.
func (s *Syncer) applyACLs(ctx context.Context, p *Plan, acts []Action, r *Result) {
	if len(acts) == 0 && len(p.staleOwned) == 0 {
		return
	}
	if err := s.ensureStateTopic(ctx); err != nil {
		s.fail(r, IssueACL, "", "", fmt.Sprintf("ACL sync skipped: %v", err))
		return
	}
	for _, a := range acts {
		acl := *a.ACL
		b, err := acl.builder()
		if err != nil {
			s.fail(r, IssueACL, "", "", fmt.Sprintf("ACL %s: %v", acl, err))
			continue
		}
		switch a.Kind {
		case KindCreateACL:
			if err := s.writeOwned(ctx, acl, a.sources); err != nil {
				s.fail(r, IssueACL, "", "", fmt.Sprintf("record ownership of ACL %s in %q on cluster %s: %v; not creating it", acl, s.stateTopic, s.flow.Target, err))
				continue
			}
			res, err := s.dstAdm.CreateACLs(ctx, b)
			if err == nil {
				for _, x := range res {
					if x.Err != nil {
						err = errWithMessage(x.Err, x.ErrMessage)
					}
				}
			}
			if err != nil {
				s.fail(r, IssueACL, "", "", fmt.Sprintf("create ACL %s on cluster %s: %v", acl, s.flow.Target, err))
				if ferr := s.forgetOwned(ctx, acl); ferr != nil {
					s.log.Warn("could not retract ACL ownership record", "acl", acl.String(), "err", ferr)
				}
				continue
			}
			s.done(r, a)
			s.log.Info("created target ACL", "acl", acl.String())
		case KindDeleteACL:
			res, err := s.dstAdm.DeleteACLs(ctx, b)
			if err == nil {
				for _, x := range res {
					if x.Err != nil {
						err = errWithMessage(x.Err, x.ErrMessage)
					}
				}
			}
			if err != nil {
				s.fail(r, IssueACL, "", "", fmt.Sprintf("delete ACL %s on cluster %s: %v", acl, s.flow.Target, err))
				continue
			}
			if err := s.forgetOwned(ctx, acl); err != nil {
				s.warn(r, IssueACL, "", "", fmt.Sprintf("deleted ACL %s but could not record it in %q: %v", acl, s.stateTopic, err))
			}
			s.done(r, a)
			s.log.Info("deleted target ACL godwit created (source ACL gone)", "acl", acl.String())
		}
	}
	for _, acl := range p.staleOwned {
		if err := s.forgetOwned(ctx, acl); err != nil {
			s.log.Debug("could not forget stale ACL ownership record", "acl", acl.String(), "err", err)
		}
	}
}
