# Shared by the scenario scripts in perf/ (fanout.sh, sweep.sh, connect.sh,
# idle.sh, history.sh); sourced, not run.
#
# Each script starts its own parleyd on a free loopback port with a temporary
# data directory, generated users (user0..userN-1@example.com, password "pw")
# and rooms (bench0..benchR-1), pinned with taskset; runs parley-bench pinned
# to other CPUs; stops parleyd; and prints one result line of key=value pairs
# (or, with --json, one JSON object). Progress goes to stderr.
#
# Common options (each script adds its own):
#   --build DIR        build directory with router/parleyd and perf/parley-bench
#                      ($PARLEY_BUILDDIR, else ./build, else ./build-bench)
#   --lcores N         parleyd engine lcores (1)
#   --server-cpus L    CPUs for parleyd (0; with 2 lcores: 0,1, shared with the generator)
#   --bench-cpus L     CPUs for parley-bench, one worker thread each (1)
#   --fsync 0|1        1: posts are fsync'd before their 200 (the default, durable);
#                      0: [storage] durability_unsafe_no_fsync = true
#   --runs N           repeat the measurement N times; numbers are medians (1)
#   --json             print the result as a JSON object
#   --keep             keep the temporary directory (logs, config, data)
#   --set SEC.KEY=VAL  one more parleyd configuration key (repeatable), e.g.
#                      --set tls.record_layer=openssl
#   --fifo PRIO        run parleyd and parley-bench under SCHED_FIFO at this
#                      priority (chrt -f; both sleep when idle, and RT
#                      throttling leaves 5% to the rest): on a shared host the
#                      neighbours' builds then do not set the pace (0: off)

PB_NAME=$(basename "$0")
PB_BUILD=
PB_LCORES=1
PB_SERVER_CPUS=
PB_BENCH_CPUS=1
PB_FSYNC=1
PB_RUNS=1
PB_JSON=0
PB_KEEP=0
PB_SETS=()
PB_FIFO=0
PB_SCHED=()
PB_DIR=
PB_PID=
PB_PORT=
PB_ROOMS=0
PB_EXTRA_INI=

pb_die() {
	echo "$PB_NAME: error: $*" >&2
	exit 2
}

pb_say() {
	echo "[$PB_NAME] $*" >&2
}

# Consumes one common option from "$@": sets PB_SHIFT to the number of
# arguments it took (0 when the option is not a common one).
pb_common_opt() {
	PB_SHIFT=0
	case "$1" in
	--build|--lcores|--server-cpus|--bench-cpus|--fsync|--runs|--set|--fifo)
		[ $# -ge 2 ] || pb_die "$1 needs a value" ;;
	esac
	case "$1" in
	--build) PB_BUILD=$2; PB_SHIFT=2 ;;
	--lcores) PB_LCORES=$2; PB_SHIFT=2 ;;
	--server-cpus) PB_SERVER_CPUS=$2; PB_SHIFT=2 ;;
	--bench-cpus) PB_BENCH_CPUS=$2; PB_SHIFT=2 ;;
	--fsync) PB_FSYNC=$2; PB_SHIFT=2 ;;
	--runs) PB_RUNS=$2; PB_SHIFT=2 ;;
	--set) PB_SETS+=(--set "$2"); PB_SHIFT=2 ;;
	--fifo) PB_FIFO=$2; PB_SHIFT=2 ;;
	--json) PB_JSON=1; PB_SHIFT=1 ;;
	--keep) PB_KEEP=1; PB_SHIFT=1 ;;
	esac
}

# The `*)` case of a script's option loop: a common option (PB_SHIFT set
# to what it took), or an error naming the unknown one.
pb_other_opt() {
	pb_common_opt "$@"
	[ "$PB_SHIFT" -gt 0 ] || pb_die "unknown option '$1' (--help)"
}

# -h, --help: the script's header comment (line 2 up to `set -u`), then the
# common options; exits 2.
pb_usage() {
	sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
	pb_common_help
	exit 2
}

# For a script's own options: the value after option $1, or a clear error.
pb_val() {
	[ $# -ge 2 ] && [ -n "$2" ] || pb_die "$1 needs a value"
	case "$2" in ''|*[!0-9.]*) pb_die "$1 wants a number, not '$2'" ;; esac
	printf '%s' "$2"
}

pb_common_help() {
	echo
	sed -n '/^# Common options/,/^$/p' "$(dirname "${BASH_SOURCE[0]}")/lib.sh" | sed 's/^# \{0,1\}//'
}

