/* parley-bench worker threads: one epoll loop per thread over its slice of
 * the simulated clients (agent.h), pacing the posts of that slice.
 *
 * The main thread (bench.c) fills struct bench, calls worker_init() for
 * each worker, starts worker_main() on its own thread, drives the phases
 * and reads the counters; after pthread_join it reads the histograms and
 * calls worker_fini(). */
#ifndef PARLEY_PERF_WORKER_H
#define PARLEY_PERF_WORKER_H

#include "perf/bench-t.h"

/* Gives worker <idx> the clients [first, first + n). 0 or -errno. */
int worker_init(struct worker *w, struct bench *b, unsigned idx, uint32_t first, uint32_t n);
void *worker_main(void *arg);
void worker_fini(struct worker *w);

#endif
