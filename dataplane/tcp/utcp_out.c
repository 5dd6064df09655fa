/* TCP output: segment and IPv4 header building, the send loop (flow and
 * congestion windows, FIN), ACKs and window updates, RSTs, and the
 * retransmission, persist and delayed-ACK timers.
 *
 * Every packet is built into the stack's scratch buffer and handed to the
 * output callback, which must copy it before returning. Data is copied from
 * the send ring at the moment of (re)transmission, so nothing but the ring
 * holds unacknowledged bytes.
 *
 * When the device has no room (output -ENOBUFS), a data, FIN or SYN segment
 * does not count as sent: snd_nxt, snd_max and the FIN stay where they were,
 * the connection goes on the stack's held list, and utcp_flush() (also run
 * by utcp_tick()) sends from the same place once the device takes packets
 * again, without waiting for a retransmission timeout. A refused ACK stays
 * owed (UTCP_F_ACK_NOW) the same way. RSTs, window probes, loss probes and
 * segments without a connection (cookies, TIME_WAIT, replies) are dropped:
 * their timers or the peer recover them. */
#include <errno.h>
#include <string.h>

#include "dataplane/base/be.h"
#include "dataplane/tcp/utcp_csum.h"
#include "dataplane/tcp/utcp_int.h"
#include "dataplane/tcp/utcp_seq.h"
#include "dataplane/tcp/utcp_syncookie.h"

static void
ip_header(struct utcp_stack *st, uint8_t *p, uint32_t daddr, uint8_t proto, uint16_t total)
{
	utcp_csum_ip_header(p, st->cfg.local_addr, daddr, proto, total, st->ip_id++);
}

/* 0 when the device took the packet, -ENOBUFS when it had no room now,
 * another <0 when the packet is lost. */
static int
transmit(struct utcp_stack *st, size_t len)
{
	int r = st->cb.output(st->cb.arg, st->pkt, len);

	if (r == 0)
		return 0;
	st->stats[UTCP_STAT_OUTPUT_DROP]++;
	return r == -ENOBUFS ? -ENOBUFS : -EIO;
}

void
utcp_out_ip(struct utcp_stack *st, uint32_t daddr, uint8_t proto, const void *payload,
	    size_t len)
{
	if (len + UTCP_IPHDR_LEN > st->pkt_cap)
		return;
	ip_header(st, st->pkt, daddr, proto, (uint16_t)(len + UTCP_IPHDR_LEN));
	if (payload != st->pkt + UTCP_IPHDR_LEN)	/* built in place */
		memcpy(st->pkt + UTCP_IPHDR_LEN, payload, len);
	(void)transmit(st, len + UTCP_IPHDR_LEN);
}

struct tcp_out {
	uint32_t daddr;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	const uint8_t *opt;
	uint8_t optlen;			/* multiple of 4 */
	const struct utcp_sbuf *sb;	/* payload source, or NULL */
	uint32_t off, len;
};

/* As transmit(). */
static int
tcp_emit(struct utcp_stack *st, const struct tcp_out *o)
{
	uint8_t *p = st->pkt, *th = p + UTCP_IPHDR_LEN;
	size_t hl = UTCP_TCPHDR_LEN + o->optlen, tl = hl + o->len;

	if (UTCP_IPHDR_LEN + tl > st->pkt_cap)
		return -EMSGSIZE;
	ip_header(st, p, o->daddr, 6, (uint16_t)(UTCP_IPHDR_LEN + tl));
	be_put16(th, o->sport);
	be_put16(th + 2, o->dport);
	be_put32(th + 4, o->seq);
	be_put32(th + 8, o->ack);
	th[12] = (uint8_t)((hl / 4) << 4);
	th[13] = o->flags;
	be_put16(th + 14, o->wnd);
	be_put16(th + 16, 0);
	be_put16(th + 18, 0);
	if (o->optlen)
		memcpy(th + UTCP_TCPHDR_LEN, o->opt, o->optlen);
	if (o->len)
		utcp_buf_speek(o->sb, o->off, th + hl, o->len);
	be_put16(th + 16, utcp_csum_tcp(st->cfg.local_addr, o->daddr, th, tl));
	st->stats[UTCP_STAT_TCP_OUT]++;
	if (o->flags & UTCP_TH_RST)
		st->stats[UTCP_STAT_RST_OUT]++;
	return transmit(st, UTCP_IPHDR_LEN + tl);
}

