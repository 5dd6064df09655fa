#!/bin/bash
# The fanout scenario of perf/fanout.sh with the kernel backend and the dpdk
# backend side by side, in one run, on this machine.
#
#   tests/dpdk/fanout_compare.sh [BUILD_DIR] [ROOMS] [MEMBERS] [DELIV_RATE] [DURATION]
#
# Both servers run in one private network namespace with the same config,
# rooms and users, pinned to CPU 0; parley-bench runs pinned to CPU 1:
#   kernel  parleyd on 127.0.0.1:5061 (epoll, kernel TCP over loopback)
#   dpdk    parleyd on 198.18.0.2:5061 behind a net_tap port (user-space TCP)
# parley-bench only sends load to loopback addresses, so for the dpdk run
# the namespace's nftables DNAT 127.0.0.2:5061 to 198.18.0.2:5061 (and SNAT
# to 198.18.0.1): the clients' packets cross the TAP exactly as a remote
# peer's would. Prints one parley-bench result line per backend. Root.
set -u
build=${1:-${PARLEY_BUILDDIR:-build}}
rooms=${2:-100}
members=${3:-20}
deliv=${4:-2000}
duration=${5:-10}
warmup=2
ns=pdkcmp$$
ifc=pkc$$
bench=$build/perf/parley-bench
parleyd=$build/router/parleyd
dir=$(mktemp -d /tmp/parley-cmp-XXXXXX)
pid=

die() { echo "fanout_compare: $*" >&2; exit 1; }
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	ip netns del "$ns" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
[ -x "$bench" ] && [ -x "$parleyd" ] || die "no parleyd/parley-bench in $build"
ip netns add "$ns" || die "cannot create a namespace (root?)"
ip -n "$ns" link set lo up
"$bench" users $((rooms * members)) > "$dir/users.htdigest"

conf() {	# $1 = backend, $2 = listen address
	cat <<INI
[server]
domain = example.com
data_dir = $dir/data-$1
log_level = notice
drain_timeout_s = 3
[sip]
listen = $2:5061
[auth]
htdigest = $dir/users.htdigest
fail_max = 1000000
[storage]
durability_unsafe_no_fsync = true
[web]
enabled = false
[io]
backend = $1
[dpdk]
lcores = 1
port = net_tap0,iface=$ifc,mac=02:00:c6:12:00:02
addr = 198.18.0.2
INI
	for ((i = 0; i < rooms; i++)); do printf '[room:bench%d]\nprivacy = open\n' "$i"; done
}

run() {		# $1 = backend, $2 = listen address, $3 = address parley-bench uses
	local line
	conf "$1" "$2" > "$dir/$1.ini"
	MALLOC_PERTURB_=0 ip netns exec "$ns" taskset -c 0 "$parleyd" -c "$dir/$1.ini" \
		> "$dir/$1.log" 2>&1 &
	pid=$!
	if [ "$1" = dpdk ]; then
		for _ in $(seq 100); do ip -n "$ns" link show "$ifc" >/dev/null 2>&1 && break; sleep 0.1; done
		ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1"
		ip -n "$ns" link set "$ifc" address 02:00:c6:12:00:01
		ip -n "$ns" addr add 198.18.0.1/24 dev "$ifc"
		ip -n "$ns" link set "$ifc" up
		ip -n "$ns" addr add 127.0.0.2/8 dev lo 2>/dev/null
		ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.route_localnet=1 \
			"net.ipv4.conf.$ifc.route_localnet=1"
		ip netns exec "$ns" nft -f - <<EOF || die "nftables NAT"
table ip pdkcmp {
  chain out { type nat hook output priority -100; ip daddr 127.0.0.2 tcp dport 5061 dnat to 198.18.0.2:5061; }
  chain post { type nat hook postrouting priority 100; oifname "$ifc" snat to 198.18.0.1; }
}
EOF
	fi
	for _ in $(seq 300); do
		ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$3/5061" 2>/dev/null && break
		sleep 0.1
	done
	line=$(ip netns exec "$ns" taskset -c 1 "$bench" fanout --rooms "$rooms" \
		--members "$members" --size 200 --deliv-rate "$deliv" --duration "$duration" \
		--warmup "$warmup" --src-addrs 1 -s "$3:5061" -c 1 -p "$pid" -q)
	# Exit 1 is a finished run with trouble (late, missing): still a result.
	[ -n "$line" ] || { tail -20 "$dir/$1.log" >&2; die "parley-bench failed against the $1 backend"; }
	[ "$1" = dpdk ] && { ip -n "$ns" -s link show "$ifc"
		awk '{print "softnet cpu" NR-1 ": dropped 0x" $2 ", squeezed 0x" $3}' /proc/net/softnet_stat
	} > "$dir/link.txt"
	kill -TERM "$pid"; wait "$pid"; pid=
	echo "backend=$1 $line"
}

run kernel 127.0.0.1 127.0.0.1
run dpdk 198.18.0.2 127.0.0.2
grep -hE "IO: dpdk (lcore|port)" "$dir/dpdk.log" | sed 's/^[^ ]* [a-z]* /# /'
sed 's/^/# /' "$dir/link.txt"
