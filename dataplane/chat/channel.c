/* The Lookup and Channel services: XCCOS commands carried in INFO on their
 * INVITE dialogs (shared/protocol/xccos.md §a.1, §b).
 *
 * Every client INFO gets exactly one SIP 200 (xccos.md a.2); what the
 * command produced goes back as a separate server INFO on the same dialog.
 * A post (grpchat) is the exception in timing only: its 200 waits until the
 * post is durable, so a client that saw the 200 knows the post cannot be
 * lost (a refused post gets its 200 at once, with an error reply).
 *
 * Errors are XCCOS replies with the codes of §b.8, never SIP errors: those
 * would make pidgin-sipe report undelivered messages or drop the session. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dataplane/base/clock.h"
#include "dataplane/base/log.h"
#include "dataplane/chat/channel.h"
#include "dataplane/session/dialog.h"
#include "dataplane/chat/fanout.h"
#include "dataplane/chat/ftoken.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/chat/rooms.h"
#include "dataplane/sip/sipmsg.h"
#include "dataplane/sip/sipout.h"
#include "dataplane/xccos/xccos.h"
#include "storage/history.h"
#include "storage/prefs.h"
#include "storage/wal.h"

#define XCCOS_DEPTH_MAX		32
#define BJOIN_MAX		256	/* chanids in one bjoin */
/* getservinfo: the root category and the catalog's version, fixed ids. */
#define ROOT_CATEGORY_ID	"6a1d3c5e-0000-4000-8000-000000000001"
#define DB_VERSION_ID		"3ea3a5a8-ef36-46cf-898f-7a5133931d63"

struct cmdctx {
	struct conn		*c;
	struct dialog		*d;
	struct lcore_ctx	*lc;
	const struct xccos_msg	*x;
	const char		*rpl;	/* reply name, usually the command's */
};

/* ---- replies ---------------------------------------------------------- */

static uint64_t
next_envid(struct dialog *d)
{
	return d->envid++;
}

static void
send_doc(struct conn *c, struct dialog *d, struct xbuf *b)
{
	if (!xbuf_ok(b)) {
		LOG(ERR, CHANNEL, "%s: reply to %s too large or out of memory", c->peer_str, c->aor);
		return;
	}
	if (dialog_send_info(c, d, b->p, b->len) != 0)
		LOG(DEBUG, CHANNEL, "%s: reply not sent (connection closing)", c->peer_str);
}

/* A reply with no data: errors, and the commands that only acknowledge. */
static void
count_result(struct lcore_ctx *lc, int code)
{
	static const int codes[] = { 200, 400, 403, 404, 413, 500, 501, 503 };

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i] == code) {
			ctr_inc(lc, (enum ctr_id)(CTR_XRES_200 + i));
			return;
		}
	ctr_inc(lc, CTR_XRES_OTHER);
}

/* Commands by id, in the order of the CTR_XCMD_* counters. */
static const char *const xcmd_names[] = {
	"requri", "getserverinfo", "chansrch", "join", "bjoin", "part", "bccontext", "getinv",
	"getpref", "setpref", "nodespermcreatechild", "getfutok", "getfdtok", "grpchat",
};

static void
count_command(struct lcore_ctx *lc, const char *name)
{
	for (size_t i = 0; i < sizeof(xcmd_names) / sizeof(xcmd_names[0]); i++)
		if (strcmp(xcmd_names[i], name) == 0) {
			ctr_inc(lc, (enum ctr_id)(CTR_XCMD_REQURI + i));
			return;
		}
	ctr_inc(lc, CTR_XCMD_OTHER);
}

static void
reply_code(struct cmdctx *x, int code)
{
	count_result(x->lc, code);
	struct xbuf b;

	if (code != 200)
		ctr_inc(x->lc, CTR_XCCOS_ERRORS);
	xbuf_init(&b, 0);
	xccos_begin(&b, next_envid(x->d));
	xccos_rpl_begin(&b, x->rpl, x->x->seqid, x->x->envid, code);
	xccos_rpl_end(&b);
	xccos_end(&b);
	send_doc(x->c, x->d, &b);
	xbuf_free(&b);
}

