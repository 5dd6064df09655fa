#!/bin/bash
# Replication's cost on the post path (array failover): a throwaway etcd and
# one node homing every room, with no replica ([array] alone = unreplicated)
# and then with a second node as the rooms' replica (a post is answered once
# durable on both). Clients post at node 1 only, so the difference is the
# replica's round trip and its group commit.
#
#   perf/repl.sh [--clients 10] [--posts 100] [--gap-ms 20] [--runs 3]
#                [--build DIR]
#
# Result: one line per mode (medians over the runs): post latency p50/p99
# (post -> SIP 200, durable before it) and the CPU-ms of all parleyd nodes
# per post (from /proc/PID/stat over the run), then the ratios.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${PARLEY_BUILDDIR:-$top/build}
clients=10 posts=100 gap=20 runs=3

while [ $# -gt 0 ]; do
	case "$1" in
	--clients) clients=$2; shift 2 ;;
	--posts) posts=$2; shift 2 ;;
	--gap-ms) gap=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2 ;;
	*) echo "repl.sh: unknown option '$1' (--help)" >&2; exit 2 ;;
	esac
done
post=$build/perf/parley-repl-post
for b in "$build/router/parleyd" "$build/control/parleyctl" "$post"; do
	[ -x "$b" ] || { echo "repl.sh: no $b (build first)" >&2; exit 2; }
done
dir=$(mktemp -d /tmp/parley-repl-XXXXXX)
pids=()

stop_all() {
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	pids=()
	"$top/tests/array/etcd.sh" stop "$dir/etcd" >/dev/null 2>&1 || true
	rm -rf "$dir/etcd"
}
trap 'stop_all; rm -rf "$dir"' EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

(cd "$dir" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout ca.key -out ca.pem -subj /CN=parley-repl-ca -days 2 &&
	for n in node1 node2; do
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout $n.key -out $n.csr -subj /CN=$n &&
		openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-out $n.pem -days 2
	done) >/dev/null 2>&1
for i in $(seq 1 "$clients"); do
	printf 'user%d@example.com:example.com:%s\n' "$i" \
		"$(printf 'user%d@example.com:example.com:pw' "$i" | md5sum | cut -d' ' -f1)"
done >"$dir/users.htdigest"

# cpu_ticks PID...: utime + stime of the processes, in clock ticks.
cpu_ticks() {
	local t=0 pid
	for pid in "$@"; do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
	done
	echo "$t"
}

# start_node I CLAIM_DELAY_MS: node I of the array in $dir/node<I>.
start_node() {
	local i=$1 nd=$dir/node$1
	rm -rf "$nd"
	mkdir -p "$nd"
	cat >"$nd/parleyd.ini" <<INI
[server]
domain = example.com
data_dir = $nd
node_id = $i
log_level = warning
[sip]
listen = 127.0.0.1:$(free_port)
[auth]
htdigest = $dir/users.htdigest
[web]
enabled = false
[room:R]
privacy = open
[array]
etcd = $url
lease_ttl_s = 5
claim_delay_ms = $2
alone = unreplicated
peer_listen = 127.0.0.1:$(free_port)
ca = $dir/ca.pem
cert = $dir/node$i.pem
key = $dir/node$i.key
INI
	"$build/router/parleyd" -c "$nd/parleyd.ini" >"$nd/parleyd.log" 2>&1 &
	pids+=($!)
}

# wait_json I PYEXPR: until parleyctl array on node I satisfies PYEXPR (a).
wait_json() {
	local t
	for t in $(seq 200); do
		"$build/control/parleyctl" -j -c "$dir/node$1/parleyd.ini" array 2>/dev/null |
			python3 -c "import json,sys; a=json.load(sys.stdin); sys.exit(0 if ($2) else 1)" \
			2>/dev/null && return 0
		sleep 0.1
	done
	echo "repl.sh: node $1 never got to: $2" >&2
	tail -20 "$dir/node$1/parleyd.log" >&2
	exit 1
}

one_run() {
	local mode=$1 t0 t1 line posts_done hz
	url=$("$top/tests/array/etcd.sh" start "$dir/etcd")
	start_node 1 0
	wait_json 1 "a['homes']['unhomed'] == 0 and a['homes']['count'] >= 1"
	if [ "$mode" = replicated ]; then
		start_node 2 600000
		wait_json 1 "a['homes']['replication'] == 'on' and a['homes']['unreplicated'] == 0"
	fi
	port=$(sed -n 's/^listen = 127.0.0.1:\([0-9]*\)$/\1/p' "$dir/node1/parleyd.ini" | head -1)
	t0=$(cpu_ticks "${pids[@]}")
	line=$("$post" 127.0.0.1 "$port" R "$clients" "$posts" "$gap")
	t1=$(cpu_ticks "${pids[@]}")
	hz=$(getconf CLK_TCK)
	posts_done=$(sed -n 's/.*accepted=\([0-9]*\).*/\1/p' <<<"$line")
	stop_all
	echo "$line cpu_ms_per_post=$(python3 -c "print(round(($t1 - $t0) * 1000 / $hz / max(1, $posts_done), 3))")"
}

median() {	# median KEY LINE...
	local key=$1
	shift
	printf '%s\n' "$@" | sed -n "s/.*\(^\| \)$key=\([^ ]*\).*/\2/p" | sort -g |
		awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}'
}

declare -A res
for mode in unreplicated replicated; do
	lines=()
	for r in $(seq 1 "$runs"); do
		l=$(one_run "$mode")
		echo "repl.sh: $mode run $r: $l" >&2
		lines+=("$l")
	done
	for k in p50_ms p99_ms cpu_ms_per_post; do
		res[$mode.$k]=$(median "$k" "${lines[@]}")
	done
	echo "mode=$mode clients=$clients posts_each=$posts gap_ms=$gap runs=$runs" \
		"p50_ms=${res[$mode.p50_ms]} p99_ms=${res[$mode.p99_ms]}" \
		"cpu_ms_per_post=${res[$mode.cpu_ms_per_post]}"
done
python3 -c "
u50, u99, uc = ${res[unreplicated.p50_ms]}, ${res[unreplicated.p99_ms]}, ${res[unreplicated.cpu_ms_per_post]}
r50, r99, rc = ${res[replicated.p50_ms]}, ${res[replicated.p99_ms]}, ${res[replicated.cpu_ms_per_post]}
print('ratio replicated/unreplicated: p50 %.2f p99 %.2f cpu_per_post %.2f' % (r50 / u50, r99 / u99, rc / uc))"
