/* A lock-free table of 16-byte keys: see keyslot.h. */
#include <stdatomic.h>
#include <string.h>

#include "dataplane/base/keyslot.h"

uint32_t
keyslot_hash(const uint8_t key[KEYSLOT_KEY])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < KEYSLOT_KEY; i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

struct keyslot *
keyslot_find(void *slots, size_t stride, uint32_t n, const uint8_t key[KEYSLOT_KEY], bool claim)
{
	uint32_t i = keyslot_hash(key) & (n - 1);

	for (uint32_t probe = 0; probe < n; probe++, i = (i + 1) & (n - 1)) {
		struct keyslot *s = (struct keyslot *)((char *)slots + (size_t)i * stride);
		uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);

		if (st == 0) {
			uint32_t zero = 0;

			if (!claim)
				return NULL;
			if (!atomic_compare_exchange_strong(&s->state, &zero, 1)) {
				st = atomic_load_explicit(&s->state, memory_order_acquire);
			} else {
				memcpy(s->key, key, KEYSLOT_KEY);
				atomic_store_explicit(&s->state, 2, memory_order_release);
				return s;
			}
		}
		while (st == 1)		/* another thread is writing the key */
			st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (memcmp(s->key, key, KEYSLOT_KEY) == 0)
			return s;
	}
	return NULL;
}
