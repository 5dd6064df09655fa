#!/bin/bash
# Room fan-out across an array: perf/fanout.sh's scenario (R rooms x M
# members, every member posting in turn) against N nodes joined through a
# throwaway etcd, with peer links (a cluster CA made here) and the clients
# spread over the nodes round-robin (client n on node n % N, placement
# mark), so every room has members on every node and its posts are relayed
# from the room's home to the others (dataplane/chat/fanout_peer.h).
#
#   perf/array_bench.sh [--nodes 3] [--rooms 30] [--members 21] [--size 200]
#                       [--deliv-rate 3000 | --rate POSTS_PER_S]
#                       [--duration 10] [--warmup 3] [common options]
#
# Result (one line): parley-bench's figures (deliveries/s, delivery latency
# p50/p99 post sent -> received, whatever node the author and the reader
# are on; cpu_s_per_m_deliveries summed over every node's process) plus
# nodes=N and, from the nodes' counters over the whole run, relays_per_post
# (RELAY frames sent per post sequenced) and forwarded_per_post. With
# --nodes 1 it is the same scenario on a one-node array (nothing crosses a
# link): run both and compare. All nodes share --server-cpus.
set -u
. "$(dirname "$0")/lib.sh"

nodes=3 rooms=30 members=21 size=200 rate= deliv_rate=3000 duration=10 warmup=3

while [ $# -gt 0 ]; do
	case "$1" in
	--nodes) nodes=$(pb_val "$@") || exit 2; shift 2 ;;
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
[ "$nodes" -ge 1 ] && [ "$nodes" -le 8 ] || pb_die "--nodes wants 1..8"
top=$(cd "$(dirname "$0")/.." && pwd)
CTL=$PB_BUILD/control/parleyctl
[ -x "$CTL" ] || CTL=$PB_BUILD/router/parleyctl
command -v etcd >/dev/null || pb_die "etcd is missing (apt-get install etcd-server)"
command -v openssl >/dev/null || pb_die "openssl is missing"

PB_DIR=$(mktemp -d /tmp/parley-abench-XXXXXX)
pids=()
stop_nodes() {
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	pids=()
}
cleanup() {
	stop_nodes
	"$top/tests/array/etcd.sh" stop "$PB_DIR/etcd" 2>/dev/null || true
	pb_cleanup
}
trap cleanup EXIT

total=$((rooms * members))
"$BENCH" users "$total" > "$PB_DIR/users.htdigest" || pb_die "cannot generate users"
(cd "$PB_DIR" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout ca.key -out ca.pem -subj /CN=bench-ca -days 2 &&
 for i in $(seq 1 "$nodes"); do
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout node$i.key \
		-out node$i.csr -subj /CN=node$i &&
	openssl x509 -req -in node$i.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
		-out node$i.pem -days 2 || exit 1
 done) >/dev/null 2>&1 || pb_die "openssl could not make the cluster certificates"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts the nodes, waits until every link is up and every room homed.
