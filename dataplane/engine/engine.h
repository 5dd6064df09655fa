/* The engine as boot and control code see it: create, launch one loop per
 * lcore, reload, drain, counters. The services above it see lcore.h as
 * well; the engine's internals are in engine_int.h. */
#ifndef PARLEY_ENGINE_H
#define PARLEY_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/sip/sipmsg.h"

struct tlsterm_ctx;
struct htdigest;
struct engine;
struct db;

enum engine_challenge {
	ENGINE_CHALLENGE_PROXY,	/* 407 Proxy-Authenticate (what pidgin-sipe needs) */
	ENGINE_CHALLENGE_WWW,	/* 401 WWW-Authenticate */
};

/* Storage producers beyond one per lcore, for the web and control threads. */
#define ENGINE_EXTRA_PRODUCERS	2

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

	/* Group Chat */
	uint32_t chat_max;		/* messageSizeLimit: bytes of <chat> text */
	uint32_t story_max;		/* storySizeLimit (advertised) */
	uint32_t history_max;		/* most messages one bccontext returns */
	uint32_t search_limit;		/* most rooms one chansrch returns */
	uint32_t rooms_per_dialog;
	uint32_t ring_size;		/* entries per lcore-to-lcore ring */
	uint32_t commit_depth;		/* storage requests in flight per lcore */
	uint32_t posts_inflight_max;	/* posts and joins an lcore has on their way to
					 * the homes; more are refused; 0: no bound */
	uint32_t post_queue_ms;		/* while posts take longer than this from
					 * admission to stored, new ones are refused;
					 * 0: no bound */
	uint64_t compliance_cap;	/* unexported events before posts are refused; 0: none */
	/* In an array with peer links, a home with no other live node to keep
	 * its rooms' copies: refuse posts (503, retryable), or take them
	 * durable on this node only. */
	enum engine_alone { ENGINE_ALONE_REFUSE, ENGINE_ALONE_UNREPLICATED } array_alone;
	char web_url[256];		/* serveruri of file tokens: https://host:port/filestore/ */

	/* I/O: "kernel" (sockets) or "dpdk" (DPDK port + user-space TCP) */
	char io_backend[16];
	/* kernel backend: "epoll" or "io_uring" (falls back to epoll, logged,
	 * where the kernel lacks it), and the io_uring ring's size, its
	 * receive buffers (a power of two) and their size */
	char kernel_io[16];
	/* epoll: an idle lcore whose events come closer than 4 x this naps
	 * this long and takes them together; 0: it blocks until the next */
	uint32_t kernel_nap_us;
	uint32_t uring_entries;
	uint32_t uring_bufs;
	uint32_t uring_buf_size;
	char dpdk_port[256];		/* a PCI address or a vdev ("net_tap0,iface=pt0") */
	char dpdk_addr[64];		/* our IPv4 address on that port */
	char dpdk_netmask[64];
	char dpdk_gateway[64];		/* "" when none */
	uint32_t dpdk_mtu;
	uint32_t dpdk_idle_sleep_us;	/* an idle lcore sleeps this long; 0: busy-poll */
	uint32_t dpdk_tcp_buf_mem_mb;	/* TCP buffer memory per lcore; 0: as max_conns needs */
	uint32_t dpdk_tcp_delack_us;	/* longest delay of an ACK without data */
	bool durability_unsafe_no_fsync;
	uint32_t sync_interval_us;	/* least time between two fsyncs (storage/commit.h) */

	/* dpdk backend: the Web service's TCP port on the DPDK address (its
	 * connections are relayed to the Web thread, see engine_set_web), and
	 * how many it serves at once; 0: no Web service on the port. */
	uint16_t web_port;
	uint32_t web_max_conns;
};

