/* The TCP stack object: configuration, connection pool, 4-tuple table,
 * TIME_WAIT records, listeners, timer dispatch, event delivery, the app's
 * API (connect/listen/read/write/close) and flow steering.
 *
 * Connection objects, tables and TIME_WAIT records are allocated at
 * utcp_stack_create() and then come from free lists. The send and receive
 * rings of a connection are one block of the buffer pool (utcp_buf.h), taken
 * when the connection is created, given back when it is freed; the pool
 * grows by slabs up to buf_mem_max, so an idle stack holds no buffer memory
 * and nothing is ever allocated per packet. The tuple
 * tables are chained hash tables with at least twice as many buckets as
 * objects, keyed by SipHash under the stack's secret (so a peer cannot aim
 * at one chain).
 *
 * Events are queued per connection and delivered when the outermost stack
 * call returns, then connections that are CLOSED and no longer held by the
 * app are freed: a callback may write, close or abort any connection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/tcp/utcp_hash.h"
#include "dataplane/tcp/utcp_int.h"
#include "dataplane/tcp/utcp_seq.h"

#define container_of(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))

void
utcp_config_init(struct utcp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mss = 1460;
	cfg->sndbuf = 64 * 1024;
	cfg->rcvbuf = 64 * 1024;
	cfg->max_conns = 1024;
	cfg->synq_max = 128;
	cfg->rto_init_us = 1000000;
	cfg->rto_min_us = 200000;
	cfg->rto_max_us = 60000000;
	cfg->delack_us = 40000;
	cfg->persist_max_us = 60000000;
	cfg->tw_us = 60000000;
	cfg->fin_wait2_us = 60000000;
	cfg->timer_tick_us = 1000;
	cfg->max_retries = 12;
	cfg->syn_retries = 5;
	cfg->synack_retries = 5;
	cfg->challenge_ack_limit = 1000;
	cfg->syncookies = true;
	cfg->nb_lcores = 1;
	cfg->eph_port_min = 32768;
	cfg->eph_port_max = 60999;
}

static void
fill_defaults(struct utcp_config *c)
{
	struct utcp_config d;

	utcp_config_init(&d);
#define DEF(f) do { if (c->f == 0) c->f = d.f; } while (0)
	DEF(mss);
	DEF(sndbuf);
	DEF(rcvbuf);
	DEF(max_conns);
	DEF(synq_max);
	DEF(rto_init_us);
	DEF(rto_min_us);
	DEF(rto_max_us);
	DEF(delack_us);
	DEF(persist_max_us);
	DEF(tw_us);
	DEF(fin_wait2_us);
	DEF(timer_tick_us);
	DEF(max_retries);
	DEF(syn_retries);
	DEF(synack_retries);
	DEF(challenge_ack_limit);
	DEF(nb_lcores);
	DEF(eph_port_min);
	DEF(eph_port_max);
#undef DEF
	if (c->ooo_max == 0)
		c->ooo_max = c->rcvbuf;
	if (c->max_tw == 0)
		c->max_tw = c->max_conns;
	if (c->max_orphans == 0)
		c->max_orphans = c->max_conns / 2 ? c->max_conns / 2 : 1;
	if (c->buf_mem_max == 0)
		c->buf_mem_max = (uint64_t)c->max_conns * ((uint64_t)c->sndbuf + c->rcvbuf);
}

static uint32_t
pow2_at_least(uint32_t n)
{
	uint32_t p = 1;

	while (p < n && p < (1u << 30))
		p <<= 1;
	return p;
}

struct utcp_stack *
utcp_stack_create(const struct utcp_config *cfg, const struct utcp_callbacks *cb)
{
	struct utcp_stack *st;
	uint64_t per, blocks;
	uint32_t i;

	if (cb == NULL || cb->output == NULL || cb->now_us == NULL)
		return NULL;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->cfg = *cfg;
	st->cb = *cb;
	fill_defaults(&st->cfg);
	if (st->cfg.mss < 64 || st->cfg.eph_port_min > st->cfg.eph_port_max ||
	    st->cfg.lcore_id >= st->cfg.nb_lcores)
		goto out_free;
	st->now = cb->now_us(cb->arg);
	per = (uint64_t)st->cfg.sndbuf + st->cfg.rcvbuf;
	blocks = st->cfg.buf_mem_max / per;
	if (blocks > st->cfg.max_conns)
		blocks = st->cfg.max_conns;
	if (utcp_buf_pool_init(&st->bufpool, (size_t)per, (uint32_t)blocks) != 0)
		goto out_free;
	st->conns = calloc(st->cfg.max_conns, sizeof(*st->conns));
	st->ctab_mask = pow2_at_least(st->cfg.max_conns * 2) - 1;
	st->ctab = calloc(st->ctab_mask + 1, sizeof(*st->ctab));
	st->tws = calloc(st->cfg.max_tw, sizeof(*st->tws));
	st->twtab_mask = pow2_at_least(st->cfg.max_tw * 2) - 1;
	st->twtab = calloc(st->twtab_mask + 1, sizeof(*st->twtab));
	st->pkt_cap = UTCP_IPHDR_LEN + 60 + st->cfg.mss;
	if (st->pkt_cap < 1500)
		st->pkt_cap = 1500;
	st->pkt = malloc(st->pkt_cap);
	if (st->conns == NULL || st->ctab == NULL || st->tws == NULL ||
	    st->twtab == NULL || st->pkt == NULL)
		goto out_free;
	if (utcp_timer_wheel_init(&st->wheel, 4096, st->cfg.timer_tick_us, st->now) != 0)
		goto out_free;
	for (i = st->cfg.max_conns; i-- > 0;) {
		st->conns[i].list_next = st->free_conns;
		st->free_conns = &st->conns[i];
	}
	for (i = st->cfg.max_tw; i-- > 0;) {
		st->tws[i].list_next = st->free_tw;
		st->free_tw = &st->tws[i];
	}
	/* RFC 7323 §2.3: the smallest shift that lets the window cover rcvbuf. */
	while (st->rcv_wscale < 14 && (st->cfg.rcvbuf >> st->rcv_wscale) > 65535)
		st->rcv_wscale++;
	st->ts_offset = (uint32_t)utcp_hash_siphash(st->cfg.isn_secret, "ts", 2);
	st->ev_tail = &st->ev_head;
	st->txq_tail = &st->txq;
	st->next_eph = (uint16_t)(st->cfg.eph_port_min +
		utcp_hash_siphash(st->cfg.isn_secret, "port", 4) %
		((uint32_t)st->cfg.eph_port_max - st->cfg.eph_port_min + 1));
	return st;

