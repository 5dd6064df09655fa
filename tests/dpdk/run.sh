#!/bin/bash
# Integration tests of the dpdk I/O backend: parleyd on a net_tap port with
# its user-space TCP, Linux clients on the other side of the TAP.
#
#   run.sh SCENARIO LCORES
#
# Each run creates its own network namespace; parleyd runs inside it (it
# creates the TAP there, as --vdev=net_tap0), the namespace's kernel holds
# 198.18.0.1/24 and parleyd owns 198.18.0.2. No traffic leaves the namespace,
# no hugepages or NIC are needed. The namespace, the TAP and the temporary
# directory go away on every exit path (trap).
#
# Scenarios:
#   basic     openssl s_client, REGISTER, a chat post delivered to two clients,
#             sipp over socat, 100 concurrent TLS connections, a stream of
#             posts both ways checked by sha256; with 2 lcores, that packets
#             were re-steered between lcores
#   bulk      5 MiB of posts up (2 x 640 x 4 KiB) and 10 MiB of deliveries down
#   loss5     the stream under 5% random loss (nftables, both directions)
#   loss20    the same under 20%
#   conns     $DPDK_CONNS (default 15000) concurrent TLS connections from 3
#             client processes, every one answering a keepalive twice
#   synflood  hping3 SYN flood with random sources while clients sign in
#   wire      scapy: SYN-ACK options, RFC 5961 challenge ACKs
#   bench     parley-bench fanout (10 rooms x 10 members, 3 s): nothing missing or doubled
#   web       the Web service over the DPDK stack: curl uploads and downloads
#             (4 KiB, 24 MiB, a byte range, 4 downloads at once) compared by
#             sha256, then 8 MiB each way under 5% nftables loss; nothing
#             listens on a kernel socket for it, and the relay counters show
#             the bytes crossed the user-space TCP
#   faults    the stream through parleyd's seeded fault layer (PARLEY_DPDK_FAULT):
#             1% dropped, 2% duplicated, 10% reordered, TCP frames both ways
#   delay     the same layer's delay line (this kernel has no netem): TCP frames
#             both ways wait 20 ms + 0..10 ms of seeded jitter (so they may
#             also leave out of order), 1% dropped, 5% reordered; chat and the
#             stream, a TCP connect that takes the two delays, and frames
#             delayed in both directions according to parleyd's log
#
# Exit 0 pass, 1 fail, 77 skip (only when the kernel has no TAP support).
set -u
scenario=${1:?scenario}
lcores=${2:-1}
build=${PARLEY_BUILDDIR:?}
src=${PARLEY_SRCDIR:?}
here=$src/tests/dpdk
client=$build/tests/dpdk/dpdk_client
conns=$build/tests/dpdk/dpdk_conns
PY=/usr/bin/python3		# Debian's, which has python3-scapy

ns=pdk$$
ifc=pk$$
ns_ip=198.18.0.1
dp_ip=198.18.0.2
ns_mac=02:00:c6:12:00:01
dp_mac=02:00:c6:12:00:02
port=5061
dir=
pid=

say() { echo "[dpdk-$scenario/$lcores] $*"; }
fail() {
	say "FAIL: $*"
	exit 1
}
# Foreground only: in the background a function is a subshell, and $! would
# name the subshell instead of the program.
nsx() { ip netns exec "$ns" "$@"; }

cleanup() {
	local rc=$?

	set +e
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	if ip netns list 2>/dev/null | grep -qw "$ns"; then
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		sleep 0.2
		ip netns del "$ns" 2>/dev/null
	fi
	if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -n "$dir" ] && [ -f "$dir/parleyd.log" ]; then
		echo "---- parleyd.log (last 60 lines) ----"
		tail -60 "$dir/parleyd.log"
	fi
	[ -n "$dir" ] && [ "${DPDK_TEST_KEEP:-0}" != 1 ] && rm -rf "$dir"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- prerequisites ----
