/* Closing, segment by segment (RFC 9293 §3.6): FIN and half-close in each
 * direction, simultaneous close, TIME_WAIT records (retransmitted FIN,
 * RFC 1337 RST, expiry, reuse by a SYN with a higher sequence number or
 * timestamp per RFC 6191), FIN retransmission, out-of-order FIN, abortive
 * close (unread data, data after close, too many orphans), FIN_WAIT_2
 * timeout. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/dataplane/tcp/utcp_harness.h"

static struct oseg O;
static uint32_t PS, OS;
static struct utcp_conn *C;

static void
open_conn(uint16_t port, bool ts)
{
	struct pseg syn = { .mss = 1460, .ts = ts, .tsval = 1000 };

	C = th_accept(&th_s, port, &syn, &PS, &OS, NULL);
}

static void
peer(uint16_t port, uint32_t seq, uint32_t ack, uint8_t flags, const char *d)
{
	th_send(&th_s, &(struct pseg){ .sport = port, .seq = seq, .ack = ack, .flags = flags,
				       .wnd = 65535, .data = d, .len = d ? strlen(d) : 0 });
}

TestSuite(close, .init = th_suite_init, .fini = th_suite_fini);

Test(close, active_close_through_time_wait)
{
	uint8_t b[4];

	open_conn(9100, false);
	cr_assert_eq(utcp_shutdown(C), 0);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, FIN | ACK);
	cr_assert_eq(O.seq, OS);
	cr_assert_eq(utcp_conn_state(C), UTCP_FIN_WAIT_1);
	cr_assert_eq(utcp_write(C, "x", 1), -EPIPE);
	peer(9100, PS, OS + 1, ACK, NULL);
	cr_assert_eq(utcp_conn_state(C), UTCP_FIN_WAIT_2);
	cr_assert_eq(th_pending(&th_s), 0);
	peer(9100, PS, OS + 1, FIN | ACK, NULL);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, ACK);
	cr_assert_eq(O.ack, PS + 1);
	cr_assert_eq(O.seq, OS + 1);
	cr_assert_eq(utcp_conn_state(C), UTCP_CLOSED);
	cr_assert_eq(utcp_conn_error(C), 0);
	cr_assert_eq(th_events(&th_s, C, UTCP_EV_CLOSED), 1);
	cr_assert_eq(utcp_read(C, b, 4), 0, "end of stream");
	cr_assert_eq(utcp_tw_count(th_s.st), 1, "a compact TIME_WAIT record");
	utcp_close(C);
	cr_assert_eq(utcp_conn_count(th_s.st), 0, "the connection object is free");
	th_advance(&th_s, 59000000);
	cr_assert_eq(utcp_tw_count(th_s.st), 1);
	th_advance(&th_s, 1000000);
	cr_assert_eq(utcp_tw_count(th_s.st), 0, "2 MSL later");
}

Test(close, passive_close_with_half_close)
{
	uint8_t b[4];

	open_conn(9101, false);
	peer(9101, PS, OS, FIN | ACK, NULL);
	cr_assert(th_pop(&th_s, &O), "FIN is ACKed at once");
	cr_assert_eq(O.ack, PS + 1);
	cr_assert_eq(utcp_conn_state(C), UTCP_CLOSE_WAIT);
	cr_assert_eq(th_events(&th_s, C, UTCP_EV_READABLE), 1);
	cr_assert_eq(utcp_read(C, b, 4), 0);
	/* Our direction is still open. */
	cr_assert_eq(utcp_write(C, "bye", 3), 3);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.len, 3);
	peer(9101, PS + 1, OS + 3, ACK, NULL);
	utcp_close(C);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, FIN | ACK);
	cr_assert_eq(O.seq, OS + 3);
	cr_assert_eq(utcp_conn_count(th_s.st), 1, "LAST_ACK");
	peer(9101, PS + 1, OS + 4, ACK, NULL);
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
	cr_assert_eq(utcp_tw_count(th_s.st), 0, "the passive closer keeps no TIME_WAIT");
}

Test(close, we_half_close_and_keep_receiving)
{
	uint8_t b[16];

	open_conn(9102, false);
	utcp_write(C, "req", 3);
	utcp_shutdown(C);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, ACK | PSH, "data goes at once (no Nagle)");
	cr_assert_eq(O.len, 3);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, FIN | ACK);
	cr_assert_eq(O.seq, OS + 3);
	peer(9102, PS, OS + 4, ACK, "resp");
	cr_assert_eq(utcp_conn_state(C), UTCP_FIN_WAIT_2);
	cr_assert_eq(utcp_read(C, b, 16), 4);
	peer(9102, PS + 4, OS + 4, FIN | ACK, "onse");
	cr_assert_eq(utcp_read(C, b, 16), 4);
	cr_assert_arr_eq(b, "onse", 4);
	cr_assert_eq(utcp_read(C, b, 16), 0);
	cr_assert_eq(utcp_conn_state(C), UTCP_CLOSED);
	cr_assert_eq(utcp_tw_count(th_s.st), 1);
	utcp_close(C);
}