static void
begin_reply(struct cmdctx *x, struct xbuf *b, int code)
{
	count_result(x->lc, code);
	xbuf_init(b, 0);
	xccos_begin(b, next_envid(x->d));
	xccos_rpl_begin(b, x->rpl, x->x->seqid, x->x->envid, code);
}

static void
end_reply(struct cmdctx *x, struct xbuf *b)
{
	xccos_rpl_end(b);
	xccos_end(b);
	send_doc(x->c, x->d, b);
	xbuf_free(b);
}

/* <chanib ...> with info and prop children; left open when <open>. */
static void
put_chanib(struct lcore_ctx *lc, struct xbuf *b, const struct room *r, bool open)
{
	const struct catalog_room *cr = r->cat;

	xbuf_str(b, "<chanib");
	xbuf_attr(b, "uri", cr->uri);
	xbuf_attr(b, "name", cr->name);
	xbuf_attr(b, "description", cr->description ? cr->description : "");
	xbuf_attr(b, "topic", cr->topic ? cr->topic : "");
	xbuf_printf(b, "><info id=\"urn:parlano:ma:info:ucnt\">%u</info>",
		    fanout_present_count(lc->e, r->raw));
	/* The misspelling is what clients match (xccos.md b.5). */
	xbuf_printf(b, "<info id=\"urn:parlano:ma:info:visibilty\">%s</info>",
		    cr->privacy == CATALOG_OPEN ? "public" : "private");
	xbuf_printf(b, "<prop id=\"urn:parlano:ma:prop:filepost\">%s</prop>"
		    "<prop id=\"urn:parlano:ma:prop:invite\">%s</prop>"
		    "<prop id=\"urn:parlano:ma:prop:logged\">%s</prop>",
		    cr->props & CATALOG_PROP_FILEPOST ? "true" : "false",
		    cr->props & CATALOG_PROP_INVITE ? "true" : "false",
		    cr->props & CATALOG_PROP_LOGGED ? "true" : "false");
	if (!open)
		xbuf_str(b, "</chanib>");
}

/* ---- Lookup ----------------------------------------------------------- */

static void
cmd_requri(struct cmdctx *x)
{
	struct xbuf b;
	char uri[128];

	dialog_service_uri(&x->lc->e->conf, DIALOG_CHANNEL, uri, sizeof(uri));
	begin_reply(x, &b, 200);
	xbuf_str(&b, "<uib");
	xbuf_attr(&b, "uri", uri);
	xbuf_str(&b, "/>");
	end_reply(x, &b);
}

/* ---- Channel: server info, search ------------------------------------- */

static void
cmd_getserverinfo(struct cmdctx *x)
{
	const struct engine_conf *cf = &x->lc->e->conf;
	struct xbuf b;
	char ts[XCCOS_TS_LEN], root[320];

	xccos_ts_format(clock_real_100ns(), ts);
	snprintf(root, sizeof(root), "ma-cat://%s/%s", cf->domain, ROOT_CATEGORY_ID);
	begin_reply(x, &b, 200);
	xbuf_str(&b, "<sib infoType=\"123\"");
	xbuf_attr(&b, "serverTime", ts);
	xbuf_printf(&b, " searchLimit=\"%u\" messageSizeLimit=\"%u\" storySizeLimit=\"%u\"",
		    cf->search_limit, cf->chat_max, cf->story_max);
	xbuf_attr(&b, "rootUri", root);
	xbuf_attr(&b, "dbVersion", DB_VERSION_ID);
	xbuf_str(&b, "/>");
	end_reply(x, &b);
}