[ "$(id -u)" = 0 ] || fail "must run as root (network namespaces, TAP devices)"
need() {
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 ||
			fail "$t is missing: install the test packages (./parley test does, see TEST_PKGS)"
	done
}
need ip openssl
ip netns add "$ns" || fail "cannot create network namespace $ns"
ip -n "$ns" link set lo up
# The one reason to skip: a kernel without TUN/TAP.
if ! ip -n "$ns" tuntap add dev probe0 mode tap 2>/dev/null; then
	echo "SKIP: this kernel has no TUN/TAP support (/dev/net/tun): the dpdk backend tests need net_tap"
	exit 77
fi
ip -n "$ns" link del probe0

# ---- parleyd in the namespace ----
dir=$(mktemp -d /tmp/parley-dpdk-XXXXXX)
users=$dir/users.htdigest
for u in alice:alice-pw bob:bob-pw; do
	aor=${u%%:*}@example.com
	printf '%s:example.com:%s\n' "$aor" \
		"$(printf '%s' "$aor:example.com:${u#*:}" | md5sum | cut -d' ' -f1)" >> "$users"
done
# Writes the configuration (with $DPDK_EXTRA_INI), starts parleyd in the
# namespace, gives the TAP it creates the namespace side of the link and
# waits until the SIP port accepts TCP.
start_parleyd() {
	cat > "$dir/parleyd.ini" <<INI
[server]
domain = example.com
data_dir = $dir/var
drain_timeout_s = 3
[sip]
listen = $dp_ip:$port
[auth]
htdigest = $users
[storage]
; the tests measure the network path, not the disk
durability_unsafe_no_fsync = true
[web]
${web_ini:-enabled = false}
[io]
backend = dpdk
[dpdk]
port = net_tap0,iface=$ifc,mac=$dp_mac
addr = $dp_ip
netmask = 255.255.255.0
lcores = $lcores
${DPDK_EXTRA_INI:-}
INI
	# meson test sets MALLOC_PERTURB_, which makes glibc fill every allocation:
	# the TCP core reserves its buffers up front (GiBs of untouched address
	# space), and filling them would take half a minute and all that memory.
	MALLOC_PERTURB_=0 PARLEY_DPDK_FAULT=${fault_spec:-} ip netns exec "$ns" "$build/router/parleyd" -c "$dir/parleyd.ini" >> "$dir/parleyd.log" 2>&1 &
	pid=$!
	for i in $(seq 200); do
		ip -n "$ns" link show "$ifc" >/dev/null 2>&1 && break
		kill -0 "$pid" 2>/dev/null || fail "parleyd exited before creating its TAP"
		sleep 0.1
	done
	ip -n "$ns" link show "$ifc" >/dev/null 2>&1 || fail "no TAP $ifc in $ns after 20 s"
	nsx sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1"
	ip -n "$ns" link set "$ifc" address "$ns_mac"
	ip -n "$ns" addr add "$ns_ip/24" dev "$ifc"
	ip -n "$ns" link set "$ifc" up
	for i in $(seq 200); do
		nsx timeout 2 bash -c "exec 3<>/dev/tcp/$dp_ip/$port" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || fail "parleyd exited"
		sleep 0.1
	done
	nsx timeout 2 bash -c "exec 3<>/dev/tcp/$dp_ip/$port" 2>/dev/null ||
		fail "parleyd does not accept TCP on $dp_ip:$port over the TAP"
	say "parleyd up on $dp_ip:$port over net_tap ($lcores lcore(s)), namespace $ns"
}
# synflood: a small SYN queue, so that the flood overflows it and the
# clients must come in through SYN cookies.
[ "$scenario" = synflood ] && DPDK_EXTRA_INI=$(printf '[net]\nbacklog = 64')
# bench: parley-bench's users and rooms (bench0..9, user0..99).
if [ "$scenario" = bench ]; then
	"$build/perf/parley-bench" users 100 >> "$users" || fail "parley-bench users"
	DPDK_EXTRA_INI=$(for i in $(seq 0 9); do printf '[room:bench%d]\nprivacy = open\n' "$i"; done)
fi
# faults, delay: parleyd's own seeded fault layer on its rx and tx paths.
# web: the Web service on the DPDK port.
wport=8443
[ "$scenario" = web ] && web_ini="listen = $dp_ip:$wport"
fault_spec=
[ "$scenario" = faults ] && fault_spec="drop=10,dup=20,reorder=100,seed=${DPDK_FAULT_SEED:-42}"
[ "$scenario" = delay ] &&
	fault_spec="delay_us=20000,jitter_us=10000,drop=10,reorder=50,seed=${DPDK_FAULT_SEED:-42}"
start_parleyd

# Stops parleyd (SIGTERM: drain) and checks it exits 0; prints its stats.
stop_parleyd() {
	local st

	kill -TERM "$pid"
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	wait "$pid"
	st=$?
	pid=
	grep -E "IO: dpdk lcore" "$dir/parleyd.log" | sed 's/^[^ ]* [a-z]* //'
	[ "$st" = 0 ] || fail "parleyd exited with status $st after SIGTERM"
}

# The sum of one "name=N" field over the lcores' stats lines.
stat_sum() {
	grep -E "IO: dpdk lcore" "$dir/parleyd.log" | grep -oE " $1=[0-9]+" |
		cut -d= -f2 | awk '{s += $1} END {print s + 0}'
}

loss() {
	nsx nft -f - <<EOF
table netdev pdkfault {
  chain in  { type filter hook ingress device "$ifc" priority -500; policy accept; numgen random mod 100 < $1 counter drop; }
  chain out { type filter hook egress  device "$ifc" priority -500; policy accept; numgen random mod 100 < $1 counter drop; }
}
EOF
}

s_client() {
	local out

	out=$(echo Q | nsx timeout 20 openssl s_client -connect "$dp_ip:$port" -brief 2>&1)
	echo "$out" | grep -q "CONNECTION ESTABLISHED" || fail "openssl s_client: $out"
	say "openssl s_client: $(echo "$out" | grep -E 'Protocol version|Ciphersuite' | tr '\n' ' ')"
}

sipp_run() {
	local tport=15061 calls=5 ok failed

	need socat sipp
	ip netns exec "$ns" socat "TCP-LISTEN:$tport,bind=127.0.0.1,reuseaddr,fork" \
		"OPENSSL:$dp_ip:$port,cafile=$dir/var/tls/cert.pem,commonname=example.com" \
		2> "$dir/socat.log" &
	for _ in $(seq 50); do
		nsx bash -c "exec 3<>/dev/tcp/127.0.0.1/$tport" 2>/dev/null && break
		sleep 0.1
	done
	(cd "$dir" && nsx timeout 60 sipp -t t1 -sf "$src/tests/integration/sipp/register_options.xml" \
		-m $calls -r 5 -i 127.0.0.1 -trace_err -error_file "$dir/sipp_err.log" -trace_stat \
		-stf "$dir/stat.csv" -nostdin -timeout 30s "127.0.0.1:$tport" > "$dir/sipp.out" 2>&1)
	ok=$(tail -1 "$dir/stat.csv" 2>/dev/null | awk -F';' '{print $16}')
	failed=$(tail -1 "$dir/stat.csv" 2>/dev/null | awk -F';' '{print $18}')
	if [ "$ok" != "$calls" ] || [ "$failed" != 0 ]; then
		head -c 2000 "$dir/sipp_err.log"; cat "$dir/sipp.out" "$dir/socat.log"
		fail "sipp over socat: successful=$ok failed=$failed"
	fi
	say "sipp (REGISTER + OPTIONS over socat/TLS): $ok calls successful"
}

case "$scenario" in
basic)
	s_client
	nsx "$client" register "$dp_ip" "$port" || fail "REGISTER"
	nsx "$client" chat "$dp_ip" "$port" || fail "chat"
	sipp_run
	nsx "$conns" "$dp_ip" "$port" 100 50 1 || fail "100 concurrent connections"
	nsx timeout 120 "$client" stream "$dp_ip" "$port" 200 2048 || fail "stream"
	stop_parleyd
	# A bad [dpdk] addr stops parleyd at boot with a message naming it.
	sed 's/^addr = .*/addr = 198.18.0.300/' "$dir/parleyd.ini" > "$dir/bad.ini"
	out=$(MALLOC_PERTURB_=0 nsx timeout 30 "$build/router/parleyd" -c "$dir/bad.ini" 2>&1) &&
		fail "parleyd started with addr = 198.18.0.300"
	echo "$out" | grep -q '\[dpdk\] addr "198.18.0.300"' ||
		fail "no message about [dpdk] addr: $out"
	say "a bad [dpdk] addr is refused at boot: $(echo "$out" | grep -o '\[dpdk\] addr.*' | head -1)"
	# Received payload goes to TLS straight from the packets.
	direct=$(stat_sum rx_direct_bytes)
	say "payload bytes handed to TLS without the receive ring: $direct"
	[ "$direct" -gt 0 ] || fail "the zero-copy receive path was never taken"
	if [ "$lcores" -gt 1 ]; then
		out=$(stat_sum steered_out)
		in=$(stat_sum rx_steered_in)
		say "re-steered between lcores: $out out, $in in"
		[ "$out" -gt 0 ] && [ "$in" -gt 0 ] || fail "no packet was re-steered between lcores"
	fi
	;;
