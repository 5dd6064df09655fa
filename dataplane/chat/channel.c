/* The Lookup and Channel services: XCCOS commands carried in INFO on their
 * INVITE dialogs (shared/protocol/xccos.md §a.1, §b). This file has the
 * replies, the command table and the commands answered on this lcore;
 * channel_relay.c those that go through the fan-out (join, bjoin, part,
 * grpchat).
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
#include "dataplane/chat/channel_int.h"
#include "dataplane/session/dialog.h"
#include "dataplane/chat/fanout.h"
#include "dataplane/chat/ftoken.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/sip/sipmsg.h"
#include "dataplane/sip/sipout.h"
#include "dataplane/xccos/xccos.h"
#include "storage/history.h"
#include "storage/prefs.h"
#include "storage/wal.h"

#define XCCOS_DEPTH_MAX		32
/* getservinfo: the root category and the catalog's version, fixed ids. */
#define ROOT_CATEGORY_ID	"6a1d3c5e-0000-4000-8000-000000000001"
#define DB_VERSION_ID		"3ea3a5a8-ef36-46cf-898f-7a5133931d63"

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

/* XCCOS replies by result code, and their counters. */
static const struct {
	int		code;
	unsigned int	ctr;	/* enum chat_ctr_id */
} xres[] = {
	{ 200, CTR_XRES_200 }, { 400, CTR_XRES_400 }, { 403, CTR_XRES_403 },
	{ 404, CTR_XRES_404 }, { 413, CTR_XRES_413 }, { 500, CTR_XRES_500 },
	{ 501, CTR_XRES_501 }, { 503, CTR_XRES_503 },
};

static void
count_result(struct lcore_ctx *lc, int code)
{
	for (size_t i = 0; i < sizeof(xres) / sizeof(xres[0]); i++)
		if (xres[i].code == code) {
			ctr_inc(lc, xres[i].ctr);
			return;
		}
	ctr_inc(lc, CTR_XRES_OTHER);
}

