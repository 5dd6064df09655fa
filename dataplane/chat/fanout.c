/* Rooms across lcores: rings, sequencing on the home lcore, durable before
 * visible, delivery to local members. See fanout.h for the roles;
 * fanout_presence.c has joins, parts and notices. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "dataplane/base/keyslot.h"
#include "dataplane/base/log.h"
#include "dataplane/base/ring.h"
#include "dataplane/session/dialog.h"
#include "dataplane/chat/fanout_int.h"
#include "dataplane/chat/fanout_peer.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/xccos/xccos.h"
#include "storage/acked.h"
#include "storage/commit.h"
#include "storage/db.h"
#include "storage/history.h"

static void fill_req(struct lcore_ctx *lc, void *cookie, struct commit_req *r);

/* ---- small containers ------------------------------------------------ */

/* The stages and the storage backlog are arrays allocated at boot, as large
 * as a quarter of a ring (stages) and a ring (backlog) of conf.ring_size.
 * They fill only when a destination lcore or
 * the storage thread falls behind; then the origins refuse new posts and
 * joins (fanout_post, fanout_join: half a stage toward the home), which
 * bounds what the homes still generate in answer. Past the array they grow
 * by doubling, counted (fanout_grown), rather than lose or reorder a
 * room's messages. */
static int
stage_push(struct fanout_lc *fo, struct stage *s, const struct fmsg *m)
{
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 256;
		struct fmsg *v = malloc(cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		fo->grown++;
		for (uint32_t i = 0; i < s->n; i++)
			v[i] = s->v[(s->head + i) % s->cap];
		free(s->v);
		s->v = v;
		s->head = 0;
		s->cap = cap;
	}
	s->v[(s->head + s->n) % s->cap] = *m;
	s->n++;
	return 0;
}

