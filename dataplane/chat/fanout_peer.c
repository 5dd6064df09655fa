/* Rooms across the nodes of an array: see fanout_peer.h. The link thread
 * copies each frame into one allocation (struct pmsg) and pushes it to the
 * room's local home lcore (or, for an answer, to the lcore whose ref it
 * echoes); the lcores do the rest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane/base/log.h"
#include "dataplane/chat/fanout_int.h"
#include "dataplane/chat/fanout_peer.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/peer/peerframe.h"
#include "dataplane/session/dialog.h"
#include "storage/history.h"

#define INBOX_MAX	65536		/* frames waiting for one lcore: more are dropped */
#define RESYNC_MAX	4096		/* posts one resync sends at most */
#define CHUNK_BYTES	(256u << 10)	/* a HISTORY frame's records stop growing past this */
#define REF_LCORE_SHIFT	48

enum pm_kind {
	PM_FRAME = 1,
	PM_UP,
	PM_DOWN,
	PM_GONE,
};

enum fo_pend_kind {
	PEND_POST = 1,		/* struct fanout_post, forwarded */
	PEND_JOIN,		/* struct fanout_joinreq, forwarded */
	PEND_HIST,		/* struct fanout_histreq */
};

/* What the link thread hands an lcore: a frame, copied whole (its pointers
 * point into data[]), or a link event. */
struct pmsg {
	struct pmsg		*next;
	uint32_t		kind;		/* enum pm_kind */
	uint32_t		node;		/* the sender, or the link's node */
	struct peerframe	f;
	struct peerframe_user	*users;		/* JOIN_ACK, RESYNC_REQ */
	uint32_t		nusers;
	struct peerframe_post	*recs;		/* HISTORY */
	uint32_t		nrecs;
	uint64_t		data[];
};

static struct fanout_peer_ops ops;
static _Atomic uint64_t dropped;

void
fanout_peer_register(const struct fanout_peer_ops *o)
{
	ops = *o;
}

bool
fo_peer_active(void)
{
	return ops.send != NULL;
}

uint64_t
fanout_peer_dropped(void)
{
	return atomic_load_explicit(&dropped, memory_order_relaxed);
}

/* ---- the link thread's side ------------------------------------------- */

static void
push(struct engine *e, uint32_t idx, struct pmsg *m)
{
	struct fanout_lc *fo = fo_lc(engine_lcore(e, idx));
	struct pmsg *head = atomic_load_explicit(&fo->inbox, memory_order_relaxed);

	if (m->kind == PM_FRAME &&
	    atomic_load_explicit(&fo->inbox_n, memory_order_relaxed) >= INBOX_MAX) {
		atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
		free(m);
		return;
	}
	atomic_fetch_add_explicit(&fo->inbox_n, 1, memory_order_relaxed);
	do
		m->next = head;
	while (!atomic_compare_exchange_weak_explicit(&fo->inbox, &head, m, memory_order_release,
						      memory_order_relaxed));
	lcore_wake(engine_lcore(e, idx));
}

static uint8_t *
copy(uint8_t *at, const void *src, size_t n, const void **dst)
{
	*dst = at;
	if (n > 0)
		memcpy(at, src, n);
	return at + n;
}

