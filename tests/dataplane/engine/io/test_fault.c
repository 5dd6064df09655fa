/* The dpdk backend's seeded fault layer (dataplane/io/fault.h): the spec
 * parser, and the delay line: due order, jitter bounds, the bound on held
 * frames, and that a seed gives the same faults every run. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "dataplane/engine/io/fault.h"

/* struct fault carries its delay line (12 KiB): static, not on the stack.
 * Criterion runs each test in its own process, so no state carries over. */
static struct fault fa, fb;

/* Frames are opaque to the layer: small integers stand in for mbufs. */
#define PKT(i)	((void *)(uintptr_t)((i) + 1))
#define IDX(p)	((long)(uintptr_t)(p) - 1)

Test(fault, parse_delay_and_jitter)
{
	cr_assert_eq(fault_parse(&fa, "delay_us=20000,jitter_us=10000,drop=10,reorder=50,seed=3", 1),
		     0);
	cr_assert_eq(fa.delay_us, 20000);
	cr_assert_eq(fa.jitter_us, 10000);
	cr_assert_eq(fa.drop, 10);
	cr_assert_eq(fa.reorder, 50);
	cr_assert(fault_active(&fa));
	cr_assert(fault_delays(&fa));
	cr_assert_eq(fault_delay_next(&fa), UINT64_MAX, "an empty line has nothing due");

	/* A delay alone makes the layer active; every roll passes. */
	cr_assert_eq(fault_parse(&fa, "delay_us=5", 1), 0);
	cr_assert(fault_active(&fa));
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(fault_roll(&fa), FAULT_PASS);
	cr_assert_eq(fault_parse(&fa, "jitter_us=5", 1), 0);
	cr_assert(fault_delays(&fa));

	cr_assert_eq(fault_parse(&fa, "drop=10", 1), 0);
	cr_assert(!fault_delays(&fa));
	cr_assert_eq(fault_parse(&fa, "", 1), 0);
	cr_assert(!fault_active(&fa));

	cr_assert_eq(fault_parse(&fa, "delay_us=1000000,jitter_us=1000000", 1), 0,
		     "FAULT_DELAY_US_MAX itself is allowed");
}

Test(fault, parse_errors)
{
	static const char *const bad[] = {
		"delay_us=1000001",	/* over FAULT_DELAY_US_MAX */
		"jitter_us=99999999999",
		"delay_us=-1",		/* strtoul would take it as huge */
		"delay_us=",
		"delay_us=2ms",
		"jitter_us=x",
		"drop=x",		/* was taken as 0 */
		"delay_us",
		"delay=100",		/* unknown key */
		"drop=1001",
		"drop=600,reorder=600",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(fault_parse(&fa, bad[i], 1), -EINVAL, "%s", bad[i]);
}

Test(fault, fixed_delay_keeps_order)
{
	void *p;
	long next = 0;

	cr_assert_eq(fault_parse(&fa, "delay_us=1000", 1), 0);
	/* Ten frames in the same microsecond, ten more later: all tie or
	 * rise, so they leave in the order they came. */
	for (int i = 0; i < 20; i++)
		cr_assert_eq(fault_delay_push(&fa, PKT(i), i < 10 ? 500 : 500 + i), 0);
	cr_assert_eq(fa.delayed, 20);
	cr_assert_eq(fault_delay_next(&fa), 1500);
	cr_assert_null(fault_delay_pop(&fa, 1499), "nothing is due before the delay");
	cr_assert_eq(IDX(fault_delay_pop(&fa, 1500)), 0);
	next = 1;
	while ((p = fault_delay_pop(&fa, 1505)) != NULL)
		cr_assert_eq(IDX(p), next++);
	cr_assert_eq(next, 10, "frames 0..9 are due by 1505");
	cr_assert_eq(fault_delay_next(&fa), 1510);
	while ((p = fault_delay_pop(&fa, 1515)) != NULL)
		cr_assert_eq(IDX(p), next++);
	cr_assert_eq(next, 16, "frames 10..15 are due by 1515");
	cr_assert_eq(fault_delay_next(&fa), 1516);
	while ((p = fault_delay_pop(&fa, UINT64_MAX)) != NULL)
		cr_assert_eq(IDX(p), next++);
	cr_assert_eq(next, 20);
	cr_assert_eq(fault_delay_next(&fa), UINT64_MAX);
}

Test(fault, jitter_within_bounds_and_due_order)
{
	uint64_t last = 0, lo = UINT64_MAX, hi = 0;
	bool out_of_order = false;
	int n = 0;
	void *p;

	cr_assert_eq(fault_parse(&fa, "delay_us=20000,jitter_us=10000,seed=9", 5), 0);
	for (int i = 0; i < FAULT_DELAY_MAX; i++) {
		uint64_t due;

		cr_assert_eq(fault_delay_push(&fa, PKT(i), 1000000 + i), 0);
		/* The new frame's due time is somewhere in the heap: the
		 * line only tells the earliest, so check the bounds on pop. */
		due = fault_delay_next(&fa);
		cr_assert_leq(due, 1000000 + (uint64_t)i + 30000);
	}
	/* Pop in due order; each within [push + delay, push + delay + jitter]. */
	for (uint64_t now = 1000000; n < FAULT_DELAY_MAX; now += 100) {
		while ((p = fault_delay_pop(&fa, now)) != NULL) {
			uint64_t pushed = 1000000 + (uint64_t)IDX(p);
			uint64_t lat;

			cr_assert_geq(now, last, "popped in due order");
			/* Due at most 100 us before this pop (the step). */
			lat = now - pushed;
			cr_assert_geq(lat, 20000, "frame %ld left after %llu us", IDX(p),
				      (unsigned long long)lat);
			cr_assert_lt(lat, 30000 + 100, "frame %ld left after %llu us", IDX(p),
				     (unsigned long long)lat);
			if (lat < lo)
				lo = lat;
			if (lat > hi)
				hi = lat;
			if (IDX(p) != n)
				out_of_order = true;
			last = now;
			n++;
		}
	}
	/* 512 draws spread over the whole 0..10000 range. */
	cr_assert_lt(lo, 20000 + 500);
	cr_assert_gt(hi, 30000 - 500);
	cr_assert(out_of_order, "jitter reorders frames, as netem does");
}

Test(fault, pop_is_exact_heap_order)
{
	uint64_t prev = 0;
	void *p;

	/* Random interleaving of pushes and pops against the heap invariant:
	 * what leaves never has a due time before what left earlier, for
	 * pops at a fixed "now" far in the future. */
	cr_assert_eq(fault_parse(&fa, "jitter_us=1000000,seed=77", 0), 0);
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 9 && fa.nheld < FAULT_DELAY_MAX; i++)
			fault_delay_push(&fa, PKT(i), 0);
		for (int i = 0; i < 4; i++) {
			uint64_t due = fault_delay_next(&fa);

			p = fault_delay_pop(&fa, UINT64_MAX);
			cr_assert_not_null(p);
			/* Within one round's pops the root never goes back. */
			if (i > 0)
				cr_assert_geq(due, prev);
			prev = due;
		}
	}
	prev = 0;
	while (fa.nheld > 0) {
		uint64_t due = fault_delay_next(&fa);

		cr_assert_not_null(fault_delay_pop(&fa, UINT64_MAX));
		cr_assert_geq(due, prev);
		prev = due;
	}
}

