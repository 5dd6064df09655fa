/* A device whose tx queue is full: the output callback answers -ENOBUFS.
 * What it refused does not count as sent (snd_nxt, the FIN and the
 * retransmission state stay put) and goes out at the next utcp_flush() or
 * utcp_tick(), not after a retransmission timeout; a packet dropped for good
 * (any other error) is still recovered by the RTO. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/dataplane/tcp/utcp_harness.h"

#define MSS 1460

static struct oseg O;
static uint32_t PS, OS;		/* peer's next sequence, ours */
static struct utcp_conn *C;

static void
open_conn(void)
{
	struct pseg syn = { .mss = MSS };

	C = th_accept(&th_s, 9000, &syn, &PS, &OS, NULL);
}

static void
pack(uint32_t ack)
{
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS, .ack = ack, .flags = ACK,
				       .wnd = 65535 });
}

/* The device takes <room> more packets, then refuses. */
static void
dev_full_after(int room)
{
	th_s.dev_limit = true;
	th_s.dev_room = room;
	th_s.dev_refused = 0;
}

static uint32_t
snd_nxt(void)
{
	struct utcp_conn_info ci;

	utcp_conn_info(C, &ci);
	return ci.snd_nxt;
}

static uint64_t
stat(enum utcp_stat s)
{
	return utcp_stats(th_s.st)[s];
}

TestSuite(txfull, .init = th_suite_init, .fini = th_suite_fini);

Test(txfull, refused_data_goes_at_flush_not_after_rto)
{
	uint32_t seq;
	int i;

	open_conn();
	dev_full_after(2);
	cr_assert_eq(utcp_write(C, th_pat, 10 * MSS), 10 * MSS);
	for (i = 0; i < 2; i++) {
		cr_assert(th_pop(&th_s, &O));
		cr_assert_eq(O.seq, OS + (uint32_t)i * MSS);
	}
	cr_assert_eq(th_pending(&th_s), 0);
	cr_assert_eq(th_s.dev_refused, 1, "the send loop stops at the first refusal");
	cr_assert_eq(snd_nxt(), OS + 2 * MSS, "a refused segment is not in flight");
	cr_assert_eq(stat(UTCP_STAT_OUTPUT_HELD), 1);

	utcp_flush(th_s.st);			/* still full: tried once, nothing moves */
	cr_assert_eq(th_s.dev_refused, 2);
	cr_assert_eq(snd_nxt(), OS + 2 * MSS);

	th_s.dev_limit = false;			/* room again, same instant */
	utcp_flush(th_s.st);
	for (seq = OS + 2 * MSS, i = 0; i < 8; i++, seq += MSS) {
		cr_assert(th_pop(&th_s, &O), "segment %d after the flush", i + 2);
		cr_assert_eq(O.seq, seq, "in order from the first unsent byte");
		cr_assert_eq(O.len, MSS);
		cr_assert_arr_eq(O.data, th_pat + (seq - OS), MSS);
	}
	cr_assert_eq(th_pending(&th_s), 0);
	cr_assert_eq(snd_nxt(), OS + 10 * MSS);
	cr_assert_eq(stat(UTCP_STAT_RETRANSMIT), 0, "nothing was sent twice");
	cr_assert_eq(stat(UTCP_STAT_RTO), 0);
	pack(OS + 10 * MSS);
	th_advance(&th_s, 5000000);
	cr_assert_eq(th_pending(&th_s), 0, "all acknowledged: no timer left");
	cr_assert_eq(stat(UTCP_STAT_RTO), 0);
}

Test(txfull, tick_offers_held_data_and_no_rto_runs_meanwhile)
{
	struct utcp_conn_info ci;

	open_conn();
	dev_full_after(0);
	cr_assert_eq(utcp_write(C, th_pat, 100), 100);
	cr_assert_eq(snd_nxt(), OS);
	th_advance(&th_s, 3000000);		/* longer than the initial RTO */
	cr_assert_eq(th_pending(&th_s), 0);
	cr_assert_geq(th_s.dev_refused, 3000, "offered again at every tick");
	utcp_conn_info(C, &ci);
	cr_assert_eq(ci.snd_nxt, OS);
	cr_assert_eq(ci.retries, 0, "nothing in flight, nothing timed out");
	cr_assert_eq(ci.rto_cur_us, ci.rto_us, "no backoff");
	cr_assert_eq(stat(UTCP_STAT_RTO), 0);
	th_s.dev_limit = false;
	th_advance(&th_s, 1000);
	cr_assert(th_pop(&th_s, &O), "the next tick sends it");
	cr_assert_eq(O.seq, OS);
	cr_assert_eq(O.len, 100);
	cr_assert_eq(snd_nxt(), OS + 100);
	cr_assert_eq(stat(UTCP_STAT_RETRANSMIT), 0);
}

