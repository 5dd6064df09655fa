/* Connection setup and the rules around it, segment by segment: three-way
 * handshake (passive and active, RFC 9293 §3.5), option negotiation (MSS,
 * RFC 7323 window scale and timestamps, RFC 2018 SACK-permitted), SYN and
 * SYN-ACK retransmission, SYN cookies, RFC 5961 challenge ACKs and their rate
 * limit, reset generation and processing (RFC 9293 §3.10.7), IPv4 and ICMP
 * validation, ISNs (RFC 6528). */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/tcp/utcp_csum.h"
#include "dataplane/tcp/utcp_seq.h"
#include "tests/dataplane/tcp/utcp_harness.h"

static struct oseg O;

static void
setup_big(void)
{
	struct utcp_config cfg;

	th_config(&cfg);
	cfg.rcvbuf = 200000;		/* needs window scale 2 */
	th_reinit(&th_s, &cfg);		/* the suite made one with the defaults */
}

TestSuite(handshake, .init = th_suite_init, .fini = th_suite_fini);

Test(handshake, passive_all_options)
{
	struct pseg syn = { .mss = 1460, .has_ws = true, .ws = 7, .sackok = true, .ts = true,
			    .tsval = 100 };
	struct utcp_conn_info ci;
	struct utcp_conn *c;
	uint32_t ps, os;

	setup_big();
	c = th_accept(&th_s, 40000, &syn, &ps, &os, &O);
	cr_assert_eq(O.mss, 1460);
	cr_assert_eq(O.ws, 2, "rcvbuf 200000 needs shift 2");
	cr_assert(O.sackok);
	cr_assert(O.ts);
	cr_assert_eq(O.tsecr, 100);
	cr_assert_eq(O.wnd, 65535, "SYN-ACK window is never scaled");
	cr_assert_eq(O.saddr, TH_LOCAL);
	cr_assert_eq(O.daddr, TH_PEER);
	cr_assert_eq(O.sport, TH_PORT);
	cr_assert_eq(O.dport, 40000);
	cr_assert_eq(th_events(&th_s, c, UTCP_EV_ACCEPTED), 1);
	utcp_conn_info(c, &ci);
	cr_assert_eq(ci.state, UTCP_ESTABLISHED);
	cr_assert(ci.ts_ok && ci.sack_ok);
	cr_assert_eq(ci.snd_wscale, 7);
	cr_assert_eq(ci.rcv_wscale, 2);
	cr_assert_eq(ci.mss, 1460 - 12, "timestamps take 12 bytes of each segment");
	cr_assert_eq(ci.snd_wnd, 65535u << 7, "the final ACK's window is scaled");
	cr_assert_eq(ci.cwnd, 10u * ci.mss, "IW10 (RFC 6928)");
	cr_assert_eq(th_pending(&th_s), 0, "no reply to the final ACK");
}

Test(handshake, passive_no_options)
{
	struct pseg syn = { 0 };
	struct utcp_conn_info ci;
	struct utcp_conn *c;
	uint32_t ps, os;

	c = th_accept(&th_s, 40001, &syn, &ps, &os, &O);
	cr_assert_eq(O.mss, 1460, "MSS is always sent");
	cr_assert_eq(O.ws, -1);
	cr_assert_not(O.sackok);
	cr_assert_not(O.ts);
	utcp_conn_info(c, &ci);
	cr_assert_not(ci.ts_ok || ci.sack_ok);
	cr_assert_eq(ci.snd_wscale, 0);
	cr_assert_eq(ci.rcv_wscale, 0);
	cr_assert_eq(ci.mss, 536, "RFC 9293 §3.7.1 default MSS");
	cr_assert_eq(ci.cwnd, 10 * 536, "IW = min(10 MSS, max(2 MSS, 14600))");
}

Test(handshake, passive_partial_options)
{
	struct pseg s1 = { .mss = 1000, .ts = true, .tsval = 7 };
	struct pseg s2 = { .mss = 1200, .has_ws = true, .ws = 3 };
	struct pseg s3 = { .mss = 1400, .sackok = true };
	struct utcp_conn_info ci;
	uint32_t ps, os;

	utcp_conn_info(th_accept(&th_s, 40010, &s1, &ps, &os, &O), &ci);
	cr_assert(O.ts && !O.sackok && O.ws == -1);
	cr_assert(ci.ts_ok && !ci.sack_ok);
	cr_assert_eq(ci.mss, 1000 - 12);
	utcp_conn_info(th_accept(&th_s, 40011, &s2, &ps, &os, &O), &ci);
	cr_assert(!O.ts && !O.sackok && O.ws == 0);
	cr_assert_eq(ci.snd_wscale, 3);
	cr_assert_eq(ci.mss, 1200);
	utcp_conn_info(th_accept(&th_s, 40012, &s3, &ps, &os, &O), &ci);
	cr_assert(!O.ts && O.sackok && O.ws == -1);
	cr_assert(ci.sack_ok);
}

