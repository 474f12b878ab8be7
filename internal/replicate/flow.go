// Package replicate copies records from a flow's source cluster to its
// target cluster: exactly once (transactions on the target that carry the
// data and the progress reached), faithfully (key, value, headers,
// timestamp, partition, order), and shared across godwit instances through
// a consumer group on the target that assigns slots.
package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/godwit/godwit/internal/cluster"
	"github.com/godwit/godwit/internal/config"
	"github.com/godwit/godwit/internal/flowstate"
	"github.com/godwit/godwit/internal/journal"
	"github.com/godwit/godwit/internal/kafkautil"
	"github.com/godwit/godwit/internal/metasync"
	"github.com/godwit/godwit/internal/naming"
)

// Options are a flow runner's dependencies.
type Options struct {
	Flow    *config.Flow
	Source  *cluster.Cluster
	Target  *cluster.Cluster
	Logger  *slog.Logger
	Metrics *Metrics
	// Now is the clock (tests may fix it).
	Now func() time.Time
	// InstanceID, if set, is the static group membership id
	// (group.instance.id) of this process in the flow's group.
	InstanceID string
}

// Flow runs one flow in this process.
type Flow struct {
	opts   Options
	cfg    *config.Flow
	policy naming.Policy
	log    *slog.Logger
	m      *Metrics
	now    func() time.Time

	srcCl, dstCl   *kgo.Client
	srcAdm, dstAdm *kadm.Client
	progressTopic  string
	offsetMapTopic string
	// sync creates and follows target topics, configs and ACLs (built in
	// setup, once the clients exist).
	sync *metasync.Syncer

	mu       sync.Mutex
	parts    map[flowstate.TP]partInfo // selected source partitions ready on the target
	partsVer atomic.Int64
	slots    map[int]*slotWorker
	stopped  map[flowstate.TP]stopInfo
	// failedOver are source topics `godwit failover` handed to the
	// target's producers (from the journal): never written again.
	failedOver map[string]bool
	// rewrite, when set, rewrites each record's key and value before it
	// is produced (schema ID translation); nil copies them unchanged.
	rewrite Rewriter
	ready   atomic.Bool // first discovery done and joined
	lastErr atomic.Value
	runCtx  context.Context
}

type partInfo struct {
	target string
}

// NewFlow prepares a flow; Run starts it.
func NewFlow(o Options) *Flow {
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger.With("component", "replicate", "flow", o.Flow.Name)
	return &Flow{
		opts:           o,
		cfg:            o.Flow,
		policy:         naming.For(o.Flow),
		log:            log,
		m:              o.Metrics,
		now:            o.Now,
		progressTopic:  naming.ProgressTopic(o.Flow),
		offsetMapTopic: naming.OffsetMapTopic(o.Flow),
		parts:          map[flowstate.TP]partInfo{},
		slots:          map[int]*slotWorker{},
		stopped:        map[flowstate.TP]stopInfo{},
	}
}

// Rewriter rewrites a record's key and value on their way to the target
// (internal/schemas, translate-ids). An error with a Permanent() true
// method stops the record's partition; any other ends the session, which
// retries from what the target committed.
type Rewriter = func(ctx context.Context, topic string, key, value []byte) ([]byte, []byte, error)

// SetRewriter installs a rewriter; call it before Run.
func (f *Flow) SetRewriter(rw Rewriter) { f.rewrite = rw }

// Name is the flow's name.
func (f *Flow) Name() string { return f.cfg.Name }

