package drillreport

import "time"

// NetworkPartitionReport is what a network-partition drill adds to the
// report: the cut, godwit's last observation of the source before it, and
// why more acknowledged records can be lost than godwit reported at risk.
type NetworkPartitionReport struct {
	// Method is "proxy" (the drill's own proxy cut the standby side),
	// or "proxy+command" (fault.command also cut the replicator).
	Method string `json:"method"`
	// CutAt is when the cut was in place (fault.command, if any, had
	// returned).
	CutAt float64 `json:"cut_at_s"`
	// WritesStoppedAt is when the primary's producers stopped: the
	// failover and its cutover hook had moved the clients.
	WritesStoppedAt float64    `json:"writes_stopped_at_s"`
	HealedAt        float64    `json:"healed_at_s"`
	Proxy           ProxyStats `json:"proxy"`
	// LastObservedAt is the newest of godwit's stored observations of the
	// source end offsets (the failover's at-risk figure comes from them),
	// ObservedBeforeCut how long before the cut it was stamped. The
	// replicator stamps an observation when it processes a fetch, which
	// may have arrived before the cut: a stamp can follow the cut (< 0)
	// though what it saw cannot.
	LastObservedAt    *time.Time `json:"last_observed_at"`
	ObservedBeforeCut float64    `json:"observed_before_cut_seconds"`
	// AckedAfterObservation counts acknowledged records at or beyond the
	// observed end offset of their partition: no at-risk figure can
	// include them. Lost = AtRisk + AckedAfterObservation + Unexplained.
	AckedAfterObservation int64 `json:"acked_after_observation"`
	Unexplained           int64 `json:"unexplained"`
	// RecoverableOnSource counts lost records still on the source after
	// the heal (read through the healed path): what godwit failback can
	// recover.
	RecoverableOnSource *int64                 `json:"recoverable_on_source"`
	Partitions          []PartitionObservation `json:"partitions"`
	Explanation         string                 `json:"explanation"`
}

// PartitionObservation is one source partition's last observation.
type PartitionObservation struct {
	Topic                 string    `json:"topic"`
	Partition             int32     `json:"partition"`
	ObservedEndOffset     int64     `json:"observed_end_offset"`
	ObservedAt            time.Time `json:"observed_at"`
	AckedAfterObservation int64     `json:"acked_after_observation"`
}

// ProxyStats are the drill's netfault proxy counters (netfault.Stats; the
// same fields, so the report format does not depend on the proxy).
type ProxyStats struct {
	// Forwarded is the number of connections forwarded to an upstream.
	Forwarded int64 `json:"forwarded"`
	// Reset is the number of forwarded connections a partition reset.
	Reset int64 `json:"reset"`
	// Held is the number of dials that met a partition (blackholed: they
	// failed at their deadline, or connected after the heal).
	Held int64 `json:"held"`
}