Test(handshake, options_disabled_by_config)
{
	struct utcp_config cfg;
	struct pseg syn = { .mss = 1460, .has_ws = true, .ws = 7, .sackok = true, .ts = true,
			    .tsval = 1 };
	struct utcp_conn_info ci;
	uint32_t ps, os;

	th_config(&cfg);
	cfg.no_timestamps = cfg.no_wscale = cfg.no_sack = true;
	th_reinit(&th_s, &cfg);		/* the suite made one with the defaults */
	utcp_conn_info(th_accept(&th_s, 40020, &syn, &ps, &os, &O), &ci);
	cr_assert(!O.ts && !O.sackok && O.ws == -1);
	cr_assert(!ci.ts_ok && !ci.sack_ok && ci.snd_wscale == 0);
}

static struct utcp_conn *
active(uint16_t lport, struct oseg *syn)
{
	struct utcp_conn *c = NULL;

	cr_assert_eq(utcp_connect(th_s.st, TH_PEER, 80, lport, (void *)0x1, &c), 0);
	cr_assert(th_pop(&th_s, syn));
	cr_assert_eq(syn->flags, SYN);
	return c;
}

Test(handshake, active_open_negotiates)
{
	struct utcp_conn_info ci;
	struct utcp_conn *c;
	struct oseg syn;

	c = active(0, &syn);
	cr_assert_eq(utcp_conn_state(c), UTCP_SYN_SENT);
	cr_assert_eq(syn.mss, 1460);
	cr_assert_eq(syn.ws, 0);
	cr_assert(syn.sackok && syn.ts);
	cr_assert_eq(syn.tsecr, 0);
	cr_assert(syn.sport >= 32768 && syn.sport <= 60999, "ephemeral port");
	th_send(&th_s, &(struct pseg){ .sport = 80, .dport = syn.sport, .seq = 5000,
				       .ack = syn.seq + 1, .flags = SYN | ACK, .wnd = 1000,
				       .mss = 1400, .has_ws = true, .ws = 4, .ts = true,
				       .tsval = 77, .tsecr = syn.tsval });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, ACK);
	cr_assert_eq(O.seq, syn.seq + 1);
	cr_assert_eq(O.ack, 5001);
	cr_assert(O.ts);
	cr_assert_eq(O.tsecr, 77);
	cr_assert_eq(th_events(&th_s, c, UTCP_EV_CONNECTED), 1);
	utcp_conn_info(c, &ci);
	cr_assert_eq(ci.state, UTCP_ESTABLISHED);
	cr_assert_eq(ci.snd_wnd, 1000, "window in a SYN-ACK is not scaled");
	cr_assert_eq(ci.snd_wscale, 4);
	cr_assert_eq(ci.mss, 1400 - 12);
	cr_assert(!ci.sack_ok, "peer did not send SACK-permitted");
	/* Later windows are scaled. */
	th_send(&th_s, &(struct pseg){ .sport = 80, .dport = syn.sport, .seq = 5001,
				       .ack = syn.seq + 1, .flags = ACK, .wnd = 1000, .ts = true,
				       .tsval = 78 });
	utcp_conn_info(c, &ci);
	cr_assert_eq(ci.snd_wnd, 16000);
	cr_assert_eq(utcp_conn_user(c), (void *)0x1);
	utcp_abort(c);
}

Test(handshake, active_refused_by_rst)
{
	struct utcp_conn *c;
	struct oseg syn;

	c = active(0, &syn);
	/* RST with an unacceptable ACK is ignored (RFC 9293 §3.10.7.3). */
	th_send(&th_s, &(struct pseg){ .sport = 80, .dport = syn.sport, .ack = syn.seq + 5,
				       .flags = RST | ACK });
	cr_assert_eq(utcp_conn_state(c), UTCP_SYN_SENT);
	cr_assert_eq(th_pending(&th_s), 0, "no RST for a RST");
	th_send(&th_s, &(struct pseg){ .sport = 80, .dport = syn.sport, .ack = syn.seq + 1,
				       .flags = RST | ACK });
	cr_assert_eq(utcp_conn_state(c), UTCP_CLOSED);
	cr_assert_eq(utcp_conn_error(c), -ECONNREFUSED);
	cr_assert_eq(th_events(&th_s, c, UTCP_EV_CLOSED), 1);
	cr_assert_eq(utcp_read(c, NULL, 0), -ECONNREFUSED);
	utcp_close(c);
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
}

