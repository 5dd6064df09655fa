/* Internals of the TCP core shared by its files (utcp_stack.c, utcp_in.c,
 * utcp_out.c). Not for use outside dataplane/tcp and its tests.
 *
 * Ownership: the stack owns every connection object (a preallocated array
 * with a free list), the send and receive storage of each (one block from
 * the stack's buffer pool, taken at utcp_stack_conn_new() and given back
 * when the object is freed) and every TIME_WAIT record. The app holds a
 * handle to a connection from UTCP_EV_ACCEPTED / utcp_connect() until utcp_close() or
 * utcp_abort() (flag UTCP_F_APP). A connection is freed only when it is
 * CLOSED and the app no longer holds it, and only when the outermost stack
 * call returns (the reap list), so callbacks may close anything. */
#ifndef PARLEY_UTCP_INT_H
#define PARLEY_UTCP_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/tcp/utcp.h"
#include "dataplane/tcp/utcp_buf.h"
#include "dataplane/tcp/utcp_timer.h"

#define UTCP_TH_FIN	0x01
#define UTCP_TH_SYN	0x02
#define UTCP_TH_RST	0x04
#define UTCP_TH_PSH	0x08
#define UTCP_TH_ACK	0x10
#define UTCP_TH_URG	0x20

#define UTCP_IPHDR_LEN	20
#define UTCP_TCPHDR_LEN	20
#define UTCP_MAX_LISTENERS	16
#define UTCP_DEFAULT_MSS	536	/* RFC 9293 §3.7.1: when the peer sends none */
#define UTCP_TS_LEN	12	/* NOP NOP TS, in every segment when negotiated */
#define UTCP_PAWS_IDLE_US	(24ull * 86400 * 1000000)	/* RFC 7323 §5.5 */
#define UTCP_OOW_ACK_US		500000	/* Linux tcp_invalid_ratelimit */

/* Connection flags. */
enum {
	UTCP_F_APP = 1u << 0,		/* the app holds the handle */
	UTCP_F_PASSIVE = 1u << 1,	/* from a listener */
	UTCP_F_FIN_QUEUED = 1u << 2,	/* shutdown/close: FIN goes after the data */
	UTCP_F_FIN_SENT = 1u << 3,	/* our FIN has a sequence number (fin_seq) */
	UTCP_F_RCVD_FIN = 1u << 4,	/* peer's FIN processed: end of stream */
	UTCP_F_RFIN_OOO = 1u << 5,	/* peer's FIN seen past a hole, at rfin_seq */
	UTCP_F_ACK_NOW = 1u << 6,
	UTCP_F_TS_OK = 1u << 7,
	UTCP_F_SACK_OK = 1u << 8,
	UTCP_F_WS_OK = 1u << 9,
	UTCP_F_WANT_WRITE = 1u << 10,	/* a write was short: say WRITABLE later */
	UTCP_F_RTT_ACTIVE = 1u << 11,	/* timing the segment at rtt_seq */
	UTCP_F_RECOVERY = 1u << 12,	/* NewReno fast recovery */
	UTCP_F_ORPHAN = 1u << 13,	/* app closed, still closing */
	UTCP_F_IN_HASH = 1u << 14,
	UTCP_F_EVQ = 1u << 15,		/* on the stack's event list */
	UTCP_F_REAPQ = 1u << 16,	/* on the stack's reap list */
	UTCP_F_IN_SYNQ = 1u << 17,	/* counted in its listener's synq_len */
	UTCP_F_SHUT_RD = 1u << 18,	/* app closed: incoming data is unwanted */
	UTCP_F_PTO = 1u << 19,		/* t_rtx runs the tail loss probe timeout */
	UTCP_F_TLP_SENT = 1u << 20,	/* probe sent; none again until snd_una moves */
	UTCP_F_RTX_TS = 1u << 21,	/* rtx_tsval is set */
	UTCP_F_TXQ = 1u << 22,		/* on the stack's held list: the device had no
					 * room for a segment, utcp_flush() offers it again */
	UTCP_F_RTX_HELD = 1u << 23,	/* the held segment is a head retransmission */
};

enum utcp_timer_kind {
	UTCP_T_RTX = 0,
	UTCP_T_PERSIST,
	UTCP_T_DELACK,
	UTCP_T_IDLE,			/* orphaned FIN_WAIT_2 */
	UTCP_T_TW,			/* TIME_WAIT record */
};

/* A parsed, checksum-verified TCP segment (host byte order). */
struct utcp_seg {
	uint32_t saddr, daddr;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint16_t wnd;
	uint8_t flags;
	const uint8_t *data;
	uint32_t len;			/* payload bytes */
	bool has_mss, has_ws, has_ts, sack_ok;
	uint16_t mss;
	uint8_t ws;
	uint32_t tsval, tsecr;
};

