/* Data transfer on one connection, segment by segment with the injected
 * clock: delayed ACK (RFC 1122 §4.2.3.2, RFC 5681 §4.2), out-of-order and
 * overlapping segments with SACK blocks (RFC 2018) and the reassembly cap,
 * zero window, window updates and receiver SWS avoidance (RFC 1122
 * §4.2.3.3), persist probes (RFC 9293 §3.8.6.1), RTO (RFC 6298) with
 * backoff and the retransmission cap, fast retransmit and NewReno recovery
 * (RFC 5681, 6582), PAWS (RFC 7323 §5), send buffer limits. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/tcp/utcp_seq.h"
#include "tests/dataplane/tcp/utcp_harness.h"

static struct oseg O;
static uint32_t PS, OS;		/* peer's next sequence, ours */
static struct utcp_conn *C;

static void
open_conn(bool sack, bool ts)
{
	struct pseg syn = { .mss = 1460, .sackok = sack, .ts = ts, .tsval = 1000 };

	C = th_accept(&th_s, 9000, &syn, &PS, &OS, NULL);
}

/* Peer data segment at PS + <off>. */
static void
pdata(uint32_t off, const void *d, size_t len)
{
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS + off, .ack = OS, .flags = ACK,
				       .wnd = 65535, .data = d, .len = len });
}

static void
pack(uint32_t ack, uint16_t wnd)
{
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS, .ack = ack, .flags = ACK,
				       .wnd = wnd });
}

TestSuite(data, .init = th_suite_init, .fini = th_suite_fini);

Test(data, delayed_ack_timer)
{
	uint8_t b[200];

	open_conn(false, false);
	pdata(0, "hello", 5);
	cr_assert_eq(th_pending(&th_s), 0, "ACK delayed");
	th_advance(&th_s, 39000);
	cr_assert_eq(th_pending(&th_s), 0);
	th_advance(&th_s, 1000);
	cr_assert(th_pop(&th_s, &O), "delayed ACK after 40 ms");
	cr_assert_eq(O.ack, PS + 5);
	cr_assert_eq(O.len, 0);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_DELACK], 1);
	cr_assert_eq(th_events(&th_s, C, UTCP_EV_READABLE), 1);
	cr_assert_eq(utcp_read(C, b, sizeof(b)), 5);
	cr_assert_arr_eq(b, "hello", 5);
	cr_assert_eq(utcp_read(C, b, sizeof(b)), -EAGAIN);
}

Test(data, ack_every_second_full_segment)
{
	open_conn(false, false);
	pdata(0, th_pat, 1460);
	cr_assert_eq(th_pending(&th_s), 0);
	pdata(1460, th_pat + 1460, 1460);
	cr_assert(th_pop(&th_s, &O), "second full segment: ACK at once");
	cr_assert_eq(O.ack, PS + 2920);
	th_advance(&th_s, 100000);
	cr_assert_eq(th_pending(&th_s), 0, "nothing left to ACK");
}

Test(data, ack_piggybacks_on_reply)
{
	open_conn(false, false);
	pdata(0, "ping", 4);
	cr_assert_eq(utcp_write(C, "pong", 4), 4);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.len, 4);
	cr_assert_eq(O.ack, PS + 4);
	cr_assert(O.flags & PSH);
	th_advance(&th_s, 50000);
	cr_assert_eq(th_pending(&th_s), 0, "the data carried the ACK");
}

Test(data, out_of_order_sack_blocks_and_reassembly)
{
	uint8_t b[1000];

	open_conn(true, false);
	pdata(100, th_pat + 100, 100);
	cr_assert(th_pop(&th_s, &O), "out of order: immediate duplicate ACK");
	cr_assert_eq(O.ack, PS);
	cr_assert_eq(O.nsack, 1);
	cr_assert_eq(O.sack[0][0], PS + 100);
	cr_assert_eq(O.sack[0][1], PS + 200);
	pdata(300, th_pat + 300, 100);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.nsack, 2);
	cr_assert_eq(O.sack[0][0], PS + 300, "the newest block first (RFC 2018 §4)");
	cr_assert_eq(O.sack[1][0], PS + 100);
	pdata(150, th_pat + 150, 100);		/* overlaps, extends [100,250) */
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.sack[0][0], PS + 100);
	cr_assert_eq(O.sack[0][1], PS + 250);
	cr_assert_eq(th_events(&th_s, C, UTCP_EV_READABLE), 0);
	pdata(0, th_pat, 120);			/* fills the first hole, overlapping */
	cr_assert(th_pop(&th_s, &O), "hole filled: immediate ACK");
	cr_assert_eq(O.ack, PS + 250);
	cr_assert_eq(O.nsack, 1);
	cr_assert_eq(O.sack[0][0], PS + 300);
	pdata(240, th_pat + 240, 60);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.ack, PS + 400);
	cr_assert_eq(O.nsack, 0);
	cr_assert_eq(utcp_read(C, b, sizeof(b)), 400);
	cr_assert_arr_eq(b, th_pat, 400);
}

