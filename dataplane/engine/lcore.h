/* Per-lcore state and the connection object, shared by the data-plane stages
 * (io/, sipconn.c, registrar.c, dialog.c). Not for router/ or control/:
 * they see engine.h only.
 *
 * Ownership: a struct lcore_ctx belongs to its lcore. Other threads touch
 * only `remote` (atomics) and the counters (relaxed reads). A struct conn
 * belongs to the lcore that accepted it, for its whole life. */
#ifndef PARLEY_LCORE_H
#define PARLEY_LCORE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <pthread.h>

#include "dataplane/engine/engine.h"
#include "dataplane/base/objcache.h"
#include "dataplane/sip/digest.h"

struct tlsterm;
struct tlsterm_ctx;
struct htdigest;
struct ratelimit;
struct dialog;
struct roomtab;
struct db;
struct commit;
struct fanout_lc;
struct fanout_shared;

enum ctr_id {
	CTR_CONN_ACCEPTED,
	CTR_CONN_CLOSED,
	CTR_CONN_REFUSED_LIMIT,		/* over max_conns */
	CTR_TLS_HANDSHAKES,
	CTR_TLS_RESUMED,
	CTR_TLS_FAILURES,
	CTR_TLS_HANDOFFS,		/* sessions moved to our record layer */
	CTR_TLS_BAD_MAC,		/* records that failed authentication there */
	CTR_TLS_KEY_UPDATES,		/* KeyUpdates handled there */
	CTR_BYTES_IN,
	CTR_BYTES_OUT,
	CTR_SIP_REQUESTS,
	CTR_SIP_RESPONSES_OUT,
	CTR_SIP_RESPONSES_IN,
	CTR_SIP_KEEPALIVES,
	CTR_SIP_400,
	CTR_REGISTER_OK,
	CTR_REGISTER_CHALLENGED,
	CTR_REGISTER_DENIED,
	CTR_REGISTER_RATELIMITED,
	CTR_DROP_OUTQ,			/* slow reader past outq_max */
	CTR_DROP_TOO_BIG,		/* SIP message over max_message */
	CTR_DROP_FRAMING,		/* framing lost */
	CTR_DROP_IDLE,
	CTR_DROP_HANDSHAKE_TIMEOUT,
	CTR_DROP_IDENTITY,		/* From mismatch after login */
	CTR_DIALOGS_OPEN,
	CTR_DIALOGS_EXPIRED,
	CTR_XCCOS_COMMANDS,		/* commands and posts received */
	CTR_XCCOS_ERRORS,		/* answered with a non-200 code */
	CTR_XCCOS_MALFORMED,		/* did not parse */
	CTR_POSTS_IN,			/* posts accepted from local clients */
	CTR_POSTS_REFUSED,
	CTR_POSTS_SEQUENCED,		/* posts this lcore sequenced as home */
	CTR_DELIVERIES,			/* post INFOs written to local members */
	CTR_NOTICES,			/* ntc:* written to local members */
	CTR_JOINS,
	CTR_PARTS,
	CTR_RING_FULL,			/* a burst did not fit a ring; kept staged */
	CTR_STORAGE_FAILED,		/* the storage thread reported an error */
	CTR_POSTS_COMPLIANCE_CAP,	/* refused: the compliance log is at its cap */
	/* SIP requests received, by method (order of enum sip_method) */
	CTR_SIP_REQ_UNKNOWN,
	CTR_SIP_REQ_INVITE,
	CTR_SIP_REQ_ACK,
	CTR_SIP_REQ_BYE,
	CTR_SIP_REQ_CANCEL,
	CTR_SIP_REQ_OPTIONS,
	CTR_SIP_REQ_REGISTER,
	CTR_SIP_REQ_INFO,
	CTR_SIP_REQ_UPDATE,
	CTR_SIP_REQ_SUBSCRIBE,
	CTR_SIP_REQ_NOTIFY,
	CTR_SIP_REQ_MESSAGE,
	CTR_SIP_REQ_PRACK,
	CTR_SIP_REQ_REFER,
	CTR_SIP_REQ_PUBLISH,
	/* SIP responses sent, by class */
	CTR_SIP_RESP_1XX,
	CTR_SIP_RESP_2XX,
	CTR_SIP_RESP_3XX,
	CTR_SIP_RESP_4XX,
	CTR_SIP_RESP_5XX,
	CTR_SIP_RESP_6XX,
	/* XCCOS commands received, by id (order of xcmd_names in channel.c) */
	CTR_XCMD_REQURI,
	CTR_XCMD_GETSERVERINFO,
	CTR_XCMD_CHANSRCH,
	CTR_XCMD_JOIN,
	CTR_XCMD_BJOIN,
	CTR_XCMD_PART,
	CTR_XCMD_BCCONTEXT,
	CTR_XCMD_GETINV,
	CTR_XCMD_GETPREF,
	CTR_XCMD_SETPREF,
	CTR_XCMD_NODESPERMCREATECHILD,
	CTR_XCMD_GETFUTOK,
	CTR_XCMD_GETFDTOK,
	CTR_XCMD_GRPCHAT,
	CTR_XCMD_OTHER,
	/* XCCOS replies sent, by result code */
	CTR_XRES_200,
	CTR_XRES_400,
	CTR_XRES_403,
	CTR_XRES_404,
	CTR_XRES_413,
	CTR_XRES_500,
	CTR_XRES_501,
	CTR_XRES_503,
	CTR_XRES_OTHER,
	CTR__COUNT,
};

