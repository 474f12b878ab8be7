#!/usr/bin/env bash
# Real-Kafka test harness for godwit: two independent single-node KRaft
# clusters (combined broker+controller) on loopback.
#
#   scripts/kafka.sh up       fetch jars (cached), format storage, start both clusters, wait until ready
#   scripts/kafka.sh down     stop exactly the processes recorded in the pid files
#   scripts/kafka.sh status   print each cluster's state and pid
#   scripts/kafka.sh logs [primary|secondary] [-f] [-n LINES]
#   scripts/kafka.sh clean    down + remove the clusters' data/log folders
#   scripts/kafka.sh fetch    only fetch/refresh the jar cache
#   scripts/kafka.sh kill     SIGKILL the brokers (no shutdown), wait until the process is gone and the port refuses
#   scripts/kafka.sh env      print the GODWIT_TEST_* variables for the running clusters
#   scripts/kafka.sh paths    print the cached library folders (broker, MirrorMaker 2)
#
# Jars come from Maven Central through `mvn` into ${GODWIT_CACHE:-<repo>/.cache};
# cluster state lives in ${GODWIT_KAFKA_DIR:-<repo>/.kafka}/<primary|secondary>/.
#
# Besides the PLAINTEXT listener each cluster has two secure listeners (unless
# GODWIT_KAFKA_SECURE=0; they need `go` on PATH): SASL_SSL (SCRAM-SHA-512,
# SCRAM-SHA-256 and PLAIN for user godwit) on port+2 and SSL with required
# client certificates (mutual TLS) on port+3. A test CA, broker and client
# certificates (Go's crypto, scripts/kafkasec) and the SCRAM password live in
# <state>/secure/; the SCRAM users are created through the admin API after start.
#
# Environment overrides (all optional):
#   GODWIT_CACHE, GODWIT_KAFKA_DIR
#   GODWIT_PRIMARY_PORT (19092), GODWIT_PRIMARY_CONTROLLER_PORT (19093)
#   GODWIT_SECONDARY_PORT (29092), GODWIT_SECONDARY_CONTROLLER_PORT (29093)
#   GODWIT_KAFKA_SECURE (1), GODWIT_PRIMARY_SASL_SSL_PORT (port+2), GODWIT_PRIMARY_MTLS_PORT (port+3),
#   GODWIT_SECONDARY_SASL_SSL_PORT, GODWIT_SECONDARY_MTLS_PORT
#   GODWIT_KAFKA_HEAP (-Xms256m -Xmx512m), GODWIT_KAFKA_START_TIMEOUT (seconds, 180)
#   GODWIT_KAFKA_STOP_TIMEOUT (seconds, 60)
#   GODWIT_KAFKA_WAN_PORT (unset: off): an extra PLAINTEXT listener WAN on the primary on this port,
#   advertised as GODWIT_KAFKA_WAN_ADVERTISED_PORT (default: the same port), for a latency proxy in
#   front of it (go run ./bench -wan-delay ...): clients that bootstrap through the proxy stay on it.
#   GODWIT_KAFKA_CLUSTERS ("primary secondary"): the clusters up/down/kill/status/clean act on
#   (space or comma separated)
#   GODWIT_KAFKA_WATCH_PID (unset): a broker started by `up` is SIGKILLed once this process is gone
#   GODWIT_KAFKA_SERVER_PROPS (unset): extra server.properties lines, appended last (they win)
#
# Disposable clusters (internal/testkit DisposableKafka): a single extra cluster
# in its own state folder and ports, jars from the same cache, e.g.
#   GODWIT_KAFKA_DIR=/tmp/x GODWIT_KAFKA_CLUSTERS=primary GODWIT_PRIMARY_PORT=39092 \
#   GODWIT_PRIMARY_CONTROLLER_PORT=39093 GODWIT_KAFKA_SECURE=0 scripts/kafka.sh up|kill|down
# `kill` then `up` restarts it on the same data (an unclean shutdown, like a crashed broker).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

