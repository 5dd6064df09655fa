/* The lcore side of the control socket; see chatctl.h.
 *
 * Each function is a small one that engine_lcore_call() runs on the lcore
 * between two loop turns, so nothing the lcore owns is touched by another
 * thread while it runs. Readers walk what the lcore owns and copy a bounded
 * amount into a buffer the control thread allocated: they neither allocate
 * nor block. The rare admin actions (eviction, notices) do what a client's
 * command would do on that lcore, allocations included. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "dataplane/chat/channel.h"
#include "dataplane/chat/chatctl.h"
#include "dataplane/session/dialog.h"
#include "dataplane/chat/fanout.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/chat/roomtab.h"
#include "dataplane/xccos/xccos.h"

static const char *const state_names[CHATCTL_CONN__COUNT] = {
	[CHATCTL_CONN_HANDSHAKE] = "handshake",
	[CHATCTL_CONN_OPEN] = "open",
	[CHATCTL_CONN_CLOSING] = "closing",
	[CHATCTL_CONN_DEAD] = "dead",
};

const char *
chatctl_conn_state_name(unsigned int st)
{
	return st < CHATCTL_CONN__COUNT ? state_names[st] : "?";
}

static enum chatctl_conn_state
state_of(const struct conn *c)
{
	switch (c->state) {
	case CONN_HANDSHAKE: return CHATCTL_CONN_HANDSHAKE;
	case CONN_OPEN: return CHATCTL_CONN_OPEN;
	case CONN_CLOSING: return CHATCTL_CONN_CLOSING;
	case CONN_DEAD: break;
	}
	return CHATCTL_CONN_DEAD;
}

static void
snap_fn(struct lcore_ctx *lc, void *arg)
{
	struct chatctl_lcore_snap *s = arg;

	memset(s, 0, sizeof(*s));
	for (const struct conn *c = lcore_conns(lc); c != NULL; c = c->next) {
		s->nconns++;
		s->by_state[state_of(c)]++;
		if (c->aor[0] != '\0' && c->registered_until_s != 0)
			s->registered++;
		for (const struct dialog *d = c->dialogs; d != NULL; d = d->next) {
			s->dialogs++;
			if (d->svc == DIALOG_CHANNEL) {
				s->channel_dialogs++;
				s->room_presences += d->nrooms;
			}
		}
	}
	s->staged = fanout_staged(lc);
	s->draining = lcore_draining(lc);
	s->listening = lcore_listening(lc);
	s->thread = pthread_self();
}

int
chatctl_lcore_snap(struct engine *e, uint32_t idx, struct chatctl_lcore_snap *s, int timeout_ms)
{
	return engine_lcore_call(e, idx, snap_fn, s, timeout_ms);
}

struct conns_req {
	uint64_t		cursor;
	struct chatctl_conn_snap	*v;
	uint32_t		n, got;
};

static void
peer_format(const struct sockaddr_storage *ss, const char *addr, char *out, size_t cap)
{
	if (ss->ss_family == AF_INET)
		snprintf(out, cap, "%s:%u", addr,
			 ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port));
	else if (ss->ss_family == AF_INET6)
		snprintf(out, cap, "[%s]:%u", addr,
			 ntohs(((const struct sockaddr_in6 *)(const void *)ss)->sin6_port));
	else
		snprintf(out, cap, "%s", addr);
}

static void
conns_fn(struct lcore_ctx *lc, void *arg)
{
	struct conns_req *q = arg;

	/* The list is newest first and ids grow: skip those at or above the
	 * cursor (newer, or already listed), copy the next ones. */
	for (const struct conn *c = lcore_conns(lc); c != NULL && q->got < q->n; c = c->next) {
		struct chatctl_conn_snap *s;

		if (q->cursor != 0 && c->id >= q->cursor)
			continue;
		s = &q->v[q->got++];
		memset(s, 0, sizeof(*s));
		s->id = c->id;
		s->lcore = lcore_idx(lc);
		s->state = state_of(c);
		s->registered = c->aor[0] != '\0' && c->registered_until_s != 0;
		peer_format(&c->peer, c->peer_str, s->peer, sizeof(s->peer));
		snprintf(s->aor, sizeof(s->aor), "%s", c->aor);
		s->age_s = lcore_now_s(lc) - c->created_s;
		s->idle_s = lcore_now_s(lc) >= c->last_io_s ? lcore_now_s(lc) - c->last_io_s : 0;
		for (const struct dialog *d = c->dialogs; d != NULL; d = d->next) {
			s->dialogs++;
			if (d->svc == DIALOG_CHANNEL)
				s->rooms += d->nrooms;
		}
	}
}

int
chatctl_conns(struct engine *e, uint32_t idx, uint64_t *cursor, struct chatctl_conn_snap *v,
		 uint32_t n, int timeout_ms)
{
	struct conns_req q = { .cursor = *cursor, .v = v, .n = n };
	int rc;

	rc = engine_lcore_call(e, idx, conns_fn, &q, timeout_ms);
	if (rc != 0)
		return rc;
	if (q.got > 0)
		*cursor = v[q.got - 1].id;
	return (int)q.got;
}

struct roster_req {
	const uint8_t		*raw;
	struct chatctl_member_snap	*v;
	uint32_t		n, total;
};

static void
roster_add(void *arg, const char *uri, uint32_t lcore, bool manager)
{
	struct roster_req *q = arg;

	if (q->total < q->n) {
		struct chatctl_member_snap *m = &q->v[q->total];

		snprintf(m->uri, sizeof(m->uri), "%s", uri);
		m->lcore = lcore;
		m->manager = manager;
	}
	q->total++;
}