/* ---- options ---- */

static uint8_t
put_ts(uint8_t *o, uint32_t tsval, uint32_t tsecr)
{
	o[0] = 1;
	o[1] = 1;
	o[2] = 8;
	o[3] = 10;
	be_put32(o + 4, tsval);
	be_put32(o + 8, tsecr);
	return UTCP_TS_LEN;
}

/* SYN / SYN-ACK options: MSS, SACK-permitted, timestamps, window scale, in
 * the order and padding Linux uses (20 bytes at most). */
static uint8_t
syn_opts(uint8_t *o, uint16_t mss, bool sack, bool ts, uint32_t tsval, uint32_t tsecr,
	 int wscale)
{
	uint8_t n = 0;

	o[n++] = 2;
	o[n++] = 4;
	be_put16(o + n, mss);
	n += 2;
	if (ts) {
		if (sack) {
			o[n++] = 4;
			o[n++] = 2;
		} else {
			o[n++] = 1;
			o[n++] = 1;
		}
		o[n++] = 8;
		o[n++] = 10;
		be_put32(o + n, tsval);
		be_put32(o + n + 4, tsecr);
		n += 8;
	} else if (sack) {
		o[n++] = 1;
		o[n++] = 1;
		o[n++] = 4;
		o[n++] = 2;
	}
	if (wscale >= 0) {
		o[n++] = 1;
		o[n++] = 3;
		o[n++] = 3;
		o[n++] = (uint8_t)wscale;
	}
	return n;
}

/* Timestamps and, with out-of-order data, SACK blocks (RFC 2018 §3): the
 * block with the newest data first. */
static uint8_t
data_opts(const struct utcp_conn *c, uint8_t *o)
{
	struct utcp_range r[4];
	uint8_t n = 0;
	int k, i;

	if (c->flags & UTCP_F_TS_OK)
		n = put_ts(o, utcp_ts_now(c->st), c->ts_recent);
	if ((c->flags & UTCP_F_SACK_OK) && c->rb.nranges) {
		k = utcp_buf_rsack(&c->rb, r, n ? 3 : 4);
		o[n++] = 1;
		o[n++] = 1;
		o[n++] = 5;
		o[n++] = (uint8_t)(2 + 8 * k);
		for (i = 0; i < k; i++) {
			be_put32(o + n, c->rcv_nxt + (uint32_t)(r[i].start - c->rb.nxt));
			be_put32(o + n + 4, c->rcv_nxt + (uint32_t)(r[i].end - c->rb.nxt));
			n += 8;
		}
	}
	return n;
}

/* ---- receive window ---- */

uint32_t
utcp_out_rcv_wnd(const struct utcp_conn *c)
{
	uint32_t free = utcp_buf_rfree(&c->rb), adv = 0, unit = 1u << c->rcv_wscale;
	uint32_t mss = c->mss, w;

	if (utcp_seq_gt(c->rcv_adv, c->rcv_nxt))
		adv = c->rcv_adv - c->rcv_nxt;
	if (c->flags & UTCP_F_RCVD_FIN)
		free = 0;
	w = free;
	/* RFC 1122 §4.2.3.3 receiver SWS avoidance: open the window only by
	 * at least min(buffer / 2, MSS). */
	if (w > adv && w - adv < (c->rb.cap / 2 < mss ? c->rb.cap / 2 : mss))
		w = adv;
	w &= ~(unit - 1);
	/* Never move the right edge left (RFC 9293 §3.8.6.2.2). */
	if (w < adv)
		w = (adv + unit - 1) & ~(unit - 1);
	if (w > (65535u << c->rcv_wscale))
		w = 65535u << c->rcv_wscale;
	return w;
}

