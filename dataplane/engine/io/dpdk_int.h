/* Internals of the dpdk I/O backend shared by dpdk.c (the data path: rx,
 * tx, ARP, the TCP core's callbacks, the poll loop) and dpdk_boot.c (setup
 * and teardown: the port, the stack, listeners, the Web relays, the fault
 * layer, the counters logged at the end, and the io_ops table). Not for
 * other folders: the engine sees struct io_ops (engine_int.h). */
#ifndef PARLEY_IO_DPDK_INT_H
#define PARLEY_IO_DPDK_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/engine/io/fault.h"
#include "dataplane/engine/io/port.h"
#include "dataplane/engine/io/relay.h"
#include "dataplane/engine/engine_int.h"
#include "dataplane/tcp/arp.h"
#include "dataplane/tcp/utcp.h"

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

#define RX_BURST	32
#define RX_BURSTS_MAX	8	/* rx bursts per poll at most */
#define TX_BURST	32	/* staged packets that trigger a tx burst */
#define TX_STAGE	512	/* staged packets at most (tx queue full) */
#define PEND_MAX	128	/* packets waiting for ARP, per lcore */
#define PEND_TTL_US	3000000	/* then dropped: TCP retransmits */
#define TICK_US		500	/* utcp_tick interval */
#define UTCP_CONNS_CAP	32768	/* TCP connection objects per lcore at most */

enum dstat {
	DS_RX,			/* frames from the queue */
	DS_RX_STEERED_IN,	/* frames from other lcores */
	DS_STEERED_OUT,		/* TCP packets handed to their owner */
	DS_STEER_DROP,		/* owner's ring full */
	DS_ARP_IN,
	DS_ARP_OUT,
	DS_ARP_PENDING,		/* packets that waited for ARP */
	DS_ARP_PENDING_DROP,	/* queue full or no answer */
	DS_NO_ROUTE,		/* off-subnet without a gateway */
	DS_DROP_L2,		/* not for us, not IPv4/ARP, multi-segment */
	DS_TX,
	DS_TX_DROP,		/* tx staging full or no mbuf */
	DS_TX_SHORT,		/* tx bursts the queue did not take whole */
	DS_TX_OVERSIZE,		/* IP packets over the MTU (dropped) */
	DS_SLEEPS,
	DS_RX_DIRECT,		/* payload bytes handed to TLS straight from the packet */
	DS__COUNT,
};

/* Engine-wide (engine.io_shared): the port, shared by reference count so
 * that the last lcore to go closes it. Boot thread only. */
struct dpdk_shared {
	struct port *port;
	uint32_t refs;
};

struct pending {
	struct rte_mbuf *m;	/* a whole frame but for the destination MAC */
	uint32_t nexthop;
	uint64_t since_us;
};

/* One per lcore (lcore_ctx.io_lcore); owned by that lcore. */
struct dpdk_lc {
	struct lcore_ctx *lc;
	struct port *port;
	const struct port_info *pi;
	struct rte_mempool *pool;
	struct rte_ring *ring;		/* ours: others steer into it */
	uint16_t q;
	struct utcp_stack *st;
	struct arp_cache *arp;
	uint64_t now_us;		/* refreshed each poll */
	uint64_t next_tick_us;
	bool listening;
	/* The Web service's connections ([web] listen's port), relayed to its
	 * thread over socketpairs (relay.h); NULL when it is off. */
	struct relay_set *web;
	bool web_listening;

	uint16_t ntx;
	bool tx_full;			/* the last tx burst was short */
	struct rte_mbuf *tx[TX_STAGE];
	uint32_t npend;
	struct pending pend[PEND_MAX];

	/* Tests only (PARLEY_DPDK_FAULT): seeded drop/duplicate/reorder/delay
	 * of TCP frames as they arrive from and leave for the port. Each fault
	 * carries its delay line (frames it holds are ours, freed at fini). */
	struct fault frx, ftx;
	struct rte_mbuf *rx_held, *tx_held;
	uint64_t rx_held_us, tx_held_us;

	uint16_t *nsteer;		/* [nb_queues] staged per destination */
	struct rte_mbuf **steer;	/* [nb_queues][RX_BURST] */

	uint64_t stat[DS__COUNT];
};

/* dpdk.c */
/* Hands the staged frames to the port. */
void dpdk_tx_flush(struct dpdk_lc *d);
/* The lcore's TCP core and ARP cache, from the port and [dpdk]/[net]. */
int dpdk_make_stack(struct dpdk_lc *d, const struct engine_conf *cf);
void dpdk_poll(struct lcore_ctx *lc, int timeout_ms);
int dpdk_flush(struct conn *c);
void dpdk_close(struct conn *c);

#endif