out_free:
	utcp_stack_destroy(st);		/* what is not made yet is zero */
	return NULL;
}

void
utcp_stack_destroy(struct utcp_stack *st)
{
	if (st == NULL)
		return;
	utcp_timer_wheel_fini(&st->wheel);
	/* Buffers of connections still open: a pool's slabs go with it, but
	 * with -Dpools=passthrough each is its own allocation. */
	for (uint32_t i = 0; st->conns != NULL && i < st->cfg.max_conns; i++)
		utcp_buf_pool_put(&st->bufpool, st->conns[i].bufblk);
	free(st->pkt);
	free(st->twtab);
	free(st->tws);
	free(st->ctab);
	free(st->conns);
	utcp_buf_pool_fini(&st->bufpool);
	free(st);
}

/* ---- tuple tables ---- */

static uint32_t
tuple_bucket(const struct utcp_stack *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
	     uint16_t rport)
{
	return (uint32_t)utcp_hash_tuple(st->cfg.isn_secret, laddr, lport, raddr, rport,
					 0x7ab1e);
}

struct utcp_conn *
utcp_stack_lookup(struct utcp_stack *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
		  uint16_t rport)
{
	struct utcp_conn *c;

	c = st->ctab[tuple_bucket(st, laddr, lport, raddr, rport) & st->ctab_mask];
	for (; c != NULL; c = c->hnext)
		if (c->raddr == raddr && c->rport == rport && c->lport == lport &&
		    c->laddr == laddr)
			return c;
	return NULL;
}

static void
conn_hash_insert(struct utcp_stack *st, struct utcp_conn *c)
{
	struct utcp_conn **head;

	head = &st->ctab[tuple_bucket(st, c->laddr, c->lport, c->raddr, c->rport) &
			 st->ctab_mask];
	c->hnext = *head;
	if (c->hnext)
		c->hnext->hpprev = &c->hnext;
	*head = c;
	c->hpprev = head;
	c->flags |= UTCP_F_IN_HASH;
}

