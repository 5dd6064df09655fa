/* Rooms across the nodes of an array, per room: this node standing in for
 * a room homed elsewhere, and this node as a room's home for the others;
 * link events and the frames' handlers. See fanout_peer.h;
 * fanout_peer.c has the plumbing, fanout_peer_sync.c the members' side of
 * a resync and the catch-up after a takeover. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/base/log.h"
#include "dataplane/chat/fanout_int.h"
#include "dataplane/chat/fanout_peer.h"
#include "dataplane/chat/fanout_peer_int.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/peer/peerframe.h"
#include "dataplane/session/dialog.h"
#include "storage/history.h"

#define CHUNK_BYTES	(256u << 10)	/* a HISTORY frame stops growing past this */

/* ---- this node stands in for a room homed elsewhere -------------------- */

struct fanout_post *
fo_post_copy(const char *author, size_t alen, const char *room_uri, size_t ulen,
	     const void *body, size_t blen, const void *text, size_t tlen, const void *extra,
	     size_t elen)
{
	struct fanout_post *p = fanout_post_alloc(alen + 1 + ulen + 1 + blen + 1 + tlen + 1 +
						  elen + 1);
	char *s;

	if (p == NULL)
		return NULL;
	s = (char *)(p + 1);
	p->author = memcpy(s, author, alen);
	s[alen] = '\0';
	s += alen + 1;
	p->room_uri = memcpy(s, room_uri, ulen + 1);
	s += ulen + 1;
	p->inner = memcpy(s, body, blen);
	s[blen] = '\0';
	s += blen + 1;
	p->inner_len = blen;
	if (text != NULL) {
		p->text = memcpy(s, text, tlen);
		s[tlen] = '\0';
		s += tlen + 1;
		p->text_len = tlen;
	}
	p->extra_attrs = memcpy(s, extra, elen);
	s[elen] = '\0';
	s += elen + 1;
	p->used = (size_t)(s - (char *)(p + 1));
	return p;
}

void
fo_peer_post_fwd(struct lcore_ctx *lc, const struct roomtab_ent *r, struct fanout_post *p)
{
	struct peerframe f;
	uint64_t ref;

	if (!fo_peer_active() || r->node == ROOMTAB_NODE_NONE || !fo_node_up(fo_lc(lc), r->node))
		goto out_fail;
	ref = fo_pend_add(lc, r->node, PEND_POST, p);
	if (ref == 0)
		goto out_fail;
	fo_frame_init(&f, PEERFRAME_POST_FWD, p->room, r->epoch);
	f.ref = ref;
	f.u.post = (struct peerframe_post){
		.time_ms = fo_now_ms(), .author = p->author,
		.author_len = (uint16_t)strlen(p->author),
		.body = (const uint8_t *)p->inner, .body_len = (uint32_t)p->inner_len,
		.text = (const uint8_t *)p->text, .text_len = (uint32_t)p->text_len,
		.extra = p->extra_attrs, .extra_len = (uint16_t)strlen(p->extra_attrs),
	};
	if (fo_peer_send(lc, r->node, &f) != 0) {
		fo_pend_take(lc, ref, PEND_POST);
		goto out_fail;
	}
	ctr_inc(lc, CTR_PEER_POSTS_FWD);
	return;
out_fail:
	ctr_inc(lc, CTR_PEER_FAILED);
	p->status = -EAGAIN;
	fo_send_msg(lc, p->origin, FM_POST_DONE, p, 0);
}

static void
local_roster_del(struct lcore_ctx *lc, struct fo_roomstate *lr, uint64_t uid)
{
	for (uint32_t i = 0; lr != NULL && i < lr->rn; i++)
		if (lr->rv[i].node == 0 && lr->rv[i].uid == uid) {
			fo_roster_del(lc, lr, &lr->rv[i]);
			return;
		}
}

