#!/bin/bash
# Try the node array on one machine: starts a throwaway etcd and N parleyd
# nodes on 127.0.0.1 that join it, prints how to reach them, and stops
# everything on Ctrl-C (or after --for SECONDS).
#
#   perf/array.sh [--nodes 3] [--dir DIR] [--sip-port 5061] [--for SECONDS]
#                 [--build DIR]
#
# Node i (1..N) listens for SIP over TLS on 127.0.0.1:<sip-port + i - 1>, its
# Web service on 127.0.0.1:<8443 + i - 1>, keeps its data and log in
# DIR/node<i> (DIR: a new temporary directory unless given), and serves node
# 1's generated certificate, so that a client pinning it can follow a
# redirect to any node. Users: alice@example.com (alice-pw), bob@example.com
# (bob-pw). A REGISTER to any node is served or redirected (301) to the
# user's node; `parleyctl -c DIR/node1/parleyd.ini array` shows the nodes.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
nodes=3 dir= sip_port=5061 run_for=0
build=${PARLEY_BUILDDIR:-$top/build}

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--nodes) nodes=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--sip-port) sip_port=$2; shift 2 ;;
	--for) run_for=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	-h|--help) usage ;;
	*) echo "array.sh: unknown option '$1' (--help)" >&2; exit 2 ;;
	esac
done
[ -x "$build/router/parleyd" ] || { echo "array.sh: no $build/router/parleyd (build first)" >&2; exit 2; }
[ -n "$dir" ] || dir=$(mktemp -d /tmp/parley-array-XXXXXX)
mkdir -p "$dir"
pids=()

stop_all() {
	trap - INT TERM EXIT
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	"$top/tests/array/etcd.sh" stop "$dir/etcd"
	echo "array.sh: stopped; logs and data in $dir" >&2
}

ha1() {
	printf '%s:example.com:%s' "$1" "$2" | md5sum | cut -d' ' -f1
}

url=$("$top/tests/array/etcd.sh" start "$dir/etcd")
trap stop_all INT TERM EXIT
echo "array.sh: etcd at $url" >&2
for i in $(seq 1 "$nodes"); do
	nd=$dir/node$i
	mkdir -p "$nd"
	{
		echo "alice@example.com:example.com:$(ha1 alice@example.com alice-pw)"
		echo "bob@example.com:example.com:$(ha1 bob@example.com bob-pw)"
	} >"$nd/users.htdigest"
	tls=
	[ "$i" -gt 1 ] && tls="[tls]
cert = $dir/node1/tls/cert.pem
key = $dir/node1/tls/key.pem"
	cat >"$nd/parleyd.ini" <<INI
[server]
domain = example.com
data_dir = $nd
node_id = $i
[sip]
listen = 127.0.0.1:$((sip_port + i - 1))
[web]
listen = 127.0.0.1:$((8443 + i - 1))
$tls
[array]
etcd = $url
INI
	"$build/router/parleyd" -c "$nd/parleyd.ini" >"$nd/parleyd.log" 2>&1 &
	pids+=($!)
	# Node 1 first: it generates the certificate the others serve.
	for _ in $(seq 100); do
		grep -q "ARRAY: in the array" "$nd/parleyd.log" && break
		kill -0 "${pids[-1]}" 2>/dev/null || { cat "$nd/parleyd.log" >&2; exit 1; }
		sleep 0.1
	done
	grep -q "ARRAY: in the array" "$nd/parleyd.log" || { cat "$nd/parleyd.log" >&2; exit 1; }
	echo "array.sh: node $i on 127.0.0.1:$((sip_port + i - 1)) ($nd)" >&2
done
cat >&2 <<TXT
array.sh: $nodes nodes up. Try:
  $build/router/parleyctl -c $dir/node1/parleyd.ini array
  pidgin-sipe: account alice@example.com, server 127.0.0.1:$sip_port, TLS, certificate
    $dir/node1/tls/cert.pem; node 1 serves it or redirects it to its node
Ctrl-C stops the nodes and etcd.
TXT
if [ "$run_for" -gt 0 ]; then
	sleep "$run_for"
	"$build/router/parleyctl" -j -c "$dir/node1/parleyd.ini" array
else
	wait "${pids[0]}" || true
fi