static void
cmd_chansrch(struct cmdctx *x)
{
	const struct roomtab *t = x->lc->rooms;
	xmlNodePtr q = xccos_child(x->x->data, "qib");
	const char *crit = q ? xccos_attr(q, "criteria") : NULL;
	uint32_t found = 0;
	struct xbuf b;

	if (crit == NULL)
		crit = "";
	/* Any qtype is treated as BYNAME; extended is ignored (xccos.md b.6.3). */
	begin_reply(x, &b, 200);
	for (size_t i = 0; i < t->n && found < x->lc->e->conf.search_limit; i++) {
		const struct room *r = &t->v[i];

		if (!room_may_see(r, x->c->aor))
			continue;
		if (crit[0] != '\0' && strcasestr(r->cat->name, crit) == NULL)
			continue;
		put_chanib(x->lc, &b, r, false);
		found++;
	}
	end_reply(x, &b);
}

/* ---- Channel: join, bjoin, part --------------------------------------- */

static void
cmd_join(struct cmdctx *x, bool batch)
{
	const struct roomtab *t = x->lc->rooms;
	const struct room *ok[BJOIN_MAX];
	struct join_denied den[BJOIN_MAX];
	unsigned nok = 0, nden = 0, total = 0;
	struct joinbatch *jb;

	if (x->x->data == NULL) {
		reply_code(x, 400);
		return;
	}
	for (xmlNodePtr n = xccos_child(x->x->data, "chanid"); n != NULL;
	     n = xccos_next(n, "chanid")) {
		const char *value = xccos_attr(n, "value"), *domain = xccos_attr(n, "domain");
		const struct room *r;
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
		else if (!room_may_join(r, x->c->aor))
			code = 403;
		else if (x->d->nrooms + x->d->joins_pending + nok >=
			 x->lc->e->conf.rooms_per_dialog)
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
		reply_code(x, total == 0 ? 400 : 413);
		return;
	}
	if (!batch && nden == 1) {
		reply_code(x, den[0].code);
		return;
	}
	jb = joinbatch_new(nok, nden);
	if (jb == NULL) {
		reply_code(x, 500);
		return;
	}
	jb->conn = x->c;
	jb->uid = x->d->uid;
	jb->batch = batch;
	snprintf(jb->seqid, sizeof(jb->seqid), "%s", x->x->seqid);
	snprintf(jb->envid, sizeof(jb->envid), "%s", x->x->envid);
	jb->n = nok;
	for (unsigned i = 0; i < nok; i++) {
		struct joinreq *jr = &jb->reqs[i];

		memcpy(jr->raw, ok[i]->raw, CATALOG_ID_RAW);
		jr->manager = room_is_manager(ok[i], x->c->aor);
		snprintf(jr->uri, sizeof(jr->uri), "sip:%s", x->c->aor);
		snprintf(jr->room_uri, sizeof(jr->room_uri), "%s", ok[i]->cat->uri);
	}
	jb->ndenied = nden;
	memcpy(jb->denied, den, nden * sizeof(den[0]));
	fanout_join(x->lc, jb);
}

/* Index of <uri> in the reply's uib table, adding it when new. */
static unsigned
uib_index(char (*tab)[160], unsigned *n, unsigned cap, const char *uri)
{
	for (unsigned i = 0; i < *n; i++)
		if (room_user_eq(tab[i], uri))
			return i;
	if (*n == cap)
		return cap;
	snprintf(tab[*n], 160, "%s", uri);
	return (*n)++;
}

