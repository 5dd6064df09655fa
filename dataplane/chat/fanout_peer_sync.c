/* Rooms across the nodes of an array, the members' side of a resync: a
 * room homed elsewhere with members here asks its home for what they
 * missed (RESYNC_REQ) when the link to the home comes up or the home
 * moves, and delivers the answer (HISTORY) here in order, once; and, when
 * this node takes a room over, the posts of the old home that its members
 * here had not seen yet. The home's side is fanout_peer_room.c's
 * (got_resync_req). Owning lcore of the room only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/base/log.h"
#include "dataplane/chat/fanout_int.h"
#include "dataplane/chat/fanout_peer.h"
#include "dataplane/chat/fanout_peer_int.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/peer/peerframe.h"
#include "storage/history.h"

/* ---- asking the home ----------------------------------------------------- */

/* Tells room <r>'s home node this node's present users and the first seq
 * it misses (RESYNC_REQ); RELAYs wait until the answer is in. */
static void
resync_room(struct lcore_ctx *lc, struct fo_roomstate *lr, const struct roomtab_ent *r)
{
	struct peerframe_user *v = calloc(lr->rn ? lr->rn : 1, sizeof(*v));
	struct peerframe f;
	uint32_t n = 0;

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
	/* Also when another home numbers the room now: it goes on with the
	 * same numbering, after the last post the old one had acknowledged,
	 * and holds those posts (it was their replica). Asking from our last
	 * seq brings what the old home relayed too late for us (a relay of
	 * an older epoch, or one that came while we resynced, is dropped). */
	fo_frame_init(&f, PEERFRAME_RESYNC_REQ, lr->raw, r->epoch);
	f.seq = lr->last_seq + 1;
	f.u.users.v = v;
	f.u.users.count = (uint16_t)(n < PEERFRAME_USERS_MAX ? n : PEERFRAME_USERS_MAX);
	lr->resyncing = true;
	lr->synced_node = r->node;
	lr->synced_epoch = r->epoch;
	if (fo_peer_send(lc, r->node, &f) == 0)
		ctr_inc(lc, CTR_PEER_RESYNCS);
	free(v);
}

/* The link with <node> is up: each room homed there with members here
 * resyncs. */
void
fo_link_up(struct lcore_ctx *lc, uint32_t node)
{
	struct fanout_lc *fo = fo_lc(lc);
	const struct roomtab *t = roomtab_of(lc);

	if (!fo_node_up(fo, node) && fo->nup < FO_NODES_MAX)
		fo->up[fo->nup++] = node;
	for (uint32_t k = 0; k < fo->rcap; k++) {
		struct fo_roomstate *lr = fo->rooms[k];
		const struct roomtab_ent *r;

		if (lr == NULL || !fo_has_local(lr))
			continue;
		r = roomtab_find_raw(t, lr->raw);
		if (r != NULL && r->node == node && !roomtab_homed_here(t, r))
			resync_room(lc, lr, r);
	}
}

/* About once a second: a room with members here whose home moved (another
 * node or epoch in the room table) resyncs with its new home, which then
 * knows them. */
void
fo_homes_check(struct lcore_ctx *lc)
{
	struct fanout_lc *fo = fo_lc(lc);
	const struct roomtab *t = roomtab_of(lc);
	uint64_t now = fo_now_ms();

	if (now - fo->homes_checked_ms < 1000)
		return;
	fo->homes_checked_ms = now;
	for (uint32_t k = 0; k < fo->rcap; k++) {
		struct fo_roomstate *lr = fo->rooms[k];
		const struct roomtab_ent *r;

		if (lr == NULL || !fo_has_local(lr))
			continue;
		r = roomtab_find_raw(t, lr->raw);
		if (r != NULL && roomtab_homed_here(t, r) && r->home == lcore_idx(lc) &&
		    lr->home_epoch != r->epoch) {
			/* Taken over: members here get what they missed now,
			 * not at the room's next post. */
			fo_next_seq_peek(lc, lr);
			continue;
		}
		if (r == NULL || roomtab_homed_here(t, r) || r->node == ROOMTAB_NODE_NONE ||
		    (r->node == lr->synced_node && r->epoch == lr->synced_epoch) ||
		    !fo_node_up(fo, r->node))
			continue;
		if (lr->synced_node != 0)
			ctr_inc(lc, CTR_REPL_REHOMED);	/* the home moved */
		resync_room(lc, lr, r);
	}
}

