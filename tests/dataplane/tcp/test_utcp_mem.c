/* Connection buffer memory and the zero-copy receive hook: buffers taken on
 * demand from the stack's pool and given back when a connection is freed,
 * the memory cap refusing new connections cleanly, and in-order payload
 * handed to the app straight from the packet. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/dataplane/tcp/utcp_harness.h"

#define PER	(16384u + 16384u)	/* th_config: sndbuf + rcvbuf */

static struct oseg O;

static struct utcp_conn *
open_conn(uint16_t sport, uint32_t *ps, uint32_t *os)
{
	struct pseg syn = { .mss = 1460 };

	return th_accept(&th_s, sport, &syn, ps, os, NULL);
}

TestSuite(mem, .init = th_suite_init, .fini = th_suite_fini);

/* 32768 connections of 64 + 64 KiB would be 4 GiB up front; the stack holds
 * none of it until connections open. */
Test(mem, no_buffer_memory_up_front)
{
	struct utcp_config cfg;

	th_config(&cfg);
	cfg.max_conns = 32768;
	cfg.sndbuf = cfg.rcvbuf = 64 * 1024;
	th_reinit(&th_s, &cfg);
	cr_assert_eq(utcp_buf_mem(th_s.st), 0);
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
}

/* Thousands of connections opened and closed one after another reuse the
 * same block: memory stays at one slab at most. */
Test(mem, open_close_churn_keeps_memory_bounded)
{
	uint32_t ps, os;
	uint64_t peak = 0;
	int i;

	cr_assert_eq(utcp_buf_mem(th_s.st), 0);
	for (i = 0; i < 3000; i++) {
		struct utcp_conn *c = open_conn((uint16_t)(10000 + i), &ps, &os);

		cr_assert_eq(utcp_write(c, th_pat, 1000), 1000);
		if (utcp_buf_mem(th_s.st) > peak)
			peak = utcp_buf_mem(th_s.st);
		utcp_abort(c);
		th_drain(&th_s);
	}
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
	cr_assert_geq(peak, PER);
	cr_assert_leq(peak, 1u << 20, "one slab at most: %lu bytes", (unsigned long)peak);
	cr_assert_leq(utcp_buf_mem(th_s.st), 1u << 20);
}

/* Memory follows the most connections open at once, and blocks are reused
 * (not grown again) when the next wave opens. */
Test(mem, memory_follows_concurrent_connections)
{
	struct utcp_conn *c[40];
	uint32_t ps, os;
	uint64_t after_first;
	int i, round;

	for (round = 0; round < 3; round++) {
		for (i = 0; i < 40; i++)
			c[i] = open_conn((uint16_t)(20000 + round * 100 + i), &ps, &os);
		cr_assert_eq(utcp_conn_count(th_s.st), 40);
		cr_assert_geq(utcp_buf_mem(th_s.st), 40ull * PER);
		if (round == 0)
			after_first = utcp_buf_mem(th_s.st);
		else
			cr_assert_eq(utcp_buf_mem(th_s.st), after_first, "blocks reused");
		for (i = 0; i < 40; i++)
			utcp_abort(c[i]);
		th_drain(&th_s);
		cr_assert_eq(utcp_conn_count(th_s.st), 0);
	}
}

/* At the cap a SYN is refused with a RST and counted, utcp_connect() says
 * -ENOMEM; a closed connection makes room again. */
Test(mem, cap_refuses_new_connections_cleanly)
{
	struct utcp_config cfg;
	struct utcp_conn *c[3], *x;
	uint32_t ps, os;
	int i;

	th_config(&cfg);
	cfg.buf_mem_max = 3 * PER;
	th_reinit(&th_s, &cfg);
	for (i = 0; i < 3; i++)
		c[i] = open_conn((uint16_t)(30000 + i), &ps, &os);
	th_drain(&th_s);
	th_send(&th_s, &(struct pseg){ .sport = 30010, .seq = 777, .flags = SYN, .wnd = 65535,
				       .mss = 1460 });
	cr_assert(th_pop(&th_s, &O), "refused, not ignored");
	cr_assert_eq(O.flags, RST | ACK);
	cr_assert_eq(O.ack, 778);
	cr_assert_eq(th_pending(&th_s), 0);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_MEM_REFUSED], 1);
	cr_assert_eq(utcp_conn_count(th_s.st), 3);
	cr_assert_eq(utcp_connect(th_s.st, TH_PEER, 443, 0, NULL, &x), -ENOMEM);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_MEM_REFUSED], 2);
	cr_assert_leq(utcp_buf_mem(th_s.st), 3ull * PER + 3 * 64);
	/* The three still work. */
	for (i = 0; i < 3; i++)
		cr_assert_eq(utcp_write(c[i], th_pat, 100), 100);
	th_drain(&th_s);
	utcp_abort(c[0]);
	th_drain(&th_s);
	x = open_conn(30011, &ps, &os);
	cr_assert_not_null(x);
	cr_assert_eq(utcp_conn_count(th_s.st), 3);
}