/* One allocation holding <f> and everything it points to. */
static struct pmsg *
pmsg_copy(uint32_t node, const struct peerframe *f)
{
	size_t extra = 0, pos;
	struct peerframe_user u;
	struct peerframe_post r;
	uint32_t nu = 0, nr = 0;
	struct pmsg *m;
	uint8_t *at;

	switch (f->type) {
	case PEERFRAME_POST_FWD:
	case PEERFRAME_RELAY:
	case PEERFRAME_REPL:
		extra = f->u.post.author_len + (size_t)f->u.post.body_len + f->u.post.text_len +
			f->u.post.extra_len;
		break;
	case PEERFRAME_JOIN:
	case PEERFRAME_PART:
		extra = f->u.user.uri_len;
		break;
	case PEERFRAME_PRESENCE:
		extra = f->u.notice.body_len;
		break;
	case PEERFRAME_JOIN_ACK:
	case PEERFRAME_RESYNC_REQ:
		for (pos = 0; peerframe_users_next(f, &pos, &u); nu++)
			extra += sizeof(u) + u.uri_len;
		break;
	case PEERFRAME_HISTORY:
		for (pos = 0; peerframe_history_next(f, &pos, &r); nr++)
			extra += sizeof(r) + r.author_len + r.body_len;
		break;
	default:
		break;
	}
	m = malloc(sizeof(*m) + extra + 8);
	if (m == NULL)
		return NULL;
	m->kind = PM_FRAME;
	m->node = node;
	m->f = *f;
	m->nusers = nu;
	m->nrecs = nr;
	m->users = (struct peerframe_user *)m->data;
	m->recs = (struct peerframe_post *)m->data;
	at = (uint8_t *)m->data + (size_t)nu * sizeof(u) + (size_t)nr * sizeof(r);
	switch (f->type) {
	case PEERFRAME_POST_FWD:
	case PEERFRAME_RELAY:
	case PEERFRAME_REPL:
		at = copy(at, f->u.post.author, f->u.post.author_len, (const void **)&m->f.u.post.author);
		at = copy(at, f->u.post.body, f->u.post.body_len, (const void **)&m->f.u.post.body);
		at = copy(at, f->u.post.text, f->u.post.text_len, (const void **)&m->f.u.post.text);
		copy(at, f->u.post.extra, f->u.post.extra_len, (const void **)&m->f.u.post.extra);
		break;
	case PEERFRAME_JOIN:
	case PEERFRAME_PART:
		copy(at, f->u.user.uri, f->u.user.uri_len, (const void **)&m->f.u.user.uri);
		break;
	case PEERFRAME_PRESENCE:
		copy(at, f->u.notice.body, f->u.notice.body_len, (const void **)&m->f.u.notice.body);
		break;
	case PEERFRAME_JOIN_ACK:
	case PEERFRAME_RESYNC_REQ:
		for (pos = 0, nu = 0; peerframe_users_next(f, &pos, &u); nu++) {
			m->users[nu] = u;
			at = copy(at, u.uri, u.uri_len, (const void **)&m->users[nu].uri);
		}
		break;
	case PEERFRAME_HISTORY:
		for (pos = 0, nr = 0; peerframe_history_next(f, &pos, &r); nr++) {
			m->recs[nr] = r;
			at = copy(at, r.author, r.author_len, (const void **)&m->recs[nr].author);
			at = copy(at, r.body, r.body_len, (const void **)&m->recs[nr].body);
		}
		break;
	default:
		break;
	}
	return m;
}

void
fanout_peer_in(struct engine *e, uint32_t node, const struct peerframe *f)
{
	uint32_t n = engine_nlcores(e), idx;
	struct pmsg *m;

	if (engine_svc(e) == NULL || n == 0)
		return;
	/* An answer goes to the lcore that asked (its ref says which); the
	 * rest to the room's local home lcore (roomtab.c's hash). */
	if ((f->type == PEERFRAME_POST_ACK || f->type == PEERFRAME_JOIN_ACK ||
	     f->type == PEERFRAME_PART_ACK || f->type == PEERFRAME_HISTORY) && f->ref != 0)
		idx = (uint32_t)(f->ref >> REF_LCORE_SHIFT) - 1;
	else
		idx = fo_raw_hash(f->room) % n;
	if (idx >= n) {
		atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
		return;
	}
	m = pmsg_copy(node, f);
	if (m == NULL) {
		atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
		return;
	}
	push(e, idx, m);
}

static void
broadcast(struct engine *e, uint32_t kind, uint32_t node)
{
	if (engine_svc(e) == NULL)
		return;
	for (uint32_t i = 0; i < engine_nlcores(e); i++) {
		struct pmsg *m = calloc(1, sizeof(*m));

		if (m == NULL) {
			LOG(ERR, FANOUT, "out of memory telling lcore %u of node %u's link", i, node);
			continue;
		}
		m->kind = kind;
		m->node = node;
		push(e, i, m);
	}
}

void
fanout_peer_link(struct engine *e, uint32_t node, bool up)
{
	broadcast(e, up ? PM_UP : PM_DOWN, node);
}