static int
cq_push(struct fanout_lc *fo, struct cookieq *q, void *p)
{
	if (q->n == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 256;
		void **v = malloc(cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		fo->grown++;
		for (uint32_t i = 0; i < q->n; i++)
			v[i] = q->v[(q->head + i) % q->cap];
		free(q->v);
		q->v = v;
		q->head = 0;
		q->cap = cap;
	}
	q->v[(q->head + q->n) % q->cap] = p;
	q->n++;
	return 0;
}

/* ---- shared presence counts (chansrch's ucnt) ------------------------- */

uint32_t
fo_raw_hash(const uint8_t raw[CATALOG_ID_RAW])
{
	return keyslot_hash(raw);
}

/* The count slot of <raw>, claimed if absent (<claim>). NULL when the
 * table is full or the room has none. Any thread. */
_Atomic uint32_t *
fo_pslot_find(struct fanout_shared *sh, const uint8_t raw[CATALOG_ID_RAW], bool claim)
{
	struct keyslot *k = keyslot_find(sh->v, sizeof(*sh->v), PRESENCE_SLOTS, raw, claim);

	return k != NULL ? &((struct pslot *)k)->present : NULL;
}

uint32_t
fanout_present_count(const struct engine *e, const uint8_t raw[CATALOG_ID_RAW])
{
	_Atomic uint32_t *p = fo_pslot_find(fo_shared(e), raw, false);

	return p ? atomic_load_explicit(p, memory_order_relaxed) : 0;
}

/* ---- per-lcore room state -------------------------------------------- */

struct fo_roomstate *
fo_roomstate_find(struct fanout_lc *fo, const uint8_t raw[CATALOG_ID_RAW])
{
	if (fo->rcap == 0)
		return NULL;
	for (uint32_t i = fo_raw_hash(raw) & (fo->rcap - 1);; i = (i + 1) & (fo->rcap - 1)) {
		if (fo->rooms[i] == NULL)
			return NULL;
		if (memcmp(fo->rooms[i]->raw, raw, CATALOG_ID_RAW) == 0)
			return fo->rooms[i];
	}
}

static int
roomstate_insert(struct fo_roomstate **tab, uint32_t cap, struct fo_roomstate *r)
{
	for (uint32_t i = fo_raw_hash(r->raw) & (cap - 1);; i = (i + 1) & (cap - 1))
		if (tab[i] == NULL) {
			tab[i] = r;
			return 0;
		}
}

struct fo_roomstate *
fo_roomstate_get(struct fanout_lc *fo, const uint8_t raw[CATALOG_ID_RAW])
{
	struct fo_roomstate *r = fo_roomstate_find(fo, raw);

	if (r != NULL)
		return r;
	if ((fo->rn + 1) * 2 > fo->rcap) {
		uint32_t cap = fo->rcap ? fo->rcap * 2 : 64;
		struct fo_roomstate **tab = calloc(cap, sizeof(*tab));

		if (tab == NULL)
			return NULL;
		for (uint32_t i = 0; i < fo->rcap; i++)
			if (fo->rooms[i] != NULL)
				roomstate_insert(tab, cap, fo->rooms[i]);
		free(fo->rooms);
		fo->rooms = tab;
		fo->rcap = cap;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	memcpy(r->raw, raw, CATALOG_ID_RAW);
	roomstate_insert(fo->rooms, fo->rcap, r);
	fo->rn++;
	return r;
}

/* ---- rings ------------------------------------------------------------ */

void
fo_send_msg(struct lcore_ctx *lc, uint32_t dst, uint32_t type, void *ptr, uint64_t a)
{
	struct fmsg m = { .type = type, .src = lcore_idx(lc), .ptr = ptr, .a = a };

	if (stage_push(fo_lc(lc), &fo_lc(lc)->tx[dst], &m) != 0)
		/* Without memory for the stage there is no way to keep order:
		 * stop rather than lose or reorder a room's messages. */
		rte_panic("fanout: out of memory staging a message to lcore %u\n", dst);
}

void
fanout_flush(struct lcore_ctx *lc)
{
	struct fanout_lc *fo = fo_lc(lc);
	struct engine *e = lcore_engine(lc);

	for (uint32_t dst = 0; dst < engine_nlcores(e); dst++) {
		struct stage *s = &fo->tx[dst];
		struct rte_ring *r = fo_lc(engine_lcore(e, dst))->rx[lcore_idx(lc)];
		bool sent = false;

		while (s->n > 0) {
			uint32_t run = s->cap - s->head < s->n ? s->cap - s->head : s->n;
			unsigned got = rte_ring_enqueue_burst_elem(r, &s->v[s->head], sizeof(struct fmsg),
								   run, NULL);

			sent |= got > 0;
			s->head = (s->head + got) % s->cap;
			s->n -= got;
			if (got < run) {
				ctr_inc(lc, CTR_RING_FULL);
				break;
			}
		}
		if (sent && dst != lcore_idx(lc))
			lcore_wake(engine_lcore(e, dst));
	}
	/* Jobs for the storage thread, in order, as far as the pool allows. */
	while (fo->backlog.n > 0) {
		struct commit_req *reqs[BURST];
		unsigned n = 0, got;

		while (n < BURST && n < fo->backlog.n) {
			struct commit_req *r = commit_req_get(fo->prod);

			if (r == NULL)
				break;
			fill_req(lc, fo->backlog.v[(fo->backlog.head + n) % fo->backlog.cap], r);
			reqs[n++] = r;
		}
		if (n == 0)
			break;
		got = commit_submit(fo->prod, reqs, n);
		for (unsigned i = got; i < n; i++)
			commit_req_put(fo->prod, reqs[i]);
		fo->backlog.head = (fo->backlog.head + got) % fo->backlog.cap;
		fo->backlog.n -= got;
		fo->inflight += got;
		if (got < n)
			break;
	}
}

void
fo_submit_job(struct lcore_ctx *lc, void *cookie)
{
	if (cq_push(fo_lc(lc), &fo_lc(lc)->backlog, cookie) != 0)
		rte_panic("fanout: out of memory queueing a storage job\n");
}

bool
fanout_idle(struct lcore_ctx *lc)
{
	struct fanout_lc *fo = fo_lc(lc);

	if (fo->backlog.n > 0 || commit_done_count(fo->prod) > 0 || !fo_peer_idle(lc))
		return false;
	for (uint32_t i = 0; i < lcore_conf(lc)->nlcores; i++)
		if (fo->tx[i].n > 0 || rte_ring_count(fo->rx[i]) > 0)
			return false;
	return true;
}

bool
fanout_settled(struct lcore_ctx *lc)
{
	return fanout_idle(lc) && fo_lc(lc)->inflight == 0 && fo_lc(lc)->waiting == 0 &&
	       atomic_load_explicit(&fo_lc(lc)->repl_held, memory_order_relaxed) == 0;
}

/* ---- posts ------------------------------------------------------------ */

/* Posts come from one pool shared by the lcores (the last holder of a
 * post puts it back, on whichever lcore that is). An element holds the
 * struct, the post's strings, its SIP 200 and, for ordinary sizes, the
 * XCCOS body the home builds; larger posts fall back to malloc. */
#define POST_ELT	4096
#define POST_POOL_N	4095

static struct rte_mempool *post_pool;

struct fanout_post *
fanout_post_alloc(size_t extra)
{
	struct fanout_post *p = NULL;

	if (post_pool != NULL && sizeof(*p) + extra <= POST_ELT &&
	    rte_mempool_get(post_pool, (void **)&p) == 0) {
		memset(p, 0, sizeof(*p));
		p->pooled = true;
		p->cap = POST_ELT - sizeof(*p);
	} else {
		p = calloc(1, sizeof(*p) + extra);
		if (p == NULL)
			return NULL;
		p->cap = extra;
	}
	atomic_init(&p->refs, 1);
	return p;
}

void
fanout_post_put(struct fanout_post *p)
{
	if (p == NULL || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (p->body_owned)
		free(p->body);
	if (p->pooled)
		rte_mempool_put(post_pool, p);
	else
		free(p);
}

bool
fo_admit(struct lcore_ctx *lc, uint32_t home)
{
	struct fanout_lc *fo = fo_lc(lc);
	const struct stage *s = &fo->tx[home];
	uint32_t max = lcore_conf(lc)->posts_inflight_max, qms = lcore_conf(lc)->post_queue_ms;

	/* Overload: past posts_inflight_max on their way (sequenced, stored,
	 * fanned out), or while they take longer than post_queue_ms, refuse
	 * rather than queue, so that what is accepted stays fast. */
	if (s->n < s->cap / 2 && (max == 0 || fo->waiting < max) &&
	    (qms == 0 || fo->waiting == 0 || fo->delay_ms <= qms))
		return true;
	fo_lc(lc)->refused++;
	return false;
}

int
fanout_post(struct lcore_ctx *lc, const struct roomtab_ent *r, struct fanout_post *p)
{
	if (!fo_admit(lc, r->home))
		return -ENOBUFS;
	p->origin = lcore_idx(lc);
	p->admit_ms = lcore_now_real_ms(lc);
	conn_hold(p->conn);
	fo_lc(lc)->waiting++;
	fo_send_msg(lc, r->home, FM_POST, p, 0);
	return 0;
}

/* Home: the last seq of a room so far (it continues after what history
 * holds). */
uint64_t
fo_next_seq_peek(struct lcore_ctx *lc, struct fo_roomstate *lr)
{
	const struct roomtab *t = roomtab_of(lc);
	const struct roomtab_ent *r = t != NULL && t->self != 0 ? roomtab_find_raw(t, lr->raw) :
				      NULL;

	/* In an array, a new epoch (this node took the room over): go on
	 * after what history holds, copies taken as its replica on their way
	 * to storage included; epoch_first is where this epoch's numbering
	 * starts (resyncs, the replica's probe). */
	if (r != NULL && r->epoch != lr->home_epoch) {
		lr->seq_loaded = false;
		lr->home_epoch = r->epoch;
	}
	if (!lr->seq_loaded) {
		uint64_t last = 0, stored;

		if (history_last_seq(lcore_db(lc), lr->raw, &last) != 0)
			last = 0;
		stored = last;
		if (fo_repl_last(lr) > last)
			last = fo_repl_last(lr);
		lr->next_seq = last + 1;
		lr->epoch_first = lr->next_seq;
		lr->seq_loaded = true;
		if (r != NULL) {
			/* Members here saw the room as relays until now. */
			fo_takeover_catch_up(lc, lr, r, stored);
			lr->last_seq = last;
			lr->seq_epoch = r->epoch;
		}
	}
	return lr->next_seq - 1;
}

static uint64_t
next_seq(struct lcore_ctx *lc, struct fo_roomstate *lr)
{
	fo_next_seq_peek(lc, lr);
	return lr->next_seq++;
}

/* The home's answer to the post's origin: its lcore, or its node. */
static void
post_answer(struct lcore_ctx *lc, struct fanout_post *p)
{
	if (p->origin == FO_ORIGIN_REMOTE) {
		fo_peer_post_ack(lc, p);
		fanout_post_put(p);
	} else {
		fo_send_msg(lc, p->origin, FM_POST_DONE, p, 0);
	}
}

/* Local home lcore: a post to sequence here, or (in an array) to forward
 * to the room's home node. */
void
fo_home_post(struct lcore_ctx *lc, struct fanout_post *p)
{
	const struct roomtab *t = roomtab_of(lc);
	const struct roomtab_ent *r = roomtab_find_raw(t, p->room);
	struct fo_roomstate *lr;

	if (p->origin != FO_ORIGIN_REMOTE && r != NULL && !roomtab_homed_here(t, r)) {
		fo_peer_post_fwd(lc, r, p);
		return;
	}
	lr = fo_roomstate_get(fo_lc(lc), p->room);
	if (lr == NULL) {
		p->status = -ENOMEM;
		post_answer(lc, p);
		return;
	}
	/* Compliance must never lose a post: with the exporter this far
	 * behind, refuse new ones rather than grow the log without bound. */
	if (lcore_conf(lc)->compliance_cap != 0 &&
	    engine_compliance_lag(lcore_engine(lc)) >= lcore_conf(lc)->compliance_cap) {
		ctr_inc(lc, CTR_POSTS_COMPLIANCE_CAP);
		p->status = -ENOSPC;
		post_answer(lc, p);
		return;
	}
	/* In an array: no node to keep the copy ([array] alone = refuse). */
	if (!fo_repl_admit(lc, r)) {
		p->status = -EAGAIN;
		post_answer(lc, p);
		return;
	}
	p->seq = next_seq(lc, lr);	/* (sets home_epoch, epoch_first: fo_next_seq_peek) */
	ctr_inc(lc, CTR_POSTS_SEQUENCED);
	fo_submit_job(lc, (void *)((uintptr_t)p | 1));
}

void
fo_build_post_body(struct lcore_ctx *lc, struct fanout_post *p)
{
	struct xbuf *b = &fo_lc(lc)->scratch;
	char ts[XCCOS_TS_LEN];

	xccos_ts_format(p->ts_100ns, ts);
	xbuf_reset(b);
	xccos_begin(b, p->wal_seq);
	xbuf_str(b, "<grpchat id=\"grpchat\" seqid=\"1\"");
	xbuf_attr(b, "chanUri", p->room_uri);
	xbuf_attr(b, "author", p->author);
	xbuf_attr(b, "ts", ts);
	xbuf_str(b, p->extra_attrs);
	xbuf_str(b, ">");
	xbuf_raw(b, p->inner, p->inner_len);
	xbuf_str(b, "</grpchat>");
	xccos_end(b);
	if (!xbuf_ok(b))
		return;
	/* Built once in this lcore's scratch buffer (no allocation once it
	 * has grown), then kept in the post's own element when it fits. */
	if (b->len + 1 <= p->cap - p->used) {
		p->body = (char *)(p + 1) + p->used;
		p->used += b->len + 1;
	} else {
		p->body = malloc(b->len + 1);
		if (p->body == NULL)
			return;
		p->body_owned = true;
	}
	memcpy(p->body, b->p, b->len);
	p->body[b->len] = '\0';
	p->body_len = b->len;
}

/* Home: the post is durable (or failed). In an array with a replica it
 * waits for the replica's copy (fanout_repl.c); then fan out and tell the
 * origin. */
static void
home_post_stored(struct lcore_ctx *lc, struct fanout_post *p, int status, uint64_t wal_seq)
{
	p->status = status;
	p->wal_seq = wal_seq;
	if (status == 0) {
		fo_build_post_body(lc, p);
		if (p->body == NULL)
			p->status = -ENOMEM;
	} else {
		ctr_inc(lc, CTR_STORAGE_FAILED);
	}
	if (p->status == 0 && fo_repl_hold(lc, fo_roomstate_find(fo_lc(lc), p->room), p))
		return;
	fo_post_visible(lc, p);
}

void
fo_post_visible(struct lcore_ctx *lc, struct fanout_post *p)
{
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), p->room);

	/* Settled, answered either way: the exporter may take its event
	 * (storage/acked.h); one that failed because the room left is void. */
	if (lcore_db(lc) != NULL)
		acked_publish(db_acked(lcore_db(lc)), p->room, p->seq);
	if (p->status == 0 && lr != NULL)
		for (uint32_t l = 0; l < lcore_conf(lc)->nlcores; l++)
			if (lr->per_lcore[l] > 0) {
				atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
				fo_send_msg(lc, l, FM_DELIVER, p, 0);
			}
	if (p->status == 0 && lr != NULL && lr->nnodes > 0)
		fo_peer_relay(lc, lr, p);
	if (p->status == 0 && lr != NULL && p->seq > lr->last_seq)
		lr->last_seq = p->seq;	/* seen here: where a resync starts if the room moves */
	post_answer(lc, p);
}

static void
deliver(struct lcore_ctx *lc, struct fanout_post *p)
{
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), p->room);

	if (lr != NULL)
		for (uint32_t i = 0; i < lr->mn; i++) {
			struct dialog *d = lr->mv[i];

			if (fo_shared(lcore_engine(lc))->ops.send(lc, d, p->body, p->body_len) == 0)
				ctr_inc(lc, CTR_DELIVERIES);
		}
	fanout_post_put(p);
}