struct utcp_listener {
	bool used;
	uint16_t port;
	void *user;
	uint32_t synq_len;		/* SYN_RECEIVED connections */
};

struct utcp_conn {
	struct utcp_conn *hnext, **hpprev;	/* tuple table chain */
	struct utcp_conn *list_next;		/* free list or reap list */
	struct utcp_conn *ev_next;		/* event list */
	struct utcp_conn *txq_next, **txq_pprev;	/* held list (UTCP_F_TXQ) */
	struct utcp_stack *st;
	uint32_t laddr, raddr;
	uint16_t lport, rport;
	uint8_t state;				/* enum utcp_state */
	uint8_t ev;				/* pending events, 1 << enum utcp_event */
	uint32_t flags;
	int err;
	void *user;
	struct utcp_listener *lsn;		/* passive opens */

	/* Send side (RFC 9293 §3.3.1). snd_max: highest sequence sent; snd_nxt
	 * goes back to snd_una after a timeout (go-back-N). */
	uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, max_snd_wnd, snd_wl1, snd_wl2;
	uint32_t fin_seq;			/* valid with UTCP_F_FIN_SENT */
	uint16_t mss;				/* payload per segment with timestamps only */
	uint16_t seg_max;			/* min(peer's MSS, ours): payload + options */
	uint16_t peer_mss;
	uint8_t snd_wscale, rcv_wscale;
	/* Receive side. */
	uint32_t irs, rcv_nxt, rcv_adv, last_ack_sent, rfin_seq;
	uint32_t ts_recent;
	uint64_t ts_recent_stamp;
	uint32_t unacked;			/* in-order bytes received since our last ACK */
	uint64_t oow_last;			/* last ACK for an unacceptable bare ACK */
	/* RTT and retransmission (RFC 6298), µs. rto is the value computed
	 * from SRTT and RTTVAR; the timer runs rto << backoff (utcp_rto_cur),
	 * and an ACK of new data clears backoff. */
	uint32_t srtt, rttvar, rto;
	uint32_t rtt_seq;
	uint64_t rtt_start;
	uint32_t rtx_tsval;			/* TSval of our latest retransmission */
	uint8_t retries, persist_backoff, backoff;
	/* Congestion control (RFC 5681, 6582, 6928), bytes. */
	uint32_t cwnd, ssthresh, recover, bytes_acked;
	uint32_t dupacks;

	struct utcp_timer t_rtx, t_persist, t_delack, t_idle;
	struct utcp_sbuf sb;
	struct utcp_rbuf rb;
	void *bufblk;				/* sb and rb storage, from st->bufpool */
};

/* TIME_WAIT record: what RFC 9293 §3.10.7.4 and RFC 6191 need, no buffers. */
struct utcp_tw {
	struct utcp_tw *hnext, **hpprev;
	struct utcp_tw *list_next;
	struct utcp_timer timer;
	uint32_t laddr, raddr;
	uint16_t lport, rport;
	uint32_t snd_nxt, rcv_nxt, ts_recent;
	uint16_t rcv_wnd;			/* as sent in our last segment */
	bool ts_ok;
	bool used;
};

struct utcp_stack {
	struct utcp_config cfg;
	struct utcp_callbacks cb;
	uint64_t now;				/* µs, read at each entry */
	uint32_t depth;				/* nesting of API calls */
	struct utcp_wheel wheel;

	struct utcp_conn *conns;		/* max_conns objects */
	struct utcp_buf_pool bufpool;		/* their send and receive rings, on demand */
	struct utcp_conn *free_conns, *reap, *ev_head, **ev_tail;
	/* Connections with a segment the device had no room for (output
	 * returned -ENOBUFS), oldest first; each at most once, so bounded by
	 * max_conns. */
	struct utcp_conn *txq, **txq_tail;
	struct utcp_conn **ctab;
	uint32_t ctab_mask;
	uint32_t nconns, norphans;

	struct utcp_tw *tws, *free_tw;
	struct utcp_tw **twtab;
	uint32_t twtab_mask, ntw;

	struct utcp_listener lsn[UTCP_MAX_LISTENERS];
	uint8_t rcv_wscale;			/* what we offer, from rcvbuf */
	uint64_t chack_second;			/* challenge-ACK rate limit window */
	uint32_t chack_count;
	uint64_t cookie_last;			/* when we last sent a cookie */
	uint16_t ip_id;
	uint16_t next_eph;
	uint32_t ts_offset;
	uint64_t stats[UTCP_STAT__COUNT];
	uint8_t *pkt;				/* output scratch, pkt_cap bytes */
	uint32_t pkt_cap;
};

static inline uint32_t
utcp_ts_now(const struct utcp_stack *st)
{
	return (uint32_t)(st->now / 1000) + st->ts_offset;
}

