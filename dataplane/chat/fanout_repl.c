/* Each room's copy on its replica node (ARCHITECTURE.md "The array":
 * replication and failover). An acknowledged post is durable on two nodes.
 *
 * The home (roomtab_ent.node == this node, .replica = R) stores a post as
 * before (history + compliance in one WriteBatch); then, instead of
 * delivering it, it queues it on the room's state (rq, in seq order) and
 * sends R a REPL frame (seq, time, author, the grpchat inner XML and the
 * compliance text). R stores the copy through its own storage thread (group
 * commit: COMMIT_REPLICA, the compliance event kept apart from its own log)
 * and answers REPL_ACK with the highest seq durable there. Every queued post
 * at or below it is then delivered, relayed and answered, in order: a
 * client's 200 means durable on both nodes.
 *
 * A new or silent replica is probed (REPL with seq 0: "what do you
 * hold?"); what it lacks is sent from the queue, or, older than the queue,
 * read back from history a batch per turn (throttled: REPL_WINDOW copies
 * unacknowledged at most). The replica takes any seq above the last it has
 * (a seq the home lost to a storage failure leaves a gap, never a stall).
 *
 * The replica refuses a copy from an epoch older than the room's home it
 * knows, or for a room it homes itself (REPL_ACK with STALE_EPOCH /
 * WRONG_HOME): an old home that still sends is fenced off by epoch. When
 * the replica takes the room over (control/homes.c), its next seq follows
 * the last copy it took (fo_next_seq_peek). Members on other nodes resync
 * with a room's new home (RESYNC_REQ, fanout_peer_sync.c fo_homes_check).
 *
 * Not replicated yet: JOIN and PART compliance events, and a post's file
 * references (the copy keeps author, time and body). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane/base/log.h"
#include "dataplane/chat/fanout_int.h"
#include "dataplane/chat/fanout_peer.h"
#include "dataplane/chat/fanout_peer_int.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/engine/engine.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/peer/peerframe.h"
#include "storage/commit.h"
#include "storage/history.h"
#include "storage/wal.h"

#define REPL_WINDOW	1024	/* copies sent and not acknowledged, at most */
#define CATCHUP_BATCH	128	/* history records one turn sends a room, at most */
#define PROBE_MS	1000	/* a probe unanswered this long goes again */
#define SILENT_MS	2000	/* copies unacknowledged this long: probe again */
#define TICK_MS		50