bulk)
	nsx timeout 240 "$client" stream "$dp_ip" "$port" 640 4096 || fail "5 MiB stream"
	stop_parleyd
	;;
loss5|loss20)
	need nft
	pct=${scenario#loss}
	loss "$pct" || fail "nftables: cannot add the loss rules"
	say "dropping $pct% of frames both ways"
	# At 20% a lost retransmission backs the RTO off to tens of seconds
	# (Linux's and ours alike): few posts, and a long stall allowance.
	n=$([ "$pct" -ge 20 ] && echo 30 || echo 150)
	DPDK_STALL_S=150 nsx timeout 380 "$client" stream "$dp_ip" "$port" "$n" 2048 ||
		fail "stream under $pct% loss"
	nsx nft list table netdev pdkfault | grep -oE "counter packets [0-9]+" | tr '\n' ' '
	echo
	nsx nft delete table netdev pdkfault
	stop_parleyd
	say "retransmissions by parleyd: $(stat_sum retransmit), RTOs: $(stat_sum rto)"
	;;
bench)
	# parley-bench sends load to loopback addresses only: the namespace
	# DNATs 127.0.0.2:5061 to parleyd (and SNATs to its own address), so
	# its packets cross the TAP like a remote client's.
	need nft
	ip -n "$ns" addr add 127.0.0.2/8 dev lo
	nsx sysctl -qw net.ipv4.conf.all.route_localnet=1 "net.ipv4.conf.$ifc.route_localnet=1"
	nsx nft -f - <<EOF || fail "nftables NAT"
