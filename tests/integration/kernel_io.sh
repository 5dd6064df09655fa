#!/bin/bash
# [io] kernel_io = io_uring where the kernel refuses io_uring: strace makes
# io_uring_setup fail with EPERM (as kernel.io_uring_disabled or a seccomp
# filter would). parleyd says why, runs on epoll and serves SIP over TLS.
# Then the same configuration without strace: parleyd says it runs on
# io_uring (this kernel has it) and serves as well.
set -eu
build=${PARLEY_BUILDDIR:?}
dir=$(mktemp -d /tmp/parley-kio-XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && stop
	rm -rf "$dir"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	cat "$dir/parleyd.log" >&2
	exit 1
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/parleyd.ini" <<INI
[server]
domain = example.com
data_dir = $dir
[sip]
listen = 127.0.0.1:$port
[web]
enabled = false
[io]
kernel_io = io_uring
INI

# start [WRAPPER...]: parleyd (under WRAPPER) until its SIP port answers.
start() {
	"$@" "$build/router/parleyd" -c "$dir/parleyd.ini" > "$dir/parleyd.log" 2>&1 &
	pid=$!
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || fail "parleyd exited"
		sleep 0.1
	done
	fail "parleyd is not listening"
}

# Stops parleyd (under strace: the traced child, then strace ends too).
stop() {
	local child
	child=$(pgrep -P "$pid" parleyd || true)
	kill ${child:-$pid} 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=
}

# A TLS handshake and a SIP OPTIONS answered with 200.
serves() {
	printf 'OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: kio1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n' |
		timeout 10 openssl s_client -quiet -ign_eof -connect "127.0.0.1:$port" 2>/dev/null |
		head -1 | grep -q "^SIP/2.0 200" || fail "no 200 to OPTIONS over TLS"
}

command -v strace >/dev/null || { echo "strace is missing (apt-get install strace)" >&2; exit 77; }
start strace -f -qq -o /dev/null -e trace=io_uring_setup -e inject=io_uring_setup:error=EPERM
grep -q "kernel_io = io_uring: io_uring_setup: Operation not permitted.*; using epoll" \
	"$dir/parleyd.log" || fail "no log line saying why io_uring is not used"
serves
stop
echo "io_uring refused: parleyd says so and serves on epoll"

start
grep -q "kernel_io = io_uring$" "$dir/parleyd.log" || fail "no log line saying io_uring is used"
serves
stop
echo "io_uring: parleyd serves on it"
