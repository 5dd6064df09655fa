#!/bin/bash
# Room fan-out on the kernel-free bed: parleyd's dpdk backend on a net_memif
# port (server role) and parley-bench's user-space mode (--dpdk: its clients
# on Parley's TCP core over a net_memif client port, TLS on memory BIOs), so
# that every frame moves through shared memory: no system call, no kernel
# TCP, no TAP on either side. The same workload and result line as
# perf/fanout.sh, plus the generator's CPU per delivery (gen_cpu_s_per_M).
#
#   perf/memif.sh [--rooms 100] [--members 20] [--size 200]
#                 [--deliv-rate 20000] [--duration 10] [--warmup 2]
#                 [--idle-sleep-us 200] [--perf-stat] [--perf-record FILE]
#                 [--nice N | --fifo PRIO] [common options]
#
# --perf-stat      perf stat --per-thread on parleyd over the window: each
#                  thread's CPU (task-clock) and context switches, appended to
#                  the result as srv_<thread>_cpus=... (CPUs used) and
#                  srv_cs_per_s=...
# --perf-record F  perf record -g on parleyd over the window into F (the last
#                  run's), for perf report and perf/stages.py
# --nice N         run parleyd and parley-bench at this nice value (0); on a
#                  shared host -5 keeps other tenants' builds from starving
#                  either side for tens of milliseconds (the memif rings then
#                  fill, frames drop and TCP's retransmission timers rule)
# --fifo PRIO      run both under SCHED_FIFO at this priority (chrt -f)
#                  instead: other tenants can no longer delay either side
#                  (both sleep when idle; the kernel's RT throttling keeps
#                  5% of each CPU for the rest). For side-by-side runs on a
#                  shared host, where even nice -5 runs collapsed
#
# Needs root (DPDK's runtime files in /var/run/dpdk, removed afterwards).
set -u
. "$(dirname "$0")/lib.sh"

rooms=100 members=20 size=200 deliv_rate=20000 duration=10 warmup=2 idle_us=200
perf_stat=0 perf_record= nice=0

while [ $# -gt 0 ]; do
	case "$1" in
	--rooms) rooms=$(pb_val "$@") || exit 2; shift 2 ;;
	--members) members=$(pb_val "$@") || exit 2; shift 2 ;;
	--size) size=$(pb_val "$@") || exit 2; shift 2 ;;
	--deliv-rate) deliv_rate=$(pb_val "$@") || exit 2; shift 2 ;;
	--duration) duration=$(pb_val "$@") || exit 2; shift 2 ;;
	--warmup) warmup=$(pb_val "$@") || exit 2; shift 2 ;;
	--idle-sleep-us) idle_us=$(pb_val "$@") || exit 2; shift 2 ;;
	--perf-stat) perf_stat=1; shift ;;
	--nice) [ $# -ge 2 ] || pb_die "--nice needs a value"; nice=$2; shift 2 ;;
	--perf-record) [ $# -ge 2 ] || pb_die "--perf-record needs a file"; perf_record=$2; shift 2 ;;
	-h|--help) pb_usage ;;
	*) pb_other_opt "$@"; shift "$PB_SHIFT" ;;
	esac
done
pb_init
# How both processes are started: niceness, or SCHED_FIFO (--fifo, a
# common option: PB_SCHED).
fifo=$PB_FIFO
if [ "$fifo" != 0 ]; then
	sched=("${PB_SCHED[@]}")
else
	sched=(nice -n "$nice")
fi
[ "$PB_LCORES" = 1 ] || pb_die "the memif bed runs one lcore (parley-bench has one queue pair)"
if [ "$perf_stat" = 1 ] || [ -n "$perf_record" ]; then
	command -v perf >/dev/null || pb_die "perf is missing (apt-get install linux-perf)"
fi

addr=198.18.0.2
port=5061

# parleyd on net_memif (server role); its own EAL prefix, removed at the end.
memif_start_server() {
	local total=$1 nofsync=false i
	[ "$PB_FSYNC" = 0 ] && nofsync=true
	if [ -z "$PB_DIR" ]; then
		PB_DIR=$(mktemp -d /tmp/parley-memif-XXXXXX)
		"$BENCH" users "$total" > "$PB_DIR/users.htdigest" || pb_die "cannot generate users"
	fi
	rm -rf "$PB_DIR/data" "$PB_DIR/memif.sock"
	mkdir -p "$PB_DIR/data"
	{
		cat <<INI
[server]
domain = example.com
data_dir = $PB_DIR/data
log_level = warning
drain_timeout_s = 3
[sip]
listen = $addr:$port
[auth]
htdigest = $PB_DIR/users.htdigest
fail_max = 1000000
[storage]
durability_unsafe_no_fsync = $nofsync
[web]
enabled = false
[io]
backend = dpdk
[dpdk]
eal = --no-huge --no-pci --file-prefix=parleyd-memif-$$
port = net_memif0,role=server,socket=$PB_DIR/memif.sock,socket-abstract=no,rsize=13
addr = $addr
lcores = 1
idle_sleep_us = $idle_us
INI
		for ((i = 0; i < rooms; i++)); do
			printf '[room:bench%d]\nprivacy = open\n' "$i"
		done
	} > "$PB_DIR/parleyd.ini"
	MALLOC_PERTURB_=0 "${sched[@]}" taskset -c "$PB_SERVER_CPUS" "$PARLEYD" -c "$PB_DIR/parleyd.ini" \
		"${PB_SETS[@]}" > "$PB_DIR/parleyd.log" 2>&1 &
	PB_PID=$!
	for ((i = 0; i < 300; i++)); do
		[ -S "$PB_DIR/memif.sock" ] && return 0
		kill -0 "$PB_PID" 2>/dev/null || { PB_PID=; tail -20 "$PB_DIR/parleyd.log" >&2
			pb_die "parleyd exited during startup (its log is above)"; }
		sleep 0.1
	done
	pb_die "parleyd made no memif socket in 30 s"
}

