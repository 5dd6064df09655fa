/* The dpdk I/O backend's setup and teardown (see dpdk.c for the data path
 * and dpdk_int.h for what they share): the port, opened by the first lcore
 * and closed by the last; per lcore the TCP core, the SIP and Web listeners,
 * the Web relays, the seeded fault layer of the tests; the counters each
 * lcore logs when it stops; and the io_ops table the engine calls. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/engine/io/dpdk_int.h"

static const char *const dstat_names[DS__COUNT] = {
	"rx", "rx_steered_in", "steered_out", "steer_drop", "arp_in", "arp_out",
	"arp_pending", "arp_pending_drop", "no_route", "drop_l2", "tx", "tx_drop", "tx_short",
	"tx_oversize", "sleeps", "rx_direct_bytes",
};

static int
dpdk_listen_open(struct lcore_ctx *lc, char *err, size_t errlen)
{
	struct dpdk_lc *d = lc->io_lcore;
	uint16_t port = lc->e->conf.sip_port;
	int rc;

	if (d->listening)
		return 0;
	rc = utcp_listen(d->st, port, d);
	if (rc != 0) {
		snprintf(err, errlen, "[sip] listen: TCP port %u: %s", port, strerror(-rc));
		return rc;
	}
	d->listening = true;
	/* The engine only asks whether we listen (-1: not). */
	lc->listen_fd = port;
	/* The Web service listens until the lcore drains for good: a drained
	 * node (parleyctl drain) refuses new SIP connections, not downloads. */
	if (d->web != NULL && !d->web_listening) {
		port = lc->e->conf.web_port;
		rc = utcp_listen(d->st, port, d->web);
		if (rc != 0) {
			snprintf(err, errlen, "[web] listen: TCP port %u on the DPDK port: %s", port,
				 strerror(-rc));
			return rc;
		}
		d->web_listening = true;
	}
	return 0;
}

static void
dpdk_listen_close(struct lcore_ctx *lc)
{
	struct dpdk_lc *d = lc->io_lcore;

	if (d == NULL)
		return;
	if (d->web_listening && lc->draining) {
		utcp_unlisten(d->st, lc->e->conf.web_port);
		d->web_listening = false;
	}
	if (!d->listening)
		return;
	utcp_unlisten(d->st, lc->e->conf.sip_port);
	d->listening = false;
	lc->listen_fd = -1;
}

static int
shared_get(struct engine *e, char *err, size_t errlen)
{
	struct dpdk_shared *s = e->io_shared;

	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		s->port = port_open(&e->conf, (uint16_t)e->conf.nlcores, err, errlen);
		if (s->port == NULL) {
			free(s);
			return -ENODEV;
		}
		e->io_shared = s;
	}
	s->refs++;
	return 0;
}

static void
shared_put(struct engine *e)
{
	struct dpdk_shared *s = e->io_shared;

	if (s == NULL || --s->refs > 0)
		return;
	port_close(s->port);
	free(s);
	e->io_shared = NULL;
}


static void dpdk_lcore_fini(struct lcore_ctx *lc);

/* A Web connection's socket goes to the Web service's thread, once boot
 * has said where that is (engine_set_web). */
static int
web_adopt(void *arg, int fd)
{
	struct engine *e = ((struct lcore_ctx *)arg)->e;

	return e->web_adopt != NULL ? e->web_adopt(e->web_adopt_arg, fd) : -ENOTCONN;
}

/* PARLEY_DPDK_FAULT="drop=N,dup=N,reorder=N,seed=S" (per thousand), with
 * "delay_us=D,jitter_us=J" for a delay line: for tests only, never in a
 * configuration file. */
