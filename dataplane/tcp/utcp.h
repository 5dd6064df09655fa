/* Per-lcore user-space TCP: the pure core (no DPDK inside).
 *
 * One struct utcp_stack per lcore, shared-nothing. The stack takes IPv4
 * packets in (utcp_input), produces complete IPv4+TCP packets through the
 * output callback, runs its own hashed timer wheel (utcp_tick) and reads time
 * from an injected clock, so tests drive it segment by segment.
 *
 * Implemented: RFC 9293 state machine and sequence-acceptability checks,
 * RFC 5961 challenge ACKs (rate limited), a bounded SYN queue that overflows
 * into SYN cookies (MSS index in the cookie, wscale/SACK in the timestamp),
 * MSS / window scale / timestamps with PAWS (RFC 7323), SACK-permitted and
 * SACK blocks for our out-of-order queue (RFC 2018), out-of-order reassembly
 * with a per-connection cap, flow control with persist timer and window
 * updates, delayed ACK, RTO per RFC 6298 with Karn and backoff (RTT samples
 * from timestamp echoes as in RFC 7323 §4; an ACK of new data undoes the
 * backoff), limited transmit (RFC 3042), early retransmit (RFC 5827), a
 * tail loss probe (RFC 8985 §7, without RACK), segments sized by the MSS
 * less their actual options (RFC 6691), NewReno (RFC 5681/6582) with IW10
 * (RFC 6928), half-close, compact TIME_WAIT records with reuse, ISN per
 * RFC 6528, ICMP echo, IPv4 validation. Connection buffers are taken on
 * demand under a memory cap; an optional hook receives in-order payload
 * without a copy into the ring. A segment the device has no room for
 * (output -ENOBUFS) keeps its place and goes at the next utcp_flush().
 *
 * Threading: every function taking a stack or a connection must be called on
 * the lcore that owns the stack. utcp_steer_* are pure and may be called
 * anywhere.
 *
 * Addresses and ports are in host byte order in this API. */
#ifndef PARLEY_UTCP_H
#define PARLEY_UTCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct utcp_stack;
struct utcp_conn;

/* What the upper layer hears about a connection. */
enum utcp_event {
	UTCP_EV_ACCEPTED = 0,	/* passive open completed; the app now owns <c> */
	UTCP_EV_CONNECTED,	/* active open completed */
	UTCP_EV_READABLE,	/* in-order bytes or end of stream to read */
	UTCP_EV_WRITABLE,	/* send buffer space after a short/refused write */
	UTCP_EV_CLOSED,		/* connection over: utcp_conn_error() says why (0: orderly) */
};

/* Builds nothing itself: <pkt> is a complete IPv4 packet (header + TCP or
 * ICMP) valid only for the duration of the call. Returns 0 when taken;
 * -ENOBUFS when the device has no room now (tx queue or buffers full): a
 * connection's data, FIN, SYN or ACK then does not count as sent, the stack
 * keeps its place and offers it again at the next utcp_flush() or
 * utcp_tick() (RSTs, probes and stateless replies are dropped); any other
 * <0 when dropped for good (TCP recovers by retransmission). */
typedef int utcp_output_fn(void *arg, const void *pkt, size_t len);
/* Connection event; see enum utcp_event. <c> stays valid until the app calls
 * utcp_close() or utcp_abort() on it. */
typedef void utcp_event_fn(void *arg, struct utcp_conn *c, enum utcp_event ev);
/* Monotonic time in microseconds. */
typedef uint64_t utcp_clock_fn(void *arg);
/* Optional zero-copy receive: in-order payload of <c> straight from the
 * input packet, offered only while nothing is waiting in the receive ring.
 * <data> is valid only during the call. Returns the bytes taken (0..<len>);
 * the rest goes into the ring as usual. UTCP_EV_READABLE follows either way.
 * Must not call into the stack other than the utcp_conn_* getters (it runs
 * in the middle of segment processing). */
