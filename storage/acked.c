/* What a room's home made visible, per room: see acked.h. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "storage/acked.h"

#define ROOM_RAW	16

struct slot {
	_Atomic uint32_t	state;		/* 0 free, 1 being claimed, 2 ready */
	uint8_t			room[ROOM_RAW];
	_Atomic uint64_t	seq;
};

struct acked {
	_Atomic bool		full;
	struct slot		v[ACKED_SLOTS];
};

static uint32_t
hash(const uint8_t *room)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < ROOM_RAW; i++)
		h = (h ^ room[i]) * 16777619u;
	return h;
}

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

/* The slot of <room>, claimed if absent and <claim>; NULL if none. */
static struct slot *
find(struct acked *t, const uint8_t *room, bool claim)
{
	uint32_t i = hash(room) & (ACKED_SLOTS - 1);

	for (uint32_t probe = 0; probe < ACKED_SLOTS; probe++, i = (i + 1) & (ACKED_SLOTS - 1)) {
		struct slot *s = &t->v[i];
		uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);

		if (st == 0) {
			uint32_t zero = 0;

			if (!claim)
				return NULL;
			if (atomic_compare_exchange_strong(&s->state, &zero, 1)) {
				memcpy(s->room, room, ROOM_RAW);
				atomic_store_explicit(&s->state, 2, memory_order_release);
				return s;
			}
			st = zero;
		}
		if (st == 1) {
			if (!claim)
				return NULL;	/* being claimed: reads as none yet */
			while (st == 1)		/* another room's home writes its key */
				st = atomic_load_explicit(&s->state, memory_order_acquire);
		}
		if (memcmp(s->room, room, ROOM_RAW) == 0)
			return s;
	}
	return NULL;
}

void
acked_publish(struct acked *t, const uint8_t *room, uint64_t seq)
{
	struct slot *s = find(t, room, true);

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
	struct slot *s = find(t, room, false);

	if (s != NULL)
		return atomic_load_explicit(&s->seq, memory_order_acquire);
	return atomic_load_explicit(&t->full, memory_order_acquire) ? UINT64_MAX : 0;
}
