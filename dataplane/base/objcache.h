/* A per-lcore cache of fixed-size objects (connections, dialogs): objects
 * freed on an lcore go on its free list and are handed out again, so once
 * the lcore has seen its peak it allocates nothing. Owning lcore only. The
 * build option -Dpools=passthrough maps get/put straight onto calloc/free,
 * for ASan and Valgrind. */
#ifndef PARLEY_OBJCACHE_H
#define PARLEY_OBJCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/base/bug.h"

struct objcache {
	void		*head;		/* free list, linked through the first word */
	uint32_t	n;		/* objects on the list */
	uint32_t	max;		/* more than this go back to malloc */
	size_t		size;
	uint64_t	allocs;		/* times the list was empty (malloc) */
};

static inline void
objcache_init(struct objcache *oc, size_t size, uint32_t max)
{
	memset(oc, 0, sizeof(*oc));
	oc->size = size < sizeof(void *) ? sizeof(void *) : size;
	oc->max = max;
}

/* A zeroed object, or NULL when out of memory. */
static inline void *
objcache_get(struct objcache *oc)
{
#ifndef PARLEY_POOLS_PASSTHROUGH
	void *p = oc->head;

	if (p != NULL) {
		BUG_ON(oc->n == 0);	/* the count and the list disagree */
		oc->head = *(void **)p;
		oc->n--;
		memset(p, 0, oc->size);
		return p;
	}
#endif
	oc->allocs++;
	return calloc(1, oc->size);
}

static inline void
objcache_put(struct objcache *oc, void *p)
{
	if (p == NULL)
		return;
#ifndef PARLEY_POOLS_PASSTHROUGH
	if (oc->n < oc->max) {
		BUG_ON(p == oc->head);	/* put twice */
		*(void **)p = oc->head;
		oc->head = p;
		oc->n++;
		return;
	}
#endif
	free(p);
}

/* Frees every cached object (engine teardown). */
static inline void
objcache_fini(struct objcache *oc)
{
	while (oc->head != NULL) {
		void *p = oc->head;

		oc->head = *(void **)p;
		free(p);
	}
	oc->n = 0;
}

#endif