// Ready reports whether the flow runs every partition it owns: it has
// discovered its topics, joined its group, and no owned partition is
// stopped. The reason is empty when ready.
func (f *Flow) Ready() (bool, string) {
	if !f.ready.Load() {
		if e, ok := f.lastErr.Load().(error); ok && e != nil {
			return false, e.Error()
		}
		return false, "starting"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, st := range f.stopped {
		return false, st.err.Error()
	}
	return true, ""
}

func (f *Flow) setErr(err error) { f.lastErr.Store(err) }

// Run replicates until ctx is cancelled. It retries connection problems
// with backoff forever (reporting them through logs, metrics and Ready),
// and returns only when ctx ends or on a configuration problem no retry
// can fix.
func (f *Flow) Run(ctx context.Context) error {
	f.runCtx = ctx
	var err error
	// Admin metadata may be at most half a second old, so a topic
	// created on the source is seen by the next refresh.
	fresh := kgo.MetadataMinAge(500 * time.Millisecond)
	if f.srcCl, err = f.opts.Source.Client(f.cfg.Name+"-source-admin", f.log, fresh); err != nil {
		return err
	}
	defer f.srcCl.Close()
	if f.dstCl, err = f.opts.Target.Client(f.cfg.Name+"-target-admin", f.log, fresh); err != nil {
		return err
	}
	defer f.dstCl.Close()
	f.srcAdm, f.dstAdm = kadm.NewClient(f.srcCl), kadm.NewClient(f.dstCl)

	// Setup needs both clusters; retry until they answer.
	for backoff := time.Second; ; backoff = min(backoff*2, 30*time.Second) {
		err = f.setup(ctx)
		if err == nil {
			break
		}
		var fatal fatalError
		if errors.As(err, &fatal) {
			return err
		}
		f.setErr(err)
		f.log.Error("flow setup failed; retrying", "err", err, "retry_in", backoff)
		f.m.Errors.WithLabelValues(f.cfg.Name, "setup").Inc()
		if kafkautil.Sleep(ctx, backoff) != nil {
			return nil
		}
	}

	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); f.discoverLoop(ctx) }()
	go func() { defer wg.Done(); f.observeLoop(ctx) }()
	go func() { defer wg.Done(); f.heartbeatLoop(ctx) }()
	err = f.memberLoop(ctx)
	wg.Wait()
	return err
}

// fatalError is a problem retrying cannot fix (configuration).
type fatalError struct{ error }

func (e fatalError) Unwrap() error { return e.error }

// setup makes sure the flow's internal topics exist and does the first
// discovery pass, so slot workers know their partitions when they start.
func (f *Flow) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := f.ensureProgressTopic(ctx); err != nil {
		return err
	}
	if f.sync == nil {
		var sm *metasync.Metrics
		if f.m != nil {
			sm = f.m.Sync
		}
		f.sync = metasync.New(f.cfg, f.srcCl, f.dstCl, f.log, sm)
	}
	if f.cfg.HeartbeatsEnabled() {
		if err := f.ensureHeartbeatTopic(ctx); err != nil {
			f.log.Warn("heartbeat topic unavailable on source; heartbeats disabled", "topic", naming.HeartbeatTopic, "err", err)
		}
	}
	return f.discover(ctx)
}

func (f *Flow) ensureProgressTopic(ctx context.Context) error {
	if err := f.ensureSlotTopic(ctx, f.progressTopic, "progress"); err != nil {
		return err
	}
	if err := f.ensureSlotTopic(ctx, naming.ObservedTopic(f.cfg), "observed"); err != nil {
		return err
	}
	return f.ensureSlotTopic(ctx, naming.OffsetMapTopic(f.cfg), "offset map")
}

// ensureSlotTopic creates one of the flow's per-slot internal topics on
// the target (one partition per slot, compacted).
func (f *Flow) ensureSlotTopic(ctx context.Context, t, what string) error {
	details, err := f.dstAdm.ListTopics(ctx, t)
	if err != nil {
		return cluster.Explain(f.opts.Target, fmt.Errorf("flow %s: describe %s topic %q: %w", f.cfg.Name, what, t, err))
	}
	if d, ok := details[t]; ok && d.Err == nil {
		if len(d.Partitions) != f.cfg.Slots {
			return fatalError{fmt.Errorf("flow %s: %s topic %q on %s has %d partitions but slots is %d; slots cannot change once a flow has run: set slots: %d (or delete the flow's internal topics to start it over)",
				f.cfg.Name, what, t, f.opts.Target, len(d.Partitions), f.cfg.Slots, len(d.Partitions))}
		}
		return nil
	}
	resp, err := f.dstAdm.CreateTopic(ctx, int32(f.cfg.Slots), -1, map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"segment.ms":                kadm.StringPtr("3600000"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.1"),
	}, t)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return cluster.Explain(f.opts.Target, fmt.Errorf("flow %s: create %s topic %q: %w", f.cfg.Name, what, t, err))
	}
	f.log.Info("created internal topic", "topic", t, "partitions", f.cfg.Slots)
	return nil
}