void
fanout_peer_gone(struct engine *e, uint32_t node)
{
	broadcast(e, PM_GONE, node);
}

/* ---- pending requests ------------------------------------------------- */

static uint64_t
pend_add(struct lcore_ctx *lc, uint32_t node, uint32_t kind, void *ptr)
{
	struct fanout_lc *fo = fo_lc(lc);
	uint64_t ref;

	if (fo->npend == fo->pcap) {
		uint32_t cap = fo->pcap ? fo->pcap * 2 : 64;
		struct fo_pend *v = realloc(fo->pend, cap * sizeof(*v));

		if (v == NULL)
			return 0;
		fo->pend = v;
		fo->pcap = cap;
	}
	ref = (uint64_t)(lcore_idx(lc) + 1) << REF_LCORE_SHIFT |
	      (++fo->next_ref & ((1ull << REF_LCORE_SHIFT) - 1));
	fo->pend[fo->npend++] = (struct fo_pend){ .ref = ref, .node = node, .kind = kind,
						  .ptr = ptr };
	return ref;
}

static void *
pend_take(struct lcore_ctx *lc, uint64_t ref, uint32_t kind)
{
	struct fanout_lc *fo = fo_lc(lc);

	for (uint32_t i = 0; i < fo->npend; i++)
		if (fo->pend[i].ref == ref && fo->pend[i].kind == kind) {
			void *p = fo->pend[i].ptr;

			fo->pend[i] = fo->pend[--fo->npend];
			return p;
		}
	return NULL;
}

static bool
node_up(struct fanout_lc *fo, uint32_t node)
{
	for (uint32_t i = 0; i < fo->nup; i++)
		if (fo->up[i] == node)
			return true;
	return false;
}

/* ---- helpers ----------------------------------------------------------- */

static void
frame_init(struct peerframe *f, unsigned type, const uint8_t raw[CATALOG_ID_RAW], uint64_t epoch)
{
	memset(f, 0, sizeof(*f));
	f->type = (uint8_t)type;
	memcpy(f->room, raw, PEERFRAME_ROOM_LEN);
	f->epoch = epoch;
}

static int
send_to(struct lcore_ctx *lc, uint32_t node, const struct peerframe *f)
{
	int rc = ops.send(ops.arg, node, f);

	if (rc != 0)
		ctr_inc(lc, CTR_PEER_SEND_FAILED);
	return rc;
}

int
fo_peer_send(struct lcore_ctx *lc, uint32_t node, const struct peerframe *f)
{
	return send_to(lc, node, f);
}

bool
fo_peer_node_up(struct lcore_ctx *lc, uint32_t node)
{
	return node_up(fo_lc(lc), node);
}

/* Nodes with present users of <lr> (home). */
static unsigned
nodes_of(const struct fo_roomstate *lr, uint32_t *out)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < lr->nnodes; i++)
		if (lr->nodes[i].n > 0)
			out[n++] = lr->nodes[i].node;
	return n;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The xccos-level meaning of a refusal code, as -errno for post_done. */
static int
code_errno(unsigned code)
{
	switch (code) {
	case PEERFRAME_OK:
		return 0;
	case PEERFRAME_NOT_MEMBER:
		return -EACCES;
	case PEERFRAME_TOO_LARGE:
		return -EMSGSIZE;
	case PEERFRAME_WRONG_HOME:
	case PEERFRAME_STALE_EPOCH:
		return -ESTALE;
	default:
		return -EAGAIN;
	}
}

static void
refused(struct lcore_ctx *lc, const uint8_t raw[CATALOG_ID_RAW], unsigned code)
{
	ctr_inc(lc, CTR_PEER_REFUSALS_IN);
	if ((code == PEERFRAME_WRONG_HOME || code == PEERFRAME_STALE_EPOCH) && ops.rehome != NULL)
		ops.rehome(ops.arg, raw);
}

