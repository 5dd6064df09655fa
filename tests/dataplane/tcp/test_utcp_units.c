/* The TCP core's building blocks alone: sequence arithmetic (properties over
 * random pairs and across the wrap), the Internet checksum, SipHash vectors,
 * the timer wheel, the send/receive rings with out-of-order reassembly
 * (random segmentation, reordering and duplication), SYN cookies and flow
 * steering. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/tcp/utcp.h"
#include "dataplane/tcp/utcp_buf.h"
#include "dataplane/tcp/utcp_csum.h"
#include "dataplane/tcp/utcp_hash.h"
#include "dataplane/tcp/utcp_seq.h"
#include "dataplane/tcp/utcp_syncookie.h"
#include "dataplane/tcp/utcp_timer.h"

/* xorshift64*: seeded, reproducible. */
static uint64_t rng_state;

static void
rng_seed(uint64_t s)
{
	rng_state = s ? s : 1;
}

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* ---- sequence arithmetic ---- */

Test(utcp_seq, wraparound)
{
	cr_assert(utcp_seq_lt(0xfffffff0u, 0x10u));
	cr_assert(utcp_seq_gt(0x10u, 0xfffffff0u));
	cr_assert(utcp_seq_le(5, 5) && utcp_seq_ge(5, 5));
	cr_assert(!utcp_seq_lt(5, 5) && !utcp_seq_gt(5, 5));
	cr_assert(utcp_seq_lt(0x7fffffffu, 0x80000000u));
	cr_assert(utcp_seq_between(0xfffffff0u, 0x5u, 0x20u));
	cr_assert(!utcp_seq_between(0xfffffff0u, 0x21u, 0x20u));
	cr_assert_eq(utcp_seq_max(0xfffffff0u, 0x10u), 0x10u);
	cr_assert_eq(utcp_seq_min(0xfffffff0u, 0x10u), 0xfffffff0u);
}

Test(utcp_seq, properties_random_pairs)
{
	int i;

	rng_seed(42);
	for (i = 0; i < 200000; i++) {
		uint32_t a = (uint32_t)rng();
		uint32_t d = (uint32_t)(rng() % 0x7fffffffu) + 1;	/* 1 .. 2^31-1 */
		uint32_t b = a + d;					/* b after a */

		cr_assert(utcp_seq_lt(a, b) && utcp_seq_gt(b, a));
		cr_assert(utcp_seq_le(a, b) && !utcp_seq_ge(a, b));
		cr_assert(!utcp_seq_lt(b, a) && !utcp_seq_lt(a, a));
		/* Antisymmetry and totality for distinct values. */
		cr_assert(utcp_seq_lt(a, b) != utcp_seq_lt(b, a));
		/* Translation invariance. */
		uint32_t k = (uint32_t)rng();
		cr_assert_eq(utcp_seq_lt(a + k, b + k), utcp_seq_lt(a, b));
		cr_assert(utcp_seq_between(a, a + d / 2, b));
		cr_assert_eq(utcp_seq_max(a, b), b);
		cr_assert_eq(utcp_seq_min(a, b), a);
	}
}

/* ---- checksum and hash ---- */

Test(utcp_csum, rfc1071_example)
{
	/* RFC 1071 §3 example: sum 0x2ddf0 folds to 0xddf2, complement 0x220d. */
	const uint8_t b[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };

	cr_assert_eq(utcp_csum_fold(utcp_csum_add(0, b, sizeof(b))), 0x220d);
	/* Odd length pads with a zero byte. */
	const uint8_t c[] = { 0x12, 0x34, 0x56 };
	cr_assert_eq(utcp_csum_fold(utcp_csum_add(0, c, 3)), (uint16_t)~(0x1234 + 0x5600));
}

Test(utcp_csum, known_ipv4_header)
{
	/* A classic captured header with checksum 0xb861. */
	uint8_t h[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			  0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };

	cr_assert_eq(utcp_csum_fold(utcp_csum_add(0, h, 20)), 0xb861);
	h[10] = 0xb8;
	h[11] = 0x61;
	cr_assert_eq(utcp_csum_fold(utcp_csum_add(0, h, 20)), 0);
}

