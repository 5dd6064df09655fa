#!/bin/bash
# The fan-out workload at rising offered rates, until delivery latency p99
# passes a limit (50 ms), the server stops keeping up, or the generator
# becomes the bottleneck. Plots latency percentiles against the delivered
# rate (PNG, gnuplot) and reports the highest rate sustained with p99 under
# the limit.
#
#   perf/sweep.sh [--rooms 100] [--members 20] [--size 200]
#                 [--start 2000] [--factor 1.5] [--max-steps 12]
#                 [--duration 5] [--warmup 1] [--p99-limit 50] [--refine 3]
#                 [--png FILE] [common options]
#   perf/sweep.sh --replot FILE.png.dat [--png FILE.png] [the sweep's options]
#
# Rates are deliveries per second offered (posts/s x members). A step is
# sustained when p99 <= the limit, at least 95% of the offered deliveries
# arrived in the window, nothing was lost or refused, and the generator was
# not the bottleneck. After the first step that is not, up to --refine more
# steps bisect (geometrically) between it and the last sustained rate.
# One parleyd serves every step. The data behind the plot
# goes next to the PNG (FILE.dat); each step's result line goes to stderr.
# --replot draws the PNG again from such a file, titled from the options
# given (and $PARLEY_COMMIT, else the commit of the script's checkout).
set -u
. "$(dirname "$0")/lib.sh"

rooms=100 members=20 size=200 start=2000 factor=1.5 max_steps=12 duration=5 warmup=1
limit_ms=50 png= refine=3 replot=

while [ $# -gt 0 ]; do
	case "$1" in
	--rooms) rooms=$(pb_val "$@") || exit 2; shift 2 ;;
	--members) members=$(pb_val "$@") || exit 2; shift 2 ;;
	--size) size=$(pb_val "$@") || exit 2; shift 2 ;;
	--start) start=$(pb_val "$@") || exit 2; shift 2 ;;
	--factor) factor=$(pb_val "$@") || exit 2; shift 2 ;;
	--max-steps) max_steps=$(pb_val "$@") || exit 2; shift 2 ;;
	--duration) duration=$(pb_val "$@") || exit 2; shift 2 ;;
	--warmup) warmup=$(pb_val "$@") || exit 2; shift 2 ;;
	--p99-limit) limit_ms=$(pb_val "$@") || exit 2; shift 2 ;;
	--refine) refine=$(pb_val "$@") || exit 2; shift 2 ;;
	--png) [ $# -ge 2 ] || pb_die "--png needs a file"; png=$2; shift 2 ;;
	--replot) [ $# -ge 2 ] || pb_die "--replot needs a data file"; replot=$2; shift 2 ;;
	-h|--help) pb_usage ;;
	*) pb_other_opt "$@"; shift "$PB_SHIFT" ;;
	esac
done
pb_init
if [ -n "$replot" ]; then
	[ -f "$replot" ] || pb_die "--replot: no file $replot"
	[ -n "$png" ] || png=${replot%.dat}
fi
[ -n "$png" ] || png=$PWD/sweep-${rooms}x${members}-${PB_LCORES}lc-fsync${PB_FSYNC}.png
dat=$png.dat
gnuplot_ok=1
command -v gnuplot >/dev/null || {
	gnuplot_ok=0
	pb_say "gnuplot is missing (apt-get install gnuplot-nox): no plot, only $dat"
}

# plot: the PNG from $dat (sorted by offered rate), titled with the
# configuration; png=none when it could not be drawn.
plot() {
	local commit
	commit=${PARLEY_COMMIT:-$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)}
	{ grep '^#' "$dat" | head -1; grep -v '^#' "$dat" | sort -n -k1,1; } > "$dat.sorted" &&
		mv "$dat.sorted" "$dat"
	gnuplot <<GP || pb_say "gnuplot failed; the data is in $dat"
set terminal pngcairo size 960,600 font ",10"
set output '$png'
set title "parleyd fan-out over TLS: $rooms rooms x $members members, $size-byte messages, $PB_LCORES lcore(s), fsync $([ "$PB_FSYNC" = 1 ] && echo on || echo off)\ncommit $commit, $(date -u +%Y-%m-%d), server CPU $PB_SERVER_CPUS, generator CPU $PB_BENCH_CPUS"
set xlabel "delivered messages per second (author's echo included)"
set ylabel "delivery latency, post sent -> received (ms)"
set logscale y
set format x "%.0f"
set grid
set key bottom right
set yrange [0.1:*]
plot '$dat' using 2:3 with linespoints title 'p50', \\
     '' using 2:4 with linespoints title 'p90', \\
     '' using 2:5 with linespoints title 'p99', \\
     '' using 2:6 with linespoints title 'p99.9', \\
     $limit_ms with lines dashtype 2 linecolor rgb 'gray30' title '$limit_ms ms'
GP
	[ -s "$png" ] || png=none
}

# --replot: only draw the PNG again from a data file of an earlier sweep.
if [ -n "$replot" ]; then
	[ "$gnuplot_ok" = 1 ] || exit 2
	dat=$replot
	plot
	echo "png=$png data=$dat"
	exit 0