/* Why the home refuses a frame about <r> with <epoch>, or OK. */
static unsigned
home_check(const struct roomtab *t, const struct roomtab_ent *r, uint64_t epoch)
{
	if (r == NULL || !roomtab_homed_here(t, r))
		return PEERFRAME_WRONG_HOME;
	if (epoch < r->epoch)
		return PEERFRAME_STALE_EPOCH;
	if (epoch > r->epoch)		/* the sender knows a newer home than ours */
		return PEERFRAME_WRONG_HOME;
	return PEERFRAME_OK;
}

/* A post to deliver here with room for <extra> more bytes. */
static void
deliver_local(struct lcore_ctx *lc, struct fo_roomstate *lr, struct fanout_post *p)
{
	for (uint32_t l = 0; l < lcore_conf(lc)->nlcores; l++)
		if (lr->per_lcore[l] > 0) {
			atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
			fo_send_msg(lc, l, FM_DELIVER, p, 0);
		}
	fanout_post_put(p);
}

static bool
has_local(const struct fo_roomstate *lr)
{
	for (uint32_t i = 0; i < lr->rn; i++)
		if (lr->rv[i].node == 0)
			return true;
	return false;
}

/* ---- this node stands in for a room homed elsewhere -------------------- */

void
fo_peer_post_fwd(struct lcore_ctx *lc, const struct roomtab_ent *r, struct fanout_post *p)
{
	struct peerframe f;
	uint64_t ref;

	if (!fo_peer_active() || r->node == ROOMTAB_NODE_NONE || !node_up(fo_lc(lc), r->node))
		goto out_fail;
	ref = pend_add(lc, r->node, PEND_POST, p);
	if (ref == 0)
		goto out_fail;
	frame_init(&f, PEERFRAME_POST_FWD, p->room, r->epoch);
	f.ref = ref;
	f.u.post = (struct peerframe_post){
		.time_ms = now_ms(), .author = p->author, .author_len = (uint16_t)strlen(p->author),
		.body = (const uint8_t *)p->inner, .body_len = (uint32_t)p->inner_len,
		.text = (const uint8_t *)p->text, .text_len = (uint32_t)p->text_len,
		.extra = p->extra_attrs, .extra_len = (uint16_t)strlen(p->extra_attrs),
	};
	if (send_to(lc, r->node, &f) != 0) {
		pend_take(lc, ref, PEND_POST);
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
	    !node_up(fo_lc(lc), r->node))
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
	ref = pend_add(lc, r->node, PEND_JOIN, jr);
	if (ref == 0) {
		local_roster_del(lc, lr, jr->uid);
		goto out_fail;
	}
	frame_init(&f, PEERFRAME_JOIN, jr->raw, r->epoch);
	f.ref = ref;
	f.seq = jr->uid;
	f.u.user.flags = (jr->manager ? PEERFRAME_USER_MANAGER : 0) |
			 (jr->bjoin ? PEERFRAME_USER_BATCH : 0);
	f.u.user.uri = jr->uri;
	f.u.user.uri_len = (uint16_t)strlen(jr->uri);
	if (send_to(lc, r->node, &f) != 0) {
		pend_take(lc, ref, PEND_JOIN);
		local_roster_del(lc, lr, jr->uid);
		goto out_fail;
	}
	ctr_inc(lc, CTR_PEER_JOINS_FWD);
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
	if (fo_peer_active() && r->node != ROOMTAB_NODE_NONE && node_up(fo_lc(lc), r->node)) {
		frame_init(&f, PEERFRAME_PART, pq->raw, r->epoch);
		f.seq = pq->uid;
		f.u.user.uri = pq->uri;
		f.u.user.uri_len = (uint16_t)strlen(pq->uri);
		send_to(lc, r->node, &f);
	}
	free(pq);
}