Test(txfull, refused_fin_keeps_its_place)
{
	open_conn();
	dev_full_after(1);
	cr_assert_eq(utcp_write(C, th_pat, 100), 100);
	cr_assert_eq(utcp_shutdown(C), 0);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.len, 100);
	cr_assert_not(O.flags & FIN);
	cr_assert_eq(th_pending(&th_s), 0, "the FIN was refused");
	cr_assert_eq(snd_nxt(), OS + 100, "no sequence number for it yet");
	th_s.dev_limit = false;
	utcp_flush(th_s.st);
	cr_assert(th_pop(&th_s, &O));
	cr_assert(O.flags & FIN);
	cr_assert_eq(O.seq, OS + 100);
	cr_assert_eq(O.len, 0);
	cr_assert_eq(snd_nxt(), OS + 101);
	pack(OS + 101);
	cr_assert_eq(utcp_conn_state(C), UTCP_FIN_WAIT_2);
	cr_assert_eq(stat(UTCP_STAT_RTO), 0);
}

Test(txfull, refused_rto_retransmission_goes_at_flush)
{
	open_conn();
	cr_assert_eq(utcp_write(C, th_pat, 100), 100);
	cr_assert(th_pop(&th_s, &O));
	dev_full_after(0);
	th_advance(&th_s, 200000);		/* the RTO fires into a full queue */
	cr_assert_eq(stat(UTCP_STAT_RTO), 1);
	cr_assert_eq(stat(UTCP_STAT_RETRANSMIT), 0, "refused: not counted as resent");
	cr_assert_eq(th_pending(&th_s), 0);
	th_s.dev_limit = false;
	utcp_flush(th_s.st);
	cr_assert(th_pop(&th_s, &O), "resent at the flush, not at the next RTO");
	cr_assert_eq(O.seq, OS);
	cr_assert_eq(O.len, 100);
	cr_assert_eq(stat(UTCP_STAT_RETRANSMIT), 1);
	cr_assert_eq(th_pending(&th_s), 0);
	pack(OS + 100);
	th_advance(&th_s, 5000000);
	cr_assert_eq(th_pending(&th_s), 0);
	cr_assert_eq(stat(UTCP_STAT_RTO), 1);
}

Test(txfull, refused_fast_retransmit_goes_at_flush)
{
	int i;

	open_conn();
	cr_assert_eq(utcp_write(C, th_pat, 10 * MSS), 10 * MSS);
	th_drain(&th_s);
	pack(OS + MSS);
	pack(OS + MSS);
	pack(OS + MSS);
	dev_full_after(0);
	pack(OS + MSS);				/* third duplicate */
	cr_assert_eq(stat(UTCP_STAT_FAST_RETRANSMIT), 1);
	cr_assert_eq(th_pending(&th_s), 0);
	th_s.dev_limit = false;
	utcp_flush(th_s.st);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.seq, OS + MSS, "the lost head");
	cr_assert_eq(O.len, MSS);
	/* Acknowledging everything ends it without a timeout. */
	pack(OS + 10 * MSS);
	th_drain(&th_s);
	for (i = 0; i < 50; i++)
		th_advance(&th_s, 100000);
	cr_assert_eq(stat(UTCP_STAT_RTO), 0);
}

Test(txfull, refused_ack_is_still_sent)
{
	open_conn();
	dev_full_after(0);
	/* Out of order: an immediate duplicate ACK is due. */
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS + 10, .ack = OS, .flags = ACK,
				       .wnd = 65535, .data = "x", .len = 1 });
	cr_assert_eq(th_s.dev_refused, 1);
	th_s.dev_limit = false;
	utcp_flush(th_s.st);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, ACK);
	cr_assert_eq(O.ack, PS);
	cr_assert_eq(O.len, 0);
	cr_assert_eq(th_pending(&th_s), 0, "one ACK");
}

Test(txfull, refused_delayed_ack_is_still_sent)
{
	open_conn();
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS, .ack = OS, .flags = ACK,
				       .wnd = 65535, .data = "hello", .len = 5 });
	cr_assert_eq(th_pending(&th_s), 0, "ACK delayed");
	dev_full_after(0);
	th_advance(&th_s, 40000);
	cr_assert_eq(stat(UTCP_STAT_DELACK), 1);
	cr_assert_geq(th_s.dev_refused, 1);
	th_s.dev_limit = false;
	utcp_flush(th_s.st);
	cr_assert(th_pop(&th_s, &O), "the ACK goes when there is room");
	cr_assert_eq(O.ack, PS + 5);
	cr_assert_eq(th_pending(&th_s), 0);
}

