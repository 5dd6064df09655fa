/* What a room's home made visible, per room: see acked.h. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "dataplane/base/keyslot.h"
#include "storage/acked.h"

struct slot {
	struct keyslot		k;		/* first: dataplane/base/keyslot.h */
	_Atomic uint64_t	seq;
};

struct acked {
	_Atomic bool		full;
	struct slot		v[ACKED_SLOTS];
};

struct acked *
acked_create(void)
{
	return calloc(1, sizeof(struct acked));	/* boot */
}

void
acked_destroy(struct acked *t)
{
	free(t);
}

void
acked_publish(struct acked *t, const uint8_t *room, uint64_t seq)
{
	struct slot *s = (struct slot *)keyslot_find(t->v, sizeof(t->v[0]), ACKED_SLOTS, room,
						     true);

	if (s == NULL) {
		atomic_store_explicit(&t->full, true, memory_order_release);
		return;
	}
	if (seq > atomic_load_explicit(&s->seq, memory_order_relaxed))
		atomic_store_explicit(&s->seq, seq, memory_order_release);
}

uint64_t
acked_get(struct acked *t, const uint8_t *room)
{
	struct slot *s = (struct slot *)keyslot_find(t->v, sizeof(t->v[0]), ACKED_SLOTS, room,
						     false);

	if (s != NULL)
		return atomic_load_explicit(&s->seq, memory_order_acquire);
	return atomic_load_explicit(&t->full, memory_order_acquire) ? UINT64_MAX : 0;
}