void
fo_peer_join_fwd(struct lcore_ctx *lc, const struct roomtab_ent *r, struct fanout_joinreq *jr)
{
	struct fo_roomstate *lr = fo_roomstate_get(fo_lc(lc), jr->raw);
	struct roster_ent *re;
	struct peerframe f;
	uint64_t ref;

	jr->status = 503;
	if (lr == NULL || !fo_peer_active() || r->node == ROOMTAB_NODE_NONE ||
	    !fo_node_up(fo_lc(lc), r->node))
		goto out_fail;
	re = fo_roster_add(lr);
	if (re == NULL)
		goto out_fail;
	/* Counted here at once: what the home relays from now on reaches the
	 * joiner's lcore. */
	re->uid = jr->uid;
	re->lcore = jr->origin;
	re->dialogs = 1;
	re->manager = jr->manager;
	snprintf(re->uri, sizeof(re->uri), "%s", jr->uri);
	lr->per_lcore[jr->origin]++;
	if (lr->present != NULL)
		atomic_fetch_add_explicit(lr->present, 1, memory_order_relaxed);
	ref = fo_pend_add(lc, r->node, PEND_JOIN, jr);
	if (ref == 0) {
		local_roster_del(lc, lr, jr->uid);
		goto out_fail;
	}
	fo_frame_init(&f, PEERFRAME_JOIN, jr->raw, r->epoch);
	f.ref = ref;
	f.seq = jr->uid;
	f.u.user.flags = (jr->manager ? PEERFRAME_USER_MANAGER : 0) |
			 (jr->bjoin ? PEERFRAME_USER_BATCH : 0);
	f.u.user.uri = jr->uri;
	f.u.user.uri_len = (uint16_t)strlen(jr->uri);
	if (fo_peer_send(lc, r->node, &f) != 0) {
		fo_pend_take(lc, ref, PEND_JOIN);
		local_roster_del(lc, lr, jr->uid);
		goto out_fail;
	}
	ctr_inc(lc, CTR_PEER_JOINS_FWD);
	if (lr->synced_node == 0) {
		lr->synced_node = r->node;
		lr->synced_epoch = r->epoch;
	}
	return;
out_fail:
	ctr_inc(lc, CTR_PEER_FAILED);
	fo_send_msg(lc, jr->origin, FM_JOINED, jr, 0);
}

void
fo_peer_part_fwd(struct lcore_ctx *lc, const struct roomtab_ent *r, struct partreq *pq)
{
	struct peerframe f;

	/* With the link down the home learns it from the next resync. */
	if (fo_peer_active() && r->node != ROOMTAB_NODE_NONE && fo_node_up(fo_lc(lc), r->node)) {
		fo_frame_init(&f, PEERFRAME_PART, pq->raw, r->epoch);
		f.seq = pq->uid;
		f.u.user.uri = pq->uri;
		f.u.user.uri_len = (uint16_t)strlen(pq->uri);
		fo_peer_send(lc, r->node, &f);
	}
	free(pq);
}

int
fanout_history_ask(struct lcore_ctx *lc, const struct roomtab_ent *r, struct fanout_histreq *h)
{
	struct peerframe f;
	uint64_t ref;

	if (!fo_peer_active() || r->node == ROOMTAB_NODE_NONE || !fo_node_up(fo_lc(lc), r->node))
		return -EAGAIN;
	ref = fo_pend_add(lc, r->node, PEND_HIST, h);
	if (ref == 0)
		return -ENOMEM;
	fo_frame_init(&f, PEERFRAME_HISTORY_REQ, r->raw, r->epoch);
	f.ref = ref;
	f.seq = h->count;
	f.u.user.uri = h->user;
	f.u.user.uri_len = (uint16_t)strlen(h->user);
	if (fo_peer_send(lc, r->node, &f) != 0) {
		fo_pend_take(lc, ref, PEND_HIST);
		return -EAGAIN;
	}
	fo_lc(lc)->waiting++;
	return 0;
}

void
fanout_histreq_free(struct fanout_histreq *h)
{
	if (h == NULL)
		return;
	if (h->conn != NULL)
		conn_release(h->conn);
	free(h->recs);
	free(h->mem);
	free(h);
}

static void
history_done(struct lcore_ctx *lc, struct fanout_histreq *h)
{
	fo_lc(lc)->waiting--;
	if (fo_shared(lcore_engine(lc))->ops.history_done != NULL)
		fo_shared(lcore_engine(lc))->ops.history_done(lc, h);
	fanout_histreq_free(h);
}

