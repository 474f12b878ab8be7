#!/usr/bin/env bash
# Real Schema Registry harness for godwit: one Apicurio Registry 3.x per
# Kafka cluster (primary, secondary) on loopback, serving the Confluent
# Schema Registry API under /apis/ccompat/v7.
#
#   scripts/registry.sh up       fetch the distribution (cached), start both registries, wait until ready
#   scripts/registry.sh down     stop exactly the processes recorded in the pid files
#   scripts/registry.sh status   print each registry's state and pid
#   scripts/registry.sh logs [primary|secondary] [-f] [-n LINES]
#   scripts/registry.sh kill     SIGKILL the registries, wait until the process is gone and the port refuses
#   scripts/registry.sh clean    down + remove the registries' state folders
#   scripts/registry.sh fetch    only fetch the distribution into the cache
#   scripts/registry.sh env      print GODWIT_TEST_PRIMARY_REGISTRY / GODWIT_TEST_SECONDARY_REGISTRY
#   scripts/registry.sh paths    print the cached distribution folder and the java used
#
# The distribution is Apicurio's own Quarkus fast-jar build as published on
# Maven Central (io.apicurio:apicurio-registry-app:<v>:tar.gz:all), fetched
# through `mvn` into ${GODWIT_CACHE:-<repo>/.cache}; it needs Java 21+, found
# as $GODWIT_REGISTRY_JAVA_HOME, $JAVA_HOME or the newest /usr/lib/jvm/* JDK.
# Storage is in memory (H2): a restart starts an empty registry. Each
# registry's pid file and log live in ${GODWIT_REGISTRY_DIR:-<repo>/.registry}/<name>/.
#
# Environment overrides (all optional):
#   GODWIT_CACHE, GODWIT_REGISTRY_DIR, GODWIT_REGISTRY_JAVA_HOME
#   GODWIT_REGISTRY_VERSION (3.3.3)
#   GODWIT_PRIMARY_REGISTRY_PORT (18081), GODWIT_SECONDARY_REGISTRY_PORT (28081);
#   the management interface (health, metrics) listens on port+1
#   GODWIT_REGISTRY_HEAP (-Xms64m -Xmx256m), GODWIT_REGISTRY_START_TIMEOUT (seconds, 120)
#   GODWIT_REGISTRY_CLUSTERS ("primary secondary"): the registries up/down/kill/status/clean act on
#   GODWIT_REGISTRY_WATCH_PID (unset): a registry started by `up` is SIGKILLed once this process is gone
#
# Disposable registries (internal/testkit DisposableRegistry): one extra
# registry in its own state folder and port, from the same cache, e.g.
#   GODWIT_REGISTRY_DIR=/tmp/x GODWIT_REGISTRY_CLUSTERS=primary GODWIT_PRIMARY_REGISTRY_PORT=38081 \
#   scripts/registry.sh up|kill|down
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

VERSION="${GODWIT_REGISTRY_VERSION:-3.3.3}"
CACHE="${GODWIT_CACHE:-$REPO/.cache}"
HOME_DIR="$CACHE/apicurio-registry-$VERSION"
STATE="${GODWIT_REGISTRY_DIR:-$REPO/.registry}"
HOST=127.0.0.1
PRIMARY_PORT="${GODWIT_PRIMARY_REGISTRY_PORT:-18081}"
SECONDARY_PORT="${GODWIT_SECONDARY_REGISTRY_PORT:-28081}"
HEAP="${GODWIT_REGISTRY_HEAP:--Xms64m -Xmx256m}"
START_TIMEOUT="${GODWIT_REGISTRY_START_TIMEOUT:-120}"
STOP_TIMEOUT=30
WATCH_PID="${GODWIT_REGISTRY_WATCH_PID:-}"

CLUSTERS=(primary secondary)
if [[ -n "${GODWIT_REGISTRY_CLUSTERS:-}" ]]; then
	read -r -a CLUSTERS <<<"${GODWIT_REGISTRY_CLUSTERS//,/ }"
fi

log() { printf '[registry.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { printf '%s' "$EPOCHREALTIME"; }
since() { awk -v s="$1" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", e - s }'; }
require() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH ($2)"; }

port_of() { case "$1" in primary) echo "$PRIMARY_PORT" ;; secondary) echo "$SECONDARY_PORT" ;; esac; }
url_of() { echo "http://$HOST:$(port_of "$1")/apis/ccompat/v7"; }