Test(data, sack_blocks_with_timestamps_at_most_three)
{
	int i;

	open_conn(true, true);
	for (i = 0; i < 5; i++)
		th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS + 100 + 200 * (uint32_t)i,
					       .ack = OS, .flags = ACK, .wnd = 1000, .ts = true,
					       .tsval = 2000, .data = th_pat, .len = 10 });
	while (th_pop(&th_s, &O))
		;
	cr_assert(O.ts);
	cr_assert_eq(O.nsack, 3, "12 + 4 + 3 * 8 = 40 bytes of options");
	cr_assert_eq(O.sack[0][0], PS + 900);
}

Test(data, duplicate_and_old_segments)
{
	uint8_t b[100];

	open_conn(false, false);
	pdata(0, "abcdef", 6);
	th_advance(&th_s, 40000);
	th_drain(&th_s);
	pdata(0, "abcdef", 6);			/* entire duplicate */
	cr_assert(th_pop(&th_s, &O), "duplicate: ACK at once");
	cr_assert_eq(O.ack, PS + 6);
	pdata(3, "defghi", 6);			/* half old, half new */
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.ack, PS + 9);
	cr_assert_eq(utcp_read(C, b, sizeof(b)), 9);
	cr_assert_arr_eq(b, "abcdefghi", 9);
}

Test(data, reassembly_memory_cap)
{
	struct utcp_config cfg;
	struct utcp_conn_info ci;

	th_config(&cfg);
	cfg.ooo_max = 1000;
	th_reinit(&th_s, &cfg);		/* the suite made one with the defaults */
	open_conn(true, false);
	pdata(1000, th_pat, 600);
	pdata(2000, th_pat, 400);
	pdata(3000, th_pat, 100);			/* over the cap: dropped */
	utcp_conn_info(C, &ci);
	cr_assert_eq(ci.ooo_bytes, 1000);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_OOO_DROP], 1);
	pdata(1100, th_pat, 300);			/* inside a range: costs nothing */
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_OOO_DROP], 1);
	pdata(1600, th_pat, 400);			/* bridging would hold 1400: dropped */
	utcp_conn_info(C, &ci);
	cr_assert_eq(ci.ooo_bytes, 1000);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_OOO_DROP], 2);
	/* In-order data is never refused by the cap, and absorbs the ranges. */
	pdata(0, th_pat, 1600);
	utcp_conn_info(C, &ci);
	cr_assert_eq(ci.ooo_bytes, 400);
	cr_assert_eq(utcp_conn_readable(C), 1600);
}

Test(data, zero_window_and_receiver_sws)
{
	uint8_t b[4000];
	uint32_t off = 0;

	open_conn(false, false);
	while (off < 16384) {
		uint32_t n = 16384 - off < 1460 ? 16384 - off : 1460;

		pdata(off, th_pat + off, n);
		off += n;
	}
	th_advance(&th_s, 40000);
	while (th_pop(&th_s, &O))
		;
	cr_assert_eq(O.ack, PS + 16384);
	cr_assert_eq(O.wnd, 0, "buffer full: zero window");
	/* Data in a zero window is dropped but its ACK processed and answered. */
	pdata(16384, "zz", 2);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.ack, PS + 16384);
	cr_assert_eq(O.wnd, 0);
	/* Reading 1000 bytes is less than an MSS: no update (SWS avoidance). */
	cr_assert_eq(utcp_read(C, b, 1000), 1000);
	cr_assert_eq(th_pending(&th_s), 0);
	cr_assert_eq(utcp_read(C, b, 1000), 1000);
	cr_assert(th_pop(&th_s, &O), "window update");
	cr_assert_eq(O.wnd, 2000);
	cr_assert_eq(O.ack, PS + 16384);
	cr_assert_arr_eq(b, th_pat + 1000, 1000);
}

Test(data, persist_probes_zero_window)
{
	uint64_t waits[] = { 200000, 400000, 800000, 1600000 };
	int i;

	open_conn(false, false);
	pack(OS, 0);
	cr_assert_eq(utcp_write(C, th_pat, 100), 100);
	cr_assert_eq(th_pending(&th_s), 0, "no data into a zero window");
	for (i = 0; i < 4; i++) {
		th_advance(&th_s, waits[i] - 1000);
		cr_assert_eq(th_pending(&th_s), 0, "probe %d early", i);
		th_advance(&th_s, 1000);
		cr_assert(th_pop(&th_s, &O), "probe %d", i);
		cr_assert_eq(O.seq, OS - 1, "probe with an old sequence number");
		cr_assert_eq(O.len, 0);
		pack(OS, 0);			/* still closed */
	}
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_PERSIST_PROBE], 4);
	cr_assert_eq(utcp_conn_state(C), UTCP_ESTABLISHED, "probing never gives up");
	pack(OS, 1000);
	cr_assert(th_pop(&th_s, &O), "window opened: data flows");
	cr_assert_eq(O.seq, OS);
	cr_assert_eq(O.len, 100);
	th_advance(&th_s, 10000000);
	while (th_pop(&th_s, &O))
		cr_assert_eq(O.len, 100, "only retransmissions, no probes");
}