Test(handshake, syn_sent_bad_ack_gets_rst)
{
	struct oseg syn;

	active(0, &syn);
	th_send(&th_s, &(struct pseg){ .sport = 80, .dport = syn.sport, .seq = 9, .ack = syn.seq,
				       .flags = SYN | ACK, .wnd = 100 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, RST);
	cr_assert_eq(O.seq, syn.seq, "<SEQ=SEG.ACK><CTL=RST>");
}

Test(handshake, syn_retransmission_backoff_and_timeout)
{
	struct utcp_config cfg;
	struct utcp_conn *c;
	struct oseg syn;
	uint64_t gaps[] = { 1000000, 2000000, 4000000 };
	int i;

	th_config(&cfg);
	cfg.syn_retries = 3;
	th_reinit(&th_s, &cfg);		/* the suite made one with the defaults */
	c = active(0, &syn);
	for (i = 0; i < 3; i++) {
		th_advance(&th_s, gaps[i] - 1000);
		cr_assert_eq(th_pending(&th_s), 0, "early retransmission %d", i);
		th_advance(&th_s, 1000);
		cr_assert(th_pop(&th_s, &O), "retransmission %d", i);
		cr_assert_eq(O.flags, SYN);
		cr_assert_eq(O.seq, syn.seq);
	}
	th_advance(&th_s, 8000000);
	cr_assert_eq(th_pending(&th_s), 0);
	cr_assert_eq(utcp_conn_state(c), UTCP_CLOSED);
	cr_assert_eq(utcp_conn_error(c), -ETIMEDOUT);
	utcp_close(c);
}

Test(handshake, synack_retransmitted_then_forgotten)
{
	struct utcp_config cfg;
	int i;

	th_config(&cfg);
	cfg.synack_retries = 2;
	th_reinit(&th_s, &cfg);		/* the suite made one with the defaults */
	utcp_listen(th_s.st, TH_PORT, NULL);
	th_send(&th_s, &(struct pseg){ .sport = 1234, .seq = 100, .flags = SYN, .wnd = 1000 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(utcp_conn_count(th_s.st), 1);
	/* The peer's SYN again: the same SYN-ACK again. */
	th_send(&th_s, &(struct pseg){ .sport = 1234, .seq = 100, .flags = SYN, .wnd = 1000 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, SYN | ACK);
	for (i = 0; i < 2; i++) {
		th_advance(&th_s, (1000000u << i));
		cr_assert(th_pop(&th_s, &O));
		cr_assert_eq(O.flags, SYN | ACK);
		cr_assert_eq(O.ack, 101);
	}
	th_advance(&th_s, 4000000);
	cr_assert_eq(utcp_conn_count(th_s.st), 0, "embryonic connection dropped");
	cr_assert_eq(th_s.nev, 0, "the app never heard of it");
}

Test(handshake, simultaneous_open)
{
	struct utcp_conn *c;
	struct oseg syn;

	c = active(6000, &syn);
	th_send(&th_s, &(struct pseg){ .sport = 80, .dport = 6000, .seq = 700, .flags = SYN,
				       .wnd = 5000 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, SYN | ACK);
	cr_assert_eq(O.seq, syn.seq);
	cr_assert_eq(O.ack, 701);
	cr_assert_eq(utcp_conn_state(c), UTCP_SYN_RECEIVED);
	th_send(&th_s, &(struct pseg){ .sport = 80, .dport = 6000, .seq = 701, .ack = syn.seq + 1,
				       .flags = ACK, .wnd = 5000 });
	cr_assert_eq(utcp_conn_state(c), UTCP_ESTABLISHED);
	cr_assert_eq(th_events(&th_s, c, UTCP_EV_CONNECTED), 1);
	utcp_abort(c);
}

Test(handshake, listen_rules)
{
	cr_assert_eq(utcp_listen(th_s.st, 80, NULL), 0);
	cr_assert_eq(utcp_listen(th_s.st, 80, NULL), -EADDRINUSE);
	cr_assert_eq(utcp_unlisten(th_s.st, 80), 0);
	cr_assert_eq(utcp_unlisten(th_s.st, 80), -ENOENT);
	/* A SYN-ACK or bare ACK to a listener gets a RST (no cookies sent). */
	utcp_listen(th_s.st, TH_PORT, NULL);
	th_send(&th_s, &(struct pseg){ .sport = 9, .seq = 1, .ack = 55, .flags = SYN | ACK });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, RST);
	cr_assert_eq(O.seq, 55);
	th_send(&th_s, &(struct pseg){ .sport = 9, .seq = 1, .ack = 66, .flags = ACK });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, RST);
	cr_assert_eq(O.seq, 66);
	/* RST to a listener: silence. */
	th_send(&th_s, &(struct pseg){ .sport = 9, .seq = 1, .flags = RST });
	cr_assert_eq(th_pending(&th_s), 0);
}

/* ---- SYN cookies ---- */

TestSuite(syncookie, .init = th_suite_init, .fini = th_suite_fini);

static void
fill_synq(void)
{
	int i;

	utcp_listen(th_s.st, TH_PORT, NULL);
	for (i = 0; i < 4; i++) {
		th_send(&th_s, &(struct pseg){ .sport = (uint16_t)(2000 + i), .seq = 10,
					       .flags = SYN, .wnd = 1000, .mss = 1460 });
		cr_assert(th_pop(&th_s, &O));
	}
	cr_assert_eq(utcp_conn_count(th_s.st), 4);
}

Test(syncookie, full_queue_answers_with_cookie_and_ack_opens)
{
	struct utcp_conn_info ci;
	uint8_t buf[16];

	fill_synq();
	th_send(&th_s, &(struct pseg){ .sport = 3000, .seq = 5000, .flags = SYN, .wnd = 1000,
				       .mss = 1300, .has_ws = true, .ws = 5, .sackok = true,
				       .ts = true, .tsval = 999 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, SYN | ACK);
	cr_assert_eq(O.ack, 5001);
	cr_assert_eq(O.mss, 1300, "MSS from the cookie table");
	cr_assert(O.ts && O.sackok && O.ws >= 0);
	cr_assert_eq(utcp_conn_count(th_s.st), 4, "no state kept");
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_COOKIE_SENT], 1);
	/* The final ACK, with data, rebuilds the connection. */
	th_s.accepted = NULL;
	th_send(&th_s, &(struct pseg){ .sport = 3000, .seq = 5001, .ack = O.seq + 1, .flags = ACK,
				       .wnd = 100, .ts = true, .tsval = 1000, .tsecr = O.tsval,
				       .data = "hello", .len = 5 });
	cr_assert_not_null(th_s.accepted);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_COOKIE_OK], 1);
	utcp_conn_info(th_s.accepted, &ci);
	cr_assert_eq(ci.state, UTCP_ESTABLISHED);
	cr_assert(ci.ts_ok && ci.sack_ok);
	cr_assert_eq(ci.snd_wscale, 5, "window scale recovered from TSecr");
	cr_assert_eq(ci.snd_wnd, 100u << 5);
	cr_assert_eq(ci.mss, 1300 - 12);
	cr_assert_eq(utcp_read(th_s.accepted, buf, sizeof(buf)), 5);
	cr_assert_arr_eq(buf, "hello", 5);
}

