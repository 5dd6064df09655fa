/* Fake lcores for the fan-out tests: an engine with NL lcores whose rings
 * sit on plain memory (no EAL, no hugepages), a real storage thread on a
 * temporary database, rooms from the catalog, and one fake connection with
 * one Channel dialog per member. The fan-out's callbacks (fanout_ops) are
 * the test's: they record what each member was sent, what each author was
 * answered and make joins local, as channel.c would.
 *
 * The test thread plays the lcores in turn (fx_turn, fx_pump), or the
 * threaded test runs one thread per lcore. Header-only: one test file. */
#ifndef PARLEY_TESTS_FANOUT_FIXTURE_H
#define PARLEY_TESTS_FANOUT_FIXTURE_H

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/chat/fanout.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/chat/chat_ctr.h"
#include "dataplane/engine/engine_int.h"
#include "dataplane/session/dialog.h"
#include "storage/catalog.h"
#include "storage/commit.h"
#include "storage/db.h"
#include "storage/history.h"
#include "../../storage/tmpdb.h"

#define NL		3		/* lcores */
#define MEMBERS_MAX	8
#define LOG_MAX		4096		/* posts one member may record */
#define LABEL_MAX	24

/* One member: a connection with one Channel dialog, on lcore <lcore>. */
struct member {
	struct conn	conn;
	struct dialog	dlg;
	uint32_t	lcore;
	/* What it was sent, written on its lcore only. */
	char		(*log)[LABEL_MAX];	/* post labels, in arrival order */
	unsigned	nlog;
	unsigned	notices;
	char		last_notice[512];
	/* A slow reader: sends fail once it got <slow_after> posts; the
	 * test then drops it as the connection loss would (fx_drop_slow). */
	unsigned	slow_after;
	bool		slow;
	bool		dropped;
	bool		joined;
};

static struct {
	char			dir[256];
	struct db		*db;
	struct commit		*commit;
	struct engine		*e;
	struct roomtab		*rooms;
	struct member		m[MEMBERS_MAX];
	unsigned		nm;
	_Atomic unsigned	delivered;	/* posts written to members */
	_Atomic unsigned	done;		/* post_done callbacks */
	_Atomic unsigned	done_failed;	/* ... with a status */
	_Atomic unsigned	early;		/* deliveries of a post not yet durable */
	_Atomic unsigned	joined;		/* joins answered 200 */
} fx;

/* ---- the callbacks ------------------------------------------------------ */

static struct member *
member_of(const struct dialog *d)
{
	for (unsigned i = 0; i < fx.nm; i++)
		if (&fx.m[i].dlg == d)
			return &fx.m[i];
	return NULL;
}

/* "<xccos ver="1" envid="<wal seq>" ...>...<chat>label</chat>..." */
static int
fx_send(struct lcore_ctx *lc, struct dialog *d, const char *body, size_t len)
{
	struct member *mb = member_of(d);
	const char *chat, *end;
	uint64_t wal_seq;

	cr_assert_not_null(mb);
	cr_assert_eq(mb->lcore, lc->pub.idx, "a member is written on its own lcore");
	if (strstr(body, "<grpchat") == NULL) {
		mb->notices++;
		snprintf(mb->last_notice, sizeof(mb->last_notice), "%.*s", (int)len, body);
		return 0;
	}
	if (mb->slow)
		return -EPIPE;
	/* Durable before visible: the post carries the compliance seq the
	 * storage thread gave it (from 1), and the group that holds it is
	 * written. */
	wal_seq = strtoull(strstr(body, "envid=\"") + 7, NULL, 10);
	if (wal_seq == 0 || wal_seq > commit_durable_seq(fx.commit))
		atomic_fetch_add(&fx.early, 1);
	chat = strstr(body, "<chat>");
	end = chat ? strstr(chat, "</chat>") : NULL;
	cr_assert_not_null(end);
	cr_assert_lt(mb->nlog, LOG_MAX);
	snprintf(mb->log[mb->nlog++], LABEL_MAX, "%.*s", (int)(end - chat - 6), chat + 6);
	atomic_fetch_add(&fx.delivered, 1);
	if (mb->slow_after != 0 && mb->nlog >= mb->slow_after)
		mb->slow = true;	/* its output queue is full from now on */
	return 0;
}

static void
fx_post_done(struct lcore_ctx *lc, struct fanout_post *p)
{
	cr_assert_eq(p->origin, lc->pub.idx, "the author is answered on its lcore");
	if (p->status != 0)
		atomic_fetch_add(&fx.done_failed, 1);
	atomic_fetch_add(&fx.done, 1);
}

