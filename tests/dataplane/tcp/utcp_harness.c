/* Harness for the TCP core tests (see utcp_harness.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/base/be.h"
#include "dataplane/tcp/utcp_csum.h"
#include "tests/dataplane/tcp/utcp_harness.h"

static int
out_cb(void *arg, const void *pkt, size_t len)
{
	struct th *t = arg;

	if (t->drop_output)
		return -1;
	if (t->dev_limit) {
		if (t->dev_room == 0) {
			t->dev_refused++;
			return -ENOBUFS;
		}
		t->dev_room--;
	}
	cr_assert(t->qtail - t->qhead < TH_QMAX, "output queue overflow");
	t->q[t->qtail % TH_QMAX] = malloc(len);
	memcpy(t->q[t->qtail % TH_QMAX], pkt, len);
	t->qlen[t->qtail % TH_QMAX] = len;
	t->qtail++;
	return 0;
}

static void
ev_cb(void *arg, struct utcp_conn *c, enum utcp_event ev)
{
	struct th *t = arg;
	uint8_t buf[4096];
	ssize_t n;

	if (t->nev < TH_EVMAX) {
		t->ev[t->nev].c = c;
		t->ev[t->nev].ev = ev;
		t->nev++;
	}
	if (ev == UTCP_EV_ACCEPTED)
		t->accepted = c;
	if (t->auto_read && ev == UTCP_EV_READABLE) {
		while ((n = utcp_read(c, buf, sizeof(buf))) > 0) {
			if (t->rxlen + (size_t)n > t->rxcap) {
				t->rxcap = (t->rxlen + (size_t)n) * 2;
				t->rx = realloc(t->rx, t->rxcap);
			}
			memcpy(t->rx + t->rxlen, buf, (size_t)n);
			t->rxlen += (size_t)n;
		}
		if (n == 0)
			t->rx_eof = true;
	}
}

static size_t
recv_cb(void *arg, struct utcp_conn *c, const void *data, size_t len)
{
	struct th *t = arg;
	size_t n = len < t->zc_max ? len : t->zc_max;

	(void)c;
	t->zc_calls++;
	if (n > sizeof(t->zc) - t->zclen)
		n = sizeof(t->zc) - t->zclen;
	memcpy(t->zc + t->zclen, data, n);
	t->zclen += n;
	return n;
}

static uint64_t
clock_cb(void *arg)
{
	return ((struct th *)arg)->now;
}

void
th_config(struct utcp_config *cfg)
{
	int i;

	utcp_config_init(cfg);
	cfg->local_addr = TH_LOCAL;
	cfg->max_conns = 64;
	cfg->sndbuf = 16384;
	cfg->rcvbuf = 16384;
	cfg->synq_max = 4;
	for (i = 0; i < 16; i++) {
		cfg->isn_secret[i] = (uint8_t)(i * 7 + 1);
		cfg->steer_key[i] = (uint8_t)(i * 13 + 5);
	}
}

void
th_init(struct th *t, const struct utcp_config *cfg)
{
	struct utcp_callbacks cb = { out_cb, ev_cb, clock_cb, t, recv_cb };

	memset(t, 0, sizeof(*t));
	if (cfg)
		t->cfg = *cfg;
	else
		th_config(&t->cfg);
	t->now = 1000000;
	t->st = utcp_stack_create(&t->cfg, &cb);
	cr_assert_not_null(t->st);
}

void
th_reinit(struct th *t, const struct utcp_config *cfg)
{
	th_fini(t);
	th_init(t, cfg);
}

struct th th_s;
uint8_t th_pat[TH_PAT_LEN];

void
th_suite_init(void)
{
	th_init(&th_s, NULL);
	for (size_t i = 0; i < sizeof(th_pat); i++)
		th_pat[i] = (uint8_t)(i * 31 + (i >> 8));
}

void
th_suite_fini(void)
{
	th_fini(&th_s);
}

void
th_drain(struct th *t)
{
	while (t->qhead < t->qtail) {
		free(t->q[t->qhead % TH_QMAX]);
		t->qhead++;
	}
}

void
th_fini(struct th *t)
{
	th_drain(t);
	utcp_stack_destroy(t->st);
	free(t->rx);
}

void
th_advance(struct th *t, uint64_t us)
{
	uint64_t step = 1000, end = t->now + us;

	/* Step like a real poll loop would, so timers fire on time. */
	while (t->now < end) {
		t->now = t->now + step < end ? t->now + step : end;
		utcp_tick(t->st);
	}
}

size_t
th_build(const struct pseg *s, uint8_t *b, size_t cap)
{
	uint8_t *th = b + 20, *o = th + 20;
	size_t ol = 0, hl, tl;
	uint32_t saddr = s->saddr ? s->saddr : TH_PEER;
	int i;

	if (s->mss) {
		o[ol++] = 2;
		o[ol++] = 4;
		be_put16(o + ol, s->mss);
		ol += 2;
	}
	if (s->has_ws) {
		o[ol++] = 1;
		o[ol++] = 3;
		o[ol++] = 3;
		o[ol++] = s->ws;
	}
	if (s->sackok) {
		o[ol++] = 1;
		o[ol++] = 1;
		o[ol++] = 4;
		o[ol++] = 2;
	}
	if (s->ts) {
		o[ol++] = 1;
		o[ol++] = 1;
		o[ol++] = 8;
		o[ol++] = 10;
		be_put32(o + ol, s->tsval);
		be_put32(o + ol + 4, s->tsecr);
		ol += 8;
	}
	if (s->nsack) {
		o[ol++] = 1;
		o[ol++] = 1;
		o[ol++] = 5;
		o[ol++] = (uint8_t)(2 + 8 * s->nsack);
		for (i = 0; i < s->nsack; i++) {
			be_put32(o + ol, s->sack[i][0]);
			be_put32(o + ol + 4, s->sack[i][1]);
			ol += 8;
		}
	}
	cr_assert(ol <= 40 && ol % 4 == 0);
	hl = 20 + ol;
	tl = hl + s->len;
	cr_assert(20 + tl <= cap);
	utcp_csum_ip_header(b, saddr, TH_LOCAL, 6, (uint16_t)(20 + tl), 1);
	be_put16(th, s->sport);
	be_put16(th + 2, s->dport ? s->dport : TH_PORT);
	be_put32(th + 4, s->seq);
	be_put32(th + 8, s->ack);
	th[12] = (uint8_t)((hl / 4) << 4);
	th[13] = s->flags;
	be_put16(th + 14, s->wnd);
	be_put16(th + 16, 0);
	be_put16(th + 18, 0);
	if (s->len)
		memcpy(th + hl, s->data, s->len);
	be_put16(th + 16, utcp_csum_tcp(saddr, TH_LOCAL, th, tl));
	return 20 + tl;
}

