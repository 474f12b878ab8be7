package replicate

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/flowstate"
)

// checkFailures stops partitions whose records the target refused for a
// reason retrying cannot fix, and ends the session so the batch is redone
// without them. Nothing is skipped: a stopped partition's progress stays
// before the refused record.
func (s *session) checkFailures(ctx context.Context, t *txn) error {
	t.mu.Lock()
	failures, first := t.failures, t.firstErr
	t.mu.Unlock()
	if first == nil {
		return nil
	}
	f := s.w.f
	for tp, err := range failures {
		var re *recordError
		if !errors.As(err, &re) || !partitionFatal(re.err) {
			continue
		}
		st := s.active[tp]
		target := ""
		if st != nil {
			target = st.target
		}
		if tooLarge(re.err) && target != "" {
			// The batch may have been built against a stale limit:
			// stop only if the record alone exceeds the target's
			// current limit; otherwise the next session, which
			// re-reads limits, splits the batch.
			s.mu.Lock()
			delete(s.limits, target)
			s.mu.Unlock()
			if err := s.loadLimits(ctx, []flowstate.TP{tp}); err == nil && int32(re.size+recordOverhead) <= s.batchLimit(target) {
				s.log.Warn("target refused a batch as too large; retrying with the target's current max.message.bytes", "topic", tp.Topic, "partition", tp.Partition, "target_topic", target, "limit", s.batchLimit(target))
				continue
			}
		}
		msg := fmt.Errorf("flow %s: partition %s stopped: record at source offset %d (%d bytes) refused by target topic %q on %s: %w%s",
			f.cfg.Name, tp, re.offset, re.size, target, f.opts.Target, re.err, s.remedy(ctx, target, re.err))
		if permanent(re.err) {
			msg = fmt.Errorf("flow %s: partition %s stopped: record at source offset %d (%d bytes) cannot be written to target topic %q: %w; fix the cause, then restart godwit",
				f.cfg.Name, tp, re.offset, re.size, target, re.err)
		}
		f.markStopped(tp, msg, re.offset)
		kind := "produce"
		switch {
		case errors.Is(re.err, kerr.MessageTooLarge), errors.Is(re.err, kerr.RecordListTooLarge):
			kind = "record_too_large"
		case errors.Is(re.err, kerr.TopicAuthorizationFailed):
			kind = "authorization"
		case permanent(re.err):
			kind = "schema"
		}
		f.m.Errors.WithLabelValues(f.cfg.Name, kind).Inc()
		s.log.Error("partition stopped; other partitions continue", "topic", tp.Topic, "partition", tp.Partition, "err", msg)
	}
	return kinded("produce", fmt.Errorf("produce to %s: %w", f.opts.Target, first))
}

// recordOverhead bounds the bytes a record batch adds around one record
// (batch header, record framing, godwit's provenance headers).
const recordOverhead = 256

func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// permanent reports an error that says retrying cannot fix it (a record
// the rewriter cannot make valid on the target).
func permanent(err error) bool {
	var p interface{ Permanent() bool }
	return err != nil && errors.As(err, &p) && p.Permanent()
}

// partitionFatal reports produce errors that retrying cannot fix.
func partitionFatal(err error) bool {
	if permanent(err) {
		return true
	}
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.TopicAuthorizationFailed,
		kerr.InvalidRecord, kerr.CorruptMessage, kerr.PolicyViolation, kerr.InvalidTopicException, kerr.InvalidRequiredAcks} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *session) remedy(ctx context.Context, target string, err error) string {
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		limit := "its max.message.bytes"
		rc, derr := s.w.f.dstAdm.DescribeTopicConfigs(ctx, target)
		if derr == nil {
			if r, err := rc.On(target, nil); err == nil {
				for _, c := range r.Configs {
					if c.Key == "max.message.bytes" && c.Value != nil {
						limit = "max.message.bytes=" + *c.Value
					}
				}
			}
		}
		return fmt.Sprintf(" (target limit %s); raise max.message.bytes on the target topic, then restart godwit", limit)
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return "; grant godwit's principal Write on the target topic (docs/security.md), then restart godwit"
	}
	return "; fix the cause, then restart godwit"
}

// fetchErrors handles per-partition fetch errors: authorization stops the
// topic's partitions, retention loss is counted and recorded, and the rest
// are retried by the client.
func (s *session) fetchErrors(ctx context.Context, fs kgo.Fetches) error {
	f := s.w.f
	var out error
	fs.EachError(func(topic string, partition int32, err error) {
		if out != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		tp := flowstate.TP{Topic: topic, Partition: partition}
		switch {
		case errors.Is(err, kerr.TopicAuthorizationFailed):
			for atp := range s.active {
				if atp.Topic == topic {
					f.markStoppedHere(atp, fmt.Errorf("flow %s: source topic %q on %s: not authorized to read (grant godwit's principal Read and Describe on it, then restart godwit): %w", f.cfg.Name, topic, f.opts.Source, err))
				}
			}
			f.m.Errors.WithLabelValues(f.cfg.Name, "authorization").Inc()
			s.log.Error("source topic not readable; its partitions stopped, others continue", "topic", topic, "err", err)
			s.resync = true // stop consuming the topic's partitions
		case errors.Is(err, kerr.OffsetOutOfRange):
			out = s.outOfRange(ctx, tp, err)
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			s.log.Debug("source partition unknown (deleted?)", "topic", topic, "partition", partition)
		default:
			f.m.Errors.WithLabelValues(f.cfg.Name, "fetch").Inc()
			s.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
		}
	})
	return out
}

// outOfRange handles a source offset that no longer exists. Below the log
// start, retention deleted records before godwit copied them: they are
// gone from the source and cannot be copied, so the loss is counted and
// logged as an error and replication continues from the log start. Above
// the end, the source went backwards (topic recreated, unclean election):
// the partition stops for an operator to decide.
func (s *session) outOfRange(ctx context.Context, tp flowstate.TP, ferr error) error {
	f := s.w.f
	st := s.active[tp]
	if st == nil {
		return nil
	}
	starts, err := f.srcAdm.ListStartOffsets(ctx, tp.Topic)
	if err != nil {
		return kinded("fetch", fmt.Errorf("%s: offset out of range and start offsets unavailable: %w", tp, err))
	}
	so, _ := starts.Lookup(tp.Topic, tp.Partition)
	if st.pending < so.Offset {
		lost := so.Offset - st.pending
		f.m.LostToRetention.WithLabelValues(f.cfg.Name, tp.Topic).Add(float64(lost))
		s.log.Error("source records deleted by retention before they were replicated; continuing from the log start",
			"topic", tp.Topic, "partition", tp.Partition, "from", st.pending, "to", so.Offset, "lost_records", lost,
			"hint", "replication fell further behind than the source's retention; add capacity or raise retention")
		st.pending = so.Offset
		if err := s.commit(ctx); err != nil {
			return err
		}
		return kinded("retention_loss", fmt.Errorf("%s: resuming at log start %d after %d records lost to retention", tp, so.Offset, lost))
	}
	f.markStoppedHere(tp, fmt.Errorf("flow %s: source partition %s on %s no longer has offset %d (its end is lower: topic recreated or unclean leader election?): %w; inspect both sides, then restart godwit",
		f.cfg.Name, tp, f.opts.Source, st.pending, ferr))
	s.resync = true
	return nil
}
