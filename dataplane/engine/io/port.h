/* The DPDK port of the dpdk I/O backend, engine-wide: the Ethernet device
 * (a NIC or a vdev such as net_tap), its mbuf pool, one rx/tx queue pair per
 * engine lcore, and one steering ring per lcore through which the others hand
 * it packets that arrived on the wrong queue.
 *
 * Created once at boot (by the first lcore's io init), read-only afterwards
 * except the rings, which are multi-producer/single-consumer: the owning
 * lcore dequeues, any lcore enqueues. */
#ifndef PARLEY_IO_PORT_H
#define PARLEY_IO_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct port;
struct rte_mempool;
struct rte_ring;
struct engine_conf;

#define PORT_KEY_LEN	16
#define PORT_RXD	1024	/* rx descriptors per queue */
#define PORT_TXD	1024	/* tx descriptors per queue */
#define PORT_RING_SIZE	2048	/* steering ring entries per lcore */
#define PORT_LCORE_HELD	768	/* mbufs an lcore may hold (tx staging, ARP pending) */

/* What the port was opened with, in host byte order. */
struct port_info {
	uint16_t port_id;
	uint16_t nb_queues;
	uint16_t mtu;
	uint8_t mac[6];
	uint32_t addr, netmask, gateway;	/* gateway 0: none */
	uint8_t steer_key[PORT_KEY_LEN];	/* flow steering, same on every lcore */
	uint8_t secret[PORT_KEY_LEN];		/* ISNs, SYN cookies, tuple tables */
};

/* Boot thread, after rte_eal_init. Finds (or probes) the device named by
 * <cf>->dpdk_port, creates the mbuf pool, sets up <nb_queues> rx/tx queue
 * pairs and the steering rings and starts the device. NULL with a message
 * for the operator in <err>. The caller frees with port_close(). */
struct port *port_open(const struct engine_conf *cf, uint16_t nb_queues, char *err,
		       size_t errlen);
/* Stops and closes the device, frees the rings (and the mbufs still in them)
 * and the pool. Boot thread, after every lcore stopped. Accepts NULL. */
void port_close(struct port *p);

const struct port_info *port_info(const struct port *p);
struct rte_mempool *port_pool(const struct port *p);
/* The steering ring into queue <q>'s lcore. */
struct rte_ring *port_ring(const struct port *p, uint16_t q);

#endif