/* A reply with no data: errors, and the commands that only acknowledge. */
void
channel_reply_code(struct cmdctx *x, int code)
{
	struct xbuf b;

	count_result(x->lc, code);
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

/* The INFO's SIP 200 and an error reply with <code>: a command that is
 * not carried out (a refused post counts as one). */
void
channel_refuse(struct cmdctx *x, int code)
{
	sipconn_reply(x->c, x->m, 200, NULL, NULL, NULL, NULL, 0);
	if (x->x->kind == XCCOS_GRPCHAT) {
		ctr_inc(x->lc, CTR_POSTS_REFUSED);
		x->rpl = "grpchat";
	}
	channel_reply_code(x, code);
}

void
channel_begin_reply(struct cmdctx *x, struct xbuf *b, int code)
{
	count_result(x->lc, code);
	xbuf_init(b, 0);
	xccos_begin(b, next_envid(x->d));
	xccos_rpl_begin(b, x->rpl, x->x->seqid, x->x->envid, code);
}

void
channel_end_reply(struct cmdctx *x, struct xbuf *b)
{
	xccos_rpl_end(b);
	xccos_end(b);
	send_doc(x->c, x->d, b);
	xbuf_free(b);
}

/* <chanib ...> with info and prop children; left open when <open>. */
void
channel_put_chanib(struct lcore_ctx *lc, struct xbuf *b, const struct roomtab_ent *r, bool open)
{
	const struct catalog_room *cr = r->cat;

	xbuf_str(b, "<chanib");
	xbuf_attr(b, "uri", cr->uri);
	xbuf_attr(b, "name", cr->name);
	xbuf_attr(b, "description", cr->description ? cr->description : "");
	xbuf_attr(b, "topic", cr->topic ? cr->topic : "");
	xbuf_printf(b, "><info id=\"urn:parlano:ma:info:ucnt\">%u</info>",
		    fanout_present_count(lcore_engine(lc), r->raw));
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

	dialog_service_uri(lcore_conf(x->lc), DIALOG_CHANNEL, uri, sizeof(uri));
	channel_begin_reply(x, &b, 200);
	xbuf_str(&b, "<uib");
	xbuf_attr(&b, "uri", uri);
	xbuf_str(&b, "/>");
	channel_end_reply(x, &b);
}

/* ---- Channel: server info, search ------------------------------------- */

static void
cmd_getserverinfo(struct cmdctx *x)
{
	const struct engine_conf *cf = lcore_conf(x->lc);
	struct xbuf b;
	char ts[XCCOS_TS_LEN], root[320];

	xccos_ts_format(clock_real_100ns(), ts);
	snprintf(root, sizeof(root), "ma-cat://%s/%s", cf->domain, ROOT_CATEGORY_ID);
	channel_begin_reply(x, &b, 200);
	xbuf_str(&b, "<sib infoType=\"123\"");
	xbuf_attr(&b, "serverTime", ts);
	xbuf_printf(&b, " searchLimit=\"%u\" messageSizeLimit=\"%u\" storySizeLimit=\"%u\"",
		    cf->search_limit, cf->chat_max, cf->story_max);
	xbuf_attr(&b, "rootUri", root);
	xbuf_attr(&b, "dbVersion", DB_VERSION_ID);
	xbuf_str(&b, "/>");
	channel_end_reply(x, &b);
}

static void
cmd_chansrch(struct cmdctx *x)
{
	const struct roomtab *t = roomtab_of(x->lc);
	xmlNodePtr q = xccos_child(x->x->data, "qib");
	const char *crit = q ? xccos_attr(q, "criteria") : NULL;
	uint32_t found = 0;
	struct xbuf b;

	if (crit == NULL)
		crit = "";
	/* Any qtype is treated as BYNAME; extended is ignored (xccos.md b.6.3). */
	channel_begin_reply(x, &b, 200);
	for (size_t i = 0; i < t->n && found < lcore_conf(x->lc)->search_limit; i++) {
		const struct roomtab_ent *r = &t->v[i];

		if (!roomtab_may_see(r, x->c->aor))
			continue;
		if (crit[0] != '\0' && strcasestr(r->cat->name, crit) == NULL)
			continue;
		channel_put_chanib(x->lc, &b, r, false);
		found++;
	}
	channel_end_reply(x, &b);
}

/* The room a command's <chanib uri> names, or NULL. */
const struct roomtab_ent *
channel_room_of_chanib(struct cmdctx *x)
{
	xmlNodePtr ch = x->x->data ? xccos_child(x->x->data, "chanib") : NULL;
	const char *uri = ch ? xccos_attr(ch, "uri") : NULL;

	if (uri == NULL)
		return NULL;
	return roomtab_find_uri(roomtab_of(x->lc), uri, strlen(uri));
}

/* ---- Channel: history ------------------------------------------------- */

/* The rpl:bccontext with <n> records of room <r>, once the BACKCHAT event
 * is durable (viewing history is a compliance event). */
static void
bccontext_reply(struct cmdctx *x, const struct roomtab_ent *r, const struct history_rec *recs,
		size_t n, unsigned long cnt, bool recorded)
{
	struct xbuf b, fail;
	char content[64];

	channel_begin_reply(x, &b, 200);
	xbuf_str(&b, "<chanib");
	xbuf_attr(&b, "uri", r->cat->uri);
	xbuf_str(&b, ">");
	for (size_t i = 0; i < n; i++) {
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
	xccos_rpl_end(&b);
	xccos_end(&b);
	if (recorded) {		/* the room's home node stored the event */
		send_doc(x->c, x->d, &b);
		xbuf_free(&b);
		return;
	}
	xbuf_init(&fail, 0);
	xccos_begin(&fail, next_envid(x->d));
	xccos_rpl_begin(&fail, x->rpl, x->x->seqid, x->x->envid, 500);
	xccos_rpl_end(&fail);
	xccos_end(&fail);
	if (!xbuf_ok(&b) || !xbuf_ok(&fail)) {
		xbuf_free(&b);
		xbuf_free(&fail);
		channel_reply_code(x, 500);
		return;
	}
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

/* The room's home node answered a bccontext (fanout_ops.history_done). */
static void
history_done(struct lcore_ctx *lc, struct fanout_histreq *h)
{
	struct conn *c = h->conn;
	struct dialog *d = conn_usable(c) ? dialog_by_uid(c, h->uid) : NULL;
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), h->raw);
	struct xccos_msg fake = { 0 };
	struct cmdctx x = { .c = c, .d = d, .lc = lc, .x = &fake, .rpl = "bccontext" };

	if (d == NULL)
		return;
	snprintf(fake.seqid, sizeof(fake.seqid), "%s", h->seqid);
	snprintf(fake.envid, sizeof(fake.envid), "%s", h->envid);
	if (h->status != 0 || r == NULL) {
		channel_reply_code(&x, 503);
		return;
	}
	bccontext_reply(&x, r, h->recs, h->n, h->count, true);
}

/* History of a room homed on another node: its home answers. */
static void
bccontext_remote(struct cmdctx *x, const struct roomtab_ent *r, unsigned long cnt)
{
	struct fanout_histreq *h = calloc(1, sizeof(*h));

	if (h == NULL) {
		channel_reply_code(x, 500);
		return;
	}
	h->conn = x->c;
	h->uid = x->d->uid;
	memcpy(h->raw, r->raw, CATALOG_ID_RAW);
	h->count = (uint32_t)cnt;
	snprintf(h->seqid, sizeof(h->seqid), "%s", x->x->seqid);
	snprintf(h->envid, sizeof(h->envid), "%s", x->x->envid);
	snprintf(h->user, sizeof(h->user), "sip:%s", x->c->aor);
	conn_hold(x->c);
	if (fanout_history_ask(x->lc, r, h) != 0) {
		fanout_histreq_free(h);
		channel_reply_code(x, 503);	/* the home is unknown or unreachable: retry */
	}
}

static void
cmd_bccontext(struct cmdctx *x)
{
	const struct roomtab_ent *r = channel_room_of_chanib(x);
	const struct roomtab *t = roomtab_of(x->lc);
	xmlNodePtr bcq, last;
	struct history_rec *recs = NULL;
	ssize_t n = 0;
	unsigned long cnt = 25;

	if (r == NULL) {
		channel_reply_code(x, x->x->data && xccos_child(x->x->data, "chanib") ? 404 : 400);
		return;
	}
	if (!roomtab_may_join(r, x->c->aor)) {
		channel_reply_code(x, 403);
		return;
	}
	bcq = xccos_child(x->x->data, "bcq");
	last = bcq ? xccos_child(bcq, "last") : NULL;
	if (last != NULL && xccos_attr(last, "cnt") != NULL)
		cnt = strtoul(xccos_attr(last, "cnt"), NULL, 10);
	if (cnt > lcore_conf(x->lc)->history_max)
		cnt = lcore_conf(x->lc)->history_max;
	/* Unknown queries get an empty chanib (xccos.md f.9); so do unlogged
	 * rooms. */
	if (last != NULL && (r->cat->props & CATALOG_PROP_LOGGED) && cnt > 0) {
		if (!roomtab_homed_here(t, r)) {
			bccontext_remote(x, r, cnt);
			return;
		}
		n = history_read_last(lcore_db(x->lc), r->raw, cnt, &recs);
		if (n < 0) {
			channel_reply_code(x, 500);
			return;
		}
	}
	bccontext_reply(x, r, recs, (size_t)n, cnt, false);
	history_recs_free(recs, (size_t)n);
}

/* ---- Channel: invitations and preferences ----------------------------- */

static void
cmd_getinv(struct cmdctx *x)
{
	struct invite *inv = NULL;
	ssize_t n = invite_list(lcore_db(x->lc), x->c->aor, &inv);
	struct xbuf b;

	if (n < 0) {
		channel_reply_code(x, 500);
		return;
	}
	channel_begin_reply(x, &b, 200);
	for (ssize_t i = 0; i < n; i++) {
		const struct roomtab_ent *r = roomtab_find_id(roomtab_of(x->lc), inv[i].room_id,
						       strlen(inv[i].room_id));
		char ts[XCCOS_TS_LEN];

		if (r == NULL || !roomtab_may_see(r, x->c->aor))
			continue;
		xccos_ts_format(inv[i].ts_ms * 10000, ts);
		xbuf_printf(&b, "<inv inviteId=\"%zd\"", i + 1);
		xbuf_attr(&b, "domain", lcore_conf(x->lc)->domain);
		xbuf_attr(&b, "chanUri", r->cat->uri);
		xbuf_attr(&b, "author", inv[i].author);
		xbuf_attr(&b, "ts", ts);
		xbuf_str(&b, "/>");
	}
	free(inv);
	channel_end_reply(x, &b);
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
		channel_reply_code(x, 400);
		return;
	}
	rc = prefs_get(lcore_db(x->lc), x->c->aor, label, &val, &len);
	if (rc == -ENOENT && cdef != NULL && strcasecmp(cdef, "true") == 0) {
		rc = prefs_put(lcore_db(x->lc), x->c->aor, label, "", 0, false);
		val = NULL;
	} else if (rc == -ENOENT) {
		channel_reply_code(x, 404);
		return;
	}
	if (rc != 0) {
		channel_reply_code(x, rc == -EINVAL ? 413 : 500);
		return;
	}
	channel_begin_reply(x, &b, 200);
	xbuf_str(&b, "<pref");
	xbuf_attr(&b, "label", label);
	if (seqid != NULL)
		xbuf_attr(&b, "seqid", seqid);
	xbuf_attr(&b, "content", val ? val : "");
	xbuf_str(&b, "/>");
	channel_end_reply(x, &b);
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
		channel_reply_code(x, 400);
		return;
	}
	if (content == NULL)
		content = "";
	rc = prefs_put(lcore_db(x->lc), x->c->aor, label, content, strlen(content), true);
	if (rc != 0) {
		channel_reply_code(x, rc == -EINVAL ? 413 : 500);
		return;
	}
	channel_begin_reply(x, &b, 200);
	xbuf_str(&b, "<pref");
	xbuf_attr(&b, "label", label);
	if (seqid != NULL)
		xbuf_attr(&b, "seqid", seqid);
	xbuf_str(&b, "/>");
	channel_end_reply(x, &b);
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
getftok(struct cmdctx *x, enum ftoken_dir dir)
{
	xmlNodePtr f = x->x->data ? xccos_child(x->x->data, "ftdb") : NULL;
	const char *uri = f ? xccos_attr(f, "channelUri") : NULL;
	const char *file = f ? xccos_attr(f, "fileUrl") : NULL;
	struct ftoken_store *store = lcore_ftokens(x->lc);
	struct ftoken_info info = { .dir = dir };
	const struct roomtab_ent *r;
	char token[FTOKEN_LEN + 1];
	struct xbuf b;

	if (uri == NULL || file == NULL) {
		channel_reply_code(x, 400);
		return;
	}
	if (store == NULL) {
		channel_reply_code(x, 503);
		return;
	}
	r = roomtab_find_uri(roomtab_of(x->lc), uri, strlen(uri));
	if (r == NULL) {
		channel_reply_code(x, 404);
		return;
	}
	/* Reading the room is enough to download; uploading needs the
	 * filepost property too. Closed and secret rooms: members only. */
	if (!roomtab_may_join(r, x->c->aor) ||
	    (dir == FTOKEN_UPLOAD && !(r->cat->props & CATALOG_PROP_FILEPOST))) {
		channel_reply_code(x, 403);
		return;
	}
	if (dir == FTOKEN_UPLOAD) {
		if (ftoken_repo_name(file, info.name) != 0) {
			channel_reply_code(x, 500);
			return;
		}
	} else if (!plain_file_name(file)) {
		channel_reply_code(x, 400);
		return;
	} else {
		snprintf(info.name, sizeof(info.name), "%s", file);
	}
	snprintf(info.user, sizeof(info.user), "sip:%s", x->c->aor);
	snprintf(info.room_id, sizeof(info.room_id), "%s", r->cat->id);
	snprintf(info.room_uri, sizeof(info.room_uri), "%s", r->cat->uri);
	snprintf(info.orig, sizeof(info.orig), "%s", file);
	if (ftoken_issue(store, &info, lcore_now_s(x->lc), token) != 0) {
		channel_reply_code(x, 503);
		return;
	}
	channel_begin_reply(x, &b, 200);
	xbuf_str(&b, "<token");
	xbuf_attr(&b, "token", token);
	xbuf_attr(&b, "serveruri", lcore_conf(x->lc)->web_url);
	/* The repository name the client PUTs to or GETs (xccos.md §e A). */
	xbuf_attr(&b, "fileUrl", info.name);
	xbuf_str(&b, "/>");
	channel_end_reply(x, &b);
}