/* Boot thread, after rte_eal_init and the registrations of the layers above
 * (lcore.h: engine_register_proto, engine_register_service). Takes a
 * reference to <tls>, <users> and the service's snapshot <snap> (chat: the
 * room table; may be NULL) of its own; <db> is borrowed and must outlive the
 * engine. Starts the storage thread and the service. NULL with a message in
 * <err> on failure (e.g. the listen address cannot be bound). */
struct engine *engine_create(const struct engine_conf *conf, struct tlsterm_ctx *tls,
			     struct htdigest *users, struct db *db, void *snap,
			     char *err, size_t errlen);

/* Any thread: every lcore switches to the service's snapshot <snap> (chat:
 * the room table, after a catalog change) at its next loop turn. Takes its
 * own reference (the service's snap_get hook). */
void engine_snapshot_publish(struct engine *e, void *snap);

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

/* Runs <fn>(<lc>, <arg>) on engine lcore <idx>, in its loop, between two
 * turns, and waits for it: the way other threads (control) read or change
 * per-lcore state without locks on the data path. <fn> must not block.
 * 0, -ENODEV (no such lcore, or its loop has returned) or -ETIMEDOUT (the
 * call is withdrawn if the lcore has not started it). Not from an lcore. */
struct lcore_ctx;
typedef void engine_call_fn(struct lcore_ctx *lc, void *arg);
int engine_lcore_call(struct engine *e, uint32_t idx, engine_call_fn *fn, void *arg,
		      int timeout_ms);

/* Boot, before the lcores run: the token store the Web service takes
 * file tokens from (NULL: no Web service; getfutok/getfdtok get 503). */
struct ftoken_store;
void engine_set_ftokens(struct engine *e, struct ftoken_store *s);
/* Boot, before the lcores run (dpdk backend with conf.web_port): a TCP
 * connection accepted on web_port becomes a socketpair whose one end
 * <fn>(<arg>, fd) takes, from an lcore, to serve it as an accepted socket;
 * 0, or -errno and the lcore resets the connection. Until this is called,
 * such connections are reset. */
typedef int engine_adopt_fn(void *arg, int fd);
void engine_set_web(struct engine *e, engine_adopt_fn *fn, void *arg);
/* The storage producer reserved for a non-lcore thread: <i> in
 * 0 .. ENGINE_EXTRA_PRODUCERS-1 (0: Web service, 1: control). */
struct commit_producer;
struct commit_producer *engine_extra_producer(struct engine *e, unsigned i);

/* Any thread: stop (false) or resume (true) accepting new connections on
 * every lcore; existing connections continue (parleyctl drain). */
void engine_set_accepting(struct engine *e, bool on);
bool engine_accepting(const struct engine *e);

/* Any thread (the exporter's supervisor): every compliance seq below
 * <next> is exported. Posts are refused (xccos 503) while the durable log
 * holds compliance_cap or more events at or above it. */
void engine_compliance_floor(struct engine *e, uint64_t next);
/* Events logged but not yet exported, as the engine last heard. */
uint64_t engine_compliance_lag(const struct engine *e);

/* Counters of every layer, by id (ctr.h). Sum of one counter over all lcores
 * (reads are relaxed, never stall lcores); 0 for an unknown id. */
uint64_t engine_counter(const struct engine *e, unsigned int id);
uint32_t engine_nlcores(const struct engine *e);
/* The configuration the engine runs with (any thread; read-only). */
const struct engine_conf *engine_conf(const struct engine *e);
/* One lcore's counter; 0 for an unknown id. */
uint64_t engine_lcore_counter(const struct engine *e, uint32_t idx, unsigned int id);
/* The counter's name ("posts_in"), or NULL past the last; for listing. Ids
 * are contiguous from 0 over the engine's and the registered layers'. */
const char *engine_counter_name(unsigned int id);
/* Storage thread statistics (commit.h) and the database. */
struct commit_stats;
void engine_commit_stats(const struct engine *e, struct commit_stats *st);
struct db *engine_db(const struct engine *e);

#endif