void
th_inject(struct th *t, const void *pkt, size_t len)
{
	utcp_input(t->st, pkt, len);
}

void
th_send(struct th *t, const struct pseg *s)
{
	static uint8_t buf[70000];
	size_t n = th_build(s, buf, sizeof(buf));

	th_inject(t, buf, n);
}

int
th_pending(const struct th *t)
{
	return t->qtail - t->qhead;
}

bool
th_pop(struct th *t, struct oseg *o)
{
	const uint8_t *p, *th, *op;
	size_t len, ihl, tl, hl, i;

	if (t->qhead == t->qtail)
		return false;
	p = t->q[t->qhead % TH_QMAX];
	len = t->qlen[t->qhead % TH_QMAX];
	memset(o, 0, offsetof(struct oseg, data));
	o->ws = -1;
	cr_assert(len >= 20 && len <= sizeof(o->raw));
	memcpy(o->raw, p, len);
	o->rawlen = len;
	cr_assert_eq(p[0], 0x45);
	cr_assert_eq(be_get16(p + 2), len, "IPv4 total length");
	cr_assert_eq(utcp_csum_fold(utcp_csum_add(0, p, 20)), 0, "IPv4 header checksum");
	o->proto = p[9];
	o->saddr = be_get32(p + 12);
	o->daddr = be_get32(p + 16);
	ihl = 20;
	th = p + ihl;
	tl = len - ihl;
	if (o->proto == 6) {
		cr_assert(tl >= 20);
		cr_assert_eq(utcp_csum_tcp(o->saddr, o->daddr, th, tl), 0, "TCP checksum");
		o->sport = be_get16(th);
		o->dport = be_get16(th + 2);
		o->seq = be_get32(th + 4);
		o->ack = be_get32(th + 8);
		hl = (size_t)(th[12] >> 4) * 4;
		o->flags = th[13];
		o->wnd = be_get16(th + 14);
		op = th + 20;
		for (i = 0; i < hl - 20;) {
			if (op[i] == 0)
				break;
			if (op[i] == 1) {
				i++;
				continue;
			}
			switch (op[i]) {
			case 2:
				o->mss = be_get16(op + i + 2);
				break;
			case 3:
				o->ws = op[i + 2];
				break;
			case 4:
				o->sackok = true;
				break;
			case 5:
				o->nsack = (op[i + 1] - 2) / 8;
				for (int k = 0; k < o->nsack; k++) {
					o->sack[k][0] = be_get32(op + i + 2 + 8 * k);
					o->sack[k][1] = be_get32(op + i + 6 + 8 * k);
				}
				break;
			case 8:
				o->ts = true;
				o->tsval = be_get32(op + i + 2);
				o->tsecr = be_get32(op + i + 6);
				break;
			}
			i += op[i + 1];
		}
		o->len = tl - hl;
		memcpy(o->data, th + hl, o->len);
	} else {
		o->len = tl;
		memcpy(o->data, th, tl);
	}
	free(t->q[t->qhead % TH_QMAX]);
	t->qhead++;
	return true;
}

int
th_events(const struct th *t, const struct utcp_conn *c, enum utcp_event ev)
{
	int i, n = 0;

	for (i = 0; i < t->nev; i++)
		if ((c == NULL || t->ev[i].c == c) && t->ev[i].ev == ev)
			n++;
	return n;
}

struct utcp_conn *
th_accept(struct th *t, uint16_t sport, struct pseg *syn, uint32_t *peer_seq,
	  uint32_t *our_seq, struct oseg *synack)
{
	struct oseg o;
	struct pseg a;
	uint32_t isn = 1000000 + sport * 7u;

	(void)utcp_listen(t->st, TH_PORT, NULL);	/* -EADDRINUSE after the first */
	syn->sport = sport;
	syn->seq = isn;
	syn->flags = SYN;
	if (syn->wnd == 0)
		syn->wnd = 65535;
	th_send(t, syn);
	cr_assert(th_pop(t, &o), "no SYN-ACK");
	cr_assert_eq(o.flags, SYN | ACK);
	cr_assert_eq(o.ack, isn + 1);
	if (synack)
		*synack = o;
	a = (struct pseg){ .sport = sport, .seq = isn + 1, .ack = o.seq + 1, .flags = ACK,
			   .wnd = syn->wnd, .ts = syn->ts, .tsval = syn->tsval + 1,
			   .tsecr = o.tsval };
	t->accepted = NULL;
	th_send(t, &a);
	cr_assert_not_null(t->accepted, "not accepted");
	*peer_seq = isn + 1;
	*our_seq = o.seq + 1;
	return t->accepted;
}
