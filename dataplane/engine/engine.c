/* The engine: one event loop per lcore, and what boot code needs to create,
 * reload and drain it.
 *
 * Each lcore owns a listener (SO_REUSEPORT: the kernel spreads connections),
 * its connections and its counters. Reload hands each lcore a new TLS context
 * or user table through an atomic slot it polls once per loop turn; the lcore
 * swaps its own reference, so no lcore ever sees an object freed under it.
 *
 * The layers above plug in through the hook tables they register before
 * engine_create (lcore.h): the protocol on every connection (session/: SIP)
 * and the service every loop turn runs (chat/: fan-out), whose read-mostly
 * snapshot (the room table) reaches the lcores like a reload. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/engine/engine_int.h"
#include "dataplane/engine/io/iouring.h"
#include "dataplane/tls/tlsterm.h"
#include "storage/commit.h"
#include "storage/htdigest.h"

static const char *const engine_ctr_names[] = { ENGINE_CTRS(CTR_NAME) };

const struct ctr_table engine_ctr_table = {
	.first = 0,
	.n = ENGINE_CTR__END,
	.names = engine_ctr_names,
};

_Static_assert(sizeof(engine_ctr_names) / sizeof(engine_ctr_names[0]) == ENGINE_CTR__END,
	       "one name per engine counter");

static const struct engine_proto *reg_proto;
static const struct engine_service *reg_service;
static const struct engine_service no_service;

void
engine_register_proto(const struct engine_proto *p)
{
	reg_proto = p;
}

void
engine_register_service(const struct engine_service *s)
{
	reg_service = s;
}

/* The hooks of the service; a missing one does nothing, and the lcore is
 * idle and settled as far as the service goes. */
static bool
svc_idle(struct lcore_ctx *lc)
{
	return lc->e->svc->idle == NULL || lc->e->svc->idle(lc);
}

static bool
svc_settled(struct lcore_ctx *lc)
{
	return lc->e->svc->settled == NULL || lc->e->svc->settled(lc);
}

static void
snap_get(const struct engine *e, void *snap)
{
	if (snap != NULL && e->svc->snap_get != NULL)
		e->svc->snap_get(snap);
}

static void
snap_put(const struct engine *e, void *snap)
{
	if (snap != NULL && e->svc->snap_put != NULL)
		e->svc->snap_put(snap);
}

/* A storage completion for producer <producer> (commit.h): lcore
 * <producer> takes it in its next turn, so wake it. */
static void
commit_notify(void *arg, unsigned producer)
{
	struct engine *e = arg;

	if (producer < e->conf.nlcores)
		lcore_wake(e->lcores[producer]);
}

static void
clock_refresh(struct lcore_ctx *lc)
{
	lc->pub.now_s = clock_mono_s_coarse();
	lc->pub.now_real_ms = clock_real_ms_coarse();
}

struct engine *
engine_create(const struct engine_conf *conf, struct tlsterm_ctx *tls, struct htdigest *users,
	      struct db *db, void *snap, char *err, size_t errlen)
{
	struct commit_config cc = {
		.nproducers = conf->nlcores + ENGINE_EXTRA_PRODUCERS,
		.depth = conf->commit_depth,
		.durability_unsafe_no_fsync = conf->durability_unsafe_no_fsync,
		.sync_interval_us = conf->sync_interval_us,
		.notify = commit_notify,
	};
	struct engine *e;
	uint32_t i;
	int rc;