static void
conn_hash_remove(struct utcp_conn *c)
{
	if (!(c->flags & UTCP_F_IN_HASH))
		return;
	*c->hpprev = c->hnext;
	if (c->hnext)
		c->hnext->hpprev = c->hpprev;
	c->hnext = NULL;
	c->hpprev = NULL;
	c->flags &= ~UTCP_F_IN_HASH;
}

struct utcp_tw *
utcp_stack_tw_lookup(struct utcp_stack *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
		     uint16_t rport)
{
	struct utcp_tw *tw;

	tw = st->twtab[tuple_bucket(st, laddr, lport, raddr, rport) & st->twtab_mask];
	for (; tw != NULL; tw = tw->hnext)
		if (tw->raddr == raddr && tw->rport == rport && tw->lport == lport &&
		    tw->laddr == laddr)
			return tw;
	return NULL;
}

void
utcp_stack_tw_free(struct utcp_stack *st, struct utcp_tw *tw)
{
	if (!tw->used)
		return;
	*tw->hpprev = tw->hnext;
	if (tw->hnext)
		tw->hnext->hpprev = tw->hpprev;
	utcp_timer_cancel(&st->wheel, &tw->timer);
	tw->used = false;
	tw->list_next = st->free_tw;
	st->free_tw = tw;
	st->ntw--;
}

void
utcp_stack_enter_time_wait(struct utcp_conn *c)
{
	struct utcp_stack *st = c->st;
	struct utcp_tw *tw = st->free_tw, **head;

	if (tw == NULL) {
		/* Pool empty: close without TIME_WAIT (counted). Our last ACK
		 * stays unrepeatable; the peer's retransmitted FIN meets a RST. */
		st->stats[UTCP_STAT_TW_FULL]++;
		utcp_stack_conn_done(c, 0);
		return;
	}
	st->free_tw = tw->list_next;
	memset(tw, 0, sizeof(*tw));
	tw->used = true;
	tw->laddr = c->laddr;
	tw->raddr = c->raddr;
	tw->lport = c->lport;
	tw->rport = c->rport;
	tw->snd_nxt = c->snd_max;
	tw->rcv_nxt = c->rcv_nxt;
	tw->ts_recent = c->ts_recent;
	tw->ts_ok = (c->flags & UTCP_F_TS_OK) != 0;
	tw->rcv_wnd = (uint16_t)(utcp_out_rcv_wnd(c) >> c->rcv_wscale);
	tw->timer.kind = UTCP_T_TW;
	head = &st->twtab[tuple_bucket(st, tw->laddr, tw->lport, tw->raddr, tw->rport) &
			  st->twtab_mask];
	tw->hnext = *head;
	if (tw->hnext)
		tw->hnext->hpprev = &tw->hnext;
	*head = tw;
	tw->hpprev = head;
	utcp_timer_arm(&st->wheel, &tw->timer, st->now + st->cfg.tw_us);
	st->ntw++;
	st->stats[UTCP_STAT_TW_CREATED]++;
	utcp_stack_conn_done(c, 0);
}

/* ---- connections ---- */

uint32_t
utcp_stack_isn(struct utcp_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport)
{
	/* RFC 6528: ISN = M + F(4-tuple, secret), M a 4-µs clock. */
	return (uint32_t)(st->now / 4) +
	       (uint32_t)utcp_hash_tuple(st->cfg.isn_secret, st->cfg.local_addr, lport, raddr,
					 rport, 0x15a);
}