/* A copy this node keeps as a room's replica, on its way to storage. */
struct repljob {
	enum fanout_job	kind;		/* FANOUT_JOB_REPL */
	uint32_t	node;		/* the home that sent it */
	uint64_t	epoch;
	uint8_t		raw[CATALOG_ID_RAW];
	uint64_t	seq;
	uint64_t	ts_ms;
	bool		logged;
	bool		truncate;	/* drop copies from <seq> on, then answer the probe */
	char		*author, *body, *text;
	size_t		author_len, body_len, text_len;
	char		room_uri[256];
	char		data[];
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint32_t
fanout_repl_held(const struct engine *e)
{
	uint32_t n = 0;

	if (engine_svc(e) == NULL)
		return 0;
	for (uint32_t i = 0; i < engine_nlcores(e); i++) {
		struct lcore_ctx *lc = engine_lcore(e, i);

		if (lc != NULL && fo_lc(lc) != NULL)
			n += atomic_load_explicit(&fo_lc(lc)->repl_held, memory_order_relaxed);
	}
	return n;
}

/* The room is replicated here: an array node with peer links, the room
 * homed here with a replica named (or being chosen: NONE with alone =
 * refuse). */
static bool
replicated(struct lcore_ctx *lc, const struct roomtab *t, const struct roomtab_ent *r)
{
	if (!fo_peer_active() || t->self == 0 || r == NULL || r->replica == 0 ||
	    !roomtab_homed_here(t, r))
		return false;
	return r->replica != ROOMTAB_NODE_NONE ||
	       lcore_conf(lc)->array_alone == ENGINE_ALONE_REFUSE;
}

bool
fo_repl_admit(struct lcore_ctx *lc, const struct roomtab_ent *r)
{
	const struct roomtab *t = roomtab_of(lc);

	if (!fo_peer_active() || t->self == 0 || r == NULL || r->replica != ROOMTAB_NODE_NONE)
		return true;
	if (lcore_conf(lc)->array_alone == ENGINE_ALONE_UNREPLICATED) {
		ctr_inc(lc, CTR_REPL_UNREPLICATED);
		return true;
	}
	ctr_inc(lc, CTR_REPL_REFUSED_ALONE);
	return false;
}

/* ---- the home's side --------------------------------------------------- */

static int
rq_push(struct fo_roomstate *lr, struct fanout_post *p)
{
	if (lr->rq_n == lr->rq_cap) {
		uint32_t cap = lr->rq_cap ? lr->rq_cap * 2 : 64;
		struct fanout_post **v = malloc(cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		for (uint32_t i = 0; i < lr->rq_n; i++)
			v[i] = lr->rq[(lr->rq_head + i) % lr->rq_cap];
		free(lr->rq);
		lr->rq = v;
		lr->rq_head = 0;
		lr->rq_cap = cap;
	}
	lr->rq[(lr->rq_head + lr->rq_n) % lr->rq_cap] = p;
	lr->rq_n++;
	return 0;
}

static struct fanout_post *
rq_at(const struct fo_roomstate *lr, uint32_t i)
{
	return lr->rq[(lr->rq_head + i) % lr->rq_cap];
}

static struct fanout_post *
rq_pop(struct lcore_ctx *lc, struct fo_roomstate *lr)
{
	struct fanout_post *p = lr->rq[lr->rq_head];

	lr->rq_head = (lr->rq_head + 1) % lr->rq_cap;
	lr->rq_n--;
	atomic_fetch_sub_explicit(&fo_lc(lc)->repl_held, 1, memory_order_relaxed);
	return p;
}

static void
repl_frame(struct peerframe *f, const struct fo_roomstate *lr, uint64_t seq)
{
	memset(f, 0, sizeof(*f));
	f->type = PEERFRAME_REPL;
	memcpy(f->room, lr->raw, PEERFRAME_ROOM_LEN);
	f->epoch = lr->rp_epoch;
	f->seq = seq;
	f->ref = WAL_EV_CHAT;
}

static void
probe(struct lcore_ctx *lc, struct fo_roomstate *lr)
{
	struct peerframe f;

	repl_frame(&f, lr, 0);
	fo_next_seq_peek(lc, lr);
	f.ref = lr->epoch_first;	/* a probe: where this epoch's numbering starts */
	lr->rp_probing = true;
	lr->rp_probe_ms = now_ms();
	if (fo_node_up(fo_lc(lc), lr->rp_node) && fo_peer_send(lc, lr->rp_node, &f) == 0)
		ctr_inc(lc, CTR_REPL_PROBES);
}

static int
send_post(struct lcore_ctx *lc, struct fo_roomstate *lr, const struct fanout_post *p)
{
	struct peerframe f;

	repl_frame(&f, lr, p->seq);
	f.u.post = (struct peerframe_post){
		.time_ms = p->ts_100ns / 10000, .author = p->author,
		.author_len = (uint16_t)strlen(p->author), .body = (const uint8_t *)p->inner,
		.body_len = (uint32_t)p->inner_len, .text = (const uint8_t *)p->text,
		.text_len = (uint32_t)p->text_len,
	};
	return fo_peer_send(lc, lr->rp_node, &f);
}

/* Copies older than the queue, from history: one batch. How many went
 * (0 also when there were none: rp_sent then skips to the queue). */
static int
send_history(struct lcore_ctx *lc, struct fo_roomstate *lr, uint64_t from, uint64_t to)
{
	struct history_rec *recs = NULL;
	ssize_t n = history_read_range(lcore_db(lc), lr->raw, from, to, CATCHUP_BATCH, &recs);
	int rc = 0;

	if (n < 0)
		return (int)n;
	for (ssize_t i = 0; i < n && rc == 0; i++) {
		struct peerframe f;

		repl_frame(&f, lr, recs[i].seq);
		f.u.post = (struct peerframe_post){
			.time_ms = recs[i].ts_ms, .author = recs[i].author,
			.author_len = (uint16_t)recs[i].author_len, .body = recs[i].body,
			.body_len = (uint32_t)recs[i].body_len,
		};
		rc = fo_peer_send(lc, lr->rp_node, &f);
		if (rc == 0) {
			lr->rp_sent = recs[i].seq;
			ctr_inc(lc, CTR_REPL_CATCHUP);
		}
	}
	if (rc == 0 && n < CATCHUP_BATCH)
		lr->rp_sent = to - 1;		/* nothing else below <to> */
	history_recs_free(recs, (size_t)n);
	return rc;
}

/* Sends the replica what it lacks, within the window. */
static void
pump(struct lcore_ctx *lc, struct fo_roomstate *lr)
{
	bool history_done = false;

	if (lr->rp_probing || lr->rp_node == 0 || lr->rp_node == ROOMTAB_NODE_NONE)
		return;
	while (lr->rp_sent < lr->rp_stored && lr->rp_sent - lr->rp_acked < REPL_WINDOW) {
		uint64_t next = lr->rp_sent + 1, first = lr->rq_n ? rq_at(lr, 0)->seq : lr->rp_stored + 1;
		int rc = 0;

		if (next < first) {
			if (history_done)
				break;		/* a batch a turn */
			history_done = true;
			rc = send_history(lc, lr, next, first);
		} else {
			uint32_t i;

			for (i = 0; i < lr->rq_n && rq_at(lr, i)->seq < next; i++)
				;
			if (i == lr->rq_n)
				break;
			rc = send_post(lc, lr, rq_at(lr, i));
			if (rc == 0) {
				lr->rp_sent = rq_at(lr, i)->seq;
				ctr_inc(lc, CTR_REPL_OUT);
			}
		}
		if (rc != 0) {
			/* The link is down or full: ask again later. */
			lr->rp_probing = true;
			lr->rp_probe_ms = now_ms();
			break;
		}
	}
}

/* The home epoch or replica of <lr> changed: start over with a probe. */
static void
reset(struct lcore_ctx *lc, struct fo_roomstate *lr, const struct roomtab_ent *r)
{
	uint64_t last = 0;

	lr->rp_node = r->replica;
	lr->rp_epoch = r->epoch;
	lr->rp_sent = lr->rp_acked = 0;
	lr->rp_ack_ms = now_ms();
	if (history_last_seq(lcore_db(lc), lr->raw, &last) != 0)
		last = 0;
	if (last > lr->rp_stored)
		lr->rp_stored = last;
	lr->rp_probing = false;
	if (r->replica != ROOMTAB_NODE_NONE)
		probe(lc, lr);		/* (PENDING: no link, probed again once named) */
}

/* Drops this node's stored history of the room of <lr> from <seq> on
 * (durably, in order with its later commits): a home that lost the room
 * numbered those posts but no replica acknowledged them and their authors
 * got a retryable refusal; the room's new home numbers the same seqs anew
 * (test_partition: the old home kept them, one seq with two contents when
 * it was not made the new home's replica, which truncates such a tail). */
static void
drop_tail(struct lcore_ctx *lc, const struct fo_roomstate *lr, const struct roomtab_ent *r,
	  uint64_t seq)
{
	size_t ulen = strlen(r->cat->uri);
	struct repljob *j;

	if (ulen >= sizeof(j->room_uri) || (j = calloc(1, sizeof(*j) + 1)) == NULL) {
		ctr_inc(lc, CTR_STORAGE_FAILED);
		return;
	}
	j->kind = FANOUT_JOB_REPL;
	j->node = 0;			/* no home to answer (fo_repl_stored) */
	memcpy(j->raw, lr->raw, CATALOG_ID_RAW);
	j->seq = seq;
	j->truncate = true;
	j->author = j->body = j->text = j->data;
	memcpy(j->room_uri, r->cat->uri, ulen + 1);
	fo_submit_job(lc, j);
}

/* Posts the replica holds become visible; posts of a room no longer homed
 * here fail (retryable: the new home may hold them, a client that tries
 * again gets a new seq). */
static void
release(struct lcore_ctx *lc, struct fo_roomstate *lr, bool fail)
{
	while (lr->rq_n > 0 && (fail || rq_at(lr, 0)->seq <= lr->rp_acked)) {
		struct fanout_post *p = rq_pop(lc, lr);

		if (fail) {
			p->status = -EAGAIN;
			ctr_inc(lc, CTR_REPL_FAILED);
		} else {
			ctr_inc(lc, CTR_REPL_ACKED);
		}
		fo_post_visible(lc, p);
	}
}

bool
fo_repl_hold(struct lcore_ctx *lc, struct fo_roomstate *lr, struct fanout_post *p)
{
	const struct roomtab *t = roomtab_of(lc);
	const struct roomtab_ent *r;

	if (lr == NULL || !fo_peer_active() || t == NULL || t->self == 0)
		return false;
	r = roomtab_find_raw(t, p->room);
	if (r != NULL && !roomtab_homed_here(t, r)) {
		/* Numbered here as the room's home, stored after the room left
		 * this node (its lease ran out, or another took it over): it
		 * fails like the posts that waited for the replica. */
		if (lr->rc_epoch <= lr->rp_epoch)
			drop_tail(lc, lr, r, p->seq);
		p->status = -EAGAIN;
		ctr_inc(lc, CTR_REPL_FAILED);
		fo_post_visible(lc, p);
		return true;
	}
	if (!replicated(lc, t, r))
		return false;
	if (r->replica != lr->rp_node || r->epoch != lr->rp_epoch)
		reset(lc, lr, r);
	if (rq_push(lr, p) != 0)
		return false;		/* no memory: visible on one node only */
	atomic_fetch_add_explicit(&fo_lc(lc)->repl_held, 1, memory_order_relaxed);
	if (p->seq > lr->rp_stored)
		lr->rp_stored = p->seq;
	pump(lc, lr);
	return true;
}

void
fo_repl_got_ack(struct lcore_ctx *lc, uint32_t node, const struct peerframe *f)
{
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), f->room);