KAFKA_VERSION=4.4.0
SCALA_VERSION=2.13
# connect-mirror is not published for 4.4.0 on Maven Central (latest is 4.3.1),
# so the MirrorMaker 2 peer gets its own, self-consistent 4.3.x classpath.
MM2_VERSION="${GODWIT_MM2_VERSION:-4.3.1}"
# Kafka's poms declare slf4j-api 1.7.36 + log4j-core 2.25.5 but no binding;
# the official distribution ships log4j-slf4j-impl (slf4j 1.x -> log4j2).
LOG4J_VERSION=2.25.5

CACHE="${GODWIT_CACHE:-$REPO/.cache}"
KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
MM2_HOME="$CACHE/connect-mirror-$MM2_VERSION"
MM2_LIBS="$MM2_HOME/libs"
STATE="${GODWIT_KAFKA_DIR:-$REPO/.kafka}"

PRIMARY_PORT="${GODWIT_PRIMARY_PORT:-19092}"
PRIMARY_CONTROLLER_PORT="${GODWIT_PRIMARY_CONTROLLER_PORT:-19093}"
SECONDARY_PORT="${GODWIT_SECONDARY_PORT:-29092}"
SECONDARY_CONTROLLER_PORT="${GODWIT_SECONDARY_CONTROLLER_PORT:-29093}"
HOST=127.0.0.1

SECURE="${GODWIT_KAFKA_SECURE:-1}"
PRIMARY_SASL_SSL_PORT="${GODWIT_PRIMARY_SASL_SSL_PORT:-$((PRIMARY_PORT + 2))}"
PRIMARY_MTLS_PORT="${GODWIT_PRIMARY_MTLS_PORT:-$((PRIMARY_PORT + 3))}"
SECONDARY_SASL_SSL_PORT="${GODWIT_SECONDARY_SASL_SSL_PORT:-$((SECONDARY_PORT + 2))}"
SECONDARY_MTLS_PORT="${GODWIT_SECONDARY_MTLS_PORT:-$((SECONDARY_PORT + 3))}"
SECDIR="$STATE/secure"
SCRAM_USER=godwit

HEAP="${GODWIT_KAFKA_HEAP:--Xms256m -Xmx512m}"
START_TIMEOUT="${GODWIT_KAFKA_START_TIMEOUT:-180}"
STOP_TIMEOUT="${GODWIT_KAFKA_STOP_TIMEOUT:-60}"
WAN_PORT="${GODWIT_KAFKA_WAN_PORT:-}"
WAN_ADVERTISED_PORT="${GODWIT_KAFKA_WAN_ADVERTISED_PORT:-$WAN_PORT}"

CLUSTERS=(primary secondary)
if [[ -n "${GODWIT_KAFKA_CLUSTERS:-}" ]]; then
	read -r -a CLUSTERS <<<"${GODWIT_KAFKA_CLUSTERS//,/ }"
fi
WATCH_PID="${GODWIT_KAFKA_WATCH_PID:-}"
EXTRA_PROPS="${GODWIT_KAFKA_SERVER_PROPS:-}"

log() { printf '[kafka.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

now() { printf '%s' "$EPOCHREALTIME"; }
since() { awk -v s="$1" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", e - s }'; }

port_of() { case "$1" in primary) echo "$PRIMARY_PORT" ;; secondary) echo "$SECONDARY_PORT" ;; esac; }
cport_of() { case "$1" in primary) echo "$PRIMARY_CONTROLLER_PORT" ;; secondary) echo "$SECONDARY_CONTROLLER_PORT" ;; esac; }
sport_of() { case "$1" in primary) echo "$PRIMARY_SASL_SSL_PORT" ;; secondary) echo "$SECONDARY_SASL_SSL_PORT" ;; esac; }
mport_of() { case "$1" in primary) echo "$PRIMARY_MTLS_PORT" ;; secondary) echo "$SECONDARY_MTLS_PORT" ;; esac; }
secure_on() { [[ "$SECURE" == 1 ]]; }
# has_secure NAME: the cluster's current config has the secure listeners.
has_secure() { grep -q '^listeners=.*SASL_SSL://' "$STATE/$1/server.properties" 2>/dev/null; }

require() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH ($2)"; }