/* ---- events a reply waits for ----------------------------------------- */

void
fanout_event_then_reply(struct lcore_ctx *lc, struct conn *c, struct dialog *d, int ev,
			const struct roomtab_ent *r, const char *content, size_t content_len,
			char *reply, size_t reply_len, char *fail, size_t fail_len)
{
	struct replyjob *j = calloc(1, sizeof(*j));

	if (j == NULL || (j->content = malloc(content_len + 1)) == NULL) {
		free(j);
		free(reply);
		free(fail);
		return;
	}
	j->fail = fail;
	j->fail_len = fail_len;
	j->kind = FANOUT_JOB_REPLY;
	j->ev = ev;
	j->conn = c;
	j->uid = d->uid;
	memcpy(j->raw, r->raw, CATALOG_ID_RAW);
	j->reply = reply;
	j->reply_len = reply_len;
	memcpy(j->content, content, content_len);
	j->content[content_len] = '\0';
	j->content_len = content_len;
	snprintf(j->user, sizeof(j->user), "sip:%s", c->aor);
	snprintf(j->room_uri, sizeof(j->room_uri), "%s", r->cat->uri);
	conn_hold(c);
	fo_submit_job(lc, j);
}

static void
reply_stored(struct lcore_ctx *lc, struct replyjob *j, int status)
{
	struct dialog *d = dialog_by_uid(j->conn, j->uid);

	if (status != 0)
		ctr_inc(lc, CTR_STORAGE_FAILED);
	if (d != NULL && conn_usable(j->conn)) {
		if (status == 0)
			fo_shared(lcore_engine(lc))->ops.send(lc, d, j->reply, j->reply_len);
		else if (j->fail != NULL)
			fo_shared(lcore_engine(lc))->ops.send(lc, d, j->fail, j->fail_len);
	}
	conn_release(j->conn);
	free(j->reply);
	free(j->fail);
	free(j->content);
	free(j);
}

