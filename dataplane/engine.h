/* The engine as boot code sees it: create, launch one loop per lcore, reload,
 * drain. Everything behind it is per lcore (see lcore.h). */
#ifndef PARLEY_ENGINE_H
#define PARLEY_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/sip/sipmsg.h"

struct tlsterm_ctx;
struct htdigest;
struct engine;

enum engine_challenge {
	ENGINE_CHALLENGE_PROXY,	/* 407 Proxy-Authenticate (what pidgin-sipe needs) */
	ENGINE_CHALLENGE_WWW,	/* 401 WWW-Authenticate */
};

struct engine_conf {
	char domain[256];
	char realm[256];
	uint32_t node_id;
	uint32_t nlcores;

	char sip_host[256];
	uint16_t sip_port;
	uint32_t backlog;
	struct sipmsg_limits sip_lim;

	uint32_t max_conns;		/* per lcore */
	uint32_t outq_max;
	uint32_t idle_timeout_s;
	uint32_t handshake_timeout_s;
	uint32_t drain_timeout_s;

	enum engine_challenge challenge;
	uint32_t nonce_ttl_s;
	uint32_t fail_max;
	uint32_t fail_window_s;
	uint32_t register_expires;
	uint32_t register_min_expires;
	uint32_t session_expires;
	uint32_t max_dialogs_per_conn;
};

/* Boot thread. Takes a reference to <tls> and <users> of its own. NULL with
 * a message in <err> on failure (e.g. the listen address cannot be bound). */
struct engine *engine_create(const struct engine_conf *conf, struct tlsterm_ctx *tls,
			     struct htdigest *users, char *err, size_t errlen);

/* The loop of engine lcore <idx> (0 .. nlcores-1); run it on its own thread
 * (rte_eal_remote_launch). Returns when the engine is drained or stopped. */
int engine_lcore_run(struct engine *e, uint32_t idx);

/* Any thread: every lcore picks up <tls> / <users> (either may be NULL to
 * keep the current one) at its next loop turn; new connections use the new
 * certificate, live ones keep theirs. Takes its own references. */
void engine_reload(struct engine *e, struct tlsterm_ctx *tls, struct htdigest *users);

/* Any thread: stop accepting, finish what is in flight, say goodbye (TLS
 * close_notify) and close every connection within drain_timeout_s, then the
 * lcore loops return. */
void engine_drain(struct engine *e);

/* Boot thread, after every lcore loop returned. Accepts NULL. */
void engine_destroy(struct engine *e);

/* Sum of one counter over all lcores (reads are relaxed, never stall lcores). */
uint64_t engine_counter(const struct engine *e, unsigned int id);
uint32_t engine_nlcores(const struct engine *e);

#endif
