#!/bin/bash
# sipp (Debian sip-tester) against a real parleyd over TLS: REGISTER with
# Digest and OPTIONS. Exits 0 when every call of the scenario succeeded.
set -eu
build=${PARLEY_BUILDDIR:?}
src=${PARLEY_SRCDIR:?}
dir=$(mktemp -d /tmp/parley-sipp-XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=alice@example.com
printf '%s:example.com:%s\n' "$user" "$(printf '%s' "$user:example.com:alice-pw" | md5sum | cut -d' ' -f1)" \
	> "$dir/users.htdigest"
cat > "$dir/parleyd.ini" <<INI
[server]
domain = example.com
data_dir = $dir
[sip]
listen = 127.0.0.1:$port
[web]
enabled = false
[auth]
htdigest = $dir/users.htdigest
INI
"$build/router/parleyd" -c "$dir/parleyd.ini" 2> "$dir/parleyd.log" &
pid=$!
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done

# Debian's sipp is built without OpenSSL ("To use a TLS transport you must
# compile SIPp with OpenSSL"), so its TCP stream is carried over TLS by
# socat: sipp -> TCP 127.0.0.1:$tport -> socat -> TLS (verified against the
# generated certificate) -> parleyd.
tport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
socat "TCP-LISTEN:$tport,bind=127.0.0.1,reuseaddr,fork" \
	"OPENSSL:127.0.0.1:$port,cafile=$dir/tls/cert.pem,commonname=127.0.0.1" 2> "$dir/socat.log" &
socat_pid=$!
for _ in $(seq 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$tport") 2>/dev/null && break
	sleep 0.1
done
cd "$dir"
calls=5
timeout 60 sipp -t t1 -sf "$src/tests/integration/sipp/register_options.xml" -m $calls -r 5 \
	-i 127.0.0.1 -trace_err -error_file "$dir/err.log" -trace_stat -stf "$dir/stat.csv" -nostdin -timeout 30s \
	"127.0.0.1:$tport" > "$dir/sipp.out" 2>&1 || true
kill "$socat_pid" 2>/dev/null || true
ok=$(tail -1 "$dir/stat.csv" | awk -F';' '{print $16}')
fail=$(tail -1 "$dir/stat.csv" | awk -F';' '{print $18}')
echo "sipp: successful=$ok failed=$fail"
if [ "$ok" != "$calls" ] || [ "$fail" != "0" ]; then
	head -c 3000 "$dir/err.log" >&2; cat "$dir/sipp.out" "$dir/parleyd.log" "$dir/socat.log" >&2
	ls "$dir" >&2
	exit 1
fi