memif_stop_server() {
	pb_stop_server
	rm -rf "/var/run/dpdk/parleyd-memif-$$"
}
trap 'memif_stop_server; pb_cleanup' EXIT

# Waits until parley-bench's progress (stderr file $1) shows the load, then
# the warm-up: the window starts about then.
wait_window() {
	local i
	for ((i = 0; i < 3000; i++)); do
		grep -q "deliveries" "$1" 2>/dev/null && break
		sleep 0.1
	done
	sleep "$(python3 -c "print(max(0, $warmup - 1))")"
}

# Waits (up to 20 s) for a 2-second sample in which the rest of the
# machine used under 0.3 CPUs: the figures are noisy on a shared host.
wait_quiet() {
	local i a b
	# Another load generator on the host first (up to 3 minutes): two
	# benchmarks on the same CPUs measure each other.
	for ((i = 0; i < 180; i++)); do
		pgrep -x parley-bench >/dev/null || break
		[ "$i" = 0 ] && pb_say "waiting for another parley-bench on this host to finish"
		sleep 1
	done
	for ((i = 0; i < 10; i++)); do
		a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
		sleep 2
		b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
		busy=$(echo "$a $b" | awk '{printf "%.2f", ($3 - $1) / ($4 - $2) * 2}')
		awk -v b="$busy" 'BEGIN { exit !(b < 0.3) }' && return 0
	done
	pb_say "the machine stayed busy ($busy CPUs used by others); measuring anyway"
}

total=$((rooms * members))
limit=$(python3 -c "print(int(60 + $total / 50 + $warmup + $duration + 40))")
lines=()
for ((run = 1; run <= PB_RUNS; run++)); do
	wait_quiet
	memif_start_server "$total"
	pb_say "run $run/$PB_RUNS: memif, $rooms rooms x $members members, $size-byte posts, offered $deliv_rate deliveries/s, fsync $PB_FSYNC"
	err=$PB_DIR/bench.err
	: > "$err"
	MALLOC_PERTURB_=0 timeout --signal=INT --kill-after=10 "$limit" \
		"${sched[@]}" taskset -c "$PB_BENCH_CPUS" "$BENCH" fanout --rooms "$rooms" --members "$members" \
		--size "$size" --deliv-rate "$deliv_rate" --duration "$duration" --warmup "$warmup" \
		-s "$addr:$port" -c "$PB_BENCH_CPUS" -p "$PB_PID" \
		--dpdk "net_memif0,role=client,socket=$PB_DIR/memif.sock,socket-abstract=no,rsize=13" \
		> "$PB_DIR/bench.out" 2> "$err" &
	bpid=$!
	extra=
	if [ "$perf_stat" = 1 ] || [ -n "$perf_record" ]; then
		wait_window "$err"
		if [ "$perf_stat" = 1 ]; then
			perf stat --per-thread -p "$PB_PID" -e task-clock,context-switches -x, \
				-o "$PB_DIR/perfstat.txt" -- sleep "$duration" 2>/dev/null
			# task-clock msec per thread -> CPUs; context switches per second.
			extra=$(awk -F, -v d="$duration" '
				$4 == "task-clock" { n = $1; sub(/-[0-9]+$/, "", n); gsub(/[^A-Za-z0-9_]/, "_", n)
					cpu[n] += $2 / 1000 / d }
				$4 == "context-switches" { cs += $2 }
				END { for (n in cpu) printf " srv_%s_cpus=%.3f", n, cpu[n]
					printf " srv_cs_per_s=%.0f", cs / d }' "$PB_DIR/perfstat.txt")
		else
			perf record -g -p "$PB_PID" -o "$perf_record" -- sleep "$duration" 2>/dev/null
		fi
	fi
	wait "$bpid" && rc=0 || rc=$?
	line=$(cat "$PB_DIR/bench.out")
	if [ "$rc" -ge 2 ] || [ -z "$line" ]; then
		tail -5 "$err" >&2
		pb_check_server
		pb_die "parley-bench failed (exit $rc)"
	fi
	pb_check_server
	memif_stop_server
	line="$line$extra"
	pb_say "run $run: $line"
	lines+=("$line")
done
result=$(pb_median "${lines[@]}")
result="$result bed=memif fsync=$PB_FSYNC idle_sleep_us=$idle_us nice=$nice fifo=$fifo server_cpus=$PB_SERVER_CPUS bench_cpus=$PB_BENCH_CPUS shared_cpu=$(pb_shared_cpu) runs=$PB_RUNS server_cpu_s_per_M_runs=$(pb_all server_cpu_s_per_M "${lines[@]}") gen_cpu_s_per_M_runs=$(pb_all gen_cpu_s_per_M "${lines[@]}")"
if [ "$(pb_get "$result" gen_bottleneck)" != 0 ]; then
	pb_say "WARNING: the load generator flagged itself in at least one run (see gen_cpu, other_cpu)"
fi
pb_result "$result"
