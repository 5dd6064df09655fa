#!/bin/bash
# The fuzzing step of ./parley test: every libFuzzer target of tests/fuzz
# runs for a bounded time from a scratch copy of its seed corpus. A crash,
# leak, timeout or out-of-memory fails the step; its reproducer is kept
# under $PARLEY_FUZZ_OUT (default build-fuzz/findings) and printed as hex.
#   tests/fuzz/run.sh BUILDDIR [SECONDS_PER_TARGET]
# Ends with one line "fuzz: N passed, M failed".
set -uo pipefail
build=${1:?usage: run.sh BUILDDIR [SECONDS]}
# Absolute: the targets run in a scratch directory.
build=$(cd "$build" && pwd) || exit 1
secs=${2:-${PARLEY_FUZZ_SECONDS:-15}}
src=$(cd "$(dirname "$0")" && pwd)
out=${PARLEY_FUZZ_OUT:-$build/findings}
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 1
work=$(mktemp -d /tmp/parley-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Per-target options: what each reads (see README.md).
declare -A opts=(
	[sipmsg]="-max_len=8192"
	[sipuri]="-max_len=2048"
	[digest]="-max_len=4096"
	[http1]="-max_len=8192"
	[peerframe]="-max_len=8192"
	[xccos]="-max_len=16384"
	[utcp]="-max_len=4096 -len_control=0"
	[arp]="-max_len=2048"
	[htdigest]="-max_len=4096"
	[ctlreq]="-max_len=4096"
	[config]="-max_len=4096"
	[tlsrec]="-max_len=4096 -len_control=0"
	[xcmd]="-max_len=8192"
)
pass=0
fail=0
for t in $(ls "$src/corpus"); do
	bin=$build/tests/fuzz/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "fuzz_$t: not built ($bin)" >&2
		fail=$((fail + 1))
		continue
	fi
	cp -r "$src/corpus/$t" "$work/$t"
	# shellcheck disable=SC2086
	if (cd "$work" && "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$out/$t-" ${opts[$t]:-} "$work/$t") \
		>"$work/$t.log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
		echo "fuzz_$t: ok, ${runs:-?} inputs in ${secs}s"
		pass=$((pass + 1))
	else
		echo "fuzz_$t: FAILED; last lines of its log:" >&2
		tail -n 40 "$work/$t.log" >&2
		for f in "$out/$t"-*; do
			[ -f "$f" ] || continue
			echo "reproducer $f:" >&2
			od -An -tx1 -v "$f" | head -n 64 >&2
		done
		fail=$((fail + 1))
	fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