/* The home answered a bccontext: <m> becomes the records' memory. */
static bool
got_history_answer(struct lcore_ctx *lc, struct pmsg *m)
{
	struct fanout_histreq *h = fo_pend_take(lc, m->f.ref, PEND_HIST);

	if (h == NULL)
		return false;
	if (m->f.code != PEERFRAME_OK) {
		fo_refused(lc, m->f.room, m->f.code);
		h->status = -EAGAIN;
		history_done(lc, h);
		return false;
	}
	h->recs = calloc(m->nrecs ? m->nrecs : 1, sizeof(*h->recs));
	if (h->recs == NULL) {
		h->status = -ENOMEM;
		history_done(lc, h);
		return false;
	}
	for (uint32_t i = 0; i < m->nrecs; i++) {
		h->recs[i].seq = m->recs[i].seq;
		h->recs[i].ts_ms = m->recs[i].time_ms;
		h->recs[i].author = m->recs[i].author;
		h->recs[i].author_len = m->recs[i].author_len;
		h->recs[i].body = m->recs[i].body;
		h->recs[i].body_len = m->recs[i].body_len;
	}
	h->n = m->nrecs;
	h->mem = m;
	history_done(lc, h);
	return true;
}

static void
got_post_ack(struct lcore_ctx *lc, const struct pmsg *m)
{
	struct fanout_post *p = fo_pend_take(lc, m->f.ref, PEND_POST);

	if (p == NULL)
		return;
	p->status = fo_code_errno(m->f.code);
	if (p->status == 0)
		p->seq = m->f.seq;
	else
		fo_refused(lc, p->room, m->f.code);
	fo_send_msg(lc, p->origin, FM_POST_DONE, p, 0);
}

static void
got_join_ack(struct lcore_ctx *lc, const struct pmsg *m)
{
	struct fanout_joinreq *jr = fo_pend_take(lc, m->f.ref, PEND_JOIN);
	struct fo_roomstate *lr;

	if (jr == NULL)
		return;
	lr = fo_roomstate_find(fo_lc(lc), jr->raw);
	if (m->f.code != PEERFRAME_OK) {
		fo_refused(lc, jr->raw, m->f.code);
		jr->status = m->f.code == PEERFRAME_NOT_MEMBER ? 403 : 503;
		local_roster_del(lc, lr, jr->uid);
		fo_send_msg(lc, jr->origin, FM_JOINED, jr, 0);
		return;
	}
	jr->status = 200;
	free(jr->snap);
	jr->nsnap = 0;
	jr->snap = calloc(m->nusers ? m->nusers : 1, sizeof(*jr->snap));
	for (uint32_t i = 0; jr->snap != NULL && i < m->nusers; i++) {
		snprintf(jr->snap[i].uri, sizeof(jr->snap[i].uri), "%.*s", (int)m->users[i].uri_len,
			 m->users[i].uri);
		jr->snap[i].manager = (m->users[i].flags & PEERFRAME_USER_MANAGER) != 0;
		jr->nsnap++;
	}
	if (lr != NULL && lr->last_seq == 0 && !lr->resyncing) {
		lr->last_seq = m->f.seq;
		lr->seq_epoch = m->f.epoch;
	}
	fo_send_msg(lc, jr->origin, FM_JOINED, jr, 0);
}

static void
got_relay(struct lcore_ctx *lc, const struct pmsg *m)
{
	const struct roomtab *t = roomtab_of(lc);
	const struct roomtab_ent *r = roomtab_find_raw(t, m->f.room);
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), m->f.room);
	struct fanout_post *p;

	if (r == NULL || roomtab_homed_here(t, r) || m->f.epoch < r->epoch || lr == NULL ||
	    lr->resyncing || m->f.seq <= lr->last_seq || !fo_has_local(lr)) {
		ctr_inc(lc, CTR_PEER_RELAYS_DROPPED);
		return;
	}
	lr->last_seq = m->f.seq;
	lr->seq_epoch = m->f.epoch;
	p = fanout_post_alloc(m->f.u.post.body_len + 1);
	if (p == NULL)
		return;
	memcpy(p->room, m->f.room, CATALOG_ID_RAW);
	p->seq = m->f.seq;
	p->body = (char *)(p + 1);
	memcpy(p->body, m->f.u.post.body, m->f.u.post.body_len);
	p->body[m->f.u.post.body_len] = '\0';
	p->body_len = m->f.u.post.body_len;
	p->used = p->body_len + 1;
	ctr_inc(lc, CTR_PEER_RELAYS_IN);
	fo_deliver_local(lc, lr, p);
}