/* Fills the fields every segment of <c> shares and notes what we ACKed. */
static void
conn_out(struct utcp_conn *c, struct tcp_out *o, uint32_t seq, uint8_t flags)
{
	uint32_t w;

	memset(o, 0, sizeof(*o));
	o->daddr = c->raddr;
	o->sport = c->lport;
	o->dport = c->rport;
	o->seq = seq;
	o->flags = flags;
	if (!(flags & UTCP_TH_ACK))
		return;
	o->ack = c->rcv_nxt;
	w = utcp_out_rcv_wnd(c);
	o->wnd = (uint16_t)(w >> c->rcv_wscale);
	if (utcp_seq_gt(c->rcv_nxt + w, c->rcv_adv))
		c->rcv_adv = c->rcv_nxt + w;
	c->last_ack_sent = c->rcv_nxt;
	c->unacked = 0;
	c->flags &= ~UTCP_F_ACK_NOW;
	utcp_timer_cancel(&c->st->wheel, &c->t_delack);
}

/* Payload bytes a segment of <c> may carry beside <optlen> bytes of
 * options: the MSS bounds payload and options together (RFC 6691), so SACK
 * blocks shrink the payload instead of growing the packet past the MTU. */
static uint32_t
seg_room(const struct utcp_conn *c, uint8_t optlen)
{
	uint32_t m = c->seg_max;

	return m > optlen + 8u ? m - optlen : 8u;
}

/* What conn_out() notes about the ACK a segment carries, kept to be put
 * back when the device refuses the segment: the peer heard none of it, and
 * an ACK owed is still owed. */
struct ack_mark {
	uint32_t rcv_adv, last_ack_sent, unacked, ack_now;
	uint64_t delack;			/* the delayed-ACK timer's expiry, 0: off */
};

static void
ack_mark(const struct utcp_conn *c, struct ack_mark *m)
{
	m->rcv_adv = c->rcv_adv;
	m->last_ack_sent = c->last_ack_sent;
	m->unacked = c->unacked;
	m->ack_now = c->flags & UTCP_F_ACK_NOW;
	m->delack = utcp_timer_armed(&c->t_delack) ? c->t_delack.expire : 0;
}

static void
ack_unsent(struct utcp_conn *c, const struct ack_mark *m)
{
	c->rcv_adv = m->rcv_adv;
	c->last_ack_sent = m->last_ack_sent;
	c->unacked = m->unacked;
	c->flags |= m->ack_now;
	if (m->delack)
		utcp_timer_arm(&c->st->wheel, &c->t_delack, m->delack);
}

/* One segment of <c> at <seq> with <len> bytes from send-ring offset <off>
 * and the <optlen> bytes of options in <opt> (data_opts(), built just
 * before, so that <len> could be sized by them). As transmit(). */
static int
send_seg(struct utcp_conn *c, uint32_t seq, uint8_t flags, uint32_t off, uint32_t len,
	 const uint8_t *opt, uint8_t optlen)
{
	struct ack_mark m;
	struct tcp_out o;
	int r;

	ack_mark(c, &m);
	conn_out(c, &o, seq, flags);
	o.optlen = optlen;
	o.opt = opt;
	o.sb = &c->sb;
	o.off = off;
	o.len = len;
	r = tcp_emit(c->st, &o);
	if (r == -ENOBUFS)
		ack_unsent(c, &m);
	return r;
}

/* The device had no room for a segment of <c> that must not wait for a
 * timeout: keep its place for utcp_flush(). */
static void
hold(struct utcp_conn *c)
{
	c->st->stats[UTCP_STAT_OUTPUT_HELD]++;
	utcp_stack_txq_add(c);
}