static int
fault_init(struct dpdk_lc *d, char *err, size_t errlen)
{
	const char *spec = getenv("PARLEY_DPDK_FAULT");

	if (spec == NULL || spec[0] == '\0')
		return 0;
	if (fault_parse(&d->frx, spec, 2u * d->q + 1) != 0 ||
	    fault_parse(&d->ftx, spec, 2u * d->q + 2) != 0) {
		snprintf(err, errlen, "PARLEY_DPDK_FAULT \"%s\": want drop=N,dup=N,reorder=N,"
			 "seed=S (per thousand), delay_us=D,jitter_us=J (up to %u each)", spec,
			 FAULT_DELAY_US_MAX);
		return -EINVAL;
	}
	LOG(WARNING, IO, "dpdk lcore %u: PARLEY_DPDK_FAULT=%s: injecting faults into TCP frames "
	    "both ways (tests only)", d->q, spec);
	return 0;
}

static int
dpdk_lcore_init(struct lcore_ctx *lc, char *err, size_t errlen)
{
	struct dpdk_lc *d;
	struct dpdk_shared *s;
	int rc;

	lc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (lc->wake_fd == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	rc = shared_get(lc->e, err, errlen);
	if (rc != 0)
		return rc;
	s = lc->e->io_shared;
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		shared_put(lc->e);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	lc->io_lcore = d;
	d->lc = lc;
	d->port = s->port;
	d->pi = port_info(s->port);
	d->pool = port_pool(s->port);
	d->q = (uint16_t)lc->pub.idx;
	d->ring = port_ring(s->port, d->q);
	d->now_us = clock_mono_us();
	d->nsteer = calloc(d->pi->nb_queues, sizeof(d->nsteer[0]));
	d->steer = calloc((size_t)d->pi->nb_queues * RX_BURST, sizeof(d->steer[0]));
	if (d->nsteer == NULL || d->steer == NULL || dpdk_make_stack(d, &lc->e->conf) != 0) {
		snprintf(err, errlen, "dpdk: out of memory for lcore %u's TCP stack (max_conns %u)",
			 lc->pub.idx, lc->e->conf.max_conns);
		goto out_fini;
	}
	if (fault_init(d, err, errlen) != 0)
		goto out_fini;
	if (lc->e->conf.web_port != 0 &&
	    (d->web = relay_set_create(lc->e->conf.web_max_conns, web_adopt, lc)) == NULL) {
		snprintf(err, errlen, "dpdk: out of memory for lcore %u's Web relays", lc->pub.idx);
		goto out_fini;
	}
	rc = dpdk_listen_open(lc, err, errlen);
	if (rc != 0)
		goto out_fini;
	return 0;

out_fini:
	dpdk_lcore_fini(lc);
	return -ENOMEM;
}

static void
log_stats(const struct dpdk_lc *d)
{
	const uint64_t *us = utcp_stats(d->st);
	char buf[1024];
	int n = 0;

	for (int i = 0; i < DS__COUNT && n < (int)sizeof(buf); i++)
		n += snprintf(buf + n, sizeof(buf) - n, " %s=%llu", dstat_names[i],
			      (unsigned long long)d->stat[i]);
	LOG(NOTICE, IO, "dpdk lcore %u:%s", d->q, buf);
	if (d->q == 0) {
		struct rte_eth_stats ps;

		if (rte_eth_stats_get(d->pi->port_id, &ps) == 0)
			LOG(NOTICE, IO, "dpdk port %u: ipackets=%llu opackets=%llu imissed=%llu "
			    "ierrors=%llu oerrors=%llu rx_nombuf=%llu", d->pi->port_id,
			    (unsigned long long)ps.ipackets, (unsigned long long)ps.opackets,
			    (unsigned long long)ps.imissed, (unsigned long long)ps.ierrors,
			    (unsigned long long)ps.oerrors, (unsigned long long)ps.rx_nombuf);
	}
	LOG(NOTICE, IO, "dpdk lcore %u: tcp in=%llu out=%llu rst_in=%llu rst_out=%llu "
	    "retransmit=%llu rto=%llu challenge_ack=%llu cookies_sent=%llu cookies_ok=%llu "
	    "synq_full=%llu conn_exhausted=%llu output_drop=%llu output_held=%llu", d->q,
	    (unsigned long long)us[UTCP_STAT_TCP_IN], (unsigned long long)us[UTCP_STAT_TCP_OUT],
	    (unsigned long long)us[UTCP_STAT_RST_IN], (unsigned long long)us[UTCP_STAT_RST_OUT],
	    (unsigned long long)us[UTCP_STAT_RETRANSMIT], (unsigned long long)us[UTCP_STAT_RTO],
	    (unsigned long long)us[UTCP_STAT_CHALLENGE_ACK],
	    (unsigned long long)us[UTCP_STAT_COOKIE_SENT],
	    (unsigned long long)us[UTCP_STAT_COOKIE_OK],
	    (unsigned long long)us[UTCP_STAT_SYNQ_FULL],
	    (unsigned long long)us[UTCP_STAT_CONN_EXHAUSTED],
	    (unsigned long long)us[UTCP_STAT_OUTPUT_DROP],
	    (unsigned long long)us[UTCP_STAT_OUTPUT_HELD]);
}

static void
dpdk_lcore_fini(struct lcore_ctx *lc)
{
	struct dpdk_lc *d = lc->io_lcore;
	struct rte_mbuf *m;

	if (d != NULL) {
		if (d->st != NULL) {
			log_stats(d);
			dpdk_listen_close(lc);
		}
		if (d->web != NULL) {
			const uint64_t *rs = relay_stats(d->web);

			LOG(NOTICE, IO, "dpdk lcore %u: web relays accepted=%llu refused=%llu resets=%llu "
			    "bytes_up=%llu bytes_down=%llu open=%u", d->q,
			    (unsigned long long)rs[RELAY_ACCEPTED], (unsigned long long)rs[RELAY_REFUSED],
			    (unsigned long long)rs[RELAY_RESETS], (unsigned long long)rs[RELAY_BYTES_UP],
			    (unsigned long long)rs[RELAY_BYTES_DOWN], relay_count(d->web));
			relay_set_destroy(d->web);	/* before the stack: it resets what is left */
			d->web = NULL;
		}
		/* The lcore has stopped: its last FINs and close_notify still go. */
		dpdk_tx_flush(d);
		for (uint16_t i = 0; i < d->ntx; i++)
			rte_pktmbuf_free(d->tx[i]);
		for (uint32_t i = 0; i < d->npend; i++)
			rte_pktmbuf_free(d->pend[i].m);
		rte_pktmbuf_free(d->rx_held);
		rte_pktmbuf_free(d->tx_held);
		/* Still in the delay lines: lost, as on a link that went down. */
		while ((m = fault_delay_pop(&d->frx, UINT64_MAX)) != NULL)
			rte_pktmbuf_free(m);
		while ((m = fault_delay_pop(&d->ftx, UINT64_MAX)) != NULL)
			rte_pktmbuf_free(m);
		if (fault_active(&d->frx))
			LOG(NOTICE, IO, "dpdk lcore %u: faults injected: rx dropped=%llu duplicated=%llu "
			    "reordered=%llu delayed=%llu delay_full=%llu, tx dropped=%llu "
			    "duplicated=%llu reordered=%llu delayed=%llu delay_full=%llu", d->q,
			    (unsigned long long)d->frx.dropped, (unsigned long long)d->frx.duplicated,
			    (unsigned long long)d->frx.reordered, (unsigned long long)d->frx.delayed,
			    (unsigned long long)d->frx.delay_full, (unsigned long long)d->ftx.dropped,
			    (unsigned long long)d->ftx.duplicated, (unsigned long long)d->ftx.reordered,
			    (unsigned long long)d->ftx.delayed, (unsigned long long)d->ftx.delay_full);
		utcp_stack_destroy(d->st);
		arp_destroy(d->arp);
		free(d->nsteer);
		free(d->steer);
		free(d);
		lc->io_lcore = NULL;
		shared_put(lc->e);
	}
	if (lc->wake_fd != -1)
		close(lc->wake_fd);
	lc->wake_fd = -1;
}

const struct io_ops io_dpdk_ops = {
	.name = "dpdk",
	.lcore_init = dpdk_lcore_init,
	.lcore_fini = dpdk_lcore_fini,
	.listen_open = dpdk_listen_open,
	.listen_close = dpdk_listen_close,
	.poll = dpdk_poll,
	.flush = dpdk_flush,
	.close = dpdk_close,
};