	if (lr == NULL || node != lr->rp_node || f->epoch != lr->rp_epoch)
		return;
	if (lr->rp_probing && f->ref != 1)
		return;			/* only the probe's answer counts now */
	if (f->code != PEERFRAME_OK) {
		/* The replica does not take copies from us (yet): its table
		 * lags, or we are not the home any more. */
		ctr_inc(lc, CTR_PEER_REFUSALS_IN);
		lr->rp_probing = true;
		lr->rp_probe_ms = now_ms();
		return;
	}
	lr->rp_ack_ms = now_ms();
	if (lr->rp_probing) {
		lr->rp_probing = false;
		lr->rp_sent = lr->rp_acked = f->seq;
	} else if (f->seq > lr->rp_acked) {
		lr->rp_acked = f->seq;
		if (lr->rp_sent < lr->rp_acked)
			lr->rp_sent = lr->rp_acked;
	}
	release(lc, lr, false);
	pump(lc, lr);
}

/* ---- the replica's side ------------------------------------------------ */

uint64_t
fo_repl_last(struct fo_roomstate *lr)
{
	return lr->rc_loaded && lr->rc_next > 0 ? lr->rc_next - 1 : 0;
}

static void
ack(struct lcore_ctx *lc, uint32_t node, const uint8_t raw[CATALOG_ID_RAW], uint64_t epoch,
    uint64_t seq, unsigned code, bool probe_answer)
{
	struct peerframe f;

	memset(&f, 0, sizeof(f));
	f.ref = probe_answer;
	f.type = PEERFRAME_REPL_ACK;
	memcpy(f.room, raw, PEERFRAME_ROOM_LEN);
	f.epoch = epoch;
	f.seq = seq;
	f.code = (uint16_t)code;
	fo_peer_send(lc, node, &f);
}

