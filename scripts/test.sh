#!/usr/bin/env bash
# The project's test command (README, Makefile and CI call it):
#   go vet + staticcheck, then `go test -race` against two real Kafka clusters
#   started by scripts/kafka.sh (stopped again on exit).
#
# Usage:
#   scripts/test.sh                          # everything: ./...
#   scripts/test.sh -run TestFoo ./internal/foo
#   GODWIT_TEST_ARGS='-run TestFoo -v' scripts/test.sh
# Arguments (or GODWIT_TEST_ARGS) are appended to
#   go test -race -count=1 -timeout 30m
# and ./... is added when they name no package.
#
# Knobs: GODWIT_SKIP_LINT=1 (no vet/staticcheck), GODWIT_SKIP_KAFKA=1 (no real
# clusters; integration tests skip), GODWIT_KEEP_KAFKA=1 (leave clusters up),
# GODWIT_SKIP_REGISTRY=1 (no Schema Registries: schema tests skip).
# Clusters and registries that were already running before this script
# started are reused and left running.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$(pwd)"

STATICCHECK_VERSION=v0.8.2
T_START="$EPOCHREALTIME"
TIMINGS=()

say() { printf '==> %s\n' "$*"; }
since() { awk -v s="$1" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", e - s }'; }
phase_done() { # phase_done NAME START
	local d
	d="$(since "$2")"
	TIMINGS+=("$1=$d")
	say "$1 took $d"
}

export PATH="$(go env GOPATH)/bin:$PATH"

# ---- test arguments
args=()
if (($# > 0)); then
	args=("$@")
elif [[ -n "${GODWIT_TEST_ARGS:-}" ]]; then
	read -r -a args <<<"$GODWIT_TEST_ARGS"
fi
has_pkg=0
for a in "${args[@]}"; do
	case "$a" in
	./* | ../* | . | github.com/* | std | all) has_pkg=1 ;;
	esac
done
((has_pkg)) || args+=(./...)

# ---- always: stop what we started, print timings
cleanup() {
	local rc=$?
	if [[ "${STARTED_KAFKA:-0}" == 1 ]]; then
		if [[ "${GODWIT_KEEP_KAFKA:-0}" == 1 ]]; then
			say "GODWIT_KEEP_KAFKA=1: leaving clusters running (scripts/kafka.sh down to stop)"
		else
			local t="$EPOCHREALTIME"
			"$REPO/scripts/kafka.sh" down || true
			say "kafka down took $(since "$t")"
		fi
	fi
	if [[ "${STARTED_REGISTRY:-0}" == 1 && "${GODWIT_KEEP_KAFKA:-0}" != 1 ]]; then
		"$REPO/scripts/registry.sh" down || true
	fi
	say "total $(since "$T_START") (${TIMINGS[*]:-}) exit $rc"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# promtool and prometheus (Debian's prometheus package) for deploy/'s rule
# unit tests and real-Prometheus scrape test; without them those tests skip.
# The package's systemd service is irrelevant here (nothing starts it).
install_prometheus() {
	command -v promtool >/dev/null && command -v prometheus >/dev/null && return 0
	say "installing prometheus (promtool) from apt"
	{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; } >/dev/null ||
		say "could not install prometheus: deploy/ tests that need it will skip"
}

# chromium (Debian's chromium package) renders the drill/demo HTML report
# headless for a screenshot check; without it that test skips.
install_chromium() {
	command -v chromium >/dev/null && return 0
	say "installing chromium from apt"
	{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; } >/dev/null ||
		say "could not install chromium: the HTML report screenshot test will skip"
}

# ---- lint
if [[ "${GODWIT_SKIP_LINT:-0}" != 1 ]]; then
	t="$EPOCHREALTIME"
	if ! staticcheck -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
		say "installing staticcheck $STATICCHECK_VERSION"
		go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
	fi
	phase_done tools "$t"

	t="$EPOCHREALTIME"
	say "go vet ./..."
	go vet ./...
	phase_done vet "$t"

	t="$EPOCHREALTIME"
	say "staticcheck ./..."
	staticcheck ./...
	phase_done staticcheck "$t"
fi

# ---- real Kafka

if [[ "${GODWIT_SKIP_KAFKA:-0}" != 1 ]]; then
	t="$EPOCHREALTIME"
	if "$REPO/scripts/kafka.sh" status >/dev/null 2>&1; then
		say "Kafka clusters already running: reusing them and leaving them up"
	else
		STARTED_KAFKA=1
		say "starting Kafka clusters"
		"$REPO/scripts/kafka.sh" up
	fi
	phase_done kafka-up "$t"
	# also exports the secure listeners (GODWIT_TEST_PRIMARY_SASL_SSL,
	# GODWIT_TEST_*_MTLS, GODWIT_TEST_CA, GODWIT_TEST_CLIENT_CERT/KEY,
	# GODWIT_TEST_SCRAM_USER/PASSWORD_FILE) when the clusters have them
	eval "$("$REPO/scripts/kafka.sh" env)"
	say "GODWIT_TEST_PRIMARY=$GODWIT_TEST_PRIMARY GODWIT_TEST_SECONDARY=$GODWIT_TEST_SECONDARY"
	if [[ -n "${GODWIT_TEST_PRIMARY_SASL_SSL:-}" ]]; then
		say "secure listeners: SASL_SSL $GODWIT_TEST_PRIMARY_SASL_SSL $GODWIT_TEST_SECONDARY_SASL_SSL, mTLS $GODWIT_TEST_PRIMARY_MTLS $GODWIT_TEST_SECONDARY_MTLS, CA $GODWIT_TEST_CA"
	else
		say "no secure listeners (clusters started with GODWIT_KAFKA_SECURE=0 or before they existed): TLS/SASL tests skip"
	fi
fi

# ---- real Schema Registries (Apicurio Registry, one per cluster; issue #18)
if [[ "${GODWIT_SKIP_KAFKA:-0}" != 1 && "${GODWIT_SKIP_REGISTRY:-0}" != 1 ]]; then
	t="$EPOCHREALTIME"
	if "$REPO/scripts/registry.sh" status >/dev/null 2>&1; then
		say "Schema Registries already running: reusing them and leaving them up"
	else
		STARTED_REGISTRY=1
		say "starting Schema Registries"
		"$REPO/scripts/registry.sh" up
	fi
	phase_done registry-up "$t"
	eval "$("$REPO/scripts/registry.sh" env)"
	say "GODWIT_TEST_PRIMARY_REGISTRY=$GODWIT_TEST_PRIMARY_REGISTRY GODWIT_TEST_SECONDARY_REGISTRY=$GODWIT_TEST_SECONDARY_REGISTRY"
fi

# ---- tests
install_prometheus
install_chromium
t="$EPOCHREALTIME"
say "go test -race -count=1 -timeout 30m ${args[*]}"
rc=0
go test -race -count=1 -timeout 30m "${args[@]}" || rc=$?
phase_done go-test "$t"
if ((rc != 0)); then
	say "go test failed (exit $rc); broker logs: scripts/kafka.sh logs"
fi

# ---- benchmark smoke (issue #9): every contender (raw pipe, godwit both
# modes, MirrorMaker 2 default and tuned) replicates the smoke backlog on the
# real pair; -check fails unless each put exactly every record on the
# target. Numbers are printed, never asserted. GODWIT_SKIP_BENCH=1 skips it.
if ((rc == 0)) && [[ "${GODWIT_SKIP_KAFKA:-0}" != 1 && "${GODWIT_SKIP_BENCH:-0}" != 1 ]]; then
	t="$EPOCHREALTIME"
	say "go run ./bench -preset smoke -check (all contenders, loopback)"
	go run ./bench -preset smoke -latency=false -replay=false -check -json none \
		-primary "${GODWIT_TEST_PRIMARY%%,*}" -secondary "${GODWIT_TEST_SECONDARY%%,*}" || rc=$?
	phase_done bench-smoke "$t"
	if ((rc != 0)); then
		say "benchmark smoke failed (exit $rc): a contender did not replicate every record"
	fi
fi
exit "$rc"