Test(utcp_hash, siphash_reference_vectors)
{
	uint8_t key[16], msg[64];
	int i;

	for (i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	/* From the SipHash paper's reference implementation (vectors.h). */
	cr_assert_eq(utcp_hash_siphash(key, msg, 0), 0x726fdb47dd0e0e31ull);
	cr_assert_eq(utcp_hash_siphash(key, msg, 15), 0xa129ca6149be45e5ull);
}

/* ---- timer wheel ---- */

struct fired {
	int n;
	struct utcp_timer *last;
	uint64_t at[64];
	struct utcp_wheel *w;
	struct utcp_timer *rearm;
	uint64_t now;
};

static void
on_fire(void *arg, struct utcp_timer *t)
{
	struct fired *f = arg;

	if (f->n < 64)
		f->at[f->n] = t->expire;
	f->n++;
	f->last = t;
	if (f->rearm == t) {
		f->rearm = NULL;
		utcp_timer_arm(f->w, t, f->now + 5000);
	}
}

Test(utcp_timer, fires_in_order_and_cancels)
{
	struct utcp_wheel w;
	struct utcp_timer t[3];
	struct fired f = { 0 };

	memset(t, 0, sizeof(t));
	cr_assert_eq(utcp_timer_wheel_init(&w, 256, 1000, 0), 0);
	f.w = &w;
	utcp_timer_arm(&w, &t[0], 5000);
	utcp_timer_arm(&w, &t[1], 3000);
	utcp_timer_arm(&w, &t[2], 4000);
	cr_assert_eq(w.armed, 3);
	utcp_timer_cancel(&w, &t[2]);
	utcp_timer_cancel(&w, &t[2]);		/* harmless twice */
	cr_assert_not(utcp_timer_armed(&t[2]));
	utcp_timer_run(&w, 2999, on_fire, &f);
	cr_assert_eq(f.n, 0);
	utcp_timer_run(&w, 3000, on_fire, &f);
	cr_assert_eq(f.n, 1);
	cr_assert_eq(f.last, &t[1]);
	utcp_timer_run(&w, 10000, on_fire, &f);
	cr_assert_eq(f.n, 2);
	cr_assert_eq(f.last, &t[0]);
	cr_assert_eq(w.armed, 0);
	utcp_timer_wheel_fini(&w);
}

Test(utcp_timer, beyond_one_lap_and_big_jumps)
{
	struct utcp_wheel w;
	struct utcp_timer t[2];
	struct fired f = { 0 };

	memset(t, 0, sizeof(t));
	cr_assert_eq(utcp_timer_wheel_init(&w, 16, 1000, 0), 0);	/* 16 ms lap */
	utcp_timer_arm(&w, &t[0], 100000);	/* six laps away */
	utcp_timer_arm(&w, &t[1], 7000);
	for (uint64_t now = 0; now < 99000; now += 1000)
		utcp_timer_run(&w, now, on_fire, &f);
	cr_assert_eq(f.n, 1);
	cr_assert_eq(f.last, &t[1]);
	utcp_timer_run(&w, 100500, on_fire, &f);
	cr_assert_eq(f.n, 2);
	/* A jump far beyond a lap fires everything due in one run. */
	utcp_timer_arm(&w, &t[0], 200000);
	utcp_timer_arm(&w, &t[1], 5000000);
	utcp_timer_run(&w, 1000000, on_fire, &f);
	cr_assert_eq(f.n, 3);
	cr_assert(utcp_timer_armed(&t[1]));
	utcp_timer_run(&w, 6000000, on_fire, &f);
	cr_assert_eq(f.n, 4);
	utcp_timer_wheel_fini(&w);
}

Test(utcp_timer, rearm_from_callback_and_past_expiry)
{
	struct utcp_wheel w;
	struct utcp_timer t = { 0 };
	struct fired f = { 0 };

	cr_assert_eq(utcp_timer_wheel_init(&w, 64, 1000, 50000), 0);
	f.w = &w;
	utcp_timer_arm(&w, &t, 1000);		/* already past: next run */
	f.rearm = &t;
	f.now = 50000;
	utcp_timer_run(&w, 50000, on_fire, &f);
	cr_assert_eq(f.n, 1);
	cr_assert(utcp_timer_armed(&t));	/* re-armed by the callback */
	utcp_timer_run(&w, 54999, on_fire, &f);
	cr_assert_eq(f.n, 1);
	utcp_timer_run(&w, 55000, on_fire, &f);
	cr_assert_eq(f.n, 2);
	utcp_timer_wheel_fini(&w);
}

Test(utcp_timer, random_against_model)
{
	struct utcp_wheel w;
	struct utcp_timer t[200];
	struct fired f = { 0 };
	uint64_t now = 0, due[200];
	int i, step, expect;

	rng_seed(7);
	memset(t, 0, sizeof(t));
	cr_assert_eq(utcp_timer_wheel_init(&w, 128, 1000, 0), 0);
	for (i = 0; i < 200; i++)
		due[i] = 0;
	for (step = 0; step < 3000; step++) {
		i = (int)(rng() % 200);
		if (rng() % 3 == 0) {
			utcp_timer_cancel(&w, &t[i]);
			due[i] = 0;
		} else {
			due[i] = now + 1 + rng() % 500000;
			utcp_timer_arm(&w, &t[i], due[i]);
		}
		now += rng() % 3000;
		expect = 0;
		for (i = 0; i < 200; i++)
			if (due[i] && due[i] <= now) {
				expect++;
				due[i] = 0;
			}
		f.n = 0;
		utcp_timer_run(&w, now, on_fire, &f);
		cr_assert_eq(f.n, expect, "step %d", step);
	}
	utcp_timer_wheel_fini(&w);
}

/* ---- rings and reassembly ---- */

Test(utcp_buf, send_ring_wraps)
{
	uint8_t mem[10], out[10];
	struct utcp_sbuf b;

	utcp_buf_sinit(&b, mem, sizeof(mem));
	cr_assert_eq(utcp_buf_sappend(&b, "abcdefgh", 8), 8);
	utcp_buf_sconsume(&b, 6);
	cr_assert_eq(utcp_buf_sappend(&b, "ijklmnopq", 9), 8);	/* 2 + 8 = full */
	cr_assert_eq(utcp_buf_sfree(&b), 0);
	utcp_buf_speek(&b, 0, out, 10);
	cr_assert_arr_eq(out, "ghijklmnop", 10);
	utcp_buf_speek(&b, 7, out, 3);
	cr_assert_arr_eq(out, "nop", 3);
}

Test(utcp_buf, ooo_ranges_merge_and_sack_order)
{
	uint8_t mem[100], out[100];
	struct utcp_rbuf b;
	struct utcp_range r[8];

	utcp_buf_rinit(&b, mem, sizeof(mem), 100);
	cr_assert_eq(utcp_buf_rwrite(&b, 10, "KLMNO", 5), 0);	/* [10,15) */
	cr_assert_eq(utcp_buf_rwrite(&b, 30, "efg", 3), 0);	/* [30,33) */
	cr_assert_eq(utcp_buf_rwrite(&b, 20, "uvw", 3), 0);	/* [20,23) */
	cr_assert_eq(b.nranges, 3);
	cr_assert_eq(b.ooo_bytes, 11);
	cr_assert_eq(utcp_buf_rsack(&b, r, 8), 3);
	cr_assert_eq(r[0].start, 20);		/* newest first */
	cr_assert_eq(r[1].start, 30);
	cr_assert_eq(r[2].start, 10);
	cr_assert_eq(utcp_buf_rsack(&b, r, 2), 2);
	/* Bridge [10,15) and [20,23) with an overlapping write. */
	cr_assert_eq(utcp_buf_rwrite(&b, 13, "NOPQRSTUV", 9), 0);
	cr_assert_eq(b.nranges, 2);
	cr_assert_eq(b.r[0].start, 10);
	cr_assert_eq(b.r[0].end, 23);
	cr_assert_eq(b.ooo_bytes, 16);
	/* In-order data reaching the range absorbs it without a copy. */
	cr_assert_eq(utcp_buf_rwrite(&b, 0, "ABCDEFGHIJK", 11), 23);
	cr_assert_eq(b.nranges, 1);
	cr_assert_eq(utcp_buf_rread(&b, out, 100), 23);
	cr_assert_arr_eq(out, "ABCDEFGHIJKLMNOPQRSTUVw", 23);	/* last byte from "uvw" */
	cr_assert_eq(b.nxt, 23);
}

Test(utcp_buf, ooo_cap_and_range_limit)
{
	uint8_t mem[1000], src[64] = { 0 };
	struct utcp_rbuf b;
	int i;

	utcp_buf_rinit(&b, mem, sizeof(mem), 20);
	cr_assert_eq(utcp_buf_rwrite(&b, 100, src, 15), 0);
	cr_assert_eq(utcp_buf_rwrite(&b, 200, src, 10), -ENOBUFS);	/* 25 > 20 */
	cr_assert_eq(utcp_buf_rwrite(&b, 200, src, 5), 0);
	cr_assert_eq(b.ooo_bytes, 20);
	/* Overlapping what we already hold costs nothing extra. */
	cr_assert_eq(utcp_buf_rwrite(&b, 100, src, 15), 0);
	utcp_buf_rinit(&b, mem, sizeof(mem), 1000);
	for (i = 0; i < UTCP_OOO_RANGES; i++)
		cr_assert_eq(utcp_buf_rwrite(&b, 10 + 20 * (uint32_t)i, src, 1), 0);
	cr_assert_eq(utcp_buf_rwrite(&b, 500, src, 1), -ENOBUFS);
	/* Joining two ranges frees a slot. */
	cr_assert_eq(utcp_buf_rwrite(&b, 10, src, 21), 0);
	cr_assert_eq(utcp_buf_rwrite(&b, 500, src, 1), 0);
	cr_assert_eq(utcp_buf_rwrite(&b, 600, src, 1), -ENOBUFS);
	/* Beyond the free space: cut off / refused. */
	utcp_buf_rinit(&b, mem, sizeof(mem), 1000);
	cr_assert_eq(utcp_buf_rwrite(&b, 995, src, 10), 0);
	cr_assert_eq(b.r[0].end, 1000);
	cr_assert_eq(utcp_buf_rwrite(&b, 1000, src, 10), -ENOBUFS);
}

/* Property: any segmentation, order and duplication of a stream reassembles
 * to the same bytes, provided every byte is eventually delivered. */
Test(utcp_buf, reassembly_property_random)
{
	enum { N = 6000, CAP = 2048 };
	static uint8_t src[N], dst[N], mem[CAP];
	struct utcp_rbuf b;
	int round;

	for (round = 0; round < 200; round++) {
		size_t got = 0;
		uint64_t base;

		rng_seed(1000 + (uint64_t)round);
		for (int i = 0; i < N; i++)
			src[i] = (uint8_t)rng();
		utcp_buf_rinit(&b, mem, CAP, (uint32_t)(rng() % CAP) + 64);
		while (got < N) {
			/* The sender keeps a window of CAP - unread bytes; it
			 * sends random pieces of it in random order. */
			uint32_t wnd = utcp_buf_rfree(&b), off, len;

			base = b.nxt;
			off = (uint32_t)(rng() % (wnd + 1));
			if (rng() % 4 == 0)
				off = 0;		/* the hole gets filled sometimes */
			len = (uint32_t)(rng() % 700) + 1;
			if (base + off >= N)
				continue;
			if (base + off + len > N)
				len = (uint32_t)(N - base - off);
			int r = utcp_buf_rwrite(&b, off, src + base + off, len);

			cr_assert(r >= 0 || r == -ENOBUFS);
			cr_assert(b.ooo_bytes <= b.ooo_max);
			/* The reader drains at random. */
			if (rng() % 2) {
				uint32_t n = utcp_buf_rread(&b, dst + got,
							    (uint32_t)(rng() % 1500));
				got += n;
			}
			if (b.nxt == N) {
				got += utcp_buf_rread(&b, dst + got, N);
			}
		}
		cr_assert_arr_eq(dst, src, N, "round %d", round);
		cr_assert_eq(b.nranges, 0);
	}
}

Test(utcp_buf, peek_spans_and_consume)
{
	uint8_t mem[8];
	struct utcp_rbuf b;
	const void *p[2];
	size_t l[2];
	uint8_t x[8];

	utcp_buf_rinit(&b, mem, 8, 8);
	cr_assert_eq(utcp_buf_rpeek(&b, p, l), 0);
	utcp_buf_rwrite(&b, 0, "abcdef", 6);
	utcp_buf_rread(&b, x, 5);
	utcp_buf_rwrite(&b, 0, "ghijk", 5);		/* wraps */
	cr_assert_eq(utcp_buf_rpeek(&b, p, l), 2);
	cr_assert_eq(l[0], 3);
	cr_assert_arr_eq(p[0], "fgh", 3);
	cr_assert_eq(l[1], 3);
	cr_assert_arr_eq(p[1], "ijk", 3);
	utcp_buf_rconsume(&b, 4);
	cr_assert_eq(utcp_buf_rread(&b, x, 8), 2);
	cr_assert_arr_eq(x, "jk", 2);
}

/* ---- SYN cookies ---- */

Test(utcp_buf, skip_keeps_out_of_order_bytes_in_place)
{
	uint8_t mem[64], out[64];
	struct utcp_rbuf b;

	utcp_buf_rinit(&b, mem, sizeof(mem), 64);
	cr_assert_eq(utcp_buf_rwrite(&b, 0, "0123456789", 10), 10);
	cr_assert_eq(utcp_buf_rread(&b, out, 10), 10);
	cr_assert_eq(utcp_buf_rwrite(&b, 8, "ijkl", 4), 0);	/* stream 18..22 */
	cr_assert_eq(utcp_buf_rskip(&b, 5), 0, "stream 10..15 taken elsewhere");
	cr_assert_eq(b.len, 0);
	cr_assert_eq(utcp_buf_rwrite(&b, 0, "fgh", 3), 7, "fills 15..18, absorbs 18..22");
	cr_assert_eq(utcp_buf_rread(&b, out, sizeof(out)), 7);
	cr_assert_arr_eq(out, "fghijkl", 7);
	/* Skipping up to a range absorbs it. */
	cr_assert_eq(utcp_buf_rwrite(&b, 4, "wxyz", 4), 0);
	cr_assert_eq(utcp_buf_rskip(&b, 6), 2, "the range's last two bytes join");
	cr_assert_eq(utcp_buf_rread(&b, out, sizeof(out)), 2);
	cr_assert_arr_eq(out, "yz", 2);
	/* Wrap: head moves modulo cap. */
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(utcp_buf_rskip(&b, 13), 0);
		cr_assert_eq(utcp_buf_rwrite(&b, 0, "ab", 2), 2);
		cr_assert_eq(utcp_buf_rread(&b, out, 2), 2);
		cr_assert_arr_eq(out, "ab", 2);
	}
}