static void
cmd_getfutok(struct cmdctx *x)
{
	getftok(x, FTOKEN_UPLOAD);
}

static void
cmd_getfdtok(struct cmdctx *x)
{
	getftok(x, FTOKEN_DOWNLOAD);
}

static void
cmd_nodespermcreatechild(struct cmdctx *x)
{
	channel_reply_code(x, 200);	/* no user-created rooms: empty data */
}

/* ---- dispatch --------------------------------------------------------- */

/* The XCCOS commands, one entry each: the name on the wire (cmd:<name>, or
 * the grpchat element), the reply's id when it differs, the counter, the
 * handler, and whether the Lookup service answers it (only requri,
 * xccos.md b.6.1; everything else is the Channel service's). */
static const struct xcmd {
	const char	*name;
	const char	*rpl;
	unsigned int	ctr;	/* enum chat_ctr_id */
	void		(*fn)(struct cmdctx *x);
	bool		lookup;
	bool		post;	/* a grpchat document; answers its SIP 200 itself */
} xcmds[] = {
	{ "requri", NULL, CTR_XCMD_REQURI, cmd_requri, true, false },
	/* getservinfo: the id seen on the wire (b.6.2) */
	{ "getserverinfo", "getservinfo", CTR_XCMD_GETSERVERINFO, cmd_getserverinfo, false, false },
	{ "chansrch", NULL, CTR_XCMD_CHANSRCH, cmd_chansrch, false, false },
	{ "join", NULL, CTR_XCMD_JOIN, channel_cmd_join, false, false },
	{ "bjoin", NULL, CTR_XCMD_BJOIN, channel_cmd_bjoin, false, false },
	{ "part", NULL, CTR_XCMD_PART, channel_cmd_part, false, false },
	{ "bccontext", NULL, CTR_XCMD_BCCONTEXT, cmd_bccontext, false, false },
	{ "getinv", NULL, CTR_XCMD_GETINV, cmd_getinv, false, false },
	{ "getpref", NULL, CTR_XCMD_GETPREF, cmd_getpref, false, false },
	{ "setpref", NULL, CTR_XCMD_SETPREF, cmd_setpref, false, false },
	{ "nodespermcreatechild", NULL, CTR_XCMD_NODESPERMCREATECHILD, cmd_nodespermcreatechild,
	  false, false },
	/* one reply id for both directions (b.6.12) */
	{ "getfutok", "getftok", CTR_XCMD_GETFUTOK, cmd_getfutok, false, false },
	{ "getfdtok", "getftok", CTR_XCMD_GETFDTOK, cmd_getfdtok, false, false },
	{ "grpchat", NULL, CTR_XCMD_GRPCHAT, channel_cmd_grpchat, false, true },
};

