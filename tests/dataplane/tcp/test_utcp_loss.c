/* Sending under loss, segment by segment with the injected clock: segments
 * sized by the MSS less their actual options (RFC 6691) when SACK blocks
 * ride along, RTT samples from timestamp echoes (RFC 7323 §4) and the
 * backoff undone by an ACK of new data (RFC 6298 §5), limited transmit
 * (RFC 3042), early retransmit (RFC 5827) and the tail loss probe (RFC 8985
 * §7). */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/dataplane/tcp/utcp_harness.h"

static struct oseg O;
static uint32_t PS, OS;		/* peer's next sequence, ours */
static struct utcp_conn *C;

static void
open_conn(bool sack, bool ts, uint16_t mss)
{
	struct pseg syn = { .mss = mss, .sackok = sack, .ts = ts, .tsval = 1000 };

	C = th_accept(&th_s, 9000, &syn, &PS, &OS, NULL);
}

/* Peer data at PS + <off>; with timestamps when <tsecr> is not 0. */
static void
pdata(uint32_t off, const void *d, size_t len, uint32_t tsecr)
{
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS + off, .ack = OS, .flags = ACK,
				       .wnd = 65535, .data = d, .len = len, .ts = tsecr != 0,
				       .tsval = 2000, .tsecr = tsecr });
}

/* Peer ACK; with timestamps when <tsecr> is not 0. */
static void
pack(uint32_t ack, uint32_t tsecr)
{
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS, .ack = ack, .flags = ACK,
				       .wnd = 65535, .ts = tsecr != 0, .tsval = 2000,
				       .tsecr = tsecr });
}

TestSuite(loss, .init = th_suite_init, .fini = th_suite_fini);

/* Three SACK blocks and timestamps are 40 bytes of options: a full segment
 * carries 1460 - 40 bytes, so the packet stays at MSS + 40. */
Test(loss, sack_blocks_shrink_the_payload_not_grow_the_packet)
{
	uint32_t ts;
	int n = 0, full = 0;

	open_conn(true, true, 1460);
	ts = 1;
	pdata(100, th_pat, 10, ts);
	pdata(300, th_pat, 10, ts);
	pdata(500, th_pat, 10, ts);
	th_drain(&th_s);
	cr_assert_eq(utcp_write(C, th_pat, 16384), 16384);
	while (th_pop(&th_s, &O)) {
		   n++;
		   cr_assert_eq(O.nsack, 3, "SACK blocks in every segment while data is missing");
		   cr_assert(O.ts);
		   cr_assert_leq(O.rawlen, 1460 + 40, "IP total length %zu over MSS + 40",
				 O.rawlen);
		   if (O.len == 1460 - 40)
			   full++;
	}
	cr_assert_geq(full, 9, "full segments carry MSS less all options");
	cr_assert_eq(n, full, "and none is a runt");
}

Test(loss, timestamps_only_leave_mss_minus_12)
{
	open_conn(true, true, 1460);
	cr_assert_eq(utcp_write(C, th_pat, 5000), 5000);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.nsack, 0);
	cr_assert_eq(O.len, 1460 - 12);
	cr_assert_eq(O.rawlen, 1500);
}

/* The smaller MSS (the peer's here) bounds payload plus options. */
Test(loss, peer_mss_bounds_payload_and_options)
{
	open_conn(true, true, 1000);
	pdata(100, th_pat, 10, 1);
	th_drain(&th_s);
	cr_assert_eq(utcp_write(C, th_pat, 5000), 5000);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.nsack, 1);
	cr_assert_eq(O.len, 1000 - 12 - 12);
	cr_assert_eq(O.rawlen, 1040);
}

/* After two timeouts the retransmission gets through and is ACKed with an
 * echo of its own timestamp: that is an RTT sample (no Karn ambiguity) and
 * the next RTO is the RFC 6298 value from the samples, not 4 x 200 ms. */