Test(syncookie, without_timestamps_no_wscale_no_sack)
{
	struct utcp_conn_info ci;

	fill_synq();
	th_send(&th_s, &(struct pseg){ .sport = 3001, .seq = 5000, .flags = SYN, .wnd = 1000,
				       .mss = 1460, .has_ws = true, .ws = 5, .sackok = true });
	cr_assert(th_pop(&th_s, &O));
	cr_assert(!O.ts && !O.sackok && O.ws == -1);
	th_send(&th_s, &(struct pseg){ .sport = 3001, .seq = 5001, .ack = O.seq + 1, .flags = ACK,
				       .wnd = 1000 });
	cr_assert_not_null(th_s.accepted);
	utcp_conn_info(th_s.accepted, &ci);
	cr_assert(!ci.ts_ok && !ci.sack_ok);
	cr_assert_eq(ci.snd_wscale, 0);
	cr_assert_eq(ci.mss, 1460);
}

Test(syncookie, bad_or_stale_cookie_dropped)
{
	fill_synq();
	th_send(&th_s, &(struct pseg){ .sport = 3002, .seq = 5000, .flags = SYN, .wnd = 1000 });
	cr_assert(th_pop(&th_s, &O));
	th_s.accepted = NULL;
	th_send(&th_s, &(struct pseg){ .sport = 3002, .seq = 5001, .ack = O.seq + 2, .flags = ACK,
				       .wnd = 1000 });
	cr_assert_null(th_s.accepted);
	cr_assert_eq(th_pending(&th_s), 0, "dropped without a RST");
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_COOKIE_BAD], 1);
	/* Wrong peer ISN. */
	th_send(&th_s, &(struct pseg){ .sport = 3002, .seq = 6001, .ack = O.seq + 1, .flags = ACK,
				       .wnd = 1000 });
	cr_assert_null(th_s.accepted);
	/* Stale: more than two periods later. */
	th_advance(&th_s, 129000000);
	th_send(&th_s, &(struct pseg){ .sport = 3002, .seq = 5001, .ack = O.seq + 1, .flags = ACK,
				       .wnd = 1000 });
	cr_assert_null(th_s.accepted);
}

Test(syncookie, disabled_drops_when_full)
{
	struct utcp_config cfg;

	th_config(&cfg);
	cfg.syncookies = false;
	th_reinit(&th_s, &cfg);		/* the suite made one with the defaults */
	fill_synq();
	th_send(&th_s, &(struct pseg){ .sport = 3003, .seq = 5000, .flags = SYN, .wnd = 1000 });
	cr_assert_eq(th_pending(&th_s), 0);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_SYNQ_FULL], 1);
}