typedef size_t utcp_recv_fn(void *arg, struct utcp_conn *c, const void *data, size_t len);

struct utcp_callbacks {
	utcp_output_fn *output;
	utcp_event_fn *event;
	utcp_clock_fn *now_us;
	void *arg;
	utcp_recv_fn *recv;		/* NULL: every byte goes through the ring */
};

/* Stack configuration. utcp_config_init() fills defaults; a zero field left
 * by the caller is replaced by its default at utcp_stack_create(). */
struct utcp_config {
	uint32_t local_addr;		/* our IPv4 address */
	uint16_t mss;			/* MSS we advertise (MTU - 40); default 1460 */
	uint32_t sndbuf;		/* send buffer bytes per connection; default 64 KiB */
	uint32_t rcvbuf;		/* receive buffer bytes per connection; default 64 KiB */
	uint32_t ooo_max;		/* out-of-order bytes held per connection; default rcvbuf */
	uint32_t max_conns;		/* connection objects, preallocated; default 1024 */
	uint64_t buf_mem_max;		/* bytes of send + receive buffers, taken on demand
					 * as connections open; a connection over it is
					 * refused (RST) or -ENOMEM; default max_conns *
					 * (sndbuf + rcvbuf) */
	uint32_t max_tw;		/* TIME_WAIT records; default max_conns */
	uint32_t max_orphans;		/* closed by app, still closing; default max_conns / 2 */
	uint32_t synq_max;		/* SYN_RECEIVED connections per listener; default 128 */
	uint32_t rto_init_us;		/* default 1 s (RFC 6298) */
	uint32_t rto_min_us;		/* default 200 ms */
	uint32_t rto_max_us;		/* default 60 s */
	uint32_t delack_us;		/* default 40 ms */
	uint32_t persist_max_us;	/* longest interval between window probes; default 60 s */
	uint32_t tw_us;			/* TIME_WAIT duration (2 MSL); default 60 s */
	uint32_t fin_wait2_us;		/* orphaned FIN_WAIT_2 timeout; default 60 s */
	uint32_t timer_tick_us;		/* timer wheel granularity; default 1 ms */
	uint8_t max_retries;		/* data retransmissions before reset; default 12 */
	uint8_t syn_retries;		/* SYN retransmissions; default 5 */
	uint8_t synack_retries;		/* SYN-ACK retransmissions; default 5 */
	uint32_t challenge_ack_limit;	/* challenge ACKs per second per stack; default 1000 */
	bool syncookies;		/* default true */
	bool no_timestamps;		/* do not offer/accept RFC 7323 timestamps */
	bool no_wscale;			/* do not offer/accept window scaling */
	bool no_sack;			/* do not offer/accept SACK-permitted */
	uint8_t isn_secret[16];		/* key for ISNs, SYN cookies and the tuple table */
	uint8_t steer_key[16];		/* same on every lcore: flow steering hash key */
	uint16_t lcore_id;		/* this stack's index among nb_lcores */
	uint16_t nb_lcores;		/* default 1 */
	uint16_t eph_port_min;		/* default 32768 */
	uint16_t eph_port_max;		/* default 60999 */
};

