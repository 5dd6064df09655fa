#!/bin/bash
# The kernel-free test bed: parleyd's dpdk backend on a net_memif port (server
# role) and parley-bench's user-space mode (--dpdk, net_memif client role:
# its clients on Parley's TCP core, TLS on memory BIOs), so the two processes
# exchange frames through shared memory only. A tiny fan-out (5 rooms x 4
# members, 2 s) must deliver every post to every member exactly once, and
# both sides must have moved their frames over the memif port.
#
#   memif.sh
#
# memif needs DPDK's multi-process channel (no --no-shconf) and a
# --file-prefix per process; the runtime files EAL leaves in /var/run/dpdk
# are removed on every exit path, with the temporary directory. No hugepages,
# no NIC, no namespace: nothing goes through the kernel's network stack.
# Exit 0 pass, 1 fail.
set -u
build=${PARLEY_BUILDDIR:?}
dir=
pid=
bpid=

say() { echo "[dpdk-memif] $*"; }
fail() {
	say "FAIL: $*"
	[ -n "$dir" ] && [ -f "$dir/parleyd.log" ] && tail -n 30 "$dir/parleyd.log"
	exit 1
}

cleanup() {
	local rc=$?

	set +e
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	[ -n "$bpid" ] && kill -KILL "$bpid" 2>/dev/null && rm -rf "/var/run/dpdk/parley-bench-$bpid"
	[ -n "$dir" ] && rm -rf "/var/run/dpdk/parleyd-memif-$$" "$dir"
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

dir=$(mktemp -d /tmp/parley-memif-XXXXXX)
sock=$dir/memif.sock
addr=198.18.0.2
port=5061
rooms=5
members=4
"$build/perf/parley-bench" users $((rooms * members)) > "$dir/users.htdigest" ||
	fail "parley-bench users"
{
	cat <<INI
[server]
domain = example.com
data_dir = $dir/var
drain_timeout_s = 3
[sip]
listen = $addr:$port
[auth]
htdigest = $dir/users.htdigest
[storage]
durability_unsafe_no_fsync = true
[web]
enabled = false
[io]
backend = dpdk
[dpdk]
; memif: the multi-process channel on (no --no-shconf), a prefix of our own
eal = --no-huge --no-pci --file-prefix=parleyd-memif-$$
port = net_memif0,role=server,socket=$sock,socket-abstract=no
addr = $addr
netmask = 255.255.255.0
lcores = 1
INI
	for ((i = 0; i < rooms; i++)); do printf '[room:bench%d]\nprivacy = open\n' "$i"; done
} > "$dir/parleyd.ini"
# meson test sets MALLOC_PERTURB_; the TCP core's reserved buffers would all be filled.
MALLOC_PERTURB_=0 "$build/router/parleyd" -c "$dir/parleyd.ini" > "$dir/parleyd.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
	[ -S "$sock" ] && grep -q "SIP over TLS on" "$dir/parleyd.log" && break
	kill -0 "$pid" 2>/dev/null || fail "parleyd exited at boot"
	sleep 0.1
done
[ -S "$sock" ] || fail "parleyd created no memif socket $sock in 30 s"
say "parleyd up: dpdk backend on net_memif (server), $addr:$port"

# Its EAL file prefix is parley-bench-<its pid> (perf/unet.c); other runs on
# the machine may have their own there.
MALLOC_PERTURB_=0 "$build/perf/parley-bench" fanout --rooms $rooms \
	--members $members --size 200 --deliv-rate 400 --duration 2 --warmup 1 -q \
	-s "$addr:$port" --dpdk "net_memif0,role=client,socket=$sock,socket-abstract=no" \
	-p "$pid" > "$dir/bench.out" 2> "$dir/bench.err" &
bpid=$!
wait "$bpid"
rc=$?
bpid_done=$bpid
bpid=
line=$(cat "$dir/bench.out")
echo "$line"
[ "$rc" = 0 ] || { cat "$dir/bench.err"; fail "parley-bench exited with $rc"; }
val() { echo "$line" | grep -oE "(^| )$1=[^ ]+" | cut -d= -f2; }
for k in missing dup errors; do
	[ "$(val $k)" = 0 ] || fail "parley-bench: $k=$(val $k)"
done
[ "$(val net)" = dpdk ] || fail "parley-bench did not run on its user-space TCP (net=$(val net))"
[ "${val_d:=$(val delivered)}" -gt 0 ] 2>/dev/null || fail "nothing was delivered"
[ "$(val expected)" = "$val_d" ] || fail "delivered $val_d of $(val expected)"
[ "$(val net_rx_frames)" -gt 0 ] && [ "$(val net_tx_frames)" -gt 0 ] ||
	fail "parley-bench moved no frames over memif"
say "$val_d deliveries of $(val posts_ok) posts, none missing or doubled;" \
	"generator frames rx $(val net_rx_frames) tx $(val net_tx_frames)"

kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid"
st=$?
pid=
[ "$st" = 0 ] || fail "parleyd exited with status $st after SIGTERM"
stats=$(grep -E "IO: dpdk lcore 0: rx=" "$dir/parleyd.log")
rx=$(echo "$stats" | grep -oE " rx=[0-9]+" | cut -d= -f2)
tx=$(echo "$stats" | grep -oE " tx=[0-9]+" | cut -d= -f2)
say "parleyd's lcore: rx=$rx tx=$tx frames on the memif port"
[ "${rx:-0}" -gt 0 ] && [ "${tx:-0}" -gt 0 ] || fail "parleyd moved no frames over memif"
[ ! -e "/var/run/dpdk/parley-bench-$bpid_done" ] ||
	fail "parley-bench left its EAL runtime files: /var/run/dpdk/parley-bench-$bpid_done"
say "PASS"
