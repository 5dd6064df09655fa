/* parley-bench: the result of a run, from the workers' counters and
 * histograms and the samples taken at the edges of the measurement window.
 * One line of key=value pairs on stdout, or a JSON object (--json);
 * warnings on stderr. Main thread, after the workers were joined. */
#ifndef PARLEY_PERF_REPORT_H
#define PARLEY_PERF_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "perf/bench-t.h"
#include "perf/procstat.h"

struct sample {
	uint64_t	t;				/* CLOCK_MONOTONIC ns */
	double		thread_cpu[BENCH_THREADS_MAX];	/* each worker's CPU seconds */
	double		proc_cpu;			/* the whole generator's */
	double		sys_busy;			/* the whole machine's */
	struct procstat	srv;
	bool		srv_ok;
};

/* <base>: the server before any client connected (NULL: not measured).
 * Returns the exit status: 0, or 1 when there were errors or losses. */
int report(struct bench *b, const struct procstat *base, const struct sample *s0,
	   const struct sample *s1);

#endif
