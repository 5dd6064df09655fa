/* Rate limiter: blocking, window expiry, Retry-After, key independence, and
 * no lost or invented failures under concurrent updates. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/sip/ratelimit.h"

#define T0 1700000000ull

static void
fail_n(struct ratelimit *rl, const char *key, unsigned n, uint64_t now)
{
	while (n-- > 0)
		ratelimit_fail(rl, key, strlen(key), now);
}

static bool
blocked(struct ratelimit *rl, const char *key, uint64_t now)
{
	return ratelimit_blocked(rl, key, strlen(key), now);
}

static uint32_t
retry(struct ratelimit *rl, const char *key, uint64_t now)
{
	return ratelimit_retry_after(rl, key, strlen(key), now);
}

Test(ratelimit, create_destroy)
{
	struct ratelimit *rl = ratelimit_create(1000, 5, 60);

	cr_assert_not_null(rl);
	ratelimit_destroy(rl);
	ratelimit_destroy(NULL);
	rl = ratelimit_create(0, 0, 0);		/* clamped, still usable */
	cr_assert_not_null(rl);
	cr_assert_not(blocked(rl, "k", T0));
	ratelimit_fail(rl, "k", 1, T0);
	cr_assert(blocked(rl, "k", T0));
	cr_assert_not(blocked(rl, "k", T0 + 1));
	ratelimit_destroy(rl);
}

Test(ratelimit, blocks_after_max_fail)
{
	struct ratelimit *rl = ratelimit_create(1024, 3, 60);

	cr_assert_not(blocked(rl, "10.0.0.1", T0));
	cr_assert_eq(retry(rl, "10.0.0.1", T0), 0);
	fail_n(rl, "10.0.0.1", 2, T0);
	cr_assert_not(blocked(rl, "10.0.0.1", T0 + 1));
	cr_assert_eq(retry(rl, "10.0.0.1", T0 + 1), 0);
	fail_n(rl, "10.0.0.1", 1, T0 + 2);
	cr_assert(blocked(rl, "10.0.0.1", T0 + 2));
	fail_n(rl, "10.0.0.1", 10, T0 + 3);		/* more failures keep it blocked */
	cr_assert(blocked(rl, "10.0.0.1", T0 + 3));
	ratelimit_destroy(rl);
}

Test(ratelimit, window_expiry_resets)
{
	struct ratelimit *rl = ratelimit_create(1024, 3, 60);

	fail_n(rl, "u", 3, T0);
	cr_assert(blocked(rl, "u", T0));
	cr_assert(blocked(rl, "u", T0 + 59));
	cr_assert_not(blocked(rl, "u", T0 + 60));
	cr_assert_not(blocked(rl, "u", T0 + 1000));
	/* A failure after the window opens a new one with a count of 1. */
	fail_n(rl, "u", 1, T0 + 100);
	cr_assert_not(blocked(rl, "u", T0 + 100));
	fail_n(rl, "u", 1, T0 + 101);
	cr_assert_not(blocked(rl, "u", T0 + 101));
	fail_n(rl, "u", 1, T0 + 159);
	cr_assert(blocked(rl, "u", T0 + 159));
	cr_assert_not(blocked(rl, "u", T0 + 160));
	/* Failures spread over more than a window never block. */
	fail_n(rl, "v", 2, T0);
	fail_n(rl, "v", 1, T0 + 60);
	cr_assert_not(blocked(rl, "v", T0 + 60));
	ratelimit_destroy(rl);
}

Test(ratelimit, retry_after_values)
{
	struct ratelimit *rl = ratelimit_create(1024, 2, 60);

	fail_n(rl, "k", 2, T0 + 10);
	cr_assert_eq(retry(rl, "k", T0 + 10), 60);
	cr_assert_eq(retry(rl, "k", T0 + 11), 59);
	cr_assert_eq(retry(rl, "k", T0 + 69), 1);
	cr_assert_eq(retry(rl, "k", T0 + 70), 0);
	/* Another lcore's clock a second behind the one that opened the window. */
	cr_assert_eq(retry(rl, "k", T0 + 9), 60);
	cr_assert(blocked(rl, "k", T0 + 9));
	ratelimit_destroy(rl);
}

Test(ratelimit, keys_independent)
{
	struct ratelimit *rl = ratelimit_create(4096, 3, 60);
	char key[32];
	unsigned i, blocked_others = 0;

	fail_n(rl, "attacker", 3, T0);
	cr_assert(blocked(rl, "attacker", T0));
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "user%u@example.com", i);
		blocked_others += blocked(rl, key, T0);
	}
	/* Only a slot collision could block another key: 1000 of 4096 slots. */
	cr_assert_leq(blocked_others, 2);
	/* Keys are byte strings: the length matters, not a NUL. */
	cr_assert_not(ratelimit_blocked(rl, "attack", 6, T0) &&
		      ratelimit_blocked(rl, "attacke", 7, T0));
	ratelimit_destroy(rl);
}

Test(ratelimit, keys_hash_differently_per_instance)
{
	/* With one slot everything collides: stricter, never looser. */
	struct ratelimit *rl = ratelimit_create(1, 2, 60);

	fail_n(rl, "a", 1, T0);
	fail_n(rl, "b", 1, T0);
	cr_assert(blocked(rl, "c", T0));
	ratelimit_destroy(rl);
}

#define HAMMER_N 200000

struct hammer {
	struct ratelimit *rl;
	pthread_barrier_t *go;
};

static void *
hammer(void *arg)
{
	struct hammer *h = arg;
	unsigned i;

	pthread_barrier_wait(h->go);
	for (i = 0; i < HAMMER_N; i++) {
		ratelimit_fail(h->rl, "shared", 6, T0);
		(void)ratelimit_blocked(h->rl, "shared", 6, T0);
	}
	return NULL;
}

Test(ratelimit, concurrent_hammer_counts_exactly, .timeout = 60)
{
	/* Limit one above what both threads add together: not blocked after they
	 * finish means the count never exceeded the failures added; blocked after
	 * one more means none was lost. */
	struct ratelimit *rl = ratelimit_create(64, 2 * HAMMER_N + 1, 3600);
	pthread_barrier_t go;
	pthread_t t[2];
	struct hammer h = { rl, &go };
	int i;

	cr_assert_not_null(rl);
	pthread_barrier_init(&go, NULL, 2);
	for (i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, hammer, &h), 0);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	cr_assert_not(ratelimit_blocked(rl, "shared", 6, T0));
	ratelimit_fail(rl, "shared", 6, T0);
	cr_assert(ratelimit_blocked(rl, "shared", 6, T0));
	ratelimit_destroy(rl);
}