static void
got_presence(struct lcore_ctx *lc, const struct pmsg *m)
{
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), m->f.room);
	struct presence *pr;

	if (lr == NULL || !fo_has_local(lr))
		return;
	pr = calloc(1, sizeof(*pr));
	if (pr == NULL || (pr->body = malloc(m->f.u.notice.body_len + 1)) == NULL) {
		free(pr);
		return;
	}
	atomic_init(&pr->refs, 1);
	memcpy(pr->raw, m->f.room, CATALOG_ID_RAW);
	memcpy(pr->body, m->f.u.notice.body, m->f.u.notice.body_len);
	pr->body[m->f.u.notice.body_len] = '\0';
	pr->body_len = m->f.u.notice.body_len;
	pr->skip = m->f.seq == roomtab_of(lc)->self;
	pr->uid = m->f.ref;
	ctr_inc(lc, CTR_PEER_NOTICES_IN);
	for (uint32_t l = 0; l < lcore_conf(lc)->nlcores; l++)
		if (lr->per_lcore[l] > 0) {
			atomic_fetch_add_explicit(&pr->refs, 1, memory_order_relaxed);
			fo_send_msg(lc, l, FM_PRESENCE, pr, 0);
		}
	fo_presence_put(pr);
}

/* ---- this node homes the room ------------------------------------------ */

void
fo_peer_relay(struct lcore_ctx *lc, struct fo_roomstate *lr, const struct fanout_post *p)
{
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), p->room);
	uint32_t nodes[FO_NODES_MAX];
	unsigned n = fo_nodes_of(lr, nodes);
	struct peerframe f;

	if (n == 0 || !fo_peer_active())
		return;
	fo_frame_init(&f, PEERFRAME_RELAY, p->room, r ? r->epoch : 0);
	f.seq = p->seq;
	f.u.post = (struct peerframe_post){
		.time_ms = p->ts_100ns / 10000, .author = p->author,
		.author_len = (uint16_t)strlen(p->author), .body = (const uint8_t *)p->body,
		.body_len = (uint32_t)p->body_len,
	};
	if (fo_peer_ops.send_many(fo_peer_ops.arg, nodes, n, &f) != 0)
		ctr_inc(lc, CTR_PEER_SEND_FAILED);
	else
		ctr_add(lc, CTR_PEER_RELAYS_OUT, n);
}

void
fo_peer_post_ack(struct lcore_ctx *lc, struct fanout_post *p)
{
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), p->room);
	struct peerframe f;

	fo_frame_init(&f, PEERFRAME_POST_ACK, p->room, r ? r->epoch : 0);
	f.ref = p->ref;
	f.seq = p->seq;
	f.code = p->status == 0 ? PEERFRAME_OK : PEERFRAME_OVERLOAD;
	fo_peer_send(lc, p->from_node, &f);
}

void
fo_peer_join_ack(struct lcore_ctx *lc, struct fanout_joinreq *jr, struct fo_roomstate *lr)
{
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), jr->raw);
	struct peerframe_user *v = NULL;
	struct peerframe f;
	uint32_t n = 0;

	fo_frame_init(&f, PEERFRAME_JOIN_ACK, jr->raw, r ? r->epoch : 0);
	f.ref = jr->ref;
	f.code = jr->status == 200 ? PEERFRAME_OK : PEERFRAME_OVERLOAD;
	if (jr->status == 200 && lr != NULL) {
		f.seq = fo_next_seq_peek(lc, lr);
		/* The present users, each once (rpl:join's uib table). */
		v = calloc(lr->rn ? lr->rn : 1, sizeof(*v));
		for (uint32_t i = 0; v != NULL && i < lr->rn && n < PEERFRAME_USERS_MAX; i++) {
			uint32_t k;

			for (k = 0; k < n; k++)
				if (roomtab_user_eq(v[k].uri, lr->rv[i].uri))
					break;
			if (k < n) {
				v[k].flags |= lr->rv[i].manager ? PEERFRAME_USER_MANAGER : 0;
				continue;
			}
			v[n].uri = lr->rv[i].uri;
			v[n].uri_len = (uint16_t)strlen(lr->rv[i].uri);
			v[n].flags = lr->rv[i].manager ? PEERFRAME_USER_MANAGER : 0;
			v[n].n = 1;
			n++;
		}
		f.u.users.v = v;
		f.u.users.count = (uint16_t)n;
	}
	fo_peer_send(lc, jr->node, &f);
	free(v);
	free(jr->snap);
	free(jr);
}