fi

total=$((rooms * members))
blimit=$(python3 -c "print(int(60 + $total / 50 + $warmup + $duration + 40))")
pb_start_server "$rooms" "$total"
echo "# offered_deliv_per_s delivered_per_s p50_ms p90_ms p99_ms p999_ms gen_bottleneck server_cpu_s_per_M gen_cpu other_cpu" > "$dat"
best= best_line= best_rate= stop=max_steps steps=0

# measure RATE: one step (median over --runs); sets line, ok, verdict.
measure() {
	local rate=$1 run lines=() deliv p99 gen gcpu bad flagged l
	for ((run = 1; run <= PB_RUNS; run++)); do
		pb_say "step $((steps + 1)): offering $rate deliveries/s (run $run/$PB_RUNS)"
		line=$(pb_bench "$blimit" fanout --rooms "$rooms" --members "$members" --size "$size" \
			--deliv-rate "$rate" --duration "$duration" --warmup "$warmup" --drain 3 -q) || exit 2
		lines+=("$line")
	done
	line=$(pb_median "${lines[@]}")
	# The generator counts as the limit when most runs say so (one run
	# disturbed by another process should not end the sweep).
	flagged=0
	for l in "${lines[@]}"; do
		[ "$(pb_get "$l" gen_bottleneck)" = 0 ] || flagged=$((flagged + 1))
	done
	gen=$(( flagged * 2 > ${#lines[@]} ? 1 : 0 ))
	line=$(sed "s/\(^\| \)gen_bottleneck=[0-9]*/\1gen_bottleneck=$gen/" <<<"$line")
	steps=$((steps + 1))
	pb_say "step $steps: $line"
	deliv=$(pb_get "$line" delivered_per_s)
	p99=$(pb_get "$line" p99_ms)
	gen=$(pb_get "$line" gen_bottleneck)
	gcpu=$(pb_get "$line" gen_cpu)
	bad=$(( $(pb_get "$line" errors) + $(pb_get "$line" missing) + $(pb_get "$line" dup) ))
	echo "$rate $deliv $(pb_get "$line" p50_ms) $(pb_get "$line" p90_ms) $p99 $(pb_get "$line" p999_ms) $gen $(pb_get "$line" server_cpu_s_per_M) $gcpu $(pb_get "$line" other_cpu)" >> "$dat"
	# The generator's own CPU first (then nothing it measured is sure),
	# then the latency limit, then its send lag, then losses or shortfall.
	verdict=$(python3 -c "
d, o, p, g = float('$deliv'), float('$rate'), float('$p99'), float('$gcpu')
if g >= 0.9: print('generator')
elif p > $limit_ms: print('p99')
elif '$gen' != '0': print('generator')
elif $bad > 0 or d < 0.95 * o: print('not_keeping_up')
else: print('ok')")
	if [ "$verdict" = ok ]; then
		best=$deliv
		best_line=$line
		best_rate=$rate
	fi
}

rate=$start
for ((step = 1; step <= max_steps; step++)); do
	measure "$rate"
	if [ "$verdict" != ok ]; then stop=$verdict; break; fi
	rate=$(python3 -c "print(int(round($rate * $factor)))")
done
# Between the last good rate and the first bad one: a few geometric halvings.
if [ "$stop" = p99 ] || [ "$stop" = not_keeping_up ]; then
	lo=${best_rate:-0} hi=$rate
	for ((r = 0; r < refine && lo > 0; r++)); do
		mid=$(python3 -c "import math; print(int(round(math.sqrt($lo * $hi))))")
		[ $((hi - mid)) -gt $((hi / 50)) ] && [ $((mid - lo)) -gt $((lo / 50)) ] || break
		measure "$mid"
		if [ "$verdict" = ok ]; then lo=$mid; else hi=$mid; fi
		[ "$verdict" = generator ] && break
	done
fi
pb_stop_server

if [ "$gnuplot_ok" = 1 ]; then
	plot
else
	png=none
fi
result="scenario=sweep rooms=$rooms members=$members size=$size steps=$steps stop=$stop p99_limit_ms=$limit_ms max_sustained_deliv_per_s=${best:-0}"
if [ -n "$best_line" ]; then
	result="$result at_offered_deliv_per_s=$(pb_get "$best_line" offered_deliv_per_s) p50_ms_at_max=$(pb_get "$best_line" p50_ms) p99_ms_at_max=$(pb_get "$best_line" p99_ms) server_cpu_s_per_M_at_max=$(pb_get "$best_line" server_cpu_s_per_M) server_cpu_s_per_M_others_at_max=$(pb_get "$best_line" server_cpu_s_per_M_others)"
fi
result="$result lcores=$PB_LCORES fsync=$PB_FSYNC server_cpus=$PB_SERVER_CPUS bench_cpus=$PB_BENCH_CPUS shared_cpu=$(pb_shared_cpu) runs=$PB_RUNS png=$png data=$dat"
[ "$stop" = generator ] && pb_say "WARNING: stopped because the load generator became the bottleneck; the server may go higher"
pb_result "$result"