Test(data, small_window_limits_segments)
{
	open_conn(false, false);
	pack(OS, 300);
	cr_assert_eq(utcp_write(C, th_pat, 1000), 1000);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.len, 300);
	cr_assert_eq(th_pending(&th_s), 0);
	pack(OS + 300, 1000);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.seq, OS + 300);
	cr_assert_eq(O.len, 700);
}

Test(data, rtt_estimate_rfc6298)
{
	struct utcp_conn_info ci;

	open_conn(false, false);
	utcp_write(C, th_pat, 100);
	th_drain(&th_s);
	th_advance(&th_s, 100000);
	pack(OS + 100, 65535);
	utcp_conn_info(C, &ci);
	/* The handshake gave a sample of ~0 (1 µs): SRTT 1, RTTVAR 0. Then
	 * R = 100 ms: RTTVAR = 3/4 * 0 + 1/4 * |1 - R|, SRTT = 7/8 * 1 + R / 8. */
	cr_assert_eq(ci.srtt_us, (7 + 100000) / 8);
	cr_assert_eq(ci.rttvar_us, 99999 / 4);
	cr_assert_eq(ci.rto_us, 200000, "SRTT + 4 RTTVAR = 112 ms, under the 200 ms floor");
	utcp_write(C, th_pat, 100);
	th_drain(&th_s);
	th_advance(&th_s, 150000);			/* under the RTO: no retransmission */
	pack(OS + 200, 65535);
	utcp_conn_info(C, &ci);
	cr_assert_eq(ci.srtt_us, (7 * 12500 + 150000) / 8);
	cr_assert_eq(ci.rttvar_us, (3 * 24999 + (150000 - 12500)) / 4);
	cr_assert_eq(ci.rto_us, ci.srtt_us + 4 * ci.rttvar_us);
}

Test(data, rto_backoff_then_recovery)
{
	uint64_t waits[] = { 200000, 400000, 800000, 1600000 };
	struct utcp_conn_info ci;
	int i;

	open_conn(false, false);
	cr_assert_eq(utcp_write(C, th_pat, 100), 100);
	cr_assert(th_pop(&th_s, &O));
	for (i = 0; i < 4; i++) {
		th_advance(&th_s, waits[i] - 1000);
		cr_assert_eq(th_pending(&th_s), 0, "retransmission %d early", i);
		th_advance(&th_s, 1000);
		cr_assert(th_pop(&th_s, &O), "retransmission %d", i);
		cr_assert_eq(O.seq, OS);
		cr_assert_eq(O.len, 100);
	}
	utcp_conn_info(C, &ci);
	cr_assert_eq(ci.cwnd, ci.mss, "loss window: one segment");
	cr_assert_eq(ci.retries, 4);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_RTO], 4);
	pack(OS + 100, 65535);
	th_advance(&th_s, 5000000);
	cr_assert_eq(th_pending(&th_s), 0, "acknowledged: timer stopped");
	utcp_conn_info(C, &ci);
	cr_assert_eq(ci.retries, 0);
}

Test(data, retransmission_cap_resets)
{
	struct utcp_config cfg;

	th_config(&cfg);
	cfg.max_retries = 3;
	th_reinit(&th_s, &cfg);		/* the suite made one with the defaults */
	open_conn(false, false);
	utcp_write(C, th_pat, 100);
	th_advance(&th_s, 200000 + 400000 + 800000);
	cr_assert_eq(th_pending(&th_s), 4, "original and three retransmissions");
	th_drain(&th_s);
	th_advance(&th_s, 1600000);
	cr_assert(th_pop(&th_s, &O));
	cr_assert(O.flags & RST, "cap reached: RST");
	cr_assert_eq(utcp_conn_state(C), UTCP_CLOSED);
	cr_assert_eq(utcp_conn_error(C), -ETIMEDOUT);
	cr_assert_eq(th_events(&th_s, C, UTCP_EV_CLOSED), 1);
	utcp_close(C);
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
}

