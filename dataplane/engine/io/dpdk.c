/* The dpdk I/O backend: DPDK port queues, Ethernet and ARP, and the
 * user-space TCP (dataplane/tcp/utcp.h) under the same byte-stream interface
 * as the kernel backend (engine_int.h: struct io_ops).
 *
 * Per lcore: one rx/tx queue pair of the port (port.h), one utcp stack, one
 * ARP cache, a tx staging array flushed in bursts, and a queue of packets
 * waiting for ARP. A connection belongs to the lcore that utcp_steer() names
 * for its 4-tuple; the device gives no RSS control on the test PMDs, so a TCP
 * packet that arrives on another lcore's queue is handed to its owner over
 * the owner's steering ring (in bursts) and that lcore is woken. ARP and ICMP
 * are handled where they arrive; ARP replies are also copied to every other
 * lcore (the mbuf is shared, refcounted) so each cache learns the mapping its
 * own resolution asked for.
 *
 * Bytes: received payload is copied once by the TCP core into its receive
 * ring (it never keeps a packet); utcp_peek() hands those spans straight to
 * conn_input(), whose only copy is the one into OpenSSL's memory BIO. On the
 * way out the ciphertext is copied from the BIO into the TCP send buffer
 * (kept for retransmission) and each segment once into its mbuf.
 *
 * Idle: an lcore that found nothing to do sleeps up to [dpdk] idle_sleep_us
 * on its wake eventfd (lcore_wake, and lcores that steer packets to it), so a
 * quiet server does not burn the CPUs its Linux peers need.
 *
 * The Web service: its connections (the port of [web] listen, on our
 * address) are accepted here like SIP's, and their bytes relayed over a
 * socketpair each to the Web service's thread (relay.h), which does TLS,
 * HTTP and the blocking file I/O that must stay off the lcores. The relays'
 * sockets sit in an epoll set that the idle sleep also waits on.
 *
 * Setup and teardown (port, stack, listeners, counters) are in dpdk_boot.c.
 *
 * Tests only: PARLEY_DPDK_FAULT in the environment puts a seeded fault layer
 * (io/fault.h: drop, duplicate, reorder, delay with jitter) on the TCP frames
 * of both paths. Delayed frames wait in the layer's delay line until due; the
 * idle sleep ends by then. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/engine/io/dpdk_int.h"
#include "dataplane/tls/tlsterm.h"

static uint64_t
clock_cb(void *arg)
{
	struct dpdk_lc *d = arg;

	return d->now_us = clock_mono_us();
}

/* ---- tx ---- */

void
dpdk_tx_flush(struct dpdk_lc *d)
{
	uint16_t n;

	if (d->ntx == 0)
		return;
	n = rte_eth_tx_burst(d->pi->port_id, d->q, d->tx, d->ntx);
	d->stat[DS_TX] += n;
	/* Queue full: the rest goes with the next burst. Until one goes
	 * through, staging waits for the next loop turn instead of retrying
	 * per packet, and an idle lcore may sleep (the peer is not reading). */
	d->tx_full = n < d->ntx;
	if (n < d->ntx) {
		d->stat[DS_TX_SHORT]++;
		memmove(d->tx, d->tx + n, (d->ntx - n) * sizeof(d->tx[0]));
	}
	d->ntx -= n;
}

/* Takes <m> in every case. */
static int
tx_put(struct dpdk_lc *d, struct rte_mbuf *m)
{
	if (d->ntx == TX_STAGE)
		dpdk_tx_flush(d);
	if (d->ntx == TX_STAGE) {
		rte_pktmbuf_free(m);
		d->stat[DS_TX_DROP]++;
		return -ENOBUFS;
	}
	d->tx[d->ntx++] = m;
	if (d->ntx >= TX_BURST && !d->tx_full)
		dpdk_tx_flush(d);
	return 0;
}

static bool
is_tcp_frame(const struct rte_mbuf *m)
{
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);

	return m->data_len >= sizeof(*eth) + 20 &&
	       eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) &&
	       ((const uint8_t *)(eth + 1))[9] == 6;
}

/* A frame the fault layer lets go: to the port, or into its delay line when
 * it has one (full: dropped, as netem drops over its limit). Takes <m>. */
static int
tx_emit(struct dpdk_lc *d, struct rte_mbuf *m)
{
	if (!fault_delays(&d->ftx))
		return tx_put(d, m);
	if (fault_delay_push(&d->ftx, m, d->now_us) != 0)
		rte_pktmbuf_free(m);	/* counted in ftx.delay_full */
	return 0;
}

