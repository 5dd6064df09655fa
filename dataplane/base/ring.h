/* DPDK rte_rings on plain memory: rte_ring_init over cache-line aligned
 * malloc'd memory, so no EAL or memzone is needed (the rings between the
 * lcores and the storage thread, and between lcores for fan-out). Header
 * only: a file that includes it uses DPDK already. */
#ifndef PARLEY_RING_H
#define PARLEY_RING_H

#include <stdlib.h>
#include <sys/types.h>

#include <rte_common.h>
#include <rte_ring.h>

/* A ring named <name> of <memsize> bytes (what rte_ring_get_memsize or
 * rte_ring_get_memsize_elem says for the ring wanted; negative: that
 * call's error), initialised by rte_ring_init with <count> and <flags>.
 * Released with free(). NULL when out of memory or rte_ring_init refuses. */
static inline struct rte_ring *
ring_alloc(const char *name, ssize_t memsize, unsigned count, unsigned flags)
{
	struct rte_ring *r;
	size_t len;

	if (memsize < 0)
		return NULL;
	len = ((size_t)memsize + RTE_CACHE_LINE_SIZE - 1) & ~(size_t)(RTE_CACHE_LINE_SIZE - 1);
	r = aligned_alloc(RTE_CACHE_LINE_SIZE, len);
	if (r == NULL)
		return NULL;
	if (rte_ring_init(r, name, count, flags) != 0) {
		free(r);
		return NULL;
	}
	return r;
}

#endif
