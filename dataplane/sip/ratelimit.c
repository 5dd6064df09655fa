/* Failed-login rate limiting without locks (see ratelimit.h).
 *
 * Each slot is one _Atomic uint64_t: the upper 32 bits hold the second the
 * current window started (now_s truncated to 32 bits; differences are taken
 * modulo 2^32), the lower 32 bits the failures counted in it. A slot with zero
 * failures is empty whatever its start. Windows are fixed: the first failure
 * after a window ended opens a new one. Updates are compare-and-swap loops, so
 * concurrent failures are never lost and a count never exceeds the failures
 * actually reported (it saturates at UINT32_MAX).
 *
 * The slot index is SipHash-2-4 of the key under a random per-instance key, so
 * a remote party cannot choose keys that share a slot with a victim's.
 *
 * A <max_fail> or <window_s> of 0 given to ratelimit_create is taken as 1. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "dataplane/base/siphash.h"
#include "dataplane/sip/ratelimit.h"

#define SLOTS_MAX	(1u << 30)

struct ratelimit {
	uint8_t key[SIPHASH_KEY_LEN];	/* hash key; set at creation, then read-only */
	uint32_t mask;			/* slots - 1 */
	uint32_t max_fail;
	uint32_t window_s;
	_Atomic uint64_t *slot;		/* owned; freed by ratelimit_destroy */
};

/* ---- slots ---- */

static inline uint32_t
w_start(uint64_t w)
{
	return (uint32_t)(w >> 32);
}

static inline uint32_t
w_fails(uint64_t w)
{
	return (uint32_t)w;
}

/* Seconds of <w>'s window already elapsed at <now>, or -1 when the slot is
 * empty or its window has ended. A start slightly ahead of <now> (another
 * lcore read the clock a little later) counts as just started. */
static int64_t
w_elapsed(const struct ratelimit *rl, uint64_t w, uint64_t now_s)
{
	int32_t d;

	if (w_fails(w) == 0)
		return -1;
	d = (int32_t)((uint32_t)now_s - w_start(w));
	if (d < 0)
		d = 0;
	if ((uint32_t)d >= rl->window_s)
		return -1;
	return d;
}

static _Atomic uint64_t *
slot_of(struct ratelimit *rl, const void *key, size_t klen)
{
	return &rl->slot[siphash24(rl->key, key, klen) & rl->mask];
}

struct ratelimit *
ratelimit_create(uint32_t slots, uint32_t max_fail, uint32_t window_s)
{
	struct ratelimit *rl;
	uint8_t key[16];
	uint32_t n = 1, i;

	while (n < slots && n < SLOTS_MAX)
		n <<= 1;
	rl = calloc(1, sizeof(*rl));
	if (rl == NULL)
		return NULL;
	rl->slot = calloc(n, sizeof(*rl->slot));
	if (rl->slot == NULL)
		goto out_free_rl;
	for (i = 0; i < n; i++)
		atomic_init(&rl->slot[i], 0);
	/* Without a random key the limiter still works; it is only easier to
	 * aim collisions at, so fall back to a weaker seed instead of failing. */
	if (RAND_bytes(key, sizeof(key)) != 1) {
		uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)rl;

		memcpy(key, &seed, 8);
		memcpy(key + 8, &seed, 8);
	}
	memcpy(rl->key, key, sizeof(rl->key));
	rl->mask = n - 1;
	rl->max_fail = max_fail > 0 ? max_fail : 1;
	rl->window_s = window_s > 0 ? window_s : 1;
	return rl;

out_free_rl:
	free(rl);
	return NULL;
}

void
ratelimit_destroy(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	free(rl->slot);
	free(rl);
}

bool
ratelimit_blocked(struct ratelimit *rl, const void *key, size_t klen, uint64_t now_s)
{
	uint64_t w = atomic_load_explicit(slot_of(rl, key, klen), memory_order_relaxed);

	return w_elapsed(rl, w, now_s) >= 0 && w_fails(w) >= rl->max_fail;
}

void
ratelimit_fail(struct ratelimit *rl, const void *key, size_t klen, uint64_t now_s)
{
	_Atomic uint64_t *s = slot_of(rl, key, klen);
	uint64_t w = atomic_load_explicit(s, memory_order_relaxed), nw;

	do {
		if (w_elapsed(rl, w, now_s) < 0)
			nw = (uint64_t)(uint32_t)now_s << 32 | 1;
		else if (w_fails(w) == UINT32_MAX)
			return;
		else
			nw = w + 1;
	} while (!atomic_compare_exchange_weak_explicit(s, &w, nw, memory_order_relaxed,
							memory_order_relaxed));
}

uint32_t
ratelimit_retry_after(struct ratelimit *rl, const void *key, size_t klen, uint64_t now_s)
{
	uint64_t w = atomic_load_explicit(slot_of(rl, key, klen), memory_order_relaxed);
	int64_t el = w_elapsed(rl, w, now_s);

	if (el < 0 || w_fails(w) < rl->max_fail)
		return 0;
	return rl->window_s - (uint32_t)el;
}