void
utcp_out_syn(struct utcp_conn *c)
{
	struct utcp_stack *st = c->st;
	uint8_t opt[40];
	struct tcp_out o;
	uint32_t w = utcp_buf_rfree(&c->rb);

	memset(&o, 0, sizeof(o));
	o.daddr = c->raddr;
	o.sport = c->lport;
	o.dport = c->rport;
	o.seq = c->iss;
	o.wnd = (uint16_t)(w > 65535 ? 65535 : w);	/* never scaled in a SYN */
	o.opt = opt;
	if (c->state == UTCP_SYN_SENT) {
		o.flags = UTCP_TH_SYN;
		o.optlen = syn_opts(opt, st->cfg.mss, !st->cfg.no_sack, !st->cfg.no_timestamps,
				    utcp_ts_now(st), 0, st->cfg.no_wscale ? -1 : st->rcv_wscale);
	} else {
		o.flags = UTCP_TH_SYN | UTCP_TH_ACK;
		o.ack = c->rcv_nxt;
		o.optlen = syn_opts(opt, st->cfg.mss, c->flags & UTCP_F_SACK_OK,
				    c->flags & UTCP_F_TS_OK, utcp_ts_now(st), c->ts_recent,
				    (c->flags & UTCP_F_WS_OK) ? c->rcv_wscale : -1);
		c->rcv_adv = c->rcv_nxt + o.wnd;
		c->last_ack_sent = c->rcv_nxt;
	}
	if (tcp_emit(st, &o) == -ENOBUFS)
		hold(c);
}

void
utcp_out_cookie_synack(struct utcp_stack *st, const struct utcp_seg *seg, uint32_t iss,
		       uint16_t mss)
{
	bool ts = seg->has_ts && !st->cfg.no_timestamps;
	bool sack = ts && seg->sack_ok && !st->cfg.no_sack;
	bool ws = ts && seg->has_ws && !st->cfg.no_wscale;
	uint8_t opt[40];
	struct tcp_out o;
	uint32_t tsval = 0;

	/* Without timestamps there is nowhere to keep the peer's window scale
	 * and SACK-permitted, so neither is offered (as Linux does). */
	if (ts)
		tsval = utcp_syncookie_tsval(utcp_ts_now(st), ws ? (seg->ws > 14 ? 14 : seg->ws)
								  : -1, sack);
	memset(&o, 0, sizeof(o));
	o.daddr = seg->saddr;
	o.sport = seg->dport;
	o.dport = seg->sport;
	o.seq = iss;
	o.ack = seg->seq + 1;
	o.flags = UTCP_TH_SYN | UTCP_TH_ACK;
	o.wnd = (uint16_t)(st->cfg.rcvbuf > 65535 ? 65535 : st->cfg.rcvbuf);
	o.opt = opt;
	o.optlen = syn_opts(opt, st->cfg.mss < mss ? st->cfg.mss : mss, sack, ts, tsval,
			    seg->tsval, ws ? st->rcv_wscale : -1);
	(void)tcp_emit(st, &o);
}

void
utcp_out_rst_reply(struct utcp_stack *st, const struct utcp_seg *seg)
{
	struct tcp_out o;

	if (seg->flags & UTCP_TH_RST)
		return;			/* never a RST for a RST */
	memset(&o, 0, sizeof(o));
	o.daddr = seg->saddr;
	o.sport = seg->dport;
	o.dport = seg->sport;
	if (seg->flags & UTCP_TH_ACK) {
		o.seq = seg->ack;
		o.flags = UTCP_TH_RST;
	} else {
		o.ack = seg->seq + seg->len + !!(seg->flags & UTCP_TH_SYN) +
			!!(seg->flags & UTCP_TH_FIN);
		o.flags = UTCP_TH_RST | UTCP_TH_ACK;
	}
	(void)tcp_emit(st, &o);
}

void
utcp_out_rst(struct utcp_conn *c)
{
	struct tcp_out o;

	conn_out(c, &o, c->snd_max, UTCP_TH_RST | UTCP_TH_ACK);
	o.wnd = 0;
	(void)tcp_emit(c->st, &o);
}

void
utcp_out_tw_ack(struct utcp_stack *st, const struct utcp_tw *tw)
{
	uint8_t opt[UTCP_TS_LEN];
	struct tcp_out o;

	memset(&o, 0, sizeof(o));
	o.daddr = tw->raddr;
	o.sport = tw->lport;
	o.dport = tw->rport;
	o.seq = tw->snd_nxt;
	o.ack = tw->rcv_nxt;
	o.flags = UTCP_TH_ACK;
	o.wnd = tw->rcv_wnd;
	if (tw->ts_ok) {
		o.optlen = put_ts(opt, utcp_ts_now(st), tw->ts_recent);
		o.opt = opt;
	}
	(void)tcp_emit(st, &o);
}

