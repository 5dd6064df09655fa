#!/bin/bash
# The Web service with the kernel backend and the dpdk backend side by side,
# in one run, on this machine: a file uploaded and downloaded by curl over
# HTTPS, RUNS times each way per backend, alternating the backends.
#
#   tests/dpdk/web_compare.sh [BUILD_DIR] [MIB] [RUNS]
#
# Both servers run at once in one private network namespace with the same
# configuration, pinned to CPU 0; curl runs pinned to CPU 1:
#   kernel  parleyd on 127.0.0.1 (Web on 127.0.0.1:8443, Linux TCP over loopback)
#   dpdk    parleyd on 198.18.0.2 behind a net_tap port (Web on 198.18.0.2:8443:
#           the lcore's user-space TCP, relayed to the Web thread over a
#           socketpair per connection)
# Tokens come from tests/dpdk/dpdk_client over each server's SIP port.
# Prints one line per backend: medians of MiB/s (curl's time_total: TLS
# handshake, transfer, and for uploads the server's hashing, fsync and
# group commit) and of parleyd's CPU time per GiB moved (user + system, from
# /proc, over each transfer). Root.
set -u
build=${1:-${PARLEY_BUILDDIR:-build}}
mib=${2:-50}
runs=${3:-5}
ns=pdkweb$$
ifc=pkw$$
parleyd=$build/router/parleyd
client=$build/tests/dpdk/dpdk_client
dir=$(mktemp -d /tmp/parley-webcmp-XXXXXX)
pids=()

die() { echo "web_compare: $*" >&2; exit 1; }
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	ip netns del "$ns" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
nsx() { ip netns exec "$ns" "$@"; }
[ -x "$parleyd" ] && [ -x "$client" ] || die "no parleyd/dpdk_client in $build"
command -v curl > /dev/null || die "curl is missing"
ip netns add "$ns" || die "cannot create a namespace (root?)"
ip -n "$ns" link set lo up
for u in alice:alice-pw bob:bob-pw; do
	aor=${u%%:*}@example.com
	printf '%s:example.com:%s\n' "$aor" \
		"$(printf '%s' "$aor:example.com:${u#*:}" | md5sum | cut -d' ' -f1)"
done > "$dir/users.htdigest"
head -c $((mib << 20)) /dev/urandom > "$dir/file.bin"

start() {	# $1 = backend, $2 = address
	cat > "$dir/$1.ini" <<INI
[server]
domain = example.com
data_dir = $dir/data-$1
log_level = notice
drain_timeout_s = 3
[sip]
listen = $2:5061
[auth]
htdigest = $dir/users.htdigest
[web]
listen = $2:8443
max_upload_bytes = $(((mib + 1) << 20))
[io]
backend = $1
[dpdk]
lcores = 1
port = net_tap0,iface=$ifc,mac=02:00:c6:12:00:02
addr = 198.18.0.2
INI
	# Not through nsx: a function in the background is a subshell, and $!
	# would name it instead of parleyd.
	MALLOC_PERTURB_=0 ip netns exec "$ns" taskset -c 0 "$parleyd" -c "$dir/$1.ini" \
		> "$dir/$1.log" 2>&1 &
	pids+=($!)
	eval "pid_$1=$!"
	if [ "$1" = dpdk ]; then
		for _ in $(seq 100); do ip -n "$ns" link show "$ifc" >/dev/null 2>&1 && break; sleep 0.1; done
		nsx sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1"
		ip -n "$ns" link set "$ifc" address 02:00:c6:12:00:01
		ip -n "$ns" addr add 198.18.0.1/24 dev "$ifc"
		ip -n "$ns" link set "$ifc" up
	fi
	for _ in $(seq 300); do
		nsx bash -c "exec 3<>/dev/tcp/$2/8443" 2>/dev/null && return 0
		sleep 0.1
	done
	tail -20 "$dir/$1.log" >&2
	die "the $1 parleyd does not answer on $2:8443"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One transfer: $1 = backend, $2 = address, $3 = up|down; appends
# "MiB/s cpu_s_per_GiB" to $dir/$1.$3.
xfer() {
	local be=$1 addr=$2 way=$3 pid p name t c0 c1 hz
	pid=$(eval echo "\$pid_$be")
	hz=$(getconf CLK_TCK)
	if [ "$way" = up ]; then
		p=$(nsx timeout 60 "$client" token "$addr" 5061 up file.bin) || die "getfutok ($be)"
		echo "${p#*/}" | cut -d'?' -f1 > "$dir/$be.name"
	else
		name=$(cat "$dir/$be.name")
		p=$(nsx timeout 60 "$client" token "$addr" 5061 down "$name") || die "getfdtok ($be)"
	fi
	c0=$(cpu_ticks "$pid")
	if [ "$way" = up ]; then
		t=$(nsx taskset -c 1 curl -sS --cacert "$dir/data-$be/tls/cert.pem" \
			--resolve "example.com:8443:$addr" -o /dev/null -T "$dir/file.bin" \
			-w '%{http_code} %{time_total}' "https://example.com:8443/filestore/$p")
	else
		t=$(nsx taskset -c 1 curl -sS --cacert "$dir/data-$be/tls/cert.pem" \
			--resolve "example.com:8443:$addr" -o "$dir/got.bin" \
			-w '%{http_code} %{time_total}' "https://example.com:8443/filestore/$p")
		cmp -s "$dir/got.bin" "$dir/file.bin" || die "$be: the download differs"
	fi
	c1=$(cpu_ticks "$pid")
	case "$t" in 201\ *|200\ *) ;; *) die "$be $way: curl says $t" ;; esac
	awk -v mib="$mib" -v t="${t#* }" -v c=$((c1 - c0)) -v hz="$hz" \
		'BEGIN {printf "%.1f %.2f\n", mib / t, c / hz * 1024 / mib}' >> "$dir/$be.$way"
}

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

start kernel 127.0.0.1
start dpdk 198.18.0.2
for ((i = 0; i < runs; i++)); do
	for be in kernel dpdk; do
		addr=$([ "$be" = kernel ] && echo 127.0.0.1 || echo 198.18.0.2)
		xfer "$be" "$addr" up
		xfer "$be" "$addr" down
	done
done
for be in kernel dpdk; do
	printf 'backend=%s mib=%s runs=%s up_mib_s=%s down_mib_s=%s up_cpu_s_per_gib=%s down_cpu_s_per_gib=%s up_runs=%s down_runs=%s\n' \
		"$be" "$mib" "$runs" \
		"$(cut -d' ' -f1 "$dir/$be.up" | median)" "$(cut -d' ' -f1 "$dir/$be.down" | median)" \
		"$(cut -d' ' -f2 "$dir/$be.up" | median)" "$(cut -d' ' -f2 "$dir/$be.down" | median)" \
		"$(cut -d' ' -f1 "$dir/$be.up" | paste -sd,)" "$(cut -d' ' -f1 "$dir/$be.down" | paste -sd,)"
done