func (f *Flow) ensureHeartbeatTopic(ctx context.Context) error {
	details, err := f.srcAdm.ListTopics(ctx, naming.HeartbeatTopic)
	if err != nil {
		return err
	}
	if d, ok := details[naming.HeartbeatTopic]; ok && d.Err == nil {
		return nil
	}
	// Compacted on the flow-name key (as MirrorMaker 2 does with its
	// heartbeats topic), with segments rolled hourly so compaction can
	// run: the topic keeps one recent heartbeat per flow instead of a
	// week of them, which a new flow starting from earliest would copy.
	resp, err := f.srcAdm.CreateTopic(ctx, 1, -1, map[string]*string{
		"cleanup.policy": kadm.StringPtr("compact"),
		"segment.ms":     kadm.StringPtr("3600000"),
	}, naming.HeartbeatTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return err
	}
	return nil
}

func (f *Flow) discoverLoop(ctx context.Context) {
	t := time.NewTicker(f.cfg.RefreshInterval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := f.discover(dctx); err != nil && ctx.Err() == nil {
			f.log.Warn("topic discovery failed; will retry", "err", err)
			f.m.Errors.WithLabelValues(f.cfg.Name, "metadata").Inc()
		}
		cancel()
	}
}

// discover lists source topics, selects the flow's, makes sure each exists
// on the target with at least as many partitions, and publishes the set of
// partitions ready to replicate.
func (f *Flow) discover(ctx context.Context) error {
	src, err := f.srcAdm.ListTopics(ctx)
	if err != nil {
		return cluster.Explain(f.opts.Source, fmt.Errorf("flow %s: list topics: %w", f.cfg.Name, err))
	}
	if err := f.refreshFailedOver(ctx); err != nil {
		f.log.Warn("cannot read the failover journal; keeping the previous set of failed-over topics", "err", err)
	}
	want := map[string]int32{} // source topic -> partitions
	selected := kadm.TopicDetails{}
	for _, d := range src.Sorted() {
		if d.Err != nil {
			continue
		}
		if f.policy.Select(d.Topic) != naming.Selected || f.isFailedOver(d.Topic) {
			continue
		}
		want[d.Topic] = int32(len(d.Partitions))
		selected[d.Topic] = d
	}
	// Metadata sync creates missing target topics, adds partitions,
	// follows configs and ACLs, and says how many partitions of each
	// topic exist on the target; only those are published, so a new
	// partition is copied only once its target partition exists. Its
	// errors and warnings name the topic and the reason (logged there).
	_, res, err := f.sync.Pass(ctx, selected)
	if err != nil {
		return err
	}
	ready := map[flowstate.TP]partInfo{}
	for _, topic := range slices.Sorted(maps.Keys(want)) {
		n := min(want[topic], res.Ready[topic])
		if n < want[topic] {
			kind := "metadata"
			if !f.cfg.CreatesTopics() {
				kind = "target_topic_missing"
			}
			f.m.Errors.WithLabelValues(f.cfg.Name, kind).Inc()
		}
		target := f.policy.TargetTopic(topic)
		for p := int32(0); p < n; p++ {
			ready[flowstate.TP{Topic: topic, Partition: p}] = partInfo{target: target}
		}
	}

	f.mu.Lock()
	gone := map[string]bool{}
	for tp := range f.parts {
		if _, ok := want[tp.Topic]; !ok && !f.failedOver[tp.Topic] {
			gone[tp.Topic] = true
		}
	}
	changed := len(ready) != len(f.parts)
	for tp := range ready {
		if _, ok := f.parts[tp]; !ok {
			changed = true
		}
	}
	f.parts = ready
	f.mu.Unlock()
	for t := range gone {
		f.log.Warn("source topic disappeared; stopped replicating it, target data kept", "topic", t, "target_topic", f.policy.TargetTopic(t))
		f.m.TopicsGone.WithLabelValues(f.cfg.Name).Inc()
	}
	f.m.TopicsReplicated.WithLabelValues(f.cfg.Name).Set(float64(len(want)))
	if changed {
		f.partsVer.Add(1)
	}
	return nil
}

