/* Presence in rooms across lcores: joins and bjoins, parts (by command,
 * BYE, expiry or connection loss), the home lcore's roster, and the
 * ntc:join / ntc:bjoin / ntc:part notices to the other members. See
 * fanout.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "dataplane/base/log.h"
#include "dataplane/session/dialog.h"
#include "dataplane/chat/fanout_int.h"
#include "dataplane/chat/fanout_peer.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/peer/peerframe.h"
#include "dataplane/xccos/xccos.h"
#include "storage/commit.h"
#include "storage/history.h"

/* ---- presence --------------------------------------------------------- */

void
fo_presence_put(struct presence *pr)
{
	if (atomic_fetch_sub_explicit(&pr->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(pr->body);
	free(pr);
}

/* "ma-chan://example.com/<id>" -> "example.com" into <out>. */
static void
room_domain(const char *uri, char *out, size_t cap)
{
	const char *p = strstr(uri, "://"), *slash;

	p = p ? p + 3 : uri;
	slash = strrchr(p, '/');
	snprintf(out, cap, "%.*s", slash ? (int)(slash - p) : (int)strlen(p), p);
}

/* Home: tells every lcore with members of the room, and every other node
 * with some, that <uri> joined or left (the member's own dialog <uid> on
 * node <node>, 0 for this one, is not told). */
void
fo_announce(struct lcore_ctx *lc, struct fo_roomstate *lr, const char *ntc, const char *uri,
	    bool manager, const char *room_uri, uint32_t node, uint64_t uid)
{
	struct presence *pr;
	struct xbuf b;
	char id[CATALOG_ID_LEN + 1], domain[128];

	pr = calloc(1, sizeof(*pr));
	if (pr == NULL)
		return;
	atomic_init(&pr->refs, 1);
	memcpy(pr->raw, lr->raw, CATALOG_ID_RAW);
	pr->uid = uid;
	pr->skip = node == 0;
	xbuf_init(&b, 0);
	xccos_begin(&b, (1ull << 40) + ++fo_lc(lc)->ntc_envid);
	xccos_ntc_begin(&b, ntc);
	if (strcmp(ntc, "part") == 0) {
		xbuf_str(&b, "<chanib");
		xbuf_attr(&b, "uri", room_uri);
		xbuf_str(&b, "><uib");
		xbuf_attr(&b, "uri", uri);
		xbuf_str(&b, "/></chanib>");
	} else {
		catalog_id_unpack(lr->raw, id);
		room_domain(room_uri, domain, sizeof(domain));
		xbuf_str(&b, "<uib");
		xbuf_attr(&b, "uri", uri);
		xbuf_printf(&b, "><aib key=\"%s\"", manager ? "12276" : "3984");
		xbuf_attr(&b, "domain", domain);
		xbuf_attr(&b, "value", id);
		xbuf_str(&b, "/></uib>");
	}
	xccos_ntc_end(&b);
	xccos_end(&b);
	pr->body = xbuf_take(&b, &pr->body_len);
	xbuf_free(&b);
	if (pr->body == NULL) {
		free(pr);
		return;
	}
	for (uint32_t l = 0; l < lcore_conf(lc)->nlcores; l++)
		if (lr->per_lcore[l] > 0) {
			atomic_fetch_add_explicit(&pr->refs, 1, memory_order_relaxed);
			fo_send_msg(lc, l, FM_PRESENCE, pr, 0);
		}
	if (lr->nnodes > 0)
		fo_peer_presence(lc, lr, pr, node, uid);
	fo_presence_put(pr);
}

void
fo_tell_members(struct lcore_ctx *lc, struct presence *pr)
{
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), pr->raw);

	if (lr != NULL)
		for (uint32_t i = 0; i < lr->mn; i++) {
			struct dialog *d = lr->mv[i];

			if ((!pr->skip || d->uid != pr->uid) &&
			    fo_shared(lcore_engine(lc))->ops.send(lc, d, pr->body, pr->body_len) == 0)
				ctr_inc(lc, CTR_NOTICES);
		}
	fo_presence_put(pr);
}

