#!/bin/bash
# The kernel backend's two I/O methods side by side ([io] kernel_io = epoll
# and io_uring): the fan-out scenario of fanout.sh at each offered rate, the
# methods alternating run by run on the same machine.
#
#   perf/kernel_io.sh [--rates "2000 20000"] [--rooms 100] [--members 20]
#                     [--size 200] [--duration 8] [--warmup 2] [common options]
#
# Prints one line per method and rate: the medians of fanout.sh's figures
# (delivered/s, p50/p99, server CPU-seconds per million deliveries, RSS),
# each run's CPU-s per million, and syscalls_per_deliv: the system calls
# parleyd's lcore made to wait and to move bytes (counter io_syscalls:
# epoll_wait, read, send; io_uring_enter) per delivery, the median of the
# per-second ratios while the load ran (sampled with parleyctl stats).
# --runs N repeats each method N times at each rate.
set -u
. "$(dirname "$0")/lib.sh"

rates="2000 20000" rooms=100 members=20 size=200 duration=8 warmup=2

while [ $# -gt 0 ]; do
	case "$1" in
	--rates) [ $# -ge 2 ] || pb_die "--rates needs a list"; rates=$2; shift 2 ;;
	--rooms) rooms=$(pb_val "$@") || exit 2; shift 2 ;;
	--members) members=$(pb_val "$@") || exit 2; shift 2 ;;
	--size) size=$(pb_val "$@") || exit 2; shift 2 ;;
	--duration) duration=$(pb_val "$@") || exit 2; shift 2 ;;
	--warmup) warmup=$(pb_val "$@") || exit 2; shift 2 ;;
	-h|--help) pb_usage ;;
	*) pb_other_opt "$@"; shift "$PB_SHIFT" ;;
	esac
done
pb_init
CTL=$PB_BUILD/control/parleyctl
[ -x "$CTL" ] || pb_die "$CTL is missing: run ninja -C $PB_BUILD"

total=$((rooms * members))
limit=$(python3 -c "print(int(60 + $total / 50 + $warmup + $duration + 40))")
base_sets=("${PB_SETS[@]}")
declare -A lines

# sample FILE: io_syscalls and deliveries once a second until killed.
sample() {
	while :; do
		"$CTL" -c "$PB_DIR/parleyd.ini" -j -t 2 stats 2>/dev/null | python3 -c '
import json, sys, time
t = json.load(sys.stdin)["total"]
print(time.monotonic(), t.get("io_syscalls", 0), t.get("deliveries", 0))' >> "$1" 2>/dev/null
		sleep 1
	done
}

for rate in $rates; do
	for ((run = 1; run <= PB_RUNS; run++)); do
		for io in epoll io_uring; do
			PB_SETS=("${base_sets[@]}" --set "io.kernel_io=$io")
			pb_start_server "$rooms" "$total"
			samples=$PB_DIR/samples
			: > "$samples"
			sample "$samples" &
			sampler=$!
			pb_say "run $run/$PB_RUNS, $io: $rooms rooms x $members members, offered $rate deliveries/s"
			line=$(pb_bench "$limit" fanout --rooms "$rooms" --members "$members" \
				--size "$size" --deliv-rate "$rate" --duration "$duration" \
				--warmup "$warmup") || exit 2
			kill "$sampler" 2>/dev/null
			wait "$sampler" 2>/dev/null
			pb_stop_server
			spd=$(python3 - "$samples" "$rate" <<'EOF'
import sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
rate = float(sys.argv[2])
r = []
for (t0, s0, d0), (t1, s1, d1) in zip(rows, rows[1:]):
    if t1 > t0 and (d1 - d0) / (t1 - t0) >= 0.5 * rate:
        r.append((s1 - s0) / (d1 - d0))
r.sort()
print("%.3f" % r[len(r) // 2] if r else "-1")
EOF
)
			line="$line syscalls_per_deliv=$spd"
			pb_say "run $run, $io: $line"
			lines[$io,$rate]="${lines[$io,$rate]:-}${lines[$io,$rate]:+|}$line"
		done
	done
done
for rate in $rates; do
	for io in epoll io_uring; do
		IFS='|' read -r -a runs <<<"${lines[$io,$rate]}"
		result=$(pb_median "${runs[@]}")
		result="kernel_io=$io $result lcores=$PB_LCORES fsync=$PB_FSYNC runs=$PB_RUNS cpu_s_per_M_runs=$(pb_all server_cpu_s_per_M "${runs[@]}") p99_ms_runs=$(pb_all p99_ms "${runs[@]}")"
		pb_result "$result"
	done
done