/* Stages <m> for the port, through the fault layer when it is on. Takes <m>. */
static int
tx_stage(struct dpdk_lc *d, struct rte_mbuf *m)
{
	struct rte_mbuf *held;

	if (!fault_active(&d->ftx) || !is_tcp_frame(m))
		return tx_put(d, m);
	switch (fault_roll(&d->ftx)) {
	case FAULT_DROP:
		rte_pktmbuf_free(m);
		return 0;
	case FAULT_DUP:
		rte_mbuf_refcnt_update(m, 1);
		tx_emit(d, m);
		return tx_emit(d, m);
	case FAULT_HOLD:
		held = d->tx_held;
		d->tx_held = m;
		d->tx_held_us = d->now_us;
		return held != NULL ? tx_emit(d, held) : 0;
	default:
		tx_emit(d, m);
		held = d->tx_held;	/* after this one: out of order */
		d->tx_held = NULL;
		return held != NULL ? tx_emit(d, held) : 0;
	}
}

static void
tx_frame(struct dpdk_lc *d, const void *frame, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(d->pool);
	char *p;

	if (m == NULL || (p = rte_pktmbuf_append(m, len)) == NULL) {
		rte_pktmbuf_free(m);
		d->stat[DS_TX_DROP]++;
		return;
	}
	memcpy(p, frame, len);
	tx_stage(d, m);
}

/* ---- ARP ---- */

static void
pend_add(struct dpdk_lc *d, struct rte_mbuf *m, uint32_t nexthop)
{
	if (d->npend == PEND_MAX) {
		/* Drop the oldest: it has waited longest for an answer. */
		rte_pktmbuf_free(d->pend[0].m);
		memmove(d->pend, d->pend + 1, (PEND_MAX - 1) * sizeof(d->pend[0]));
		d->npend--;
		d->stat[DS_ARP_PENDING_DROP]++;
	}
	d->pend[d->npend++] = (struct pending){ m, nexthop, d->now_us };
	d->stat[DS_ARP_PENDING]++;
}

/* Sends what ARP can now resolve, drops what waited too long, and repeats
 * requests (arp_resolve rate-limits them). */
static void
pend_retry(struct dpdk_lc *d)
{
	uint8_t req[ARP_FRAME_LEN];
	uint32_t i, keep = 0;

	for (i = 0; i < d->npend; i++) {
		struct pending *p = &d->pend[i];
		size_t rlen = 0;
		uint8_t mac[6];

		if (arp_resolve(d->arp, p->nexthop, d->now_us, mac, req, &rlen) == 0) {
			memcpy(rte_pktmbuf_mtod(p->m, uint8_t *), mac, 6);
			tx_stage(d, p->m);
			continue;
		}
		if (rlen == ARP_FRAME_LEN) {
			tx_frame(d, req, rlen);
			d->stat[DS_ARP_OUT]++;
		}
		if (d->now_us - p->since_us >= PEND_TTL_US) {
			rte_pktmbuf_free(p->m);
			d->stat[DS_ARP_PENDING_DROP]++;
			continue;
		}
		d->pend[keep++] = *p;
	}
	d->npend = keep;
}

/* ---- the TCP core's callbacks ---- */

/* utcp output: <pkt> is a whole IPv4 packet; frame it and send it, or park
 * it until ARP answers. -ENOBUFS (no mbuf, staging full): the TCP core keeps
 * the segment and offers it again at utcp_flush(). */