/* ---- joins and parts -------------------------------------------------- */

struct fanout_joinbatch *
fanout_joinbatch_new(unsigned n, unsigned ndenied)
{
	struct fanout_joinbatch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->reqs = calloc(n ? n : 1, sizeof(*b->reqs));
	b->denied = calloc(ndenied ? ndenied : 1, sizeof(*b->denied));
	if (b->reqs == NULL || b->denied == NULL) {
		fanout_joinbatch_free(b);
		return NULL;
	}
	for (unsigned i = 0; i < n; i++) {
		b->reqs[i].kind = FANOUT_JOB_JOIN;
		b->reqs[i].batch = b;
	}
	return b;
}

void
fanout_joinbatch_free(struct fanout_joinbatch *b)
{
	if (b == NULL)
		return;
	if (b->reqs != NULL)
		for (unsigned i = 0; i < b->n; i++)
			free(b->reqs[i].snap);
	free(b->reqs);
	free(b->denied);
	free(b);
}

static void
join_done(struct lcore_ctx *lc, struct fanout_joinbatch *b)
{
	fo_lc(lc)->waiting--;
	fo_shared(lcore_engine(lc))->ops.join_done(lc, b);
	conn_release(b->conn);
	fanout_joinbatch_free(b);
}

int
fanout_join(struct lcore_ctx *lc, struct fanout_joinbatch *b)
{
	struct dialog *d = dialog_by_uid(b->conn, b->uid);

	for (unsigned i = 0; i < b->n; i++) {
		const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), b->reqs[i].raw);

		if (!fo_admit(lc, r ? r->home : 0))
			return -ENOBUFS;
	}
	conn_hold(b->conn);
	fo_lc(lc)->waiting++;
	b->pending = b->n;
	if (d != NULL)
		d->joins_pending += b->n;
	if (b->n == 0) {
		join_done(lc, b);
		return 0;
	}
	for (unsigned i = 0; i < b->n; i++) {
		const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), b->reqs[i].raw);

		b->reqs[i].origin = lcore_idx(lc);
		b->reqs[i].uid = b->uid;
		b->reqs[i].bjoin = b->batch;
		fo_send_msg(lc, r ? r->home : 0, FM_JOIN, &b->reqs[i], 0);
	}
	return 0;
}

static struct roster_ent *
roster_find(struct fo_roomstate *lr, uint64_t uid)
{
	for (uint32_t i = 0; i < lr->rn; i++)
		if (lr->rv[i].uid == uid && lr->rv[i].node == 0)
			return &lr->rv[i];
	return NULL;
}

/* Home: the entry of user <uri> present on node <node>, or NULL. */
struct roster_ent *
fo_roster_remote(struct fo_roomstate *lr, uint32_t node, const char *uri)
{
	for (uint32_t i = 0; i < lr->rn; i++)
		if (lr->rv[i].node == node && roomtab_user_eq(lr->rv[i].uri, uri))
			return &lr->rv[i];
	return NULL;
}