int
fanout_history_ask(struct lcore_ctx *lc, const struct roomtab_ent *r, struct fanout_histreq *h)
{
	struct peerframe f;
	uint64_t ref;

	if (!fo_peer_active() || r->node == ROOMTAB_NODE_NONE || !node_up(fo_lc(lc), r->node))
		return -EAGAIN;
	ref = pend_add(lc, r->node, PEND_HIST, h);
	if (ref == 0)
		return -ENOMEM;
	frame_init(&f, PEERFRAME_HISTORY_REQ, r->raw, r->epoch);
	f.ref = ref;
	f.seq = h->count;
	if (send_to(lc, r->node, &f) != 0) {
		pend_take(lc, ref, PEND_HIST);
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
	struct fanout_histreq *h = pend_take(lc, m->f.ref, PEND_HIST);

	if (h == NULL)
		return false;
	if (m->f.code != PEERFRAME_OK) {
		refused(lc, m->f.room, m->f.code);
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
	struct fanout_post *p = pend_take(lc, m->f.ref, PEND_POST);

	if (p == NULL)
		return;
	p->status = code_errno(m->f.code);
	if (p->status == 0)
		p->seq = m->f.seq;
	else
		refused(lc, p->room, m->f.code);
	fo_send_msg(lc, p->origin, FM_POST_DONE, p, 0);
}

static void
got_join_ack(struct lcore_ctx *lc, const struct pmsg *m)
{
	struct fanout_joinreq *jr = pend_take(lc, m->f.ref, PEND_JOIN);
	struct fo_roomstate *lr;

	if (jr == NULL)
		return;
	lr = fo_roomstate_find(fo_lc(lc), jr->raw);
	if (m->f.code != PEERFRAME_OK) {
		refused(lc, jr->raw, m->f.code);
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
	if (lr != NULL && lr->last_seq == 0 && !lr->resyncing)
		lr->last_seq = m->f.seq;
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
	    lr->resyncing || m->f.seq <= lr->last_seq || !has_local(lr)) {
		ctr_inc(lc, CTR_PEER_RELAYS_DROPPED);
		return;
	}
	lr->last_seq = m->f.seq;
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
	deliver_local(lc, lr, p);
}

static void
got_presence(struct lcore_ctx *lc, const struct pmsg *m)
{
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), m->f.room);
	struct presence *pr;

	if (lr == NULL || !has_local(lr))
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

/* A resync's HISTORY: what this node's members missed, in order, once. */
static void
got_resync(struct lcore_ctx *lc, const struct pmsg *m)
{
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), m->f.room);
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), m->f.room);

	if (lr == NULL || r == NULL)
		return;
	if (m->f.code != PEERFRAME_OK && m->f.code != PEERFRAME_MORE)
		refused(lc, m->f.room, m->f.code);
	for (uint32_t i = 0; i < m->nrecs && has_local(lr); i++) {
		const struct peerframe_post *rec = &m->recs[i];
		size_t ulen = strlen(r->cat->uri);
		struct fanout_post *p;
		char *s;

		if (rec->seq <= lr->last_seq)
			continue;
		p = fanout_post_alloc(rec->author_len + 1 + ulen + 1 + rec->body_len + 1 + 1);
		if (p == NULL)
			break;
		s = (char *)(p + 1);
		p->author = s;
		memcpy(s, rec->author, rec->author_len);
		s[rec->author_len] = '\0';
		s += rec->author_len + 1;
		p->room_uri = memcpy(s, r->cat->uri, ulen + 1);
		s += ulen + 1;
		p->inner = s;
		memcpy(s, rec->body, rec->body_len);
		s[rec->body_len] = '\0';
		s += rec->body_len + 1;
		p->inner_len = rec->body_len;
		p->extra_attrs = s;
		*s++ = '\0';
		p->used = (size_t)(s - (char *)(p + 1));
		memcpy(p->room, m->f.room, CATALOG_ID_RAW);
		p->seq = rec->seq;
		p->ts_100ns = rec->time_ms * 10000;
		p->wal_seq = (1ull << 42) + rec->seq;
		fo_build_post_body(lc, p);
		if (p->body == NULL) {
			fanout_post_put(p);
			break;
		}
		lr->last_seq = rec->seq;
		ctr_inc(lc, CTR_PEER_RESYNC_POSTS);
		deliver_local(lc, lr, p);
	}
	if (m->f.code != PEERFRAME_MORE)
		lr->resyncing = false;
}

/* ---- this node homes the room ------------------------------------------ */

