/* Failed-login rate limiting, shared by all lcores without locks.
 *
 * A fixed table of slots, each a (window start, failures) pair packed into one
 * 64-bit atomic word, indexed by a keyed hash of the key (a source address or
 * a user name). Collisions only make the limit stricter for the colliding
 * keys, never looser. Memory is fixed at creation; nothing is allocated after.
 *
 * ratelimit_create/destroy: boot thread. The rest: any lcore, concurrently. */
#ifndef PARLEY_RATELIMIT_H
#define PARLEY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/* <max_fail> failures per <window_s> seconds per key; <slots> rounded up to a
 * power of two. NULL on allocation failure. */
struct ratelimit *ratelimit_create(uint32_t slots, uint32_t max_fail, uint32_t window_s);
void ratelimit_destroy(struct ratelimit *rl);	/* accepts NULL */

/* True when <key> has reached the limit in the current window at <now_s>
 * (further attempts must be refused without checking the password). */
bool ratelimit_blocked(struct ratelimit *rl, const void *key, size_t klen, uint64_t now_s);

/* Counts one failure for <key> at <now_s>. */
void ratelimit_fail(struct ratelimit *rl, const void *key, size_t klen, uint64_t now_s);

/* Seconds until <key>'s window ends (for Retry-After), 0 if not blocked. */
uint32_t ratelimit_retry_after(struct ratelimit *rl, const void *key, size_t klen,
			       uint64_t now_s);

#endif