check_clusters() {
	local name
	((${#CLUSTERS[@]})) || die "GODWIT_KAFKA_CLUSTERS names no cluster; use primary and/or secondary"
	for name in "${CLUSTERS[@]}"; do
		case "$name" in
		primary | secondary) ;;
		*) die "GODWIT_KAFKA_CLUSTERS: unknown cluster '$name'; use primary and/or secondary" ;;
		esac
	done
	if [[ -n "$WATCH_PID" && ! "$WATCH_PID" =~ ^[0-9]+$ ]]; then
		die "GODWIT_KAFKA_WATCH_PID '$WATCH_PID' is not a process id"
	fi
}

# Serialise up/down/clean between concurrent callers sharing one state folder.
with_lock() {
	mkdir -p "$STATE"
	exec 9>"$STATE/.lock"
	# (fd 9 is closed for the broker JVMs, so only live kafka.sh runs hold it)
	flock -w 300 9 || die "could not take $STATE/.lock within 300s (another kafka.sh running?)"
}

# ---------------------------------------------------------------- fetching

# write_pom FILE ARTIFACT... where ARTIFACT is group:artifact:version
write_pom() {
	local file="$1"
	shift
	{
		cat <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/kafka.sh: only used to resolve jars into ./libs. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.godwit</groupId>
  <artifactId>kafka-test-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
EOF
		local a g n v
		for a in "$@"; do
			IFS=: read -r g n v <<<"$a"
			printf '    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n' "$g" "$n" "$v"
		done
		cat <<'EOF'
  </dependencies>
</project>
EOF
	} >"$file"
}

# fetch_libs HOME LIBS ARTIFACT...: resolve ARTIFACTs with all runtime deps into
# LIBS, unless the marker says LIBS already holds exactly this set.
fetch_libs() {
	local home="$1" libs="$2"
	shift 2
	mkdir -p "$home"
	local pom="$home/pom.xml" tmp="$home/pom.xml.new"
	write_pom "$tmp" "$@"
	local want
	want="$(sha256sum <"$tmp" | cut -d' ' -f1)"
	if [[ -f "$libs/.complete" && "$(cat "$libs/.complete")" == "$want" ]]; then
		rm -f "$tmp"
		return 0
	fi
	require mvn "install Maven"
	require java "install a JDK 17+"
	mv "$tmp" "$pom"
	local t0 attempt out="$libs.partial"
	t0="$(now)"
	log "fetching $* (+ runtime deps) from Maven Central into $libs ..."
	for attempt in 1 2 3; do
		rm -rf "$out"
		if mvn -B -q -f "$pom" dependency:copy-dependencies \
			-DincludeScope=runtime -DoutputDirectory="$out" >"$home/mvn.log" 2>&1; then
			rm -rf "$libs"
			mv "$out" "$libs"
			printf '%s\n' "$want" >"$libs/.complete"
			log "fetched $(find "$libs" -name '*.jar' | wc -l) jars in $(since "$t0")"
			return 0
		fi
		log "mvn attempt $attempt failed (see $home/mvn.log):"
		tail -n 15 "$home/mvn.log" >&2 || true
		sleep $((attempt * 3))
	done
	die "could not fetch jars with mvn"
}

fetch_all() {
	require flock "util-linux"
	fetch_libs "$KAFKA_HOME" "$LIBS" \
		"org.apache.kafka:kafka_$SCALA_VERSION:$KAFKA_VERSION" \
		"org.apache.kafka:kafka-tools:$KAFKA_VERSION" \
		"org.apache.kafka:connect-runtime:$KAFKA_VERSION" \
		"org.apache.logging.log4j:log4j-slf4j-impl:$LOG4J_VERSION"
	fetch_libs "$MM2_HOME" "$MM2_LIBS" \
		"org.apache.kafka:connect-mirror:$MM2_VERSION" \
		"org.apache.kafka:connect-runtime:$MM2_VERSION" \
		"org.apache.logging.log4j:log4j-slf4j-impl:$LOG4J_VERSION"
}

# kjava CLASS ARGS...: run a Kafka tool class on the broker classpath, quietly.
kjava() {
	java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
		-Dlog4j2.configurationFile="$KAFKA_HOME/tools-log4j2.properties" \
		-cp "$LIBS/*" "$@"
}

write_tools_log4j() {
	# Written aside and renamed: callers with other state folders share the
	# cache and may run a tool while this runs.
	local tmp="$KAFKA_HOME/tools-log4j2.properties.$$"
	cat >"$tmp" <<'EOF'
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ERROR
rootLogger.appenderRef.stderr.ref = STDERR
EOF
	mv -f "$tmp" "$KAFKA_HOME/tools-log4j2.properties"
}

# ---------------------------------------------------------------- secure listeners

# prepare_secure: certificates, the SCRAM password and the kafkasec helper,
# generated once per state folder (Go's crypto; no keytool or openssl).
prepare_secure() {
	secure_on || return 0
	if ! command -v go >/dev/null 2>&1; then
		log "go not found on PATH: starting without the secure listeners (GODWIT_KAFKA_SECURE=0 to silence)"
		SECURE=0
		return 0
	fi
	local t0
	t0="$(now)"
	mkdir -p "$SECDIR"
	chmod 700 "$SECDIR"
	(cd "$REPO" && go build -o "$SECDIR/kafkasec" ./scripts/kafkasec) || die "building scripts/kafkasec failed"
	"$SECDIR/kafkasec" certs "$SECDIR" || die "generating test certificates failed"
	if [[ ! -s "$SECDIR/scram.password" ]]; then
		(umask 077 && LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 >"$SECDIR/scram.password") || true
	fi
	[[ -s "$SECDIR/scram.password" ]] || die "could not write $SECDIR/scram.password"
	log "secure listeners: certificates and SCRAM password in $SECDIR ($(since "$t0"))"
}

# create_scram_users NAME: SCRAM credentials for $SCRAM_USER, through the
# admin API on the PLAINTEXT listener (idempotent).
create_scram_users() {
	has_secure "$1" || return 0
	"$SECDIR/kafkasec" scram "$HOST:$(port_of "$1")" "$SCRAM_USER" "$SECDIR/scram.password" ||
		die "$1: creating SCRAM users failed"
	log "$1: SCRAM user $SCRAM_USER ready on SASL_SSL $HOST:$(sport_of "$1"); mutual TLS on $HOST:$(mport_of "$1")"
}

# ---------------------------------------------------------------- processes

pidfile() { echo "$STATE/$1/kafka.pid"; }

# alive PID: the process exists and is not a zombie (a SIGKILLed broker whose
# parent, often init, has not reaped it yet still answers kill -0).
alive() {
	local st
	st="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null)" || return 1
	[[ -n "$st" && "${st%% *}" != Z ]]
}

# running_pid NAME: print the pid if the pid file names a live kafka.Kafka
# process started with this cluster's server.properties; otherwise nothing.
running_pid() {
	local pf pid cmd
	pf="$(pidfile "$1")"
	[[ -f "$pf" ]] || return 0
	pid="$(tr -dc '0-9' <"$pf")"
	[[ -n "$pid" ]] || return 0
	alive "$pid" || return 0
	cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
	if [[ "$cmd" == *kafka.Kafka*"$STATE/$1/server.properties"* ]]; then
		echo "$pid"
	fi
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

write_config() {
	local name="$1" dir="$STATE/$1" port cport
	port="$(port_of "$name")"
	cport="$(cport_of "$name")"
	mkdir -p "$dir/data" "$dir/logs"
	local listeners="PLAINTEXT://$HOST:$port,CONTROLLER://$HOST:$cport"
	local advertised="PLAINTEXT://$HOST:$port"
	local protomap="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
	if secure_on; then
		local sport mport
		sport="$(sport_of "$name")"
		mport="$(mport_of "$name")"
		listeners+=",SASL_SSL://$HOST:$sport,MTLS://$HOST:$mport"
		advertised+=",SASL_SSL://$HOST:$sport,MTLS://$HOST:$mport"
		protomap+=",SASL_SSL:SASL_SSL,MTLS:SSL"
	fi
	if [[ "$name" == primary && -n "$WAN_PORT" ]]; then
		listeners+=",WAN://$HOST:$WAN_PORT"
		advertised+=",WAN://$HOST:$WAN_ADVERTISED_PORT"
		protomap+=",WAN:PLAINTEXT"
	fi
	cat >"$dir/server.properties" <<EOF
# Generated by scripts/kafka.sh ($name) - test settings, not for production.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$cport
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protomap
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data

num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true

offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

# An authorizer, so ACL sync is tested against real Kafka. Every principal
# the tests connect as is a super user (PLAINTEXT is User:ANONYMOUS; the
# SCRAM user; the mutual-TLS client certificate), so nothing else changes:
# ACLs created by tests are stored, listed and copied, not enforced on them.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS;User:godwit;User:CN=godwit-client,O=godwit tests

# keep a test broker light
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=67108864
EOF
	if secure_on; then
		# holds the broker key and the test password
		chmod 600 "$dir/server.properties"
		local pw
		pw="$(cat "$SECDIR/scram.password")"
		cat >>"$dir/server.properties" <<EOF

# Secure listeners (scripts/kafkasec certs): SASL_SSL with SCRAM and PLAIN,
# MTLS = SSL with required client certificates. Test CA: $SECDIR/ca.pem
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SCRAM_USER="$pw";
listener.name.mtls.ssl.client.auth=required
EOF
		cat "$SECDIR/broker-ssl.properties" >>"$dir/server.properties"
	fi
	if [[ -n "$EXTRA_PROPS" ]]; then
		printf '\n# GODWIT_KAFKA_SERVER_PROPS\n%s\n' "$EXTRA_PROPS" >>"$dir/server.properties"
	fi
	cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.server.type = RollingFile
appender.server.name = SERVER
appender.server.fileName = $dir/logs/server.log
appender.server.filePattern = $dir/logs/server.log.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 50MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.server.ref = SERVER
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.stateChange.name = state.change.logger
logger.stateChange.level = WARN
EOF
}

format_storage() {
	local name="$1" dir="$STATE/$1"
	if [[ -f "$dir/data/meta.properties" ]]; then
		return 0
	fi
	local id
	id="$(kjava kafka.tools.StorageTool random-uuid | tr -d '[:space:]')"
	[[ -n "$id" ]] || die "could not generate a cluster id"
	kjava kafka.tools.StorageTool format --cluster-id "$id" \
		--config "$dir/server.properties" --ignore-formatted >"$dir/logs/format.log" 2>&1 ||
		{ cat "$dir/logs/format.log" >&2; die "formatting $name storage failed"; }
	echo "$id" >"$dir/cluster.id"
	log "$name: formatted storage, cluster id $id"
}

start_cluster() {
	local name="$1" dir="$STATE/$1" pid port cport
	pid="$(running_pid "$name")"
	if [[ -n "$pid" ]]; then
		log "$name: already running (pid $pid)"
		return 0
	fi
	port="$(port_of "$name")"
	cport="$(cport_of "$name")"
	local p
	local ports=("$port" "$cport")
	if secure_on; then ports+=("$(sport_of "$name")" "$(mport_of "$name")"); fi
	for p in "${ports[@]}"; do
		port_busy "$p" && die "$name: port $HOST:$p is already in use by another process"
	done
	write_config "$name"
	format_storage "$name"
	rm -f "$(pidfile "$name")"
	# The wrapper shell records its own pid and execs java, so the pid file
	# names the broker JVM itself; setsid detaches it from our process group.
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$(pidfile "$name")" \
		java $HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
		-Djava.awt.headless=true -Dkafka.logs.dir="$dir/logs" \
		-Dlog4j2.configurationFile="$dir/log4j2.properties" \
		-cp "$LIBS/*" kafka.Kafka "$dir/server.properties" \
		</dev/null >"$dir/logs/stdout.log" 2>&1 9>&- &
	local i
	for i in $(seq 1 50); do
		[[ -s "$(pidfile "$name")" ]] && break
		sleep 0.1
	done
	log "$name: started pid $(cat "$(pidfile "$name")" 2>/dev/null || echo '?') on $HOST:$port (controller $cport)"
	start_watchdog "$name"
}

# start_watchdog NAME: with GODWIT_KAFKA_WATCH_PID, a detached loop SIGKILLs
# the broker once that process (a test binary) is gone, so a test that dies
# before its cleanup leaves no broker behind. The loop ends with the broker.
start_watchdog() {
	[[ -n "$WATCH_PID" ]] || return 0
	local pid
	pid="$(tr -dc '0-9' <"$(pidfile "$1")" 2>/dev/null || true)"
	[[ -n "$pid" ]] || return 0
	setsid bash -c '
		alive() { local st; st="$(sed "s/^.*) //" "/proc/$1/stat" 2>/dev/null)" || return 1; [[ -n "$st" && "${st%% *}" != Z ]]; }
		while alive "$1" && alive "$2"; do sleep 1; done
		if alive "$2" && [[ "$(tr "\0" " " <"/proc/$2/cmdline" 2>/dev/null)" == *"$3"* ]]; then kill -KILL "$2"; fi
	' _ "$WATCH_PID" "$pid" "$STATE/$1/server.properties" </dev/null >/dev/null 2>&1 9>&- &
	log "$1: broker pid $pid is SIGKILLed when pid $WATCH_PID exits"
}

dump_logs() {
	local dir="$STATE/$1"
	log "---- $1: last lines of $dir/logs/stdout.log"
	tail -n 30 "$dir/logs/stdout.log" >&2 2>/dev/null || true
	log "---- $1: last lines of $dir/logs/server.log"
	tail -n 40 "$dir/logs/server.log" >&2 2>/dev/null || true
}

# wait_ready NAME T0: until the deadline, wait for the listener and then for a
# metadata answer (ClusterTool cluster-id) matching the formatted cluster id.
wait_ready() {
	local name="$1" t0="$2" port deadline got want
	port="$(port_of "$name")"
	deadline=$((SECONDS + START_TIMEOUT))
	want="$(cat "$STATE/$name/cluster.id" 2>/dev/null || true)"
	while ((SECONDS < deadline)); do
		if [[ -z "$(running_pid "$name")" ]]; then
			dump_logs "$name"
			die "$name: broker process exited during startup"
		fi
		if port_busy "$port"; then
			got="$(kjava org.apache.kafka.tools.ClusterTool cluster-id \
				--bootstrap-server "$HOST:$port" 2>/dev/null | sed -n 's/^Cluster ID: *//p' | tr -d '[:space:]')" || true
			if [[ -n "$got" ]]; then
				if [[ -n "$want" && "$got" != "$want" ]]; then
					die "$name: $HOST:$port answered with cluster id $got, expected $want"
				fi
				[[ -n "$want" ]] || echo "$got" >"$STATE/$name/cluster.id"
				log "$name: ready on $HOST:$port, cluster id $got ($(since "$t0") since up)"
				return 0
			fi
		fi
		sleep 0.5
	done
	dump_logs "$name"
	die "$name: not ready within ${START_TIMEOUT}s"
}

cmd_up() {
	require java "install a JDK 17+"
	require setsid "util-linux"
	local t0 t1 name started=()
	t0="$(now)"
	with_lock
	fetch_all
	write_tools_log4j
	log "jar cache ready ($(since "$t0"))"
	prepare_secure
	t1="$(now)"
	for name in "${CLUSTERS[@]}"; do
		if [[ -n "$(running_pid "$name")" ]]; then
			log "$name: already running (pid $(running_pid "$name"))"
		else
			start_cluster "$name"
			started+=("$name")
		fi
	done
	for name in "${started[@]}"; do
		wait_ready "$name" "$t1"
	done
	for name in "${started[@]}"; do
		create_scram_users "$name"
	done
	if ((${#started[@]} == 0)); then
		log "$(clusters_phrase) already running; nothing to do"
	fi
	local where=""
	for name in "${CLUSTERS[@]}"; do where+="${where:+, }$name $HOST:$(port_of "$name")"; done
	log "up finished in $(since "$t0"): $where"
}

clusters_phrase() {
	if [[ "${CLUSTERS[*]}" == "primary secondary" ]]; then echo "both clusters"; else echo "${CLUSTERS[*]}"; fi
}

cmd_down() {
	local t0 name pid pids=() names=()
	t0="$(now)"
	with_lock
	for name in "${CLUSTERS[@]}"; do
		pid="$(running_pid "$name")"
		if [[ -z "$pid" ]]; then
			log "$name: not running"
			rm -f "$(pidfile "$name")"
			continue
		fi
		log "$name: stopping pid $pid (SIGTERM)"
		kill -TERM "$pid" 2>/dev/null || true
		pids+=("$pid")
		names+=("$name")
	done
	local i deadline
	for i in "${!pids[@]}"; do
		pid="${pids[$i]}"
		name="${names[$i]}"
		deadline=$((SECONDS + STOP_TIMEOUT))
		while alive "$pid" && ((SECONDS < deadline)); do
			sleep 0.2
		done
		if alive "$pid"; then
			log "$name: pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			while alive "$pid"; do sleep 0.1; done
		fi
		rm -f "$(pidfile "$name")"
		log "$name: stopped"
	done
	log "down finished in $(since "$t0")"
}

# cmd_kill: SIGKILL each broker (a crash: no controlled shutdown, nothing
# flushed by Kafka), then wait until the process is gone and its port
# refuses connections. `up` afterwards restarts it on the same data.
cmd_kill() {
	local t0 name pid port deadline
	t0="$(now)"
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
		while { alive "$pid" || port_busy "$port"; } && ((SECONDS < deadline)); do
			sleep 0.05
		done
		alive "$pid" && die "$name: pid $pid still alive 30s after SIGKILL"
		port_busy "$port" && die "$name: $HOST:$port still accepts connections 30s after pid $pid was killed (another process on it?)"
		rm -f "$(pidfile "$name")"
		log "$name: killed pid $pid (SIGKILL); $HOST:$port refuses connections ($(since "$t0"))"
	done
}

cmd_status() {
	local name pid rc=0
	for name in "${CLUSTERS[@]}"; do
		pid="$(running_pid "$name")"
		if [[ -n "$pid" ]]; then
			printf '%-9s up    pid %-8s %s:%s (controller %s) cluster id %s%s\n' "$name" "$pid" \
				"$HOST" "$(port_of "$name")" "$(cport_of "$name")" "$(cat "$STATE/$name/cluster.id" 2>/dev/null || echo '?')" \
				"$(has_secure "$name" && echo " sasl_ssl $(sport_of "$name") mtls $(mport_of "$name")")"
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
		[[ -f "$STATE/$name/logs/server.log" ]] && files+=("$STATE/$name/logs/server.log")
	done
	((${#files[@]})) || die "no server logs under $STATE yet"
	exec tail -n "$lines" "${follow[@]}" "${files[@]}"
}

cmd_clean() {
	cmd_down
	local name
	for name in "${CLUSTERS[@]}"; do
		rm -rf "${STATE:?}/$name"
	done
	# the certificates serve every cluster of the state folder
	[[ -d "$STATE/primary" || -d "$STATE/secondary" ]] || rm -rf "${STATE:?}/secure"
	log "removed cluster data under $STATE"
}

cmd_env() {
	echo "export GODWIT_TEST_PRIMARY=$HOST:$PRIMARY_PORT"
	echo "export GODWIT_TEST_SECONDARY=$HOST:$SECONDARY_PORT"
	if has_secure primary && has_secure secondary && [[ -s "$SECDIR/ca.pem" ]]; then
		echo "export GODWIT_TEST_PRIMARY_SASL_SSL=$HOST:$PRIMARY_SASL_SSL_PORT"
		echo "export GODWIT_TEST_SECONDARY_SASL_SSL=$HOST:$SECONDARY_SASL_SSL_PORT"
		echo "export GODWIT_TEST_PRIMARY_MTLS=$HOST:$PRIMARY_MTLS_PORT"
		echo "export GODWIT_TEST_SECONDARY_MTLS=$HOST:$SECONDARY_MTLS_PORT"
		echo "export GODWIT_TEST_CA=$SECDIR/ca.pem"
		echo "export GODWIT_TEST_CLIENT_CERT=$SECDIR/client.pem"
		echo "export GODWIT_TEST_CLIENT_KEY=$SECDIR/client.key"
		echo "export GODWIT_TEST_SCRAM_USER=$SCRAM_USER"
		echo "export GODWIT_TEST_SCRAM_PASSWORD_FILE=$SECDIR/scram.password"
	fi
	# Tests start their own disposable clusters through this script (jars
	# must be cached already: tests never fetch).
	if [[ -f "$LIBS/.complete" ]] && command -v java >/dev/null 2>&1; then
		echo "export GODWIT_TEST_KAFKA_SH=$REPO/scripts/kafka.sh"
	fi
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

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
		fetch_all
		log "broker libs: $LIBS"
		log "MirrorMaker 2 libs: $MM2_LIBS"
		;;
	env) cmd_env ;;
	paths)
		echo "KAFKA_LIBS=$LIBS"
		echo "MM2_LIBS=$MM2_LIBS"
		;;
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
