/* parley-bench's user-space network; see unet.h.
 *
 * One port for the process (opened by unet_init), one struct unet per
 * worker: its queue pair, a utcp stack with its own ephemeral ports, an ARP
 * cache and a tx staging array that leaves in one rte_eth_tx_burst per
 * poll (or per TX_BURST frames). A received frame goes through the stack
 * and is freed at once: the stack copies in-order payload into its ring,
 * from which nbconn moves it into OpenSSL's read BIO.
 *
 * The worker sleeps when a poll found nothing (memif has no interrupt that
 * this loop waits for): at most NAP_US, or until its next post is due, so
 * that it costs little CPU when idle and its CPU figure means work. */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/random.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/base/clock.h"
#include "dataplane/tcp/arp.h"
#include "dataplane/tcp/utcp.h"
#include "perf/unet.h"

#define RX_BURST	32
#define RX_BURSTS_MAX	8
#define TX_BURST	32
#define TX_STAGE	512
#define TICK_US		500
#define NAP_US		100	/* longest sleep of an idle poll */
#define NB_DESC		1024
#define POOL_CACHE	256
#define EAL_ARGS_MAX	64
#define LINK_WAIT_MS	5000

/* The process's port (main thread writes it before the workers start). */
static struct {
	bool		eal, started;
	uint16_t	port_id;
	uint16_t	nqueues;
	uint16_t	mtu;
	uint32_t	addr;
	uint32_t	max_conns;
	uint8_t		mac[6];
	uint8_t		secret[16];
	struct rte_mempool *pool;
	bool		own_prefix;	/* ours to remove: EAL leaves its files */
	char		rundir[256];
} P;

struct unet {
	uint16_t	q;
	struct utcp_stack *st;
	struct arp_cache *arp;
	unet_event_fn	*ev;
	void		*arg;
	uint64_t	now_us, next_tick_us;
	uint32_t	peer;			/* the resolved next hop */
	uint8_t		peer_mac[6];
	bool		peer_ok;
	uint16_t	ntx;
	struct rte_mbuf	*tx[TX_STAGE];
	struct unet_stats s;
};

/* ---- EAL and the port (main thread) ---- */

static int
eal_start(const struct unet_conf *cf, char *err, size_t errlen)
{
	char *argv[EAL_ARGS_MAX + 8], *copy = strdup(cf->eal ? cf->eal : ""), *save = NULL, *tok;
	char vdev[512], prefix[64], lcores[300], prog[] = "parley-bench",
	     loglevel[] = "--log-level=lib.eal:warning";
	bool has_prefix = false, has_lcores = false;
	int argc = 0, n = 0, rc;
	cpu_set_t cpus;

	if (copy == NULL)
		return -ENOMEM;
	argv[argc++] = prog;
	for (tok = strtok_r(copy, " ", &save); tok != NULL && argc < EAL_ARGS_MAX;
	     tok = strtok_r(NULL, " ", &save)) {
		has_prefix |= strncmp(tok, "--file-prefix", 13) == 0;
		has_lcores |= strcmp(tok, "-l") == 0 || strncmp(tok, "--lcores", 8) == 0 ||
			      strcmp(tok, "-c") == 0;
		argv[argc++] = tok;
	}
	snprintf(vdev, sizeof(vdev), "--vdev=%s", cf->port);
	argv[argc++] = vdev;
	if (!has_prefix) {
		/* memif needs the multi-process channel: a prefix per process. */
		snprintf(prefix, sizeof(prefix), "--file-prefix=parley-bench-%d", (int)getpid());
		argv[argc++] = prefix;
	}
	if (!has_lcores) {
		/* The main lcore on the CPUs we were given, not moved to CPU 0. */
		if (sched_getaffinity(0, sizeof(cpus), &cpus) == -1) {
			free(copy);
			return -errno;
		}
		n = snprintf(lcores, sizeof(lcores), "--lcores=0@(");
		for (int i = 0, k = 0; i < CPU_SETSIZE && n < (int)sizeof(lcores) - 8; i++)
			if (CPU_ISSET(i, &cpus))
				n += snprintf(lcores + n, sizeof(lcores) - n, "%s%d", k++ ? "," : "", i);
		snprintf(lcores + n, sizeof(lcores) - n, ")");
		argv[argc++] = lcores;
	}
	argv[argc++] = loglevel;
	argv[argc] = NULL;
	rc = rte_eal_init(argc, argv);
	free(copy);
	if (rc < 0) {
		snprintf(err, errlen, "DPDK EAL initialisation failed (%s); EAL arguments \"%s\" "
			 "(memif needs no --no-shconf)", rte_strerror(rte_errno), cf->eal);
		return -EINVAL;
	}
	P.eal = true;
	P.own_prefix = !has_prefix;
	snprintf(P.rundir, sizeof(P.rundir), "%s", rte_eal_get_runtime_dir());
	return 0;
}

