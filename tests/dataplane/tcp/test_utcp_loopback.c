/* Two stacks joined by a simulated link with a seeded fault layer (loss,
 * duplication, reordering by jitter, delay), on a simulated clock. Apps on
 * both sides push a pseudo-random stream each way, half-close, and check
 * that what arrives is exactly what was sent, byte for byte, and that every
 * connection winds down to nothing (TIME_WAIT records aside).
 *
 * Properties: any seed, any loss/reorder/duplication pattern, any MSS and
 * buffer sizes give the same bytes; bulk transfers of 10 MB each way at 5%
 * and 20% loss complete. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/tcp/utcp.h"
#include "tests/dataplane/tcp/stream_byte.h"

#define A_ADDR	0x0a000001u
#define B_ADDR	0x0a000002u
#define MAXC	64

struct lpkt {
	uint64_t at;
	uint64_t n;			/* enqueue order: ties leave in it */
	int to;
	size_t len;
	uint8_t *data;
};

struct flow {
	struct utcp_conn *c;
	uint64_t sent, rcvd, total;
	uint64_t seed_out, seed_in;	/* streams this side sends / expects */
	bool shut, eof, closed, bad;
};

struct side {
	struct sim *sim;
	int idx;
	struct utcp_stack *st;
	struct flow f[MAXC];
	int nf;
};

struct sim {
	uint64_t now;
	uint64_t rng;
	double loss, dup;
	uint64_t delay_us, jitter_us;
	struct lpkt *q;
	size_t nq, capq;
	uint64_t nenq;
	struct side s[2];
	uint64_t total;			/* bytes each flow sends each way */
	uint64_t delivered, dropped;
	/* A device with a tx queue: each side's output takes txcap packets
	 * per simulated millisecond and answers -ENOBUFS past that (0: no
	 * limit). */
	int txcap, txleft[2];
	uint64_t refused;
};

static uint64_t
rnd(struct sim *m)
{
	m->rng ^= m->rng >> 12;
	m->rng ^= m->rng << 25;
	m->rng ^= m->rng >> 27;
	return m->rng * 2685821657736338717ull;
}

static double
rnd01(struct sim *m)
{
	return (double)(rnd(m) >> 11) / 9007199254740992.0;
}

static void
enqueue(struct sim *m, int to, const void *pkt, size_t len, uint64_t at)
{
	if (m->nq == m->capq) {
		m->capq = m->capq ? m->capq * 2 : 256;
		m->q = realloc(m->q, m->capq * sizeof(*m->q));
	}
	m->q[m->nq].at = at;
	m->q[m->nq].n = m->nenq++;
	m->q[m->nq].to = to;
	m->q[m->nq].len = len;
	m->q[m->nq].data = malloc(len);
	memcpy(m->q[m->nq].data, pkt, len);
	m->nq++;
}

static int
out_cb(void *arg, const void *pkt, size_t len)
{
	struct side *s = arg;
	struct sim *m = s->sim;
	int copies = 1, i;

	if (m->txcap) {
		if (m->txleft[s->idx] == 0) {
			m->refused++;
			return -ENOBUFS;
		}
		m->txleft[s->idx]--;
	}
	if (rnd01(m) < m->loss) {
		m->dropped++;
		return 0;			/* lost on the wire */
	}
	if (rnd01(m) < m->dup)
		copies = 2;
	for (i = 0; i < copies; i++)
		enqueue(m, 1 - s->idx, pkt, len,
			m->now + m->delay_us + (m->jitter_us ? rnd(m) % m->jitter_us : 0));
	return 0;
}

static struct flow *
flow_of(struct side *s, struct utcp_conn *c)
{
	int i;

	for (i = 0; i < s->nf; i++)
		if (s->f[i].c == c)
			return &s->f[i];
	return NULL;
}

static void
drain(struct side *s, struct flow *f)
{
	const void *p[2];
	size_t l[2];
	int n, k;

	/* Zero-copy read path: peek the spans, check, consume. */
	while ((n = utcp_peek(f->c, p, l)) > 0) {
		size_t used = 0;

		for (k = 0; k < n; k++) {
			const uint8_t *b = p[k];

			for (size_t j = 0; j < l[k]; j++)
				if (b[j] != stream_byte(f->seed_in, f->rcvd + used + j))
					f->bad = true;
			used += l[k];
		}
		f->rcvd += used;
		utcp_consume(f->c, used);
	}
	if (utcp_read(f->c, NULL, 0) == 0 && utcp_conn_readable(f->c) == 0 &&
	    utcp_conn_state(f->c) != UTCP_ESTABLISHED && !f->eof) {
		uint8_t x;

		if (utcp_read(f->c, &x, 1) == 0)
			f->eof = true;
	}
	(void)s;
}