# Finds the binaries and checks the options.
pb_init() {
	local here top
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	top=$(dirname "$here")
	if [ -z "$PB_BUILD" ]; then
		for d in "${PARLEY_BUILDDIR:-}" "$top/build" "$top/build-bench"; do
			if [ -n "$d" ] && [ -x "$d/router/parleyd" ] && [ -x "$d/perf/parley-bench" ]; then
				PB_BUILD=$d
				break
			fi
		done
	fi
	[ -n "$PB_BUILD" ] || pb_die "no build with router/parleyd and perf/parley-bench: build with \`meson setup build && ninja -C build\` or pass --build DIR"
	PARLEYD=$PB_BUILD/router/parleyd
	BENCH=$PB_BUILD/perf/parley-bench
	[ -x "$PARLEYD" ] || pb_die "$PARLEYD is missing: run ninja -C $PB_BUILD"
	[ -x "$BENCH" ] || pb_die "$BENCH is missing: run ninja -C $PB_BUILD"
	case "$PB_LCORES" in ''|*[!0-9]*) pb_die "--lcores wants a number" ;; esac
	case "$PB_FSYNC" in 0|1) ;; *) pb_die "--fsync wants 0 or 1" ;; esac
	case "$PB_RUNS" in ''|*[!0-9]*|0) pb_die "--runs wants a positive number" ;; esac
	case "$PB_FIFO" in ''|*[!0-9]*) pb_die "--fifo wants a priority (1-99) or 0" ;; esac
	if [ "$PB_FIFO" != 0 ]; then
		command -v chrt >/dev/null || pb_die "chrt is missing (apt-get install util-linux)"
		PB_SCHED=(chrt -f "$PB_FIFO")
	fi
	if [ -z "$PB_SERVER_CPUS" ]; then
		if [ "$PB_LCORES" -gt 1 ]; then PB_SERVER_CPUS=0,1; else PB_SERVER_CPUS=0; fi
	fi
	command -v taskset >/dev/null || pb_die "taskset is missing (apt-get install util-linux)"
	command -v python3 >/dev/null || pb_die "python3 is missing (it picks a free port)"
	# As many descriptors as we may have, for parleyd and the generator.
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	trap pb_cleanup EXIT
	trap 'exit 130' INT TERM
}

# True when the two CPU lists share a CPU.
pb_cpus_overlap() {
	python3 - "$1" "$2" <<'EOF'
import sys
def cpus(s):
    out = set()
    for part in s.split(','):
        if '-' in part:
            a, b = part.split('-'); out.update(range(int(a), int(b) + 1))
        elif part:
            out.add(int(part))
    return out
sys.exit(0 if cpus(sys.argv[1]) & cpus(sys.argv[2]) else 1)
EOF
}

pb_shared_cpu() {
	if pb_cpus_overlap "$PB_SERVER_CPUS" "$PB_BENCH_CPUS"; then echo 1; else echo 0; fi
}

pb_cleanup() {
	pb_stop_server
	if [ -n "$PB_DIR" ] && [ -d "$PB_DIR" ]; then
		if [ "$PB_KEEP" = 1 ]; then
			pb_say "kept $PB_DIR"
		else
			rm -rf "$PB_DIR"
		fi
	fi
}

