/* The engine's own state, for dataplane/engine/ and io/ only: struct engine,
 * struct lcore_ctx past what services see (lcore.h: struct lcore_pub), the
 * I/O backends, and the connection calls only the engine makes.
 *
 * Ownership: a struct lcore_ctx belongs to its lcore. Other threads touch
 * only `remote` (atomics) and the counters (relaxed reads). */
#ifndef PARLEY_ENGINE_INT_H
#define PARLEY_ENGINE_INT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <pthread.h>

#include "dataplane/engine/engine.h"
#include "dataplane/engine/lcore.h"

struct tlsterm_ctx;
struct htdigest;
struct db;
struct commit;

/* One per lcore. Other threads may touch only `remote`, atomically, and read
 * `pub.ctr` relaxed. */
struct lcore_ctx {
	struct lcore_pub pub;		/* first: services cast to it (lcore.h) */
	struct engine *e;		/* == pub.e */
	int epfd;
	int listen_fd;			/* -1 once draining */
	uint32_t nconns;
	uint32_t io_streams;		/* connections the backend carries for another
					 * thread (dpdk: Web relays); a draining lcore
					 * waits for them too */
	struct conn *dirty;
	uint64_t conn_seq;
	uint64_t next_sweep_s;
	bool draining;
	uint64_t drain_deadline_s;

	struct tlsterm_ctx *tls;	/* this lcore's reference */
	struct objcache conn_cache;	/* struct conn */
	int wake_fd;			/* eventfd: other threads wake a sleeping lcore */
	bool io_nap;			/* epoll: events come close; nap, then take them */
	void *io_lcore;			/* the backend's per-lcore state */

	alignas(64) struct {
		_Atomic(struct tlsterm_ctx *) tls;	/* pending reload, or NULL */
		_Atomic(struct htdigest *) users;
		_Atomic(void *) snap;		/* pending snapshot, or NULL */
		_Atomic bool sleeping;		/* in (or about to enter) the poller */
		_Atomic(struct engine_call *) call;	/* engine_lcore_call, or NULL */
		_Atomic bool stopped;		/* the loop returned */
		_Atomic bool listening;		/* wanted state of the listener */
	} remote;
};

/* Shared by all lcores; read-only after engine_create() except the atomics. */
struct engine {
	struct engine_conf conf;
	const struct engine_proto *proto;	/* the registered protocol */
	void *proto_state;		/* the protocol's engine-wide state */
	const struct engine_service *svc;	/* the registered service, or a no-op one */
	void *svc_state;		/* the service's engine-wide state */
	bool svc_up;			/* its init hook succeeded */
	_Atomic bool drain;
	pthread_mutex_t call_lock;	/* one engine_lcore_call at a time */
	_Atomic uint64_t compliance_floor;	/* next seq to export; 0: unknown */
	struct db *db;			/* borrowed from boot code */
	struct commit *commit;		/* the storage thread, owned */
	struct ftoken_store *ftokens;	/* file tokens for the Web service, or NULL */
	const struct io_ops *io;	/* the I/O backend */
	void *io_shared;		/* the backend's engine-wide state (dpdk: port) */
	engine_adopt_fn *web_adopt;	/* dpdk: where Web connections go (engine_set_web) */
	void *web_adopt_arg;
	struct lcore_ctx *lcores[];	/* conf.nlcores */
};

/* A function an lcore runs for another thread (engine_lcore_call). */
struct engine_call {
	engine_call_fn	*fn;
	void		*arg;
	_Atomic bool	done;
};

/* conn.c: the connection calls only the engine makes. Owning lcore only. */

/* A new accepted connection (fd already non-blocking). NULL when over the
 * limit or out of memory (the caller closes <fd>). */
struct conn *conn_new(struct lcore_ctx *lc, int fd, const struct sockaddr_storage *peer);
/* Ciphertext arrived from the wire. */
void conn_input(struct conn *c, const void *buf, size_t len);
/* Timers: handshake and idle timeouts, the protocol's sweep. Called once a
 * second. */
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

#endif