static const struct xcmd *
xcmd_find(const char *name)
{
	for (size_t i = 0; i < sizeof(xcmds) / sizeof(xcmds[0]); i++)
		if (strcmp(xcmds[i].name, name) == 0)
			return &xcmds[i];
	return NULL;
}

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

static void
on_info(struct conn *c, struct dialog *d, const struct sipmsg *m)
{
	const struct engine_conf *cf = lcore_conf(c->lc);
	struct xccos_limits lim = { .max_doc = cf->sip_lim.max_msg, .max_depth = XCCOS_DEPTH_MAX };
	struct xccos_msg xm = { 0 };
	struct cmdctx x = { .c = c, .d = d, .lc = c->lc, .x = &xm, .m = m };
	const struct xcmd *cmd;
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
		channel_reply_code(&x, rc == -E2BIG ? 413 : 400);
		return;
	}
	x.rpl = xm.name;
	cmd = xcmd_find(xm.name);
	ctr_inc(c->lc, cmd ? cmd->ctr : CTR_XCMD_OTHER);
	/* A grpchat document is a post; a cmd of that name is unknown. */
	if (cmd != NULL && cmd->post != (xm.kind == XCCOS_GRPCHAT))
		cmd = NULL;
	if (cmd == NULL) {
		LOG(DEBUG, CHANNEL, "%s: unknown command cmd:%s", c->peer_str, xm.name);
		channel_refuse(&x, 501);
	} else if (d->svc == DIALOG_LOOKUP && !cmd->lookup) {
		channel_refuse(&x, 501);
	} else {
		if (!cmd->post)
			sipconn_reply(c, m, 200, NULL, NULL, NULL, NULL, 0);
		if (cmd->rpl != NULL)
			x.rpl = cmd->rpl;
		cmd->fn(&x);
	}
	xccos_msg_free(&xm);
}