table ip pdkbench {
  chain out { type nat hook output priority -100; ip daddr 127.0.0.2 tcp dport $port dnat to $dp_ip:$port; }
  chain post { type nat hook postrouting priority 100; oifname "$ifc" snat to $ns_ip; }
}
EOF
	line=$(nsx timeout 120 "$build/perf/parley-bench" fanout --rooms 10 --members 10 --size 200 \
		--deliv-rate 2000 --duration 3 --warmup 1 --src-addrs 1 -s "127.0.0.2:$port" -q)
	echo "$line"
	for k in missing dup errors; do
		v=$(echo "$line" | grep -oE "(^| )$k=[0-9]+" | cut -d= -f2)
		[ "$v" = 0 ] || fail "parley-bench: $k=${v:-?}"
	done
	v=$(echo "$line" | grep -oE "(^| )delivered=[0-9]+" | cut -d= -f2)
	[ "${v:-0}" -gt 0 ] || fail "parley-bench delivered nothing"
	stop_parleyd
	;;
web)
	need curl sha256sum
	# The certificate names the domain: curl reaches it at parleyd's address.
	curl_web() {
		nsx timeout 200 curl -sS --cacert "$dir/var/tls/cert.pem" \
			--resolve "example.com:$wport:$dp_ip" -w '%{http_code}' "$@"
	}
	wurl=https://example.com:$wport/filestore
	token() { nsx timeout 90 "$client" token "$dp_ip" "$port" "$1" "$2"; }
	nsx ss -Hltn "sport = :$wport" | grep -q . &&
		fail "a kernel socket listens on port $wport: the Web service is not on the DPDK stack"
	head -c 4096 /dev/urandom > "$dir/small.bin"
	head -c $((24 << 20)) /dev/urandom > "$dir/big.bin"
	head -c $((8 << 20)) /dev/urandom > "$dir/lossy.bin"
	# Uploads <file>, downloads it back and compares; prints the stored name.
	roundtrip() {
		local f=$1 p name code t0

		p=$(token up "$(basename "$f")") || fail "getfutok for $f"
		t0=$(date +%s.%N)
		code=$(curl_web -o /dev/null -T "$f" "$wurl/$p") || fail "curl PUT $f: $code"
		[ "$code" = 201 ] || fail "PUT $(basename "$f") over dpdk: HTTP $code"
		name=${p#*/}
		name=${name%%\?*}
		p=$(token down "$name") || fail "getfdtok for $name"
		code=$(curl_web -o "$f.got" "$wurl/$p") || fail "curl GET $name: $code"
		[ "$code" = 200 ] || fail "GET $name over dpdk: HTTP $code"
		[ "$(sha256sum < "$f")" = "$(sha256sum < "$f.got")" ] ||
			fail "$(basename "$f"): the download differs from the upload"
		say "$(basename "$f") ($(stat -c %s "$f") bytes) up and down, same sha256, $(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $t0}") s" >&2
		echo "$name"
	}
	roundtrip "$dir/small.bin" > /dev/null
	big=$(roundtrip "$dir/big.bin")
	# A byte range, and four downloads at once (spread over the lcores).
	p=$(token down "$big") || fail "getfdtok"
	code=$(curl_web -o "$dir/range.got" -r 1000000-1999999 "$wurl/$p")
	[ "$code" = 206 ] || fail "ranged GET: HTTP $code"
	cmp -s "$dir/range.got" <(tail -c +1000001 "$dir/big.bin" | head -c 1000000) ||
		fail "the range is not bytes 1000000-1999999"
	pids=()
	for i in 1 2 3 4; do
		p=$(token down "$big") || fail "getfdtok $i"
		curl_web -o "$dir/par$i.got" "$wurl/$p" > "$dir/par$i.code" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || fail "a parallel download failed"; done
	for i in 1 2 3 4; do
		[ "$(cat "$dir/par$i.code")" = 200 ] && cmp -s "$dir/par$i.got" "$dir/big.bin" ||
			fail "parallel download $i: HTTP $(cat "$dir/par$i.code") or different bytes"
	done
	say "a byte range and 4 parallel downloads of 24 MiB: right bytes"
	need nft
	loss 5 || fail "nftables: cannot add the loss rules"
	roundtrip "$dir/lossy.bin" > /dev/null
	nsx nft list table netdev pdkfault | grep -oE "counter packets [0-9]+" | tr '\n' ' '
	echo
	nsx nft delete table netdev pdkfault
	stop_parleyd
	relay_sum() {
		grep -E "web relays" "$dir/parleyd.log" | grep -oE " $1=[0-9]+" | cut -d= -f2 |
			awk '{s += $1} END {print s + 0}'
	}
	up=$(relay_sum bytes_up)
	down=$(relay_sum bytes_down)
	say "relayed over the user-space TCP: $up bytes up, $down bytes down, $(relay_sum accepted) connections"
	# Up: 24 + 8 MiB of bodies; down: 5 x 24 + 8 MiB (TLS adds a little).
	[ "$up" -gt $((32 << 20)) ] && [ "$down" -gt $((128 << 20)) ] ||
		fail "the relays did not carry the transfers"
	say "retransmissions by parleyd: $(stat_sum retransmit), RTOs: $(stat_sum rto)"
	;;