static void
roster_fn(struct lcore_ctx *lc, void *arg)
{
	struct roster_req *q = arg;

	fanout_roster_visit(lc, q->raw, roster_add, q);
}

int
chatctl_roster(struct engine *e, uint32_t home, const uint8_t raw[CATALOG_ID_RAW],
		  struct chatctl_member_snap *v, uint32_t n, uint32_t *total, int timeout_ms)
{
	struct roster_req q = { .raw = raw, .v = v, .n = n };
	int rc = engine_lcore_call(e, home, roster_fn, &q, timeout_ms);

	*total = rc == 0 ? q.total : 0;
	return rc;
}

uint32_t
chatctl_present_count(const struct engine *e, const uint8_t raw[CATALOG_ID_RAW])
{
	return fanout_present_count(e, raw);
}

struct notice_req {
	const char	*aor;
	const char	*doc;
	size_t		len;
	unsigned	sent;
};

static void
notice_fn(struct lcore_ctx *lc, void *arg)
{
	struct notice_req *q = arg;

	q->sent += channel_notice_user(lc, q->aor, q->doc, q->len);
}

int
chatctl_notice_user(struct engine *e, const char *aor, const char *doc, size_t len,
		       uint32_t *missed, int timeout_ms)
{
	struct notice_req q = { .aor = aor, .doc = doc, .len = len };
	uint32_t miss = 0;

	for (uint32_t i = 0; i < engine_nlcores(e); i++)
		if (engine_lcore_call(e, i, notice_fn, &q, timeout_ms) != 0)
			miss++;
	if (missed != NULL)
		*missed = miss;
	return (int)q.sent;
}

struct evict_req {
	const uint8_t	*raw;
	bool		all;
	unsigned	parted;
};

/* The ntc:part of xccos.md §b.7 for the leaver itself. */
static void
tell_evicted(struct conn *c, struct dialog *d, const char *room_uri)
{
	char uri[CONN_AOR_MAX + 8];
	struct xbuf b;

	snprintf(uri, sizeof(uri), "sip:%s", c->aor);
	xbuf_init(&b, 0);
	xccos_begin(&b, d->envid++);
	xccos_ntc_begin(&b, "part");
	xbuf_str(&b, "<chanib");
	xbuf_attr(&b, "uri", room_uri);
	xbuf_str(&b, "><uib");
	xbuf_attr(&b, "uri", uri);
	xbuf_str(&b, "/></chanib>");
	xccos_ntc_end(&b);
	xccos_end(&b);
	if (xbuf_ok(&b))
		dialog_send_info(c, d, b.p, b.len);
	xbuf_free(&b);
}

static void
evict_fn(struct lcore_ctx *lc, void *arg)
{
	struct evict_req *q = arg;
	const struct roomtab_ent *r = roomtab_find_raw(roomtab_of(lc), q->raw);

	for (struct conn *c = lcore_conns(lc); c != NULL; c = c->next) {
		if (c->state != CONN_OPEN || c->aor[0] == '\0')
			continue;
		if (!q->all && r != NULL && roomtab_may_join(r, c->aor))
			continue;
		for (struct dialog *d = c->dialogs; d != NULL; d = d->next) {
			if (d->svc != DIALOG_CHANNEL || !fanout_is_joined(d, q->raw))
				continue;
			if (r != NULL)
				tell_evicted(c, d, r->cat->uri);
			fanout_part(lc, d, q->raw);
			q->parted++;
		}
	}
}

int
chatctl_evict(struct engine *e, const uint8_t raw[CATALOG_ID_RAW], bool all,
		 uint32_t *missed, int timeout_ms)
{
	struct evict_req q = { .raw = raw, .all = all };
	uint32_t miss = 0;

	for (uint32_t i = 0; i < engine_nlcores(e); i++)
		if (engine_lcore_call(e, i, evict_fn, &q, timeout_ms) != 0)
			miss++;
	if (missed != NULL)
		*missed = miss;
	return (int)q.parted;
}

/* Takes what reload and publish left in the lcore's slots now, exactly as
 * the lcore would at the top of its next turn. */
static void
take_pending_fn(struct lcore_ctx *lc, void *arg)
{
	lcore_take_pending(lc);
}

static void
noop_fn(struct lcore_ctx *lc, void *arg)
{
}

int
chatctl_settle(struct engine *e, int timeout_ms)
{
	int first = 0;

	for (uint32_t i = 0; i < engine_nlcores(e); i++) {
		/* The swaps happen in the first call. The listener follows the
		 * wanted state after the call of the turn that first read it,
		 * which may be the second call's turn: the third call starts
		 * only once that turn finished. */
		int rc = engine_lcore_call(e, i, take_pending_fn, NULL, timeout_ms);

		if (rc == 0)
			rc = engine_lcore_call(e, i, noop_fn, NULL, timeout_ms);
		if (rc == 0)
			rc = engine_lcore_call(e, i, noop_fn, NULL, timeout_ms);
		if (rc == -ETIMEDOUT && first == 0)
			first = rc;
	}
	return first;
}

uint32_t
chatctl_ring_count(const struct engine *e, uint32_t src, uint32_t dst)
{
	return fanout_ring_count(e, src, dst);
}

uint32_t
chatctl_ring_size(const struct engine *e)
{
	return fanout_ring_size(e);
}