static void
ev_cb(void *arg, struct utcp_conn *c, enum utcp_event ev)
{
	struct side *s = arg;
	struct flow *f = flow_of(s, c);
	uint32_t laddr, raddr;
	uint16_t lport, rport;

	if (ev == UTCP_EV_ACCEPTED) {
		cr_assert_lt(s->nf, MAXC);
		f = &s->f[s->nf++];
		memset(f, 0, sizeof(*f));
		f->c = c;
		f->total = s->sim->total;
		utcp_conn_tuple(c, &laddr, &lport, &raddr, &rport);
		f->seed_out = 0x5eed0000u + 2 * (uint64_t)rport + 1;	/* B -> A */
		f->seed_in = 0x5eed0000u + 2 * (uint64_t)rport;		/* A -> B */
	}
	cr_assert_not_null(f);
	switch (ev) {
	case UTCP_EV_READABLE:
		drain(s, f);
		break;
	case UTCP_EV_CLOSED:
		f->closed = true;
		break;
	default:
		break;
	}
}

static uint64_t
clock_cb(void *arg)
{
	return ((struct side *)arg)->sim->now;
}

static void
sim_init(struct sim *m, uint64_t seed, const struct utcp_config *base)
{
	struct utcp_config cfg;
	int i;

	memset(m, 0, sizeof(*m));
	m->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	m->now = 1000000;
	m->delay_us = 5000;
	for (i = 0; i < 2; i++) {
		struct utcp_callbacks cb = { out_cb, ev_cb, clock_cb, &m->s[i] };

		cfg = *base;
		cfg.local_addr = i == 0 ? A_ADDR : B_ADDR;
		cfg.isn_secret[0] = (uint8_t)(i + 1);
		cfg.isn_secret[1] = (uint8_t)seed;
		m->s[i].sim = m;
		m->s[i].idx = i;
		m->s[i].st = utcp_stack_create(&cfg, &cb);
		cr_assert_not_null(m->s[i].st);
	}
}

static void
sim_fini(struct sim *m)
{
	size_t i;

	for (i = 0; i < m->nq; i++)
		free(m->q[i].data);
	free(m->q);
	utcp_stack_destroy(m->s[0].st);
	utcp_stack_destroy(m->s[1].st);
}

/* Delivers every packet due, in time order (ties in queue order). */
static void
deliver(struct sim *m)
{
	for (;;) {
		size_t i, best = SIZE_MAX;
		struct lpkt p;

		for (i = 0; i < m->nq; i++)
			if (m->q[i].at <= m->now &&
			    (best == SIZE_MAX || m->q[i].at < m->q[best].at ||
			     (m->q[i].at == m->q[best].at && m->q[i].n < m->q[best].n)))
				best = i;
		if (best == SIZE_MAX)
			return;
		p = m->q[best];
		m->q[best] = m->q[--m->nq];
		m->delivered++;
		utcp_input(m->s[p.to].st, p.data, p.len);
		free(p.data);
	}
}

static void
pump(struct side *s)
{
	static uint8_t chunk[65536];
	int i;

	for (i = 0; i < s->nf; i++) {
		struct flow *f = &s->f[i];
		ssize_t n;
		size_t want, j;

		if (f->closed || f->c == NULL)
			continue;
		while (f->sent < f->total) {
			want = f->total - f->sent;
			if (want > sizeof(chunk))
				want = sizeof(chunk);
			if (want > utcp_conn_sendable(f->c))
				want = utcp_conn_sendable(f->c);
			if (want == 0)
				break;
			/* Random write sizes exercise segmentation. */
			want = 1 + rnd(s->sim) % want;
			for (j = 0; j < want; j++)
				chunk[j] = stream_byte(f->seed_out, f->sent + j);
			n = utcp_write(f->c, chunk, want);
			if (n <= 0)
				break;
			f->sent += (uint64_t)n;
		}
		if (f->sent == f->total && !f->shut && utcp_conn_state(f->c) != UTCP_SYN_SENT) {
			f->shut = true;
			utcp_shutdown(f->c);
		}
		drain(s, f);
	}
}