faults)
	say "parleyd drops 1%, duplicates 2% and reorders 10% of TCP frames both ways ($fault_spec)"
	nsx "$client" chat "$dp_ip" "$port" || fail "chat with faults"
	DPDK_STALL_S=120 nsx timeout 280 "$client" stream "$dp_ip" "$port" 150 3000 ||
		fail "stream with faults"
	stop_parleyd
	grep -E "faults injected" "$dir/parleyd.log" | sed 's/^[^ ]* [a-z]* //'
	grep -q "faults injected" "$dir/parleyd.log" || fail "the fault layer did not run"
	;;
delay)
	say "parleyd delays TCP frames both ways by 20 ms + 0..10 ms jitter, drops 1%, reorders 5% ($fault_spec)"
	# The SYN waits on parleyd's rx path and the SYN-ACK on its tx path:
	# a connect takes both delays, at least 40 ms (more if one is dropped).
	t=$(date +%s%N)
	nsx timeout 10 bash -c "exec 3<>/dev/tcp/$dp_ip/$port" || fail "TCP connect with delay"
	ms=$(( ($(date +%s%N) - t) / 1000000 ))
	say "a TCP connect took $ms ms"
	[ "$ms" -ge 40 ] || fail "a TCP connect took $ms ms: the frames were not delayed"
	nsx timeout 60 "$client" chat "$dp_ip" "$port" || fail "chat with delay"
	DPDK_STALL_S=120 nsx timeout 200 "$client" stream "$dp_ip" "$port" 150 2048 ||
		fail "stream with delay"
	stop_parleyd
	# "faults injected: rx ... delayed=N delay_full=N, tx ... delayed=N
	# delay_full=N", one line per lcore
	rxd=$(grep "faults injected" "$dir/parleyd.log" | sed 's/, tx .*//' |
		grep -oE " delayed=[0-9]+" | cut -d= -f2 | awk '{s += $1} END {print s + 0}')
	txd=$(grep "faults injected" "$dir/parleyd.log" | sed 's/.*, tx //' |
		grep -oE " delayed=[0-9]+" | cut -d= -f2 | awk '{s += $1} END {print s + 0}')
	say "frames delayed: $rxd received, $txd sent; refused by a full delay line:" \
		"$(stat_sum delay_full); retransmissions by parleyd: $(stat_sum retransmit)," \
		"RTOs: $(stat_sum rto)"
	[ "$rxd" -gt 0 ] && [ "$txd" -gt 0 ] || fail "no frame was delayed (rx $rxd, tx $txd)"
	;;