void
fo_peer_relay(struct lcore_ctx *lc, struct fo_roomstate *lr, const struct fanout_post *p)
{
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), p->room);
	uint32_t nodes[FO_NODES_MAX];
	unsigned n = nodes_of(lr, nodes);
	struct peerframe f;

	if (n == 0 || !fo_peer_active())
		return;
	frame_init(&f, PEERFRAME_RELAY, p->room, r ? r->epoch : 0);
	f.seq = p->seq;
	f.u.post = (struct peerframe_post){
		.time_ms = p->ts_100ns / 10000, .author = p->author,
		.author_len = (uint16_t)strlen(p->author), .body = (const uint8_t *)p->body,
		.body_len = (uint32_t)p->body_len,
	};
	if (ops.send_many(ops.arg, nodes, n, &f) != 0)
		ctr_inc(lc, CTR_PEER_SEND_FAILED);
	else
		ctr_add(lc, CTR_PEER_RELAYS_OUT, n);
}

void
fo_peer_post_ack(struct lcore_ctx *lc, struct fanout_post *p)
{
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), p->room);
	struct peerframe f;

	frame_init(&f, PEERFRAME_POST_ACK, p->room, r ? r->epoch : 0);
	f.ref = p->ref;
	f.seq = p->seq;
	f.code = p->status == 0 ? PEERFRAME_OK : PEERFRAME_OVERLOAD;
	send_to(lc, p->from_node, &f);
}

void
fo_peer_join_ack(struct lcore_ctx *lc, struct fanout_joinreq *jr, struct fo_roomstate *lr)
{
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), jr->raw);
	struct peerframe_user *v = NULL;
	struct peerframe f;
	uint32_t n = 0;

	frame_init(&f, PEERFRAME_JOIN_ACK, jr->raw, r ? r->epoch : 0);
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
	send_to(lc, jr->node, &f);
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
	unsigned n = nodes_of(lr, nodes);
	struct peerframe f;

	if (n == 0 || !fo_peer_active())
		return;
	frame_init(&f, PEERFRAME_PRESENCE, lr->raw, r ? r->epoch : 0);
	f.seq = node;
	f.ref = uid;
	f.u.notice.body = (const uint8_t *)pr->body;
	f.u.notice.body_len = (uint32_t)pr->body_len;
	if (ops.send_many(ops.arg, nodes, n, &f) != 0)
		ctr_inc(lc, CTR_PEER_SEND_FAILED);
	else
		ctr_add(lc, CTR_PEER_NOTICES_OUT, n);
}

static void
refuse(struct lcore_ctx *lc, const struct pmsg *m, unsigned type, unsigned code)
{
	struct peerframe f;

	frame_init(&f, type, m->f.room, m->f.epoch);
	f.ref = m->f.ref;
	f.code = (uint16_t)code;
	ctr_inc(lc, CTR_PEER_REFUSED);
	send_to(lc, m->node, &f);
}