struct utcp_conn *
utcp_stack_conn_new(struct utcp_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport)
{
	struct utcp_conn *c = st->free_conns;
	uint8_t *mem;

	if (c == NULL) {
		st->stats[UTCP_STAT_CONN_EXHAUSTED]++;
		return NULL;
	}
	mem = utcp_buf_pool_get(&st->bufpool);		/* back at conn_free() */
	if (mem == NULL) {
		st->stats[UTCP_STAT_MEM_REFUSED]++;
		return NULL;
	}
	st->free_conns = c->list_next;
	memset(c, 0, sizeof(*c));
	c->bufblk = mem;
	c->st = st;
	c->laddr = st->cfg.local_addr;
	c->raddr = raddr;
	c->lport = lport;
	c->rport = rport;
	c->rto = st->cfg.rto_init_us;
	c->mss = UTCP_DEFAULT_MSS;
	c->seg_max = UTCP_DEFAULT_MSS;
	c->peer_mss = UTCP_DEFAULT_MSS;
	c->ssthresh = UINT32_MAX / 2;
	c->t_rtx.kind = UTCP_T_RTX;
	c->t_persist.kind = UTCP_T_PERSIST;
	c->t_delack.kind = UTCP_T_DELACK;
	c->t_idle.kind = UTCP_T_IDLE;
	utcp_buf_sinit(&c->sb, mem, st->cfg.sndbuf);
	utcp_buf_rinit(&c->rb, mem + st->cfg.sndbuf, st->cfg.rcvbuf, st->cfg.ooo_max);
	conn_hash_insert(st, c);
	st->nconns++;
	return c;
}

static void
cancel_timers(struct utcp_conn *c)
{
	struct utcp_wheel *w = &c->st->wheel;

	utcp_timer_cancel(w, &c->t_rtx);
	utcp_timer_cancel(w, &c->t_persist);
	utcp_timer_cancel(w, &c->t_delack);
	utcp_timer_cancel(w, &c->t_idle);
}

void
utcp_stack_synq_leave(struct utcp_conn *c)
{
	if (c->flags & UTCP_F_IN_SYNQ) {
		c->lsn->synq_len--;
		c->flags &= ~UTCP_F_IN_SYNQ;
	}
}

static void
reap_queue(struct utcp_conn *c)
{
	if (c->flags & UTCP_F_REAPQ)
		return;
	c->flags |= UTCP_F_REAPQ;
	c->list_next = c->st->reap;
	c->st->reap = c;
}

void
utcp_stack_txq_add(struct utcp_conn *c)
{
	struct utcp_stack *st = c->st;

	if (c->flags & UTCP_F_TXQ)
		return;
	c->flags |= UTCP_F_TXQ;
	c->txq_next = NULL;
	c->txq_pprev = st->txq_tail;
	*st->txq_tail = c;
	st->txq_tail = &c->txq_next;
}

void
utcp_stack_txq_remove(struct utcp_conn *c)
{
	if (!(c->flags & UTCP_F_TXQ))
		return;
	*c->txq_pprev = c->txq_next;
	if (c->txq_next != NULL)
		c->txq_next->txq_pprev = c->txq_pprev;
	else
		c->st->txq_tail = c->txq_pprev;
	c->flags &= ~(UTCP_F_TXQ | UTCP_F_RTX_HELD);
}

void
utcp_stack_conn_done(struct utcp_conn *c, int err)
{
	if (c->state == UTCP_CLOSED && !(c->flags & UTCP_F_IN_HASH))
		return;
	utcp_stack_synq_leave(c);
	conn_hash_remove(c);
	cancel_timers(c);
	utcp_stack_txq_remove(c);
	c->state = UTCP_CLOSED;
	c->err = err;
	if (c->flags & UTCP_F_APP)
		utcp_stack_emit(c, UTCP_EV_CLOSED);
	else
		reap_queue(c);
}

static void
conn_free(struct utcp_stack *st, struct utcp_conn *c)
{
	conn_hash_remove(c);
	cancel_timers(c);
	utcp_stack_txq_remove(c);
	utcp_stack_synq_leave(c);
	if (c->flags & UTCP_F_ORPHAN)
		st->norphans--;
	utcp_buf_pool_put(&st->bufpool, c->bufblk);
	c->bufblk = NULL;
	utcp_buf_sinit(&c->sb, NULL, 0);
	utcp_buf_rinit(&c->rb, NULL, 0, 0);
	c->flags = 0;
	c->state = UTCP_CLOSED;
	c->list_next = st->free_conns;
	st->free_conns = c;
	st->nconns--;
}

void
utcp_stack_accepted(struct utcp_conn *c)
{
	utcp_stack_synq_leave(c);
	c->flags |= UTCP_F_APP;
	c->user = c->lsn->user;
	utcp_stack_emit(c, UTCP_EV_ACCEPTED);
}

