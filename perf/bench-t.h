/* parley-bench: the types shared by its main thread (bench.c), its worker
 * threads (worker.c) and the simulated clients (agent.c).
 *
 * Ownership: struct bench is written by the main thread before the workers
 * start, except `phase` and the window times, which only the main thread
 * writes later (atomically). Each struct worker belongs to its thread; the
 * main thread only reads its counters (relaxed atomics, single writer) while
 * it runs, and everything else after pthread_join. `present` counts the
 * joined members per room and is shared by all workers (atomic). */
#ifndef PARLEY_PERF_BENCH_T_H
#define PARLEY_PERF_BENCH_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/ssl.h>

#include "perf/hist.h"
#include "perf/nbconn.h"
#include "perf/series.h"

enum bench_mode {
	MODE_FANOUT,		/* rooms x members, posts at an offered rate */
	MODE_CONNECT,		/* connect + TLS + REGISTER, closed loops */
	MODE_IDLE,		/* sign in, join, stay idle: server memory */
	MODE_HISTORY,		/* bccontext requests on one room, closed loops */
};

enum bench_phase {
	PHASE_SETUP,		/* clients sign in and join */
	PHASE_RUN,		/* the measured load */
	PHASE_DRAIN,		/* no new load; waiting for what is in flight */
	PHASE_STOP,
};

#define BENCH_TAGS_MAX	16
#define BENCH_URI_MAX	160
#define BENCH_THREADS_MAX 64

#define BENCH_SERVERS_MAX 8

struct bench_conf {
	enum bench_mode	mode;
	struct sockaddr_in dst;
	/* Several servers (an array's nodes): client n connects to
	 * dsts[n % ndst] and registers with the placement mark. */
	struct sockaddr_in dsts[BENCH_SERVERS_MAX];
	uint32_t	ndst;
	char		host[64];
	uint16_t	port;
	char		domain[128];
	char		user_prefix[32];	/* users are <prefix><n>@<domain> */
	uint32_t	user_base;		/* n of the first client */
	char		password[64];
	char		room_prefix[32];	/* rooms are <prefix>0 .. <prefix>R-1 */
	uint32_t	rooms, members;		/* fanout, idle, history */
	uint32_t	clients;		/* connect: concurrent loops */
	uint32_t	size;			/* message text bytes */
	double		rate;			/* posts/s over all posters; 0 = as fast as acked */
	uint64_t	max_posts;		/* 0 = no limit */
	uint32_t	inflight;		/* unacknowledged posts per client */
	double		warmup_s, duration_s, drain_s, setup_timeout_s;
	uint32_t	regs_per_conn;		/* connect: REGISTERs per connection, 0 = handshake only */
	uint32_t	hist_cnt;		/* history: <last cnt> */
	uint32_t	nsrc;			/* source addresses 127.0.0.1 .. 127.0.0.<nsrc> */
	uint32_t	setup_conc;		/* clients signing in at once, per thread */
	uint32_t	nthreads;
	int		cpus[BENCH_THREADS_MAX]; /* -1: not pinned */
	pid_t		server_pid;		/* 0: not measured */
	pid_t		server_pids[BENCH_SERVERS_MAX];	/* all measured, summed */
	uint32_t	npids;
	bool		json;
	bool		progress;
	double		lag_threshold_ms;
	const char	*tags[BENCH_TAGS_MAX];	/* key=value added to the result */
	unsigned	ntags;
	struct series_profile profile;		/* --profile; n == 0: one rate */
	const char	*series_path;		/* --series FILE, or NULL */
	/* User-space mode (perf/unet.h): a DPDK vdev spec; empty: kernel sockets. */
	char		dpdk_port[512];
	char		dpdk_eal[512];
	struct sockaddr_in dpdk_addr;		/* ours on the port */
};

struct bench {
	struct bench_conf c;
	char		(*room_uri)[BENCH_URI_MAX];	/* [rooms] */
	_Atomic uint32_t *present;			/* [rooms] joined members */
	_Atomic int	phase;
	_Atomic uint64_t t0_ns;				/* load starts */
	_Atomic uint64_t ws_ns, we_ns;			/* measurement window */
	_Atomic uint64_t posts_issued;			/* for max_posts */
	/* User-space mode: no kernel socket reaches the server, so the first
	 * client looks the rooms up (cmd:chansrch) before the others start. */
	_Atomic bool	rooms_known;
	_Atomic bool	scout_failed;
	uint32_t	total;				/* clients over all threads */
	struct worker	*w;
	struct series_srv *srv;				/* --series: [nsec], main thread */
	unsigned	nsec;
};