static void
got_post_fwd(struct lcore_ctx *lc, const struct pmsg *m)
{
	const struct roomtab *t = roomtab_of(lc);
	const struct roomtab_ent *r = roomtab_find_raw(t, m->f.room);
	const struct peerframe_post *in = &m->f.u.post;
	unsigned code = home_check(t, r, m->f.epoch);
	struct fanout_post *p;
	size_t ulen, need;
	char *s;

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
	need = in->author_len + 1 + ulen + 1 + in->body_len + 1 + in->text_len + 1 +
	       in->extra_len + 1;
	p = fanout_post_alloc(need);
	if (p == NULL) {
		refuse(lc, m, PEERFRAME_POST_ACK, PEERFRAME_OVERLOAD);
		return;
	}
	s = (char *)(p + 1);
	p->author = s;
	memcpy(s, in->author, in->author_len);
	s[in->author_len] = '\0';
	s += in->author_len + 1;
	p->room_uri = memcpy(s, r->cat->uri, ulen + 1);
	s += ulen + 1;
	p->inner = s;
	memcpy(s, in->body, in->body_len);
	s[in->body_len] = '\0';
	s += in->body_len + 1;
	p->inner_len = in->body_len;
	p->text = s;
	memcpy(s, in->text, in->text_len);
	s[in->text_len] = '\0';
	s += in->text_len + 1;
	p->text_len = in->text_len;
	p->extra_attrs = s;
	memcpy(s, in->extra, in->extra_len);
	s[in->extra_len] = '\0';
	p->used = need;
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
	unsigned code = home_check(t, r, m->f.epoch);
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
send_history(struct lcore_ctx *lc, const struct pmsg *m, const struct roomtab_ent *r,
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
	frame_init(&f, PEERFRAME_HISTORY, r->raw, r->epoch);
	f.code = (uint16_t)code;
	f.ref = ref;
	f.u.history.recs = v;
	f.u.history.count = (uint16_t)n;
	if (send_to(lc, m->node, &f) != 0 && n > 0) {
		/* Too large for a frame: the records go, the end still does. */
		LOG(WARNING, FANOUT, "history for node %u: %zu posts too large for a frame, left out",
		    m->node, n);
		if (code != PEERFRAME_MORE) {
			f.u.history.count = 0;
			send_to(lc, m->node, &f);
		}
	}
}

static void
got_resync_req(struct lcore_ctx *lc, const struct pmsg *m)
{
	const struct roomtab *t = roomtab_of(lc);
	const struct roomtab_ent *r = roomtab_find_raw(t, m->f.room);
	unsigned code = home_check(t, r, m->f.epoch);
	struct history_rec *recs = NULL;
	struct fo_roomstate *lr;
	size_t start = 0, bytes = 0;
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
	/* What is durable now; what is not yet goes by RELAY once it is, after
	 * these frames (this lcore sends both, in order). */
	if (r->cat->props & CATALOG_PROP_LOGGED)
		n = history_read_range(lcore_db(lc), r->raw, m->f.seq ? m->f.seq : 1, UINT64_MAX,
				       RESYNC_MAX, &recs);
	if (n < 0)
		n = 0;
	for (size_t i = 0; i < (size_t)n; i++) {
		bytes += recs[i].author_len + recs[i].body_len + 32;
		if (bytes >= CHUNK_BYTES || i - start + 1 == PEERFRAME_HISTORY_MAX) {
			send_history(lc, m, r, recs, start, i + 1, PEERFRAME_MORE, 0);
			start = i + 1;
			bytes = 0;
		}
	}
	send_history(lc, m, r, recs, start, (size_t)n, PEERFRAME_OK, 0);
	history_recs_free(recs, (size_t)n);
}

static void
got_history_req(struct lcore_ctx *lc, const struct pmsg *m)
{
	const struct roomtab *t = roomtab_of(lc);
	const struct roomtab_ent *r = roomtab_find_raw(t, m->f.room);
	unsigned code = home_check(t, r, m->f.epoch);
	struct history_rec *recs = NULL;
	size_t want = m->f.seq, first, bytes = 0;
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
	send_history(lc, m, r, recs, first, (size_t)n, PEERFRAME_OK, m->f.ref);
	history_recs_free(recs, (size_t)n);
}

/* ---- link events -------------------------------------------------------- */

static void
link_down(struct lcore_ctx *lc, uint32_t node)
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

		if (lr == NULL || !has_local(lr))
			continue;
		r = roomtab_find_raw(roomtab_of(lc), lr->raw);
		if (r != NULL && r->node == node)
			lr->resyncing = true;
	}
}

/* The link with <node> is up: for each room homed there with members
 * here, this node's users and the first seq missed. */
static void
link_up(struct lcore_ctx *lc, uint32_t node)
{
	struct fanout_lc *fo = fo_lc(lc);
	const struct roomtab *t = roomtab_of(lc);

	if (!node_up(fo, node) && fo->nup < FO_NODES_MAX)
		fo->up[fo->nup++] = node;
	for (uint32_t k = 0; k < fo->rcap; k++) {
		struct fo_roomstate *lr = fo->rooms[k];
		const struct roomtab_ent *r;

		if (lr == NULL)
			continue;
		r = roomtab_find_raw(t, lr->raw);
		if (r != NULL && r->node == node)
			fo_peer_resync_room(lc, lr, r);
	}
}

