#!/bin/bash
# Parley's kernel-socket backend and Mosquitto side by side on the same
# workload: the room fan-out of fanout.sh (R rooms x M members over TLS,
# every member posting S-byte messages in turn at a fixed offered rate of
# deliveries, the author's own copy counted), against parleyd and against
# a Mosquitto broker with an MQTT-over-TLS listener, where a room is a topic
# that all its members subscribe to and publish on (mqtt-bench). The
# configurations alternate run by run at each rate, each run on a freshly
# started server pinned to the same CPU.
#
#   perf/mosquitto.sh [--rates "2000 20000"] [--configs "epoll qos0 qos1"]
#                     [--rooms 100] [--members 20] [--size 200]
#                     [--duration 8] [--warmup 2] [common options]
#
# Configurations: epoll (parleyd, [io] kernel_io = epoll), io_uring
# (parleyd, kernel_io = io_uring), batched (parleyd on epoll with fewer
# wake-ups: [io] kernel_nap_us = 250 and [storage] sync_interval_us = 2000,
# each event and post up to that much later), qos0 (Mosquitto, QoS 0: nothing answers
# a delivery), qos1 (Mosquitto, QoS 1: each post and each delivery is
# answered with PUBACK, as each SIP INFO is with a 200).
#
# Mosquitto runs with persistence off, no $SYS updates, TCP_NODELAY (as
# parleyd), no limit on queued or in-flight messages (nothing is dropped),
# a self-signed certificate made in a temporary directory, on 127.0.0.1
# only. Installs the Debian packages mosquitto and libmosquitto-dev when
# they are missing (and builds mqtt-bench), and stops the broker the
# package may have started (it would be noise).
#
# Prints one line per configuration and rate (the medians over --runs, and
# each run's CPU-s per million and p99), then one line per rate with the
# ratios Parley / Mosquitto of server CPU-seconds per million deliveries.
set -u
. "$(dirname "$0")/lib.sh"

rates="2000 20000" configs="epoll qos0 qos1" rooms=100 members=20 size=200 duration=8 warmup=2

while [ $# -gt 0 ]; do
	case "$1" in
	--rates) [ $# -ge 2 ] && [ -n "$2" ] || pb_die "--rates needs a list"; rates=$2; shift 2 ;;
	--configs) [ $# -ge 2 ] && [ -n "$2" ] || pb_die "--configs needs a list"; configs=$2; shift 2 ;;
	--rooms) rooms=$(pb_val "$@") || exit 2; shift 2 ;;
	--members) members=$(pb_val "$@") || exit 2; shift 2 ;;
	--size) size=$(pb_val "$@") || exit 2; shift 2 ;;
	--duration) duration=$(pb_val "$@") || exit 2; shift 2 ;;
	--warmup) warmup=$(pb_val "$@") || exit 2; shift 2 ;;
	-h|--help) pb_usage ;;
	*) pb_other_opt "$@"; shift "$PB_SHIFT" ;;
	esac
done
for r in $rates; do
	case "$r" in ''|*[!0-9.]*) pb_die "--rates wants numbers (deliveries/s), not '$r'" ;; esac
done
for cf in $configs; do
	case "$cf" in epoll|io_uring|batched|qos0|qos1) ;;
	*) pb_die "unknown configuration '$cf' in --configs (epoll, io_uring, batched, qos0, qos1)" ;;
	esac
done
pb_init

MQ_DIR=
MQ_PID=
MQ_PORT=

mq_stop() {
	local i
	[ -n "$MQ_PID" ] || return 0
	kill -TERM "$MQ_PID" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$MQ_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$MQ_PID" 2>/dev/null
	wait "$MQ_PID" 2>/dev/null
	MQ_PID=
}

mq_cleanup() {
	mq_stop
	if [ -n "$MQ_DIR" ] && [ -d "$MQ_DIR" ]; then
		if [ "$PB_KEEP" = 1 ]; then pb_say "kept $MQ_DIR"; else rm -rf "$MQ_DIR"; fi
	fi
	pb_cleanup
}
trap mq_cleanup EXIT

