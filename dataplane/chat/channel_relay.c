/* The Channel commands that go through the fan-out (fanout.h): join and
 * bjoin, part, and posts (grpchat), with what the fan-out calls back when
 * the room's home answered. See channel.c for the rest of the service. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/chat/channel_int.h"
#include "dataplane/chat/chat_ctr.h"
#include "dataplane/chat/fanout.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/session/dialog.h"
#include "dataplane/sip/sipmsg.h"
#include "dataplane/sip/sipout.h"
#include "dataplane/xccos/xccos.h"
#include "storage/history.h"

#define BJOIN_MAX		256	/* chanids in one bjoin */

/* ---- Channel: join, bjoin, part --------------------------------------- */

static void
join(struct cmdctx *x, bool batch)
{
	const struct roomtab *t = roomtab_of(x->lc);
	const struct roomtab_ent *ok[BJOIN_MAX];
	struct fanout_denied den[BJOIN_MAX];
	unsigned nok = 0, nden = 0, total = 0;
	struct fanout_joinbatch *jb;

	if (x->x->data == NULL) {
		channel_reply_code(x, 400);
		return;
	}
	for (xmlNodePtr n = xccos_child(x->x->data, "chanid"); n != NULL;
	     n = xccos_next(n, "chanid")) {
		const char *value = xccos_attr(n, "value"), *domain = xccos_attr(n, "domain");
		const struct roomtab_ent *r;
		int code = 0;

		if (++total > BJOIN_MAX || (!batch && total > 1))
			break;
		if (value == NULL)
			value = "";
		if (domain == NULL)
			domain = "";
		r = roomtab_find_id(t, value, strlen(value));
		if (r == NULL)
			code = 404;
		else if (!roomtab_may_join(r, x->c->aor))
			code = 403;
		else if (x->d->nrooms + x->d->joins_pending + nok >=
			 lcore_conf(x->lc)->rooms_per_dialog)
			code = 413;
		if (code == 0) {
			unsigned k;

			for (k = 0; k < nok; k++)	/* the same room twice */
				if (ok[k] == r)
					break;
			if (k == nok)
				ok[nok++] = r;
			continue;
		}
		snprintf(den[nden].id, sizeof(den[nden].id), "%s", value);
		snprintf(den[nden].domain, sizeof(den[nden].domain), "%s", domain);
		den[nden++].code = code;
	}
	if (total == 0 || total > BJOIN_MAX || (!batch && total > 1)) {
		channel_reply_code(x, total == 0 ? 400 : 413);
		return;
	}
	if (!batch && nden == 1) {
		channel_reply_code(x, den[0].code);
		return;
	}
	jb = fanout_joinbatch_new(nok, nden);
	if (jb == NULL) {
		channel_reply_code(x, 500);
		return;
	}
	jb->conn = x->c;
	jb->uid = x->d->uid;
	jb->batch = batch;
	snprintf(jb->seqid, sizeof(jb->seqid), "%s", x->x->seqid);
	snprintf(jb->envid, sizeof(jb->envid), "%s", x->x->envid);
	jb->n = nok;
	for (unsigned i = 0; i < nok; i++) {
		struct fanout_joinreq *jr = &jb->reqs[i];

		memcpy(jr->raw, ok[i]->raw, CATALOG_ID_RAW);
		jr->manager = roomtab_is_manager(ok[i], x->c->aor);
		snprintf(jr->uri, sizeof(jr->uri), "sip:%s", x->c->aor);
		snprintf(jr->room_uri, sizeof(jr->room_uri), "%s", ok[i]->cat->uri);
	}
	jb->ndenied = nden;
	memcpy(jb->denied, den, nden * sizeof(den[0]));
	if (fanout_join(x->lc, jb) != 0) {
		fanout_joinbatch_free(jb);
		channel_reply_code(x, 503);
	}
}

void
channel_cmd_join(struct cmdctx *x)
{
	join(x, false);
}

void
channel_cmd_bjoin(struct cmdctx *x)
{
	join(x, true);
}

/* Index of <uri> in the reply's uib table, adding it when new. */
static unsigned
uib_index(char (*tab)[160], unsigned *n, unsigned cap, const char *uri)
{
	for (unsigned i = 0; i < *n; i++)
		if (roomtab_user_eq(tab[i], uri))
			return i;
	if (*n == cap)
		return cap;
	snprintf(tab[*n], 160, "%s", uri);
	return (*n)++;
}

static void
put_aib(struct xbuf *b, const char *key, const struct fanout_joinreq *jr, bool managers,
	char (*tab)[160], unsigned *ntab, unsigned cap)
{
	bool first = true;

	for (uint32_t i = 0; i < jr->nsnap; i++) {
		unsigned id;

		if (jr->snap[i].manager != managers)
			continue;
		id = uib_index(tab, ntab, cap, jr->snap[i].uri);
		if (id == cap)
			continue;
		if (first)
			xbuf_printf(b, "<aib key=\"%s\" value=\"%u", key, id);
		else
			xbuf_printf(b, ",%u", id);
		first = false;
	}
	if (!first)
		xbuf_str(b, "\"/>");
}