	e = calloc(1, sizeof(*e) + conf->nlcores * sizeof(e->lcores[0]));
	if (e == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->conf = *conf;
	e->db = db;
	e->svc = reg_service != NULL ? reg_service : &no_service;
	e->proto = reg_proto;
	if (e->proto == NULL) {
		snprintf(err, errlen, "no protocol registered (engine_register_proto)");
		free(e);
		return NULL;
	}
	e->io = io_backend_find(conf->io_backend[0] ? conf->io_backend : "kernel");
	if (e->io == NULL) {
		snprintf(err, errlen, "[io] backend %s: not built into this parleyd", conf->io_backend);
		free(e);
		return NULL;
	}
	if (e->io == &io_kernel_ops && strcmp(conf->kernel_io, "io_uring") == 0) {
		char why[200];

		if (iouring_usable(why, sizeof(why)) == 0) {
			e->io = &io_iouring_ops;
			LOG(NOTICE, IO, "[io] kernel_io = io_uring");
		} else {
			LOG(WARNING, IO, "[io] kernel_io = io_uring: %s; using epoll", why);
		}
	}
	pthread_mutex_init(&e->call_lock, NULL);
	if (e->proto->init != NULL && e->proto->init(e, err, errlen) != 0)
		goto out_free;
	for (i = 0; i < conf->nlcores; i++) {
		struct lcore_ctx *lc = aligned_alloc(64, (sizeof(*lc) + 63) & ~(size_t)63);

		if (lc == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out_free;
		}
		memset(lc, 0, sizeof(*lc));
		lc->e = e;
		lc->pub.e = e;
		lc->pub.conf = &e->conf;
		lc->pub.idx = i;
		lc->epfd = -1;
		lc->listen_fd = -1;
		tlsterm_ctx_get(tls);
		lc->tls = tls;
		htdigest_get(users);
		lc->pub.users = users;
		snap_get(e, snap);
		lc->pub.snap = snap;
		lc->wake_fd = -1;
		objcache_init(&lc->conn_cache, sizeof(struct conn), conf->max_conns);
		objcache_init(&lc->pub.proto_cache, e->proto->obj_size,
			      e->proto->objs_per_conn * conf->max_conns);
		atomic_init(&lc->remote.listening, true);
		clock_refresh(lc);
		e->lcores[i] = lc;
		if (io_lcore_init(lc, err, errlen) != 0)
			goto out_free;
	}
	cc.notify_arg = e;
	e->commit = commit_create(db, &cc, &rc);
	if (e->commit == NULL) {
		snprintf(err, errlen, "storage thread: %s", strerror(-rc));
		goto out_free;
	}
	if (e->svc->init != NULL && e->svc->init(e, err, errlen) != 0)
		goto out_free;
	e->svc_up = true;
	return e;

out_free:
	engine_destroy(e);
	return NULL;
}

void
engine_destroy(struct engine *e)
{
	if (e == NULL)
		return;
	/* What the lcores left in flight is finished, and whatever they
	 * submitted is written, before the rings go. */
	if (e->svc_up && e->svc->quiesce != NULL)
		e->svc->quiesce(e, 2000);
	if (e->commit != NULL)
		commit_stop(e->commit);
	if (e->svc->fini != NULL)
		e->svc->fini(e);
	commit_destroy(e->commit);
	for (uint32_t i = 0; i < e->conf.nlcores; i++) {
		struct lcore_ctx *lc = e->lcores[i];

		if (lc == NULL)
			continue;
		io_lcore_fini(lc);
		tlsterm_ctx_put(lc->tls);
		htdigest_put(lc->pub.users);
		tlsterm_ctx_put(atomic_exchange(&lc->remote.tls, NULL));
		htdigest_put(atomic_exchange(&lc->remote.users, NULL));
		snap_put(e, lc->pub.snap);
		snap_put(e, atomic_exchange(&lc->remote.snap, NULL));
		objcache_fini(&lc->conn_cache);
		objcache_fini(&lc->pub.proto_cache);
		free(lc);
	}
	if (e->proto->fini != NULL)
		e->proto->fini(e);
	pthread_mutex_destroy(&e->call_lock);
	free(e);
}

void
engine_reload(struct engine *e, struct tlsterm_ctx *tls, struct htdigest *users)
{
	for (uint32_t i = 0; i < e->conf.nlcores; i++) {
		struct lcore_ctx *lc = e->lcores[i];

		if (tls != NULL) {
			tlsterm_ctx_get(tls);
			/* An lcore that has not yet taken the previous one drops it here. */
			tlsterm_ctx_put(atomic_exchange(&lc->remote.tls, tls));
		}
		if (users != NULL) {
			htdigest_get(users);
			htdigest_put(atomic_exchange(&lc->remote.users, users));
		}
	}
}

void
engine_snapshot_publish(struct engine *e, void *snap)
{
	for (uint32_t i = 0; i < e->conf.nlcores; i++) {
		snap_get(e, snap);
		snap_put(e, atomic_exchange(&e->lcores[i]->remote.snap, snap));
	}
}

void
lcore_wake(struct lcore_ctx *lc)
{
	static const uint64_t one = 1;

	/* Pairs with the fence in lcore_sleep_begin: either the sleeper sees
	 * our work, or we see it sleeping. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&lc->remote.sleeping, memory_order_relaxed) &&
	    write(lc->wake_fd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		LOG(ERR, LCORE, "lcore %u: wake: %s", lc->pub.idx, strerror(errno));
}

void
engine_drain(struct engine *e)
{
	atomic_store(&e->drain, true);
}

uint64_t
engine_counter(const struct engine *e, unsigned int id)
{
	uint64_t sum = 0;

	if (id >= CTR_MAX)
		return 0;
	for (uint32_t i = 0; i < e->conf.nlcores; i++)
		sum += atomic_load_explicit(&e->lcores[i]->pub.ctr[id], memory_order_relaxed);
	return sum;
}

uint32_t
engine_nlcores(const struct engine *e)
{
	return e->conf.nlcores;
}

const struct engine_conf *
engine_conf(const struct engine *e)
{
	return &e->conf;
}

uint64_t
engine_lcore_counter(const struct engine *e, uint32_t idx, unsigned int id)
{
	if (idx >= e->conf.nlcores || id >= CTR_MAX)
		return 0;
	return atomic_load_explicit(&e->lcores[idx]->pub.ctr[id], memory_order_relaxed);
}

static const char *
table_name(const struct ctr_table *t, unsigned int id)
{
	return t != NULL && id >= t->first && id - t->first < t->n ? t->names[id - t->first] : NULL;
}

const char *
engine_counter_name(unsigned int id)
{
	const char *name = table_name(&engine_ctr_table, id);

	if (name == NULL && reg_proto != NULL)
		name = table_name(reg_proto->ctrs, id);
	if (name == NULL && reg_service != NULL)
		name = table_name(reg_service->ctrs, id);
	return name;
}

void
engine_commit_stats(const struct engine *e, struct commit_stats *st)
{
	commit_stats_get(e->commit, st);
}

struct db *
engine_db(const struct engine *e)
{
	return e->db;
}

struct lcore_ctx *
engine_lcore(const struct engine *e, uint32_t idx)
{
	return idx < e->conf.nlcores ? e->lcores[idx] : NULL;
}

void *
engine_proto_state(const struct engine *e)
{
	return e->proto_state;
}

void
engine_set_proto_state(struct engine *e, void *state)
{
	e->proto_state = state;
}

void *
engine_svc(const struct engine *e)
{
	return e->svc_state;
}

void
engine_set_svc(struct engine *e, void *state)
{
	e->svc_state = state;
}

struct db *
lcore_db(const struct lcore_ctx *lc)
{
	return lc->e->db;
}

struct ftoken_store *
lcore_ftokens(const struct lcore_ctx *lc)
{
	return lc->e->ftokens;
}

struct commit_producer *
lcore_commit_producer(const struct lcore_ctx *lc)
{
	return commit_producer(lc->e->commit, lc->pub.idx);
}


bool
lcore_draining(const struct lcore_ctx *lc)
{
	return lc->draining;
}

bool
lcore_listening(const struct lcore_ctx *lc)
{
	return lc->listen_fd != -1;
}

int
engine_lcore_call(struct engine *e, uint32_t idx, engine_call_fn *fn, void *arg, int timeout_ms)
{
	struct engine_call call = { .fn = fn, .arg = arg };
	struct lcore_ctx *lc;
	int rc = 0;

	if (idx >= e->conf.nlcores)
		return -ENODEV;
	lc = e->lcores[idx];
	atomic_init(&call.done, false);
	pthread_mutex_lock(&e->call_lock);
	if (atomic_load(&lc->remote.stopped)) {
		pthread_mutex_unlock(&e->call_lock);
		return -ENODEV;
	}
	atomic_store_explicit(&lc->remote.call, &call, memory_order_release);
	lcore_wake(lc);
	for (int waited = 0; !atomic_load_explicit(&call.done, memory_order_acquire); waited++) {
		struct timespec ms = { 0, 1000000 };

		if (waited >= timeout_ms || atomic_load(&lc->remote.stopped)) {
			struct engine_call *expect = &call;

			/* Withdraw it, unless the lcore took it already. */
			if (atomic_compare_exchange_strong(&lc->remote.call, &expect, NULL)) {
				rc = atomic_load(&lc->remote.stopped) ? -ENODEV : -ETIMEDOUT;
				break;
			}
			waited = 0;	/* running now: it will finish */
		}
		nanosleep(&ms, NULL);
	}
	pthread_mutex_unlock(&e->call_lock);
	return rc;
}