static bool
all_done(struct sim *m)
{
	int i, k;

	for (k = 0; k < 2; k++) {
		if (m->s[k].nf == 0)
			return false;
		for (i = 0; i < m->s[k].nf; i++) {
			struct flow *f = &m->s[k].f[i];

			if (!f->eof || f->rcvd != m->total || f->sent != m->total)
				return false;
		}
	}
	return true;
}

/* Runs until every flow has sent, received and seen EOF, then closes all
 * and lets the FIN exchange finish. Returns the simulated seconds used. */
static double
run(struct sim *m, int nflows, uint64_t limit_us)
{
	uint64_t start = m->now;
	struct side *a = &m->s[0];
	int i, k;

	cr_assert_eq(utcp_listen(m->s[1].st, 443, NULL), 0);
	for (i = 0; i < nflows; i++) {
		struct flow *f = &a->f[a->nf++];
		uint32_t la, ra;
		uint16_t lp, rp;

		memset(f, 0, sizeof(*f));
		f->total = m->total;
		cr_assert_eq(utcp_connect(a->st, B_ADDR, 443, 0, NULL, &f->c), 0);
		utcp_conn_tuple(f->c, &la, &lp, &ra, &rp);
		f->seed_out = 0x5eed0000u + 2 * (uint64_t)lp;
		f->seed_in = 0x5eed0000u + 2 * (uint64_t)lp + 1;
	}
	while (!all_done(m)) {
		cr_assert_lt(m->now - start, limit_us, "transfer stalled: A %lu/%lu B %lu/%lu",
			     (unsigned long)a->f[0].rcvd, (unsigned long)a->f[0].sent,
			     (unsigned long)m->s[1].f[0].rcvd, (unsigned long)m->s[1].f[0].sent);
		m->txleft[0] = m->txleft[1] = m->txcap;
		deliver(m);
		utcp_tick(a->st);
		utcp_tick(m->s[1].st);
		pump(a);
		pump(&m->s[1]);
		m->now += 1000;
	}
	for (k = 0; k < 2; k++)
		for (i = 0; i < m->s[k].nf; i++) {
			cr_assert_not(m->s[k].f[i].bad, "side %d flow %d: corrupted stream", k, i);
			utcp_close(m->s[k].f[i].c);
		}
	/* Let FINs and final ACKs (and their retransmissions) settle. */
	for (i = 0; i < 200000 && (utcp_conn_count(a->st) || utcp_conn_count(m->s[1].st)); i++) {
		m->txleft[0] = m->txleft[1] = m->txcap;
		deliver(m);
		utcp_tick(a->st);
		utcp_tick(m->s[1].st);
		m->now += 1000;
	}
	cr_assert_eq(utcp_conn_count(a->st), 0, "A still has connections");
	cr_assert_eq(utcp_conn_count(m->s[1].st), 0, "B still has connections");
	return (double)(m->now - start) / 1e6;
}

static void
base_cfg(struct utcp_config *c)
{
	utcp_config_init(c);
	c->max_conns = MAXC;
	c->sndbuf = 65536;
	c->rcvbuf = 65536;
	c->max_retries = 30;		/* 20% loss each way: long bad runs happen */
	c->rto_max_us = 4000000;
	c->tw_us = 1000000;
}

Test(loopback, clean_link_100k_each_way)
{
	struct utcp_config cfg;
	struct sim m;

	base_cfg(&cfg);
	sim_init(&m, 1, &cfg);
	m.total = 100000;
	run(&m, 1, 60000000);
	cr_assert_eq(m.dropped, 0);
	sim_fini(&m);
}