/* Names for the control socket and logs, indexed by enum ctr_id. */
extern const char *const ctr_names[CTR__COUNT];

enum conn_state {
	CONN_HANDSHAKE,		/* TCP up, TLS not yet */
	CONN_OPEN,
	CONN_CLOSING,		/* flush what is queued, then close */
	CONN_DEAD,		/* freed at the end of the loop turn */
};

#define CONN_AOR_MAX	128
#define CONN_TXN_CACHE	8
#define CONN_NONCES	4

/* A recently answered request, to absorb retransmissions. */
struct txn_entry {
	uint64_t key;
	uint16_t status;
};

struct nonce_seen {
	uint64_t hash;		/* of the nonce string */
	uint32_t nc;		/* highest nc accepted; 0 = nonce used without qop */
};

struct conn {
	struct conn *next, *prev;	/* lcore's list of live connections */
	struct conn *dirty_next;	/* lcore's list of connections with output */
	struct lcore_ctx *lc;
	uint64_t id;			/* unique per process; nonces are bound to it */
	int fd;				/* kernel backend: the socket */
	void *io_handle;		/* dpdk backend: its connection object */
	enum conn_state state;
	bool dirty;
	bool want_out;			/* EPOLLOUT armed */
	bool rd_eof;			/* the peer closed its side */
	struct tlsterm *tls;

	char *in;			/* plaintext not yet framed; NULL when empty */
	uint32_t in_len, in_cap;

	uint64_t created_s, last_io_s;
	struct sockaddr_storage peer;
	char peer_str[48];

	/* SIP state */
	char aor[CONN_AOR_MAX];		/* authenticated identity; "" before REGISTER */
	uint64_t registered_until_s;
	struct txn_entry txn[CONN_TXN_CACHE];
	uint8_t txn_next;
	struct nonce_seen nonces[CONN_NONCES];
	uint8_t nonce_next;
	struct dialog *dialogs;		/* list, owned */
	uint32_t ndialogs;
	uint32_t out_cseq;		/* CSeq of requests we send */

	/* Results still on their way back from other lcores or the storage
	 * thread point at this connection: it is freed when the last one
	 * arrived (conn_release), even if it closed before. */
	uint32_t holds;
	bool reaped;			/* closed and unlinked; only holds keep it */
};

/* One per lcore. Other threads may touch only `remote`, atomically, and read
 * `ctr` relaxed. */
struct lcore_ctx {
	alignas(64) struct engine *e;
	uint32_t idx;
	int epfd;
	int listen_fd;			/* -1 once draining */
	struct conn *conns;
	uint32_t nconns;
	uint32_t io_streams;		/* connections the backend carries for another
					 * thread (dpdk: Web relays); a draining lcore
					 * waits for them too */
	struct conn *dirty;
	uint64_t conn_seq;
	uint64_t now_s;			/* CLOCK_MONOTONIC seconds, refreshed each turn */
	uint64_t now_real_ms;		/* CLOCK_REALTIME ms */
	uint64_t next_sweep_s;
	bool draining;
	uint64_t drain_deadline_s;