/* Counters: written by the owning worker only, read by main at any time. */
enum ctr {
	C_CONNECTED,	/* TLS up */
	C_JOINED,	/* reached the end of the sign-in flow */
	C_SETUP_FAILED,	/* gave up signing in */
	C_SETUP_RETRIES,
	C_DISCONNECTS,	/* lost after joining */
	C_POSTS_SENT,
	C_POSTS_OK,	/* SIP 200 and no error reply */
	C_POSTS_REFUSED,/* 200 followed by an rpl:grpchat error */
	C_POST_ERRORS,	/* non-200 to a post */
	C_EXPECTED,	/* sum over accepted posts of the members present */
	C_DELIVERED,	/* unique deliveries received, the author's echo included */
	C_DELIVERED_WIN,/* ... received inside the window */
	C_ECHO,		/* deliveries of one's own posts */
	C_ECHO_WIN,
	C_DUP,
	C_MISROUTED,	/* a post of another room */
	C_BAD_DELIVERY,	/* a grpchat we cannot read */
	C_NOTICES,
	C_OTHER_ERRORS,	/* unexpected replies or requests */
	C_THROTTLED,	/* a paced post found no client free to send it */
	C_HANDSHAKES,
	C_HANDSHAKES_WIN,
	C_REGISTERS,
	C_REGISTERS_WIN,
	C_CONN_ERRORS,	/* connect mode: a loop that failed */
	C_HIST_REPLIES,
	C_HIST_REPLIES_WIN,
	C_HIST_MSGS,	/* messages in those replies */
	C_HIST_ERRORS,
	C_INFOS_IN,	/* server INFOs answered */
	C_NET_RX,	/* user-space mode: frames received, sent, TCP */
	C_NET_TX,	/* retransmissions, naps of an idle poll (whole run) */
	C_NET_RTX,
	C_NET_NAPS,
	C_NET_TX_DROP,	/* frames lost (ARP, oversize, no peer) */
	C_NET_TX_REFUSED, /* segments held while staging was full, sent later */
	C_NET_POLLS,	/* unet_poll turns */
	C_NET_TX_WIN,	/* frames sent and retransmissions inside the window */
	C_NET_RTX_WIN,
	C__COUNT,
};

struct agent;
struct unet;

struct worker {
	struct bench	*b;
	unsigned	idx;
	pthread_t	th;
	int		ep;
	struct unet	*un;		/* user-space mode; else epoll on ep */
	uint64_t	un_tx_ws, un_rtx_ws;	/* unet's tx and rtx at the window's start */
	uint64_t	un_tx_we, un_rtx_we;	/* ... and end */
	bool		un_ws_set, un_we_set;
	SSL_CTX		*ctx;
	struct agent	*agents;
	uint32_t	nagents;
	uint32_t	first_gid;
	uint32_t	*order;		/* posting order: rooms interleaved */
	uint32_t	rr;
	uint64_t	interval_ns;	/* between this thread's posts */
	uint64_t	next_due;
	bool		kicked;		/* unpaced or history: first requests sent */
	uint32_t	in_setup, next_start;
	int		phase;		/* b->phase, read once per loop */
	uint64_t	ws, we;		/* b->ws_ns, b->we_ns, likewise */
	struct hist	lat;		/* delivery latency, posts sent in the window */
	struct hist	ack;		/* post to its SIP 200 (durable) */
	struct hist	lag;		/* post sent after it was due */
	struct hist	hlat;		/* history request to reply */
	/* Several servers (-s list): the latency of deliveries to a client
	 * of the author's server, and of those to a client of another one
	 * (across the array's nodes), posts sent in the window. */
	struct hist	lat_local, lat_remote;
	uint64_t	busy_max;	/* longest stretch between two epoll waits */
	uint64_t	oversleep_max;	/* longest wake-up past the epoll timeout */
	_Atomic uint64_t ctr[C__COUNT];
	char		first_error[256];
	char		*scratch;	/* request bodies */
	size_t		scratch_cap;
	double		share;		/* of the offered rate: its clients / all */
	uint64_t	t0;		/* b->t0_ns, once the load runs */
	struct series_sec *ser;		/* --series: [b->nsec] */
};

/* The worker's series row for time <t>, or NULL (no --series, or outside). */
static inline struct series_sec *
worker_sec(struct worker *w, uint64_t t)
{
	return series_at(w->ser, w->b->nsec, w->t0, t);
}

static inline bool
in_window(const struct worker *w, uint64_t t)
{
	return t >= w->ws && t < w->we;
}

static inline void
ctr_add(struct worker *w, enum ctr i, int64_t v)
{
	atomic_store_explicit(&w->ctr[i],
			      atomic_load_explicit(&w->ctr[i], memory_order_relaxed) + (uint64_t)v,
			      memory_order_relaxed);
}

static inline uint64_t
ctr_get(struct worker *w, enum ctr i)
{
	return atomic_load_explicit(&w->ctr[i], memory_order_relaxed);
}

/* Counter <i> summed over every worker of <b>. */
static inline uint64_t
bench_sum(struct bench *b, enum ctr i)
{
	uint64_t s = 0;

	for (unsigned t = 0; t < b->c.nthreads; t++)
		s += ctr_get(&b->w[t], i);
	return s;
}

#endif