enum utcp_stat {
	UTCP_STAT_IP_IN = 0,
	UTCP_STAT_IP_BAD_HDR,		/* version, length, header checksum */
	UTCP_STAT_IP_FRAG,		/* fragments dropped */
	UTCP_STAT_IP_NOT_LOCAL,
	UTCP_STAT_IP_PROTO,		/* neither TCP nor ICMP */
	UTCP_STAT_ICMP_ECHO,
	UTCP_STAT_ICMP_BAD,
	UTCP_STAT_TCP_BAD,		/* header length or checksum */
	UTCP_STAT_TCP_IN,
	UTCP_STAT_TCP_OUT,
	UTCP_STAT_RST_OUT,
	UTCP_STAT_RST_IN,
	UTCP_STAT_NO_PORT,		/* segment for no connection and no listener */
	UTCP_STAT_CHALLENGE_ACK,
	UTCP_STAT_CHALLENGE_ACK_LIMITED,
	UTCP_STAT_PAWS_DROP,
	UTCP_STAT_OUT_OF_WINDOW,
	UTCP_STAT_SYNQ_FULL,		/* SYN answered with a cookie */
	UTCP_STAT_COOKIE_SENT,
	UTCP_STAT_COOKIE_OK,
	UTCP_STAT_COOKIE_BAD,
	UTCP_STAT_CONN_EXHAUSTED,	/* no free connection object */
	UTCP_STAT_MEM_REFUSED,		/* connection refused: buffer memory cap */
	UTCP_STAT_OOO_DROP,		/* out-of-order data over the cap */
	UTCP_STAT_RETRANSMIT,
	UTCP_STAT_FAST_RETRANSMIT,
	UTCP_STAT_RTO,
	UTCP_STAT_TLP,			/* tail loss probes (RFC 8985 §7) */
	UTCP_STAT_TIMEOUT_RESET,	/* retransmission cap reached */
	UTCP_STAT_PERSIST_PROBE,
	UTCP_STAT_DELACK,
	UTCP_STAT_TW_CREATED,
	UTCP_STAT_TW_REUSED,
	UTCP_STAT_TW_FULL,
	UTCP_STAT_ORPHAN_ABORT,
	UTCP_STAT_OUTPUT_DROP,		/* the output callback refused a packet */
	UTCP_STAT_OUTPUT_HELD,		/* of those, -ENOBUFS on a segment kept to resend */
	UTCP_STAT__COUNT,
};

/* Fills <cfg> with the defaults (local_addr and keys zero). */
void utcp_config_init(struct utcp_config *cfg);

/* Boot path: allocates connection objects, tables and TIME_WAIT records up
 * front; connection buffers come later, in slabs, as connections open (never
 * per packet). <cb> is copied. Returns NULL on allocation failure or a bad
 * config. */
struct utcp_stack *utcp_stack_create(const struct utcp_config *cfg,
				     const struct utcp_callbacks *cb);
/* Frees the stack and every connection (no packets sent). Accepts NULL. */
void utcp_stack_destroy(struct utcp_stack *st);

/* Feeds one IPv4 packet (the Ethernet payload). The stack never keeps <pkt>. */
void utcp_input(struct utcp_stack *st, const void *pkt, size_t len);
/* Runs expired timers, then as utcp_flush(). Call at least every
 * timer_tick_us while connections exist. */
void utcp_tick(struct utcp_stack *st);
/* The device may have room again: offers once more the segments it refused
 * with -ENOBUFS, connection by connection in the order they were refused,
 * until one is refused again. Cheap when nothing is held; call it after the
 * device took a burst. */
void utcp_flush(struct utcp_stack *st);

/* Listens on <port>; <user> becomes the initial utcp_conn_user() of accepted
 * connections. 0, -EADDRINUSE, -ENOSPC (listener table full). */
int utcp_listen(struct utcp_stack *st, uint16_t port, void *user);
/* Stops listening; embryonic connections of the listener are dropped. */
int utcp_unlisten(struct utcp_stack *st, uint16_t port);

/* Active open to <raddr>:<rport>. <lport> 0 picks an ephemeral port whose
 * steering hash maps to this lcore. On 0, *<out> is owned by the app
 * (UTCP_EV_CONNECTED or UTCP_EV_CLOSED follows). -EADDRINUSE, -ENOMEM. */
int utcp_connect(struct utcp_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport,
		 void *user, struct utcp_conn **out);

/* Copies up to <len> bytes into the send buffer and sends what the windows
 * allow. Returns bytes taken (>0), -EAGAIN (buffer full; UTCP_EV_WRITABLE
 * follows), -EPIPE (after shutdown/close), or the connection error. */
ssize_t utcp_write(struct utcp_conn *c, const void *buf, size_t len);
/* Copies up to <len> in-order bytes out. >0 bytes, 0 end of stream,
 * -EAGAIN nothing yet, or the connection error. */