/* ---- the answer, and the catch-up after a takeover ---------------------- */

/* Delivers one stored post to the members here, as its seq says. */
static int
deliver_rec(struct lcore_ctx *lc, struct fo_roomstate *lr, const struct roomtab_ent *r,
	    uint64_t seq, uint64_t time_ms, const char *author, size_t alen, const void *body,
	    size_t blen)
{
	struct fanout_post *p = fo_post_copy(author, alen, r->cat->uri, strlen(r->cat->uri),
					     body, blen, NULL, 0, "", 0);

	if (p == NULL)
		return -ENOMEM;
	memcpy(p->room, r->raw, CATALOG_ID_RAW);
	p->seq = seq;
	p->ts_100ns = time_ms * 10000;
	p->wal_seq = (1ull << 42) + seq;
	fo_build_post_body(lc, p);
	if (p->body == NULL) {
		fanout_post_put(p);
		return -ENOMEM;
	}
	lr->last_seq = seq;
	ctr_inc(lc, CTR_PEER_RESYNC_POSTS);
	fo_deliver_local(lc, lr, p);
	return 0;
}

/* A resync's HISTORY: what this node's members missed, in order, once. */
void
fo_got_resync(struct lcore_ctx *lc, const struct pmsg *m)
{
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), m->f.room);
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), m->f.room);

	if (lr == NULL || r == NULL)
		return;
	lr->seq_epoch = m->f.epoch;
	if (m->f.code == PEERFRAME_NO_HISTORY) {	/* the home numbers on from here */
		lr->last_seq = m->f.seq;
		lr->resyncing = false;
		return;
	}
	if (m->f.code != PEERFRAME_OK && m->f.code != PEERFRAME_MORE) {
		/* Refused (the home's table lags ours): fo_homes_check tries again. */
		fo_refused(lc, m->f.room, m->f.code);
		lr->synced_node = 0;
		lr->synced_epoch = 0;
	}
	for (uint32_t i = 0; i < m->nrecs && fo_has_local(lr); i++) {
		const struct peerframe_post *rec = &m->recs[i];

		if (rec->seq <= lr->last_seq)
			continue;
		if (deliver_rec(lc, lr, r, rec->seq, rec->time_ms, rec->author, rec->author_len,
				rec->body, rec->body_len) != 0)
			break;
	}
	if (m->f.code != PEERFRAME_MORE)
		lr->resyncing = false;
}

/* This node took room <r> over (a new epoch) while members here had seen
 * its posts as relays up to lr->last_seq: what the old home made visible
 * after that, whose relays were dropped here as this node became the home,
 * is in this node's history (it held each as the replica) up to <upto>.
 * Delivered here once, before any post of the new epoch. */
void
fo_takeover_catch_up(struct lcore_ctx *lc, struct fo_roomstate *lr, const struct roomtab_ent *r,
		     uint64_t upto)
{
	struct history_rec *recs = NULL;
	ssize_t n;

	if (lr->last_seq == 0 || lr->last_seq >= upto || !fo_has_local(lr) ||
	    !(r->cat->props & CATALOG_PROP_LOGGED))
		return;
	n = history_read_range(lcore_db(lc), r->raw, lr->last_seq + 1, upto, FO_RESYNC_MAX, &recs);
	for (ssize_t i = 0; i < n; i++)
		if (recs[i].seq > lr->last_seq &&
		    deliver_rec(lc, lr, r, recs[i].seq, recs[i].ts_ms, recs[i].author,
				recs[i].author_len, recs[i].body, recs[i].body_len) != 0)
			break;
	if (n > 0)
		LOG(INFO, FANOUT, "room %s: taken over; %zd posts of the old home delivered to "
		    "members here", r->cat->uri, n);
	history_recs_free(recs, n > 0 ? (size_t)n : 0);
}