void
utcp_out_ack(struct utcp_conn *c)
{
	/* snd_max, not snd_nxt: after a timeout snd_nxt goes back, and the
	 * peer, which may hold everything up to snd_max, would find an ACK
	 * with an older sequence number unacceptable and ignore its ACK
	 * field (as BSD does). */
	uint8_t opt[40];

	if (send_seg(c, c->snd_max, UTCP_TH_ACK, 0, 0, opt, data_opts(c, opt)) != -ENOBUFS)
		return;
	/* Refused for want of room: sent later, with what is current then,
	 * if it was owed or tells the peer something new (a lost ACK could
	 * cost the peer a timeout; a needless one would look like a
	 * duplicate ACK). */
	if ((c->flags & UTCP_F_ACK_NOW) || c->rcv_nxt != c->last_ack_sent ||
	    utcp_seq_gt(c->rcv_nxt + utcp_out_rcv_wnd(c), c->rcv_adv)) {
		c->flags |= UTCP_F_ACK_NOW;
		hold(c);
	}
}

void
utcp_out_challenge_ack(struct utcp_conn *c)
{
	struct utcp_stack *st = c->st;
	uint64_t second = st->now / 1000000;

	/* RFC 5961 §7: a per-stack budget per second. */
	if (second != st->chack_second) {
		st->chack_second = second;
		st->chack_count = 0;
	}
	if (st->chack_count >= st->cfg.challenge_ack_limit) {
		st->stats[UTCP_STAT_CHALLENGE_ACK_LIMITED]++;
		return;
	}
	st->chack_count++;
	st->stats[UTCP_STAT_CHALLENGE_ACK]++;
	utcp_out_ack(c);
}

/* ---- sending data ---- */

/* RFC 8985 §7.2: a probe timeout of 2 SRTT (plus the peer's worst delayed
 * ACK when a lone segment is out), when that is sooner than the RTO, while
 * the connection is in the open state and has not probed since snd_una last
 * moved. */
static uint64_t
pto(const struct utcp_conn *c, uint64_t rto)
{
	uint32_t flight = c->snd_max - c->snd_una;
	uint64_t t;

	if (c->srtt == 0 || c->backoff || c->retries ||
	    (c->flags & (UTCP_F_RECOVERY | UTCP_F_TLP_SENT)) || flight == 0 ||
	    c->state < UTCP_ESTABLISHED || c->state == UTCP_TIME_WAIT)
		return 0;
	t = 2ull * c->srtt;
	if (flight <= c->mss)
		t += 200000;			/* RFC 8985 WCDelAckT */
	if (t < 10000)
		t = 10000;
	return t < rto ? t : 0;
}

void
utcp_out_arm_rtx(struct utcp_conn *c)
{
	uint64_t rto = utcp_rto_cur(c), t = pto(c, rto);

	if (t) {
		c->flags |= UTCP_F_PTO;
		rto = t;
	} else {
		c->flags &= ~UTCP_F_PTO;
	}
	utcp_timer_arm(&c->st->wheel, &c->t_rtx, c->st->now + rto);
}

/* RFC 6298 §5.5: the timer doubles per expiry, up to rto_max. */
static void
back_off(struct utcp_conn *c)
{
	if (c->backoff < 31 && ((uint64_t)c->rto << c->backoff) < c->st->cfg.rto_max_us)
		c->backoff++;
}

/* Bytes of the send ring from snd_una up to <seq> (data only, FIN excluded). */
static uint32_t
data_off(const struct utcp_conn *c, uint32_t seq)
{
	uint32_t off = seq - c->snd_una;

	return off > c->sb.len ? c->sb.len : off;
}