Test(loss, rto_backoff_undone_by_ack_with_timestamp_echo)
{
	struct utcp_config cfg;
	struct utcp_conn_info ci;
	uint32_t srtt, rttvar, rto;

	th_config(&cfg);
	cfg.rto_min_us = 10000;
	th_reinit(&th_s, &cfg);
	open_conn(false, true, 1460);
	utcp_conn_info(C, &ci);
	/* The handshake: a 0 µs sample (counted as 1): SRTT 1, RTTVAR 0, RTO
	 * SRTT + max(G, 4 RTTVAR) = 1 + 1 ms, raised to the 10 ms floor. */
	cr_assert_eq(ci.srtt_us, 1);
	cr_assert_eq(ci.rto_us, 10000);
	cr_assert_eq(utcp_write(C, th_pat, 100), 100);
	cr_assert(th_pop(&th_s, &O));
	th_advance(&th_s, 10000);
	cr_assert(th_pop(&th_s, &O), "first timeout");
	th_advance(&th_s, 20000);
	cr_assert(th_pop(&th_s, &O), "second timeout, backed off to 20 ms");
	cr_assert_eq(O.seq, OS);
	utcp_conn_info(C, &ci);
	cr_assert_eq(ci.rto_cur_us, 40000, "backed off twice");
	/* The peer got the second retransmission and echoes its TSval 30 ms
	 * later: R = 30 ms. */
	th_advance(&th_s, 30000);
	pack(OS + 100, O.tsval);
	srtt = (7 * 1 + 30000) / 8;
	rttvar = (3 * 0 + (30000 - 1)) / 4;
	rto = srtt + 4 * rttvar;
	utcp_conn_info(C, &ci);
	cr_assert_eq(ci.srtt_us, srtt);
	cr_assert_eq(ci.rttvar_us, rttvar);
	cr_assert_eq(ci.rto_us, rto);
	cr_assert_eq(ci.rto_cur_us, rto, "backoff cleared by the ACK of new data");
	cr_assert_eq(ci.retries, 0);
	/* New data: its timer runs the RFC 6298 value (33.7 ms), not 80 ms. */
	cr_assert_eq(utcp_write(C, th_pat, 100), 100);
	cr_assert(th_pop(&th_s, &O));
	th_advance(&th_s, rto / 1000 * 1000);
	cr_assert_eq(th_pending(&th_s), 0, "not before the RTO");
	th_advance(&th_s, 2000);
	cr_assert(th_pop(&th_s, &O), "retransmitted after %u µs, not a backed-off RTO", rto);
	cr_assert_eq(O.seq, OS + 100);
}

/* An echo older than our latest retransmission belongs to an earlier
 * transmission whose ACK came late: it is not taken as a sample. */
Test(loss, stale_echo_after_retransmission_is_no_sample)
{
	struct utcp_config cfg;
	struct utcp_conn_info ci;
	uint32_t first;

	th_config(&cfg);
	cfg.rto_min_us = 10000;
	th_reinit(&th_s, &cfg);
	open_conn(false, true, 1460);
	cr_assert_eq(utcp_write(C, th_pat, 100), 100);
	cr_assert(th_pop(&th_s, &O));
	first = O.tsval;
	th_advance(&th_s, 10000);
	cr_assert(th_pop(&th_s, &O), "timeout");
	th_advance(&th_s, 5000);
	pack(OS + 100, first);
	utcp_conn_info(C, &ci);
	cr_assert_eq(ci.srtt_us, 1, "no 15 ms sample from the first transmission's echo");
	cr_assert_eq(ci.rto_cur_us, ci.rto_us, "the ACK of new data still clears backoff");
}

/* Without timestamps, Karn: no sample from a retransmitted segment; the
 * backoff still ends with the ACK of new data. */
Test(loss, rto_backoff_undone_without_timestamps)
{
	struct utcp_conn_info ci;

	open_conn(false, false, 1460);
	cr_assert_eq(utcp_write(C, th_pat, 100), 100);
	th_advance(&th_s, 200000 + 400000);
	th_drain(&th_s);
	utcp_conn_info(C, &ci);
	cr_assert_eq(ci.rto_cur_us, 800000);
	pack(OS + 100, 0);
	utcp_conn_info(C, &ci);
	cr_assert_eq(ci.srtt_us, 1, "Karn: no sample");
	cr_assert_eq(ci.rto_cur_us, 200000);
	cr_assert_eq(utcp_write(C, th_pat, 100), 100);
	th_drain(&th_s);
	th_advance(&th_s, 200000);
	cr_assert(th_pop(&th_s, &O), "RTO 200 ms again");
}