/* The fan-out's join_done: every home answered (fanout_ops). */
void
channel_join_done(struct lcore_ctx *lc, struct fanout_joinbatch *jb)
{
	struct conn *c = jb->conn;
	struct dialog *d = conn_usable(c) ? dialog_by_uid(c, jb->uid) : NULL;
	struct xccos_msg fake = { 0 };
	struct cmdctx x = { .c = c, .d = d, .lc = lc, .x = &fake,
			    .rpl = jb->batch ? "bjoin" : "join" };
	struct xbuf rooms, b;
	char (*tab)[160];
	unsigned ntab = 0, cap = 0, good = 0;

	/* The dialog went away while the homes answered: undo the joins. */
	for (unsigned i = 0; i < jb->n; i++) {
		struct fanout_joinreq *jr = &jb->reqs[i];

		if (jr->status != 200)
			continue;
		if (d == NULL || roomtab_find_raw(roomtab_of(lc), jr->raw) == NULL ||
		    fanout_member_add(lc, d, jr->raw) != 0) {
			fanout_unjoin(lc, jr);
			jr->status = d == NULL ? 410 : 500;
			continue;
		}
		cap += jr->nsnap;
		good++;
	}
	if (d == NULL)
		return;
	snprintf(fake.seqid, sizeof(fake.seqid), "%s", jb->seqid);
	snprintf(fake.envid, sizeof(fake.envid), "%s", jb->envid);
	if (!jb->batch && good == 0) {
		channel_reply_code(&x, jb->n ? jb->reqs[0].status : 500);
		return;
	}
	tab = calloc(cap ? cap : 1, sizeof(*tab));
	if (tab == NULL) {
		channel_reply_code(&x, 500);
		return;
	}
	/* The chanibs first, collecting the shared uib table; then the reply
	 * with the table in front, as clients read it (xccos.md b.6.4). */
	xbuf_init(&rooms, 0);
	for (unsigned i = 0; i < jb->n; i++) {
		const struct fanout_joinreq *jr = &jb->reqs[i];
		const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), jr->raw);
		char id[CATALOG_ID_LEN + 1], domain[sizeof(lcore_conf(lc)->domain)];

		if (jr->status == 200 && r != NULL) {
			channel_put_chanib(lc, &rooms, r, true);
			put_aib(&rooms, "3984", jr, false, tab, &ntab, cap);
			put_aib(&rooms, "12276", jr, true, tab, &ntab, cap);
			xbuf_str(&rooms, "</chanib>");
			continue;
		}
		catalog_id_unpack(jr->raw, id);
		snprintf(domain, sizeof(domain), "%s", lcore_conf(lc)->domain);
		xbuf_str(&rooms, "<fib key=\"OPERATION_FAILED\"");
		xbuf_attr(&rooms, "value", id);
		xbuf_attr(&rooms, "domain", domain);
		xbuf_str(&rooms, "/>");
	}
	for (unsigned i = 0; i < jb->ndenied; i++) {
		xbuf_str(&rooms, "<fib key=\"OPERATION_FAILED\"");
		xbuf_attr(&rooms, "value", jb->denied[i].id);
		xbuf_attr(&rooms, "domain", jb->denied[i].domain);
		xbuf_str(&rooms, "/>");
	}
	channel_begin_reply(&x, &b, 200);
	for (unsigned i = 0; i < ntab; i++) {
		xbuf_printf(&b, "<uib id=\"%u\"", i);
		xbuf_attr(&b, "uri", tab[i]);
		xbuf_str(&b, "/>");
	}
	xbuf_raw(&b, rooms.p, rooms.len);
	if (!xbuf_ok(&rooms))
		b.failed = true;
	channel_end_reply(&x, &b);
	xbuf_free(&rooms);
	free(tab);
}

void
channel_cmd_part(struct cmdctx *x)
{
	const struct roomtab_ent *r = channel_room_of_chanib(x);
	struct xbuf b;

	if (r == NULL) {
		channel_reply_code(x, x->x->data && xccos_child(x->x->data, "chanib") ? 404 : 400);
		return;
	}
	/* Leaving a room one is not in is not an error: the client's view
	 * (a window after a server restart) closes either way. */
	if (fanout_is_joined(x->d, r->raw))
		fanout_part(x->lc, x->d, r->raw);
	channel_begin_reply(x, &b, 200);
	xbuf_str(&b, "<chanib");
	xbuf_attr(&b, "uri", r->cat->uri);
	xbuf_str(&b, "/>");
	channel_end_reply(x, &b);
}

/* ---- posts ------------------------------------------------------------ */

/* The post is checked here, on the author's lcore; then its room's home
 * sequences it and the storage thread makes it durable. The SIP 200 waits
 * for that (post_done). 0 when the post is on its way, or the
 * xccos code it is refused with. */