static int
output_cb(void *arg, const void *pkt, size_t len)
{
	struct dpdk_lc *d = arg;
	const struct port_info *pi = d->pi;
	const uint8_t *ip = pkt;
	struct rte_ether_hdr *eth;
	struct rte_mbuf *m;
	uint8_t req[ARP_FRAME_LEN];
	size_t rlen = 0;
	uint32_t dst, nh;

	if (len < 20)
		return -EINVAL;
	if (len > pi->mtu) {
		/* A PMD refuses an oversize frame at the head of its queue
		 * forever (net_tap does): never hand it one. */
		d->stat[DS_TX_OVERSIZE]++;
		return -EMSGSIZE;
	}
	dst = (uint32_t)ip[16] << 24 | (uint32_t)ip[17] << 16 | (uint32_t)ip[18] << 8 | ip[19];
	nh = (dst & pi->netmask) == (pi->addr & pi->netmask) ? dst : pi->gateway;
	if (nh == 0) {
		d->stat[DS_NO_ROUTE]++;
		return -ENETUNREACH;
	}
	m = rte_pktmbuf_alloc(d->pool);
	if (m == NULL) {
		d->stat[DS_TX_DROP]++;
		return -ENOBUFS;
	}
	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m, sizeof(*eth) + len);
	if (eth == NULL) {
		rte_pktmbuf_free(m);
		d->stat[DS_TX_DROP]++;
		return -EMSGSIZE;
	}
	memcpy(eth + 1, pkt, len);
	memcpy(eth->src_addr.addr_bytes, pi->mac, 6);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	if (arp_resolve(d->arp, nh, d->now_us, eth->dst_addr.addr_bytes, req, &rlen) == 0)
		return tx_stage(d, m);
	if (rlen == ARP_FRAME_LEN) {
		tx_frame(d, req, rlen);
		d->stat[DS_ARP_OUT]++;
	}
	pend_add(d, m, nh);
	return 0;
}

static void
conn_readable(struct conn *c, struct utcp_conn *uc)
{
	for (;;) {
		const void *p[2];
		size_t len[2], used = 0;
		int n;

		if (c->state == CONN_DEAD)
			return;
		n = utcp_peek(uc, p, len);
		if (n == 0)
			break;
		for (int i = 0; i < n && c->state != CONN_DEAD; i++) {
			conn_input(c, p[i], len[i]);
			used += len[i];
		}
		utcp_consume(uc, used);
	}
	if (!c->rd_eof && utcp_conn_readable(uc) == 0 && utcp_read(uc, NULL, 0) == 0) {
		/* The peer closed its side: flush what we owe (it may only
		 * have half-closed), then close. */
		c->rd_eof = true;
		conn_close(c, true);
	}
}

/* In-order payload straight from the packet (the TCP core offers it when
 * its receive ring is empty): into the TLS layer's BIO without a stop in
 * the ring. conn_input only queues work (output is flushed at the end of
 * the turn), so it never calls back into the stack from here. */
static size_t
recv_cb(void *arg, struct utcp_conn *uc, const void *data, size_t len)
{
	struct dpdk_lc *d = arg;
	struct conn *c = utcp_conn_user(uc);

	if (c == NULL || c == (void *)d || c == (void *)d->web)
		return 0;
	if (relay_owns(d->web, c))
		return relay_recv(d->web, uc, data, len);
	if (c->state != CONN_DEAD)
		conn_input(c, data, len);
	d->stat[DS_RX_DIRECT] += len;
	return len;
}

static void
accepted(struct dpdk_lc *d, struct utcp_conn *uc)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	uint32_t laddr, raddr;
	uint16_t lport, rport;
	struct conn *c;

	utcp_conn_tuple(uc, &laddr, &lport, &raddr, &rport);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(raddr);
	sin->sin_port = htons(rport);
	c = conn_new(d->lc, -1, &ss);
	if (c == NULL) {
		utcp_abort(uc);
		return;
	}
	c->io_handle = uc;
	utcp_conn_set_user(uc, c);
}

static void
event_cb(void *arg, struct utcp_conn *uc, enum utcp_event ev)
{
	struct dpdk_lc *d = arg;
	struct conn *c;

	c = utcp_conn_user(uc);
	if (ev == UTCP_EV_ACCEPTED) {
		/* The listener's user says which service: us (SIP) or the
		 * Web relay set. */
		if (d->web != NULL && c == (void *)d->web)
			relay_accepted(d->web, uc);
		else
			accepted(d, uc);
		return;
	}
	if (relay_owns(d->web, c)) {
		relay_event(d->web, uc, ev);
		return;
	}
	if (c == NULL || c == (void *)d || c->state == CONN_DEAD)
		return;
	switch (ev) {
	case UTCP_EV_READABLE:
		conn_readable(c, uc);
		break;
	case UTCP_EV_WRITABLE:
		conn_kick(c);	/* flushed at the end of the turn */
		break;
	case UTCP_EV_CLOSED:
		conn_close(c, false);
		break;
	default:
		break;
	}
}

/* ---- rx ---- */

