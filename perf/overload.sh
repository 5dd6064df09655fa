#!/bin/bash
# Overload and recovery: R rooms x M members (fan-out as in fanout.sh), offered
# a normal rate, then FACTOR times the server's maximum for a while, then the
# normal rate again. parleyd must push back (refuse posts with an xccos 503,
# or stop reading) rather than queue: every accepted post is delivered exactly
# once, the latency of posts sent after the overload comes back to what it was
# before, and memory stops growing while the overload lasts.
#
#   perf/overload.sh --max DELIV_PER_S [--factor 3] [--normal 2000]
#                    [--before 3] [--over 10] [--after 8]
#                    [--rooms 100] [--members 20] [--size 200] [--inflight 16]
#                    [--series FILE] [common options]
#
# --max is the highest rate the server carries (perf/sweep.sh measures it).
# Result (one line): before_p50_ms/before_p99_ms (posts sent in the normal
# phase before), over_offered_per_s, over_delivered_per_s, refused (posts
# refused in all), after_p50_ms/after_p99_ms (posts sent from 2 s after the
# overload ended), recovery_s (seconds after the overload ended until every
# later second's posts are accepted, none refused, with a p50 within
# max(3 x before_p50, before_p50 + 10 ms); -1: not within --after), rss
# before/at the end of the overload's first and second half/max (MiB),
# missing, dup, errors. With --series, the per-second rows (the curve) go to
# FILE (see parley-bench --series).
set -u
. "$(dirname "$0")/lib.sh"

rooms=100 members=20 size=200 inflight=16 max= factor=3 normal=2000
before=3 over=10 after=8 series=

while [ $# -gt 0 ]; do
	case "$1" in
	--rooms) rooms=$(pb_val "$@") || exit 2; shift 2 ;;
	--members) members=$(pb_val "$@") || exit 2; shift 2 ;;
	--size) size=$(pb_val "$@") || exit 2; shift 2 ;;
	--inflight) inflight=$(pb_val "$@") || exit 2; shift 2 ;;
	--max) max=$(pb_val "$@") || exit 2; shift 2 ;;
	--factor) factor=$(pb_val "$@") || exit 2; shift 2 ;;
	--normal) normal=$(pb_val "$@") || exit 2; shift 2 ;;
	--before) before=$(pb_val "$@") || exit 2; shift 2 ;;
	--over) over=$(pb_val "$@") || exit 2; shift 2 ;;
	--after) after=$(pb_val "$@") || exit 2; shift 2 ;;
	--series) [ $# -ge 2 ] || pb_die "--series needs a file"; series=$2; shift 2 ;;
	-h|--help) pb_usage ;;
	*) pb_other_opt "$@"; shift "$PB_SHIFT" ;;
	esac
done
[ -n "$max" ] || pb_die "--max DELIV_PER_S is needed (the server's maximum, from perf/sweep.sh)"
pb_init

peak=$(python3 -c "print(round($max * $factor))")
profile="$normal:$before,$peak:$over,$normal:$after"
total=$((rooms * members))
limit=$(python3 -c "print(int(60 + $total / 50 + $before + $over + $after + 40))")
lines=()
for ((run = 1; run <= PB_RUNS; run++)); do
	ser=${series:-$(mktemp /tmp/parley-overload-XXXXXX)}
	[ "$PB_RUNS" -gt 1 ] && [ -n "$series" ] && ser=$series.$run
	pb_start_server "$rooms" "$total"
	pb_say "run $run/$PB_RUNS: $rooms rooms x $members members, offered $profile (deliveries/s:seconds)"
	line=$(pb_bench "$limit" fanout --rooms "$rooms" --members "$members" --size "$size" \
		--inflight "$inflight" --profile "$profile" --series "$ser" --drain 10) || exit 2
	pb_stop_server
	# The curve, read back: phases by the second the posts were sent in.
	stats=$(python3 - "$ser" "$before" "$over" "$after" <<'EOF'
import sys
path, before, over, after = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rows = [l.split() for l in open(path) if not l.startswith("#")]
rows = [dict(zip("t off sent ok refused deliv p50 p99 rss cpu".split(), map(float, r))) for r in rows]
def med(v):
    v = sorted(v)
    return v[len(v) // 2] if v else 0
end_over = before + over
pre = [r for r in rows if 1 <= r["t"] < before and r["sent"] > 0]
ovr = [r for r in rows if before <= r["t"] < end_over]
post = [r for r in rows if end_over + 2 <= r["t"] < end_over + after and r["sent"] > 0]
b50, b99 = med([r["p50"] for r in pre]), med([r["p99"] for r in pre])
ok = max(3 * b50, b50 + 10)
rec = None
tail = [r for r in rows if end_over <= r["t"] < end_over + after and r["sent"] > 0]
# A second is back to normal when posts sent in it were delivered, as fast
# as before, and none was refused.
def normal(x):
    return 0 < x["p50"] <= ok and x["refused"] == 0
for i, r in enumerate(tail):
    if all(normal(x) for x in tail[i:]):
        rec = r["t"] - end_over
        break
half = [r for r in ovr if r["rss"] > 0]
rss1 = half[len(half) // 2]["rss"] if half else -1
rss2 = half[-1]["rss"] if half else -1
rss0 = pre[-1]["rss"] if pre else -1
rssmax = max([r["rss"] for r in rows] or [-1])
print("before_p50_ms=%.3f before_p99_ms=%.3f over_offered_per_s=%.0f over_delivered_per_s=%.0f "
      "over_refused=%d after_p50_ms=%.3f after_p99_ms=%.3f recovery_s=%s rss_before_mb=%.1f "
      "rss_over_half_mb=%.1f rss_over_end_mb=%.1f rss_max_mb=%.1f" % (
      b50, b99, med([r["off"] for r in ovr]), sum(r["deliv"] for r in ovr) / max(over, 1),
      sum(r["refused"] for r in ovr), med([r["p50"] for r in post]), max([r["p99"] for r in post] or [0]),
      "%.0f" % rec if rec is not None else "-1", rss0, rss1, rss2, rssmax))
EOF
)
	[ -z "$series" ] && rm -f "$ser"
	line="$(echo "$line" | tr ' ' '\n' | grep -E '^(scenario|rooms|members|posts_sent|posts_ok|refused|expected|delivered|missing|dup|errors|server_rss_kb|gen_bottleneck)=' | tr '\n' ' ')$stats"
	pb_say "run $run: $line"
	lines+=("$line")
done
result=$(pb_median "${lines[@]}")
result="$result max=$max factor=$factor normal=$normal before_s=$before over_s=$over after_s=$after lcores=$PB_LCORES fsync=$PB_FSYNC runs=$PB_RUNS recovery_s_runs=$(pb_all recovery_s "${lines[@]}")"
pb_result "$result"