check_clusters() {
	local name
	((${#CLUSTERS[@]})) || die "GODWIT_REGISTRY_CLUSTERS names no registry; use primary and/or secondary"
	for name in "${CLUSTERS[@]}"; do
		case "$name" in
		primary | secondary) ;;
		*) die "GODWIT_REGISTRY_CLUSTERS: unknown registry '$name'; use primary and/or secondary" ;;
		esac
	done
	if [[ -n "$WATCH_PID" && ! "$WATCH_PID" =~ ^[0-9]+$ ]]; then
		die "GODWIT_REGISTRY_WATCH_PID '$WATCH_PID' is not a process id"
	fi
}

with_lock() {
	mkdir -p "$STATE"
	exec 9>"$STATE/.lock"
	flock -w 300 9 || die "could not take $STATE/.lock within 300s (another registry.sh running?)"
}

# java_major BIN: the major version of a java binary (0 if it does not run).
java_major() {
	local v
	v="$("$1" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n1)"
	echo "${v:-0}"
}

# find_java: a java binary of version 21 or newer (Apicurio 3 is built for 21).
find_java() {
	local c best="" bestv=0 v
	for c in "${GODWIT_REGISTRY_JAVA_HOME:+$GODWIT_REGISTRY_JAVA_HOME/bin/java}" "${JAVA_HOME:+$JAVA_HOME/bin/java}"; do
		[[ -n "$c" && -x "$c" ]] || continue
		if (($(java_major "$c") >= 21)); then
			echo "$c"
			return 0
		fi
	done
	for c in /usr/lib/jvm/*/bin/java; do
		[[ -x "$c" ]] || continue
		v="$(java_major "$c")"
		if ((v >= 21 && v > bestv)); then best="$c" bestv="$v"; fi
	done
	if [[ -n "$best" ]]; then
		echo "$best"
		return 0
	fi
	if command -v java >/dev/null 2>&1 && (($(java_major java) >= 21)); then
		command -v java
		return 0
	fi
	return 1
}

fetch() {
	if [[ -f "$HOME_DIR/.complete" ]]; then
		return 0
	fi
	require mvn "install Maven"
	require tar "install tar"
	local t0 attempt out="$HOME_DIR.partial" art="io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all"
	t0="$(now)"
	mkdir -p "$CACHE"
	log "fetching $art from Maven Central into $HOME_DIR ..."
	for attempt in 1 2 3; do
		rm -rf "$out"
		mkdir -p "$out"
		if mvn -B -q dependency:copy -Dartifact="$art" -DoutputDirectory="$out" -Dmdep.stripVersion=false >"$CACHE/apicurio-mvn.log" 2>&1 &&
			tar -xzf "$out"/apicurio-registry-app-"$VERSION"-all.tar.gz -C "$out" &&
			rm -f "$out"/apicurio-registry-app-"$VERSION"-all.tar.gz &&
			[[ -f "$out/quarkus-run.jar" ]]; then
			rm -rf "$HOME_DIR"
			mv "$out" "$HOME_DIR"
			echo "$art" >"$HOME_DIR/.complete"
			log "fetched Apicurio Registry $VERSION in $(since "$t0")"
			return 0
		fi
		log "attempt $attempt failed (see $CACHE/apicurio-mvn.log):"
		tail -n 15 "$CACHE/apicurio-mvn.log" >&2 || true
		sleep $((attempt * 3))
	done
	die "could not fetch $art with mvn"
}

pidfile() { echo "$STATE/$1/registry.pid"; }

alive() {
	local st
	st="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null)" || return 1
	[[ -n "$st" && "${st%% *}" != Z ]]
}

# running_pid NAME: the pid of NAME's registry, only if the pid file names a
# live process started by this script for this state folder.
running_pid() {
	local pf pid cmd
	pf="$(pidfile "$1")"
	[[ -f "$pf" ]] || return 0
	pid="$(tr -dc '0-9' <"$pf")"
	[[ -n "$pid" ]] || return 0
	alive "$pid" || return 0
	cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
	if [[ "$cmd" == *"-Dgodwit.registry=$STATE/$1 "*quarkus-run.jar* ]]; then
		echo "$pid"
	fi
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

start_registry() {
	local name="$1" dir="$STATE/$1" port java
	port="$(port_of "$name")"
	for p in "$port" $((port + 1)); do
		port_busy "$p" && die "$name: port $HOST:$p is already in use by another process"
	done
	java="$(find_java)" || die "Apicurio Registry $VERSION needs Java 21+; none found (set GODWIT_REGISTRY_JAVA_HOME, or install a JDK 21+ under /usr/lib/jvm)"
	mkdir -p "$dir/tmp"
	rm -f "$(pidfile "$name")"
	# Serial GC and C1 only: a small, quick-starting test service.
	# shellcheck disable=SC2086
	setsid bash -c 'echo $$ >"$1"; shift; cd "$1"; shift; exec "$@"' _ "$(pidfile "$name")" "$dir" \
		"$java" $HEAP -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError \
		-Djava.io.tmpdir="$dir/tmp" "-Dgodwit.registry=$dir" \
		-Dquarkus.http.host="$HOST" -Dquarkus.http.port="$port" \
		-Dquarkus.management.host="$HOST" -Dquarkus.management.port=$((port + 1)) \
		-Dapicurio.storage.snapshot.location="$dir/tmp" -Dapicurio.import.work-dir="$dir/tmp" \
		-Dquarkus.http.access-log.enabled=false \
		-Dquarkus.log.category.\"io.apicurio\".level=WARN \
		-jar "$HOME_DIR/quarkus-run.jar" </dev/null >"$dir/registry.log" 2>&1 9>&- &
	local i
	for i in $(seq 1 50); do
		[[ -s "$(pidfile "$name")" ]] && break
		sleep 0.1
	done
	log "$name: started pid $(cat "$(pidfile "$name")" 2>/dev/null || echo '?') on $HOST:$port ($java)"
	start_watchdog "$name"
}

start_watchdog() {
	[[ -n "$WATCH_PID" ]] || return 0
	local pid
	pid="$(tr -dc '0-9' <"$(pidfile "$1")" 2>/dev/null || true)"
	[[ -n "$pid" ]] || return 0
	setsid bash -c '
		alive() { local st; st="$(sed "s/^.*) //" "/proc/$1/stat" 2>/dev/null)" || return 1; [[ -n "$st" && "${st%% *}" != Z ]]; }
		while alive "$1" && alive "$2"; do sleep 1; done
		if alive "$2" && [[ "$(tr "\0" " " <"/proc/$2/cmdline" 2>/dev/null)" == *"$3"* ]]; then kill -KILL "$2"; fi
	' _ "$WATCH_PID" "$pid" "-Dgodwit.registry=$STATE/$1 " </dev/null >/dev/null 2>&1 9>&- &
	log "$1: registry pid $pid is SIGKILLed when pid $WATCH_PID exits"
}

# ready NAME: the Confluent-compatible API answers.
ready() { curl -sf -o /dev/null --max-time 2 "$(url_of "$1")/subjects"; }

wait_ready() {
	local name="$1" t0="$2" deadline
	deadline=$((SECONDS + START_TIMEOUT))
	while ((SECONDS < deadline)); do
		if [[ -z "$(running_pid "$name")" ]]; then
			tail -n 40 "$STATE/$name/registry.log" >&2 || true
			die "$name: registry process exited during startup (log: $STATE/$name/registry.log)"
		fi
		if ready "$name"; then
			log "$name: ready at $(url_of "$name") ($(since "$t0") since start)"
			return 0
		fi
		sleep 0.25
	done
	tail -n 40 "$STATE/$name/registry.log" >&2 || true
	die "$name: not ready within ${START_TIMEOUT}s"
}

cmd_up() {
	require setsid "util-linux"
	require curl "install curl"
	require flock "util-linux"
	local t0 t1 name started=()
	t0="$(now)"
	with_lock
	fetch
	t1="$(now)"
	for name in "${CLUSTERS[@]}"; do
		if [[ -n "$(running_pid "$name")" ]]; then
			log "$name: already running (pid $(running_pid "$name"))"
		else
			start_registry "$name"
			started+=("$name")
		fi
	done
	for name in "${started[@]}"; do
		wait_ready "$name" "$t1"
	done
	log "up finished in $(since "$t0")"
}

cmd_down() {
	local t0 name pid deadline
	t0="$(now)"
	with_lock
	for name in "${CLUSTERS[@]}"; do
		pid="$(running_pid "$name")"
		if [[ -z "$pid" ]]; then
			log "$name: not running"
			rm -f "$(pidfile "$name")"
			continue
		fi
		kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + STOP_TIMEOUT))
		while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
		if alive "$pid"; then
			log "$name: pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			while alive "$pid"; do sleep 0.1; done
		fi
		rm -f "$(pidfile "$name")"
		log "$name: stopped pid $pid"
	done
	log "down finished in $(since "$t0")"
}

cmd_kill() {
	local name pid port deadline
	with_lock
	for name in "${CLUSTERS[@]}"; do
		pid="$(running_pid "$name")"
		if [[ -z "$pid" ]]; then
			log "$name: not running"
			rm -f "$(pidfile "$name")"
			continue
		fi
		kill -KILL "$pid" 2>/dev/null || true
		port="$(port_of "$name")"
		deadline=$((SECONDS + 30))
		while { alive "$pid" || port_busy "$port"; } && ((SECONDS < deadline)); do sleep 0.05; done
		alive "$pid" && die "$name: pid $pid still alive 30s after SIGKILL"
		port_busy "$port" && die "$name: $HOST:$port still accepts connections after pid $pid was killed"
		rm -f "$(pidfile "$name")"
		log "$name: killed pid $pid"
	done
}

cmd_status() {
	local name pid rc=0
	for name in "${CLUSTERS[@]}"; do
		pid="$(running_pid "$name")"
		if [[ -n "$pid" ]]; then
			printf '%-9s up    pid %-8s %s\n' "$name" "$pid" "$(url_of "$name")"
		else
			printf '%-9s down\n' "$name"
			rc=3
		fi
	done
	return "$rc"
}

cmd_logs() {
	local which=() follow=() lines=100
	while (($#)); do
		case "$1" in
		primary | secondary) which+=("$1") ;;
		-f | --follow) follow=(-F) ;;
		-n) lines="$2"; shift ;;
		*) die "logs: unknown argument $1" ;;
		esac
		shift
	done
	((${#which[@]})) || which=("${CLUSTERS[@]}")
	local files=() name
	for name in "${which[@]}"; do
		[[ -f "$STATE/$name/registry.log" ]] && files+=("$STATE/$name/registry.log")
	done
	((${#files[@]})) || die "no registry logs under $STATE yet"
	exec tail -n "$lines" "${follow[@]}" "${files[@]}"
}

cmd_clean() {
	cmd_down
	local name
	for name in "${CLUSTERS[@]}"; do rm -rf "${STATE:?}/$name"; done
	log "removed registry state under $STATE"
}

cmd_env() {
	local name
	for name in "${CLUSTERS[@]}"; do
		[[ -n "$(running_pid "$name")" ]] || continue
		case "$name" in
		primary) echo "export GODWIT_TEST_PRIMARY_REGISTRY=$(url_of primary)" ;;
		secondary) echo "export GODWIT_TEST_SECONDARY_REGISTRY=$(url_of secondary)" ;;
		esac
	done
	# Tests start disposable registries through this script (the
	# distribution must be cached already: tests never fetch).
	if [[ -f "$HOME_DIR/.complete" ]] && find_java >/dev/null; then
		echo "export GODWIT_TEST_REGISTRY_SH=$REPO/scripts/registry.sh"
	fi
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

main() {
	local cmd="${1:-}"
	(($#)) && shift
	check_clusters
	case "$cmd" in
	up) cmd_up ;;
	down | stop) cmd_down ;;
	kill) cmd_kill ;;
	status) cmd_status ;;
	logs) cmd_logs "$@" ;;
	clean) cmd_clean ;;
	fetch)
		with_lock
		fetch
		log "distribution: $HOME_DIR"
		;;
	env) cmd_env ;;
	paths)
		echo "REGISTRY_HOME=$HOME_DIR"
		echo "REGISTRY_JAVA=$(find_java || echo none)"
		;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