# pb_start_server ROOMS USERS [EXTRA_INI]: parleyd with ROOMS open rooms
# (bench0..) and USERS users (user0..), pinned to PB_SERVER_CPUS.
pb_start_server() {
	local rooms=$1 users=$2 extra=${3:-} nofsync=false i
	PB_ROOMS=$rooms
	PB_EXTRA_INI=$extra
	[ "$rooms" -le 256 ] || pb_die "parleyd takes at most 256 rooms from its config ([room:...] sections)"
	[ "$PB_FSYNC" = 0 ] && nofsync=true
	if [ -z "$PB_DIR" ]; then
		PB_DIR=$(mktemp -d /tmp/parley-perf-XXXXXX)
		"$BENCH" users "$users" > "$PB_DIR/users.htdigest" || pb_die "cannot generate users"
	fi
	rm -rf "$PB_DIR/data"
	mkdir -p "$PB_DIR/data"
	PB_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	{
		cat <<INI
[server]
domain = example.com
data_dir = $PB_DIR/data
log_level = warning
drain_timeout_s = 3
[sip]
listen = 127.0.0.1:$PB_PORT
[auth]
htdigest = $PB_DIR/users.htdigest
fail_max = 1000000
[dpdk]
lcores = $PB_LCORES
[storage]
durability_unsafe_no_fsync = $nofsync
[web]
enabled = false
INI
		[ -n "$extra" ] && printf '%s\n' "$extra"
		for ((i = 0; i < rooms; i++)); do
			printf '[room:bench%d]\nprivacy = open\n' "$i"
		done
	} > "$PB_DIR/parleyd.ini"
	pb_say "starting parleyd: $PB_LCORES lcore(s) on CPU $PB_SERVER_CPUS, fsync $([ "$PB_FSYNC" = 1 ] && echo on || echo OFF), $rooms rooms, $users users, 127.0.0.1:$PB_PORT"
	"${PB_SCHED[@]}" taskset -c "$PB_SERVER_CPUS" "$PARLEYD" -c "$PB_DIR/parleyd.ini" \
		"${PB_SETS[@]}" > "$PB_DIR/parleyd.log" 2>&1 &
	PB_PID=$!
	for ((i = 0; i < 300; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PB_PORT") 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$PB_PID" 2>/dev/null; then
			tail -20 "$PB_DIR/parleyd.log" >&2
			PB_PID=
			pb_die "parleyd exited during startup (its log is above)"
		fi
		sleep 0.1
	done
	tail -20 "$PB_DIR/parleyd.log" >&2
	pb_die "parleyd is not listening on 127.0.0.1:$PB_PORT after 30 s (its log is above)"
}

pb_stop_server() {
	local i
	[ -n "$PB_PID" ] || return 0
	kill -TERM "$PB_PID" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$PB_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$PB_PID" 2>/dev/null
	wait "$PB_PID" 2>/dev/null
	PB_PID=
}

pb_check_server() {
	if [ -z "$PB_PID" ] || ! kill -0 "$PB_PID" 2>/dev/null; then
		[ -n "$PB_DIR" ] && tail -20 "$PB_DIR/parleyd.log" >&2
		PB_PID=
		pb_die "parleyd is gone (crashed or killed during the run; its log is above)"
	fi
}

# pb_bench SECONDS MODE ARGS...: parley-bench against our parleyd, pinned,
# bounded by SECONDS; its result line on stdout. Fails with a clear message
# when it could not run.
pb_bench() {
	local limit=$1 rc out
	shift
	out=$(timeout --signal=INT --kill-after=10 "$limit" \
		"${PB_SCHED[@]}" taskset -c "$PB_BENCH_CPUS" "$BENCH" "$@" -s "127.0.0.1:$PB_PORT" \
		-c "$PB_BENCH_CPUS" -p "$PB_PID") && rc=0 || rc=$?
	if [ "$rc" = 124 ] || [ "$rc" = 130 ]; then
		pb_check_server
		pb_die "parley-bench did not finish within $limit s"
	fi
	if [ "$rc" -ge 2 ] || [ -z "$out" ]; then
		pb_check_server
		pb_die "parley-bench failed (exit $rc)"
	fi
	pb_check_server
	printf '%s\n' "$out"
}

# The value of KEY in a key=value line.
pb_get() {
	local line=$1 key=$2
	sed -n "s/.*\(^\| \)$key=\([^ ]*\).*/\2/p" <<<"$line"
}

# pb_median LINE...: one line whose numeric values are the medians over the
# lines (same keys in the same order); text values come from the first.
# Counts of trouble (errors, missing, dup, lost, gen_bottleneck...) take the
# worst run instead, so that one bad run is not hidden.
pb_median() {
	printf '%s\n' "$@" | awk '
	{
		for (i = 1; i <= NF; i++) {
			split($i, kv, "=")
			if (NR == 1) { key[i] = kv[1]; nk = NF }
			val[i, NR] = substr($i, length(kv[1]) + 2)
		}
		n = NR
	}
	function isnum(s) { return s ~ /^-?[0-9]+(\.[0-9]+)?$/ }
	END {
		out = ""
		for (i = 1; i <= nk; i++) {
			v = val[i, 1]
			if (isnum(v) && n > 1) {
				m = 0
				for (r = 1; r <= n; r++) a[++m] = val[i, r] + 0
				# insertion sort: n is small
				for (x = 2; x <= m; x++) { t = a[x]; y = x - 1
					while (y > 0 && a[y] > t) { a[y + 1] = a[y]; y-- }
					a[y + 1] = t }
				med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
				if (key[i] ~ /(errors|missing|dup|lost|throttled|gen_bottleneck|failed)$/)
					med = a[m]
				if (v ~ /\./) {
					d = length(v) - index(v, ".")
					v = sprintf("%." d "f", med)
				} else {
					v = sprintf("%d", med)
				}
			}
			out = out (i > 1 ? " " : "") key[i] "=" v
		}
		print out
	}'
}

# The values of KEY over the lines, comma-separated.
pb_all() {
	local key=$1 line vals=
	shift
	for line in "$@"; do
		vals=${vals:+$vals,}$(pb_get "$line" "$key")
	done
	echo "$vals"
}

# Prints a key=value line as it is, or as JSON with --json.
pb_result() {
	if [ "$PB_JSON" = 1 ]; then
		awk '{
			printf "{"
			for (i = 1; i <= NF; i++) {
				k = $i; sub(/=.*/, "", k); v = substr($i, length(k) + 2)
				if (v !~ /^-?[0-9]+(\.[0-9]+)?$/) v = "\"" v "\""
				printf "%s\"%s\": %s", (i > 1 ? ", " : ""), k, v
			}
			print "}"
		}' <<<"$1"
	else
		printf '%s\n' "$1"
	fi
}