void
utcp_stack_emit(struct utcp_conn *c, enum utcp_event ev)
{
	struct utcp_stack *st = c->st;

	c->ev |= (uint8_t)(1u << ev);
	if (c->flags & UTCP_F_EVQ)
		return;
	c->flags |= UTCP_F_EVQ;
	c->ev_next = NULL;
	*st->ev_tail = c;
	st->ev_tail = &c->ev_next;
}

static void
deliver_events(struct utcp_stack *st)
{
	struct utcp_conn *c;
	uint8_t ev;
	int i;

	while ((c = st->ev_head) != NULL) {
		st->ev_head = c->ev_next;
		if (st->ev_head == NULL)
			st->ev_tail = &st->ev_head;
		c->flags &= ~UTCP_F_EVQ;
		ev = c->ev;
		c->ev = 0;
		for (i = 0; i <= UTCP_EV_CLOSED; i++) {
			if (!(ev & (1u << i)))
				continue;
			/* The app may have closed the handle in an earlier callback. */
			if (!(c->flags & UTCP_F_APP) || st->cb.event == NULL)
				break;
			st->cb.event(st->cb.arg, c, (enum utcp_event)i);
		}
	}
}

void
utcp_stack_enter(struct utcp_stack *st)
{
	if (st->depth++ == 0)
		st->now = st->cb.now_us(st->cb.arg);
}

void
utcp_stack_leave(struct utcp_stack *st)
{
	struct utcp_conn *c;

	if (st->depth == 1) {
		deliver_events(st);
		while ((c = st->reap) != NULL) {
			st->reap = c->list_next;
			c->flags &= ~UTCP_F_REAPQ;
			if (!(c->flags & UTCP_F_APP) && c->state == UTCP_CLOSED)
				conn_free(st, c);
		}
	}
	st->depth--;
}

/* ---- timers ---- */

static void
fire(void *arg, struct utcp_timer *t)
{
	struct utcp_stack *st = arg;
	struct utcp_conn *c;

	switch (t->kind) {
	case UTCP_T_RTX:
		utcp_out_rtx_timeout(container_of(t, struct utcp_conn, t_rtx));
		break;
	case UTCP_T_PERSIST:
		utcp_out_persist_timeout(container_of(t, struct utcp_conn, t_persist));
		break;
	case UTCP_T_DELACK:
		utcp_out_delack_timeout(container_of(t, struct utcp_conn, t_delack));
		break;
	case UTCP_T_IDLE:
		c = container_of(t, struct utcp_conn, t_idle);
		utcp_stack_conn_done(c, -ETIMEDOUT);
		break;
	case UTCP_T_TW:
		utcp_stack_tw_free(st, container_of(t, struct utcp_tw, timer));
		break;
	}
}

/* Works through the held list until a connection's segment is refused
 * again (it goes back to the tail, so the next turn starts with the one
 * after it). Each connection is visited at most once per call. */
static void
txq_run(struct utcp_stack *st)
{
	struct utcp_conn *c;

	while ((c = st->txq) != NULL) {
		uint32_t rtx = c->flags & UTCP_F_RTX_HELD;

		utcp_stack_txq_remove(c);
		c->flags |= rtx;
		utcp_out_resume(c);
		if (c->flags & UTCP_F_TXQ)
			break;
	}
}

void
utcp_tick(struct utcp_stack *st)
{
	utcp_stack_enter(st);
	utcp_timer_run(&st->wheel, st->now, fire, st);
	txq_run(st);
	utcp_stack_leave(st);
}

void
utcp_flush(struct utcp_stack *st)
{
	if (st->txq == NULL)
		return;
	utcp_stack_enter(st);
	txq_run(st);
	utcp_stack_leave(st);
}

/* ---- listeners ---- */

struct utcp_listener *
utcp_stack_listener(struct utcp_stack *st, uint16_t port)
{
	int i;

	for (i = 0; i < UTCP_MAX_LISTENERS; i++)
		if (st->lsn[i].used && st->lsn[i].port == port)
			return &st->lsn[i];
	return NULL;
}