void
fo_peer_presence(struct lcore_ctx *lc, struct fo_roomstate *lr, const struct presence *pr,
		 uint32_t node, uint64_t uid)
{
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), lr->raw);
	uint32_t nodes[FO_NODES_MAX];
	unsigned n = fo_nodes_of(lr, nodes);
	struct peerframe f;

	if (n == 0 || !fo_peer_active())
		return;
	fo_frame_init(&f, PEERFRAME_PRESENCE, lr->raw, r ? r->epoch : 0);
	f.seq = node;
	f.ref = uid;
	f.u.notice.body = (const uint8_t *)pr->body;
	f.u.notice.body_len = (uint32_t)pr->body_len;
	if (fo_peer_ops.send_many(fo_peer_ops.arg, nodes, n, &f) != 0)
		ctr_inc(lc, CTR_PEER_SEND_FAILED);
	else
		ctr_add(lc, CTR_PEER_NOTICES_OUT, n);
}

static void
refuse(struct lcore_ctx *lc, const struct pmsg *m, unsigned type, unsigned code)
{
	struct peerframe f;

	fo_frame_init(&f, type, m->f.room, m->f.epoch);
	f.ref = m->f.ref;
	f.code = (uint16_t)code;
	ctr_inc(lc, CTR_PEER_REFUSED);
	fo_peer_send(lc, m->node, &f);
}

static void
got_post_fwd(struct lcore_ctx *lc, const struct pmsg *m)
{
	const struct roomtab *t = roomtab_of(lc);
	const struct roomtab_ent *r = roomtab_find_raw(t, m->f.room);
	const struct peerframe_post *in = &m->f.u.post;
	unsigned code = fo_home_check(t, r, m->f.epoch);
	struct fanout_post *p;
	size_t ulen;

	if (code == PEERFRAME_OK) {
		char author[PEERFRAME_URI_MAX + 1];

		snprintf(author, sizeof(author), "%.*s", (int)in->author_len, in->author);
		if (!roomtab_may_join(r, author))
			code = PEERFRAME_NOT_MEMBER;
		else if (in->text_len > lcore_conf(lc)->chat_max || in->body_len > HISTORY_BODY_MAX)
			code = PEERFRAME_TOO_LARGE;
	}
	if (code != PEERFRAME_OK) {
		refuse(lc, m, PEERFRAME_POST_ACK, code);
		return;
	}
	ulen = strlen(r->cat->uri);
	p = fo_post_copy(in->author, in->author_len, r->cat->uri, ulen, in->body, in->body_len,
			 in->text, in->text_len, in->extra, in->extra_len);
	if (p == NULL) {
		refuse(lc, m, PEERFRAME_POST_ACK, PEERFRAME_OVERLOAD);
		return;
	}
	memcpy(p->room, r->raw, CATALOG_ID_RAW);
	p->logged = (r->cat->props & CATALOG_PROP_LOGGED) != 0;
	p->origin = FO_ORIGIN_REMOTE;
	p->from_node = m->node;
	p->ref = m->f.ref;
	ctr_inc(lc, CTR_PEER_POSTS_IN);
	fo_home_post(lc, p);
}

static void
got_join(struct lcore_ctx *lc, const struct pmsg *m)
{
	const struct roomtab *t = roomtab_of(lc);
	const struct roomtab_ent *r = roomtab_find_raw(t, m->f.room);
	unsigned code = fo_home_check(t, r, m->f.epoch);
	struct fanout_joinreq *jr;

	jr = calloc(1, sizeof(*jr));
	if (jr == NULL) {
		refuse(lc, m, PEERFRAME_JOIN_ACK, PEERFRAME_OVERLOAD);
		return;
	}
	snprintf(jr->uri, sizeof(jr->uri), "%.*s", (int)m->f.u.user.uri_len, m->f.u.user.uri);
	if (code == PEERFRAME_OK && !roomtab_may_join(r, jr->uri))
		code = PEERFRAME_NOT_MEMBER;
	if (code != PEERFRAME_OK) {
		free(jr);
		refuse(lc, m, PEERFRAME_JOIN_ACK, code);
		return;
	}
	jr->kind = FANOUT_JOB_JOIN;
	memcpy(jr->raw, r->raw, CATALOG_ID_RAW);
	jr->origin = FO_ORIGIN_REMOTE;
	jr->uid = m->f.seq;
	jr->manager = roomtab_is_manager(r, jr->uri);
	jr->bjoin = (m->f.u.user.flags & PEERFRAME_USER_BATCH) != 0;
	jr->node = m->node;
	jr->ref = m->f.ref;
	snprintf(jr->room_uri, sizeof(jr->room_uri), "%s", r->cat->uri);
	ctr_inc(lc, CTR_PEER_JOINS_IN);
	fo_home_join(lc, jr);
}

