#!/bin/bash
# The three ways parleyd moves bytes, side by side in one invocation: the
# kernel backend on epoll, the kernel backend on io_uring ([io] kernel_io),
# and the dpdk backend on the kernel-free memif bed (perf/memif.sh). The
# same fan-out workload for each (R rooms x M members, S-byte posts over
# TLS, fsync on unless --fsync 0), the backends alternating run by run at
# each offered rate, so that the host's drift hits them alike.
#
#   perf/backends.sh [--rates "2000 20000 40000"] [--rooms 100] [--members 20]
#                    [--size 200] [--duration 8] [--warmup 2]
#                    [--backends "epoll io_uring memif"] [common options]
#
# Prints one line per backend and rate: backend=.. rate=.. and the medians of
# the single runs' figures (delivered/s, p50/p99, server CPU-seconds per
# million deliveries, generator CPU, other_cpu, gen_bottleneck: the worst
# run), then each run's CPU-s per million. --runs N: N runs of each backend
# at each rate. Common options (--build, --fsync, --fifo, --set ...) are
# passed to every run; --fifo 10 is advised on a shared host.
set -u
. "$(dirname "$0")/lib.sh"

rates="2000 20000 40000" rooms=100 members=20 size=200 duration=8 warmup=2
backends="epoll io_uring memif"
pass=()

while [ $# -gt 0 ]; do
	case "$1" in
	--rates) [ $# -ge 2 ] || pb_die "--rates needs a list"; rates=$2; shift 2 ;;
	--backends) [ $# -ge 2 ] || pb_die "--backends needs a list"; backends=$2; shift 2 ;;
	--rooms) rooms=$(pb_val "$@") || exit 2; shift 2 ;;
	--members) members=$(pb_val "$@") || exit 2; shift 2 ;;
	--size) size=$(pb_val "$@") || exit 2; shift 2 ;;
	--duration) duration=$(pb_val "$@") || exit 2; shift 2 ;;
	--warmup) warmup=$(pb_val "$@") || exit 2; shift 2 ;;
	-h|--help) pb_usage ;;
	--runs) [ $# -ge 2 ] || pb_die "--runs needs a value"; PB_RUNS=$2; shift 2 ;;
	*)
		# Every other common option goes to each run as given.
		pb_common_opt "$@"
		[ "$PB_SHIFT" -gt 0 ] || pb_die "unknown option '$1' (--help)"
		pass+=("${@:1:$PB_SHIFT}")
		shift "$PB_SHIFT" ;;
	esac
done
case "$PB_RUNS" in ''|*[!0-9]*|0) pb_die "--runs wants a positive number" ;; esac
for b in $backends; do
	case "$b" in epoll|io_uring|memif) ;; *) pb_die "unknown backend '$b'" ;; esac
done
here=$(cd "$(dirname "$0")" && pwd)
declare -A lines

# one BACKEND RATE: one run; its result line on stdout.
one() {
	local common=(--rooms "$rooms" --members "$members" --size "$size" --deliv-rate "$2"
		      --duration "$duration" --warmup "$warmup" --runs 1 "${pass[@]}")

	case "$1" in
	epoll) "$here/fanout.sh" "${common[@]}" --set io.kernel_io=epoll ;;
	io_uring) "$here/fanout.sh" "${common[@]}" --set io.kernel_io=io_uring ;;
	memif) "$here/memif.sh" "${common[@]}" ;;
	esac | tail -1
}

for rate in $rates; do
	for ((run = 1; run <= PB_RUNS; run++)); do
		for b in $backends; do
			pb_say "rate $rate, run $run/$PB_RUNS: $b"
			line=$(one "$b" "$rate")
			[ -n "$line" ] || pb_die "the $b run at $rate/s printed no result"
			pb_say "$b $rate: $(pb_get "$line" server_cpu_s_per_M) CPU-s per 1M, p50 $(pb_get "$line" p50_ms) ms"
			lines[$b,$rate]+="$line"$'\n'
		done
	done
done

for rate in $rates; do
	for b in $backends; do
		mapfile -t runs < <(printf '%s' "${lines[$b,$rate]}")
		echo "backend=$b rate=$rate $(pb_median "${runs[@]}" | tr ' ' '\n' | grep -E '^(delivered_per_s|p50_ms|p99_ms|server_cpu_s_per_M|server_cpu_s_per_M_others|gen_cpu|gen_cpu_s_per_M|other_cpu|gen_bottleneck|missing|dup|server_rss_kb)=' | tr '\n' ' ')server_cpu_s_per_M_runs=$(pb_all server_cpu_s_per_M "${runs[@]}")"
	done
done
