// Package deploy holds godwit's operational artifacts: the Grafana
// dashboard (grafana/), Prometheus alert rules and their unit tests
// (prometheus/), Kubernetes manifests (kubernetes/) and the container build
// (docker/). It has no code; deploy_test.go checks the artifacts against a
// running replicator, promtool, a real Prometheus server and the godwit
// binary's flags and config. See docs/operations.md.
package deploy