	struct tlsterm_ctx *tls;	/* this lcore's reference */
	struct htdigest *users;		/* this lcore's reference */
	struct roomtab *rooms;		/* this lcore's reference */
	struct fanout_lc *fo;		/* rings, room state (fanout.c) */
	uint64_t dialog_seq;
	struct objcache conn_cache;	/* struct conn */
	struct objcache dialog_cache;	/* struct dialog */
	int wake_fd;			/* eventfd: other threads wake a sleeping lcore */
	void *io_lcore;			/* the backend's per-lcore state */

	_Atomic uint64_t ctr[CTR__COUNT];

	alignas(64) struct {
		_Atomic(struct tlsterm_ctx *) tls;	/* pending reload, or NULL */
		_Atomic(struct htdigest *) users;
		_Atomic(struct roomtab *) rooms;
		_Atomic bool sleeping;		/* in (or about to enter) the poller */
		_Atomic(struct engine_call *) call;	/* engine_lcore_call, or NULL */
		_Atomic bool stopped;		/* the loop returned */
		_Atomic bool listening;		/* wanted state of the listener */
	} remote;
};

/* Shared by all lcores; read-only after engine_create() except the atomics. */
struct engine {
	struct engine_conf conf;
	uint8_t nonce_key[DIGEST_KEY_LEN];
	struct ratelimit *rl_addr;	/* failed logins per source address */
	struct ratelimit *rl_user;	/* failed logins per user */
	_Atomic bool drain;
	pthread_mutex_t call_lock;	/* one engine_lcore_call at a time */
	_Atomic uint64_t compliance_floor;	/* next seq to export; 0: unknown */
	struct db *db;			/* borrowed from boot code */
	struct commit *commit;		/* the storage thread, owned */
	struct fanout_shared *fo;	/* room presence counts (fanout.c) */
	struct ftoken_store *ftokens;	/* file tokens for the Web service, or NULL */
	const struct io_ops *io;	/* the I/O backend */
	void *io_shared;		/* the backend's engine-wide state (dpdk: port) */
	engine_adopt_fn *web_adopt;	/* dpdk: where Web connections go (engine_set_web) */
	void *web_adopt_arg;
	struct lcore_ctx *lcores[];	/* conf.nlcores */
};