Test(loss, limited_transmit_on_first_two_duplicates)
{
	struct utcp_config cfg;
	uint32_t mss = 1460;
	int n = 0;

	th_config(&cfg);
	cfg.sndbuf = 65536;
	th_reinit(&th_s, &cfg);
	open_conn(false, false, 1460);
	cr_assert_eq(utcp_write(C, th_pat, 14 * mss), 14 * mss);
	while (th_pop(&th_s, &O))
		n++;
	cr_assert_eq(n, 10, "IW10");
	pack(OS, 0);				/* segment 1 lost */
	cr_assert(th_pop(&th_s, &O), "first duplicate: one new segment (RFC 3042)");
	cr_assert_eq(O.seq, OS + 10 * mss);
	cr_assert_eq(th_pending(&th_s), 0);
	pack(OS, 0);
	cr_assert(th_pop(&th_s, &O), "second duplicate: one more");
	cr_assert_eq(O.seq, OS + 11 * mss);
	cr_assert_eq(th_pending(&th_s), 0);
	pack(OS, 0);
	cr_assert(th_pop(&th_s, &O), "third: fast retransmit");
	cr_assert_eq(O.seq, OS);
}

Test(loss, early_retransmit_with_two_segments_out)
{
	uint32_t mss = 1460;

	open_conn(false, false, 1460);
	cr_assert_eq(utcp_write(C, th_pat, 2 * mss), 2 * mss);
	th_drain(&th_s);
	pack(OS, 0);				/* the first lost, the second arrived */
	cr_assert(th_pop(&th_s, &O), "one duplicate is all two segments can give");
	cr_assert_eq(O.seq, OS);
	cr_assert_eq(O.len, mss);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_FAST_RETRANSMIT], 1);
}

/* Three segments out, no ACK: after 2 SRTT (10 ms floor) the last one is
 * sent again as a probe; the RTO proper follows if that brings nothing. */
Test(loss, tail_loss_probe_resends_the_last_segment)
{
	uint32_t mss = 1460;

	open_conn(false, false, 1460);
	cr_assert_eq(utcp_write(C, th_pat, 3 * mss), 3 * mss);
	th_drain(&th_s);
	th_advance(&th_s, 9000);
	cr_assert_eq(th_pending(&th_s), 0);
	th_advance(&th_s, 2000);
	cr_assert(th_pop(&th_s, &O), "probe");
	cr_assert_eq(O.seq, OS + 2 * mss, "the last segment");
	cr_assert_eq(O.len, mss);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_TLP], 1);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_RTO], 0);
	th_advance(&th_s, 150000);
	cr_assert_eq(th_pending(&th_s), 0, "one probe only");
	th_advance(&th_s, 60000);
	cr_assert(th_pop(&th_s, &O), "then the RTO");
	cr_assert_eq(O.seq, OS);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_RTO], 1);
}

/* Only the ACKs were lost: the probe's ACK covers everything, no RTO, the
 * window stays. */
Test(loss, tail_loss_probe_ack_ends_the_episode)
{
	struct utcp_conn_info ci;
	uint32_t mss = 1460;

	open_conn(false, false, 1460);
	cr_assert_eq(utcp_write(C, th_pat, 3 * mss), 3 * mss);
	th_drain(&th_s);
	th_advance(&th_s, 11000);
	cr_assert(th_pop(&th_s, &O), "probe");
	pack(OS + 3 * mss, 0);
	th_advance(&th_s, 1000000);
	cr_assert_eq(th_pending(&th_s), 0);
	utcp_conn_info(C, &ci);
	cr_assert_geq(ci.cwnd, 10 * ci.mss, "no loss response");
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_RTO], 0);
}