void
utcp_out_send(struct utcp_conn *c)
{
	struct utcp_stack *st = c->st;
	uint32_t off, avail, wnd, cw, flight, usable, len, end, room;
	uint8_t flags, opt[40], optlen;
	bool sent = false, held = false, fin;

	if (!utcp_state_synchronized(c->state) || c->state == UTCP_TIME_WAIT)
		return;
	for (;;) {
		optlen = data_opts(c, opt);
		room = seg_room(c, optlen);
		off = data_off(c, c->snd_nxt);
		avail = c->sb.len - off;
		cw = c->cwnd;
		/* RFC 3042 limited transmit: each of the first two duplicate
		 * ACKs lets one more segment go, so that a small window still
		 * gathers the three that trigger fast retransmit. */
		if (c->dupacks > 0 && c->dupacks < 3 && !(c->flags & UTCP_F_RECOVERY))
			cw += c->dupacks * c->mss;
		wnd = c->snd_wnd < cw ? c->snd_wnd : cw;
		flight = c->snd_nxt - c->snd_una;
		usable = wnd > flight ? wnd - flight : 0;
		len = avail < usable ? avail : usable;
		if (len > room)
			len = room;
		/* FIN rides on the segment that carries the last byte, or goes
		 * alone; it needs no window. Resent only from fin_seq. */
		fin = (c->flags & UTCP_F_FIN_QUEUED) && len == avail &&
		      (!(c->flags & UTCP_F_FIN_SENT) || c->snd_nxt + len == c->fin_seq);
		if (len == 0 && !fin)
			break;
		/* Sender SWS avoidance (RFC 1122 §4.2.3.4): no runt while more
		 * data waits and something is in flight to clock us. */
		if (len < room && len < avail && flight > 0)
			break;
		flags = UTCP_TH_ACK;
		if (fin)
			flags |= UTCP_TH_FIN;
		if (len && off + len == c->sb.len)
			flags |= UTCP_TH_PSH;
		if (send_seg(c, c->snd_nxt, flags, off, len, opt, optlen) == -ENOBUFS) {
			/* Not sent: nothing moves. */
			hold(c);
			held = true;
			break;
		}
		if (utcp_seq_lt(c->snd_nxt, c->snd_max))
			st->stats[UTCP_STAT_RETRANSMIT]++;
		end = c->snd_nxt + len + (fin ? 1 : 0);
		if (fin && !(c->flags & UTCP_F_FIN_SENT)) {
			c->fin_seq = c->snd_nxt + len;
			c->flags |= UTCP_F_FIN_SENT;
		}
		/* Karn: time only segments sent for the first time. */
		if (!(c->flags & UTCP_F_RTT_ACTIVE) && utcp_seq_ge(c->snd_nxt, c->snd_max)) {
			c->flags |= UTCP_F_RTT_ACTIVE;
			c->rtt_seq = c->snd_nxt;
			c->rtt_start = st->now;
		}
		c->snd_nxt = end;
		if (utcp_seq_gt(end, c->snd_max))
			c->snd_max = end;
		utcp_timer_cancel(&st->wheel, &c->t_persist);
		sent = true;
		if (fin)
			break;
	}
	/* The RTO runs from the oldest unacknowledged transmission; a probe
	 * timeout moves with the newest (RFC 8985 §7.2). */
	if (sent && (!utcp_timer_armed(&c->t_rtx) || (c->flags & UTCP_F_PTO) ||
		     pto(c, utcp_rto_cur(c))))
		utcp_out_arm_rtx(c);
	if (!sent && !held && (c->flags & UTCP_F_ACK_NOW))
		utcp_out_ack(c);
	/* Zero window with data waiting and nothing in flight: probe. */
	if (c->snd_wnd == 0 && c->sb.len > data_off(c, c->snd_nxt) &&
	    c->snd_una == c->snd_max && !utcp_timer_armed(&c->t_persist)) {
		utcp_timer_cancel(&st->wheel, &c->t_rtx);
		c->persist_backoff = 0;
		utcp_timer_arm(&st->wheel, &c->t_persist, st->now + utcp_rto_cur(c));
	}
}

/* Remembers the TSval a retransmission carried: only echoes at least as new
 * are RTT samples (see ts_rtt_sample()). */
static void
note_rtx(struct utcp_conn *c)
{
	c->rtx_tsval = utcp_ts_now(c->st);
	c->flags |= UTCP_F_RTX_TS;
}