static int
grpchat(struct cmdctx *x)
{
	const struct sipmsg *m = x->m;
	const struct xccos_msg *g = x->x;
	const struct roomtab_ent *r;
	struct fanout_post *p;
	struct sipout o;
	char resp[2048], *s;
	size_t need, alen, ulen, elen;
	ssize_t rlen;

	r = g->chan_uri ? roomtab_find_uri(roomtab_of(x->lc), g->chan_uri, strlen(g->chan_uri)) : NULL;
	if (r == NULL)
		return g->chan_uri ? 404 : 400;
	if (g->author == NULL || !roomtab_user_eq(g->author, x->c->aor)) {
		LOG(NOTICE, CHANNEL, "%s: %s posted as %s: refused", x->c->peer_str, x->c->aor,
		    g->author ? g->author : "(nobody)");
		return 403;
	}
	/* Present, and still allowed in: a member removed from a closed room
	 * (control socket) cannot post any more. */
	if (!fanout_is_joined(x->d, r->raw) || !roomtab_may_join(r, x->c->aor))
		return 403;
	if (g->text_len > lcore_conf(x->lc)->chat_max || g->inner_len > HISTORY_BODY_MAX)
		return 413;
	/* In an array, a room whose home is not known yet: retry. */
	if (r->node == ROOMTAB_NODE_NONE && roomtab_of(x->lc)->self != 0)
		return 503;
	sipout_init(&o, resp, sizeof(resp));
	sipout_response_start(&o, m, 200, "OK", NULL);
	sipout_cstr(&o, "Server: Parley/0.1\r\n");
	sipout_end(&o, NULL, NULL, 0);
	rlen = sipout_finish(&o);
	if (rlen < 0)
		return 400;
	/* The author as a canonical SIP URI, the rest as sent. */
	alen = strlen(x->c->aor) + 4;
	ulen = strlen(r->cat->uri);
	elen = strlen(g->extra_attrs ? g->extra_attrs : "");
	need = (size_t)rlen + alen + 1 + ulen + 1 + g->inner_len + 1 + g->text_len + 1 + elen + 1;
	p = fanout_post_alloc(need);
	if (p == NULL)
		return 500;
	s = (char *)(p + 1);
	p->resp = memcpy(s, resp, rlen);
	p->resp_len = (size_t)rlen;
	s += rlen;
	p->author = s;
	s += sprintf(s, "sip:%s", x->c->aor) + 1;
	p->room_uri = memcpy(s, r->cat->uri, ulen + 1);
	s += ulen + 1;
	p->inner = memcpy(s, g->inner, g->inner_len);
	s[g->inner_len] = '\0';
	s += g->inner_len + 1;
	p->inner_len = g->inner_len;
	p->text = memcpy(s, g->text, g->text_len);
	s[g->text_len] = '\0';
	s += g->text_len + 1;
	p->text_len = g->text_len;
	p->extra_attrs = memcpy(s, g->extra_attrs ? g->extra_attrs : "", elen + 1);
	p->used = need;
	memcpy(p->room, r->raw, CATALOG_ID_RAW);
	p->logged = (r->cat->props & CATALOG_PROP_LOGGED) != 0;
	p->conn = x->c;
	p->dialog_uid = x->d->uid;
	snprintf(p->seqid, sizeof(p->seqid), "%s", g->seqid);
	snprintf(p->envid, sizeof(p->envid), "%s", g->envid);
	/* The home is far behind: refused, like a full compliance log. */
	if (fanout_post(x->lc, r, p) != 0) {
		fanout_post_put(p);
		return 503;
	}
	ctr_inc(x->lc, CTR_POSTS_IN);
	return 0;
}

/* The fan-out's post_done: the post is durable, or was refused. */
void
channel_post_done(struct lcore_ctx *lc, struct fanout_post *p)
{
	struct conn *c = p->conn;
	struct dialog *d;
	struct xccos_msg fake = { 0 };
	struct cmdctx x = { .c = c, .lc = lc, .x = &fake, .rpl = "grpchat" };

	if (!conn_usable(c))
		return;
	d = dialog_by_uid(c, p->dialog_uid);
	/* The 200 goes out even when the dialog ended meanwhile: the INFO was
	 * a transaction of its own and the post is stored. */
	if (p->status == 0) {
		ctr_sip_response(lc, 200);
		conn_send(c, p->resp, p->resp_len);
		return;
	}
	ctr_sip_response(lc, 200);
	conn_send(c, p->resp, p->resp_len);
	if (d == NULL)
		return;
	x.d = d;
	snprintf(fake.seqid, sizeof(fake.seqid), "%s", p->seqid);
	snprintf(fake.envid, sizeof(fake.envid), "%s", p->envid);
	ctr_inc(lc, CTR_POSTS_REFUSED);
	/* Retryable: a full compliance log, or (in an array) a room home that
	 * is unknown, unreachable or moved; the post was not stored, or was
	 * and reaches the author once as any member. */
	channel_reply_code(&x, p->status == -ENOSPC || p->status == -EAGAIN ||
			   p->status == -ESTALE ? 503 : p->status == -EACCES ? 403 :
			   p->status == -EMSGSIZE ? 413 : 500);
}

/* A post: its SIP 200 waits until it is durable (post_done), or goes at
 * once with an error reply when it is refused here. */
void
channel_cmd_grpchat(struct cmdctx *x)
{
	int code = grpchat(x);

	if (code != 0)
		channel_refuse(x, code);
}