Test(utcp_buf, pool_on_demand_cap_and_reuse)
{
	struct utcp_buf_pool p;
	void *b[40], *again;
	int i;

	cr_assert_eq(utcp_buf_pool_init(&p, 1000, 40), 0);
	cr_assert_eq(p.blk, 1024, "rounded to 64 bytes");
	cr_assert_eq(utcp_buf_pool_bytes(&p), 0, "nothing up front");
	for (i = 0; i < 40; i++) {
		b[i] = utcp_buf_pool_get(&p);
		cr_assert_not_null(b[i]);
		cr_assert_eq((uintptr_t)b[i] % 64, 0);
		memset(b[i], i, 1024);			/* ASan: the whole block is ours */
	}
	cr_assert_null(utcp_buf_pool_get(&p), "the cap");
	cr_assert_eq(utcp_buf_pool_bytes(&p), 40 * 1024);
	for (i = 0; i < 40; i++)
		for (int j = i + 1; j < 40; j++)
			cr_assert_neq(b[i], b[j]);
	utcp_buf_pool_put(&p, b[7]);
	utcp_buf_pool_put(&p, NULL);
	again = utcp_buf_pool_get(&p);
	cr_assert_not_null(again, "room again after a put");
	cr_assert_null(utcp_buf_pool_get(&p));
	cr_assert_leq(utcp_buf_pool_bytes(&p), 40 * 1024);
	utcp_buf_pool_put(&p, again);
	for (i = 0; i < 40; i++)
		if (i != 7)
			utcp_buf_pool_put(&p, b[i]);
	cr_assert_eq(p.used, 0);
	utcp_buf_pool_fini(&p);
	utcp_buf_pool_fini(&p);			/* a zeroed pool is fine */
}