/* ---- the commit requests ---------------------------------------------- */

static void
fill_req(struct lcore_ctx *lc, void *cookie, struct commit_req *r)
{
	if ((uintptr_t)cookie & 1) {
		struct fanout_post *p = (struct fanout_post *)((uintptr_t)cookie & ~(uintptr_t)1);

		r->op = COMMIT_POST;
		r->ev = WAL_EV_CHAT;
		r->logged = p->logged;
		memcpy(r->room, p->room, CATALOG_ID_RAW);
		r->room_seq = p->seq;
		r->room_uri = p->room_uri;
		r->room_uri_len = strlen(p->room_uri);
		r->user = p->author;
		r->user_len = strlen(p->author);
		r->body = p->inner;
		r->body_len = p->inner_len;
		r->content = p->text;
		r->content_len = p->text_len;
	} else if (*(enum fanout_job *)cookie == FANOUT_JOB_REPL) {
		fo_repl_fill(cookie, r);
	} else {
		enum fanout_job k = *(enum fanout_job *)cookie;

		r->op = COMMIT_EVENT;
		if (k == FANOUT_JOB_JOIN) {
			struct fanout_joinreq *jr = cookie;

			r->ev = WAL_EV_JOIN;
			memcpy(r->room, jr->raw, CATALOG_ID_RAW);
			r->room_uri = jr->room_uri;
			r->user = jr->uri;
		} else if (k == FANOUT_JOB_PART) {
			struct partreq *pq = cookie;

			r->ev = WAL_EV_PART;
			memcpy(r->room, pq->raw, CATALOG_ID_RAW);
			r->room_uri = pq->room_uri;
			r->user = pq->uri;
		} else if (k == FANOUT_JOB_PEER_HIST) {
			struct peerhist *ph = cookie;

			r->ev = WAL_EV_BACKCHAT;
			memcpy(r->room, ph->raw, CATALOG_ID_RAW);
			r->room_uri = ph->room_uri;
			r->user = ph->user;
			r->content = ph->content;
			r->content_len = strlen(ph->content);
		} else {
			struct replyjob *j = cookie;

			r->ev = (enum wal_event)j->ev;
			memcpy(r->room, j->raw, CATALOG_ID_RAW);
			r->room_uri = j->room_uri;
			r->user = j->user;
			r->content = j->content;
			r->content_len = j->content_len;
		}
		r->room_uri_len = strlen(r->room_uri);
		r->user_len = strlen(r->user);
	}
	r->cookie = cookie;
	(void)lc;
}