Test(close, simultaneous_close)
{
	open_conn(9103, false);
	utcp_shutdown(C);
	cr_assert(th_pop(&th_s, &O));
	peer(9103, PS, OS, FIN | ACK, NULL);		/* crosses our FIN */
	cr_assert_eq(utcp_conn_state(C), UTCP_CLOSING);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.ack, PS + 1);
	peer(9103, PS + 1, OS + 1, ACK, NULL);
	cr_assert_eq(utcp_conn_state(C), UTCP_CLOSED);
	cr_assert_eq(utcp_tw_count(th_s.st), 1, "CLOSING -> TIME_WAIT");
	utcp_close(C);
}

Test(close, fin_and_ack_together)
{
	open_conn(9104, false);
	utcp_shutdown(C);
	th_drain(&th_s);
	peer(9104, PS, OS + 1, FIN | ACK, NULL);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.ack, PS + 1);
	cr_assert_eq(utcp_tw_count(th_s.st), 1, "FIN_WAIT_1 -> TIME_WAIT");
	utcp_close(C);
}

Test(close, fin_retransmitted)
{
	open_conn(9105, false);
	utcp_close(C);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, FIN | ACK);
	th_advance(&th_s, 200000);
	cr_assert(th_pop(&th_s, &O), "FIN resent after the RTO");
	cr_assert_eq(O.flags, FIN | ACK);
	cr_assert_eq(O.seq, OS);
	th_advance(&th_s, 400000);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.seq, OS);
	peer(9105, PS, OS + 1, ACK, NULL);
	th_advance(&th_s, 5000000);
	cr_assert_eq(th_pending(&th_s), 0);
}

Test(close, out_of_order_fin)
{
	uint8_t b[16];

	open_conn(9106, false);
	peer(9106, PS + 5, OS, FIN | ACK, "world");
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.ack, PS);
	cr_assert_eq(utcp_conn_state(C), UTCP_ESTABLISHED);
	peer(9106, PS, OS, ACK, "hello");
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.ack, PS + 11, "data and the waiting FIN");
	cr_assert_eq(utcp_conn_state(C), UTCP_CLOSE_WAIT);
	cr_assert_eq(utcp_read(C, b, 16), 10);
	cr_assert_arr_eq(b, "helloworld", 10);
	cr_assert_eq(utcp_read(C, b, 16), 0);
}

Test(close, unread_data_means_rst)
{
	open_conn(9107, false);
	peer(9107, PS, OS, ACK | PSH, "unread");
	utcp_close(C);
	cr_assert(th_pop(&th_s, &O));
	cr_assert(O.flags & RST, "RFC 9293 §3.10.4: data lost, say so");
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
}

Test(close, data_after_close_means_rst)
{
	open_conn(9108, false);
	utcp_close(C);
	cr_assert(th_pop(&th_s, &O));
	peer(9108, PS, OS + 1, ACK, NULL);
	cr_assert_eq(utcp_conn_count(th_s.st), 1, "FIN_WAIT_2");
	peer(9108, PS, OS + 1, ACK, "late");
	cr_assert(th_pop(&th_s, &O));
	cr_assert(O.flags & RST);
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
}

Test(close, orphaned_fin_wait_2_times_out)
{
	struct utcp_config cfg;

	th_config(&cfg);
	cfg.fin_wait2_us = 5000000;
	th_reinit(&th_s, &cfg);		/* the suite made one with the defaults */
	open_conn(9109, false);
	utcp_close(C);
	peer(9109, PS, OS + 1, ACK, NULL);
	th_advance(&th_s, 4900000);
	cr_assert_eq(utcp_conn_count(th_s.st), 1);
	th_advance(&th_s, 200000);
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
	cr_assert_eq(utcp_tw_count(th_s.st), 0);
}

Test(close, too_many_orphans_abort)
{
	struct utcp_config cfg;
	struct utcp_conn *c1;

	th_config(&cfg);
	cfg.max_orphans = 1;
	th_reinit(&th_s, &cfg);		/* the suite made one with the defaults */
	open_conn(9110, false);
	c1 = C;
	open_conn(9111, false);
	utcp_close(c1);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, FIN | ACK);
	utcp_close(C);
	cr_assert(th_pop(&th_s, &O));
	cr_assert(O.flags & RST, "abortive close under overload");
	cr_assert_eq(O.dport, 9111);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_ORPHAN_ABORT], 1);
	cr_assert_eq(utcp_conn_count(th_s.st), 1);
}