void
fo_peer_resync_room(struct lcore_ctx *lc, struct fo_roomstate *lr, const struct roomtab_ent *r)
{
	const struct roomtab *t = roomtab_of(lc);
	struct peerframe_user *v;
	struct peerframe f;
	uint32_t n = 0;

	if (!has_local(lr) || r->node == ROOMTAB_NODE_NONE || roomtab_homed_here(t, r))
		return;
	v = calloc(lr->rn, sizeof(*v));
	if (v == NULL)
		return;
	for (uint32_t i = 0; i < lr->rn; i++) {
		uint32_t j;

		if (lr->rv[i].node != 0)
			continue;
		for (j = 0; j < n; j++)
			if (roomtab_user_eq(v[j].uri, lr->rv[i].uri))
				break;
		if (j < n) {
			v[j].n++;
			continue;
		}
		v[n++] = (struct peerframe_user){
			.flags = lr->rv[i].manager ? PEERFRAME_USER_MANAGER : 0, .n = 1,
			.uri = lr->rv[i].uri, .uri_len = (uint16_t)strlen(lr->rv[i].uri),
		};
	}
	frame_init(&f, PEERFRAME_RESYNC_REQ, lr->raw, r->epoch);
	f.seq = lr->last_seq + 1;
	f.u.users.v = v;
	f.u.users.count = (uint16_t)(n < PEERFRAME_USERS_MAX ? n : PEERFRAME_USERS_MAX);
	lr->resyncing = true;
	if (send_to(lc, r->node, &f) == 0)
		ctr_inc(lc, CTR_PEER_RESYNCS);
	free(v);
}

/* Node <node> left: rooms homed here forget its users. */
static void
node_gone(struct lcore_ctx *lc, uint32_t node)
{
	struct fanout_lc *fo = fo_lc(lc);

	link_down(lc, node);
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

/* ---- the lcore's loop ---------------------------------------------------- */

/* Handles <m>; true when it kept <m> (it is freed later). */
static bool
dispatch(struct lcore_ctx *lc, struct pmsg *m)
{
	switch (m->kind) {
	case PM_UP:
		link_up(lc, m->node);
		return false;
	case PM_DOWN:
		link_down(lc, m->node);
		return false;
	case PM_GONE:
		node_gone(lc, m->node);
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
		got_resync(lc, m);
		break;
	case PEERFRAME_HISTORY_REQ:
		got_history_req(lc, m);
		break;
	case PEERFRAME_PRESENCE:
		got_presence(lc, m);
		break;
	case PEERFRAME_REPL:
		fo_repl_got(lc, m->node, &m->f);
		break;
	case PEERFRAME_REPL_ACK:
		fo_repl_got_ack(lc, m->node, &m->f);
		break;
	default:
		ctr_inc(lc, CTR_PEER_REFUSED);
		break;
	}
	return false;
}

void
fo_peer_poll(struct lcore_ctx *lc, unsigned *work)
{
	struct fanout_lc *fo = fo_lc(lc);
	struct pmsg *m, *rev = NULL;
	uint32_t n = 0;

	if (atomic_load_explicit(&fo->inbox, memory_order_relaxed) == NULL)
		return;
	m = atomic_exchange_explicit(&fo->inbox, NULL, memory_order_acquire);
	while (m != NULL) {		/* pushed newest first: in arrival order again */
		struct pmsg *next = m->next;

		m->next = rev;
		rev = m;
		m = next;
		n++;
	}
	atomic_fetch_sub_explicit(&fo->inbox_n, n, memory_order_relaxed);
	*work += n;
	while (rev != NULL) {
		struct pmsg *next = rev->next;

		if (!dispatch(lc, rev))
			free(rev);
		rev = next;
	}
}

bool
fo_peer_idle(struct lcore_ctx *lc)
{
	return atomic_load_explicit(&fo_lc(lc)->inbox, memory_order_relaxed) == NULL;
}

void
fo_peer_fini(struct fanout_lc *fo)
{
	struct pmsg *m = atomic_exchange(&fo->inbox, NULL);

	while (m != NULL) {
		struct pmsg *next = m->next;

		free(m);
		m = next;
	}
	free(fo->pend);
	fo->pend = NULL;
	fo->npend = fo->pcap = 0;
}