static void
fx_join_done(struct lcore_ctx *lc, struct fanout_joinbatch *b)
{
	struct dialog *d = dialog_by_uid(b->conn, b->uid);

	for (unsigned i = 0; i < b->n; i++) {
		cr_assert_eq(b->reqs[i].status, 200);
		cr_assert_eq(fanout_member_add(lc, d, b->reqs[i].raw), 0);
		member_of(d)->joined = true;
		atomic_fetch_add(&fx.joined, 1);
	}
}

static const struct fanout_ops fx_ops = {
	.post_done = fx_post_done,
	.join_done = fx_join_done,
	.send = fx_send,
};

/* ---- set-up ------------------------------------------------------------- */

static struct lcore_ctx *
lc_of(uint32_t i)
{
	return fx.e->lcores[i];
}

/* The home roomtab.c gives a room: FNV-1a over the raw id, modulo the
 * lcores (checked against the table below). */
static uint32_t
home_of(const uint8_t raw[CATALOG_ID_RAW])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < CATALOG_ID_RAW; i++)
		h = (h ^ raw[i]) * 16777619u;
	return h % NL;
}

/* <n> rooms, room i homed on lcore <homes>[i], as the lcores' room table;
 * their entries in <out>. */
static void
fx_rooms(unsigned n, const uint32_t *homes, const struct roomtab_ent **out)
{
	struct catalog_room **v = calloc(n, sizeof(*v));
	uint8_t raw[8][CATALOG_ID_RAW];

	cr_assert(v != NULL && n <= 8);
	for (unsigned i = 0; i < n; i++)
		for (;;) {
			v[i] = catalog_room_new("example.com", "a room");
			cr_assert_not_null(v[i]);
			cr_assert_eq(catalog_id_pack(v[i]->id, raw[i]), 0);
			if (home_of(raw[i]) == homes[i])
				break;
			catalog_room_free(v[i]);
		}
	fx.rooms = roomtab_build(v, n, NL);
	cr_assert_not_null(fx.rooms);
	for (unsigned i = 0; i < n; i++) {
		out[i] = roomtab_find_raw(fx.rooms, raw[i]);
		cr_assert_eq(out[i]->home, homes[i]);
	}
	for (uint32_t l = 0; l < NL; l++) {
		roomtab_get(fx.rooms);
		lc_of(l)->pub.snap = fx.rooms;
	}
}

static struct member *
fx_member(uint32_t lcore, const char *user)
{
	struct member *mb = &fx.m[fx.nm++];
	struct lcore_ctx *lc = lc_of(lcore);

	cr_assert_leq(fx.nm, MEMBERS_MAX);
	memset(mb, 0, sizeof(*mb));
	mb->lcore = lcore;
	mb->log = calloc(LOG_MAX, LABEL_MAX);
	cr_assert_not_null(mb->log);
	mb->conn.lc = lc;
	mb->conn.state = CONN_OPEN;
	mb->conn.id = fx.nm;
	snprintf(mb->conn.aor, sizeof(mb->conn.aor), "%s@example.com", user);
	mb->conn.dialogs = &mb->dlg;
	mb->conn.ndialogs = 1;
	mb->dlg.conn = &mb->conn;
	mb->dlg.svc = DIALOG_CHANNEL;
	mb->dlg.uid = ((uint64_t)lcore << 56) | ++lc->pub.proto_seq;
	return mb;
}