/* Resends the first unacknowledged segment (fast retransmit, RTO). */
static void
retransmit_head(struct utcp_conn *c)
{
	uint32_t out = data_off(c, c->snd_max);	/* data sent before: resend only that */
	uint8_t flags = UTCP_TH_ACK, opt[40], optlen = data_opts(c, opt);
	uint32_t room = seg_room(c, optlen), len = out < room ? out : room, end;
	bool fin = (c->flags & UTCP_F_FIN_SENT) && c->snd_una + len == c->fin_seq;

	if (len == 0 && !fin)
		return;
	if (fin)
		flags |= UTCP_TH_FIN;
	if (len && len == c->sb.len)
		flags |= UTCP_TH_PSH;
	c->flags &= ~UTCP_F_RTT_ACTIVE;		/* Karn */
	if (send_seg(c, c->snd_una, flags, 0, len, opt, optlen) == -ENOBUFS) {
		c->flags |= UTCP_F_RTX_HELD;
		hold(c);
		return;
	}
	c->st->stats[UTCP_STAT_RETRANSMIT]++;
	note_rtx(c);
	end = c->snd_una + len + (fin ? 1 : 0);
	if (utcp_seq_gt(end, c->snd_nxt))
		c->snd_nxt = end;
}

/* RFC 8985 §7.3: one new segment if the peer's window allows (cwnd
 * notwithstanding), else the last one again. Its ACK either acknowledges
 * everything (only the tail or its ACKs were lost) or adds a duplicate ACK
 * towards fast retransmit, sooner than the RTO would act. */
static void
tail_loss_probe(struct utcp_conn *c)
{
	struct utcp_stack *st = c->st;
	uint32_t out = data_off(c, c->snd_max), max = c->snd_max, room, len;
	uint8_t flags = UTCP_TH_ACK, opt[40], optlen;
	bool fin;

	st->stats[UTCP_STAT_TLP]++;
	c->flags |= UTCP_F_TLP_SENT;
	if (c->sb.len > data_off(c, c->snd_nxt) && c->snd_wnd > c->snd_nxt - c->snd_una) {
		c->cwnd += c->mss;
		utcp_out_send(c);
		c->cwnd -= c->mss;
		if (utcp_seq_gt(c->snd_max, max))
			return;
	}
	optlen = data_opts(c, opt);
	room = seg_room(c, optlen);
	len = out < room ? out : room;
	fin = (c->flags & UTCP_F_FIN_SENT) && c->snd_max == c->fin_seq + 1;
	if (len == 0 && !fin)
		return;
	if (fin)
		flags |= UTCP_TH_FIN;
	if (len)
		flags |= UTCP_TH_PSH;
	c->flags &= ~UTCP_F_RTT_ACTIVE;		/* Karn */
	/* Refused: no probe; the RTO that follows still covers the tail. */
	if (send_seg(c, c->snd_una + out - len, flags, out - len, len, opt, optlen) != 0)
		return;
	st->stats[UTCP_STAT_RETRANSMIT]++;
	note_rtx(c);
}

/* The handshake of <c> is not done: what goes out is its SYN or SYN-ACK. */
static bool
handshaking(const struct utcp_conn *c)
{
	return c->state == UTCP_SYN_SENT || c->state == UTCP_SYN_RECEIVED;
}

/* Nothing of <c> is sent from its timers or the held list any more. */
static bool
out_done(const struct utcp_conn *c)
{
	return c->state == UTCP_CLOSED || c->state == UTCP_TIME_WAIT;
}

void
utcp_out_resume(struct utcp_conn *c)
{
	if (handshaking(c)) {
		/* Time the handshake from the SYN that leaves now (only a
		 * first transmission is timed, Karn). */
		if (c->flags & UTCP_F_RTT_ACTIVE)
			c->rtt_start = c->st->now;
		utcp_out_syn(c);
		return;
	}
	if (out_done(c))
		return;
	if (c->flags & UTCP_F_RTX_HELD) {
		c->flags &= ~UTCP_F_RTX_HELD;
		if (c->snd_una != c->snd_max)
			retransmit_head(c);
		if (c->flags & UTCP_F_TXQ)
			return;
	}
	utcp_out_send(c);
}

void
utcp_out_fast_retransmit(struct utcp_conn *c)
{
	c->st->stats[UTCP_STAT_FAST_RETRANSMIT]++;
	retransmit_head(c);
}

