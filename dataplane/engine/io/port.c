/* The DPDK port: device, mbuf pool, queues and steering rings (see port.h).
 *
 * Boot code: everything here runs on the boot thread before the lcores start
 * or after they stopped, so it may allocate and log freely.
 *
 * The pool holds, per queue, enough mbufs to fill the rx ring, the tx ring
 * and the steering ring, plus what an lcore stages itself and the mempool
 * cache; a NIC never starves for rx buffers because the lcores hold some. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/random.h>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "dataplane/base/log.h"
#include "dataplane/engine/engine.h"
#include "dataplane/engine/io/port.h"

#define POOL_CACHE	256

struct port {
	struct port_info info;
	struct rte_mempool *pool;
	bool started;
	struct rte_ring *rings[];	/* info.nb_queues */
};

static int
parse_ip(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

/* "0000:01:00.0" or "01:00.0": a PCI address, not a vdev spec. */
static bool
looks_pci(const char *spec)
{
	return strchr(spec, ',') == NULL && strchr(spec, ':') != NULL &&
	       strchr(spec, '.') != NULL && strncmp(spec, "net_", 4) != 0;
}

/* The port id of <spec>: the device name is the spec up to its first comma.
 * A vdev that the EAL arguments did not create is probed here. */
static int
find_port(const char *spec, uint16_t *pid, char *err, size_t errlen)
{
	char name[RTE_DEV_NAME_MAX_LEN];
	size_t n = strcspn(spec, ",");

	if (n == 0 || n >= sizeof(name)) {
		snprintf(err, errlen, "[dpdk] port \"%s\": not a PCI address or vdev spec", spec);
		return -EINVAL;
	}
	memcpy(name, spec, n);
	name[n] = '\0';
	if (rte_eth_dev_get_port_by_name(name, pid) == 0)
		return 0;
	if (!looks_pci(spec) && rte_dev_probe(spec) == 0 &&
	    rte_eth_dev_get_port_by_name(name, pid) == 0)
		return 0;
	snprintf(err, errlen, "[dpdk] port \"%s\": no such DPDK device (%u ports found): check "
		 "the PCI address is bound to a DPDK driver, or the vdev spec", spec,
		 rte_eth_dev_count_avail());
	return -ENODEV;
}

static int
parse_addrs(const struct engine_conf *cf, struct port_info *pi, char *err, size_t errlen)
{
	uint32_t m;

	if (parse_ip(cf->dpdk_addr, &pi->addr) != 0 || pi->addr == 0) {
		snprintf(err, errlen, "[dpdk] addr \"%s\": an IPv4 address is needed for the dpdk "
			 "backend", cf->dpdk_addr);
		return -EINVAL;
	}
	m = 0;
	if (parse_ip(cf->dpdk_netmask, &pi->netmask) == 0)
		m = ~pi->netmask;
	if (m == 0xffffffffu || (m & (m + 1)) != 0) {
		snprintf(err, errlen, "[dpdk] netmask \"%s\": not a contiguous IPv4 netmask",
			 cf->dpdk_netmask);
		return -EINVAL;
	}
	pi->gateway = 0;
	if (cf->dpdk_gateway[0] != '\0' &&
	    (parse_ip(cf->dpdk_gateway, &pi->gateway) != 0 ||
	     (pi->gateway & pi->netmask) != (pi->addr & pi->netmask))) {
		snprintf(err, errlen, "[dpdk] gateway \"%s\": not an IPv4 address on the subnet "
			 "of %s/%s", cf->dpdk_gateway, cf->dpdk_addr, cf->dpdk_netmask);
		return -EINVAL;
	}
	return 0;
}

static int
setup_device(struct port *p, const struct engine_conf *cf, char *err, size_t errlen)
{
	struct port_info *pi = &p->info;
	struct rte_eth_conf conf = { .rxmode.mq_mode = RTE_ETH_MQ_RX_NONE };
	struct rte_eth_dev_info dev;
	struct rte_ether_addr mac;
	uint16_t rxd = PORT_RXD, txd = PORT_TXD, q;
	int sock = rte_eth_dev_socket_id(pi->port_id), rc;

	if (sock < 0)
		sock = 0;
	rc = rte_eth_dev_info_get(pi->port_id, &dev);
	if (rc != 0) {
		snprintf(err, errlen, "[dpdk] port %s: no device info (%s)", cf->dpdk_port,
			 strerror(-rc));
		return rc;
	}
	if (pi->nb_queues > dev.max_rx_queues || pi->nb_queues > dev.max_tx_queues) {
		snprintf(err, errlen, "[dpdk] port %s has %u rx / %u tx queues but lcores = %u "
			 "needs one pair per lcore: lower [dpdk] lcores", cf->dpdk_port,
			 dev.max_rx_queues, dev.max_tx_queues, pi->nb_queues);
		return -EINVAL;
	}
	if (cf->dpdk_mtu > dev.max_mtu || cf->dpdk_mtu < dev.min_mtu) {
		snprintf(err, errlen, "[dpdk] mtu %u: port %s accepts %u .. %u", cf->dpdk_mtu,
			 cf->dpdk_port, dev.min_mtu, dev.max_mtu);
		return -EINVAL;
	}
	conf.rxmode.mtu = cf->dpdk_mtu;
	rc = rte_eth_dev_configure(pi->port_id, pi->nb_queues, pi->nb_queues, &conf);
	if (rc != 0) {
		snprintf(err, errlen, "[dpdk] port %s: configure with %u queues: %s",
			 cf->dpdk_port, pi->nb_queues, strerror(-rc));
		return rc;
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(pi->port_id, &rxd, &txd);
	for (q = 0; rc == 0 && q < pi->nb_queues; q++) {
		rc = rte_eth_rx_queue_setup(pi->port_id, q, rxd, sock, NULL, p->pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(pi->port_id, q, txd, sock, NULL);
	}
	if (rc != 0) {
		snprintf(err, errlen, "[dpdk] port %s: queue setup: %s", cf->dpdk_port,
			 strerror(-rc));
		return rc;
	}
	/* Not every PMD can set the MTU after configure; the rxmode asked. */
	(void)rte_eth_dev_set_mtu(pi->port_id, cf->dpdk_mtu);
	rc = rte_eth_macaddr_get(pi->port_id, &mac);
	if (rc != 0) {
		snprintf(err, errlen, "[dpdk] port %s: no MAC address", cf->dpdk_port);
		return rc;
	}
	memcpy(pi->mac, mac.addr_bytes, 6);
	rc = rte_eth_dev_start(pi->port_id);
	if (rc != 0) {
		snprintf(err, errlen, "[dpdk] port %s: start: %s", cf->dpdk_port, strerror(-rc));
		return rc;
	}
	p->started = true;
	/* Frames for other hosts would only be dropped in software. */
	(void)rte_eth_promiscuous_disable(pi->port_id);
	return 0;
}

struct port *
port_open(const struct engine_conf *cf, uint16_t nb_queues, char *err, size_t errlen)
{
	struct port *p;
	struct port_info *pi;
	unsigned int nmbufs;
	uint32_t room;
	char name[RTE_RING_NAMESIZE];
	int sock;

	if (cf->dpdk_port[0] == '\0') {
		snprintf(err, errlen, "[io] backend = dpdk needs [dpdk] port (a PCI address or a "
			 "vdev such as net_tap0,iface=dtap0)");
		return NULL;
	}
	p = calloc(1, sizeof(*p) + nb_queues * sizeof(p->rings[0]));
	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pi = &p->info;
	pi->nb_queues = nb_queues;
	pi->mtu = (uint16_t)cf->dpdk_mtu;
	if (parse_addrs(cf, pi, err, errlen) != 0 ||
	    find_port(cf->dpdk_port, &pi->port_id, err, errlen) != 0)
		goto out_free;
	if (getrandom(pi->steer_key, sizeof(pi->steer_key), 0) != sizeof(pi->steer_key) ||
	    getrandom(pi->secret, sizeof(pi->secret), 0) != sizeof(pi->secret)) {
		snprintf(err, errlen, "no randomness for the TCP keys");
		goto out_free;
	}
	sock = rte_eth_dev_socket_id(pi->port_id);
	if (sock < 0)
		sock = 0;
	/* Whole frames in one segment: the TCP core reads contiguous packets. */
	room = RTE_PKTMBUF_HEADROOM + cf->dpdk_mtu + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN +
	       2 * RTE_VLAN_HLEN;
	if (room < RTE_MBUF_DEFAULT_BUF_SIZE)
		room = RTE_MBUF_DEFAULT_BUF_SIZE;
	nmbufs = nb_queues * (PORT_RXD + PORT_TXD + PORT_RING_SIZE + PORT_LCORE_HELD +
			      2 * POOL_CACHE) + 1024;
	p->pool = rte_pktmbuf_pool_create("parley_mbufs", nmbufs, POOL_CACHE, 0, room, sock);
	if (p->pool == NULL) {
		snprintf(err, errlen, "[dpdk] mbuf pool of %u x %u bytes: %s (without hugepages "
			 "EAL has -m MiB of memory; raise it in [dpdk] eal)", nmbufs, room,
			 rte_strerror(rte_errno));
		goto out_free;
	}
	for (uint16_t q = 0; q < nb_queues; q++) {
		snprintf(name, sizeof(name), "parley_steer%u", q);
		/* Several lcores steer into one: multi-producer, single consumer. */
		p->rings[q] = rte_ring_create(name, PORT_RING_SIZE, sock, RING_F_SC_DEQ);
		if (p->rings[q] == NULL) {
			snprintf(err, errlen, "[dpdk] steering ring: %s", rte_strerror(rte_errno));
			goto out_free;
		}
	}
	if (setup_device(p, cf, err, errlen) != 0)
		goto out_free;
	LOG(NOTICE, IO, "dpdk: port %u (%s), MAC %02x:%02x:%02x:%02x:%02x:%02x, %s, %u queue "
	    "pair%s, MTU %u, %u mbufs", pi->port_id, cf->dpdk_port, pi->mac[0], pi->mac[1],
	    pi->mac[2], pi->mac[3], pi->mac[4], pi->mac[5], cf->dpdk_addr, nb_queues,
	    nb_queues == 1 ? "" : "s", pi->mtu, nmbufs);
	return p;

out_free:
	port_close(p);
	return NULL;
}

void
port_close(struct port *p)
{
	if (p == NULL)
		return;
	if (p->started) {
		(void)rte_eth_dev_stop(p->info.port_id);
		(void)rte_eth_dev_close(p->info.port_id);
	}
	for (uint16_t q = 0; q < p->info.nb_queues; q++) {
		void *m;

		if (p->rings[q] == NULL)
			continue;
		while (rte_ring_sc_dequeue(p->rings[q], &m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(p->rings[q]);
	}
	rte_mempool_free(p->pool);
	free(p);
}

const struct port_info *
port_info(const struct port *p)
{
	return &p->info;
}

struct rte_mempool *
port_pool(const struct port *p)
{
	return p->pool;
}

struct rte_ring *
port_ring(const struct port *p, uint16_t q)
{
	return p->rings[q];
}