static inline void
ctr_inc(struct lcore_ctx *lc, enum ctr_id id)
{
	/* Single writer (the owning lcore): a relaxed load+store, not an RMW. */
	atomic_store_explicit(&lc->ctr[id],
			      atomic_load_explicit(&lc->ctr[id], memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* A SIP response with <status> left: the total and its class. */
static inline void
ctr_sip_response(struct lcore_ctx *lc, int status)
{
	ctr_inc(lc, CTR_SIP_RESPONSES_OUT);
	if (status >= 100 && status < 700)
		ctr_inc(lc, (enum ctr_id)(CTR_SIP_RESP_1XX + status / 100 - 1));
}

static inline void
ctr_add(struct lcore_ctx *lc, enum ctr_id id, uint64_t n)
{
	atomic_store_explicit(&lc->ctr[id],
			      atomic_load_explicit(&lc->ctr[id], memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* A function an lcore runs for another thread (engine_lcore_call). */
struct engine_call {
	engine_call_fn	*fn;
	void		*arg;
	_Atomic bool	done;
};

/* Wakes <lc> if it sleeps in its poller. Any thread. */
void lcore_wake(struct lcore_ctx *lc);

/* conn.c: connection life cycle, TLS glue and output. Owning lcore only. */

/* A new accepted connection (fd already non-blocking). NULL when over the
 * limit or out of memory (the caller closes <fd>). */
struct conn *conn_new(struct lcore_ctx *lc, int fd, const struct sockaddr_storage *peer);
/* Ciphertext arrived from the wire. */
void conn_input(struct conn *c, const void *buf, size_t len);
/* Queues plaintext for the peer (one SIP message). Drops the connection when
 * its output would pass outq_max. 0 or -1 (connection is closing). */
int conn_send(struct conn *c, const void *buf, size_t len);
/* Marks the connection for closing: with <flush>, after its queued output
 * and a close_notify went out (bounded by the drain deadline); otherwise at
 * once. Safe to call from any handler; the loop frees it later. */
void conn_close(struct conn *c, bool flush);
/* Schedules a flush of <c>'s output at the end of the loop turn. */
void conn_kick(struct conn *c);
/* Flushes dirty connections and frees those marked CONN_DEAD. */
void conn_reap(struct lcore_ctx *lc);
/* Keeps <c>'s memory until conn_release (see struct conn: holds). */
void conn_hold(struct conn *c);
void conn_release(struct conn *c);
/* True while <c> can still take output. */
bool conn_usable(const struct conn *c);
/* Timers: handshake and idle timeouts, dialog expiry. Called once a second. */
void conn_sweep(struct lcore_ctx *lc);

/* An I/O backend: byte streams per connection, from kernel sockets
 * (io/kernel.c) or DPDK ports with the user-space TCP (io/dpdk.c). The
 * engine picks one at boot (engine_conf.io_backend); every lcore uses it.
 *   lcore_init   boot thread: this lcore's listener, poller, wake-up fd
 *   listen_open  (re)opens the listener (0 or -errno with <err>)
 *   listen_close stops accepting
 *   poll         waits up to <timeout_ms> for events and handles them:
 *                accepted connections (conn_new), ciphertext (conn_input),
 *                writability (conn_kick), the wake fd
 *   flush        puts a connection's pending ciphertext on the wire; 0, or
 *                -1 when the connection failed (the caller closes it)
 *   close        releases the connection's transport */
struct io_ops {
	const char *name;
	int (*lcore_init)(struct lcore_ctx *lc, char *err, size_t errlen);
	void (*lcore_fini)(struct lcore_ctx *lc);
	int (*listen_open)(struct lcore_ctx *lc, char *err, size_t errlen);
	void (*listen_close)(struct lcore_ctx *lc);
	void (*poll)(struct lcore_ctx *lc, int timeout_ms);
	int (*flush)(struct conn *c);
	void (*close)(struct conn *c);
};

extern const struct io_ops io_kernel_ops;
/* The backend called <name> ("kernel", "dpdk"), or NULL. */
const struct io_ops *io_backend_find(const char *name);

static inline int io_flush(struct conn *c) { return c->lc->e->io->flush(c); }
static inline void io_close(struct conn *c) { c->lc->e->io->close(c); }
static inline int io_lcore_init(struct lcore_ctx *lc, char *err, size_t errlen)
{ return lc->e->io->lcore_init(lc, err, errlen); }
static inline void io_lcore_fini(struct lcore_ctx *lc) { lc->e->io->lcore_fini(lc); }
static inline int io_listen_open(struct lcore_ctx *lc, char *err, size_t errlen)
{ return lc->e->io->listen_open(lc, err, errlen); }
static inline void io_listen_close(struct lcore_ctx *lc) { lc->e->io->listen_close(lc); }
static inline void io_poll(struct lcore_ctx *lc, int timeout_ms) { lc->e->io->poll(lc, timeout_ms); }

/* sipconn.c: plaintext SIP on a connection. */
/* Frames and handles every complete message in c->in. */
void sipconn_input(struct conn *c);
/* The same over <buf> instead, for a connection with nothing in c->in:
 * handles the complete messages at its head (parsed in place, so <buf> is
 * modified) and returns the bytes they took; the caller keeps the rest. */
size_t sipconn_input_buf(struct conn *c, char *buf, size_t len);
/* Sends a response to <req> with extra header lines <hdrs> (each ending in
 * CRLF, may be NULL) and an optional body. */
struct sipmsg;
void sipconn_reply(struct conn *c, const struct sipmsg *req, int status, const char *reason,
		   const char *hdrs, const char *ctype, const void *body, size_t blen);
/* The local tag we put on responses that create no dialog (To tag). */
void sipconn_tag(const struct conn *c, const struct sipmsg *req, char *out, size_t cap);

/* registrar.c */
void registrar_register(struct conn *c, const struct sipmsg *m);
void registrar_subscribe(struct conn *c, const struct sipmsg *m);

/* dialog.c: INVITE dialogs (Lookup and Channel services attach here). */
void dialog_request(struct conn *c, const struct sipmsg *m);
void dialog_response(struct conn *c, const struct sipmsg *m);
/* Frees every dialog of <c> (connection loss counts as leaving). */
void dialog_conn_closed(struct conn *c);
/* Drops dialogs whose session expired without refresh. */
void dialog_sweep(struct conn *c, uint64_t now_s);

#endif