static void
steer_stage(struct dpdk_lc *d, uint16_t to, struct rte_mbuf *m)
{
	uint16_t *n = &d->nsteer[to];

	if (*n == RX_BURST) {
		rte_pktmbuf_free(m);
		d->stat[DS_STEER_DROP]++;
		return;
	}
	d->steer[to * RX_BURST + (*n)++] = m;
}

static void
steer_flush(struct dpdk_lc *d)
{
	struct lcore_ctx *self = d->lc;

	for (uint16_t q = 0; q < d->pi->nb_queues; q++) {
		struct rte_mbuf **ms = &d->steer[q * RX_BURST];
		unsigned int n = d->nsteer[q], k;

		if (n == 0)
			continue;
		d->nsteer[q] = 0;
		k = rte_ring_mp_enqueue_burst(port_ring(d->port, q), (void **)ms, n, NULL);
		d->stat[DS_STEERED_OUT] += k;
		for (unsigned int i = k; i < n; i++) {	/* not accepted: still ours */
			rte_pktmbuf_free(ms[i]);
			d->stat[DS_STEER_DROP]++;
		}
		if (k > 0)
			lcore_wake(self->e->lcores[q]);
	}
}

static void
rx_arp(struct dpdk_lc *d, struct rte_mbuf *m, bool steered)
{
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	uint8_t reply[ARP_FRAME_LEN];
	int rc;

	d->stat[DS_ARP_IN]++;
	rc = arp_input(d->arp, f, m->data_len, d->now_us, reply);
	if (rc == ARP_FRAME_LEN)
		tx_frame(d, reply, ARP_FRAME_LEN);
	/* A reply (opcode 2) may answer another lcore's request. */
	if (!steered && d->pi->nb_queues > 1 && rc >= 0 && m->data_len >= ARP_FRAME_LEN &&
	    f[20] == 0 && f[21] == 2) {
		rte_mbuf_refcnt_update(m, (int16_t)(d->pi->nb_queues - 1));
		for (uint16_t q = 0; q < d->pi->nb_queues; q++)
			if (q != d->q)
				steer_stage(d, q, m);
	}
	rte_pktmbuf_free(m);
	if (d->npend > 0)
		pend_retry(d);
}

static bool
for_us(const struct dpdk_lc *d, const struct rte_ether_hdr *eth)
{
	return memcmp(eth->dst_addr.addr_bytes, d->pi->mac, 6) == 0 ||
	       rte_is_broadcast_ether_addr(&eth->dst_addr);
}

/* An IPv4 frame for us: to its owner's ring, or into our TCP stack. Takes <m>. */
static void
rx_ip(struct dpdk_lc *d, struct rte_mbuf *m, bool steered)
{
	const uint8_t *ip = rte_pktmbuf_mtod_offset(m, const uint8_t *, RTE_ETHER_HDR_LEN);
	size_t len = m->data_len - RTE_ETHER_HDR_LEN;
	uint16_t nq = d->pi->nb_queues;
	int owner;

	if (!steered && nq > 1) {
		owner = utcp_steer_packet(d->pi->steer_key, nq, ip, len);
		if (owner >= 0 && owner != d->q) {
			steer_stage(d, (uint16_t)owner, m);
			return;
		}
	}
	utcp_input(d->st, ip, len);
	rte_pktmbuf_free(m);
}

/* A frame from the port that the fault layer lets in: to rx_ip, or into its
 * delay line when it has one (full: dropped). Takes <m>. */
static void
rx_emit(struct dpdk_lc *d, struct rte_mbuf *m)
{
	if (!fault_delays(&d->frx))
		rx_ip(d, m, false);
	else if (fault_delay_push(&d->frx, m, d->now_us) != 0)
		rte_pktmbuf_free(m);	/* counted in frx.delay_full */
}