void
fo_repl_got(struct lcore_ctx *lc, uint32_t node, const struct peerframe *f)
{
	const struct roomtab *t = roomtab_of(lc);
	const struct roomtab_ent *r = roomtab_find_raw(t, f->room);
	const struct peerframe_post *in = &f->u.post;
	unsigned code = PEERFRAME_OK;
	struct fo_roomstate *lr;
	struct repljob *j;
	size_t ulen;

	if (r == NULL)
		code = PEERFRAME_WRONG_HOME;
	else if (f->epoch < r->epoch)
		code = PEERFRAME_STALE_EPOCH;
	else if (f->epoch == r->epoch && r->node != node)
		code = PEERFRAME_WRONG_HOME;
	else if (roomtab_homed_here(t, r) && f->epoch <= r->epoch)
		code = PEERFRAME_WRONG_HOME;
	lr = code == PEERFRAME_OK ? fo_roomstate_get(fo_lc(lc), f->room) : NULL;
	if (code == PEERFRAME_OK && lr == NULL)
		code = PEERFRAME_OVERLOAD;
	if (code != PEERFRAME_OK) {
		ctr_inc(lc, CTR_REPL_REFUSED);
		ack(lc, node, f->room, f->epoch, 0, code, f->seq == 0);
		return;
	}
	if (!lr->rc_loaded) {
		uint64_t last = 0;

		if (history_last_seq(lcore_db(lc), lr->raw, &last) != 0)
			last = 0;
		lr->rc_next = last + 1;
		lr->rc_durable = last;
		lr->rc_loaded = true;
	}
	if (f->seq == 0 && (lr->rc_epoch == f->epoch || f->ref == 0 || lr->rc_next <= f->ref)) {
		/* A probe: what is durable here. Copies still on their way to
		 * storage are acknowledged when they get there. */
		lr->rc_epoch = f->epoch;
		ack(lc, node, f->room, f->epoch, lr->rc_durable, PEERFRAME_OK, true);
		return;
	}
	if (f->seq != 0 && lr->rc_epoch != f->epoch) {
		/* Copies of a home this replica was not probed by: ask it to
		 * probe first (the answer to a refusal). */
		ctr_inc(lc, CTR_REPL_REFUSED);
		ack(lc, node, f->room, f->epoch, 0, PEERFRAME_OVERLOAD, false);
		return;
	}
	if (f->seq != 0 && f->seq < lr->rc_next)
		return;			/* held already, or on its way */
	ulen = strlen(r->cat->uri);
	j = malloc(sizeof(*j) + in->author_len + 1 + in->body_len + 1 + in->text_len + 1);
	if (j == NULL || ulen >= sizeof(j->room_uri)) {
		free(j);
		ack(lc, node, f->room, f->epoch, 0, PEERFRAME_OVERLOAD, f->seq == 0);
		return;
	}
	j->truncate = f->seq == 0;
	if (j->truncate) {
		/* A new home (or this node restarted): copies from where its
		 * numbering starts are an earlier home's tail that was never
		 * acknowledged: they go, durably, before the answer. */
		j->kind = FANOUT_JOB_REPL;
		j->node = node;
		j->epoch = f->epoch;
		memcpy(j->raw, f->room, CATALOG_ID_RAW);
		j->seq = f->ref;
		j->author = j->body = j->text = j->data;
		j->data[0] = '\0';
		j->author_len = j->body_len = j->text_len = 0;
		memcpy(j->room_uri, r->cat->uri, ulen + 1);
		j->logged = false;
		j->ts_ms = 0;
		lr->rc_epoch = f->epoch;
		lr->rc_next = f->ref;
		if (lr->rc_durable >= f->ref)
			lr->rc_durable = f->ref - 1;
		fo_submit_job(lc, j);
		return;
	}
	j->kind = FANOUT_JOB_REPL;
	j->node = node;
	j->epoch = f->epoch;
	memcpy(j->raw, f->room, CATALOG_ID_RAW);
	j->seq = f->seq;
	j->ts_ms = in->time_ms;
	j->logged = (r->cat->props & CATALOG_PROP_LOGGED) != 0;
	memcpy(j->room_uri, r->cat->uri, ulen + 1);
	j->author = j->data;
	memcpy(j->author, in->author, in->author_len);
	j->author[in->author_len] = '\0';
	j->author_len = in->author_len;
	j->body = j->author + in->author_len + 1;
	memcpy(j->body, in->body, in->body_len);
	j->body[in->body_len] = '\0';
	j->body_len = in->body_len;
	j->text = j->body + in->body_len + 1;
	memcpy(j->text, in->text, in->text_len);
	j->text[in->text_len] = '\0';
	j->text_len = in->text_len;
	lr->rc_next = f->seq + 1;
	fo_submit_job(lc, j);
}