/* A new zeroed roster entry, or NULL without memory. */
struct roster_ent *
fo_roster_add(struct fo_roomstate *lr)
{
	if (lr->rn == lr->rcap) {
		uint32_t cap = lr->rcap ? lr->rcap * 2 : 8;
		struct roster_ent *v = realloc(lr->rv, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		lr->rv = v;
		lr->rcap = cap;
	}
	memset(&lr->rv[lr->rn], 0, sizeof(lr->rv[0]));
	return &lr->rv[lr->rn++];
}

/* Node <node> has <delta> more present users in the room (home). */
void
fo_nodes_add(struct fo_roomstate *lr, uint32_t node, int delta)
{
	uint32_t i;

	for (i = 0; i < lr->nnodes; i++)
		if (lr->nodes[i].node == node)
			break;
	if (i == lr->nnodes) {
		if (delta <= 0 || i == FO_NODES_MAX)
			return;
		lr->nodes[lr->nnodes++] = (struct fo_nodecnt){ .node = node };
	}
	lr->nodes[i].n += (uint32_t)delta;
	if (lr->nodes[i].n == 0)
		lr->nodes[i] = lr->nodes[--lr->nnodes];
}

static void
present_add(struct fo_roomstate *lr, int delta)
{
	if (lr->present != NULL)
		atomic_fetch_add_explicit(lr->present, (uint32_t)delta, memory_order_relaxed);
}

/* The entry of another dialog of <re>'s user that carries the user's
 * presence (announced), or NULL. A user present through several dialogs
 * (two clients signed in as one user) joins and leaves once for the
 * others: the first dialog's join is announced, the last one's part. */
static struct roster_ent *
roster_announced(struct fo_roomstate *lr, const char *uri, uint64_t uid)
{
	for (uint32_t i = 0; i < lr->rn; i++)
		if ((lr->rv[i].uid != uid || uid == 0) && lr->rv[i].announced &&
		    roomtab_user_eq(lr->rv[i].uri, uri))
			return &lr->rv[i];
	return NULL;
}

/* Home: a join arrives. The member counts now (posts made durable from now
 * on go to its lcore); the JOIN event is stored, then the others are told
 * and the joiner gets the roster. */
/* The joiner's copy of the roster: present users, each once (a user may be
 * present through several dialogs). */
static void
roster_snap(struct fanout_joinreq *jr, const struct fo_roomstate *lr)
{
	free(jr->snap);
	jr->nsnap = 0;
	jr->snap = calloc(lr->rn ? lr->rn : 1, sizeof(*jr->snap));
	if (jr->snap == NULL)
		return;
	for (uint32_t i = 0; i < lr->rn; i++) {
		uint32_t k;

		for (k = 0; k < jr->nsnap; k++)
			if (roomtab_user_eq(jr->snap[k].uri, lr->rv[i].uri))
				break;
		if (k < jr->nsnap) {
			jr->snap[k].manager |= lr->rv[i].manager;
			continue;
		}
		snprintf(jr->snap[k].uri, sizeof(jr->snap[k].uri), "%s", lr->rv[i].uri);
		jr->snap[k].manager = lr->rv[i].manager;
		jr->nsnap++;
	}
}

void
fo_home_join(struct lcore_ctx *lc, struct fanout_joinreq *jr)
{
	struct fo_roomstate *lr = fo_roomstate_get(fo_lc(lc), jr->raw);
	struct roster_ent *re;

	if (lr == NULL) {
		jr->status = 500;
		fo_send_msg(lc, jr->origin, FM_JOINED, jr, 0);
		return;
	}
	if (lr->present == NULL)
		lr->present = fo_pslot_find(fo_shared(lcore_engine(lc)), lr->raw, true);
	if (jr->node != 0) {		/* from another node: one entry per user there */
		re = fo_roster_remote(lr, jr->node, jr->uri);
		if (re != NULL) {	/* another dialog of a present user */
			re->dialogs++;
			jr->status = 200;
			fo_peer_join_ack(lc, jr, lr);
			return;
		}
	} else if (roster_find(lr, jr->uid) != NULL) {	/* joined again: nothing changes */
		jr->status = 200;
		jr->kind = FANOUT_JOB_JOIN;
		roster_snap(jr, lr);
		fo_send_msg(lc, jr->origin, FM_JOINED, jr, 0);
		return;
	} else {
		const struct roomtab *t = roomtab_of(lc);
		const struct roomtab_ent *r = roomtab_find_raw(t, jr->raw);

		if (r != NULL && !roomtab_homed_here(t, r)) {
			fo_peer_join_fwd(lc, r, jr);
			return;
		}
	}
	re = fo_roster_add(lr);
	if (re == NULL) {
		jr->status = 500;
		if (jr->node != 0)
			fo_peer_join_ack(lc, jr, lr);
		else
			fo_send_msg(lc, jr->origin, FM_JOINED, jr, 0);
		return;
	}
	re->uid = jr->node ? 0 : jr->uid;
	re->lcore = jr->node ? FO_LCORE_REMOTE : jr->origin;
	re->node = jr->node;
	re->dialogs = 1;
	re->manager = jr->manager;
	re->announced = false;
	snprintf(re->uri, sizeof(re->uri), "%s", jr->uri);
	if (jr->node != 0)
		fo_nodes_add(lr, jr->node, 1);
	else
		lr->per_lcore[jr->origin]++;
	present_add(lr, 1);
	fo_submit_job(lc, jr);
}

/* Home: takes <re> out of the roster (counts included). */
void
fo_roster_del(struct lcore_ctx *lc, struct fo_roomstate *lr, struct roster_ent *re)
{
	(void)lc;
	if (re->node != 0)
		fo_nodes_add(lr, re->node, -1);
	else if (re->lcore != FO_LCORE_REMOTE)
		lr->per_lcore[re->lcore]--;
	*re = lr->rv[--lr->rn];
	present_add(lr, -1);
}

void
fo_home_join_stored(struct lcore_ctx *lc, struct fanout_joinreq *jr, int status)
{
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), jr->raw);
	struct roster_ent *re = lr == NULL ? NULL :
				jr->node ? fo_roster_remote(lr, jr->node, jr->uri) :
				roster_find(lr, jr->uid);

	if (status != 0) {
		ctr_inc(lc, CTR_STORAGE_FAILED);
		if (re != NULL)		/* not recorded: not joined */
			fo_roster_del(lc, lr, re);
		jr->status = 500;
	} else if (re == NULL) {
		jr->status = 410;	/* left before the join completed */
	} else {
		jr->status = 200;
		if (roster_announced(lr, jr->uri, re->uid) == NULL) {
			re->announced = true;
			fo_announce(lc, lr, jr->bjoin ? "bjoin" : "join", jr->uri, jr->manager,
				    jr->room_uri, jr->node, jr->uid);
		}
		roster_snap(jr, lr);
	}
	if (jr->node != 0)
		fo_peer_join_ack(lc, jr, lr);
	else
		fo_send_msg(lc, jr->origin, FM_JOINED, jr, 0);
}