top=$(cd "$(dirname "$0")/.." && pwd)
MQB=$PB_BUILD/perf/mqtt-bench
need_mqtt=0
case " $configs " in *" qos0 "*|*" qos1 "*) need_mqtt=1 ;; esac

# The broker and the client library, from Debian.
mq_install() {
	if command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; then
		if pkg-config --exists libmosquitto 2>/dev/null; then
			return 0
		fi
	fi
	[ "$(id -u)" = 0 ] || pb_die "mosquitto and libmosquitto-dev are missing: apt-get install mosquitto libmosquitto-dev (as root)"
	pb_say "installing mosquitto and libmosquitto-dev"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto libmosquitto-dev >&2 ||
		{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto libmosquitto-dev >&2; } ||
		pb_die "cannot install mosquitto and libmosquitto-dev with apt-get"
}

# The broker the package may have started would only be noise.
mq_stop_packaged() {
	local pid
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
		systemctl disable --now mosquitto >/dev/null 2>&1 || true
	fi
	pid=$(cat /run/mosquitto/mosquitto.pid 2>/dev/null) || return 0
	case "$pid" in ''|*[!0-9]*) return 0 ;; esac
	if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mosquitto ]; then
		pb_say "stopping the packaged mosquitto (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		sleep 0.5
	fi
}

if [ "$need_mqtt" = 1 ]; then
	mq_install
	MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
	mq_stop_packaged
	if [ ! -x "$MQB" ]; then
		pb_say "building mqtt-bench in $PB_BUILD"
		{ meson setup --reconfigure "$PB_BUILD" "$top" && ninja -C "$PB_BUILD" perf/mqtt-bench; } >&2 ||
			pb_die "cannot build perf/mqtt-bench in $PB_BUILD"
		[ -x "$MQB" ] || pb_die "$MQB was not built: meson did not find libmosquitto (pkg-config libmosquitto)"
	fi
	command -v openssl >/dev/null || pb_die "openssl (the command) is missing: apt-get install openssl"
	MQ_DIR=$(mktemp -d /tmp/parley-mqtt-XXXXXX)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
		-keyout "$MQ_DIR/key.pem" -out "$MQ_DIR/cert.pem" >/dev/null 2>&1 ||
		pb_die "cannot make a self-signed certificate with openssl"
fi

