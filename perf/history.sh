#!/bin/bash
# History (backchat): cmd:bccontext requests per second on one room that
# holds many messages, each client a closed loop (request, rpl:bccontext,
# next request) asking for the last CNT messages, as pidgin-sipe does after
# every join.
#
#   perf/history.sh [--messages 100000] [--clients 10] [--cnt 25]
#                   [--duration 10] [--warmup 1] [common options]
#
# The room is filled first through ordinary posts (4 members, pipelined,
# as fast as parleyd acknowledges them). Unless --fsync 1 is given the server
# runs with [storage] durability_unsafe_no_fsync = true, for a fast fill:
# reads do not fsync, so that does not change what is measured.
#
# Result (one line): requests per second, reply latency p50/p90/p99,
# messages per reply, errors, parleyd's CPU ms per request, the fill's rate.
set -u
. "$(dirname "$0")/lib.sh"

messages=100000 clients=10 cnt=25 duration=10 warmup=1 fsync_given=0

while [ $# -gt 0 ]; do
	case "$1" in
	--messages) messages=$(pb_val "$@") || exit 2; shift 2 ;;
	--clients) clients=$(pb_val "$@") || exit 2; shift 2 ;;
	--cnt) cnt=$(pb_val "$@") || exit 2; shift 2 ;;
	--duration) duration=$(pb_val "$@") || exit 2; shift 2 ;;
	--warmup) warmup=$(pb_val "$@") || exit 2; shift 2 ;;
	-h|--help) pb_usage ;;
	*) [ "$1" = --fsync ] && fsync_given=1
	   pb_other_opt "$@"; shift "$PB_SHIFT" ;;
	esac
done
[ "$fsync_given" = 1 ] || PB_FSYNC=0
pb_init

users=$((clients > 4 ? clients : 4))
seed_limit=$(python3 -c "print(int(120 + $messages / 200))")
limit=$(python3 -c "print(int(60 + $warmup + $duration + 60))")
lines=()
for ((run = 1; run <= PB_RUNS; run++)); do
	pb_start_server 1 "$users" "$(printf '[chat]\nhistory_max = %d' $((cnt > 200 ? cnt : 200)))"
	pb_say "run $run/$PB_RUNS: filling room bench0 with $messages messages"
	seed=$(pb_bench $((seed_limit + 60)) fanout --rooms 1 --members 4 --rate 0 --inflight 64 \
		--posts "$messages" --warmup 0 --duration "$seed_limit" --drain 10) || exit 2
	ok=$(pb_get "$seed" posts_ok)
	[ "$ok" = "$messages" ] || pb_die "the fill stored $ok of $messages posts: $seed"
	pb_say "filled: $(pb_get "$seed" posts_per_s) posts/s"
	pb_say "run $run/$PB_RUNS: $clients clients asking for the last $cnt"
	line=$(pb_bench "$limit" history --rooms 1 --members "$clients" --cnt "$cnt" \
		--duration "$duration" --warmup "$warmup") || exit 2
	pb_stop_server
	pb_say "run $run: $line"
	lines+=("$line messages=$messages fill_posts_per_s=$(pb_get "$seed" posts_per_s)")
done
result=$(pb_median "${lines[@]}")
result="$result lcores=$PB_LCORES fsync=$PB_FSYNC server_cpus=$PB_SERVER_CPUS bench_cpus=$PB_BENCH_CPUS shared_cpu=$(pb_shared_cpu) runs=$PB_RUNS requests_per_s_runs=$(pb_all requests_per_s "${lines[@]}")"
pb_result "$result"