Test(loopback, property_random_faults_and_sizes)
{
	struct utcp_config cfg;
	struct sim m;
	uint64_t seed;

	/* UTCP_LB_SEEDS=n runs more seeds (400 pass; 24 by default). */
	uint64_t last = getenv("UTCP_LB_SEEDS") ? strtoul(getenv("UTCP_LB_SEEDS"), NULL, 0) : 24;
	double secs = 0;

	for (seed = 1; seed <= last; seed++) {
		base_cfg(&cfg);
		sim_init(&m, seed, &cfg);	/* rng seeded: sizes below are reproducible */
		cfg.mss = (uint16_t)(200 + rnd(&m) % 1300);
		cfg.sndbuf = (uint32_t)(2000 + rnd(&m) % 60000);
		cfg.rcvbuf = (uint32_t)(2000 + rnd(&m) % 60000);
		cfg.ooo_max = (uint32_t)(500 + rnd(&m) % cfg.rcvbuf);
		cfg.no_sack = rnd(&m) % 2;
		cfg.no_timestamps = rnd(&m) % 3 == 0;
		cfg.no_wscale = rnd(&m) % 2;
		sim_fini(&m);
		sim_init(&m, seed, &cfg);
		m.loss = (double)(rnd(&m) % 15) / 100.0;
		m.dup = (double)(rnd(&m) % 10) / 100.0;
		m.jitter_us = rnd(&m) % 20000;	/* up to 20 ms: heavy reordering */
		m.total = 20000 + rnd(&m) % 150000;
		secs += run(&m, 1 + (int)(rnd(&m) % 3), 600000000ull);
		sim_fini(&m);
	}
	cr_log_info("property: %lu seeds in %.1f simulated s\n", (unsigned long)last, secs);
}

Test(loopback, many_connections_with_loss)
{
	struct utcp_config cfg;
	struct sim m;

	base_cfg(&cfg);
	cfg.sndbuf = cfg.rcvbuf = 8192;
	sim_init(&m, 77, &cfg);
	m.loss = 0.05;
	m.jitter_us = 3000;
	m.total = 30000;
	cr_log_info("40 connections at 5%% loss: %.1f simulated s\n", run(&m, 40, 600000000));
	sim_fini(&m);
}

/* Returns the simulated seconds. */
static double
bulk(uint64_t seed, double loss, uint64_t bytes)
{
	struct utcp_config cfg;
	struct sim m;
	double secs;

	base_cfg(&cfg);
	cfg.sndbuf = cfg.rcvbuf = 256 * 1024;
	sim_init(&m, seed, &cfg);
	m.loss = loss;
	m.jitter_us = 2000;
	m.total = bytes;
	secs = run(&m, 1, 24ull * 3600 * 1000000);
	cr_log_info("bulk %.0f%% loss: %lu bytes each way in %.1f simulated s, "
		    "%lu packets delivered, %lu dropped\n", loss * 100, (unsigned long)bytes, secs,
		    (unsigned long)m.delivered, (unsigned long)m.dropped);
	for (int k = 0; k < 2; k++) {
		const uint64_t *u = utcp_stats(m.s[k].st);

		cr_log_info("  side %d: %lu retransmissions, %lu fast, %lu RTOs, %lu probes\n", k,
			    (unsigned long)u[UTCP_STAT_RETRANSMIT],
			    (unsigned long)u[UTCP_STAT_FAST_RETRANSMIT], (unsigned long)u[UTCP_STAT_RTO],
			    (unsigned long)u[UTCP_STAT_TLP]);
	}
	sim_fini(&m);
	return secs;
}

Test(loopback, bulk_10mb_each_way_5pct_loss, .timeout = 100)
{
	bulk(5, 0.05, 10u << 20);
}

/* 1222 simulated s when an RTO stayed backed off until a fresh Karn sample;
 * 349 s now. */
Test(loopback, bulk_10mb_each_way_20pct_loss, .timeout = 100)
{
	cr_assert_lt(bulk(20, 0.20, 10u << 20), 700.0, "recovery under loss got slower");
}

/* 20% loss each way, random sizes and options, 1-3 flows of 20-170 kB: what
 * RTO backoff and timer-driven recovery cost. Before RTT samples from
 * timestamp echoes, backoff undone by an ACK of new data, limited transmit,
 * early retransmit and the loss probe, these seeds took 533 simulated s;
 * after, 315. */