# mq_start: our own broker on a free loopback port, pinned like parleyd.
mq_start() {
	local i
	MQ_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	cat > "$MQ_DIR/mosquitto.conf" <<CONF
# root keeps root: the broker reads its key after dropping privileges
user root
per_listener_settings false
allow_anonymous true
persistence false
sys_interval 0
log_dest stderr
log_type error
log_type warning
connection_messages false
set_tcp_nodelay true
max_inflight_messages 0
max_queued_messages 0
max_keepalive 65535
listener $MQ_PORT 127.0.0.1
certfile $MQ_DIR/cert.pem
keyfile $MQ_DIR/key.pem
CONF
	pb_say "starting mosquitto on CPU $PB_SERVER_CPUS, 127.0.0.1:$MQ_PORT (TLS)"
	taskset -c "$PB_SERVER_CPUS" "$MOSQUITTO" -c "$MQ_DIR/mosquitto.conf" > "$MQ_DIR/mosquitto.log" 2>&1 &
	MQ_PID=$!
	for ((i = 0; i < 100; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$MQ_PORT") 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$MQ_PID" 2>/dev/null; then
			tail -20 "$MQ_DIR/mosquitto.log" >&2
			MQ_PID=
			pb_die "mosquitto exited during startup (its log is above)"
		fi
		sleep 0.1
	done
	tail -20 "$MQ_DIR/mosquitto.log" >&2
	pb_die "mosquitto is not listening on 127.0.0.1:$MQ_PORT after 10 s (its log is above)"
}

# mq_bench SECONDS QOS ARGS...: mqtt-bench against our broker, pinned like
# parley-bench; its result line on stdout.
mq_bench() {
	local limit=$1 qos=$2 rc out
	shift 2
	out=$(timeout --signal=INT --kill-after=10 "$limit" \
		taskset -c "$PB_BENCH_CPUS" "$MQB" -s "127.0.0.1:$MQ_PORT" --qos "$qos" \
		-p "$MQ_PID" "$@") && rc=0 || rc=$?
	if ! kill -0 "$MQ_PID" 2>/dev/null; then
		tail -20 "$MQ_DIR/mosquitto.log" >&2
		MQ_PID=
		pb_die "mosquitto is gone (crashed or killed during the run; its log is above)"
	fi
	if [ "$rc" = 124 ] || [ "$rc" = 130 ]; then
		pb_die "mqtt-bench did not finish within $limit s"
	fi
	if [ "$rc" -ge 2 ] || [ -z "$out" ]; then
		pb_die "mqtt-bench failed (exit $rc)"
	fi
	printf '%s\n' "$out"
}

total=$((rooms * members))
limit=$(python3 -c "print(int(60 + $total / 50 + $warmup + $duration + 40))")
base_sets=("${PB_SETS[@]}")
declare -A lines

for rate in $rates; do
	for ((run = 1; run <= PB_RUNS; run++)); do
		for cf in $configs; do
			pb_say "run $run/$PB_RUNS, $cf: $rooms rooms x $members members, $size bytes, offered $rate deliveries/s"
			case "$cf" in
			epoll|io_uring|batched)
				if [ "$cf" = batched ]; then
					PB_SETS=("${base_sets[@]}" --set io.kernel_io=epoll
						 --set io.kernel_nap_us=250
						 --set storage.sync_interval_us=2000)
				else
					PB_SETS=("${base_sets[@]}" --set "io.kernel_io=$cf")
				fi
				pb_start_server "$rooms" "$total"
				line=$(pb_bench "$limit" fanout --rooms "$rooms" --members "$members" \
					--size "$size" --deliv-rate "$rate" --duration "$duration" \
					--warmup "$warmup") || exit 2
				pb_stop_server
				line="server=parley kernel_io=$cf $line"
				;;
			qos0|qos1)
				mq_start
				line=$(mq_bench "$limit" "${cf#qos}" --rooms "$rooms" --members "$members" \
					--size "$size" --deliv-rate "$rate" --duration "$duration" \
					--warmup "$warmup") || exit 2
				mq_stop
				line="server=mosquitto $line"
				;;
			esac
			pb_say "run $run, $cf: $line"
			lines[$cf,$rate]="${lines[$cf,$rate]:-}${lines[$cf,$rate]:+|}$line"
		done
	done
done

# The median line of configuration $1 at rate $2.
median_of() {
	local runs
	IFS='|' read -r -a runs <<<"${lines[$1,$2]}"
	pb_median "${runs[@]}"
}

for rate in $rates; do
	declare -A cpu=()
	for cf in $configs; do
		IFS='|' read -r -a runs <<<"${lines[$cf,$rate]}"
		result=$(median_of "$cf" "$rate")
		cpu[$cf]=$(pb_get "$result" server_cpu_s_per_M)
		result="config=$cf $result fsync=$PB_FSYNC server_cpus=$PB_SERVER_CPUS bench_cpus=$PB_BENCH_CPUS runs=$PB_RUNS cpu_s_per_M_runs=$(pb_all server_cpu_s_per_M "${runs[@]}") p99_ms_runs=$(pb_all p99_ms "${runs[@]}") delivered_per_s_runs=$(pb_all delivered_per_s "${runs[@]}") gen_cpu_runs=$(pb_all gen_cpu "${runs[@]}") other_cpu_runs=$(pb_all other_cpu "${runs[@]}")"
		if [ "$(pb_get "$result" gen_bottleneck)" != 0 ]; then
			pb_say "WARNING: $cf at $rate/s: the load generator was the bottleneck in at least one run"
		fi
		pb_result "$result"
	done
	ratios="compare=parley/mosquitto offered_deliv_per_s=$rate"
	for p in epoll io_uring batched; do
		[ -n "${cpu[$p]:-}" ] || continue
		for m in qos0 qos1; do
			[ -n "${cpu[$m]:-}" ] || continue
			ratios="$ratios cpu_${p}_over_${m}=$(python3 -c "print('%.2f' % (${cpu[$p]} / max(${cpu[$m]}, 1e-9)))")"
		done
	done
	pb_result "$ratios"
	unset cpu
done