void
fo_origin_joined(struct lcore_ctx *lc, struct fanout_joinreq *jr)
{
	struct fanout_joinbatch *b = jr->batch;
	struct dialog *d = dialog_by_uid(b->conn, b->uid);

	if (d != NULL && d->joins_pending > 0)
		d->joins_pending--;
	if (--b->pending == 0)
		join_done(lc, b);
}

void
fanout_unjoin(struct lcore_ctx *lc, const struct fanout_joinreq *jr)
{
	struct partreq *pq = calloc(1, sizeof(*pq));
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), jr->raw);

	if (pq == NULL)
		return;
	pq->kind = FANOUT_JOB_PART;
	memcpy(pq->raw, jr->raw, CATALOG_ID_RAW);
	pq->uid = jr->uid;
	snprintf(pq->uri, sizeof(pq->uri), "%s", jr->uri);
	snprintf(pq->room_uri, sizeof(pq->room_uri), "%s", jr->room_uri);
	fo_send_msg(lc, r ? r->home : 0, FM_PART, pq, 0);
}

static int
member_index(const struct fo_roomstate *lr, const struct dialog *d)
{
	for (uint32_t i = 0; i < lr->mn; i++)
		if (lr->mv[i] == d)
			return (int)i;
	return -1;
}

bool
fanout_is_joined(const struct dialog *d, const uint8_t raw[CATALOG_ID_RAW])
{
	for (uint32_t i = 0; i < d->nrooms; i++)
		if (memcmp(d->rooms[i], raw, CATALOG_ID_RAW) == 0)
			return true;
	return false;
}

