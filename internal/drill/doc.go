// Package drill runs a disaster-recovery drill: a sequence-numbered workload
// on drill topics (steady and peak phases), a fault (source down, replicator
// crash, network partition, or none for a planned failover), a failover with the consumer group
// moved to the target, and a report built only from what an independent
// checker counted by reading sequence numbers on both sides.
// Its scenario and report formats are in internal/drillreport.
package drill
