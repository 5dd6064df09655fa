#!/bin/bash
# TLS handshakes/s and authenticated REGISTERs/s on one lcore.
# Server pinned to CPU 1, load generator to CPU 0. Runs RUNS rounds of each
# and prints the median as one result line per figure.
#   perf/auth.sh [BUILDDIR] [SECONDS] [RUNS] [THREADS]
set -eu
build=${1:-build}
secs=${2:-5}
runs=${3:-5}
threads=${4:-8}
dir=$(mktemp -d /tmp/parley-bench-XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'bench@example.com:example.com:%s\n' \
	"$(printf 'bench@example.com:example.com:pw' | md5sum | cut -d' ' -f1)" > "$dir/users"
cat > "$dir/p.ini" <<INI
[server]
data_dir = $dir
log_level = warning
[sip]
listen = 127.0.0.1:$port
[web]
enabled = false
[auth]
htdigest = $dir/users
fail_max = 1000000
INI
taskset -c 1 "$build/router/parleyd" -c "$dir/p.ini" 2>"$dir/log" &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
for mode in handshake register; do
	rates=()
	for _ in $(seq "$runs"); do
		line=$(taskset -c 0 "$build/perf/bench_auth" $mode 127.0.0.1 $port bench@example.com pw \
			"$secs" "$threads")
		rates+=("$(sed 's/.*rate_per_s=//' <<<"$line")")
	done
	med=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	echo "bench=$mode lcores=1 runs=$runs seconds=$secs threads=$threads median_per_s=$med all=${rates[*]}"
done