void
engine_set_ftokens(struct engine *e, struct ftoken_store *s)
{
	e->ftokens = s;
}

void
engine_set_web(struct engine *e, engine_adopt_fn *fn, void *arg)
{
	e->web_adopt_arg = arg;
	e->web_adopt = fn;
}

struct commit_producer *
engine_extra_producer(struct engine *e, unsigned i)
{
	return i < ENGINE_EXTRA_PRODUCERS ? commit_producer(e->commit, e->conf.nlcores + i) : NULL;
}

void
engine_compliance_floor(struct engine *e, uint64_t next)
{
	atomic_store_explicit(&e->compliance_floor, next, memory_order_relaxed);
}

uint64_t
engine_compliance_lag(const struct engine *e)
{
	uint64_t floor = atomic_load_explicit(&e->compliance_floor, memory_order_relaxed);
	uint64_t durable = commit_durable_seq(e->commit);

	return floor == 0 || durable + 1 < floor ? 0 : durable + 1 - floor;
}

void
engine_set_accepting(struct engine *e, bool on)
{
	for (uint32_t i = 0; i < e->conf.nlcores; i++) {
		atomic_store(&e->lcores[i]->remote.listening, on);
		lcore_wake(e->lcores[i]);
	}
}

bool
engine_accepting(const struct engine *e)
{
	return atomic_load(&e->lcores[0]->remote.listening);
}