static void
got_part(struct lcore_ctx *lc, const struct pmsg *m)
{
	const struct roomtab *t = roomtab_of(lc);
	const struct roomtab_ent *r = roomtab_find_raw(t, m->f.room);
	struct partreq *pq;

	if (r == NULL || !roomtab_homed_here(t, r))
		return;
	pq = calloc(1, sizeof(*pq));
	if (pq == NULL)
		return;
	pq->kind = FANOUT_JOB_PART;
	memcpy(pq->raw, r->raw, CATALOG_ID_RAW);
	pq->uid = m->f.seq;
	pq->node = m->node;
	snprintf(pq->uri, sizeof(pq->uri), "%.*s", (int)m->f.u.user.uri_len, m->f.u.user.uri);
	snprintf(pq->room_uri, sizeof(pq->room_uri), "%s", r->cat->uri);
	fo_home_part(lc, pq);
}

/* Sends <recs> [from, to) as one HISTORY frame with <code>. */
static void
send_history(struct lcore_ctx *lc, uint32_t node, const struct roomtab_ent *r,
	     const struct history_rec *recs, size_t from, size_t to, unsigned code, uint64_t ref)
{
	struct peerframe_post v[PEERFRAME_HISTORY_MAX];
	struct peerframe f;
	size_t n = 0;

	for (size_t i = from; i < to && n < PEERFRAME_HISTORY_MAX; i++)
		v[n++] = (struct peerframe_post){
			.seq = recs[i].seq, .time_ms = recs[i].ts_ms, .author = recs[i].author,
			.author_len = (uint16_t)recs[i].author_len, .body = recs[i].body,
			.body_len = (uint32_t)recs[i].body_len,
		};
	fo_frame_init(&f, PEERFRAME_HISTORY, r->raw, r->epoch);
	f.code = (uint16_t)code;
	f.ref = ref;
	f.u.history.recs = v;
	f.u.history.count = (uint16_t)n;
	if (fo_peer_send(lc, node, &f) != 0 && n > 0) {
		/* Too large for a frame: the records go, the end still does. */
		LOG(WARNING, FANOUT, "history for node %u: %zu posts too large for a frame, "
		    "left out", node, n);
		if (code != PEERFRAME_MORE) {
			f.u.history.count = 0;
			fo_peer_send(lc, node, &f);
		}
	}
}