static void
put_aib(struct xbuf *b, const char *key, const struct joinreq *jr, bool managers,
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

void
channel_join_done(struct lcore_ctx *lc, struct joinbatch *jb)
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
		struct joinreq *jr = &jb->reqs[i];

		if (jr->status != 200)
			continue;
		if (d == NULL || roomtab_find_raw(lc->rooms, jr->raw) == NULL ||
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
		reply_code(&x, jb->n ? jb->reqs[0].status : 500);
		return;
	}
	tab = calloc(cap ? cap : 1, sizeof(*tab));
	if (tab == NULL) {
		reply_code(&x, 500);
		return;
	}
	/* The chanibs first, collecting the shared uib table; then the reply
	 * with the table in front, as clients read it (xccos.md b.6.4). */
	xbuf_init(&rooms, 0);
	for (unsigned i = 0; i < jb->n; i++) {
		const struct joinreq *jr = &jb->reqs[i];
		const struct room *r = roomtab_find_raw(lc->rooms, jr->raw);
		char id[CATALOG_ID_LEN + 1], domain[sizeof(lc->e->conf.domain)];

		if (jr->status == 200 && r != NULL) {
			put_chanib(lc, &rooms, r, true);
			put_aib(&rooms, "3984", jr, false, tab, &ntab, cap);
			put_aib(&rooms, "12276", jr, true, tab, &ntab, cap);
			xbuf_str(&rooms, "</chanib>");
			continue;
		}
		catalog_id_unpack(jr->raw, id);
		snprintf(domain, sizeof(domain), "%s", lc->e->conf.domain);
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
	begin_reply(&x, &b, 200);
	for (unsigned i = 0; i < ntab; i++) {
		xbuf_printf(&b, "<uib id=\"%u\"", i);
		xbuf_attr(&b, "uri", tab[i]);
		xbuf_str(&b, "/>");
	}
	xbuf_raw(&b, rooms.p, rooms.len);
	if (!xbuf_ok(&rooms))
		b.failed = true;
	end_reply(&x, &b);
	xbuf_free(&rooms);
	free(tab);
}

static const struct room *
room_of_chanib(struct cmdctx *x)
{
	xmlNodePtr ch = x->x->data ? xccos_child(x->x->data, "chanib") : NULL;
	const char *uri = ch ? xccos_attr(ch, "uri") : NULL;

	if (uri == NULL)
		return NULL;
	return roomtab_find_uri(x->lc->rooms, uri, strlen(uri));
}

static void
cmd_part(struct cmdctx *x)
{
	const struct room *r = room_of_chanib(x);
	struct xbuf b;

	if (r == NULL) {
		reply_code(x, x->x->data && xccos_child(x->x->data, "chanib") ? 404 : 400);
		return;
	}
	/* Leaving a room one is not in is not an error: the client's view
	 * (a window after a server restart) closes either way. */
	if (fanout_is_joined(x->d, r->raw))
		fanout_part(x->lc, x->d, r->raw);
	begin_reply(x, &b, 200);
	xbuf_str(&b, "<chanib");
	xbuf_attr(&b, "uri", r->cat->uri);
	xbuf_str(&b, "/>");
	end_reply(x, &b);
}

/* ---- Channel: history ------------------------------------------------- */

static void
cmd_bccontext(struct cmdctx *x)
{
	const struct room *r = room_of_chanib(x);
	xmlNodePtr bcq, last;
	struct history_rec *recs = NULL;
	ssize_t n = 0;
	unsigned long cnt = 25;
	struct xbuf b, fail;
	char content[64];

	if (r == NULL) {
		reply_code(x, x->x->data && xccos_child(x->x->data, "chanib") ? 404 : 400);
		return;
	}
	if (!room_may_join(r, x->c->aor)) {
		reply_code(x, 403);
		return;
	}
	bcq = xccos_child(x->x->data, "bcq");
	last = bcq ? xccos_child(bcq, "last") : NULL;
	if (last != NULL && xccos_attr(last, "cnt") != NULL)
		cnt = strtoul(xccos_attr(last, "cnt"), NULL, 10);
	if (cnt > x->lc->e->conf.history_max)
		cnt = x->lc->e->conf.history_max;
	/* Unknown queries get an empty chanib (xccos.md f.9); so do unlogged
	 * rooms. */
	if (last != NULL && (r->cat->props & CATALOG_PROP_LOGGED) && cnt > 0) {
		n = history_read_last(x->lc->e->db, r->raw, cnt, &recs);
		if (n < 0) {
			reply_code(x, 500);
			return;
		}
	}
	begin_reply(x, &b, 200);
	xbuf_str(&b, "<chanib");
	xbuf_attr(&b, "uri", r->cat->uri);
	xbuf_str(&b, ">");
	for (ssize_t i = 0; i < n; i++) {
		char ts[XCCOS_TS_LEN], *author = strndup(recs[i].author, recs[i].author_len);

		xccos_ts_format(recs[i].ts_ms * 10000, ts);
		xbuf_str(&b, "<msg id=\"grpchat\"");
		xbuf_attr(&b, "chanUri", r->cat->uri);
		xbuf_attr(&b, "author", author ? author : "");
		xbuf_attr(&b, "ts", ts);
		xbuf_str(&b, ">");
		xbuf_raw(&b, recs[i].body, recs[i].body_len);
		xbuf_str(&b, "</msg>");
		free(author);
	}
	xbuf_str(&b, "</chanib>");
	history_recs_free(recs, (size_t)n);
	xccos_rpl_end(&b);
	xccos_end(&b);
	xbuf_init(&fail, 0);
	xccos_begin(&fail, next_envid(x->d));
	xccos_rpl_begin(&fail, x->rpl, x->x->seqid, x->x->envid, 500);
	xccos_rpl_end(&fail);
	xccos_end(&fail);
	if (!xbuf_ok(&b) || !xbuf_ok(&fail)) {
		xbuf_free(&b);
		xbuf_free(&fail);
		reply_code(x, 500);
		return;
	}
	/* Viewing history is a compliance event; the reply waits for it. */
	snprintf(content, sizeof(content), "last %lu messages", cnt);
	{
		size_t blen, flen;
		char *body = xbuf_take(&b, &blen), *fbody = xbuf_take(&fail, &flen);

		fanout_event_then_reply(x->lc, x->c, x->d, WAL_EV_BACKCHAT, r, content,
					strlen(content), body, blen, fbody, flen);
	}
	xbuf_free(&b);
	xbuf_free(&fail);
}

/* ---- Channel: invitations and preferences ----------------------------- */

static void
cmd_getinv(struct cmdctx *x)
{
	struct invite *inv = NULL;
	ssize_t n = invite_list(x->lc->e->db, x->c->aor, &inv);
	struct xbuf b;

	if (n < 0) {
		reply_code(x, 500);
		return;
	}
	begin_reply(x, &b, 200);
	for (ssize_t i = 0; i < n; i++) {
		const struct room *r = roomtab_find_id(x->lc->rooms, inv[i].room_id,
						       strlen(inv[i].room_id));
		char ts[XCCOS_TS_LEN];

		if (r == NULL || !room_may_see(r, x->c->aor))
			continue;
		xccos_ts_format(inv[i].ts_ms * 10000, ts);
		xbuf_printf(&b, "<inv inviteId=\"%zd\"", i + 1);
		xbuf_attr(&b, "domain", x->lc->e->conf.domain);
		xbuf_attr(&b, "chanUri", r->cat->uri);
		xbuf_attr(&b, "author", inv[i].author);
		xbuf_attr(&b, "ts", ts);
		xbuf_str(&b, "/>");
	}
	free(inv);
	end_reply(x, &b);
}

static void
cmd_getpref(struct cmdctx *x)
{
	xmlNodePtr p = x->x->data ? xccos_child(x->x->data, "pref") : NULL;
	const char *label = p ? xccos_attr(p, "label") : NULL;
	const char *seqid = p ? xccos_attr(p, "seqid") : NULL;
	const char *cdef = p ? xccos_attr(p, "createdefault") : NULL;
	char *val = NULL;
	size_t len = 0;
	struct xbuf b;
	int rc;

	if (label == NULL || label[0] == '\0') {
		reply_code(x, 400);
		return;
	}
	rc = prefs_get(x->lc->e->db, x->c->aor, label, &val, &len);
	if (rc == -ENOENT && cdef != NULL && strcasecmp(cdef, "true") == 0) {
		rc = prefs_put(x->lc->e->db, x->c->aor, label, "", 0, false);
		val = NULL;
	} else if (rc == -ENOENT) {
		reply_code(x, 404);
		return;
	}
	if (rc != 0) {
		reply_code(x, rc == -EINVAL ? 413 : 500);
		return;
	}
	begin_reply(x, &b, 200);
	xbuf_str(&b, "<pref");
	xbuf_attr(&b, "label", label);
	if (seqid != NULL)
		xbuf_attr(&b, "seqid", seqid);
	xbuf_attr(&b, "content", val ? val : "");
	xbuf_str(&b, "/>");
	end_reply(x, &b);
	free(val);
}

static void
cmd_setpref(struct cmdctx *x)
{
	xmlNodePtr p = x->x->data ? xccos_child(x->x->data, "pref") : NULL;
	const char *label = p ? xccos_attr(p, "label") : NULL;
	const char *seqid = p ? xccos_attr(p, "seqid") : NULL;
	const char *content = p ? xccos_attr(p, "content") : NULL;
	struct xbuf b;
	int rc;

	if (label == NULL || label[0] == '\0') {
		reply_code(x, 400);
		return;
	}
	if (content == NULL)
		content = "";
	rc = prefs_put(x->lc->e->db, x->c->aor, label, content, strlen(content), true);
	if (rc != 0) {
		reply_code(x, rc == -EINVAL ? 413 : 500);
		return;
	}
	begin_reply(x, &b, 200);
	xbuf_str(&b, "<pref");
	xbuf_attr(&b, "label", label);
	if (seqid != NULL)
		xbuf_attr(&b, "seqid", seqid);
	xbuf_str(&b, "/>");
	end_reply(x, &b);
}

/* ---- file tokens ------------------------------------------------------ */

/* A name the filestore can hold: no path, no dot-names, printable. */
static bool
plain_file_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= FTOKEN_NAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == '\\' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* getfutok (upload) and getfdtok (download) -> rpl:getftok (b.6.12). */
static void
cmd_getftok(struct cmdctx *x, enum ftoken_dir dir)
{
	xmlNodePtr f = x->x->data ? xccos_child(x->x->data, "ftdb") : NULL;
	const char *uri = f ? xccos_attr(f, "channelUri") : NULL;
	const char *file = f ? xccos_attr(f, "fileUrl") : NULL;
	struct ftoken_store *store = x->lc->e->ftokens;
	struct ftoken_info info = { .dir = dir };
	const struct room *r;
	char token[FTOKEN_LEN + 1];
	struct xbuf b;

	x->rpl = "getftok";	/* one reply id for both directions (b.6.12) */
	if (uri == NULL || file == NULL) {
		reply_code(x, 400);
		return;
	}
	if (store == NULL) {
		reply_code(x, 503);
		return;
	}
	r = roomtab_find_uri(x->lc->rooms, uri, strlen(uri));
	if (r == NULL) {
		reply_code(x, 404);
		return;
	}
	/* Reading the room is enough to download; uploading needs the
	 * filepost property too. Closed and secret rooms: members only. */
	if (!room_may_join(r, x->c->aor) ||
	    (dir == FTOKEN_UPLOAD && !(r->cat->props & CATALOG_PROP_FILEPOST))) {
		reply_code(x, 403);
		return;
	}
	if (dir == FTOKEN_UPLOAD) {
		if (ftoken_repo_name(file, info.name) != 0) {
			reply_code(x, 500);
			return;
		}
	} else if (!plain_file_name(file)) {
		reply_code(x, 400);
		return;
	} else {
		snprintf(info.name, sizeof(info.name), "%s", file);
	}
	snprintf(info.user, sizeof(info.user), "sip:%s", x->c->aor);
	snprintf(info.room_id, sizeof(info.room_id), "%s", r->cat->id);
	snprintf(info.room_uri, sizeof(info.room_uri), "%s", r->cat->uri);
	snprintf(info.orig, sizeof(info.orig), "%s", file);
	if (ftoken_issue(store, &info, x->lc->now_s, token) != 0) {
		reply_code(x, 503);
		return;
	}
	begin_reply(x, &b, 200);
	xbuf_str(&b, "<token");
	xbuf_attr(&b, "token", token);
	xbuf_attr(&b, "serveruri", x->lc->e->conf.web_url);
	/* The repository name the client PUTs to or GETs (xccos.md §e A). */
	xbuf_attr(&b, "fileUrl", info.name);
	xbuf_str(&b, "/>");
	end_reply(x, &b);
}

/* ---- posts ------------------------------------------------------------ */

/* The post is checked here, on the author's lcore; then its room's home
 * sequences it and the storage thread makes it durable. The SIP 200 waits
 * for that (channel_post_done). 0 when the post is on its way, or the
 * xccos code it is refused with. */
static int
grpchat(struct cmdctx *x, const struct sipmsg *m)
{
	const struct xccos_msg *g = x->x;
	const struct room *r;
	struct post *p;
	struct sipout o;
	char resp[2048], *s;
	size_t need, alen, ulen, elen;
	ssize_t rlen;

	if (x->d->svc != DIALOG_CHANNEL)
		return 501;
	r = g->chan_uri ? roomtab_find_uri(x->lc->rooms, g->chan_uri, strlen(g->chan_uri)) : NULL;
	if (r == NULL)
		return g->chan_uri ? 404 : 400;
	if (g->author == NULL || !room_user_eq(g->author, x->c->aor)) {
		LOG(NOTICE, CHANNEL, "%s: %s posted as %s: refused", x->c->peer_str, x->c->aor,
		    g->author ? g->author : "(nobody)");
		return 403;
	}
	/* Present, and still allowed in: a member removed from a closed room
	 * (control socket) cannot post any more. */
	if (!fanout_is_joined(x->d, r->raw) || !room_may_join(r, x->c->aor))
		return 403;
	if (g->text_len > x->lc->e->conf.chat_max || g->inner_len > HISTORY_BODY_MAX)
		return 413;
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
	p = post_alloc(need);
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
	p->ts_100ns = clock_real_100ns();
	p->conn = x->c;
	p->dialog_uid = x->d->uid;
	snprintf(p->seqid, sizeof(p->seqid), "%s", g->seqid);
	snprintf(p->envid, sizeof(p->envid), "%s", g->envid);
	ctr_inc(x->lc, CTR_POSTS_IN);
	fanout_post(x->lc, r, p);
	return 0;
}

void
channel_post_done(struct lcore_ctx *lc, struct post *p)
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
	reply_code(&x, p->status == -ENOSPC ? 503 : 500);
}