/* ---- zero-copy receive hook ---- */

static void
pdata(uint32_t ps, uint32_t os, uint32_t off, const void *d, size_t len)
{
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = ps + off, .ack = os, .flags = ACK,
				       .wnd = 65535, .data = d, .len = len });
}

Test(mem, recv_hook_takes_in_order_payload_from_the_packet)
{
	struct utcp_conn *c;
	struct utcp_conn_info ci;
	uint32_t ps, os, wnd;

	c = open_conn(9000, &ps, &os);
	utcp_conn_info(c, &ci);
	wnd = ci.rcv_wnd;
	th_s.zc_max = 65536;
	pdata(ps, os, 0, th_pat, 1000);
	cr_assert_eq(th_s.zc_calls, 1);
	cr_assert_eq(th_s.zclen, 1000);
	cr_assert_arr_eq(th_s.zc, th_pat, 1000);
	cr_assert_eq(utcp_conn_readable(c), 0, "nothing went through the ring");
	cr_assert_eq(th_events(&th_s, c, UTCP_EV_READABLE), 1, "the app still hears of it");
	utcp_conn_info(c, &ci);
	cr_assert_eq(ci.rcv_nxt, ps + 1000);
	cr_assert_eq(ci.rcv_wnd, wnd, "the window did not shrink");
	pdata(ps, os, 1000, th_pat + 1000, 1920);
	cr_assert(th_pop(&th_s, &O), "two segments' worth: ACK as usual");
	cr_assert_eq(O.ack, ps + 2920);
	cr_assert_eq(th_s.zclen, 2920);
	cr_assert_arr_eq(th_s.zc, th_pat, 2920);
}

Test(mem, recv_hook_not_offered_out_of_order_data)
{
	struct utcp_conn *c;
	uint8_t b[100];
	uint32_t ps, os;

	c = open_conn(9000, &ps, &os);
	th_s.zc_max = 65536;
	pdata(ps, os, 10, th_pat + 10, 10);	/* out of order: into the ring */
	cr_assert_eq(th_s.zc_calls, 0);
	pdata(ps, os, 0, th_pat, 10);		/* fills the hole: offered */
	cr_assert_eq(th_s.zc_calls, 1);
	cr_assert_eq(th_s.zclen, 10);
	cr_assert_arr_eq(th_s.zc, th_pat, 10);
	/* The out-of-order part joined the in-order data in the ring. */
	cr_assert_eq(utcp_conn_readable(c), 10);
	cr_assert_eq(utcp_read(c, b, sizeof(b)), 10);
	cr_assert_arr_eq(b, th_pat + 10, 10);
}

Test(mem, recv_hook_partial_take_rest_in_ring)
{
	struct utcp_conn *c;
	const void *p[2];
	size_t l[2];
	uint32_t ps, os;

	c = open_conn(9000, &ps, &os);
	th_s.zc_max = 3;
	pdata(ps, os, 0, "abcdefghij", 10);
	cr_assert_eq(th_s.zclen, 3);
	cr_assert_arr_eq(th_s.zc, "abc", 3);
	cr_assert_eq(utcp_peek(c, p, l), 1, "the rest through the ring");
	cr_assert_eq(l[0], 7);
	cr_assert_arr_eq(p[0], "defghij", 7);
	/* While the ring holds bytes, new data goes behind them, not to the hook. */
	pdata(ps, os, 10, "klm", 3);
	cr_assert_eq(th_s.zc_calls, 1);
	cr_assert_eq(utcp_conn_readable(c), 10);
	utcp_consume(c, 10);
	th_s.zc_max = 0;				/* declining is allowed */
	pdata(ps, os, 13, "nop", 3);
	cr_assert_eq(th_s.zc_calls, 2);
	cr_assert_eq(utcp_conn_readable(c), 3);
}