static void
got_resync_req(struct lcore_ctx *lc, const struct pmsg *m)
{
	const struct roomtab *t = roomtab_of(lc);
	const struct roomtab_ent *r = roomtab_find_raw(t, m->f.room);
	unsigned code = fo_home_check(t, r, m->f.epoch);
	struct history_rec *recs = NULL;
	struct fo_roomstate *lr;
	size_t start = 0, bytes = 0;
	uint64_t from, first;
	ssize_t n = 0;

	if (code != PEERFRAME_OK) {
		refuse(lc, m, PEERFRAME_HISTORY, code);
		return;
	}
	lr = fo_roomstate_get(fo_lc(lc), r->raw);
	if (lr == NULL) {
		refuse(lc, m, PEERFRAME_HISTORY, PEERFRAME_OVERLOAD);
		return;
	}
	ctr_inc(lc, CTR_PEER_RESYNCS_IN);
	fo_home_resync_roster(lc, lr, r->cat->uri, m->node, m->users, m->nusers);
	from = m->f.seq ? m->f.seq : 1;
	/* An asker whose members saw no post yet starts at this home's epoch;
	 * one that saw posts of an earlier home gets what it missed of them
	 * as well: this home holds them as their replica, numbered the same. */
	first = lr->home_epoch == r->epoch ? lr->epoch_first : fo_next_seq_peek(lc, lr) + 1;
	if (from < first && from <= 1)
		from = first;
	if (m->f.seq > fo_next_seq_peek(lc, lr) + 1) {
		/* The asker is ahead of this home (history lost): nothing to
		 * send, and where this home is. */
		struct peerframe f;

		fo_frame_init(&f, PEERFRAME_HISTORY, r->raw, r->epoch);
		f.code = PEERFRAME_NO_HISTORY;
		f.seq = fo_next_seq_peek(lc, lr);
		fo_peer_send(lc, m->node, &f);
		return;
	}
	/* What is durable now; what is not yet goes by RELAY once it is, after
	 * these frames (this lcore sends both, in order). */
	if (r->cat->props & CATALOG_PROP_LOGGED)
		n = history_read_range(lcore_db(lc), r->raw, from, UINT64_MAX, FO_RESYNC_MAX,
				       &recs);
	if (n < 0)
		n = 0;
	for (size_t i = 0; i < (size_t)n; i++) {
		bytes += recs[i].author_len + recs[i].body_len + 32;
		if (bytes >= CHUNK_BYTES || i - start + 1 == PEERFRAME_HISTORY_MAX) {
			send_history(lc, m->node, r, recs, start, i + 1, PEERFRAME_MORE, 0);
			start = i + 1;
			bytes = 0;
		}
	}
	send_history(lc, m->node, r, recs, start, (size_t)n, PEERFRAME_OK, 0);
	history_recs_free(recs, (size_t)n);
}

static void
got_history_req(struct lcore_ctx *lc, const struct pmsg *m)
{
	const struct roomtab *t = roomtab_of(lc);
	const struct roomtab_ent *r = roomtab_find_raw(t, m->f.room);
	unsigned code = fo_home_check(t, r, m->f.epoch);
	struct history_rec *recs = NULL;
	size_t want = m->f.seq, first, bytes = 0;
	struct peerhist *ph;
	ssize_t n = 0;

	if (code != PEERFRAME_OK) {
		refuse(lc, m, PEERFRAME_HISTORY, code);
		return;
	}
	if (want > lcore_conf(lc)->history_max)
		want = lcore_conf(lc)->history_max;
	if (want > PEERFRAME_HISTORY_MAX)
		want = PEERFRAME_HISTORY_MAX;
	if ((r->cat->props & CATALOG_PROP_LOGGED) && want > 0)
		n = history_read_last(lcore_db(lc), r->raw, want, &recs);
	if (n < 0) {
		refuse(lc, m, PEERFRAME_HISTORY, PEERFRAME_OVERLOAD);
		return;
	}
	/* One frame: the newest posts that fit. */
	for (first = (size_t)n; first > 0; first--) {
		bytes += recs[first - 1].author_len + recs[first - 1].body_len + 32;
		if (bytes > 2 * CHUNK_BYTES)
			break;
	}
	/* Viewing history is a compliance event of the room, recorded here at
	 * its home; the answer waits for it. */
	ph = calloc(1, sizeof(*ph));
	if (ph == NULL) {
		history_recs_free(recs, (size_t)n);
		refuse(lc, m, PEERFRAME_HISTORY, PEERFRAME_OVERLOAD);
		return;
	}
	ph->kind = FANOUT_JOB_PEER_HIST;
	ph->node = m->node;
	ph->ref = m->f.ref;
	memcpy(ph->raw, r->raw, CATALOG_ID_RAW);
	ph->recs = recs;
	ph->first = first;
	ph->n = (size_t)n;
	snprintf(ph->user, sizeof(ph->user), "%.*s", (int)m->f.u.user.uri_len, m->f.u.user.uri);
	snprintf(ph->room_uri, sizeof(ph->room_uri), "%s", r->cat->uri);
	snprintf(ph->content, sizeof(ph->content), "last %zu messages", want);
	fo_submit_job(lc, ph);
}

void
fo_peer_history_stored(struct lcore_ctx *lc, struct peerhist *ph, int status)
{
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), ph->raw);

	if (status != 0)
		ctr_inc(lc, CTR_STORAGE_FAILED);
	if (r != NULL && status == 0) {
		send_history(lc, ph->node, r, ph->recs, ph->first, ph->n, PEERFRAME_OK, ph->ref);
	} else {
		struct peerframe f;

		fo_frame_init(&f, PEERFRAME_HISTORY, ph->raw, r ? r->epoch : 0);
		f.ref = ph->ref;
		f.code = PEERFRAME_OVERLOAD;
		fo_peer_send(lc, ph->node, &f);
	}
	history_recs_free(ph->recs, ph->n);
	free(ph);
}