int
utcp_listen(struct utcp_stack *st, uint16_t port, void *user)
{
	int i;

	if (utcp_stack_listener(st, port) != NULL)
		return -EADDRINUSE;
	for (i = 0; i < UTCP_MAX_LISTENERS; i++) {
		if (!st->lsn[i].used) {
			st->lsn[i] = (struct utcp_listener){ .used = true, .port = port,
							     .user = user };
			return 0;
		}
	}
	return -ENOSPC;
}

int
utcp_unlisten(struct utcp_stack *st, uint16_t port)
{
	struct utcp_listener *l = utcp_stack_listener(st, port);
	uint32_t i;

	if (l == NULL)
		return -ENOENT;
	utcp_stack_enter(st);
	for (i = 0; i < st->cfg.max_conns; i++) {
		struct utcp_conn *c = &st->conns[i];

		if (c->lsn == l && c->state == UTCP_SYN_RECEIVED && !(c->flags & UTCP_F_APP))
			utcp_stack_conn_done(c, 0);
		if (c->lsn == l)
			c->lsn = NULL;
	}
	l->used = false;
	utcp_stack_leave(st);
	return 0;
}

/* ---- the app's API ---- */

int
utcp_connect(struct utcp_stack *st, uint32_t raddr, uint16_t rport, uint16_t lport,
	     void *user, struct utcp_conn **out)
{
	uint32_t span = (uint32_t)st->cfg.eph_port_max - st->cfg.eph_port_min + 1, i;
	uint32_t laddr = st->cfg.local_addr;
	struct utcp_conn *c;
	uint16_t p;

	utcp_stack_enter(st);
	if (lport == 0) {
		for (i = 0; i < span; i++) {
			p = st->next_eph;
			st->next_eph = p >= st->cfg.eph_port_max ? st->cfg.eph_port_min
								 : (uint16_t)(p + 1);
			if (st->cfg.nb_lcores > 1 &&
			    utcp_steer(st->cfg.steer_key, st->cfg.nb_lcores, laddr, p, raddr,
				       rport) != st->cfg.lcore_id)
				continue;
			if (utcp_stack_lookup(st, laddr, p, raddr, rport) == NULL &&
			    utcp_stack_tw_lookup(st, laddr, p, raddr, rport) == NULL) {
				lport = p;
				break;
			}
		}
		if (lport == 0) {
			utcp_stack_leave(st);
			return -EADDRINUSE;
		}
	} else if (utcp_stack_lookup(st, laddr, lport, raddr, rport) != NULL) {
		utcp_stack_leave(st);
		return -EADDRINUSE;
	} else {
		struct utcp_tw *tw = utcp_stack_tw_lookup(st, laddr, lport, raddr, rport);

		if (tw != NULL)
			utcp_stack_tw_free(st, tw);	/* we pick a fresh, later ISN */
	}
	c = utcp_stack_conn_new(st, raddr, rport, lport);
	if (c == NULL) {
		utcp_stack_leave(st);
		return -ENOMEM;
	}
	c->state = UTCP_SYN_SENT;
	c->flags |= UTCP_F_APP;
	c->user = user;
	c->iss = utcp_stack_isn(st, raddr, rport, lport);
	c->snd_una = c->iss;
	c->snd_nxt = c->snd_max = c->iss + 1;
	c->rcv_wscale = st->cfg.no_wscale ? 0 : st->rcv_wscale;
	c->flags |= UTCP_F_RTT_ACTIVE;
	c->rtt_seq = c->iss;
	c->rtt_start = st->now;
	utcp_out_syn(c);
	utcp_out_arm_rtx(c);
	*out = c;
	utcp_stack_leave(st);
	return 0;
}

ssize_t
utcp_write(struct utcp_conn *c, const void *buf, size_t len)
{
	struct utcp_stack *st = c->st;
	uint32_t n;

	if (c->err)
		return c->err;
	if (c->flags & UTCP_F_FIN_QUEUED)
		return -EPIPE;
	switch (c->state) {
	case UTCP_SYN_SENT:
	case UTCP_SYN_RECEIVED:
	case UTCP_ESTABLISHED:
	case UTCP_CLOSE_WAIT:
		break;
	default:
		return -EPIPE;
	}
	if (len > UINT32_MAX)
		len = UINT32_MAX;
	utcp_stack_enter(st);
	n = utcp_buf_sappend(&c->sb, buf, (uint32_t)len);
	if (n < len)
		c->flags |= UTCP_F_WANT_WRITE;
	if (n > 0 && utcp_state_synchronized(c->state))
		utcp_out_send(c);
	utcp_stack_leave(st);
	return n ? (ssize_t)n : -EAGAIN;
}

