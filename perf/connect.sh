#!/bin/bash
# TLS handshakes and REGISTERs per second, each a closed loop per client:
#   handshakes  connect + full TLS 1.3 handshake + reset, again and again
#   signins     the same plus REGISTER, 407, REGISTER with Digest, 200
#   registers   authenticated REGISTERs on persistent connections
#
#   perf/connect.sh [--clients 64] [--duration 5] [--warmup 1] [common options]
#
# Result (one line): the three rates, parleyd's CPU milliseconds per
# operation (/proc/PID/stat over the window), errors, and whether the
# generator was the bottleneck (its own TLS work costs as much as the
# server's: a full handshake is ECDHE on both sides).
set -u
. "$(dirname "$0")/lib.sh"

clients=64 duration=5 warmup=1

while [ $# -gt 0 ]; do
	case "$1" in
	--clients) clients=$(pb_val "$@") || exit 2; shift 2 ;;
	--duration) duration=$(pb_val "$@") || exit 2; shift 2 ;;
	--warmup) warmup=$(pb_val "$@") || exit 2; shift 2 ;;
	-h|--help) pb_usage ;;
	*) pb_other_opt "$@"; shift "$PB_SHIFT" ;;
	esac
done
pb_init

limit=$(python3 -c "print(int($warmup + $duration + 60))")
lines=()
for ((run = 1; run <= PB_RUNS; run++)); do
	pb_start_server 0 "$clients"
	row=
	for pass in handshakes:0 signins:1 registers:1000000000; do
		name=${pass%%:*}
		regs=${pass#*:}
		pb_say "run $run/$PB_RUNS: $name, $clients clients"
		line=$(pb_bench "$limit" connect --clients "$clients" --regs-per-conn "$regs" \
			--duration "$duration" --warmup "$warmup") || exit 2
		pb_say "run $run $name: $line"
		case $name in
		handshakes) rate=$(pb_get "$line" handshakes_per_s) ;;
		*) rate=$(pb_get "$line" registers_per_s) ;;
		esac
		row="$row ${name}_per_s=$rate server_cpu_ms_per_${name%s}=$(pb_get "$line" server_cpu_ms_per_op) ${name}_errors=$(pb_get "$line" errors) ${name}_gen_cpu=$(pb_get "$line" gen_cpu) ${name}_gen_bottleneck=$(pb_get "$line" gen_bottleneck) ${name}_other_cpu=$(pb_get "$line" other_cpu)"
	done
	pb_stop_server
	lines+=("scenario=connect clients=$clients duration_s=$duration$row")
done
result=$(pb_median "${lines[@]}")
errors=0 gen=0
for k in handshakes signins registers; do
	errors=$((errors + $(pb_get "$result" ${k}_errors)))
	[ "$(pb_get "$result" ${k}_gen_bottleneck)" = 0 ] || gen=1
done
result="$result errors=$errors gen_bottleneck=$gen lcores=$PB_LCORES server_cpus=$PB_SERVER_CPUS bench_cpus=$PB_BENCH_CPUS shared_cpu=$(pb_shared_cpu) runs=$PB_RUNS handshakes_per_s_runs=$(pb_all handshakes_per_s "${lines[@]}") registers_per_s_runs=$(pb_all registers_per_s "${lines[@]}")"
[ "$gen" = 0 ] || pb_say "WARNING: the load generator was the bottleneck in some pass: those rates are the generator's limit, not the server's (see server_cpu_ms_per_*)"
pb_result "$result"
