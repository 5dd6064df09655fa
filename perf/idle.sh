#!/bin/bash
# Idle connections: N clients sign in (TLS, REGISTER with Digest, Lookup and
# Channel dialogs), join rooms of M members and then stay idle; what does
# each cost the server in memory?
#
#   perf/idle.sh [--conns 10000] [--members 50] [--hold 5] [common options]
#
# Result (one line): connections joined, parleyd's RSS before any client and
# after the hold, the difference per connection (server_bytes_per_conn; it
# includes each client's dialogs, registration, room presence and TLS
# state), its peak RSS, and its CPU while idle.
#
# Limits: parleyd and the generator each need about N file descriptors; the
# script raises `ulimit -n` to the hard limit and stops with an explanation
# if that is too low. Local ports: the generator spreads its connections
# over 127.0.0.1..127.0.0.K (about 16,000 each). parleyd's [net] max_conns
# (60,000 per lcore by default) is raised when N needs it.
set -u
. "$(dirname "$0")/lib.sh"

conns=10000 members=50 hold=5

while [ $# -gt 0 ]; do
	case "$1" in
	--conns) conns=$(pb_val "$@") || exit 2; shift 2 ;;
	--members) members=$(pb_val "$@") || exit 2; shift 2 ;;
	--hold) hold=$(pb_val "$@") || exit 2; shift 2 ;;
	-h|--help) pb_usage ;;
	*) pb_other_opt "$@"; shift "$PB_SHIFT" ;;
	esac
done
pb_init

# Rooms of <members> (more members per room when 256 rooms are not enough).
[ "$members" -ge 1 ] || pb_die "--members must be at least 1"
rooms=$(( (conns + members - 1) / members ))
if [ "$rooms" -gt 256 ]; then
	members=$(( (conns + 255) / 256 ))
	rooms=$(( (conns + members - 1) / members ))
fi
n=$((rooms * members))
[ "$n" = "$conns" ] || pb_say "rounding $conns up to $n connections ($rooms rooms x $members members)"
need=$((n + 256))
have=$(ulimit -n)
if [ "$have" != unlimited ] && [ "$have" -lt "$need" ]; then
	pb_die "$n connections need about $need file descriptors in parleyd and in the generator, but this shell may open $have (hard limit $(ulimit -Hn)). Raise the hard limit as root (ulimit -Hn $need, LimitNOFILE= for a service; it needs CAP_SYS_RESOURCE), or ask for fewer with --conns $((have - 256))."
fi
extra=
if [ "$n" -gt $((60000 * PB_LCORES)) ]; then
	extra=$(printf '[net]\nmax_conns = %d' "$n")
fi
limit=$(python3 -c "print(int(120 + $n / 100 + 3 + $hold + 60))")
lines=()
for ((run = 1; run <= PB_RUNS; run++)); do
	pb_start_server "$rooms" "$n" "$extra"
	pb_say "run $run/$PB_RUNS: $n connections in $rooms rooms of $members, then $hold s idle"
	line=$(pb_bench "$limit" idle --rooms "$rooms" --members "$members" --warmup 3 \
		--duration "$hold" --setup-timeout $((60 + n / 100)) --setup-conc 128) || exit 2
	pb_stop_server
	pb_say "run $run: $line"
	lines+=("$line")
done
result=$(pb_median "${lines[@]}")
result="$result lcores=$PB_LCORES server_cpus=$PB_SERVER_CPUS bench_cpus=$PB_BENCH_CPUS runs=$PB_RUNS server_bytes_per_conn_runs=$(pb_all server_bytes_per_conn "${lines[@]}")"
pb_result "$result"
