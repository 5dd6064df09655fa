/* A log-linear histogram of nanosecond values for the load generator.
 *
 * Like HdrHistogram with two significant binary digits' worth of
 * precision: values below 128 ns are exact, above that each power of two is
 * split into 64 buckets, so a reported value is within 1/64 (1.6%) of the
 * truth. Fixed size (about 30 KiB), no allocation, one writer; merge the
 * per-thread copies after the threads are done. */
#ifndef PARLEY_PERF_HIST_H
#define PARLEY_PERF_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS	6
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_BUCKETS	((64 - HIST_SUB_BITS) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t max;
	uint64_t sum;
	uint64_t b[HIST_BUCKETS];
};

void hist_add(struct hist *h, uint64_t v);
/* Adds every sample of <src> to <dst>. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The value at quantile <q> (0..1), the middle of its bucket; 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