// partitionsForSlot returns the ready partitions hashed to slot.
func (f *Flow) partitionsForSlot(slot int) map[flowstate.TP]partInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[flowstate.TP]partInfo{}
	for tp, info := range f.parts {
		if flowstate.SlotOf(tp, f.cfg.Slots) == slot && !f.failedOver[tp.Topic] {
			out[tp] = info
		}
	}
	return out
}

// refreshFailedOver reads the flow's failover state from the target's
// journal; topics newly failed over are dropped from the published set
// (slot workers let go of them at their next batch boundary).
func (f *Flow) refreshFailedOver(ctx context.Context) error {
	st, err := journal.ReadFlowState(ctx, f.dstCl, f.cfg)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	for _, t := range st.FailedOverTopics() {
		set[t] = true
	}
	f.mu.Lock()
	var added []string
	for t := range set {
		if !f.failedOver[t] {
			added = append(added, t)
		}
	}
	changed := len(added) > 0 || len(set) != len(f.failedOver)
	f.failedOver = set
	f.mu.Unlock()
	if changed {
		sort.Strings(added)
		f.log.Info("failed-over topics are no longer replicated (producers use them on the target)", "topics", added)
		f.partsVer.Add(1)
	}
	return nil
}

func (f *Flow) isFailedOver(topic string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failedOver[topic]
}

// stopInfo records why a partition stopped and where: records from
// offset at on are not copied (at < 0: nothing more is copied).
type stopInfo struct {
	err error
	at  int64
}

// markStopped stops a partition at a source offset (-1: where it is).
// It stays stopped until the process restarts, which is what an operator
// does after fixing the cause.
func (f *Flow) markStopped(tp flowstate.TP, err error, at int64) {
	f.mu.Lock()
	if _, ok := f.stopped[tp]; !ok {
		f.stopped[tp] = stopInfo{err: err, at: at}
	}
	f.mu.Unlock()
	f.m.Stopped.WithLabelValues(f.cfg.Name, tp.Topic, strconv.Itoa(int(tp.Partition))).Set(1)
}

// markStoppedHere stops a partition where it is.
func (f *Flow) markStoppedHere(tp flowstate.TP, err error) { f.markStopped(tp, err, -1) }

// stopAt returns the offset a partition stops at, if it is stopped.
func (f *Flow) stopAt(tp flowstate.TP) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.stopped[tp]
	return st.at, ok
}

// memberLoop joins the flow's group on the target, whose members share the
// progress topic's partitions: owning partition n means owning slot n.
func (f *Flow) memberLoop(ctx context.Context) error {
	group := naming.MemberGroup(f.cfg)
	opts := []kgo.Opt{}
	if f.opts.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(f.opts.InstanceID))
	}
	cl, err := f.opts.Target.Client(f.cfg.Name+"-member", f.log, append(opts,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(f.progressTopic),
		// The progress topic may have just been created: see it at
		// once rather than after the default 5 s metadata age.
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.RebalanceTimeout(30*time.Second),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			f.startSlots(m[f.progressTopic])
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			f.stopSlots(m[f.progressTopic])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			f.stopSlots(m[f.progressTopic])
		}),
	)...)
	if err != nil {
		return err
	}
	// Membership is all we want from this client; the slot workers read
	// progress themselves, exactly.
	cl.PauseFetchTopics(f.progressTopic)
	f.ready.Store(true)
	f.log.Info("flow running", "source", f.opts.Source.String(), "target", f.opts.Target.String(),
		"group", group, "slots", f.cfg.Slots, "delivery", f.cfg.Delivery, "naming", f.cfg.Naming)
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if fs.IsClientClosed() {
			break
		}
		fs.EachError(func(t string, p int32, err error) {
			if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				f.log.Warn("group membership error", "group", group, "err", err)
				f.m.Errors.WithLabelValues(f.cfg.Name, "group").Inc()
			}
		})
	}
	// Close leaves the group; the revoke callback stops every slot first,
	// so open transactions end before another instance takes over.
	cl.Close()
	f.stopSlots(f.ownedSlots())
	return nil
}