static void
rx_frames(struct dpdk_lc *d, struct rte_mbuf **ms, uint16_t n, bool steered)
{
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = ms[i], *held;
		const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
		size_t len = m->data_len;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(ms[i + 1], void *));
		if (m->nb_segs != 1 || len < sizeof(*eth) || !for_us(d, eth)) {
			rte_pktmbuf_free(m);
			d->stat[DS_DROP_L2]++;
			continue;
		}
		switch (rte_be_to_cpu_16(eth->ether_type)) {
		case RTE_ETHER_TYPE_ARP:
			rx_arp(d, m, steered);
			continue;
		case RTE_ETHER_TYPE_IPV4:
			break;
		default:
			rte_pktmbuf_free(m);
			d->stat[DS_DROP_L2]++;
			continue;
		}
		if (steered || !fault_active(&d->frx) || !is_tcp_frame(m)) {
			rx_ip(d, m, steered);
			continue;
		}
		switch (fault_roll(&d->frx)) {
		case FAULT_DROP:
			rte_pktmbuf_free(m);
			break;
		case FAULT_DUP:
			rte_mbuf_refcnt_update(m, 1);
			rx_emit(d, m);
			rx_emit(d, m);
			break;
		case FAULT_HOLD:
			held = d->rx_held;
			d->rx_held = m;
			d->rx_held_us = d->now_us;
			if (held != NULL)
				rx_emit(d, held);
			break;
		default:
			rx_emit(d, m);
			held = d->rx_held;	/* after this one: out of order */
			d->rx_held = NULL;
			if (held != NULL)
				rx_emit(d, held);
			break;
		}
	}
}

/* One pass over the queue and the steering ring; the frames handled. */
static unsigned int
rx_once(struct dpdk_lc *d)
{
	struct rte_mbuf *ms[RX_BURST];
	uint16_t n;
	unsigned int k, total = 0;

	/* Several bursts while the queue delivers full ones: a TAP's kernel
	 * side drops what does not fit its queue while we are away. */
	for (int b = 0; b < RX_BURSTS_MAX; b++) {
		n = rte_eth_rx_burst(d->pi->port_id, d->q, ms, RX_BURST);
		if (n == 0)
			break;
		d->stat[DS_RX] += n;
		rx_frames(d, ms, n, false);
		steer_flush(d);
		total += n;
		if (n < RX_BURST)
			break;
	}
	k = rte_ring_sc_dequeue_burst(d->ring, (void **)ms, RX_BURST, NULL);
	if (k > 0) {
		d->stat[DS_RX_STEERED_IN] += k;
		rx_frames(d, ms, (uint16_t)k, true);
		total += k;
	}
	return total;
}

/* Delayed frames that are due (fault layer): received ones into the stack
 * or to their owner, sent ones to the port. Every poll, not every tick: a
 * tick would add up to TICK_US to each delay. */
static void
delay_release(struct dpdk_lc *d)
{
	struct rte_mbuf *m;
	bool rx = false;

	while ((m = fault_delay_pop(&d->frx, d->now_us)) != NULL) {
		rx_ip(d, m, false);
		rx = true;
	}
	if (rx)
		steer_flush(d);
	while ((m = fault_delay_pop(&d->ftx, d->now_us)) != NULL)
		tx_put(d, m);
}

/* <us> cut short so that an idle lcore wakes when a delayed frame is due. */
static uint64_t
delay_sleep_us(const struct dpdk_lc *d, uint64_t us)
{
	uint64_t due = fault_delay_next(&d->frx), txdue = fault_delay_next(&d->ftx);

	if (txdue < due)
		due = txdue;
	if (due <= d->now_us)
		return 0;
	return due - d->now_us < us ? due - d->now_us : us;
}

static void
timers(struct dpdk_lc *d)
{
	d->now_us = clock_mono_us();
	delay_release(d);
	if (d->now_us < d->next_tick_us)
		return;
	d->next_tick_us = d->now_us + TICK_US;
	if (d->rx_held != NULL && d->now_us - d->rx_held_us >= d->frx.hold_us) {
		struct rte_mbuf *m = d->rx_held;

		d->rx_held = NULL;
		rx_emit(d, m);
		steer_flush(d);
	}
	if (d->tx_held != NULL && d->now_us - d->tx_held_us >= d->ftx.hold_us) {
		tx_emit(d, d->tx_held);
		d->tx_held = NULL;
	}
	utcp_tick(d->st);
	if (d->npend > 0)
		pend_retry(d);
}

/* ---- struct io_ops ---- */