void
fo_repl_fill(void *cookie, struct commit_req *r)
{
	struct repljob *j = cookie;

	r->op = j->truncate ? COMMIT_REPLICA_TRUNCATE : COMMIT_REPLICA;
	r->ev = WAL_EV_CHAT;
	r->logged = j->logged;
	memcpy(r->room, j->raw, CATALOG_ID_RAW);
	r->room_seq = j->seq;
	r->ts_ms = j->ts_ms;
	r->room_uri = j->room_uri;
	r->room_uri_len = strlen(j->room_uri);
	r->user = j->author;
	r->user_len = j->author_len;
	r->body = j->body;
	r->body_len = j->body_len;
	r->content = j->text;
	r->content_len = j->text_len;
	r->home_node = j->node;
}

void
fo_repl_stored(struct lcore_ctx *lc, void *cookie, int status)
{
	struct repljob *j = cookie;
	struct fo_roomstate *lr = fo_roomstate_find(fo_lc(lc), j->raw);

	if (status == 0 && lr != NULL && j->truncate && j->node != 0) {
		ack(lc, j->node, j->raw, j->epoch, lr->rc_durable, PEERFRAME_OK, true);
	} else if (status == 0 && lr != NULL) {
		ctr_inc(lc, CTR_REPL_STORED);
		if (j->seq > lr->rc_durable)
			lr->rc_durable = j->seq;
		ack(lc, j->node, j->raw, j->epoch, lr->rc_durable, PEERFRAME_OK, false);
	} else if (j->truncate) {
		if (status != 0)
			ctr_inc(lc, CTR_STORAGE_FAILED);	/* the home probes again */
	} else if (lr != NULL && j->seq < lr->rc_next) {
		/* Not stored: take it again when the home sends it again. */
		lr->rc_next = j->seq;
		ctr_inc(lc, CTR_STORAGE_FAILED);
	}
	free(j);
}