Test(loopback, property_20pct_loss_time, .timeout = 100)
{
	struct utcp_config cfg;
	struct sim m;
	uint64_t seed;
	double secs = 0;

	for (seed = 1; seed <= 16; seed++) {
		base_cfg(&cfg);
		sim_init(&m, 1000 + seed, &cfg);
		cfg.mss = (uint16_t)(500 + rnd(&m) % 1000);
		cfg.no_sack = rnd(&m) % 2;
		cfg.no_timestamps = rnd(&m) % 4 == 0;
		sim_fini(&m);
		sim_init(&m, 1000 + seed, &cfg);
		m.loss = 0.20;
		m.jitter_us = rnd(&m) % 4000;
		m.total = 20000 + rnd(&m) % 150000;
		secs += run(&m, 1 + (int)(rnd(&m) % 3), 3600000000ull);
		sim_fini(&m);
	}
	cr_log_info("property at 20%% loss: 16 seeds in %.1f simulated s\n", secs);
	cr_assert_lt(secs, 450.0, "recovery under loss got slower");
}

/* A clean link behind a tx queue that fills: 4 packets per millisecond each
 * way, far less than the windows want. What the device refuses goes when it
 * has room; nothing is lost, so nothing may be retransmitted, and no
 * retransmission timer may fire. When a refused segment counted as sent
 * (lost), this run took 20.8 simulated s with 49 RTOs and 669
 * retransmissions on one side; 1.5 s and none since. Ties in deliver() leave
 * in send order, so a clean link does not reorder. */
Test(loopback, full_tx_queue_costs_no_retransmission, .timeout = 100)
{
	struct utcp_config cfg;
	struct sim m;
	double secs;
	int k;

	base_cfg(&cfg);
	cfg.sndbuf = cfg.rcvbuf = 256 * 1024;
	sim_init(&m, 9, &cfg);
	m.txcap = 4;
	m.total = 4u << 20;
	secs = run(&m, 2, 600000000ull);
	cr_log_info("tx queue of 4/ms: 2 x %lu bytes each way in %.1f simulated s, %lu refused\n",
		    (unsigned long)m.total, secs, (unsigned long)m.refused);
	cr_assert_gt(m.refused, 1000, "the queue was full often");
	cr_assert_eq(m.dropped, 0);
	for (k = 0; k < 2; k++) {
		const uint64_t *u = utcp_stats(m.s[k].st);

		cr_log_info("  side %d: %lu held, %lu retransmissions, %lu fast, %lu RTOs, "
			    "%lu probes\n", k, (unsigned long)u[UTCP_STAT_OUTPUT_HELD],
			    (unsigned long)u[UTCP_STAT_RETRANSMIT],
			    (unsigned long)u[UTCP_STAT_FAST_RETRANSMIT],
			    (unsigned long)u[UTCP_STAT_RTO], (unsigned long)u[UTCP_STAT_TLP]);
		cr_assert_gt(u[UTCP_STAT_OUTPUT_HELD], 0, "side %d: held segments", k);
		cr_assert_eq(u[UTCP_STAT_RTO], 0, "side %d: %lu RTOs", k,
			     (unsigned long)u[UTCP_STAT_RTO]);
		cr_assert_eq(u[UTCP_STAT_RETRANSMIT], 0, "side %d: %lu retransmissions", k,
			     (unsigned long)u[UTCP_STAT_RETRANSMIT]);
	}
	/* 2 x 2 x 4 MiB of MSS-sized segments plus ACKs at 8 packets/ms
	 * could not take less; a few RTOs would take far more. */
	cr_assert_lt(secs, 3 * (4.0 * 4 * 1024 * 1024 / 1460) / 8000 + 5, "transfer too slow");
	sim_fini(&m);
}

Test(loopback, connect_picks_ports_for_own_lcore)
{
	struct utcp_config cfg;
	struct utcp_conn *c;
	struct sim m;
	int i;

	base_cfg(&cfg);
	cfg.nb_lcores = 4;
	cfg.lcore_id = 3;
	for (i = 0; i < 16; i++)
		cfg.steer_key[i] = (uint8_t)(0xa0 + i);
	sim_init(&m, 3, &cfg);
	for (i = 0; i < 20; i++) {
		uint32_t la, ra;
		uint16_t lp, rp;

		cr_assert_eq(utcp_connect(m.s[0].st, B_ADDR, 443, 0, NULL, &c), 0);
		utcp_conn_tuple(c, &la, &lp, &ra, &rp);
		cr_assert_eq(utcp_steer(cfg.steer_key, 4, la, lp, ra, rp), 3,
			     "replies must come back to this lcore");
	}
	sim_fini(&m);
}