Test(data, fast_retransmit_and_newreno)
{
	struct utcp_conn_info ci;
	uint32_t mss = 1460;
	int i, n = 0;

	open_conn(false, false);
	cr_assert_eq(utcp_write(C, th_pat, 10 * mss), 10 * mss);
	while (th_pop(&th_s, &O))
		n++;
	cr_assert_eq(n, 10, "IW10");
	pack(OS + mss, 65535);			/* segment 1 lost */
	for (i = 0; i < 2; i++)
		pack(OS + mss, 65535);
	cr_assert_eq(th_pending(&th_s), 0, "two duplicates: nothing yet");
	pack(OS + mss, 65535);
	cr_assert(th_pop(&th_s, &O), "third duplicate ACK: fast retransmit");
	cr_assert_eq(O.seq, OS + mss);
	cr_assert_eq(O.len, mss);
	utcp_conn_info(C, &ci);
	cr_assert(ci.in_recovery);
	cr_assert_eq(ci.ssthresh, 9 * mss / 2);
	cr_assert_eq(ci.cwnd, ci.ssthresh + 3 * mss);
	/* Inflation lets new data out as duplicates keep coming. */
	cr_assert_eq(utcp_write(C, th_pat, 2 * mss), 2 * mss);
	cr_assert_eq(th_pending(&th_s), 0);
	for (i = 0; i < 6 && th_pending(&th_s) == 0; i++)
		pack(OS + mss, 65535);
	cr_assert(th_pop(&th_s, &O), "new data during recovery");
	cr_assert_eq(O.seq, OS + 10 * mss);
	th_drain(&th_s);
	/* Partial ACK: segment 4 was lost too; resent at once. */
	pack(OS + 4 * mss, 65535);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.seq, OS + 4 * mss);
	utcp_conn_info(C, &ci);
	cr_assert(ci.in_recovery, "partial ACK keeps recovery");
	th_drain(&th_s);
	/* Full ACK: out of recovery, cwnd = min(ssthresh, flight + MSS). */
	utcp_conn_info(C, &ci);
	pack(OS + 11 * mss, 65535);
	utcp_conn_info(C, &ci);
	cr_assert_not(ci.in_recovery);
	cr_assert_leq(ci.cwnd, ci.ssthresh);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_FAST_RETRANSMIT], 2);
}

Test(data, paws_drops_old_timestamp)
{
	uint8_t b[10];

	open_conn(false, true);
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS, .ack = OS, .flags = ACK,
				       .wnd = 1000, .ts = true, .tsval = 5000, .data = "new",
				       .len = 3 });
	th_advance(&th_s, 40000);
	th_drain(&th_s);
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS + 3, .ack = OS, .flags = ACK,
				       .wnd = 1000, .ts = true, .tsval = 4000, .data = "old",
				       .len = 3 });
	cr_assert(th_pop(&th_s, &O), "PAWS drop is answered with an ACK");
	cr_assert_eq(O.ack, PS + 3);
	cr_assert_eq(O.tsecr, 5000);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_PAWS_DROP], 1);
	cr_assert_eq(utcp_read(C, b, 10), 3);
	/* An RST is exempt from PAWS. */
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS + 3, .flags = RST, .ts = true,
				       .tsval = 1 });
	cr_assert_eq(utcp_conn_state(C), UTCP_CLOSED);
}

Test(data, send_buffer_full_then_writable)
{
	open_conn(false, false);
	cr_assert_eq(utcp_write(C, th_pat, 20000), 16384);
	cr_assert_eq(utcp_write(C, th_pat, 10), -EAGAIN);
	cr_assert_eq(utcp_conn_sendable(C), 0);
	cr_assert_eq(th_events(&th_s, C, UTCP_EV_WRITABLE), 0);
	pack(OS + 1460, 65535);
	cr_assert_eq(th_events(&th_s, C, UTCP_EV_WRITABLE), 1);
	cr_assert_eq(utcp_conn_sendable(C), 1460);
	pack(OS + 2920, 65535);
	cr_assert_eq(th_events(&th_s, C, UTCP_EV_WRITABLE), 1, "once per short write");
}

Test(data, peek_and_consume)
{
	const void *p[2];
	size_t l[2];

	open_conn(false, false);
	pdata(0, "abcdef", 6);
	cr_assert_eq(utcp_peek(C, p, l), 1);
	cr_assert_eq(l[0], 6);
	cr_assert_arr_eq(p[0], "abcdef", 6);
	utcp_consume(C, 4);
	cr_assert_eq(utcp_conn_readable(C), 2);
}

Test(data, output_refused_is_recovered)
{
	open_conn(false, false);
	th_s.drop_output = true;
	utcp_write(C, th_pat, 100);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_OUTPUT_DROP], 1);
	th_s.drop_output = false;
	th_advance(&th_s, 200000);
	cr_assert(th_pop(&th_s, &O), "the RTO resends what the driver refused");
	cr_assert_eq(O.len, 100);
}
