/* parley-bench's user-space network (--dpdk): its clients' TCP runs on
 * Parley's own TCP core (dataplane/tcp/utcp.h) over a DPDK port, typically
 * net_memif in the client role facing parleyd's dpdk backend in the server
 * role, so that the two processes exchange frames through shared memory
 * only: no system call, no kernel TCP on either side.
 *
 * unet_init() starts DPDK's EAL and opens the port once, on the main thread,
 * with <nqueues> rx/tx queue pairs; each worker then creates its own struct
 * unet (one utcp stack, one ARP cache, its queue pair) and polls it from its
 * loop instead of epoll. parley-bench uses one (the server answers on the
 * queue its own steering picks, which a second stack would not own). Connections are utcp connections whose
 * events call back into the worker (unet_event_fn); TLS runs on memory BIOs
 * (perf/nbconn.h).
 *
 * Threading: unet_init() and unet_fini() on the main thread; everything
 * taking a struct unet on the worker that created it. */
#ifndef PARLEY_PERF_UNET_H
#define PARLEY_PERF_UNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct unet;
struct utcp_conn;

/* What the port and its stacks are opened with. */
struct unet_conf {
	const char	*port;		/* vdev spec, e.g. net_memif0,role=client,socket=/x */
	const char	*eal;		/* extra EAL arguments (space separated) */
	uint32_t	addr;		/* our IPv4 address, host order */
	uint16_t	mtu;
	uint16_t	nqueues;	/* one per worker thread */
	uint32_t	max_conns;	/* per worker */
};

/* A connection of the worker's stack became connected, readable, writable
 * or closed: <owner> is what unet_connect() was given. */
typedef void unet_event_fn(void *arg, void *owner);

/* Main thread, once: EAL and the port (link up within a few seconds, else a
 * message naming what to check in <err>). 0 or -errno. */
int unet_init(const struct unet_conf *cf, char *err, size_t errlen);
/* Stops the port and EAL. Main thread, after the workers stopped. */
void unet_fini(void);

/* Worker thread: its stack on queue <q>; events go to <ev>(<arg>, owner).
 * NULL with a message in <err>. */
struct unet *unet_create(uint16_t q, unet_event_fn *ev, void *arg, char *err, size_t errlen);
void unet_destroy(struct unet *u);	/* accepts NULL */

/* Resolves <raddr>'s MAC by ARP, polling the port for up to <timeout_ms>:
 * every later packet to it goes out at once. 0 or -ETIMEDOUT. */
int unet_resolve(struct unet *u, uint32_t raddr, int timeout_ms);

/* Active open to <raddr>:<rport>; *<out> is the connection (events carry
 * <owner>). 0 or -errno. */
int unet_connect(struct unet *u, uint32_t raddr, uint16_t rport, void *owner,
		 struct utcp_conn **out);

/* One turn: up to a few rx bursts through the stack (events fire from
 * here), timers, one tx burst. When nothing arrived, sleeps up to
 * <wait_ns> (capped at the idle nap) before polling once more. The frames
 * handled. */
unsigned unet_poll(struct unet *u, uint64_t wait_ns);
/* Hands staged frames to the port (also done by unet_poll). */
void unet_flush(struct unet *u);

/* Counters for the result line, summed by the caller. tx_drop: frames lost
 * (ARP, oversize, no peer); tx_refused: segments the port or the mbuf pool
 * could not take at once, held by the TCP core and sent at a later poll. */
struct unet_stats {
	uint64_t rx, tx, tx_drop, tx_refused, naps, polls, rtx;
};
void unet_stats(const struct unet *u, struct unet_stats *s);

#endif