/* ---- RFC 5961 ---- */

TestSuite(rfc5961, .init = th_suite_init, .fini = th_suite_fini);

static struct utcp_conn *
est(uint16_t port, uint32_t *ps, uint32_t *os)
{
	struct pseg syn = { .mss = 1460 };

	return th_accept(&th_s, port, &syn, ps, os, NULL);
}

Test(rfc5961, rst_exact_sequence_resets)
{
	uint32_t ps, os;
	struct utcp_conn *c = est(7000, &ps, &os);

	th_send(&th_s, &(struct pseg){ .sport = 7000, .seq = ps, .flags = RST });
	cr_assert_eq(utcp_conn_state(c), UTCP_CLOSED);
	cr_assert_eq(utcp_conn_error(c), -ECONNRESET);
	cr_assert_eq(th_events(&th_s, c, UTCP_EV_CLOSED), 1);
	cr_assert_eq(th_pending(&th_s), 0);
	cr_assert_eq(utcp_write(c, "x", 1), -ECONNRESET);
	utcp_close(c);
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
}

Test(rfc5961, rst_in_window_not_exact_challenged)
{
	uint32_t ps, os;
	struct utcp_conn *c = est(7001, &ps, &os);

	th_send(&th_s, &(struct pseg){ .sport = 7001, .seq = ps + 100, .flags = RST });
	cr_assert_eq(utcp_conn_state(c), UTCP_ESTABLISHED);
	cr_assert(th_pop(&th_s, &O), "challenge ACK (§3.2)");
	cr_assert_eq(O.flags, ACK);
	cr_assert_eq(O.seq, os);
	cr_assert_eq(O.ack, ps);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_CHALLENGE_ACK], 1);
	/* The legitimate peer answers with the exact RST. */
	th_send(&th_s, &(struct pseg){ .sport = 7001, .seq = O.ack, .flags = RST });
	cr_assert_eq(utcp_conn_state(c), UTCP_CLOSED);
}

Test(rfc5961, rst_out_of_window_ignored)
{
	uint32_t ps, os;
	struct utcp_conn *c = est(7002, &ps, &os);

	th_send(&th_s, &(struct pseg){ .sport = 7002, .seq = ps + 1000000, .flags = RST });
	th_send(&th_s, &(struct pseg){ .sport = 7002, .seq = ps - 1, .flags = RST });
	cr_assert_eq(utcp_conn_state(c), UTCP_ESTABLISHED);
	cr_assert_eq(th_pending(&th_s), 0);
}

Test(rfc5961, syn_in_synchronized_state_challenged)
{
	uint32_t ps, os;
	struct utcp_conn *c = est(7003, &ps, &os);

	th_send(&th_s, &(struct pseg){ .sport = 7003, .seq = ps + 5, .flags = SYN, .wnd = 100 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, ACK);
	cr_assert_eq(O.ack, ps);
	th_send(&th_s, &(struct pseg){ .sport = 7003, .seq = ps - 5000, .flags = SYN, .wnd = 100 });
	cr_assert(th_pop(&th_s, &O), "§4.2: whatever the sequence number");
	cr_assert_eq(utcp_conn_state(c), UTCP_ESTABLISHED);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_CHALLENGE_ACK], 2);
}

Test(rfc5961, unacceptable_ack_challenged_and_data_dropped)
{
	uint32_t ps, os;
	uint8_t b[8];
	struct utcp_conn *c = est(7004, &ps, &os);

	/* Acknowledges data never sent (§5.2, RFC 9293). */
	th_send(&th_s, &(struct pseg){ .sport = 7004, .seq = ps, .ack = os + 10, .flags = ACK,
				       .wnd = 100, .data = "evil", .len = 4 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.ack, ps, "data not accepted");
	cr_assert_eq(utcp_read(c, b, 8), -EAGAIN);
	/* Too old: below SND.UNA - MAX.SND.WND. */
	th_send(&th_s, &(struct pseg){ .sport = 7004, .seq = ps, .ack = os - 70000, .flags = ACK,
				       .wnd = 100, .data = "evil", .len = 4 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(utcp_read(c, b, 8), -EAGAIN);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_CHALLENGE_ACK], 2);
	/* An old but acceptable ACK is fine: the data goes in. */
	th_send(&th_s, &(struct pseg){ .sport = 7004, .seq = ps, .ack = os - 10, .flags = ACK,
				       .wnd = 100, .data = "good", .len = 4 });
	cr_assert_eq(utcp_read(c, b, 8), 4);
}

Test(rfc5961, challenge_ack_rate_limit)
{
	struct utcp_config cfg;
	struct utcp_conn *c;
	uint32_t ps, os;
	int i;

	th_config(&cfg);
	cfg.challenge_ack_limit = 5;
	th_reinit(&th_s, &cfg);		/* the suite made one with the defaults */
	c = est(7005, &ps, &os);
	for (i = 0; i < 10; i++)
		th_send(&th_s, &(struct pseg){ .sport = 7005, .seq = ps + 10 + (uint32_t)i,
					       .flags = RST });
	cr_assert_eq(th_pending(&th_s), 5);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_CHALLENGE_ACK_LIMITED], 5);
	th_drain(&th_s);
	th_advance(&th_s, 1000000);
	for (i = 0; i < 10; i++)
		th_send(&th_s, &(struct pseg){ .sport = 7005, .seq = ps + 1, .flags = SYN });
	cr_assert_eq(th_pending(&th_s), 5, "a new second, a new budget");
	cr_assert_eq(utcp_conn_state(c), UTCP_ESTABLISHED);
}