static void
to_time_wait(uint16_t port, bool ts)
{
	open_conn(port, ts);
	utcp_close(C);
	th_drain(&th_s);
	th_send(&th_s, &(struct pseg){ .sport = port, .seq = PS, .ack = OS + 1, .flags = FIN | ACK,
				       .wnd = 1000, .ts = ts, .tsval = 2000 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(utcp_tw_count(th_s.st), 1);
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
}

Test(close, time_wait_answers_fin_ignores_rst)
{
	to_time_wait(9120, false);
	th_advance(&th_s, 30000000);
	peer(9120, PS, OS + 1, FIN | ACK, NULL);	/* our last ACK was lost */
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, ACK);
	cr_assert_eq(O.ack, PS + 1);
	cr_assert_eq(O.seq, OS + 1);
	th_advance(&th_s, 59000000);
	cr_assert_eq(utcp_tw_count(th_s.st), 1, "2 MSL restarted by the FIN");
	peer(9120, PS + 1, OS + 1, RST, NULL);
	cr_assert_eq(utcp_tw_count(th_s.st), 1, "RFC 1337: no assassination");
	cr_assert_eq(th_pending(&th_s), 0);
	peer(9120, PS + 1, OS + 1, ACK, NULL);
	cr_assert_eq(th_pending(&th_s), 0, "a bare ACK: no ACK war");
	th_advance(&th_s, 1000000);
	cr_assert_eq(utcp_tw_count(th_s.st), 0);
	peer(9120, PS + 1, OS + 1, ACK, NULL);
	cr_assert(th_pop(&th_s, &O), "record gone: the listener's RST");
	cr_assert_eq(O.flags, RST);
}

Test(close, time_wait_reuse_by_higher_sequence)
{
	to_time_wait(9121, false);
	th_send(&th_s, &(struct pseg){ .sport = 9121, .seq = PS - 100, .flags = SYN,
				       .wnd = 1000 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, ACK, "old sequence: an ACK from TIME_WAIT");
	cr_assert_eq(utcp_tw_count(th_s.st), 1);
	th_send(&th_s, &(struct pseg){ .sport = 9121, .seq = PS + 100000, .flags = SYN,
				       .wnd = 1000 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, SYN | ACK, "new incarnation accepted");
	cr_assert_eq(O.ack, PS + 100001);
	cr_assert_eq(utcp_tw_count(th_s.st), 0);
	cr_assert_eq(utcp_conn_count(th_s.st), 1);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_TW_REUSED], 1);
}

Test(close, time_wait_reuse_by_higher_timestamp)
{
	to_time_wait(9122, true);
	th_send(&th_s, &(struct pseg){ .sport = 9122, .seq = PS + 100000, .flags = SYN,
				       .wnd = 1000, .ts = true, .tsval = 1500 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, ACK, "older timestamp: refused despite the sequence");
	th_send(&th_s, &(struct pseg){ .sport = 9122, .seq = PS - 5000, .flags = SYN,
				       .wnd = 1000, .ts = true, .tsval = 2500 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, SYN | ACK, "RFC 6191: newer timestamp wins");
	cr_assert_eq(utcp_tw_count(th_s.st), 0);
}

Test(close, time_wait_pool_full)
{
	struct utcp_config cfg;

	th_config(&cfg);
	cfg.max_tw = 1;
	th_reinit(&th_s, &cfg);		/* the suite made one with the defaults */
	to_time_wait(9130, false);
	open_conn(9131, false);
	utcp_close(C);
	th_drain(&th_s);
	peer(9131, PS, OS + 1, FIN | ACK, NULL);
	cr_assert_eq(utcp_tw_count(th_s.st), 1);
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_TW_FULL], 1);
}

Test(close, peer_reset_in_close_wait)
{
	open_conn(9140, false);
	peer(9140, PS, OS, FIN | ACK, NULL);
	th_drain(&th_s);
	peer(9140, PS + 1, 0, RST, NULL);
	cr_assert_eq(utcp_conn_state(C), UTCP_CLOSED);
	cr_assert_eq(utcp_conn_error(C), -ECONNRESET);
	utcp_close(C);
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
}

Test(close, callback_may_close_anything)
{
	/* Closing in the READABLE callback must not touch freed memory (the
	 * sanitizer build checks this). */
	open_conn(9141, false);
	th_s.auto_read = true;
	peer(9141, PS, OS, FIN | ACK | PSH, "last words");
	cr_assert(th_s.rx_eof);
	cr_assert_eq(th_s.rxlen, 10);
	utcp_close(C);
	th_drain(&th_s);
	peer(9141, PS + 11, OS + 1, ACK, NULL);
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
}

Test(close, fin_rides_on_last_data_when_window_opens)
{
	open_conn(9150, false);
	peer(9150, PS, OS, ACK, NULL);
	th_send(&th_s, &(struct pseg){ .sport = 9150, .seq = PS, .ack = OS, .flags = ACK,
				       .wnd = 0 });
	utcp_write(C, "tail", 4);
	utcp_shutdown(C);
	cr_assert_eq(th_pending(&th_s), 0, "the FIN waits behind data the window holds back");
	th_send(&th_s, &(struct pseg){ .sport = 9150, .seq = PS, .ack = OS, .flags = ACK,
				       .wnd = 100 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.len, 4);
	cr_assert_eq(O.seq, OS);
	cr_assert_eq(O.flags, FIN | ACK | PSH, "data and FIN in one segment");
	cr_assert_eq(th_pending(&th_s), 0);
}