Test(utcp_syncookie, roundtrip_expiry_and_tamper)
{
	uint8_t key[16] = { 1, 2, 3 };
	uint16_t mss, mss2;
	uint64_t t0 = 1000ull * 1000000;
	uint32_t c = utcp_syncookie_make(key, 1, 2, 3, 4, 12345, 1460, t0, &mss);

	cr_assert_eq(mss, 1460);
	cr_assert_eq(utcp_syncookie_check(key, 1, 2, 3, 4, 12345, c, t0, &mss2), 0);
	cr_assert_eq(mss2, 1460);
	/* Valid into the next period, not two periods later. */
	cr_assert_eq(utcp_syncookie_check(key, 1, 2, 3, 4, 12345, c,
					  t0 + UTCP_SYNCOOKIE_PERIOD_US, &mss2), 0);
	cr_assert_eq(utcp_syncookie_check(key, 1, 2, 3, 4, 12345, c,
					  t0 + 2 * UTCP_SYNCOOKIE_PERIOD_US + 1, &mss2), -EINVAL);
	/* Other tuple, other ISN, flipped bits (MSS index) are rejected. */
	cr_assert_eq(utcp_syncookie_check(key, 1, 2, 3, 5, 12345, c, t0, &mss2), -EINVAL);
	cr_assert_eq(utcp_syncookie_check(key, 1, 2, 3, 4, 12346, c, t0, &mss2), -EINVAL);
	cr_assert_eq(utcp_syncookie_check(key, 1, 2, 3, 4, 12345, c ^ (1u << 24), t0, &mss2),
		     -EINVAL);
	cr_assert_eq(utcp_syncookie_check(key, 1, 2, 3, 4, 12345, c + 1, t0, &mss2), -EINVAL);
	/* MSS picks the largest table entry not above the peer's. */
	utcp_syncookie_make(key, 1, 2, 3, 4, 1, 1300, t0, &mss);
	cr_assert_eq(mss, 1300);
	utcp_syncookie_make(key, 1, 2, 3, 4, 1, 1000, t0, &mss);
	cr_assert_eq(mss, 536);
	utcp_syncookie_make(key, 1, 2, 3, 4, 1, 9000, t0, &mss);
	cr_assert_eq(mss, 1460);
}