/* EAL's runtime files of the prefix we chose (the multi-process channel's
 * config and memory maps): removed after rte_eal_cleanup(). */
static void
remove_rundir(void)
{
	DIR *d = opendir(P.rundir);
	struct dirent *e;
	char path[512];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", P.rundir, e->d_name);
		(void)unlink(path);
	}
	closedir(d);
	(void)rmdir(P.rundir);
}

static int
port_setup(const struct unet_conf *cf, char *err, size_t errlen)
{
	struct rte_eth_conf conf = { .rxmode.mq_mode = RTE_ETH_MQ_RX_NONE };
	struct rte_eth_link link;
	struct rte_ether_addr mac;
	char name[RTE_DEV_NAME_MAX_LEN];
	uint16_t rxd = NB_DESC, txd = NB_DESC;
	size_t nl = strcspn(cf->port, ",");
	unsigned nmbufs;
	int rc;

	if (nl == 0 || nl >= sizeof(name)) {
		snprintf(err, errlen, "--dpdk \"%s\": not a vdev spec", cf->port);
		return -EINVAL;
	}
	memcpy(name, cf->port, nl);
	name[nl] = '\0';
	if (rte_eth_dev_get_port_by_name(name, &P.port_id) != 0) {
		snprintf(err, errlen, "--dpdk \"%s\": EAL created no such port", cf->port);
		return -ENODEV;
	}
	nmbufs = cf->nqueues * (2 * NB_DESC + TX_STAGE + 2 * POOL_CACHE) + 1024;
	P.pool = rte_pktmbuf_pool_create("bench_mbufs", nmbufs, POOL_CACHE, 0,
					 RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (P.pool == NULL) {
		snprintf(err, errlen, "mbuf pool of %u mbufs: %s (raise -m in --dpdk-eal)", nmbufs,
			 rte_strerror(rte_errno));
		return -ENOMEM;
	}
	conf.rxmode.mtu = cf->mtu;
	rc = rte_eth_dev_configure(P.port_id, cf->nqueues, cf->nqueues, &conf);
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(P.port_id, &rxd, &txd);
	for (uint16_t q = 0; rc == 0 && q < cf->nqueues; q++) {
		rc = rte_eth_rx_queue_setup(P.port_id, q, rxd, rte_socket_id(), NULL, P.pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(P.port_id, q, txd, rte_socket_id(), NULL);
	}
	if (rc == 0)
		rc = rte_eth_macaddr_get(P.port_id, &mac);
	if (rc == 0)
		rc = rte_eth_dev_start(P.port_id);
	if (rc != 0) {
		snprintf(err, errlen, "--dpdk %s: port setup with %u queue pair(s): %s", name,
			 cf->nqueues, strerror(rc < 0 ? -rc : rc));
		return rc < 0 ? rc : -rc;
	}
	P.started = true;
	memcpy(P.mac, mac.addr_bytes, 6);
	for (int i = 0; i < LINK_WAIT_MS / 10; i++) {
		if (rte_eth_link_get_nowait(P.port_id, &link) == 0 && link.link_status)
			return 0;
		usleep(10000);
	}
	snprintf(err, errlen, "--dpdk %s: link down after %d s: is parleyd running with [dpdk] "
		 "port = net_memif...,role=server on the same socket (and %u queue pair(s))?",
		 name, LINK_WAIT_MS / 1000, cf->nqueues);
	return -ENOTCONN;
}

int
unet_init(const struct unet_conf *cf, char *err, size_t errlen)
{
	int rc;

	P.nqueues = cf->nqueues;
	P.mtu = cf->mtu;
	P.addr = cf->addr;
	P.max_conns = cf->max_conns;
	if (getrandom(P.secret, sizeof(P.secret), 0) != sizeof(P.secret)) {
		snprintf(err, errlen, "no randomness for the TCP keys");
		return -EIO;
	}
	rc = eal_start(cf, err, errlen);
	if (rc == 0)
		rc = port_setup(cf, err, errlen);
	return rc;
}

void
unet_fini(void)
{
	if (P.started) {
		(void)rte_eth_dev_stop(P.port_id);
		(void)rte_eth_dev_close(P.port_id);
		P.started = false;
	}
	rte_mempool_free(P.pool);
	P.pool = NULL;
	if (P.eal) {
		rte_eal_cleanup();
		if (P.own_prefix && P.rundir[0] != '\0')
			remove_rundir();
	}
	P.eal = false;
}

/* ---- tx ---- */

void
unet_flush(struct unet *u)
{
	uint16_t n;

	if (u->ntx == 0)
		return;
	n = rte_eth_tx_burst(P.port_id, u->q, u->tx, u->ntx);
	u->s.tx += n;
	if (n < u->ntx)
		memmove(u->tx, u->tx + n, (u->ntx - n) * sizeof(u->tx[0]));
	u->ntx -= n;
}

static int
stage(struct unet *u, struct rte_mbuf *m)
{
	if (u->ntx == TX_STAGE)
		unet_flush(u);
	if (u->ntx == TX_STAGE) {
		/* The TCP core holds the segment (-ENOBUFS) and offers it
		 * again at utcp_flush(): a refusal, not a loss. */
		rte_pktmbuf_free(m);
		u->s.tx_refused++;
		return -ENOBUFS;
	}
	u->tx[u->ntx++] = m;
	if (u->ntx >= TX_BURST)
		unet_flush(u);
	return 0;
}

static void
tx_frame(struct unet *u, const void *frame, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(P.pool);
	char *p;

	if (m == NULL || (p = rte_pktmbuf_append(m, (uint16_t)len)) == NULL) {
		rte_pktmbuf_free(m);
		u->s.tx_drop++;
		return;
	}
	memcpy(p, frame, len);
	if (stage(u, m) != 0)
		u->s.tx_drop++;	/* an ARP frame: nobody holds it */
}

/* ---- the TCP core's callbacks ---- */

static uint64_t
clock_cb(void *arg)
{
	struct unet *u = arg;

	return u->now_us = clock_mono_us();
}

/* Every packet goes to the one peer resolved by unet_resolve() (a point-to-
 * point link); anything else is dropped and TCP retransmits. */
static int
output_cb(void *arg, const void *pkt, size_t len)
{
	struct unet *u = arg;
	struct rte_ether_hdr *eth;
	struct rte_mbuf *m;

	if (!u->peer_ok || len > P.mtu) {
		u->s.tx_drop++;
		return -ENETUNREACH;
	}
	m = rte_pktmbuf_alloc(P.pool);
	if (m == NULL) {
		u->s.tx_refused++;	/* held by the TCP core, as in stage() */
		return -ENOBUFS;
	}
	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m, (uint16_t)(sizeof(*eth) + len));
	if (eth == NULL) {
		rte_pktmbuf_free(m);
		u->s.tx_drop++;
		return -EMSGSIZE;
	}
	memcpy(eth + 1, pkt, len);
	memcpy(eth->dst_addr.addr_bytes, u->peer_mac, 6);
	memcpy(eth->src_addr.addr_bytes, P.mac, 6);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	return stage(u, m);
}

static void
event_cb(void *arg, struct utcp_conn *c, enum utcp_event ev)
{
	struct unet *u = arg;
	void *owner = utcp_conn_user(c);

	(void)ev;
	if (owner != NULL)
		u->ev(u->arg, owner);
}

struct unet *
unet_create(uint16_t q, unet_event_fn *ev, void *arg, char *err, size_t errlen)
{
	struct utcp_callbacks cb = { .output = output_cb, .event = event_cb, .now_us = clock_cb };
	struct arp_config ac = { .ip = P.addr };
	struct utcp_config uc;
	struct unet *u;

	/* An lcore id for this thread: the mempool's per-lcore cache. */
	if (rte_thread_register() != 0) {
		snprintf(err, errlen, "rte_thread_register: %s", rte_strerror(rte_errno));
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (u == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	u->q = q;
	u->ev = ev;
	u->arg = arg;
	u->now_us = clock_mono_us();
	cb.arg = u;
	utcp_config_init(&uc);
	uc.local_addr = P.addr;
	uc.mss = (uint16_t)(P.mtu - 40);
	uc.max_conns = P.max_conns + 64;
	/* A client holds little in flight: small rings, fewer pages to touch. */
	uc.sndbuf = 32768;
	uc.rcvbuf = 32768;
	/* Many small exchanges: what we receive is answered at once, so the
	 * ACK rides on the answer; a pure ACK waits at most this long. */
	uc.delack_us = 1000;
	memcpy(uc.isn_secret, P.secret, sizeof(uc.isn_secret));
	uc.lcore_id = 0;
	uc.nb_lcores = 1;
	u->st = utcp_stack_create(&uc, &cb);
	memcpy(ac.mac, P.mac, 6);
	u->arp = arp_create(&ac);
	if (u->st == NULL || u->arp == NULL) {
		snprintf(err, errlen, "out of memory for the TCP stack (%u connections)",
			 uc.max_conns);
		unet_destroy(u);
		return NULL;
	}
	return u;
}

void
unet_destroy(struct unet *u)
{
	if (u == NULL)
		return;
	unet_flush(u);
	for (uint16_t i = 0; i < u->ntx; i++)
		rte_pktmbuf_free(u->tx[i]);
	utcp_stack_destroy(u->st);
	arp_destroy(u->arp);
	free(u);
}

/* ---- rx ---- */

static void
rx_frames(struct unet *u, struct rte_mbuf **ms, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = ms[i];
		const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
		uint8_t reply[ARP_FRAME_LEN];

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(ms[i + 1], void *));
		if (m->nb_segs != 1 || m->data_len < sizeof(*eth)) {
			rte_pktmbuf_free(m);
			continue;
		}
		switch (rte_be_to_cpu_16(eth->ether_type)) {
		case RTE_ETHER_TYPE_ARP:
			if (arp_input(u->arp, eth, m->data_len, u->now_us, reply) == ARP_FRAME_LEN)
				tx_frame(u, reply, ARP_FRAME_LEN);
			break;
		case RTE_ETHER_TYPE_IPV4:
			utcp_input(u->st, eth + 1, m->data_len - sizeof(*eth));
			break;
		default:
			break;
		}
		rte_pktmbuf_free(m);
	}
}

static unsigned
rx_once(struct unet *u)
{
	struct rte_mbuf *ms[RX_BURST];
	unsigned total = 0;

	for (int b = 0; b < RX_BURSTS_MAX; b++) {
		uint16_t n = rte_eth_rx_burst(P.port_id, u->q, ms, RX_BURST);

		if (n == 0)
			break;
		u->s.rx += n;
		rx_frames(u, ms, n);
		total += n;
		if (n < RX_BURST)
			break;
	}
	return total;
}

static void
timers(struct unet *u)
{
	u->now_us = clock_mono_us();
	if (u->now_us < u->next_tick_us)
		return;
	u->next_tick_us = u->now_us + TICK_US;
	utcp_tick(u->st);
}

unsigned
unet_poll(struct unet *u, uint64_t wait_ns)
{
	unsigned n;

	u->s.polls++;
	u->now_us = clock_mono_us();
	n = rx_once(u);
	if (n == 0 && u->ntx == 0 && wait_ns > 0) {
		struct timespec ts = { 0, (long)(wait_ns < NAP_US * 1000 ? wait_ns : NAP_US * 1000) };

		u->s.naps++;
		nanosleep(&ts, NULL);
		u->now_us = clock_mono_us();
		n = rx_once(u);
	}
	timers(u);
	unet_flush(u);
	/* Segments the TCP core held while staging was full go into the
	 * room the burst made, and leave with this turn's second burst. */
	if (u->ntx < TX_STAGE) {
		utcp_flush(u->st);
		unet_flush(u);
	}
	return n;
}

int
unet_resolve(struct unet *u, uint32_t raddr, int timeout_ms)
{
	uint64_t end = clock_mono_us() + (uint64_t)timeout_ms * 1000;
	uint8_t req[ARP_FRAME_LEN];

	u->peer = raddr;
	for (;;) {
		size_t rlen = 0;

		u->now_us = clock_mono_us();
		if (arp_resolve(u->arp, raddr, u->now_us, u->peer_mac, req, &rlen) == 0) {
			u->peer_ok = true;
			return 0;
		}
		if (rlen == ARP_FRAME_LEN)
			tx_frame(u, req, rlen);
		unet_flush(u);
		if (u->now_us >= end)
			return -ETIMEDOUT;
		if (rx_once(u) == 0)
			usleep(1000);
	}
}

int
unet_connect(struct unet *u, uint32_t raddr, uint16_t rport, void *owner, struct utcp_conn **out)
{
	if (!u->peer_ok || raddr != u->peer)
		return -ENETUNREACH;
	return utcp_connect(u->st, raddr, rport, 0, owner, out);
}

void
unet_stats(const struct unet *u, struct unet_stats *s)
{
	*s = u->s;
	s->rtx = utcp_stats(u->st)[UTCP_STAT_RETRANSMIT];
}