static void
sleep_idle(struct dpdk_lc *d, int timeout_ms)
{
	struct lcore_ctx *lc = d->lc;
	uint64_t us = lc->e->conf.dpdk_idle_sleep_us;
	struct pollfd pfd[2] = { { .fd = lc->wake_fd, .events = POLLIN },
				 { .fd = d->web != NULL ? relay_fd(d->web) : -1, .events = POLLIN } };
	struct timespec ts;

	if ((uint64_t)timeout_ms * 1000 < us)
		us = (uint64_t)timeout_ms * 1000;
	us = delay_sleep_us(d, us);
	ts.tv_sec = us / 1000000;
	ts.tv_nsec = (us % 1000000) * 1000;
	d->stat[DS_SLEEPS]++;
	/* The relays' epoll set is readable when a Web socket has bytes. */
	if (ppoll(pfd, 2, &ts, NULL) > 0 && (pfd[0].revents & POLLIN)) {
		uint64_t v;

		if (read(lc->wake_fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
			LOG(ERR, IO, "lcore %u: eventfd: %s", lc->pub.idx, strerror(errno));
	}
}

void
dpdk_poll(struct lcore_ctx *lc, int timeout_ms)
{
	struct dpdk_lc *d = lc->io_lcore;

	/* What the last loop turn wrote (conn_reap) leaves first; then the
	 * TCP segments refused while staging was full (output_cb:
	 * -ENOBUFS) go into the room that made. */
	dpdk_tx_flush(d);
	if (d->ntx < TX_STAGE)
		utcp_flush(d->st);
	d->now_us = clock_mono_us();
	if (rx_once(d) == 0 && timeout_ms > 0 && lc->e->conf.dpdk_idle_sleep_us > 0 &&
	    (d->ntx == 0 || d->tx_full)) {
		sleep_idle(d, timeout_ms);
		d->now_us = clock_mono_us();
		rx_once(d);
	}
	relay_poll(d->web);
	/* Relayed connections keep a draining lcore alive (lcore.c). */
	lc->io_streams = relay_count(d->web);
	timers(d);
	dpdk_tx_flush(d);
}

int
dpdk_flush(struct conn *c)
{
	struct utcp_conn *uc = c->io_handle;

	if (uc == NULL)
		return -1;
	for (;;) {
		const void *p;
		size_t n = tlsterm_pending_out(c->tls, &p);
		ssize_t w;

		if (n == 0)
			return 0;
		w = utcp_write(uc, p, n);
		if (w > 0) {
			tlsterm_consume_out(c->tls, w);
			ctr_add(c->lc, CTR_BYTES_OUT, w);
			c->last_io_s = c->lc->pub.now_s;
			continue;
		}
		if (w == -EAGAIN)
			return 0;	/* UTCP_EV_WRITABLE kicks us again */
		return -1;
	}
}

void
dpdk_close(struct conn *c)
{
	struct utcp_conn *uc = c->io_handle;

	if (uc == NULL)
		return;
	c->io_handle = NULL;
	utcp_conn_set_user(uc, NULL);
	/* FIN after what is queued (RST if input is left unread). */
	utcp_close(uc);
}

int
dpdk_make_stack(struct dpdk_lc *d, const struct engine_conf *cf)
{
	const struct port_info *pi = d->pi;
	struct utcp_callbacks cb = { .output = output_cb, .event = event_cb, .now_us = clock_cb,
				     .arg = d, .recv = recv_cb };
	struct arp_config ac = { .ip = pi->addr };
	struct utcp_config uc;
	uint32_t conns = cf->max_conns + cf->max_conns / 4 + 16;

	utcp_config_init(&uc);
	uc.local_addr = pi->addr;
	/* The TCP core takes each segment's options out of the MSS (RFC
	 * 6691), so MTU - 40 fits; tx_oversize stays as a safety net. */
	uc.mss = (uint16_t)(pi->mtu - 40);
	/* Connections over max_conns are refused by conn_new; the rest
	 * covers those still closing. Send and receive buffers come from the
	 * stack's pool as connections open, up to [dpdk] tcp_buf_mem_mb. */
	uc.max_conns = conns < UTCP_CONNS_CAP ? conns : UTCP_CONNS_CAP;
	if (cf->dpdk_tcp_buf_mem_mb != 0)
		uc.buf_mem_max = (uint64_t)cf->dpdk_tcp_buf_mem_mb << 20;
	uc.synq_max = cf->backlog;
	uc.delack_us = cf->dpdk_tcp_delack_us;
	memcpy(uc.isn_secret, pi->secret, sizeof(uc.isn_secret));
	memcpy(uc.steer_key, pi->steer_key, sizeof(uc.steer_key));
	uc.lcore_id = d->q;
	uc.nb_lcores = pi->nb_queues;
	d->st = utcp_stack_create(&uc, &cb);
	memcpy(ac.mac, pi->mac, 6);
	d->arp = arp_create(&ac);
	return d->st != NULL && d->arp != NULL ? 0 : -ENOMEM;
}