/* Data refused while an ACK was delayed: the peer heard nothing, so the
 * ACK is still owed, and goes on time even when the data cannot (the peer
 * closed its window meanwhile). */
Test(txfull, refused_data_keeps_the_delayed_ack)
{
	open_conn();
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS, .ack = OS, .flags = ACK,
				       .wnd = 65535, .data = "hello", .len = 5 });
	dev_full_after(0);
	cr_assert_eq(utcp_write(C, th_pat, 100), 100);
	cr_assert_eq(th_s.dev_refused, 1);
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS + 5, .ack = OS, .flags = ACK,
				       .wnd = 0 });
	th_s.dev_limit = false;
	utcp_flush(th_s.st);
	cr_assert_eq(th_pending(&th_s), 0, "zero window: no data");
	th_advance(&th_s, 40000);
	cr_assert(th_pop(&th_s, &O), "the delayed ACK, on time");
	cr_assert_eq(O.len, 0);
	cr_assert_eq(O.ack, PS + 5);
	cr_assert_eq(stat(UTCP_STAT_DELACK), 1);
	/* The window opens: the data goes, once. */
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS + 5, .ack = OS, .flags = ACK,
				       .wnd = 65535 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.seq, OS);
	cr_assert_eq(O.len, 100);
	cr_assert_eq(stat(UTCP_STAT_RETRANSMIT), 0);
}

/* A refused pure ACK that tells the peer nothing new (a challenge ACK,
 * RFC 5961 §4: the peer retries) is not sent again: a needless copy would
 * count as a duplicate ACK. */
Test(txfull, refused_needless_ack_is_dropped)
{
	open_conn();
	dev_full_after(0);
	th_send(&th_s, &(struct pseg){ .sport = 9000, .seq = PS + 5, .flags = SYN, .wnd = 100 });
	cr_assert_eq(stat(UTCP_STAT_CHALLENGE_ACK), 1);
	cr_assert_eq(th_s.dev_refused, 1);
	cr_assert_eq(stat(UTCP_STAT_OUTPUT_HELD), 0);
	th_s.dev_limit = false;
	utcp_flush(th_s.st);
	th_advance(&th_s, 100000);
	cr_assert_eq(th_pending(&th_s), 0);
}

Test(txfull, refused_syn_goes_at_flush)
{
	struct utcp_conn *c;

	dev_full_after(0);
	cr_assert_eq(utcp_connect(th_s.st, TH_PEER, 80, 0, NULL, &c), 0);
	cr_assert_eq(th_pending(&th_s), 0);
	th_s.dev_limit = false;
	utcp_flush(th_s.st);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, SYN);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_RETRANSMIT], 0);
	utcp_abort(c);
}

Test(txfull, aborted_while_held_leaves_the_list)
{
	struct utcp_conn *first;

	open_conn();
	first = C;
	dev_full_after(0);
	cr_assert_eq(utcp_write(C, th_pat, 100), 100);
	utcp_abort(C);				/* its RST is refused too: dropped */
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
	th_s.dev_limit = false;
	utcp_flush(th_s.st);
	th_advance(&th_s, 2000);
	cr_assert_eq(th_pending(&th_s), 0, "nothing left of it");
	/* The object is reused; the list works for the new connection. */
	open_conn();
	cr_assert_eq(C, first);
	dev_full_after(0);
	cr_assert_eq(utcp_write(C, th_pat, 50), 50);
	th_s.dev_limit = false;
	utcp_flush(th_s.st);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.seq, OS);
	cr_assert_eq(O.len, 50);
}

/* A device lost for good (not -ENOBUFS): the RTO recovers, as before. */
Test(txfull, lost_packet_still_waits_for_the_rto)
{
	open_conn();
	th_s.drop_output = true;
	cr_assert_eq(utcp_write(C, th_pat, 100), 100);
	th_s.drop_output = false;
	cr_assert_eq(snd_nxt(), OS + 100, "a lost packet was sent");
	cr_assert_eq(stat(UTCP_STAT_OUTPUT_HELD), 0);
	utcp_flush(th_s.st);
	cr_assert_eq(th_pending(&th_s), 0);
	th_advance(&th_s, 200000);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(stat(UTCP_STAT_RTO), 1);
}