static void
completed(struct lcore_ctx *lc, struct commit_req *r)
{
	void *cookie = r->cookie;
	int status = r->status;
	uint64_t wal_seq = r->wal_seq, ts_ms = r->ts_ms;

	commit_req_put(fo_lc(lc)->prod, r);
	fo_lc(lc)->inflight--;
	if (status != 0)
		LOG(ERR, FANOUT, "lcore %u: the storage thread failed a request: %s", lcore_idx(lc),
		    strerror(-status));
	if ((uintptr_t)cookie & 1) {
		struct fanout_post *p = (struct fanout_post *)((uintptr_t)cookie & ~(uintptr_t)1);

		/* The time members see is the one history and compliance keep. */
		p->ts_100ns = ts_ms * 10000;
		home_post_stored(lc, p, status, wal_seq);
		return;
	}
	switch (*(enum fanout_job *)cookie) {
	case FANOUT_JOB_JOIN:
		fo_home_join_stored(lc, cookie, status);
		break;
	case FANOUT_JOB_PART:
		fo_home_part_stored(lc, cookie, status);
		break;
	case FANOUT_JOB_REPLY:
		reply_stored(lc, cookie, status);
		break;
	case FANOUT_JOB_REPL:
		fo_repl_stored(lc, cookie, status);
		break;
	case FANOUT_JOB_PEER_HIST:
		fo_peer_history_stored(lc, cookie, status);
		break;
	default:
		break;
	}
}