ssize_t utcp_read(struct utcp_conn *c, void *buf, size_t len);
/* Zero-copy read: up to two spans of readable bytes (ring buffer), valid until
 * the next call on <c>; then utcp_consume() what was used. Returns the number
 * of spans filled (0 when nothing is readable). */
int utcp_peek(struct utcp_conn *c, const void *ptr[2], size_t len[2]);
void utcp_consume(struct utcp_conn *c, size_t n);
/* Sends FIN after the queued data; reading continues. 0 or -ENOTCONN. */
int utcp_shutdown(struct utcp_conn *c);
/* Releases the app's handle. Orderly close (FIN) unless unread data remain or
 * too many connections are closing, then RST (abortive). <c> is invalid after. */
void utcp_close(struct utcp_conn *c);
/* Sends RST (if synchronized) and releases the handle. <c> is invalid after. */
void utcp_abort(struct utcp_conn *c);

enum utcp_state {
	UTCP_CLOSED = 0,
	UTCP_LISTEN,
	UTCP_SYN_SENT,
	UTCP_SYN_RECEIVED,
	UTCP_ESTABLISHED,
	UTCP_FIN_WAIT_1,
	UTCP_FIN_WAIT_2,
	UTCP_CLOSE_WAIT,
	UTCP_CLOSING,
	UTCP_LAST_ACK,
	UTCP_TIME_WAIT,
};

enum utcp_state utcp_conn_state(const struct utcp_conn *c);
const char *utcp_state_name(enum utcp_state s);
/* 0, -ECONNRESET, -ECONNREFUSED, -ETIMEDOUT. */
int utcp_conn_error(const struct utcp_conn *c);
void *utcp_conn_user(const struct utcp_conn *c);
void utcp_conn_set_user(struct utcp_conn *c, void *user);
void utcp_conn_tuple(const struct utcp_conn *c, uint32_t *laddr, uint16_t *lport,
		     uint32_t *raddr, uint16_t *rport);
/* Bytes the app may still write / read right now. */
size_t utcp_conn_sendable(const struct utcp_conn *c);
size_t utcp_conn_readable(const struct utcp_conn *c);

/* Introspection for tests and the control plane. */
struct utcp_conn_info {
	enum utcp_state state;
	uint32_t snd_una, snd_nxt, snd_wnd, rcv_nxt, rcv_wnd;
	uint32_t cwnd, ssthresh, srtt_us, rttvar_us;
	uint32_t rto_us;		/* RFC 6298 value, without backoff */
	uint32_t rto_cur_us;		/* with backoff: what the timer runs */
	uint16_t mss;			/* payload bytes per segment we send */
	uint8_t snd_wscale, rcv_wscale;
	bool ts_ok, sack_ok, in_recovery;
	uint32_t ooo_bytes, retries;
};
void utcp_conn_info(const struct utcp_conn *c, struct utcp_conn_info *info);
const uint64_t *utcp_stats(const struct utcp_stack *st);	/* UTCP_STAT__COUNT counters */
uint32_t utcp_conn_count(const struct utcp_stack *st);	/* connection objects in use */
uint32_t utcp_tw_count(const struct utcp_stack *st);
/* Bytes of connection buffers the stack holds from the system now. */
uint64_t utcp_buf_mem(const struct utcp_stack *st);

/* Flow steering, same result on every lcore given the same <steer_key>:
 * the lcore that owns the connection with local <laddr>:<lport> and remote
 * <raddr>:<rport>. */
uint16_t utcp_steer(const uint8_t steer_key[16], uint16_t nb_lcores, uint32_t laddr,
		    uint16_t lport, uint32_t raddr, uint16_t rport);
/* The owning lcore of a received IPv4 packet (its destination is the local
 * side), or -1 when the packet is not TCP or too short to tell (handle it
 * locally). */
int utcp_steer_packet(const uint8_t steer_key[16], uint16_t nb_lcores, const void *pkt,
		      size_t len);

#endif
