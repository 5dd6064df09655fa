/* The engine: one event loop per lcore, and what boot code needs to create,
 * reload and drain it.
 *
 * Each lcore owns a listener (SO_REUSEPORT: the kernel spreads connections),
 * its connections and its counters. Reload hands each lcore a new TLS context
 * or user table through an atomic slot it polls once per loop turn; the lcore
 * swaps its own reference, so no lcore ever sees an object freed under it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/session/dialog.h"
#include "dataplane/chat/fanout.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/chat/rooms.h"
#include "dataplane/sip/ratelimit.h"
#include "dataplane/tls/tlsterm.h"
#include "storage/commit.h"
#include "storage/htdigest.h"

const char *const ctr_names[CTR__COUNT] = {
	[CTR_CONN_ACCEPTED] = "conn_accepted",
	[CTR_CONN_CLOSED] = "conn_closed",
	[CTR_CONN_REFUSED_LIMIT] = "conn_refused_limit",
	[CTR_TLS_HANDSHAKES] = "tls_handshakes",
	[CTR_TLS_RESUMED] = "tls_resumed",
	[CTR_TLS_FAILURES] = "tls_failures",
	[CTR_TLS_HANDOFFS] = "tls_handoffs",
	[CTR_TLS_BAD_MAC] = "tls_bad_mac",
	[CTR_TLS_KEY_UPDATES] = "tls_key_updates",
	[CTR_BYTES_IN] = "bytes_in",
	[CTR_BYTES_OUT] = "bytes_out",
	[CTR_SIP_REQUESTS] = "sip_requests",
	[CTR_SIP_RESPONSES_OUT] = "sip_responses_out",
	[CTR_SIP_RESPONSES_IN] = "sip_responses_in",
	[CTR_SIP_KEEPALIVES] = "sip_keepalives",
	[CTR_SIP_400] = "sip_400",
	[CTR_REGISTER_OK] = "register_ok",
	[CTR_REGISTER_CHALLENGED] = "register_challenged",
	[CTR_REGISTER_DENIED] = "register_denied",
	[CTR_REGISTER_RATELIMITED] = "register_ratelimited",
	[CTR_DROP_OUTQ] = "drop_outq",
	[CTR_DROP_TOO_BIG] = "drop_too_big",
	[CTR_DROP_FRAMING] = "drop_framing",
	[CTR_DROP_IDLE] = "drop_idle",
	[CTR_DROP_HANDSHAKE_TIMEOUT] = "drop_handshake_timeout",
	[CTR_DROP_IDENTITY] = "drop_identity",
	[CTR_DIALOGS_OPEN] = "dialogs_open",
	[CTR_DIALOGS_EXPIRED] = "dialogs_expired",
	[CTR_XCCOS_COMMANDS] = "xccos_commands",
	[CTR_XCCOS_ERRORS] = "xccos_errors",
	[CTR_XCCOS_MALFORMED] = "xccos_malformed",
	[CTR_POSTS_IN] = "posts_in",
	[CTR_POSTS_REFUSED] = "posts_refused",
	[CTR_POSTS_SEQUENCED] = "posts_sequenced",
	[CTR_DELIVERIES] = "deliveries",
	[CTR_NOTICES] = "notices",
	[CTR_JOINS] = "joins",
	[CTR_PARTS] = "parts",
	[CTR_RING_FULL] = "ring_full",
	[CTR_STORAGE_FAILED] = "storage_failed",
	[CTR_POSTS_COMPLIANCE_CAP] = "posts_compliance_cap",
	[CTR_SIP_REQ_UNKNOWN] = "sip_req_other",
	[CTR_SIP_REQ_INVITE] = "sip_req_invite",
	[CTR_SIP_REQ_ACK] = "sip_req_ack",
	[CTR_SIP_REQ_BYE] = "sip_req_bye",
	[CTR_SIP_REQ_CANCEL] = "sip_req_cancel",
	[CTR_SIP_REQ_OPTIONS] = "sip_req_options",
	[CTR_SIP_REQ_REGISTER] = "sip_req_register",
	[CTR_SIP_REQ_INFO] = "sip_req_info",
	[CTR_SIP_REQ_UPDATE] = "sip_req_update",
	[CTR_SIP_REQ_SUBSCRIBE] = "sip_req_subscribe",
	[CTR_SIP_REQ_NOTIFY] = "sip_req_notify",
	[CTR_SIP_REQ_MESSAGE] = "sip_req_message",
	[CTR_SIP_REQ_PRACK] = "sip_req_prack",
	[CTR_SIP_REQ_REFER] = "sip_req_refer",
	[CTR_SIP_REQ_PUBLISH] = "sip_req_publish",
	[CTR_SIP_RESP_1XX] = "sip_resp_1xx",
	[CTR_SIP_RESP_2XX] = "sip_resp_2xx",
	[CTR_SIP_RESP_3XX] = "sip_resp_3xx",
	[CTR_SIP_RESP_4XX] = "sip_resp_4xx",
	[CTR_SIP_RESP_5XX] = "sip_resp_5xx",
	[CTR_SIP_RESP_6XX] = "sip_resp_6xx",
	[CTR_XCMD_REQURI] = "xccos_cmd_requri",
	[CTR_XCMD_GETSERVERINFO] = "xccos_cmd_getserverinfo",
	[CTR_XCMD_CHANSRCH] = "xccos_cmd_chansrch",
	[CTR_XCMD_JOIN] = "xccos_cmd_join",
	[CTR_XCMD_BJOIN] = "xccos_cmd_bjoin",
	[CTR_XCMD_PART] = "xccos_cmd_part",
	[CTR_XCMD_BCCONTEXT] = "xccos_cmd_bccontext",
	[CTR_XCMD_GETINV] = "xccos_cmd_getinv",
	[CTR_XCMD_GETPREF] = "xccos_cmd_getpref",
	[CTR_XCMD_SETPREF] = "xccos_cmd_setpref",
	[CTR_XCMD_NODESPERMCREATECHILD] = "xccos_cmd_nodespermcreatechild",
	[CTR_XCMD_GETFUTOK] = "xccos_cmd_getfutok",
	[CTR_XCMD_GETFDTOK] = "xccos_cmd_getfdtok",
	[CTR_XCMD_GRPCHAT] = "xccos_cmd_grpchat",
	[CTR_XCMD_OTHER] = "xccos_cmd_other",
	[CTR_XRES_200] = "xccos_result_200",
	[CTR_XRES_400] = "xccos_result_400",
	[CTR_XRES_403] = "xccos_result_403",
	[CTR_XRES_404] = "xccos_result_404",
	[CTR_XRES_413] = "xccos_result_413",
	[CTR_XRES_500] = "xccos_result_500",
	[CTR_XRES_501] = "xccos_result_501",
	[CTR_XRES_503] = "xccos_result_503",
	[CTR_XRES_OTHER] = "xccos_result_other",
};

_Static_assert(CTR_SIP_REQ_PUBLISH - CTR_SIP_REQ_UNKNOWN == SIP_M_PUBLISH - SIP_M_UNKNOWN,
	       "per-method counters follow enum sip_method");

static void
clock_refresh(struct lcore_ctx *lc)
{
	lc->now_s = clock_mono_s_coarse();
	lc->now_real_ms = clock_real_ms_coarse();
}

struct engine *
engine_create(const struct engine_conf *conf, struct tlsterm_ctx *tls, struct htdigest *users,
	      struct db *db, struct roomtab *rooms, char *err, size_t errlen)
{
	struct commit_config cc = {
		.nproducers = conf->nlcores + ENGINE_EXTRA_PRODUCERS,
		.depth = conf->commit_depth,
		.durability_unsafe_no_fsync = conf->durability_unsafe_no_fsync,
		.notify = fanout_commit_notify,
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
	e->io = io_backend_find(conf->io_backend[0] ? conf->io_backend : "kernel");
	if (e->io == NULL) {
		snprintf(err, errlen, "[io] backend %s: not built into this parleyd", conf->io_backend);
		free(e);
		return NULL;
	}
	pthread_mutex_init(&e->call_lock, NULL);
	if (digest_key_init(e->nonce_key) != 0) {
		snprintf(err, errlen, "no randomness for the nonce key");
		goto out_free;
	}
	e->rl_addr = ratelimit_create(65536, conf->fail_max, conf->fail_window_s);
	e->rl_user = ratelimit_create(65536, conf->fail_max, conf->fail_window_s);
	if (e->rl_addr == NULL || e->rl_user == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out_free;
	}
	for (i = 0; i < conf->nlcores; i++) {
		struct lcore_ctx *lc = aligned_alloc(64, (sizeof(*lc) + 63) & ~(size_t)63);

		if (lc == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out_free;
		}
		memset(lc, 0, sizeof(*lc));
		lc->e = e;
		lc->idx = i;
		lc->epfd = -1;
		lc->listen_fd = -1;
		tlsterm_ctx_get(tls);
		lc->tls = tls;
		htdigest_get(users);
		lc->users = users;
		roomtab_get(rooms);
		lc->rooms = rooms;
		lc->wake_fd = -1;
		objcache_init(&lc->conn_cache, sizeof(struct conn), conf->max_conns);
		objcache_init(&lc->dialog_cache, sizeof(struct dialog), 4 * conf->max_conns);
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
	if (fanout_init(e, err, errlen) != 0)
		goto out_free;
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
	if (e->commit != NULL && e->lcores[e->conf.nlcores - 1] != NULL &&
	    e->lcores[e->conf.nlcores - 1]->fo != NULL)
		fanout_quiesce(e, 2000);
	if (e->commit != NULL)
		commit_stop(e->commit);
	fanout_fini(e);
	commit_destroy(e->commit);
	for (uint32_t i = 0; i < e->conf.nlcores; i++) {
		struct lcore_ctx *lc = e->lcores[i];

		if (lc == NULL)
			continue;
		io_lcore_fini(lc);
		tlsterm_ctx_put(lc->tls);
		htdigest_put(lc->users);
		tlsterm_ctx_put(atomic_exchange(&lc->remote.tls, NULL));
		htdigest_put(atomic_exchange(&lc->remote.users, NULL));
		roomtab_put(lc->rooms);
		roomtab_put(atomic_exchange(&lc->remote.rooms, NULL));
		objcache_fini(&lc->conn_cache);
		objcache_fini(&lc->dialog_cache);
		free(lc);
	}
	ratelimit_destroy(e->rl_addr);
	ratelimit_destroy(e->rl_user);
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
engine_rooms_publish(struct engine *e, struct roomtab *rooms)
{
	for (uint32_t i = 0; i < e->conf.nlcores; i++) {
		roomtab_get(rooms);
		roomtab_put(atomic_exchange(&e->lcores[i]->remote.rooms, rooms));
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
		LOG(ERR, LCORE, "lcore %u: wake: %s", lc->idx, strerror(errno));
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

	if (id >= CTR__COUNT)
		return 0;
	for (uint32_t i = 0; i < e->conf.nlcores; i++)
		sum += atomic_load_explicit(&e->lcores[i]->ctr[id], memory_order_relaxed);
	return sum;
}

uint32_t
engine_nlcores(const struct engine *e)
{
	return e->conf.nlcores;
}

uint64_t
engine_lcore_counter(const struct engine *e, uint32_t idx, unsigned int id)
{
	if (idx >= e->conf.nlcores || id >= CTR__COUNT)
		return 0;
	return atomic_load_explicit(&e->lcores[idx]->ctr[id], memory_order_relaxed);
}

const char *
engine_counter_name(unsigned int id)
{
	return id < CTR__COUNT ? ctr_names[id] : NULL;
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

static void
take_reload(struct lcore_ctx *lc)
{
	struct tlsterm_ctx *t = atomic_exchange(&lc->remote.tls, NULL);
	struct htdigest *u = atomic_exchange(&lc->remote.users, NULL);
	struct roomtab *r = atomic_exchange(&lc->remote.rooms, NULL);

	struct engine_call *call = atomic_exchange(&lc->remote.call, NULL);
	bool listen = atomic_load_explicit(&lc->remote.listening, memory_order_relaxed);

	if (r != NULL) {
		roomtab_put(lc->rooms);
		lc->rooms = r;
	}
	if (call != NULL) {
		call->fn(lc, call->arg);
		atomic_store_explicit(&call->done, true, memory_order_release);
	}
	if (!lc->draining && listen != (lc->listen_fd != -1)) {
		char err[256];

		if (!listen) {
			io_listen_close(lc);
			LOG(NOTICE, LCORE, "lcore %u: not accepting new connections", lc->idx);
		} else if (io_listen_open(lc, err, sizeof(err)) != 0) {
			LOG(ERR, LCORE, "lcore %u: cannot listen again: %s", lc->idx, err);
			atomic_store(&lc->remote.listening, false);
		}
	}
	if (t != NULL) {
		tlsterm_ctx_put(lc->tls);
		lc->tls = t;
	}
	if (u != NULL) {
		htdigest_put(lc->users);
		lc->users = u;
	}
}

static void
start_drain(struct lcore_ctx *lc)
{
	struct conn *c;

	lc->draining = true;
	lc->drain_deadline_s = lc->now_s + lc->e->conf.drain_timeout_s;
	io_listen_close(lc);
	/* Everything received was handled synchronously; what is in flight is
	 * output. Each connection flushes it, sends close_notify and closes. */
	for (c = lc->conns; c != NULL; c = c->next)
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
		    ((lc->nconns == 0 && lc->io_streams == 0 && fanout_settled(lc)) ||
		     lc->now_s >= lc->drain_deadline_s))
			break;
		take_reload(lc);
		/* Sleep in the poller only when no ring, storage completion or
		 * staged message waits; others wake us through wake_fd. */
		timeout = lc->draining ? 20 : 100;
		atomic_store_explicit(&lc->remote.sleeping, true, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		if (!fanout_idle(lc))
			timeout = 0;
		io_poll(lc, timeout);
		atomic_store_explicit(&lc->remote.sleeping, false, memory_order_relaxed);
		fanout_poll(lc);
		if (lc->now_s >= lc->next_sweep_s) {
			conn_sweep(lc);
			lc->next_sweep_s = lc->now_s + 1;
		}
		fanout_flush(lc);
		conn_reap(lc);
	}
	/* Past the drain deadline: whatever did not flush is closed now. */
	for (struct conn *c = lc->conns; c != NULL; c = c->next)
		conn_close(c, false);
	conn_reap(lc);
	atomic_store(&lc->remote.stopped, true);
	/* A call that raced with the end is withdrawn by its caller. */
	LOG(INFO, LCORE, "lcore %u: drained", idx);
	return 0;
}