func (f *Flow) ownedSlots() []int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]int32, 0, len(f.slots))
	for s := range f.slots {
		out = append(out, int32(s))
	}
	return out
}

func (f *Flow) startSlots(slots []int32) {
	if len(slots) == 0 {
		return
	}
	f.m.Rebalances.WithLabelValues(f.cfg.Name).Inc()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range slots {
		if _, ok := f.slots[int(s)]; ok {
			continue
		}
		w := newSlotWorker(f, int(s))
		f.slots[int(s)] = w
		w.start()
	}
	f.m.AssignedSlots.WithLabelValues(f.cfg.Name).Set(float64(len(f.slots)))
	f.log.Info("slots assigned", "slots", slots, "owned", len(f.slots))
}

// stopSlots stops the given slots and waits for their workers to end
// their open transaction.
func (f *Flow) stopSlots(slots []int32) {
	f.mu.Lock()
	var ws []*slotWorker
	for _, s := range slots {
		if w, ok := f.slots[int(s)]; ok {
			ws = append(ws, w)
			delete(f.slots, int(s))
		}
	}
	n := len(f.slots)
	f.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	f.m.Rebalances.WithLabelValues(f.cfg.Name).Inc()
	for _, w := range ws {
		w.stop()
	}
	for _, w := range ws {
		w.wait()
	}
	f.m.AssignedSlots.WithLabelValues(f.cfg.Name).Set(float64(n))
	f.log.Info("slots released", "count", len(ws), "owned", n)
}

// heartbeatSlot is the slot whose owner writes heartbeats, so a flow
// writes one heartbeat stream however many instances run it.
func (f *Flow) heartbeatSlot() int {
	return flowstate.SlotOf(flowstate.TP{Topic: naming.HeartbeatTopic, Partition: 0}, f.cfg.Slots)
}

// OwnsSlot reports whether this process currently owns slot s of the
// flow (used to run once-per-flow work, such as checkpoints, on one
// instance).
func (f *Flow) OwnsSlot(s int) bool { return f.ownsSlot(s) }

// Config is the flow's configuration.
func (f *Flow) Config() *config.Flow { return f.cfg }

// ownedSlotCount is how many of the flow's slots this process runs: they
// share the flow's memory_budget.
func (f *Flow) ownedSlotCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.slots)
}

func (f *Flow) ownsSlot(s int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.slots[s]
	return ok
}

func (f *Flow) heartbeatLoop(ctx context.Context) {
	if !f.cfg.HeartbeatsEnabled() {
		return
	}
	cl, err := f.opts.Source.Client(f.cfg.Name+"-heartbeat", f.log,
		kgo.DefaultProduceTopic(naming.HeartbeatTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(10*time.Second))
	if err != nil {
		f.log.Warn("heartbeats disabled", "err", err)
		return
	}
	defer cl.Close()
	t := time.NewTicker(f.cfg.HeartbeatInterval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !f.ownsSlot(f.heartbeatSlot()) {
			continue
		}
		now := f.now()
		// MM2's heartbeat format, keyed by source and target: one per flow.
		key, v := naming.HeartbeatRecord(f.cfg.Source, f.cfg.Target, now)
		cl.Produce(ctx, &kgo.Record{Key: key, Value: v, Timestamp: now, Partition: 0}, func(_ *kgo.Record, err error) {
			if err != nil {
				if ctx.Err() == nil {
					f.log.Debug("heartbeat failed", "err", err)
					f.m.Errors.WithLabelValues(f.cfg.Name, "heartbeat").Inc()
				}
				return
			}
			f.m.Heartbeats.WithLabelValues(f.cfg.Name).Inc()
		})
	}
}