Test(utcp_syncookie, options_in_timestamp)
{
	int ws;
	bool sack;
	uint32_t ts = utcp_syncookie_tsval(100000, 7, true);

	cr_assert(utcp_seq_le(ts, 100000));
	cr_assert(utcp_syncookie_tsdecode(ts, &ws, &sack));
	cr_assert_eq(ws, 7);
	cr_assert(sack);
	ts = utcp_syncookie_tsval(5, -1, false);
	cr_assert(utcp_seq_le(ts, 5));
	cr_assert(utcp_syncookie_tsdecode(ts, &ws, &sack));
	cr_assert_eq(ws, -1);
	cr_assert_not(sack);
	cr_assert_not(utcp_syncookie_tsdecode(0x40, &ws, &sack));
}

/* ---- flow steering ---- */

Test(utcp_steer, stable_spread_and_packet_form)
{
	uint8_t key[16] = { 9, 9, 9 };
	int count[4] = { 0 }, i;
	uint8_t pkt[40] = { 0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6 };

	for (i = 0; i < 40000; i++) {
		uint16_t l = utcp_steer(key, 4, 0x0a000001, 443, 0x0a000002 + (uint32_t)i,
					(uint16_t)(1024 + i));

		cr_assert_lt(l, 4);
		cr_assert_eq(l, utcp_steer(key, 4, 0x0a000001, 443, 0x0a000002 + (uint32_t)i,
					   (uint16_t)(1024 + i)));
		count[l]++;
	}
	for (i = 0; i < 4; i++)
		cr_assert(count[i] > 9000 && count[i] < 11000, "lcore %d: %d", i, count[i]);
	cr_assert_eq(utcp_steer(key, 1, 1, 2, 3, 4), 0);
	/* Packet form: src 10.0.0.9:4000 -> dst 10.0.0.1:443. */
	pkt[12] = 10; pkt[15] = 9;
	pkt[16] = 10; pkt[19] = 1;
	pkt[20] = 4000 >> 8; pkt[21] = 4000 & 0xff;
	pkt[22] = 443 >> 8; pkt[23] = 443 & 0xff;
	cr_assert_eq(utcp_steer_packet(key, 4, pkt, sizeof(pkt)),
		     utcp_steer(key, 4, 0x0a000001, 443, 0x0a000009, 4000));
	pkt[9] = 17;
	cr_assert_eq(utcp_steer_packet(key, 4, pkt, sizeof(pkt)), -1);
	cr_assert_eq(utcp_steer_packet(key, 4, pkt, 10), -1);
}