/* ---- resets for segments without a connection (RFC 9293 §3.10.7.1) ---- */

TestSuite(rst, .init = th_suite_init, .fini = th_suite_fini);

Test(rst, closed_port)
{
	th_send(&th_s, &(struct pseg){ .sport = 1, .dport = 81, .seq = 1000, .flags = SYN });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, RST | ACK);
	cr_assert_eq(O.seq, 0);
	cr_assert_eq(O.ack, 1001);
	th_send(&th_s, &(struct pseg){ .sport = 1, .dport = 81, .seq = 1000, .ack = 4242,
				       .flags = ACK, .data = "abc", .len = 3 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, RST);
	cr_assert_eq(O.seq, 4242);
	th_send(&th_s, &(struct pseg){ .sport = 1, .dport = 81, .seq = 1000, .flags = FIN | PSH,
				       .data = "abc", .len = 3 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, RST | ACK);
	cr_assert_eq(O.ack, 1004, "data and FIN counted");
	th_send(&th_s, &(struct pseg){ .sport = 1, .dport = 81, .seq = 1000, .flags = RST });
	th_send(&th_s, &(struct pseg){ .sport = 1, .dport = 81, .seq = 1000, .ack = 1,
				       .flags = RST | ACK });
	cr_assert_eq(th_pending(&th_s), 0, "never a RST in reply to a RST");
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_NO_PORT], 5);
}