int
fanout_member_add(struct lcore_ctx *lc, struct dialog *d, const uint8_t raw[CATALOG_ID_RAW])
{
	struct fo_roomstate *lr = fo_roomstate_get(fo_lc(lc), raw);

	if (lr == NULL)
		return -ENOMEM;
	if (fanout_is_joined(d, raw))
		return 0;
	if (lr->mn == lr->mcap) {
		uint32_t cap = lr->mcap ? lr->mcap * 2 : 8;
		struct dialog **v = realloc(lr->mv, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		lr->mv = v;
		lr->mcap = cap;
	}
	if (d->nrooms == d->rooms_cap) {
		uint32_t cap = d->rooms_cap ? d->rooms_cap * 2 : 4;
		uint8_t (*v)[CATALOG_ID_RAW] = realloc(d->rooms, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		d->rooms = v;
		d->rooms_cap = cap;
	}
	lr->mv[lr->mn++] = d;
	memcpy(d->rooms[d->nrooms++], raw, CATALOG_ID_RAW);
	ctr_inc(lc, CTR_JOINS);
	return 0;
}

void
fanout_part(struct lcore_ctx *lc, struct dialog *d, const uint8_t raw[CATALOG_ID_RAW])
{
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), raw);
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), raw);
	struct partreq *pq;
	int i;

	for (uint32_t k = 0; k < d->nrooms; k++)
		if (memcmp(d->rooms[k], raw, CATALOG_ID_RAW) == 0) {
			memcpy(d->rooms[k], d->rooms[--d->nrooms], CATALOG_ID_RAW);
			break;
		}
	if (lr != NULL && (i = member_index(lr, d)) >= 0)
		lr->mv[i] = lr->mv[--lr->mn];
	ctr_inc(lc, CTR_PARTS);
	pq = calloc(1, sizeof(*pq));
	if (pq == NULL)
		return;
	pq->kind = FANOUT_JOB_PART;
	memcpy(pq->raw, raw, CATALOG_ID_RAW);
	pq->uid = d->uid;
	snprintf(pq->uri, sizeof(pq->uri), "sip:%s", d->conn->aor);
	if (r != NULL)
		snprintf(pq->room_uri, sizeof(pq->room_uri), "%s", r->cat->uri);
	fo_send_msg(lc, r ? r->home : 0, FM_PART, pq, 0);
}

void
fo_home_part(struct lcore_ctx *lc, struct partreq *pq)
{
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), pq->raw);
	struct roster_ent *re = lr == NULL ? NULL :
				pq->node ? fo_roster_remote(lr, pq->node, pq->uri) :
				roster_find(lr, pq->uid);

	if (re == NULL) {	/* never completed its join, or already gone */
		free(pq);
		return;
	}
	if (pq->node == 0) {
		const struct roomtab *t = roomtab_of(lc);
		const struct roomtab_ent *r = roomtab_find_raw(t, pq->raw);

		if (r != NULL && !roomtab_homed_here(t, r)) {
			/* A stand-in for another node's room: local only, and
			 * the home hears of it. */
			lr->per_lcore[re->lcore]--;
			*re = lr->rv[--lr->rn];
			present_add(lr, -1);
			fo_peer_part_fwd(lc, r, pq);
			return;
		}
	} else if (--re->dialogs > 0) {	/* the user is still there through another dialog */
		free(pq);
		return;
	}
	pq->announce = fo_roster_handover(lr, re);
	fo_roster_del(lc, lr, re);
	fo_submit_job(lc, pq);
}