void
utcp_out_rtx_timeout(struct utcp_conn *c)
{
	struct utcp_stack *st = c->st;
	uint32_t flight;

	if (handshaking(c)) {
		if (c->retries >= (c->state == UTCP_SYN_SENT ? st->cfg.syn_retries
							     : st->cfg.synack_retries)) {
			st->stats[UTCP_STAT_TIMEOUT_RESET]++;
			utcp_stack_conn_done(c, -ETIMEDOUT);
			return;
		}
		c->retries++;
		c->flags &= ~UTCP_F_RTT_ACTIVE;		/* Karn */
		st->stats[UTCP_STAT_RETRANSMIT]++;
		back_off(c);
		utcp_out_syn(c);
		utcp_out_arm_rtx(c);
		return;
	}
	if (out_done(c) || c->snd_una == c->snd_max)
		return;
	if (c->flags & UTCP_F_PTO) {
		tail_loss_probe(c);
		utcp_out_arm_rtx(c);		/* now the RTO proper */
		return;
	}
	if (c->retries >= st->cfg.max_retries) {
		st->stats[UTCP_STAT_TIMEOUT_RESET]++;
		utcp_out_rst(c);
		utcp_stack_conn_done(c, -ETIMEDOUT);
		return;
	}
	st->stats[UTCP_STAT_RTO]++;
	flight = c->snd_max - c->snd_una;
	/* RFC 5681 (4): halve on the first timeout of a loss episode only. */
	if (c->retries == 0)
		c->ssthresh = flight / 2 > 2u * c->mss ? flight / 2 : 2u * c->mss;
	c->retries++;
	c->cwnd = c->mss;
	c->dupacks = 0;
	c->flags &= ~UTCP_F_RECOVERY;
	c->recover = c->snd_max;		/* RFC 6582 §3.2 step 1 after a timeout */
	back_off(c);
	c->snd_nxt = c->snd_una;		/* go back N */
	retransmit_head(c);
	utcp_out_arm_rtx(c);
}

void
utcp_out_persist_timeout(struct utcp_conn *c)
{
	struct utcp_stack *st = c->st;
	struct ack_mark m;
	struct tcp_out o;
	uint8_t opt[40];
	uint64_t ivl;

	if (c->snd_wnd > 0 || c->sb.len == data_off(c, c->snd_nxt) ||
	    !utcp_state_synchronized(c->state))
		return;
	/* Window probe as Linux sends it: an old sequence number, no data; the
	 * receiver answers any unacceptable segment with an ACK carrying its
	 * current window. */
	st->stats[UTCP_STAT_PERSIST_PROBE]++;
	ack_mark(c, &m);
	conn_out(c, &o, c->snd_una - 1, UTCP_TH_ACK);
	o.optlen = data_opts(c, opt);
	o.opt = opt;
	if (tcp_emit(st, &o) == -ENOBUFS)
		ack_unsent(c, &m);		/* the next probe goes as timed */
	if (c->persist_backoff < 16)
		c->persist_backoff++;
	ivl = (uint64_t)c->rto << c->persist_backoff;
	if (ivl > st->cfg.persist_max_us)
		ivl = st->cfg.persist_max_us;
	utcp_timer_arm(&st->wheel, &c->t_persist, st->now + ivl);
}

void
utcp_out_delack_timeout(struct utcp_conn *c)
{
	if (c->state == UTCP_CLOSED || c->rcv_nxt == c->last_ack_sent)
		return;
	c->st->stats[UTCP_STAT_DELACK]++;
	utcp_out_ack(c);
}

void
utcp_out_window_update(struct utcp_conn *c)
{
	uint32_t adv, w, thresh;

	if (c->state != UTCP_ESTABLISHED && c->state != UTCP_FIN_WAIT_1 &&
	    c->state != UTCP_FIN_WAIT_2)
		return;
	adv = utcp_seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	w = utcp_out_rcv_wnd(c);
	thresh = c->rb.cap / 2 < 2u * c->mss ? c->rb.cap / 2 : 2u * c->mss;
	if (w > adv && (adv < c->mss || w - adv >= thresh))
		utcp_out_ack(c);
}