/* ---- link events -------------------------------------------------------- */

void
fo_link_down(struct lcore_ctx *lc, uint32_t node)
{
	struct fanout_lc *fo = fo_lc(lc);

	for (uint32_t i = 0; i < fo->nup; i++)
		if (fo->up[i] == node) {
			fo->up[i] = fo->up[--fo->nup];
			break;
		}
	/* What waits for that node fails: retryable, never doubled. */
	for (uint32_t i = 0; i < fo->npend;) {
		struct fo_pend pd = fo->pend[i];

		if (pd.node != node) {
			i++;
			continue;
		}
		fo->pend[i] = fo->pend[--fo->npend];
		ctr_inc(lc, CTR_PEER_FAILED);
		if (pd.kind == PEND_POST) {
			struct fanout_post *p = pd.ptr;

			p->status = -EAGAIN;
			fo_send_msg(lc, p->origin, FM_POST_DONE, p, 0);
		} else if (pd.kind == PEND_JOIN) {
			struct fanout_joinreq *jr = pd.ptr;

			jr->status = 503;
			local_roster_del(lc, fo_roomstate_find(fo, jr->raw), jr->uid);
			fo_send_msg(lc, jr->origin, FM_JOINED, jr, 0);
		} else {
			struct fanout_histreq *h = pd.ptr;

			h->status = -EAGAIN;
			history_done(lc, h);
		}
	}
	/* Rooms homed there: what it relays next waits for a resync. */
	for (uint32_t k = 0; k < fo->rcap; k++) {
		struct fo_roomstate *lr = fo->rooms[k];
		const struct roomtab_ent *r;

		if (lr == NULL || !fo_has_local(lr))
			continue;
		r = roomtab_find_raw(roomtab_of(lc), lr->raw);
		if (r != NULL && r->node == node)
			lr->resyncing = true;
	}
}

/* Node <node> left: rooms homed here forget its users. */
void
fo_node_gone(struct lcore_ctx *lc, uint32_t node)
{
	struct fanout_lc *fo = fo_lc(lc);

	fo_link_down(lc, node);
	for (uint32_t k = 0; k < fo->rcap; k++) {
		struct fo_roomstate *lr = fo->rooms[k];
		const struct roomtab_ent *r;

		if (lr == NULL || lr->nnodes == 0)
			continue;
		r = roomtab_find_raw(roomtab_of(lc), lr->raw);
		if (r != NULL)
			fo_home_drop_node(lc, lr, r->cat->uri, node);
	}
}

/* ---- frames ---------------------------------------------------------- */

bool
fo_peer_frame(struct lcore_ctx *lc, struct pmsg *m)
{
	switch (m->kind) {
	case PM_UP:
		fo_link_up(lc, m->node);
		return false;
	case PM_DOWN:
		fo_link_down(lc, m->node);
		return false;
	case PM_GONE:
		fo_node_gone(lc, m->node);
		return false;
	default:
		break;
	}
	switch (m->f.type) {
	case PEERFRAME_POST_FWD:
		got_post_fwd(lc, m);
		break;
	case PEERFRAME_POST_ACK:
		got_post_ack(lc, m);
		break;
	case PEERFRAME_RELAY:
		got_relay(lc, m);
		break;
	case PEERFRAME_JOIN:
		got_join(lc, m);
		break;
	case PEERFRAME_JOIN_ACK:
		got_join_ack(lc, m);
		break;
	case PEERFRAME_PART:
		got_part(lc, m);
		break;
	case PEERFRAME_RESYNC_REQ:
		got_resync_req(lc, m);
		break;
	case PEERFRAME_HISTORY:
		if (m->f.ref != 0)
			return got_history_answer(lc, m);
		fo_got_resync(lc, m);
		break;
	case PEERFRAME_HISTORY_REQ:
		got_history_req(lc, m);
		break;
	case PEERFRAME_PRESENCE:
		got_presence(lc, m);
		break;
	default:
		ctr_inc(lc, CTR_PEER_REFUSED);
		break;
	}
	return false;
}