/* ---- the loop --------------------------------------------------------- */

static void
dispatch(struct lcore_ctx *lc, const struct fmsg *m)
{
	switch (m->type) {
	case FM_POST:
		fo_home_post(lc, m->ptr);
		break;
	case FM_POST_DONE: {
		struct fanout_post *p = m->ptr;

		fo_lc(lc)->waiting--;
		fo_lc(lc)->delay_ms = lcore_now_real_ms(lc) >= p->admit_ms ?
				      lcore_now_real_ms(lc) - p->admit_ms : 0;
		fo_shared(lcore_engine(lc))->ops.post_done(lc, p);
		conn_release(p->conn);
		fanout_post_put(p);
		break;
	}
	case FM_DELIVER:
		deliver(lc, m->ptr);
		break;
	case FM_JOIN:
		fo_home_join(lc, m->ptr);
		break;
	case FM_JOINED:
		fo_origin_joined(lc, m->ptr);
		break;
	case FM_PART:
		fo_home_part(lc, m->ptr);
		break;
	case FM_PRESENCE:
		fo_tell_members(lc, m->ptr);
		break;
	default:
		LOG(ERR, FANOUT, "lcore %u: unknown message %u from lcore %u", lcore_idx(lc), m->type,
		    m->src);
		break;
	}
}

