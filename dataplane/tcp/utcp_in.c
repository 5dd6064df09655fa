/* TCP input: IPv4 validation, ICMP echo, TCP parsing and the RFC 9293
 * segment-arrival procedure (§3.10.7) with RFC 5961 (challenge ACKs),
 * RFC 7323 (PAWS), SYN cookies, TIME_WAIT records, reassembly, delayed ACKs,
 * RTT estimation (RFC 6298, RFC 7323 §4) and NewReno (RFC 5681, 6582).
 *
 * Nothing here keeps a pointer into the input packet: payload is copied into
 * the receive ring, or taken by the app's recv hook, before utcp_input()
 * returns. */
#include <errno.h>
#include <string.h>

#include "dataplane/base/be.h"
#include "dataplane/tcp/utcp_csum.h"
#include "dataplane/tcp/utcp_int.h"
#include "dataplane/tcp/utcp_seq.h"
#include "dataplane/tcp/utcp_syncookie.h"

/* Addresses we never talk to: 0/8, multicast, class E and broadcast. */
static bool
bad_source(uint32_t a)
{
	return (a >> 24) == 0 || (a >> 28) >= 0xe;
}

/* ---- options ---- */

void
utcp_in_options(struct utcp_seg *seg, const uint8_t *o, size_t len)
{
	size_t i = 0, ol;

	while (i < len) {
		if (o[i] == 0)
			break;
		if (o[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= len)
			break;
		ol = o[i + 1];
		if (ol < 2 || i + ol > len)
			break;
		switch (o[i]) {
		case 2:
			if (ol == 4 && (seg->flags & UTCP_TH_SYN)) {
				seg->has_mss = true;
				seg->mss = be_get16(o + i + 2);
			}
			break;
		case 3:
			if (ol == 3 && (seg->flags & UTCP_TH_SYN)) {
				seg->has_ws = true;
				seg->ws = o[i + 2];
			}
			break;
		case 4:
			if (ol == 2 && (seg->flags & UTCP_TH_SYN))
				seg->sack_ok = true;
			break;
		case 8:
			if (ol == 10) {
				seg->has_ts = true;
				seg->tsval = be_get32(o + i + 2);
				seg->tsecr = be_get32(o + i + 6);
			}
			break;
		default:
			break;		/* SACK blocks from the peer: not used by our sender */
		}
		i += ol;
	}
}

/* ---- helpers ---- */

static void
rtt_sample(struct utcp_conn *c, uint64_t r64)
{
	struct utcp_stack *st = c->st;
	uint32_t r = r64 > 60000000 ? 60000000 : (uint32_t)r64, delta, var;

	if (r == 0)
		r = 1;
	if (c->srtt == 0) {
		c->srtt = r;
		c->rttvar = r / 2;
	} else {
		delta = c->srtt > r ? c->srtt - r : r - c->srtt;
		c->rttvar = (3 * c->rttvar + delta) / 4;
		c->srtt = (7 * c->srtt + r) / 8;
	}
	var = 4 * c->rttvar > st->cfg.timer_tick_us ? 4 * c->rttvar : st->cfg.timer_tick_us;
	c->rto = c->srtt + var;
	if (c->rto < st->cfg.rto_min_us)
		c->rto = st->cfg.rto_min_us;
	if (c->rto > st->cfg.rto_max_us)
		c->rto = st->cfg.rto_max_us;
}

/* RFC 7323 §4.2: an ACK that advances snd_una echoes the TSval of the
 * transmission that triggered it, retransmissions included (so Karn's
 * ambiguity does not arise), as Linux uses it. Returns true when a sample
 * was taken. */
static bool
ts_rtt_sample(struct utcp_conn *c, const struct utcp_seg *seg)
{
	uint32_t now = utcp_ts_now(c->st), d;

	if (!(c->flags & UTCP_F_TS_OK) || !seg->has_ts || seg->tsecr == 0)
		return false;
	/* An echo older than our latest retransmission answers an earlier
	 * transmission whose ACK came late (lost ACKs, the peer's own
	 * retransmission): not a measure of the path. */
	if ((c->flags & UTCP_F_RTX_TS) && utcp_seq_lt(seg->tsecr, c->rtx_tsval))
		return false;
	d = now - seg->tsecr;
	/* An echo from the future or older than any RTO: not ours, ignore. */
	if ((int32_t)d < 0 || d > c->st->cfg.rto_max_us / 1000 + 1000)
		return false;
	rtt_sample(c, (uint64_t)d * 1000);
	return true;
}

/* seg_max bounds payload plus options of every segment (RFC 9293 §3.7.1,
 * RFC 6691: the MSS counts no options, the sender takes them out of it);
 * mss, what a segment with timestamps only carries, is the unit of the
 * congestion window. */
static void
set_mss(struct utcp_conn *c)
{
	uint32_t m = c->peer_mss < c->st->cfg.mss ? c->peer_mss : c->st->cfg.mss;

	c->seg_max = (uint16_t)(m < 64 ? 64 : m);
	/* A peer MSS below the option's 12 bytes must not wrap (mss became
	 * ~65530, the initial window twice that; see tests/fuzz/fuzz_utcp):
	 * the floor below applies instead. */
	if (c->flags & UTCP_F_TS_OK)
		m = m > UTCP_TS_LEN ? m - UTCP_TS_LEN : 0;
	c->mss = (uint16_t)(m < 64 ? 64 : m);
}

/* Options of the peer's SYN or SYN-ACK; for a SYN-ACK we offered all that
 * the configuration allows, so the same rules apply. */
static void
negotiate(struct utcp_conn *c, const struct utcp_seg *seg)
{
	const struct utcp_config *cfg = &c->st->cfg;

	c->peer_mss = seg->has_mss && seg->mss ? seg->mss : UTCP_DEFAULT_MSS;
	if (seg->has_ts && !cfg->no_timestamps) {
		c->flags |= UTCP_F_TS_OK;
		c->ts_recent = seg->tsval;
		c->ts_recent_stamp = c->st->now;
	}
	if (seg->sack_ok && !cfg->no_sack)
		c->flags |= UTCP_F_SACK_OK;
	if (seg->has_ws && !cfg->no_wscale) {
		c->flags |= UTCP_F_WS_OK;
		c->snd_wscale = seg->ws > 14 ? 14 : seg->ws;	/* RFC 7323 §2.3 */
		c->rcv_wscale = c->st->rcv_wscale;
	} else {
		c->snd_wscale = 0;
		c->rcv_wscale = 0;
	}
	set_mss(c);
}

/* Data transfer begins: initial windows (RFC 6928 IW10, RFC 5681 §3.1) and
 * the RTO rule of RFC 6298 §5.7. */
static void
established(struct utcp_conn *c, const struct utcp_seg *seg)
{
	uint32_t mss = c->mss;

	if (c->retries > 0) {
		/* SYN or SYN-ACK was lost: one segment (RFC 5681 §3.1); with no
		 * RTT sample (Karn), RTO 3 s (RFC 6298 §5.7). */
		c->cwnd = mss;
		if (c->srtt == 0)
			c->rto = c->st->cfg.rto_init_us > 3000000 ? c->st->cfg.rto_init_us : 3000000;
		c->backoff = 0;
	} else {
		c->cwnd = 10 * mss < (2 * mss > 14600 ? 2 * mss : 14600) ? 10 * mss :
			  (2 * mss > 14600 ? 2 * mss : 14600);
	}
	c->ssthresh = UINT32_MAX / 2;
	c->retries = 0;
	c->dupacks = 0;
	c->recover = c->iss;			/* RFC 6582 §3.2: ISS, so a first loss counts */
	c->snd_wl1 = seg->seq;
	c->snd_wl2 = seg->ack;
	c->state = UTCP_ESTABLISHED;
	utcp_timer_cancel(&c->st->wheel, &c->t_rtx);
	if (c->flags & UTCP_F_FIN_QUEUED)
		c->state = UTCP_FIN_WAIT_1;
}

static void
syn_acked(struct utcp_conn *c, const struct utcp_seg *seg)
{
	if ((c->flags & UTCP_F_RTT_ACTIVE) && utcp_seq_gt(seg->ack, c->rtt_seq))
		rtt_sample(c, c->st->now - c->rtt_start);
	else if (c->retries > 0)
		ts_rtt_sample(c, seg);		/* the echo names the SYN(-ACK) that got through */
	c->flags &= ~UTCP_F_RTT_ACTIVE;
	c->snd_una = c->iss + 1;
	if (utcp_seq_lt(c->snd_nxt, c->snd_una))
		c->snd_nxt = c->snd_una;
}

/* ---- ACK processing ---- */

static void
cc_new_ack(struct utcp_conn *c, uint32_t acked)
{
	uint32_t mss = c->mss, flight;

	if (c->flags & UTCP_F_RECOVERY) {
		if (utcp_seq_ge(c->snd_una, c->recover)) {
			/* Full ACK (RFC 6582 §3.2 step 3, option 1). */
			flight = c->snd_max - c->snd_una;
			c->cwnd = c->ssthresh < flight + mss ? c->ssthresh : flight + mss;
			c->flags &= ~UTCP_F_RECOVERY;
			c->dupacks = 0;
		} else {
			/* Partial ACK (step 4): resend the next hole, deflate. */
			utcp_out_fast_retransmit(c);
			c->cwnd = c->cwnd > acked ? c->cwnd - acked : 0;
			if (acked >= mss)
				c->cwnd += mss;
			if (c->cwnd < mss)
				c->cwnd = mss;
		}
		return;
	}
	c->dupacks = 0;
	if (c->cwnd < c->ssthresh) {
		c->cwnd += acked < mss ? acked : mss;		/* slow start */
	} else {
		c->bytes_acked += acked;			/* congestion avoidance */
		if (c->bytes_acked >= c->cwnd) {
			c->bytes_acked -= c->cwnd;
			c->cwnd += mss;
		}
	}
	if (c->cwnd > (1u << 30))
		c->cwnd = 1u << 30;
}

static void
dup_ack(struct utcp_conn *c)
{
	uint32_t flight = c->snd_max - c->snd_una, mss = c->mss, oseg, thresh;

	c->dupacks++;
	if (c->flags & UTCP_F_RECOVERY) {
		c->cwnd += mss;				/* RFC 5681 §3.2 step 4 */
		return;
	}
	/* RFC 5827 early retransmit: with fewer than four segments out and
	 * nothing new to send, fewer duplicates can ever come. */
	oseg = (flight + mss - 1) / mss;
	thresh = 3;
	if (oseg < 4 && oseg >= 2 && c->sb.len <= flight)
		thresh = oseg - 1;
	/* RFC 6582 §3.2 step 2: not again for losses of the same window. */
	if (c->dupacks != thresh || !utcp_seq_gt(c->snd_una, c->recover))
		return;
	c->recover = c->snd_max;
	c->ssthresh = flight / 2 > 2 * mss ? flight / 2 : 2 * mss;
	c->flags |= UTCP_F_RECOVERY;
	utcp_out_fast_retransmit(c);
	c->cwnd = c->ssthresh + 3 * mss;
	utcp_out_arm_rtx(c);
}

/* RFC 9293 §3.10.7.4 fifth step for synchronized states, after the RFC 5961
 * range check. */
static void
ack_input(struct utcp_conn *c, const struct utcp_seg *seg)
{
	struct utcp_stack *st = c->st;
	uint32_t ack = seg->ack, acked, data_acked, nwnd;
	bool wnd_changed = false;

	if (utcp_seq_le(c->snd_una, ack) &&
	    (utcp_seq_lt(c->snd_wl1, seg->seq) ||
	     (c->snd_wl1 == seg->seq && utcp_seq_le(c->snd_wl2, ack)))) {
		nwnd = (uint32_t)seg->wnd << c->snd_wscale;
		wnd_changed = nwnd != c->snd_wnd;
		c->snd_wnd = nwnd;
		c->snd_wl1 = seg->seq;
		c->snd_wl2 = ack;
		if (nwnd > c->max_snd_wnd)
			c->max_snd_wnd = nwnd;
		if (nwnd > 0 && utcp_timer_armed(&c->t_persist)) {
			utcp_timer_cancel(&st->wheel, &c->t_persist);
			c->persist_backoff = 0;
		}
	}
	if (utcp_seq_gt(ack, c->snd_una)) {
		acked = ack - c->snd_una;
		if (ts_rtt_sample(c, seg)) {
			c->flags &= ~UTCP_F_RTT_ACTIVE;
		} else if ((c->flags & UTCP_F_RTT_ACTIVE) && utcp_seq_gt(ack, c->rtt_seq)) {
			rtt_sample(c, st->now - c->rtt_start);
			c->flags &= ~UTCP_F_RTT_ACTIVE;
		}
		/* New data acknowledged: the path works again, so the timer goes
		 * back to the RFC 6298 value (RFC 6298 §5 leaves backoff to the
		 * next sample; with timestamps there is one on every such ACK,
		 * and Linux clears the backoff here too). */
		c->backoff = 0;
		/* A head retransmission the device refused is moot: its
		 * head moved. */
		c->flags &= ~(UTCP_F_TLP_SENT | UTCP_F_RTX_HELD);
		data_acked = acked;
		if ((c->flags & UTCP_F_FIN_SENT) && utcp_seq_gt(ack, c->fin_seq))
			data_acked--;
		utcp_buf_sconsume(&c->sb, data_acked);
		c->snd_una = ack;
		if (utcp_seq_lt(c->snd_nxt, ack))
			c->snd_nxt = ack;
		c->retries = 0;
		cc_new_ack(c, acked);
		if (c->snd_una == c->snd_max)
			utcp_timer_cancel(&st->wheel, &c->t_rtx);
		else
			utcp_out_arm_rtx(c);
		if ((c->flags & UTCP_F_WANT_WRITE) && utcp_buf_sfree(&c->sb) > 0 &&
		    !(c->flags & UTCP_F_FIN_QUEUED)) {
			c->flags &= ~UTCP_F_WANT_WRITE;
			utcp_stack_emit(c, UTCP_EV_WRITABLE);
		}
	} else if (ack == c->snd_una && seg->len == 0 && !(seg->flags & UTCP_TH_FIN) &&
		   !wnd_changed && c->snd_una != c->snd_max) {
		dup_ack(c);				/* RFC 5681 §2 definition */
	}
}

/* ---- receiving data and FIN ---- */

static void
fin_arrived(struct utcp_conn *c)
{
	c->rcv_nxt++;
	c->flags |= UTCP_F_RCVD_FIN | UTCP_F_ACK_NOW;
	c->flags &= ~UTCP_F_RFIN_OOO;
	utcp_stack_emit(c, UTCP_EV_READABLE);
	switch (c->state) {
	case UTCP_SYN_RECEIVED:
	case UTCP_ESTABLISHED:
		c->state = UTCP_CLOSE_WAIT;
		break;
	case UTCP_FIN_WAIT_1:
		c->state = UTCP_CLOSING;		/* simultaneous close */
		break;
	case UTCP_FIN_WAIT_2:
		utcp_out_ack(c);
		utcp_stack_enter_time_wait(c);
		break;
	default:
		break;
	}
}

static void
data_input(struct utcp_conn *c, uint32_t seq, const uint8_t *data, uint32_t len)
{
	struct utcp_stack *st = c->st;
	uint32_t off = seq - c->rcv_nxt, rcv_mss;
	bool had_ooo = c->rb.nranges > 0;
	int r;

	if (off == 0 && c->rb.len == 0 && st->cb.recv != NULL) {
		size_t took = st->cb.recv(st->cb.arg, c, data, len);

		if (took > len)
			took = len;
		if (took > 0) {
			r = (int)(took + utcp_buf_rskip(&c->rb, (uint32_t)took));
			data += took;
			len -= (uint32_t)took;
			if (len > 0)
				r += utcp_buf_rwrite(&c->rb, 0, data, len);
			goto in_order;
		}
	}
	r = utcp_buf_rwrite(&c->rb, off, data, len);
	if (r < 0) {
		st->stats[UTCP_STAT_OOO_DROP]++;
		c->flags |= UTCP_F_ACK_NOW;
		return;
	}
	if (off > 0) {
		c->flags |= UTCP_F_ACK_NOW;	/* RFC 5681 §4.2: out of order, ACK at once */
		return;
	}
in_order:
	if (r <= 0)
		return;
	c->rcv_nxt += (uint32_t)r;
	c->unacked += (uint32_t)r;
	utcp_stack_emit(c, UTCP_EV_READABLE);
	rcv_mss = st->cfg.mss - ((c->flags & UTCP_F_TS_OK) ? UTCP_TS_LEN : 0);
	/* Quick ACK when a gap is (partly) filled; else every second full
	 * segment (RFC 5681 §4.2, RFC 1122 §4.2.3.2) or the delayed-ACK timer. */
	if (had_ooo || c->unacked >= 2 * rcv_mss)
		c->flags |= UTCP_F_ACK_NOW;
}

/* ---- states ---- */

/* RFC 9293 §3.10.7.3. */
static void
syn_sent_input(struct utcp_conn *c, const struct utcp_seg *seg)
{
	bool ack_ok = false;

	if (seg->flags & UTCP_TH_ACK) {
		if (utcp_seq_le(seg->ack, c->iss) || utcp_seq_gt(seg->ack, c->snd_max)) {
			utcp_out_rst_reply(c->st, seg);
			return;
		}
		ack_ok = true;
	}
	if (seg->flags & UTCP_TH_RST) {
		c->st->stats[UTCP_STAT_RST_IN]++;
		if (ack_ok)
			utcp_stack_conn_done(c, -ECONNREFUSED);
		return;
	}
	if (!(seg->flags & UTCP_TH_SYN))
		return;
	c->irs = seg->seq;
	c->rcv_nxt = seg->seq + 1;
	negotiate(c, seg);
	c->snd_wnd = seg->wnd;			/* never scaled in a SYN */
	c->max_snd_wnd = c->snd_wnd;
	if (ack_ok) {
		syn_acked(c, seg);
		established(c, seg);
		utcp_stack_emit(c, UTCP_EV_CONNECTED);
		c->flags |= UTCP_F_ACK_NOW;
		utcp_out_send(c);
		return;
	}
	/* Simultaneous open. */
	c->state = UTCP_SYN_RECEIVED;
	utcp_out_syn(c);
}

static bool
acceptable(uint32_t seq, uint32_t seglen, uint32_t nxt, uint32_t wnd)
{
	if (seglen == 0)
		return wnd == 0 ? seq == nxt : utcp_seq_between(nxt, seq, nxt + wnd - 1);
	if (wnd == 0)
		return false;
	return utcp_seq_between(nxt, seq, nxt + wnd - 1) ||
	       utcp_seq_between(nxt, seq + seglen - 1, nxt + wnd - 1);
}

static void
rst_input(struct utcp_conn *c, const struct utcp_seg *seg)
{
	struct utcp_stack *st = c->st;

	st->stats[UTCP_STAT_RST_IN]++;
	if (seg->seq != c->rcv_nxt) {
		utcp_out_challenge_ack(c);		/* RFC 5961 §3.2 */
		return;
	}
	switch (c->state) {
	case UTCP_SYN_RECEIVED:
		/* Passive: back to LISTEN, i.e. forget it. Active: refused. */
		utcp_stack_conn_done(c, (c->flags & UTCP_F_PASSIVE) ? 0 : -ECONNREFUSED);
		break;
	case UTCP_CLOSING:
	case UTCP_LAST_ACK:
		utcp_stack_conn_done(c, 0);
		break;
	default:
		utcp_stack_conn_done(c, -ECONNRESET);
		break;
	}
}

/* The ACK owed for an unacceptable or PAWS-failed segment. For a bare ACK,
 * at most one per UTCP_OOW_ACK_US: two peers that each find the other's
 * ACKs unacceptable would otherwise ping-pong forever (Linux does the same;
 * segments with data are answered always, they are not part of a loop). */
static void
oow_ack(struct utcp_conn *c, const struct utcp_seg *seg)
{
	struct utcp_stack *st = c->st;

	if (seg->len == 0 && !(seg->flags & UTCP_TH_FIN)) {
		if (c->oow_last && st->now - c->oow_last < UTCP_OOW_ACK_US)
			return;
		c->oow_last = st->now;
	}
	utcp_out_ack(c);
}

/* RFC 9293 §3.10.7.4 for SYN_RECEIVED and the synchronized states. */
static void
conn_input(struct utcp_conn *c, const struct utcp_seg *seg)
{
	struct utcp_stack *st = c->st;
	uint8_t fl = seg->flags;
	uint32_t seglen = seg->len + !!(fl & UTCP_TH_SYN) + !!(fl & UTCP_TH_FIN);
	uint32_t wnd, adv, seq, len;
	const uint8_t *data;
	bool fin;

	if (c->state == UTCP_SYN_SENT) {
		syn_sent_input(c, seg);
		return;
	}
	/* RFC 5961 §4: a SYN in a synchronized state, whatever its sequence
	 * number, gets a challenge ACK. A retransmitted SYN in SYN_RECEIVED
	 * gets the SYN-ACK again. */
	if ((fl & UTCP_TH_SYN) && !(fl & UTCP_TH_RST)) {
		if (c->state == UTCP_SYN_RECEIVED && seg->seq == c->irs && !(fl & UTCP_TH_ACK))
			utcp_out_syn(c);
		else
			utcp_out_challenge_ack(c);
		return;
	}
	/* PAWS (RFC 7323 §5.3). */
	if ((c->flags & UTCP_F_TS_OK) && seg->has_ts && !(fl & UTCP_TH_RST) &&
	    utcp_seq_lt(seg->tsval, c->ts_recent)) {
		if (st->now - c->ts_recent_stamp > UTCP_PAWS_IDLE_US) {
			c->ts_recent = seg->tsval;
		} else {
			st->stats[UTCP_STAT_PAWS_DROP]++;
			oow_ack(c, seg);
			return;
		}
	}
	/* Sequence acceptability (§3.10.7.4 first step). */
	wnd = utcp_buf_rfree(&c->rb);
	adv = utcp_seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	if (adv > wnd)
		wnd = adv;
	seq = seg->seq;
	len = seg->len;
	data = seg->data;
	fin = (fl & UTCP_TH_FIN) != 0;
	if (!acceptable(seq, seglen, c->rcv_nxt, wnd)) {
		if (wnd == 0 && seq == c->rcv_nxt) {
			/* Zero window: still take the ACK, drop the text. */
			len = 0;
			fin = false;
			c->flags |= UTCP_F_ACK_NOW;
		} else {
			st->stats[UTCP_STAT_OUT_OF_WINDOW]++;
			if (!(fl & UTCP_TH_RST))
				oow_ack(c, seg);
			return;
		}
	}
	if (fl & UTCP_TH_RST) {
		rst_input(c, seg);
		return;
	}
	/* RFC 7323 §4.3: remember the timestamp of the segment we ACK next. */
	if ((c->flags & UTCP_F_TS_OK) && seg->has_ts && utcp_seq_ge(seg->tsval, c->ts_recent) &&
	    utcp_seq_le(seq, c->last_ack_sent)) {
		c->ts_recent = seg->tsval;
		c->ts_recent_stamp = st->now;
	}
	if (!(fl & UTCP_TH_ACK))
		return;
	if (c->state == UTCP_SYN_RECEIVED) {
		if (!utcp_seq_gt(seg->ack, c->snd_una) || utcp_seq_gt(seg->ack, c->snd_max)) {
			utcp_out_rst_reply(st, seg);
			return;
		}
		syn_acked(c, seg);
		c->snd_wnd = (uint32_t)seg->wnd << c->snd_wscale;
		c->max_snd_wnd = c->snd_wnd;
		established(c, seg);
		if (c->flags & UTCP_F_PASSIVE)
			utcp_stack_accepted(c);
		else
			utcp_stack_emit(c, UTCP_EV_CONNECTED);
	}
	/* RFC 5961 §5.2 ACK acceptability; RFC 9293: ACK of unsent data. */
	if (utcp_seq_gt(seg->ack, c->snd_max) ||
	    utcp_seq_lt(seg->ack, c->snd_una - c->max_snd_wnd)) {
		utcp_out_challenge_ack(c);
		return;
	}
	ack_input(c, seg);
	if ((c->flags & UTCP_F_FIN_SENT) && utcp_seq_gt(c->snd_una, c->fin_seq)) {
		switch (c->state) {
		case UTCP_FIN_WAIT_1:
			c->state = UTCP_FIN_WAIT_2;
			if (c->flags & UTCP_F_ORPHAN)
				utcp_timer_arm(&st->wheel, &c->t_idle,
					       st->now + st->cfg.fin_wait2_us);
			break;
		case UTCP_CLOSING:
			utcp_stack_enter_time_wait(c);
			return;
		case UTCP_LAST_ACK:
			utcp_stack_conn_done(c, 0);
			return;
		default:
			break;
		}
	}
	/* Text (seventh step): trim to what is new and fits. */
	if (utcp_seq_lt(seq, c->rcv_nxt)) {
		uint32_t d = c->rcv_nxt - seq;

		if (d >= len) {
			if (len > 0 || (fin && utcp_seq_lt(seq + len, c->rcv_nxt)))
				c->flags |= UTCP_F_ACK_NOW;	/* duplicate */
			if (d > len)
				fin = false;			/* old FIN */
			data += len;
			len = 0;
		} else {
			data += d;
			len -= d;
			c->flags |= UTCP_F_ACK_NOW;
		}
		seq = c->rcv_nxt;
	}
	wnd = utcp_buf_rfree(&c->rb);
	if (c->flags & UTCP_F_RCVD_FIN)
		len = 0, fin = false;
	if (len > 0 && seq - c->rcv_nxt + len > wnd) {
		len = seq - c->rcv_nxt >= wnd ? 0 : wnd - (seq - c->rcv_nxt);
		fin = false;
		c->flags |= UTCP_F_ACK_NOW;
	}
	if (len > 0) {
		switch (c->state) {
		case UTCP_ESTABLISHED:
		case UTCP_FIN_WAIT_1:
		case UTCP_FIN_WAIT_2:
			if (c->flags & UTCP_F_SHUT_RD) {
				/* The app has closed: nobody will read this. */
				utcp_out_rst(c);
				utcp_stack_conn_done(c, -ECONNRESET);
				return;
			}
			data_input(c, seq, data, len);
			break;
		default:
			break;
		}
	}
	if (fin && !(c->flags & UTCP_F_RCVD_FIN)) {
		if (seq + len == c->rcv_nxt) {
			fin_arrived(c);
		} else if (utcp_seq_gt(seq + len, c->rcv_nxt)) {
			c->flags |= UTCP_F_RFIN_OOO | UTCP_F_ACK_NOW;
			c->rfin_seq = seq + len;
		}
	}
	if ((c->flags & UTCP_F_RFIN_OOO) && c->rfin_seq == c->rcv_nxt)
		fin_arrived(c);
	if (c->state == UTCP_CLOSED)
		return;
	utcp_out_send(c);
	if (c->rcv_nxt != c->last_ack_sent && !utcp_timer_armed(&c->t_delack))
		utcp_timer_arm(&st->wheel, &c->t_delack, st->now + st->cfg.delack_us);
}

/* ---- no connection: TIME_WAIT record or listener ---- */

/* Returns true when a SYN may reopen the tuple (the record is gone then). */
static bool
tw_input(struct utcp_stack *st, struct utcp_tw *tw, const struct utcp_seg *seg)
{
	bool ok;

	if (seg->flags & UTCP_TH_RST)
		return false;		/* RFC 1337: no TIME_WAIT assassination */
	if ((seg->flags & (UTCP_TH_SYN | UTCP_TH_ACK)) == UTCP_TH_SYN) {
		/* RFC 6191 with timestamps, RFC 1122 §4.2.2.13 without. */
		if (tw->ts_ok && seg->has_ts)
			ok = utcp_seq_gt(seg->tsval, tw->ts_recent);
		else
			ok = utcp_seq_gt(seg->seq, tw->rcv_nxt);
		if (ok) {
			st->stats[UTCP_STAT_TW_REUSED]++;
			utcp_stack_tw_free(st, tw);
			return true;
		}
		utcp_out_tw_ack(st, tw);
		return false;
	}
	if (tw->ts_ok && seg->has_ts && utcp_seq_lt(seg->tsval, tw->ts_recent)) {
		st->stats[UTCP_STAT_PAWS_DROP]++;
		utcp_out_tw_ack(st, tw);
		return false;
	}
	if (seg->flags & UTCP_TH_FIN) {
		/* The peer's FIN again: our ACK was lost. ACK, restart 2 MSL. */
		utcp_out_tw_ack(st, tw);
		utcp_timer_arm(&st->wheel, &tw->timer, st->now + st->cfg.tw_us);
	} else if (seg->len > 0) {
		utcp_out_tw_ack(st, tw);
	}
	return false;
}

static void
listen_syn(struct utcp_stack *st, struct utcp_listener *l, const struct utcp_seg *seg)
{
	struct utcp_conn *c;
	uint16_t mss;
	uint32_t iss;

	if (l->synq_len >= st->cfg.synq_max || st->free_conns == NULL) {
		if (!st->cfg.syncookies) {
			st->stats[UTCP_STAT_SYNQ_FULL]++;
			return;
		}
		st->stats[UTCP_STAT_SYNQ_FULL]++;
		st->stats[UTCP_STAT_COOKIE_SENT]++;
		iss = utcp_syncookie_make(st->cfg.isn_secret, seg->daddr, seg->dport, seg->saddr,
					  seg->sport, seg->seq,
					  seg->has_mss && seg->mss ? seg->mss : UTCP_DEFAULT_MSS,
					  st->now, &mss);
		st->cookie_last = st->now ? st->now : 1;
		utcp_out_cookie_synack(st, seg, iss, mss);
		return;
	}
	c = utcp_stack_conn_new(st, seg->saddr, seg->sport, seg->dport);
	if (c == NULL) {
		utcp_out_rst_reply(st, seg);	/* buffer memory cap: refuse */
		return;
	}
	c->lsn = l;
	c->state = UTCP_SYN_RECEIVED;
	c->flags |= UTCP_F_PASSIVE | UTCP_F_IN_SYNQ;
	l->synq_len++;
	c->irs = seg->seq;
	c->rcv_nxt = seg->seq + 1;
	negotiate(c, seg);
	c->iss = utcp_stack_isn(st, seg->saddr, seg->sport, seg->dport);
	c->snd_una = c->iss;
	c->snd_nxt = c->snd_max = c->iss + 1;
	c->snd_wnd = seg->wnd;
	c->max_snd_wnd = seg->wnd;
	c->flags |= UTCP_F_RTT_ACTIVE;
	c->rtt_seq = c->iss;
	c->rtt_start = st->now;
	utcp_out_syn(c);
	utcp_out_arm_rtx(c);
}

/* The final ACK of a cookie handshake (RFC 4987 §3.6). */
static void
listen_cookie_ack(struct utcp_stack *st, struct utcp_listener *l, const struct utcp_seg *seg)
{
	struct utcp_conn *c;
	uint16_t mss;
	int ws = -1;
	bool sack = false;

	if (utcp_syncookie_check(st->cfg.isn_secret, seg->daddr, seg->dport, seg->saddr,
				 seg->sport, seg->seq - 1, seg->ack - 1, st->now, &mss) != 0) {
		st->stats[UTCP_STAT_COOKIE_BAD]++;
		return;
	}
	c = utcp_stack_conn_new(st, seg->saddr, seg->sport, seg->dport);
	if (c == NULL) {
		utcp_out_rst_reply(st, seg);	/* overload: abortive */
		return;
	}
	st->stats[UTCP_STAT_COOKIE_OK]++;
	c->lsn = l;
	c->flags |= UTCP_F_PASSIVE;
	c->irs = seg->seq - 1;
	c->rcv_nxt = seg->seq;
	c->iss = seg->ack - 1;
	c->snd_una = c->snd_nxt = c->snd_max = seg->ack;
	c->peer_mss = mss;
	if (seg->has_ts && !st->cfg.no_timestamps &&
	    utcp_syncookie_tsdecode(seg->tsecr, &ws, &sack)) {
		c->flags |= UTCP_F_TS_OK;
		c->ts_recent = seg->tsval;
		c->ts_recent_stamp = st->now;
		if (ws >= 0 && !st->cfg.no_wscale) {
			c->flags |= UTCP_F_WS_OK;
			c->snd_wscale = (uint8_t)ws;
			c->rcv_wscale = st->rcv_wscale;
		}
		if (sack && !st->cfg.no_sack)
			c->flags |= UTCP_F_SACK_OK;
	}
	set_mss(c);
	c->rcv_adv = c->rcv_nxt + (st->cfg.rcvbuf > 65535 ? 65535 : st->cfg.rcvbuf);
	c->last_ack_sent = c->rcv_nxt;
	c->snd_wnd = (uint32_t)seg->wnd << c->snd_wscale;
	c->max_snd_wnd = c->snd_wnd;
	established(c, seg);
	utcp_stack_accepted(c);
	conn_input(c, seg);			/* data that came with the ACK */
}

static void
listen_input(struct utcp_stack *st, struct utcp_listener *l, const struct utcp_seg *seg)
{
	uint8_t fl = seg->flags;

	if (fl & UTCP_TH_RST)
		return;
	if (fl & UTCP_TH_ACK) {
		/* Cookies only when we sent some lately (as Linux): otherwise an
		 * ACK to a listener is answered per RFC 9293 with a RST. */
		if (!(fl & UTCP_TH_SYN) && st->cfg.syncookies && st->cookie_last &&
		    st->now - st->cookie_last < 2 * UTCP_SYNCOOKIE_PERIOD_US) {
			listen_cookie_ack(st, l, seg);
			return;
		}
		utcp_out_rst_reply(st, seg);
		return;
	}
	if (fl & UTCP_TH_SYN)
		listen_syn(st, l, seg);
}

void
utcp_in_tcp(struct utcp_stack *st, struct utcp_seg *seg)
{
	struct utcp_conn *c;
	struct utcp_tw *tw;
	struct utcp_listener *l;

	c = utcp_stack_lookup(st, seg->daddr, seg->dport, seg->saddr, seg->sport);
	if (c != NULL) {
		conn_input(c, seg);
		return;
	}
	tw = utcp_stack_tw_lookup(st, seg->daddr, seg->dport, seg->saddr, seg->sport);
	if (tw != NULL && !tw_input(st, tw, seg))
		return;
	l = utcp_stack_listener(st, seg->dport);
	if (l != NULL) {
		listen_input(st, l, seg);
		return;
	}
	st->stats[UTCP_STAT_NO_PORT]++;
	utcp_out_rst_reply(st, seg);		/* RFC 9293 §3.10.7.1 */
}

/* ---- IPv4 and ICMP ---- */

static void
icmp_input(struct utcp_stack *st, uint32_t saddr, const uint8_t *p, size_t len)
{
	uint8_t *r = st->pkt + UTCP_IPHDR_LEN;

	if (len < 8 || utcp_csum_fold(utcp_csum_add(0, p, len)) != 0) {
		st->stats[UTCP_STAT_ICMP_BAD]++;
		return;
	}
	if (p[0] != 8 || p[1] != 0 || bad_source(saddr) || len + UTCP_IPHDR_LEN > st->pkt_cap)
		return;
	/* Echo reply: same identifier, sequence and data (RFC 792). */
	memcpy(r, p, len);
	r[0] = 0;
	r[2] = 0;
	r[3] = 0;
	{
		uint16_t ck = utcp_csum_fold(utcp_csum_add(0, r, len));

		r[2] = (uint8_t)(ck >> 8);
		r[3] = (uint8_t)ck;
	}
	st->stats[UTCP_STAT_ICMP_ECHO]++;
	utcp_out_ip(st, saddr, 1, r, len);
}

static void
tcp_input(struct utcp_stack *st, uint32_t saddr, uint32_t daddr, const uint8_t *p, size_t len)
{
	struct utcp_seg seg;
	size_t doff;

	if (len < UTCP_TCPHDR_LEN) {
		st->stats[UTCP_STAT_TCP_BAD]++;
		return;
	}
	doff = (size_t)(p[12] >> 4) * 4;
	if (doff < UTCP_TCPHDR_LEN || doff > len || utcp_csum_tcp(saddr, daddr, p, len) != 0 ||
	    bad_source(saddr)) {
		st->stats[UTCP_STAT_TCP_BAD]++;
		return;
	}
	memset(&seg, 0, sizeof(seg));
	seg.saddr = saddr;
	seg.daddr = daddr;
	seg.sport = be_get16(p);
	seg.dport = be_get16(p + 2);
	seg.seq = be_get32(p + 4);
	seg.ack = be_get32(p + 8);
	seg.flags = p[13] & 0x3f;
	seg.wnd = be_get16(p + 14);
	seg.data = p + doff;
	seg.len = (uint32_t)(len - doff);
	utcp_in_options(&seg, p + UTCP_TCPHDR_LEN, doff - UTCP_TCPHDR_LEN);
	st->stats[UTCP_STAT_TCP_IN]++;
	utcp_in_tcp(st, &seg);
}

void
utcp_input(struct utcp_stack *st, const void *pkt, size_t len)
{
	const uint8_t *p = pkt;
	size_t ihl, tot;
	uint32_t saddr, daddr;

	utcp_stack_enter(st);
	st->stats[UTCP_STAT_IP_IN]++;
	if (len < UTCP_IPHDR_LEN || (p[0] >> 4) != 4)
		goto bad;
	ihl = (size_t)(p[0] & 0x0f) * 4;
	tot = be_get16(p + 2);
	if (ihl < UTCP_IPHDR_LEN || ihl > len || tot < ihl || tot > len ||
	    utcp_csum_fold(utcp_csum_add(0, p, ihl)) != 0)
		goto bad;
	if (be_get16(p + 6) & 0x3fff) {		/* MF or a fragment offset */
		st->stats[UTCP_STAT_IP_FRAG]++;
		goto out;
	}
	saddr = be_get32(p + 12);
	daddr = be_get32(p + 16);
	if (daddr != st->cfg.local_addr) {
		st->stats[UTCP_STAT_IP_NOT_LOCAL]++;
		goto out;
	}
	switch (p[9]) {
	case 6:
		tcp_input(st, saddr, daddr, p + ihl, tot - ihl);
		break;
	case 1:
		icmp_input(st, saddr, p + ihl, tot - ihl);
		break;
	default:
		st->stats[UTCP_STAT_IP_PROTO]++;
		break;
	}
	goto out;
bad:
	st->stats[UTCP_STAT_IP_BAD_HDR]++;
out:
	utcp_stack_leave(st);
}