conns)
	total=${DPDK_CONNS:-15000}
	procs=3
	per=$(( (total + procs - 1) / procs ))
	pids=()
	for i in $(seq $procs); do
		ip netns exec "$ns" "$conns" "$dp_ip" "$port" "$per" 64 3 > "$dir/conns.$i" 2>&1 &
		pids+=($!)
	done
	rc=0
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	cat "$dir"/conns.*
	[ "$rc" = 0 ] || fail "not all of $((per * procs)) connections opened and answered"
	say "$((per * procs)) concurrent TLS connections, each answered two keepalives"
	stop_parleyd
	;;
synflood)
	need hping3
	ip netns exec "$ns" hping3 -q -S -p "$port" --rand-source -i u100 "$dp_ip" > "$dir/hping3.log" 2>&1 &
	flood=$!
	sleep 2
	for i in $(seq 5); do
		nsx timeout 60 "$client" register "$dp_ip" "$port" || fail "REGISTER $i during the flood"
	done
	nsx timeout 60 "$client" chat "$dp_ip" "$port" || fail "chat during the flood"
	kill -INT "$flood"; wait "$flood" 2>/dev/null
	stop_parleyd
	say "SYN cookies sent $(stat_sum cookies_sent), SYN queue overflows $(stat_sum synq_full), legitimate cookie ACKs $(stat_sum cookies_ok)"
	[ "$(stat_sum synq_full)" -gt 0 ] || fail "the flood never filled the SYN queue: not a flood"
	[ "$(stat_sum cookies_ok)" -gt 0 ] || fail "no client came in through a SYN cookie"
	;;
wire)
	need nft
	[ -x "$PY" ] && "$PY" -c "import scapy" 2>/dev/null ||
		fail "python3-scapy is missing: install the test packages (./parley test does)"
	# The namespace kernel would reset scapy's connections: drop its RSTs.
	nsx nft -f - <<EOF || fail "nftables"
table inet pdkwire {
  chain out { type filter hook output priority 0; policy accept; ip daddr $dp_ip tcp flags & rst == rst drop; }
}
EOF
	nsx "$PY" "$here/tcp_wire.py" "$dp_ip" "$port" "$ifc" || fail "TCP on the wire"
	stop_parleyd
	;;
*)
	fail "unknown scenario $scenario"
	;;
esac
say "PASS"