/* Completions this turn may take: BURST, or fewer when a stage is nearly
 * full. */
static unsigned
completions_room(struct lcore_ctx *lc)
{
	uint32_t nl = lcore_conf(lc)->nlcores, room = UINT32_MAX;

	for (uint32_t dst = 0; dst < nl; dst++)	/* n <= cap: the array grows */
		if (fo_lc(lc)->tx[dst].cap - fo_lc(lc)->tx[dst].n < room)
			room = fo_lc(lc)->tx[dst].cap - fo_lc(lc)->tx[dst].n;
	room /= nl + 1;
	return room < BURST ? room : BURST;
}

unsigned
fanout_poll(struct lcore_ctx *lc)
{
	struct fanout_lc *fo = fo_lc(lc);
	struct fmsg msgs[BURST];
	struct commit_req *reqs[BURST];
	unsigned work = 0, n;

	for (uint32_t src = 0; src < lcore_conf(lc)->nlcores; src++) {
		n = rte_ring_dequeue_burst_elem(fo->rx[src], msgs, sizeof(msgs[0]), BURST, NULL);
		for (unsigned i = 0; i < n; i++)
			dispatch(lc, &msgs[i]);
		work += n;
	}
	/* A completion sends at most one message to every lcore and one more
	 * to the origin: take no more than the fullest stage has room for,
	 * so the home's answers wait in the storage thread's completion ring
	 * rather than grow a stage (the rings themselves are always read: two
	 * lcores never wait for each other). */
	n = commit_poll(fo->prod, reqs, completions_room(lc));
	for (unsigned i = 0; i < n; i++)
		completed(lc, reqs[i]);
	if (fo_peer_active()) {
		fo_peer_poll(lc, &work);
		fo_repl_tick(lc);
	}
	return work + n;
}

/* ---- boot ------------------------------------------------------------- */

static struct fanout_ops registered;

/* A ring of <size> slots (size - 1 entries) of struct fmsg. */
static struct rte_ring *
ring_new(const char *name, uint32_t size)
{
	return ring_alloc(name, rte_ring_get_memsize_elem(sizeof(struct fmsg), size), size,
			  RING_F_SP_ENQ | RING_F_SC_DEQ);
}

void
fanout_register(const struct fanout_ops *ops)
{
	registered = *ops;
}