static void
after_read(struct utcp_conn *c)
{
	struct utcp_stack *st = c->st;

	if (c->state == UTCP_CLOSED)
		return;
	utcp_stack_enter(st);
	utcp_out_window_update(c);
	utcp_stack_leave(st);
}

ssize_t
utcp_read(struct utcp_conn *c, void *buf, size_t len)
{
	uint32_t n;

	if (c->rb.len > 0) {
		n = utcp_buf_rread(&c->rb, buf, len > UINT32_MAX ? UINT32_MAX : (uint32_t)len);
		after_read(c);
		return n;
	}
	if (c->flags & UTCP_F_RCVD_FIN)
		return 0;
	if (c->err)
		return c->err;
	if (c->state == UTCP_CLOSED)
		return 0;
	return -EAGAIN;
}

int
utcp_peek(struct utcp_conn *c, const void *ptr[2], size_t len[2])
{
	return utcp_buf_rpeek(&c->rb, ptr, len);
}

void
utcp_consume(struct utcp_conn *c, size_t n)
{
	utcp_buf_rconsume(&c->rb, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
	after_read(c);
}

int
utcp_shutdown(struct utcp_conn *c)
{
	struct utcp_stack *st = c->st;

	if (c->flags & UTCP_F_FIN_QUEUED)
		return 0;
	switch (c->state) {
	case UTCP_SYN_SENT:
	case UTCP_SYN_RECEIVED:
		c->flags |= UTCP_F_FIN_QUEUED;	/* state moves when established */
		return 0;
	case UTCP_ESTABLISHED:
		c->state = UTCP_FIN_WAIT_1;
		break;
	case UTCP_CLOSE_WAIT:
		c->state = UTCP_LAST_ACK;
		break;
	default:
		return -ENOTCONN;
	}
	c->flags |= UTCP_F_FIN_QUEUED;
	utcp_stack_enter(st);
	utcp_out_send(c);
	utcp_stack_leave(st);
	return 0;
}

static void
release(struct utcp_conn *c)
{
	c->flags &= ~UTCP_F_APP;
	if (c->state == UTCP_CLOSED)
		reap_queue(c);
}

void
utcp_abort(struct utcp_conn *c)
{
	struct utcp_stack *st = c->st;

	utcp_stack_enter(st);
	c->flags &= ~UTCP_F_APP;
	if (c->state != UTCP_CLOSED && c->state != UTCP_SYN_SENT)
		utcp_out_rst(c);
	utcp_stack_conn_done(c, -ECONNABORTED);
	release(c);
	utcp_stack_leave(st);
}

void
utcp_close(struct utcp_conn *c)
{
	struct utcp_stack *st = c->st;

	if (c->state == UTCP_CLOSED || c->state == UTCP_SYN_SENT) {
		utcp_stack_enter(st);
		utcp_stack_conn_done(c, 0);
		release(c);
		utcp_stack_leave(st);
		return;
	}
	/* Unread data: RFC 9293 §3.10.4 / RFC 2525 say reset, so the peer
	 * learns the data was lost. Too many closing connections: reset too
	 * (abortive close under overload). */
	if (c->rb.len > 0 || st->norphans >= st->cfg.max_orphans) {
		if (c->rb.len == 0)
			st->stats[UTCP_STAT_ORPHAN_ABORT]++;
		utcp_abort(c);
		return;
	}
	utcp_stack_enter(st);
	c->flags |= UTCP_F_ORPHAN | UTCP_F_SHUT_RD;
	c->flags &= ~UTCP_F_APP;
	st->norphans++;
	if (!(c->flags & UTCP_F_FIN_QUEUED))
		utcp_shutdown(c);
	if (c->state == UTCP_FIN_WAIT_2)
		utcp_timer_arm(&st->wheel, &c->t_idle, st->now + st->cfg.fin_wait2_us);
	utcp_stack_leave(st);
}

/* ---- introspection ---- */

enum utcp_state
utcp_conn_state(const struct utcp_conn *c)
{
	return (enum utcp_state)c->state;
}

const char *
utcp_state_name(enum utcp_state s)
{
	static const char *const names[] = {
		"CLOSED", "LISTEN", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1",
		"FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

int
utcp_conn_error(const struct utcp_conn *c)
{
	return c->err;
}

void *
utcp_conn_user(const struct utcp_conn *c)
{
	return c->user;
}

void
utcp_conn_set_user(struct utcp_conn *c, void *user)
{
	c->user = user;
}

void
utcp_conn_tuple(const struct utcp_conn *c, uint32_t *laddr, uint16_t *lport, uint32_t *raddr,
		uint16_t *rport)
{
	*laddr = c->laddr;
	*lport = c->lport;
	*raddr = c->raddr;
	*rport = c->rport;
}

size_t
utcp_conn_sendable(const struct utcp_conn *c)
{
	return utcp_buf_sfree(&c->sb);
}

size_t
utcp_conn_readable(const struct utcp_conn *c)
{
	return c->rb.len;
}

void
utcp_conn_info(const struct utcp_conn *c, struct utcp_conn_info *info)
{
	memset(info, 0, sizeof(*info));
	info->state = (enum utcp_state)c->state;
	info->snd_una = c->snd_una;
	info->snd_nxt = c->snd_nxt;
	info->snd_wnd = c->snd_wnd;
	info->rcv_nxt = c->rcv_nxt;
	info->rcv_wnd = utcp_buf_rfree(&c->rb);
	info->cwnd = c->cwnd;
	info->ssthresh = c->ssthresh;
	info->srtt_us = c->srtt;
	info->rttvar_us = c->rttvar;
	info->rto_us = c->rto;
	info->rto_cur_us = utcp_rto_cur(c);
	info->mss = c->mss;
	info->snd_wscale = c->snd_wscale;
	info->rcv_wscale = c->rcv_wscale;
	info->ts_ok = (c->flags & UTCP_F_TS_OK) != 0;
	info->sack_ok = (c->flags & UTCP_F_SACK_OK) != 0;
	info->in_recovery = (c->flags & UTCP_F_RECOVERY) != 0;
	info->ooo_bytes = c->rb.ooo_bytes;
	info->retries = c->retries;
}

const uint64_t *
utcp_stats(const struct utcp_stack *st)
{
	return st->stats;
}

uint32_t
utcp_conn_count(const struct utcp_stack *st)
{
	return st->nconns;
}

uint32_t
utcp_tw_count(const struct utcp_stack *st)
{
	return st->ntw;
}

uint64_t
utcp_buf_mem(const struct utcp_stack *st)
{
	return utcp_buf_pool_bytes(&st->bufpool);
}

/* ---- flow steering ---- */

uint16_t
utcp_steer(const uint8_t steer_key[16], uint16_t nb_lcores, uint32_t laddr, uint16_t lport,
	   uint32_t raddr, uint16_t rport)
{
	uint64_t h = utcp_hash_tuple(steer_key, laddr, lport, raddr, rport, 0);

	if (nb_lcores <= 1)
		return 0;
	return (uint16_t)(((h >> 32) * nb_lcores) >> 32);
}

int
utcp_steer_packet(const uint8_t steer_key[16], uint16_t nb_lcores, const void *pkt, size_t len)
{
	const uint8_t *p = pkt;
	size_t ihl;

	if (len < UTCP_IPHDR_LEN || (p[0] >> 4) != 4 || p[9] != 6)
		return -1;
	ihl = (size_t)(p[0] & 0x0f) * 4;
	if (ihl < UTCP_IPHDR_LEN || len < ihl + 4)
		return -1;
	return utcp_steer(steer_key, nb_lcores,
			  (uint32_t)p[16] << 24 | (uint32_t)p[17] << 16 | (uint32_t)p[18] << 8 | p[19],
			  (uint16_t)(p[ihl + 2] << 8 | p[ihl + 3]),
			  (uint32_t)p[12] << 24 | (uint32_t)p[13] << 16 | (uint32_t)p[14] << 8 | p[15],
			  (uint16_t)(p[ihl] << 8 | p[ihl + 1]));
}