void
fo_home_resync_roster(struct lcore_ctx *lc, struct fo_roomstate *lr, const char *room_uri,
		      uint32_t node, const struct peerframe_user *v, uint32_t n)
{
	if (lr->present == NULL)
		lr->present = fo_pslot_find(fo_shared(lcore_engine(lc)), lr->raw, true);
	for (uint32_t i = 0; i < lr->rn; i++)
		if (lr->rv[i].node == node)
			lr->rv[i].mark = false;
	for (uint32_t k = 0; k < n; k++) {
		char uri[160];
		struct roster_ent *re;

		snprintf(uri, sizeof(uri), "%.*s", (int)v[k].uri_len, v[k].uri);
		re = fo_roster_remote(lr, node, uri);
		if (re == NULL) {
			re = fo_roster_add(lr);
			if (re == NULL)
				continue;
			re->lcore = FO_LCORE_REMOTE;
			re->node = node;
			re->manager = (v[k].flags & PEERFRAME_USER_MANAGER) != 0;
			snprintf(re->uri, sizeof(re->uri), "%s", uri);
			fo_nodes_add(lr, node, 1);
			present_add(lr, 1);
			if (roster_announced(lr, uri, 0) == NULL) {
				re->announced = true;
				fo_announce(lc, lr, "join", uri, re->manager, room_uri, node, 0);
			}
		}
		re->dialogs = v[k].n ? v[k].n : 1;
		re->mark = true;
	}
	for (uint32_t i = 0; i < lr->rn;) {
		struct roster_ent *re = &lr->rv[i];
		char uri[160];

		if (re->node != node || re->mark) {
			i++;
			continue;
		}
		snprintf(uri, sizeof(uri), "%s", re->uri);
		if (fo_roster_handover(lr, re)) {
			fo_roster_del(lc, lr, re);
			fo_announce(lc, lr, "part", uri, false, room_uri, node, 0);
		} else {
			fo_roster_del(lc, lr, re);
		}
	}
}

void
fo_home_drop_node(struct lcore_ctx *lc, struct fo_roomstate *lr, const char *room_uri,
		  uint32_t node)
{
	fo_home_resync_roster(lc, lr, room_uri, node, NULL, 0);
}

bool
fo_roster_handover(struct fo_roomstate *lr, struct roster_ent *re)
{
	if (!re->announced)
		return false;
	/* Still present through another dialog or node: that entry carries
	 * the presence now, and the others are not told of a part. */
	for (uint32_t i = 0; i < lr->rn; i++)
		if (&lr->rv[i] != re && roomtab_user_eq(lr->rv[i].uri, re->uri)) {
			lr->rv[i].announced = true;
			return false;
		}
	return true;
}

void
fo_home_part_stored(struct lcore_ctx *lc, struct partreq *pq, int status)
{
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), pq->raw);

	if (status != 0)
		ctr_inc(lc, CTR_STORAGE_FAILED);
	/* The member is gone either way; the others learn it, unless the
	 * user is still there through another dialog. */
	if (lr != NULL && pq->announce)
		fo_announce(lc, lr, "part", pq->uri, false, pq->room_uri, pq->node, pq->uid);
	free(pq);
}

/* ---- control ---------------------------------------------------------- */

uint32_t
fanout_roster_visit(struct lcore_ctx *lc, const uint8_t raw[CATALOG_ID_RAW], fanout_member_fn *fn,
		    void *arg)
{
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), raw);

	if (lr == NULL)
		return 0;
	for (uint32_t i = 0; i < lr->rn; i++)
		fn(arg, lr->rv[i].uri, lr->rv[i].lcore, lr->rv[i].manager);
	return lr->rn;
}

uint32_t
fanout_ring_count(const struct engine *e, uint32_t src, uint32_t dst)
{
	if (src >= engine_nlcores(e) || dst >= engine_nlcores(e))
		return 0;
	return rte_ring_count(fo_lc(engine_lcore(e, dst))->rx[src]);
}

uint32_t
fanout_ring_size(const struct engine *e)
{
	return rte_ring_get_capacity(fo_lc(engine_lcore(e, 0))->rx[0]);
}

uint64_t
fanout_grown(struct lcore_ctx *lc)
{
	return fo_lc(lc)->grown;
}

uint64_t
fanout_refused(struct lcore_ctx *lc)
{
	return fo_lc(lc)->refused;
}

uint32_t
fanout_staged(struct lcore_ctx *lc)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < lcore_conf(lc)->nlcores; i++)
		n += fo_lc(lc)->tx[i].n;
	return n;
}