int
fanout_init(struct engine *e, char *err, size_t errlen)
{
	uint32_t n = engine_nlcores(e), size = engine_conf(e)->ring_size;
	uint32_t stage = size / 4 > 64 ? size / 4 : 64;	/* per destination */
	struct fanout_shared *sh;

	if (registered.post_done == NULL || registered.join_done == NULL ||
	    registered.send == NULL) {
		snprintf(err, errlen, "fanout: no service registered its callbacks");
		return -EINVAL;
	}
	if (n > FANOUT_LCORES_MAX) {
		snprintf(err, errlen, "at most %d lcores", FANOUT_LCORES_MAX);
		return -EINVAL;
	}
	sh = calloc(1, sizeof(*sh));
	engine_set_svc(e, sh);
	if (sh == NULL || (sh->v = calloc(PRESENCE_SLOTS, sizeof(*sh->v))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sh->ops = registered;
	for (uint32_t i = 0; i < n; i++) {
		struct lcore_ctx *lc = engine_lcore(e, i);
		struct fanout_lc *fo = calloc(1, sizeof(*fo));

		lcore_set_svc(lc, fo);
		if (fo == NULL) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		fo->prod = lcore_commit_producer(lc);
	}
#ifndef PARLEY_POOLS_PASSTHROUGH
	/* The pool is a memzone: without the EAL (unit tests) posts come
	 * from malloc. */
	if (rte_lcore_count() > 0) {
		post_pool = rte_mempool_create("posts", POST_POOL_N, POST_ELT, 64, 0, NULL, NULL,
					       NULL, NULL, SOCKET_ID_ANY, 0);
		if (post_pool == NULL)
			LOG(WARNING, FANOUT, "no post pool (%s): posts come from malloc",
			    rte_strerror(rte_errno));
	}
#endif
	for (uint32_t i = 0; i < n; i++) {
		struct fanout_lc *fo = fo_lc(engine_lcore(e, i));

		xbuf_init(&fo->scratch, 0);
		fo->backlog.v = malloc(size * sizeof(*fo->backlog.v));
		if (fo->backlog.v == NULL)
			goto nomem;
		fo->backlog.cap = size;
		for (uint32_t dst = 0; dst < n; dst++) {
			fo->tx[dst].v = malloc(stage * sizeof(*fo->tx[dst].v));
			if (fo->tx[dst].v == NULL)
				goto nomem;
			fo->tx[dst].cap = stage;
		}
	}
	for (uint32_t dst = 0; dst < n; dst++)
		for (uint32_t src = 0; src < n; src++) {
			char name[RTE_RING_NAMESIZE];
			struct rte_ring *r;

			snprintf(name, sizeof(name), "fo-%u-%u", src, dst);
			r = ring_new(name, size);
			if (r == NULL) {
				snprintf(err, errlen, "ring %s of %u entries: out of memory", name,
					 size);
				return -ENOMEM;
			}
			fo_lc(engine_lcore(e, dst))->rx[src] = r;
		}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

void
fanout_quiesce(struct engine *e, int timeout_ms)
{
	struct timespec nap = { 0, 1000000 };

	/* The lcores are gone; this thread plays each of them in turn until
	 * nothing is in a ring, staged or with the storage thread. */
	for (int waited = 0; waited < timeout_ms; waited++) {
		bool settled = true;

		for (uint32_t i = 0; i < engine_nlcores(e); i++) {
			struct lcore_ctx *lc = engine_lcore(e, i);

			fanout_poll(lc);
			fanout_flush(lc);
			conn_reap(lc);
			settled &= fanout_settled(lc);
		}
		if (settled)
			return;
		nanosleep(&nap, NULL);
	}
	LOG(WARNING, FANOUT, "shutdown: messages between lcores still in flight after %d ms",
	    timeout_ms);
}

void
fanout_fini(struct engine *e)
{
	for (uint32_t i = 0; i < engine_nlcores(e); i++) {
		struct lcore_ctx *lc = engine_lcore(e, i);
		struct fanout_lc *fo = lc ? fo_lc(lc) : NULL;

		if (fo == NULL)
			continue;
		for (uint32_t s = 0; s < engine_nlcores(e); s++) {
			free(fo->rx[s]);
			free(fo->tx[s].v);
		}
		fo_repl_fini(fo);
		for (uint32_t k = 0; k < fo->rcap; k++)
			if (fo->rooms[k] != NULL) {
				free(fo->rooms[k]->mv);
				free(fo->rooms[k]->rv);
				free(fo->rooms[k]);
			}
		free(fo->rooms);
		fo_peer_fini(fo);
		free(fo->backlog.v);
		xbuf_free(&fo->scratch);
		free(fo);
		lcore_set_svc(lc, NULL);
	}
	rte_mempool_free(post_pool);
	post_pool = NULL;
	if (fo_shared(e) != NULL) {
		free(fo_shared(e)->v);
		free(fo_shared(e));
		engine_set_svc(e, NULL);
	}
}