/* The reloaded TLS context and user table, if any. */
static void
take_tls_users(struct lcore_ctx *lc)
{
	struct tlsterm_ctx *t = atomic_exchange(&lc->remote.tls, NULL);
	struct htdigest *u = atomic_exchange(&lc->remote.users, NULL);

	if (t != NULL) {
		tlsterm_ctx_put(lc->tls);
		lc->tls = t;
	}
	if (u != NULL) {
		htdigest_put(lc->pub.users);
		lc->pub.users = u;
	}
}

/* A newly published snapshot, if any. */
static void
take_snap(struct lcore_ctx *lc)
{
	void *snap = atomic_exchange(&lc->remote.snap, NULL);

	if (snap != NULL) {
		snap_put(lc->e, lc->pub.snap);
		lc->pub.snap = snap;
	}
}

void
lcore_take_pending(struct lcore_ctx *lc)
{
	take_snap(lc);
	take_tls_users(lc);
}

static void
take_reload(struct lcore_ctx *lc)
{
	struct engine_call *call;
	bool listen;

	take_snap(lc);
	call = atomic_exchange(&lc->remote.call, NULL);
	listen = atomic_load_explicit(&lc->remote.listening, memory_order_relaxed);
	if (call != NULL) {
		call->fn(lc, call->arg);
		atomic_store_explicit(&call->done, true, memory_order_release);
	}
	if (!lc->draining && listen != (lc->listen_fd != -1)) {
		char err[256];

		if (!listen) {
			io_listen_close(lc);
			LOG(NOTICE, LCORE, "lcore %u: not accepting new connections", lc->pub.idx);
		} else if (io_listen_open(lc, err, sizeof(err)) != 0) {
			LOG(ERR, LCORE, "lcore %u: cannot listen again: %s", lc->pub.idx, err);
			atomic_store(&lc->remote.listening, false);
		}
	}
	take_tls_users(lc);
}

static void
start_drain(struct lcore_ctx *lc)
{
	struct conn *c;

	lc->draining = true;
	lc->drain_deadline_s = lc->pub.now_s + lc->e->conf.drain_timeout_s;
	io_listen_close(lc);
	/* Everything received was handled synchronously; what is in flight is
	 * output. Each connection flushes it, sends close_notify and closes. */
	for (c = lc->pub.conns; c != NULL; c = c->next)
		conn_close(c, true);
}

int
engine_lcore_run(struct engine *e, uint32_t idx)
{
	struct lcore_ctx *lc = e->lcores[idx];

	LOG(INFO, LCORE, "lcore %u: serving", idx);
	for (;;) {
		int timeout;

		clock_refresh(lc);
		if (!lc->draining && atomic_load_explicit(&e->drain, memory_order_relaxed))
			start_drain(lc);
		if (lc->draining &&
		    ((lc->nconns == 0 && lc->io_streams == 0 && svc_settled(lc)) ||
		     lc->pub.now_s >= lc->drain_deadline_s))
			break;
		take_reload(lc);
		/* Sleep in the poller only when no ring, storage completion or
		 * staged message waits; others wake us through wake_fd. */
		timeout = lc->draining ? 20 : 100;
		atomic_store_explicit(&lc->remote.sleeping, true, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		if (!svc_idle(lc)) {
			/* Work waits: the poller only looks, so nobody need
			 * write wake_fd (the storage thread's completions, other
			 * lcores' rings) for this turn. */
			timeout = 0;
			atomic_store_explicit(&lc->remote.sleeping, false, memory_order_relaxed);
		}
		io_poll(lc, timeout);
		atomic_store_explicit(&lc->remote.sleeping, false, memory_order_relaxed);
		if (e->svc->poll != NULL)
			e->svc->poll(lc);
		if (lc->pub.now_s >= lc->next_sweep_s) {
			conn_sweep(lc);
			lc->next_sweep_s = lc->pub.now_s + 1;
		}
		if (e->svc->flush != NULL)
			e->svc->flush(lc);
		conn_reap(lc);
	}
	/* Past the drain deadline: whatever did not flush is closed now. */
	for (struct conn *c = lc->pub.conns; c != NULL; c = c->next)
		conn_close(c, false);
	conn_reap(lc);
	atomic_store(&lc->remote.stopped, true);
	/* A call that raced with the end is withdrawn by its caller. */
	LOG(INFO, LCORE, "lcore %u: drained", idx);
	return 0;
}
