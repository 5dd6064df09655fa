#!/bin/bash
# Room fan-out over TLS: R rooms x M members, every member posting in turn
# S-byte messages at a fixed offered rate; each post is delivered to all M
# present members (the author's echo included).
#
#   perf/fanout.sh [--rooms 100] [--members 20] [--size 200]
#                  [--deliv-rate 2000 | --rate POSTS_PER_S]
#                  [--duration 10] [--warmup 2] [common options]
#
# Result (one line): offered and delivered rates, delivery latency p50/p90/
# p99/p99.9 (post sent -> message received), post acknowledgement latency
# (post -> its SIP 200, which waits for the group commit), errors, missing
# and duplicate deliveries, parleyd's CPU-seconds per million deliveries
# (from /proc/PID/stat over the window; *_others excludes the author's echo,
# as ../shared/BENCHMARKS.md counts) and RSS, and whether the generator was
# the bottleneck (gen_bottleneck=1: do not trust the server figures).
set -u
. "$(dirname "$0")/lib.sh"

rooms=100 members=20 size=200 rate= deliv_rate=2000 duration=10 warmup=2

while [ $# -gt 0 ]; do
	case "$1" in
	--rooms) rooms=$(pb_val "$@") || exit 2; shift 2 ;;
	--members) members=$(pb_val "$@") || exit 2; shift 2 ;;
	--size) size=$(pb_val "$@") || exit 2; shift 2 ;;
	--rate) rate=$(pb_val "$@") || exit 2; deliv_rate=; shift 2 ;;
	--deliv-rate) deliv_rate=$(pb_val "$@") || exit 2; rate=; shift 2 ;;
	--duration) duration=$(pb_val "$@") || exit 2; shift 2 ;;
	--warmup) warmup=$(pb_val "$@") || exit 2; shift 2 ;;
	-h|--help) pb_usage ;;
	*) pb_other_opt "$@"; shift "$PB_SHIFT" ;;
	esac
done
pb_init

if [ -n "$rate" ]; then load=(--rate "$rate"); else load=(--deliv-rate "$deliv_rate"); fi
total=$((rooms * members))
limit=$(python3 -c "print(int(60 + $total / 50 + $warmup + $duration + 40))")
lines=()
for ((run = 1; run <= PB_RUNS; run++)); do
	pb_start_server "$rooms" "$total"
	pb_say "run $run/$PB_RUNS: $rooms rooms x $members members, $size-byte messages, offered ${rate:+$rate posts/s}${deliv_rate:+$deliv_rate deliveries/s}"
	line=$(pb_bench "$limit" fanout --rooms "$rooms" --members "$members" --size "$size" \
		"${load[@]}" --duration "$duration" --warmup "$warmup") || exit 2
	pb_stop_server
	pb_say "run $run: $line"
	lines+=("$line")
done
result=$(pb_median "${lines[@]}")
result="$result lcores=$PB_LCORES fsync=$PB_FSYNC server_cpus=$PB_SERVER_CPUS bench_cpus=$PB_BENCH_CPUS shared_cpu=$(pb_shared_cpu) runs=$PB_RUNS delivered_per_s_runs=$(pb_all delivered_per_s "${lines[@]}") p99_ms_runs=$(pb_all p99_ms "${lines[@]}")"
if [ "$(pb_get "$result" gen_bottleneck)" != 0 ]; then
	pb_say "WARNING: the load generator was the bottleneck in at least one run: the server figures are a lower bound"
fi
pb_result "$result"