Test(fault, bound_refuses_when_full)
{
	cr_assert_eq(fault_parse(&fa, "delay_us=100", 1), 0);
	for (int i = 0; i < FAULT_DELAY_MAX; i++)
		cr_assert_eq(fault_delay_push(&fa, PKT(i), 0), 0);
	/* Full: refused, the frame stays the caller's, and counted. */
	cr_assert_eq(fault_delay_push(&fa, PKT(9999), 0), -ENOBUFS);
	cr_assert_eq(fault_delay_push(&fa, PKT(9999), 0), -ENOBUFS);
	cr_assert_eq(fa.delayed, FAULT_DELAY_MAX);
	cr_assert_eq(fa.delay_full, 2);
	cr_assert_eq(fa.nheld, FAULT_DELAY_MAX);
	/* One out makes room for one. */
	cr_assert_eq(IDX(fault_delay_pop(&fa, 100)), 0);
	cr_assert_eq(fault_delay_push(&fa, PKT(512), 50), 0);
	cr_assert_eq(fault_delay_push(&fa, PKT(513), 50), -ENOBUFS);
	cr_assert_eq(fa.delay_full, 3);
	/* Teardown: UINT64_MAX takes everything, in order, nothing twice. */
	for (long i = 1; i <= FAULT_DELAY_MAX; i++)
		cr_assert_eq(IDX(fault_delay_pop(&fa, UINT64_MAX)), i);
	cr_assert_null(fault_delay_pop(&fa, UINT64_MAX));
}

Test(fault, seeded_determinism)
{
	int differs = 0;

	/* Same spec and salt: the same rolls and the same due times. */
	cr_assert_eq(fault_parse(&fa, "drop=100,dup=50,reorder=100,jitter_us=5000,seed=42", 3), 0);
	cr_assert_eq(fault_parse(&fb, "drop=100,dup=50,reorder=100,jitter_us=5000,seed=42", 3), 0);
	for (int i = 0; i < 2000; i++) {
		cr_assert_eq(fault_roll(&fa), fault_roll(&fb));
		if (fa.nheld == FAULT_DELAY_MAX) {
			fault_delay_pop(&fa, UINT64_MAX);
			fault_delay_pop(&fb, UINT64_MAX);
		}
		fault_delay_push(&fa, PKT(i), (uint64_t)i);
		fault_delay_push(&fb, PKT(i), (uint64_t)i);
		cr_assert_eq(fault_delay_next(&fa), fault_delay_next(&fb));
	}
	cr_assert_eq(fa.dropped, fb.dropped);
	cr_assert_gt(fa.dropped, 0);
	while (fa.nheld > 0)
		cr_assert_eq(fault_delay_pop(&fa, UINT64_MAX), fault_delay_pop(&fb, UINT64_MAX));

	/* Another salt (lcore, direction): other draws. */
	cr_assert_eq(fault_parse(&fa, "jitter_us=5000,seed=42", 3), 0);
	cr_assert_eq(fault_parse(&fb, "jitter_us=5000,seed=42", 4), 0);
	for (int i = 0; i < 16; i++) {
		fault_delay_push(&fa, PKT(i), 0);
		fault_delay_push(&fb, PKT(i), 0);
		differs += fault_delay_next(&fa) != fault_delay_next(&fb);
		fault_delay_pop(&fa, UINT64_MAX);
		fault_delay_pop(&fb, UINT64_MAX);
	}
	cr_assert_gt(differs, 0);
}
