/* The engine as the services above it see it (session/, chat/): an lcore
 * they run on, its connections, sending and closing, holds, counters, and
 * the two hook tables through which the engine calls them. The engine's own
 * state (struct engine, the rest of struct lcore_ctx, the I/O backends) is
 * in engine_int.h, for dataplane/engine/ only. Boot and control code use
 * engine.h.
 *
 * Ownership: an lcore's state belongs to its lcore. Other threads touch only
 * what engine.h offers them (atomics, relaxed counter reads). A struct conn
 * belongs to the lcore that accepted it, for its whole life. Everything here
 * is for the owning lcore unless said otherwise. */
#ifndef PARLEY_LCORE_H
#define PARLEY_LCORE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dataplane/base/objcache.h"
#include "dataplane/engine/ctr.h"
#include "dataplane/engine/engine.h"

struct tlsterm;
struct htdigest;
struct dialog;
struct commit_producer;
struct db;
struct ftoken_store;

/* ---- connections ------------------------------------------------------ */

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

/* The fields down to `in_cap` are the engine's: services read `next`, `lc`,
 * `id`, `state` and the peer, and change the state only through
 * conn_close(). The SIP state belongs to the session layer. */
struct conn {
	struct conn *next, *prev;	/* lcore's list of live connections */
	struct conn *dirty_next;	/* lcore's list of connections with output */
	struct lcore_ctx *lc;
	uint64_t id;			/* unique per process; nonces are bound to it */
	int fd;				/* kernel backend: the socket */
	void *io_handle;		/* dpdk backend: its connection object;
					 * io_uring: the send in flight */
	enum conn_state state;
	bool dirty;
	bool want_out;			/* EPOLLOUT armed */
	bool rd_eof;			/* the peer closed its side */
	bool rx_armed;			/* io_uring: a multishot receive is armed */
	bool tx_busy;			/* io_uring: a send holds output (io_handle) */
	bool io_closing;		/* io_uring: closed, operations still in the kernel */
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

/* Queues plaintext for the peer (one SIP message). Drops the connection when
 * its output would pass outq_max. 0 or -1 (connection is closing). */
int conn_send(struct conn *c, const void *buf, size_t len);
/* Marks the connection for closing: with <flush>, after its queued output
 * and a close_notify went out (bounded by the drain deadline); otherwise at
 * once. Safe to call from any handler; the loop frees it later. */
void conn_close(struct conn *c, bool flush);
/* Schedules a flush of <c>'s output at the end of the loop turn. */
void conn_kick(struct conn *c);
/* Flushes dirty connections and frees those marked CONN_DEAD (the loop does
 * this every turn; a service's quiesce hook, playing a stopped lcore, too). */
void conn_reap(struct lcore_ctx *lc);
/* Keeps <c>'s memory until conn_release (see struct conn: holds). */
void conn_hold(struct conn *c);
void conn_release(struct conn *c);
/* True while <c> can still take output. */
bool conn_usable(const struct conn *c);

/* ---- the lcore -------------------------------------------------------- */

/* What services may see of an lcore: the first member of struct lcore_ctx
 * (engine_int.h), read through the lcore_*() helpers below. The engine
 * writes all of it but `svc` and the protocol's object cache and sequence;
 * other threads read only `ctr`, relaxed. */
struct lcore_pub {
	alignas(64) struct engine *e;
	const struct engine_conf *conf;	/* &e->conf */
	uint32_t idx;
	uint64_t now_s;			/* CLOCK_MONOTONIC seconds, refreshed each turn */
	uint64_t now_real_ms;		/* CLOCK_REALTIME ms */
	struct conn *conns;		/* live connections, newest first */
	struct htdigest *users;		/* this lcore's reference to the user table */
	void *snap;			/* this lcore's reference to the service's snapshot */
	void *svc;			/* the service's per-lcore state */
	struct objcache proto_cache;	/* the protocol's per-connection objects */
	uint64_t proto_seq;		/* for the protocol's ids */
	_Atomic uint64_t ctr[CTR_MAX];
};

static inline struct lcore_pub *
lcore_pub(struct lcore_ctx *lc)
{
	return (struct lcore_pub *)(void *)lc;
}

static inline const struct lcore_pub *
lcore_cpub(const struct lcore_ctx *lc)
{
	return (const struct lcore_pub *)(const void *)lc;
}

/* The engine, for engine.h functions (it stays opaque). */
static inline struct engine *
lcore_engine(const struct lcore_ctx *lc)
{
	return lcore_cpub(lc)->e;
}

static inline const struct engine_conf *
lcore_conf(const struct lcore_ctx *lc)
{
	return lcore_cpub(lc)->conf;
}

/* 0 .. nlcores-1 */
static inline uint32_t
lcore_idx(const struct lcore_ctx *lc)
{
	return lcore_cpub(lc)->idx;
}

/* Monotonic seconds and real-time milliseconds at the start of this turn. */
static inline uint64_t
lcore_now_s(const struct lcore_ctx *lc)
{
	return lcore_cpub(lc)->now_s;
}

static inline uint64_t
lcore_now_real_ms(const struct lcore_ctx *lc)
{
	return lcore_cpub(lc)->now_real_ms;
}

/* The first of this lcore's live connections (then c->next). */
static inline struct conn *
lcore_conns(const struct lcore_ctx *lc)
{
	return lcore_cpub(lc)->conns;
}

/* The user table, valid for this loop turn. */
static inline struct htdigest *
lcore_users(const struct lcore_ctx *lc)
{
	return lcore_cpub(lc)->users;
}

/* The service's read-mostly snapshot (engine_snapshot_publish), valid for
 * this loop turn. */
static inline void *
lcore_snapshot(const struct lcore_ctx *lc)
{
	return lcore_cpub(lc)->snap;
}

/* The service's own per-lcore state, set by its init hook. */
static inline void *
lcore_svc(const struct lcore_ctx *lc)
{
	return lcore_cpub(lc)->svc;
}

static inline void
lcore_set_svc(struct lcore_ctx *lc, void *state)
{
	lcore_pub(lc)->svc = state;
}

/* The cache of the protocol's per-connection objects (engine_proto.obj_size
 * each), and the next of its per-lcore sequence numbers (1, 2, ...). */
static inline struct objcache *
lcore_proto_cache(struct lcore_ctx *lc)
{
	return &lcore_pub(lc)->proto_cache;
}

static inline uint64_t
lcore_proto_seq_next(struct lcore_ctx *lc)
{
	return ++lcore_pub(lc)->proto_seq;
}

/* The database (borrowed from boot code), the file token store (NULL: no Web
 * service), this lcore's storage producer. */
struct db *lcore_db(const struct lcore_ctx *lc);
struct ftoken_store *lcore_ftokens(const struct lcore_ctx *lc);
struct commit_producer *lcore_commit_producer(const struct lcore_ctx *lc);
/* Draining (engine_drain), and whether the listener is open. */
bool lcore_draining(const struct lcore_ctx *lc);
bool lcore_listening(const struct lcore_ctx *lc);
/* Takes what engine_reload() and engine_snapshot_publish() left for this
 * lcore now, as the loop would at its next turn (for engine_lcore_call). */
void lcore_take_pending(struct lcore_ctx *lc);

/* Any thread: lcore <idx> of <e> (0 .. engine_nlcores-1), and the state the
 * protocol and the service keep for the whole engine (set by their init
 * hooks). */
struct lcore_ctx *engine_lcore(const struct engine *e, uint32_t idx);
void *engine_proto_state(const struct engine *e);
void engine_set_proto_state(struct engine *e, void *state);
void *engine_svc(const struct engine *e);
void engine_set_svc(struct engine *e, void *state);

/* Any thread: wakes <lc> if it sleeps in its poller. */
void lcore_wake(struct lcore_ctx *lc);

/* ---- counters --------------------------------------------------------- */

/* <id> from any layer's list (ctr.h). Owning lcore only. */
static inline void
ctr_inc(struct lcore_ctx *lc, unsigned int id)
{
	_Atomic uint64_t *p = &lcore_pub(lc)->ctr[id];

	/* Single writer (the owning lcore): a relaxed load+store, not an RMW. */
	atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static inline void
ctr_add(struct lcore_ctx *lc, unsigned int id, uint64_t n)
{
	_Atomic uint64_t *p = &lcore_pub(lc)->ctr[id];

	atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* ---- the hooks of the layers above ------------------------------------ */

/* The protocol on a connection's plaintext byte stream (session/: SIP).
 *   init, fini   boot thread, in engine_create before the lcores exist and
 *                at the end of engine_destroy: its engine-wide state
 *                (engine_set_proto_state); init returns 0 or -errno with a
 *                message in <err>; fini also runs after a failed init, or
 *                none. Either may be NULL
 *   input        frames and handles every complete message in c->in
 *   input_buf    the same over <buf> instead, for a connection with nothing
 *                in c->in: handles the complete messages at its head (it may
 *                modify <buf>) and returns the bytes they took; the engine
 *                keeps the rest in c->in
 *   conn_closed  the connection closes (called again on reaping: must be
 *                idempotent)
 *   sweep        once a second per connection, with the lcore's clock
 *   obj_size     size of its per-connection objects (lcore_proto_cache);
 *                the cache holds up to objs_per_conn * max_conns of them
 *   ctrs         its counters */
struct engine_proto {
	int (*init)(struct engine *e, char *err, size_t errlen);
	void (*fini)(struct engine *e);
	void (*input)(struct conn *c);
	size_t (*input_buf)(struct conn *c, char *buf, size_t len);
	void (*conn_closed)(struct conn *c);
	void (*sweep)(struct conn *c, uint64_t now_s);
	size_t obj_size;
	uint32_t objs_per_conn;
	const struct ctr_table *ctrs;
};

/* The service on top (chat/). Each hook may be NULL.
 *   init      boot thread, end of engine_create: its engine-wide and
 *             per-lcore state (engine_set_svc, lcore_set_svc); 0 or -errno
 *             with a message in <err>
 *   quiesce   boot thread, engine_destroy after the lcores returned: play
 *             each lcore until nothing is in flight, up to <timeout_ms>
 *   fini      boot thread: frees what init made (also after a failed init)
 *   poll      each loop turn after I/O: work from other lcores and storage
 *   flush     each loop turn before the connections flush
 *   idle      nothing waits (no ring, completion or staged message): the
 *             lcore may sleep in its poller
 *   settled   idle, and nothing in flight either: a draining lcore may stop
 *   snap_get, snap_put   a reference to the read-mostly snapshot the engine
 *             hands each lcore (engine_create, engine_snapshot_publish);
 *             snap_put accepts NULL
 *   ctrs      its counters */
struct engine_service {
	int (*init)(struct engine *e, char *err, size_t errlen);
	void (*quiesce)(struct engine *e, int timeout_ms);
	void (*fini)(struct engine *e);
	unsigned (*poll)(struct lcore_ctx *lc);
	void (*flush)(struct lcore_ctx *lc);
	bool (*idle)(struct lcore_ctx *lc);
	bool (*settled)(struct lcore_ctx *lc);
	void (*snap_get)(void *snap);
	void (*snap_put)(void *snap);
	const struct ctr_table *ctrs;
};

/* Boot, before engine_create: the protocol (required) and the service
 * (optional) every engine created afterwards uses. The tables must outlive
 * those engines. */
void engine_register_proto(const struct engine_proto *p);
void engine_register_service(const struct engine_service *s);

#endif