static void
fx_setup(uint32_t ring_size)
{
	struct commit_config cc = { .nproducers = NL, .depth = 256,
				    .durability_unsafe_no_fsync = false };
	char err[256] = "";
	int rc = 0;

	memset(&fx, 0, sizeof(fx));
	tmpdb_make(fx.dir, sizeof(fx.dir));
	fx.db = db_open(fx.dir, NULL, err, sizeof(err));
	cr_assert_not_null(fx.db, "%s", err);
	fx.commit = commit_create(fx.db, &cc, &rc);
	cr_assert_not_null(fx.commit, "%d", rc);
	fx.e = calloc(1, sizeof(*fx.e) + NL * sizeof(fx.e->lcores[0]));
	cr_assert_not_null(fx.e);
	fx.e->conf.nlcores = NL;
	fx.e->conf.ring_size = ring_size;
	fx.e->db = fx.db;
	fx.e->commit = fx.commit;
	for (uint32_t i = 0; i < NL; i++) {
		struct lcore_ctx *lc = aligned_alloc(64, (sizeof(*lc) + 63) & ~(size_t)63);

		cr_assert_not_null(lc);
		memset(lc, 0, sizeof(*lc));
		lc->e = lc->pub.e = fx.e;
		lc->pub.conf = &fx.e->conf;
		lc->pub.idx = i;
		lc->wake_fd = -1;
		lc->pub.now_real_ms = 1700000000000ull;
		fx.e->lcores[i] = lc;
	}
	fanout_register(&fx_ops);
	rc = fanout_init(fx.e, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
}

static void
fx_teardown(void)
{
	if (fx.e == NULL)
		return;
	fanout_quiesce(fx.e, 2000);
	commit_stop(fx.commit);
	fanout_fini(fx.e);
	for (uint32_t i = 0; i < NL; i++) {
		roomtab_put(fx.e->lcores[i]->pub.snap);
		free(fx.e->lcores[i]);
	}
	roomtab_put(fx.rooms);
	free(fx.e);
	commit_destroy(fx.commit);
	db_close(fx.db);
	tmpdb_remove(fx.dir);
	for (unsigned i = 0; i < fx.nm; i++)
		free(fx.m[i].log);
	memset(&fx, 0, sizeof(fx));
}

/* ---- driving the lcores ---------------------------------------------------- */

/* One loop turn of lcore <i>: what arrived, then what it staged. */
static unsigned
fx_turn(uint32_t i)
{
	unsigned work = fanout_poll(lc_of(i));

	fanout_flush(lc_of(i));
	return work;
}

/* Members whose sends failed leave the room as a lost connection does
 * (the dialog closes: fanout_part for each of its rooms). On the member's
 * own lcore, between turns. */
static void
fx_drop_slow(void)
{
	for (unsigned i = 0; i < fx.nm; i++) {
		struct member *mb = &fx.m[i];

		if (!mb->slow || mb->dropped)
			continue;
		while (mb->dlg.nrooms > 0) {
			uint8_t raw[CATALOG_ID_RAW];

			memcpy(raw, mb->dlg.rooms[mb->dlg.nrooms - 1], CATALOG_ID_RAW);
			fanout_part(lc_of(mb->lcore), &mb->dlg, raw);
		}
		mb->conn.state = CONN_CLOSING;
		mb->dropped = true;
	}
}

/* Turns of every lcore until none has anything in flight, members that
 * stopped reading dropped between turns (as conn_reap would). */
static void
fx_pump(void)
{
	for (int spin = 0; spin < 1000000; spin++) {
		bool settled = true;

		for (uint32_t i = 0; i < NL; i++) {
			fx_turn(i);
			settled &= fanout_settled(lc_of(i));
		}
		fx_drop_slow();
		if (settled)
			return;
		if (spin > 100)
			sched_yield();
	}
	cr_assert_fail("the fan-out did not settle");
}

/* Member <mb> joins room <r> (as cmd:join does), and the lcores run until
 * the join completed. */
static void
fx_join(struct member *mb, const struct roomtab_ent *r)
{
	struct fanout_joinbatch *b = fanout_joinbatch_new(1, 0);

	cr_assert_not_null(b);
	b->conn = &mb->conn;
	b->uid = mb->dlg.uid;
	b->n = 1;
	memcpy(b->reqs[0].raw, r->raw, CATALOG_ID_RAW);
	snprintf(b->reqs[0].uri, sizeof(b->reqs[0].uri), "sip:%s", mb->conn.aor);
	snprintf(b->reqs[0].room_uri, sizeof(b->reqs[0].room_uri), "%s", r->cat->uri);
	cr_assert_eq(fanout_join(lc_of(mb->lcore), b), 0);
	fx_pump();
	cr_assert(mb->joined);
}

/* A post by <mb> to <r> with the text <label> (as channel.c builds one).
 * 0, or -ENOBUFS when the fan-out refused it. */
static int
fx_post(struct member *mb, const struct roomtab_ent *r, const char *label)
{
	char inner[64], author[160];
	size_t ilen, alen, ulen, llen = strlen(label), need;
	struct fanout_post *p;
	char *s;
	int rc;

	ilen = (size_t)snprintf(inner, sizeof(inner), "<chat>%s</chat>", label);
	alen = (size_t)snprintf(author, sizeof(author), "sip:%s", mb->conn.aor);
	ulen = strlen(r->cat->uri);
	need = alen + 1 + ulen + 1 + ilen + 1 + llen + 1 + 1;
	p = fanout_post_alloc(need);
	cr_assert_not_null(p);
	s = (char *)(p + 1);
	p->author = memcpy(s, author, alen + 1);
	s += alen + 1;
	p->room_uri = memcpy(s, r->cat->uri, ulen + 1);
	s += ulen + 1;
	p->inner = memcpy(s, inner, ilen + 1);
	p->inner_len = ilen;
	s += ilen + 1;
	p->text = memcpy(s, label, llen + 1);
	p->text_len = llen;
	s += llen + 1;
	p->extra_attrs = s;
	*s = '\0';
	p->used = need;
	memcpy(p->room, r->raw, CATALOG_ID_RAW);
	p->logged = true;
	p->ts_100ns = 17000000000000000ull;
	p->conn = &mb->conn;
	p->dialog_uid = mb->dlg.uid;
	rc = fanout_post(lc_of(mb->lcore), r, p);
	if (rc != 0)
		fanout_post_put(p);
	return rc;
}

#endif