/* ---- dispatch --------------------------------------------------------- */

/* For a document that did not parse: the command name, if the bytes show
 * one, so the error reply carries a name the client knows. */
static void
guess_name(const char *p, size_t len, char *out, size_t cap)
{
	const char *k = memmem(p, len, "id=\"cmd:", 8);
	size_t i = 0;

	snprintf(out, cap, "error");
	if (k == NULL)
		return;
	k += 8;
	while (k + i < p + len && i + 1 < cap && k[i] != '"' &&
	       ((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z')))
		i++;
	if (i > 0 && k + i < p + len && k[i] == '"')
		snprintf(out, cap, "%.*s", (int)i, k);
}

void
channel_info(struct conn *c, struct dialog *d, const struct sipmsg *m)
{
	const struct engine_conf *cf = &c->lc->e->conf;
	struct xccos_limits lim = { .max_doc = cf->sip_lim.max_msg, .max_depth = XCCOS_DEPTH_MAX };
	struct xccos_msg xm = { 0 };
	struct cmdctx x = { .c = c, .d = d, .lc = c->lc, .x = &xm };
	char err[160];
	int rc;

	if (m->body.len == 0) {
		sipconn_reply(c, m, 200, NULL, NULL, NULL, NULL, 0);
		return;
	}
	ctr_inc(c->lc, CTR_XCCOS_COMMANDS);
	rc = xccos_parse(m->body.p, m->body.len, &lim, &xm, err, sizeof(err));
	if (rc != 0) {
		char name[XCCOS_NAME_MAX];

		sipconn_reply(c, m, 200, NULL, NULL, NULL, NULL, 0);
		ctr_inc(c->lc, CTR_XCCOS_MALFORMED);
		LOG(INFO, CHANNEL, "%s: %s: malformed XCCOS: %s", c->peer_str, c->aor, err);
		guess_name(m->body.p, m->body.len, name, sizeof(name));
		snprintf(xm.seqid, sizeof(xm.seqid), "1");
		x.rpl = name;
		reply_code(&x, rc == -E2BIG ? 413 : 400);
		return;
	}
	x.rpl = xm.name;
	count_command(c->lc, xm.name);
	if (xm.kind == XCCOS_GRPCHAT) {
		int code = grpchat(&x, m);

		if (code != 0) {
			sipconn_reply(c, m, 200, NULL, NULL, NULL, NULL, 0);
			ctr_inc(c->lc, CTR_POSTS_REFUSED);
			x.rpl = "grpchat";
			reply_code(&x, code);
		}
		goto out;
	}
	sipconn_reply(c, m, 200, NULL, NULL, NULL, NULL, 0);
	if (strcmp(xm.name, "requri") == 0) {
		cmd_requri(&x);
	} else if (d->svc == DIALOG_LOOKUP) {
		/* The Lookup service answers requri only (xccos.md b.6.1). */
		reply_code(&x, 501);
	} else if (strcmp(xm.name, "getserverinfo") == 0) {
		x.rpl = "getservinfo";	/* the id seen on the wire (b.6.2) */
		cmd_getserverinfo(&x);
	} else if (strcmp(xm.name, "chansrch") == 0) {
		cmd_chansrch(&x);
	} else if (strcmp(xm.name, "join") == 0) {
		cmd_join(&x, false);
	} else if (strcmp(xm.name, "bjoin") == 0) {
		cmd_join(&x, true);
	} else if (strcmp(xm.name, "part") == 0) {
		cmd_part(&x);
	} else if (strcmp(xm.name, "bccontext") == 0) {
		cmd_bccontext(&x);
	} else if (strcmp(xm.name, "getinv") == 0) {
		cmd_getinv(&x);
	} else if (strcmp(xm.name, "getpref") == 0) {
		cmd_getpref(&x);
	} else if (strcmp(xm.name, "setpref") == 0) {
		cmd_setpref(&x);
	} else if (strcmp(xm.name, "getfutok") == 0) {
		cmd_getftok(&x, FTOKEN_UPLOAD);
	} else if (strcmp(xm.name, "getfdtok") == 0) {
		cmd_getftok(&x, FTOKEN_DOWNLOAD);
	} else if (strcmp(xm.name, "nodespermcreatechild") == 0) {
		reply_code(&x, 200);	/* no user-created rooms: empty data */
	} else {
		LOG(DEBUG, CHANNEL, "%s: unknown command cmd:%s", c->peer_str, xm.name);
		reply_code(&x, 501);
	}
out:
	xccos_msg_free(&xm);
}

unsigned
channel_notice_user(struct lcore_ctx *lc, const char *aor, const char *doc, size_t len)
{
	unsigned n = 0;

	for (struct conn *c = lc->conns; c != NULL; c = c->next) {
		if (!conn_usable(c) || c->aor[0] == '\0' || !room_user_eq(c->aor, aor))
			continue;
		for (struct dialog *d = c->dialogs; d != NULL; d = d->next)
			if (d->svc == DIALOG_CHANNEL && dialog_send_info(c, d, doc, len) == 0)
				n++;
	}
	return n;
}

void
channel_dialog_closed(struct conn *c, struct dialog *d)
{
	while (d->nrooms > 0) {
		uint8_t raw[CATALOG_ID_RAW];

		memcpy(raw, d->rooms[d->nrooms - 1], CATALOG_ID_RAW);
		fanout_part(c->lc, d, raw);
	}
	free(d->rooms);
	d->rooms = NULL;
	d->rooms_cap = 0;
}