Test(rst, syn_received_rst_returns_to_listen)
{
	utcp_listen(th_s.st, TH_PORT, NULL);
	th_send(&th_s, &(struct pseg){ .sport = 50, .seq = 100, .flags = SYN, .wnd = 1000 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(utcp_conn_count(th_s.st), 1);
	th_send(&th_s, &(struct pseg){ .sport = 50, .seq = 101, .flags = RST });
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
	cr_assert_eq(th_s.nev, 0);
	/* A bad ACK in SYN_RECEIVED gets a RST, the connection stays. */
	th_send(&th_s, &(struct pseg){ .sport = 51, .seq = 100, .flags = SYN, .wnd = 1000 });
	cr_assert(th_pop(&th_s, &O));
	th_send(&th_s, &(struct pseg){ .sport = 51, .seq = 101, .ack = O.seq + 7, .flags = ACK,
				       .wnd = 1000 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, RST);
	cr_assert_eq(utcp_conn_count(th_s.st), 1);
}

Test(rst, abort_sends_rst)
{
	uint32_t ps, os;
	struct utcp_conn *c = est(7010, &ps, &os);

	utcp_abort(c);
	cr_assert(th_pop(&th_s, &O));
	cr_assert(O.flags & RST);
	cr_assert_eq(O.seq, os);
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
	/* Later segments of that peer meet a RST (no connection). */
	th_send(&th_s, &(struct pseg){ .sport = 7010, .seq = ps, .ack = os, .flags = ACK,
				       .data = "x", .len = 1 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, RST);
}

/* ---- IPv4, ICMP ---- */

TestSuite(ipv4, .init = th_suite_init, .fini = th_suite_fini);

static size_t
syn_packet(uint8_t *b)
{
	return th_build(&(struct pseg){ .sport = 1, .dport = 81, .seq = 1, .flags = SYN }, b,
			2000);
}

static void
fix_ip_csum(uint8_t *b)
{
	uint16_t ck;

	b[10] = b[11] = 0;
	ck = utcp_csum_fold(utcp_csum_add(0, b, 20));
	b[10] = (uint8_t)(ck >> 8);
	b[11] = (uint8_t)ck;
}

Test(ipv4, valid_packet_is_processed)
{
	uint8_t b[2000];
	size_t n = syn_packet(b);

	th_inject(&th_s, b, n);
	cr_assert_eq(th_pending(&th_s), 1, "RST from the closed port");
	/* Ethernet padding after the IPv4 total length is ignored. */
	memset(b + n, 0xee, 10);
	th_inject(&th_s, b, n + 10);
	cr_assert_eq(th_pending(&th_s), 2);
}

Test(ipv4, header_validation)
{
	const uint64_t *s = utcp_stats(th_s.st);
	uint8_t b[2000];
	size_t n;

	n = syn_packet(b);
	b[11] ^= 1;				/* header checksum */
	th_inject(&th_s, b, n);
	n = syn_packet(b);
	b[0] = 0x65;				/* version 6 */
	fix_ip_csum(b);
	th_inject(&th_s, b, n);
	n = syn_packet(b);
	b[0] = 0x44;				/* IHL 16 bytes */
	th_inject(&th_s, b, n);
	n = syn_packet(b);
	b[3] += 1;				/* total length > packet */
	fix_ip_csum(b);
	th_inject(&th_s, b, n);
	n = syn_packet(b);
	b[2] = 0;
	b[3] = 10;				/* total length < header */
	fix_ip_csum(b);
	th_inject(&th_s, b, n);
	th_inject(&th_s, b, 19);			/* runt */
	cr_assert_eq(s[UTCP_STAT_IP_BAD_HDR], 6);
	cr_assert_eq(th_pending(&th_s), 0);
}

Test(ipv4, fragments_dropped)
{
	const uint64_t *s = utcp_stats(th_s.st);
	uint8_t b[2000];
	size_t n;

	n = syn_packet(b);
	b[6] = 0x20;				/* MF */
	b[7] = 0;
	fix_ip_csum(b);
	th_inject(&th_s, b, n);
	n = syn_packet(b);
	b[6] = 0x00;
	b[7] = 0x10;				/* offset 128 bytes */
	fix_ip_csum(b);
	th_inject(&th_s, b, n);
	cr_assert_eq(s[UTCP_STAT_IP_FRAG], 2);
	cr_assert_eq(th_pending(&th_s), 0);
}

Test(ipv4, other_destination_and_protocol)
{
	const uint64_t *s = utcp_stats(th_s.st);
	uint8_t b[2000];
	size_t n;

	n = syn_packet(b);
	b[19] ^= 0x55;
	fix_ip_csum(b);
	th_inject(&th_s, b, n);
	cr_assert_eq(s[UTCP_STAT_IP_NOT_LOCAL], 1);
	n = syn_packet(b);
	b[9] = 17;
	fix_ip_csum(b);
	th_inject(&th_s, b, n);
	cr_assert_eq(s[UTCP_STAT_IP_PROTO], 1);
	cr_assert_eq(th_pending(&th_s), 0);
}

Test(ipv4, tcp_checksum_and_offset)
{
	const uint64_t *s = utcp_stats(th_s.st);
	uint8_t b[2000];
	size_t n;

	n = syn_packet(b);
	b[n - 1] ^= 0x40;			/* TCP checksum now wrong */
	th_inject(&th_s, b, n);
	n = syn_packet(b);
	b[32] = 0x40;				/* data offset 16 bytes */
	th_inject(&th_s, b, n);
	cr_assert_eq(s[UTCP_STAT_TCP_BAD], 2);
	cr_assert_eq(th_pending(&th_s), 0);
}

static size_t
echo_request(uint8_t *b, const char *payload)
{
	size_t pl = strlen(payload), n = 20 + 8 + pl;
	uint16_t ck;

	memset(b, 0, n);
	b[0] = 0x45;
	b[2] = (uint8_t)(n >> 8);
	b[3] = (uint8_t)n;
	b[8] = 64;
	b[9] = 1;
	b[12] = 198; b[13] = 18; b[14] = 0; b[15] = 1;
	b[16] = 198; b[17] = 18; b[18] = 0; b[19] = 2;
	fix_ip_csum(b);
	b[20] = 8;
	b[24] = 0x12; b[25] = 0x34;		/* identifier */
	b[26] = 0x00; b[27] = 0x07;		/* sequence */
	memcpy(b + 28, payload, pl);
	ck = utcp_csum_fold(utcp_csum_add(0, b + 20, 8 + pl));
	b[22] = (uint8_t)(ck >> 8);
	b[23] = (uint8_t)ck;
	return n;
}

Test(ipv4, icmp_echo_reply)
{
	uint8_t b[200];
	size_t n = echo_request(b, "ping payload!");

	th_inject(&th_s, b, n);
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.proto, 1);
	cr_assert_eq(O.daddr, TH_PEER);
	cr_assert_eq(O.saddr, TH_LOCAL);
	cr_assert_eq(O.len, 8 + 13);
	cr_assert_eq(O.data[0], 0, "echo reply");
	cr_assert_eq(utcp_csum_fold(utcp_csum_add(0, O.data, O.len)), 0, "ICMP checksum");
	cr_assert_arr_eq(O.data + 4, b + 24, 4 + 13, "identifier, sequence, data");
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_ICMP_ECHO], 1);
	b[30] ^= 1;				/* corrupt the ICMP data */
	th_inject(&th_s, b, n);
	cr_assert_eq(th_pending(&th_s), 0);
	cr_assert_eq(utcp_stats(th_s.st)[UTCP_STAT_ICMP_BAD], 1);
}

/* ---- ISN (RFC 6528) ---- */

Test(ipv4, isn_monotonic_per_tuple_and_spread)
{
	uint32_t prev = 0, first_other;
	struct utcp_conn *c;
	struct oseg syn;
	int i;

	for (i = 0; i < 5; i++) {
		cr_assert_eq(utcp_connect(th_s.st, TH_PEER, 80, 7777, NULL, &c), 0);
		cr_assert(th_pop(&th_s, &syn));
		if (i > 0) {
			cr_assert(utcp_seq_gt(syn.seq, prev), "ISN grows with the clock");
			cr_assert_eq(syn.seq - prev, 250000u, "4-µs clock over 1 s");
		}
		prev = syn.seq;
		utcp_abort(c);
		th_advance(&th_s, 1000000);
	}
	cr_assert_eq(utcp_connect(th_s.st, TH_PEER, 80, 7778, NULL, &c), 0);
	cr_assert(th_pop(&th_s, &syn));
	first_other = syn.seq;
	cr_assert(first_other - prev > 1000000u && prev - first_other > 1000000u,
		  "another tuple, an unrelated ISN");
	utcp_abort(c);
}

Test(handshake, final_ack_with_data_completes)
{
	uint8_t b[8];

	utcp_listen(th_s.st, TH_PORT, NULL);
	th_send(&th_s, &(struct pseg){ .sport = 4100, .seq = 10, .flags = SYN, .wnd = 1000 });
	cr_assert(th_pop(&th_s, &O));
	th_send(&th_s, &(struct pseg){ .sport = 4100, .seq = 11, .ack = O.seq + 1,
				       .flags = ACK | PSH, .wnd = 1000, .data = "REGISTER",
				       .len = 8 });
	cr_assert_not_null(th_s.accepted);
	cr_assert_eq(utcp_read(th_s.accepted, b, 8), 8);
	cr_assert_arr_eq(b, "REGISTER", 8);
}

Test(handshake, data_written_before_connected_waits)
{
	struct utcp_conn *c;
	struct oseg syn;

	c = active(0, &syn);
	cr_assert_eq(utcp_write(c, "early", 5), 5);
	cr_assert_eq(th_pending(&th_s), 0, "nothing before the handshake");
	th_send(&th_s, &(struct pseg){ .sport = 80, .dport = syn.sport, .seq = 1,
				       .ack = syn.seq + 1, .flags = SYN | ACK, .wnd = 1000,
				       .mss = 1000 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.seq, syn.seq + 1);
	cr_assert_eq(O.len, 5, "queued data leaves with the handshake's ACK");
	cr_assert_eq(O.ack, 2);
	utcp_abort(c);
}

Test(handshake, unlisten_drops_embryonic)
{
	utcp_listen(th_s.st, TH_PORT, NULL);
	th_send(&th_s, &(struct pseg){ .sport = 4200, .seq = 10, .flags = SYN, .wnd = 1000 });
	cr_assert_eq(utcp_conn_count(th_s.st), 1);
	cr_assert_eq(utcp_unlisten(th_s.st, TH_PORT), 0);
	cr_assert_eq(utcp_conn_count(th_s.st), 0);
	th_drain(&th_s);
	th_send(&th_s, &(struct pseg){ .sport = 4201, .seq = 10, .flags = SYN, .wnd = 1000 });
	cr_assert(th_pop(&th_s, &O));
	cr_assert_eq(O.flags, RST | ACK, "port closed now");
}

/* Found while writing tests/fuzz/fuzz_utcp, whose MSS invariant catches
 * it (reproducer: tests/fuzz/corpus/utcp/tiny_mss_ts): with timestamps, a
 * peer MSS below the option's 12 bytes wrapped the unsigned subtraction in
 * set_mss(), so the congestion window's unit became ~65530 and the
 * initial window twice that, in 64-byte segments. The 64-byte floor
 * applies instead. */
Test(handshake, tiny_peer_mss_with_timestamps_keeps_the_floor)
{
	struct pseg syn = { .mss = 5, .ts = true, .tsval = 1 };
	struct utcp_conn_info ci;
	struct utcp_conn *c;
	uint32_t ps, os;

	c = th_accept(&th_s, 40000, &syn, &ps, &os, &O);
	utcp_conn_info(c, &ci);
	cr_assert(ci.ts_ok);
	cr_assert_eq(ci.mss, 64, "got %u", ci.mss);
	cr_assert_eq(ci.cwnd, 10u * 64, "IW10 of the floor, got %u", ci.cwnd);
}
