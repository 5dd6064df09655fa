#!/bin/sh
# parleyctl doctor: one line per check with a fix under each problem, exit 1
# when something is wrong; a file limit below lcores x max_conns fails;
# the dpdk backend gets the hugepages check; with parleyd running, its own
# file limit is read; the defaults it assumes are parleyd's (--dump-keys).
set -eu
build=${PARLEY_BUILDDIR:?}
ctl=$build/control/parleyctl
parleyd=$build/router/parleyd
tmp=$(mktemp -d)
pid=
trap '[ -z "$pid" ] || kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; cat "$tmp/out" 2>/dev/null; exit 1; }

# Every verdict line is ok/WARN/FAIL; every WARN/FAIL has a fix (unless the
# check could not run); the count at the end matches.
shape() {
	awk '
		NR == 1 { if ($0 !~ /^parleyctl doctor: /) bad = "header"; next }
		/^(ok|WARN|FAIL) / { if ($1 != "ok") { n++; want = 1 } else want = 0; next }
		/^      fix: / { if (!want) bad = "fix without a problem"; want = 0; next }
		/^[0-9]+ problems?$/ { if ($1 != n) bad = "count " $1 " != " n; done = 1; next }
		{ bad = "stray line: " $0 }
		END { if (bad != "" || !done) { print bad; exit 1 } }' "$tmp/out" ||
		fail "doctor output shape"
}

printf '[server]\ndata_dir = %s/var\n' "$tmp" > "$tmp/ok.ini"
rc=0; "$ctl" -c "$tmp/ok.ini" doctor > "$tmp/out" || rc=$?
[ $rc -le 1 ] || fail "exit $rc"
shape
for c in "file limit:" "clock:" "disk for \[storage\] db:" "disk for \[compliance\] output_dir:" \
	 "somaxconn:"; do
	grep -q "^[a-zA-Z]* *$c" "$tmp/out" || fail "no '$c' line"
done
grep -q "parleyd not running" "$tmp/out" || fail "says parleyd runs"

printf '[net]\nmax_conns = 10000000\n[dpdk]\nlcores = 64\n' > "$tmp/big.ini"
rc=0; "$ctl" -c "$tmp/big.ini" doctor > "$tmp/out" || rc=$?
[ $rc -eq 1 ] || fail "exit $rc with 64 x 10000000 connections"
shape
grep -q "^FAIL  file limit: .* 640001280 needed" "$tmp/out" || fail "file limit not failed"
grep -q "fix: LimitNOFILE=640001280" "$tmp/out" || fail "no LimitNOFILE fix"

printf '[io]\nbackend = dpdk\n[dpdk]\neal = --no-pci\nport = 0000:ff:1f.7\n' > "$tmp/dpdk.ini"
rc=0; "$ctl" -c "$tmp/dpdk.ini" doctor > "$tmp/out" || rc=$?
[ $rc -eq 1 ] || fail "exit $rc for a PCI port that does not exist"
shape
grep -q "^[a-zA-Z]* *hugepages: " "$tmp/out" || fail "no hugepages line for the dpdk backend"
grep -q "^FAIL  port 0000:ff:1f.7: driver none" "$tmp/out" || fail "no port line"
grep -q "somaxconn" "$tmp/out" && fail "somaxconn checked for the dpdk backend"

# With parleyd running: its own limit, by pid.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
wport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '[sip]\nlisten = 127.0.0.1:%s\n[web]\nlisten = 127.0.0.1:%s\n' "$port" "$wport" >> "$tmp/ok.ini"
"$parleyd" -c "$tmp/ok.ini" 2> "$tmp/log" &
pid=$!
for i in $(seq 100); do [ -S "$tmp/var/parleyd.sock" ] && break; sleep 0.2; done
[ -S "$tmp/var/parleyd.sock" ] || { cat "$tmp/log"; fail "parleyd did not start"; }
rc=0; "$ctl" -c "$tmp/ok.ini" doctor > "$tmp/out" || rc=$?
shape
grep -q "parleyd running (pid $pid)" "$tmp/out" || fail "running parleyd not found"
grep -q "file limit: [0-9]* open files for parleyd (pid $pid)" "$tmp/out" || fail "not its limit"
kill $pid; wait $pid || true; pid=

# The defaults doctor assumes are the key table's.
"$parleyd" --dump-keys | awk -F '\t' '{ print $1 "." $2 "=" $4 }' > "$tmp/keys"
for kv in server.data_dir=./var net.max_conns=60000 dpdk.lcores=1 web.max_conns=1024 \
	  net.backlog=4096 io.backend=kernel "dpdk.eal=--no-huge --no-pci --no-shconf" \
	  compliance.enabled=true web.enabled=true; do
	grep -qxF -- "$kv" "$tmp/keys" || fail "doctor assumes $kv, parleyd's table differs"
done
echo "ok: doctor"