/* The retransmission timeout now: the RFC 6298 value backed off. */
static inline uint32_t
utcp_rto_cur(const struct utcp_conn *c)
{
	uint64_t r = (uint64_t)c->rto << c->backoff;

	return r > c->st->cfg.rto_max_us ? c->st->cfg.rto_max_us : (uint32_t)r;
}

static inline bool
utcp_state_synchronized(uint8_t s)
{
	return s >= UTCP_ESTABLISHED;
}

/* ---- utcp_stack.c ---- */
void utcp_stack_enter(struct utcp_stack *st);
void utcp_stack_leave(struct utcp_stack *st);
struct utcp_conn *utcp_stack_lookup(struct utcp_stack *st, uint32_t laddr, uint16_t lport,
				    uint32_t raddr, uint16_t rport);
struct utcp_tw *utcp_stack_tw_lookup(struct utcp_stack *st, uint32_t laddr, uint16_t lport,
				     uint32_t raddr, uint16_t rport);
void utcp_stack_tw_free(struct utcp_stack *st, struct utcp_tw *tw);
struct utcp_listener *utcp_stack_listener(struct utcp_stack *st, uint16_t port);
/* A fresh connection in <state> for the tuple, in the table; NULL if none free. */
struct utcp_conn *utcp_stack_conn_new(struct utcp_stack *st, uint32_t raddr, uint16_t rport,
				      uint16_t lport);
uint32_t utcp_stack_isn(struct utcp_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport);
/* Queues event <ev> for the app (delivered when the outermost call returns). */
void utcp_stack_emit(struct utcp_conn *c, enum utcp_event ev);
/* The connection is over: CLOSED, out of the table, timers off; <err> kept
 * for the app (which hears UTCP_EV_CLOSED if it holds the handle). */
void utcp_stack_conn_done(struct utcp_conn *c, int err);
/* Our side is done: TIME_WAIT record (or none if the pool is empty), then
 * as utcp_stack_conn_done(c, 0). */
void utcp_stack_enter_time_wait(struct utcp_conn *c);
/* Passive connection became ESTABLISHED: leave the SYN queue, tell the app. */
void utcp_stack_accepted(struct utcp_conn *c);
void utcp_stack_synq_leave(struct utcp_conn *c);
/* <c> has a segment the device had no room for: onto the held list, which
 * utcp_flush() works through. Harmless when already there. */
void utcp_stack_txq_add(struct utcp_conn *c);
/* Off the held list; harmless when not on it. */
void utcp_stack_txq_remove(struct utcp_conn *c);

/* ---- utcp_out.c ---- */
/* Sends what the windows allow, then an ACK if one is still owed. A data or
 * FIN segment the device has no room for (output -ENOBUFS) does not count
 * as sent: the loop stops there and <c> goes on the held list. */
void utcp_out_send(struct utcp_conn *c);
/* Offers again what the device refused for <c> (from utcp_flush()). */
void utcp_out_resume(struct utcp_conn *c);
void utcp_out_ack(struct utcp_conn *c);
/* RFC 5961 challenge ACK, subject to the per-stack rate limit. */
void utcp_out_challenge_ack(struct utcp_conn *c);
void utcp_out_syn(struct utcp_conn *c);		/* SYN or SYN-ACK by state; held as data */
void utcp_out_rst(struct utcp_conn *c);		/* RST for an abort */
/* RST answering <seg> for which there is no connection (RFC 9293 §3.10.7.1). */
void utcp_out_rst_reply(struct utcp_stack *st, const struct utcp_seg *seg);
/* SYN-ACK carrying a cookie as ISN; no state kept. */
void utcp_out_cookie_synack(struct utcp_stack *st, const struct utcp_seg *seg, uint32_t iss,
			    uint16_t mss);
void utcp_out_tw_ack(struct utcp_stack *st, const struct utcp_tw *tw);
/* Any IPv4 packet: <payload> of <len> after our header (ICMP). */
void utcp_out_ip(struct utcp_stack *st, uint32_t daddr, uint8_t proto, const void *payload,
		 size_t len);
/* Window we can advertise now, in bytes (never shrinking the right edge). */
uint32_t utcp_out_rcv_wnd(const struct utcp_conn *c);
/* After the app read: send a window update if the window grew enough. */
void utcp_out_window_update(struct utcp_conn *c);
void utcp_out_rtx_timeout(struct utcp_conn *c);
void utcp_out_persist_timeout(struct utcp_conn *c);
void utcp_out_delack_timeout(struct utcp_conn *c);
void utcp_out_arm_rtx(struct utcp_conn *c);
/* Resends the first unacknowledged segment (3 duplicate ACKs, partial ACK). */
void utcp_out_fast_retransmit(struct utcp_conn *c);

/* ---- utcp_in.c ---- */
void utcp_in_tcp(struct utcp_stack *st, struct utcp_seg *seg);
/* Parses TCP options of a segment into <seg>. */
void utcp_in_options(struct utcp_seg *seg, const uint8_t *opt, size_t len);

#endif
