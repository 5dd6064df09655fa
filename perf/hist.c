/* Log-linear histogram; see hist.h. */
#include "perf/hist.h"

static unsigned
bucket_of(uint64_t v)
{
	unsigned msb, shift;

	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) & (HIST_SUB - 1));
}

/* Lowest value of bucket <i>, and its width in <w>. */
static uint64_t
bucket_low(unsigned i, uint64_t *w)
{
	unsigned shift;

	if (i < 2 * HIST_SUB) {
		*w = 1;
		return i;
	}
	shift = i / HIST_SUB - 1;
	*w = (uint64_t)1 << shift;
	return (uint64_t)(HIST_SUB + i % HIST_SUB) << shift;
}

void
hist_add(struct hist *h, uint64_t v)
{
	unsigned i = bucket_of(v);

	if (i >= HIST_BUCKETS)
		i = HIST_BUCKETS - 1;
	h->b[i]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0, w, low;

	if (h->count == 0)
		return 0;
	if (q >= 1.0)
		return h->max;
	rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count)
		rank = h->count - 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen > rank) {
			low = bucket_low(i, &w);
			low += w / 2;
			return low > h->max ? h->max : low;
		}
	}
	return h->max;
}