start_nodes() {
	local url i nd servers= nofsync=false
	[ "$PB_FSYNC" = 0 ] && nofsync=true
	rm -rf "$PB_DIR/etcd"
	url=$("$top/tests/array/etcd.sh" start "$PB_DIR/etcd") || pb_die "etcd did not start"
	for i in $(seq 1 "$nodes"); do
		nd=$PB_DIR/node$i
		rm -rf "$nd"
		mkdir -p "$nd"
		port[$i]=$(free_port)
		{
			cat <<INI
[server]
domain = example.com
data_dir = $nd
node_id = $i
log_level = warning
drain_timeout_s = 3
[sip]
listen = 127.0.0.1:${port[$i]}
[auth]
htdigest = $PB_DIR/users.htdigest
fail_max = 1000000
[dpdk]
lcores = $PB_LCORES
[storage]
durability_unsafe_no_fsync = $nofsync
[web]
enabled = false
[array]
etcd = $url
lease_ttl_s = 10
keepalive_s = 2
peer_listen = 127.0.0.1:$(free_port)
ca = $PB_DIR/ca.pem
cert = $PB_DIR/node$i.pem
key = $PB_DIR/node$i.key
INI
			for ((r = 0; r < rooms; r++)); do
				printf '[room:bench%d]\nprivacy = open\n' "$r"
			done
		} > "$nd/parleyd.ini"
		taskset -c "$PB_SERVER_CPUS" "$PARLEYD" -c "$nd/parleyd.ini" "${PB_SETS[@]}" \
			> "$nd/parleyd.log" 2>&1 &
		pids+=($!)
		servers=${servers:+$servers,}127.0.0.1:${port[$i]}
	done
	SERVERS=$servers
	PIDS=$(IFS=,; echo "${pids[*]}")
	for i in $(seq 1 "$nodes"); do
		for ((t = 0; t < 300; t++)); do
			"$CTL" -j -c "$PB_DIR/node$i/parleyd.ini" array 2>/dev/null | python3 -c '
import json, sys
a = json.load(sys.stdin)
links = (a.get("peers") or {}).get("links") or []
ok = a["homes"]["unhomed"] == 0 and len(a["homes"]["rooms"]) >= '"$rooms"' and \
     sum(1 for l in links if l["state"] == "up") >= '"$nodes"' - 1
sys.exit(0 if ok else 1)' && break
			kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { tail -20 "$PB_DIR/node$i/parleyd.log" >&2; pb_die "node $i exited"; }
			sleep 0.2
		done
		[ "$t" -lt 300 ] || pb_die "node $i: links or homes not ready after 60 s"
	done
}

# Sum of a counter over the nodes.
counter() {
	local i sum=0 v
	for i in $(seq 1 "$nodes"); do
		v=$("$CTL" -j -c "$PB_DIR/node$i/parleyd.ini" stats 2>/dev/null |
			python3 -c "import json,sys; print(json.load(sys.stdin)['total'].get('$1', 0))")
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

if [ -n "$rate" ]; then load=(--rate "$rate"); else load=(--deliv-rate "$deliv_rate"); fi
limit=$(python3 -c "print(int(60 + $total / 50 + $warmup + $duration + 40))")
lines=()
for ((run = 1; run <= PB_RUNS; run++)); do
	start_nodes
	pb_say "run $run/$PB_RUNS: $nodes node(s) on CPU $PB_SERVER_CPUS, $rooms rooms x $members members spread over them, $size-byte messages, offered ${rate:+$rate posts/s}${deliv_rate:+$deliv_rate deliveries/s}"
	line=$(timeout --signal=INT --kill-after=10 "$limit" taskset -c "$PB_BENCH_CPUS" "$BENCH" \
		fanout --rooms "$rooms" --members "$members" --size "$size" "${load[@]}" \
		--duration "$duration" --warmup "$warmup" -s "$SERVERS" -c "$PB_BENCH_CPUS" \
		-p "$PIDS") || pb_die "parley-bench failed"
	seqd=$(counter posts_sequenced)
	relays=$(counter peer_relays_out)
	fwd=$(counter peer_posts_forwarded)
	line="$line nodes=$nodes relays_per_post=$(python3 -c "print(round($relays / max($seqd, 1), 3))") forwarded_per_post=$(python3 -c "print(round($fwd / max($seqd, 1), 3))")"
	stop_nodes
	"$top/tests/array/etcd.sh" stop "$PB_DIR/etcd" >/dev/null 2>&1 || true
	pb_say "run $run: $line"
	lines+=("$line")
done
result=$(pb_median "${lines[@]}")
result="$result lcores=$PB_LCORES fsync=$PB_FSYNC server_cpus=$PB_SERVER_CPUS bench_cpus=$PB_BENCH_CPUS shared_cpu=$(pb_shared_cpu) runs=$PB_RUNS"
pb_result "$result"