unsigned
channel_notice_user(struct lcore_ctx *lc, const char *aor, const char *doc, size_t len)
{
	unsigned n = 0;

	for (struct conn *c = lcore_conns(lc); c != NULL; c = c->next) {
		if (!conn_usable(c) || c->aor[0] == '\0' || !roomtab_user_eq(c->aor, aor))
			continue;
		for (struct dialog *d = c->dialogs; d != NULL; d = d->next)
			if (d->svc == DIALOG_CHANNEL && dialog_send_info(c, d, doc, len) == 0)
				n++;
	}
	return n;
}

/* The dialog ends (BYE, expiry, connection loss): it leaves every room. */
static void
on_closed(struct conn *c, struct dialog *d)
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

/* ---- registration ----------------------------------------------------- */

static int
send_to_member(struct lcore_ctx *lc, struct dialog *d, const char *body, size_t len)
{
	return dialog_send_info(d->conn, d, body, len);
}

/* One set of handlers for both services: a command names what it is
 * allowed on (struct xcmd). */
static const struct dialog_service_ops service_ops = {
	.info = on_info,
	.closed = on_closed,
};

static const struct fanout_ops fanout_callbacks = {
	.post_done = channel_post_done,
	.join_done = channel_join_done,
	.send = send_to_member,
	.history_done = history_done,
};

int
channel_init(void)
{
	fanout_register(&fanout_callbacks);
	if (dialog_service_register("lookup", &service_ops) != 0 ||
	    dialog_service_register("channel", &service_ops) != 0)
		return -ENOENT;
	return 0;
}