/* ---- every turn ------------------------------------------------------ */

void
fo_repl_tick(struct lcore_ctx *lc)
{
	struct fanout_lc *fo = fo_lc(lc);
	const struct roomtab *t = roomtab_of(lc);
	uint64_t now = now_ms();

	if (t == NULL || t->self == 0 || now < fo->repl_tick_ms + TICK_MS)
		return;
	fo->repl_tick_ms = now;
	for (uint32_t k = 0; k < fo->rcap; k++) {
		struct fo_roomstate *lr = fo->rooms[k];
		const struct roomtab_ent *r;

		if (lr == NULL)
			continue;
		r = roomtab_find_raw(t, lr->raw);
		if (r == NULL)
			continue;
		if (lr->rq_n == 0 && lr->rp_node == 0)
			continue;
		if (roomtab_homed_here(t, r) && r->epoch == lr->rp_epoch &&
		    r->replica == ROOMTAB_NODE_NONE &&
		    lcore_conf(lc)->array_alone == ENGINE_ALONE_UNREPLICATED) {
			/* Alone, and told to go on unreplicated: what waited for
			 * the lost replica is durable here; it goes out. */
			lr->rp_acked = lr->rp_stored;
			release(lc, lr, false);
			lr->rp_node = 0;
			lr->rp_epoch = 0;
			continue;
		}
		if (!replicated(lc, t, r) || r->epoch != lr->rp_epoch) {
			/* The room left this node (or its epoch changed): what
			 * waits fails, is dropped from history, and the state
			 * starts over. */
			if (lr->rq_n > 0 && !roomtab_homed_here(t, r) && lr->rc_epoch <= lr->rp_epoch)
				drop_tail(lc, lr, r, rq_at(lr, 0)->seq);
			release(lc, lr, true);
			lr->rp_node = 0;
			lr->rp_epoch = 0;
			continue;
		}
		if (r->replica != lr->rp_node) {
			reset(lc, lr, r);
			continue;
		}
		if (lr->rp_probing) {
			if (now >= lr->rp_probe_ms + PROBE_MS)
				probe(lc, lr);
			continue;
		}
		if (lr->rp_sent > lr->rp_acked && now >= lr->rp_ack_ms + SILENT_MS) {
			probe(lc, lr);
			continue;
		}
		pump(lc, lr);
	}
}

void
fo_repl_fini(struct fanout_lc *fo)
{
	for (uint32_t k = 0; k < fo->rcap; k++) {
		struct fo_roomstate *lr = fo->rooms[k];

		if (lr == NULL)
			continue;
		for (uint32_t i = 0; i < lr->rq_n; i++)
			fanout_post_put(rq_at(lr, i));
		free(lr->rq);
		lr->rq = NULL;
		lr->rq_n = 0;
	}
}
