/* What the server sends one simulated user (see agent.h): its requests
 * answered with 200, the XCCOS body of an INFO read (a post delivered,
 * counted and timed; the replies to the sign-in's commands, a refused post,
 * history), and the fast path that answers and reads an INFO without a full
 * parse. The sign-in and the load are in agent.c. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/base/clock.h"
#include "perf/agent.h"
#include "perf/agent_int.h"
#include "perf/gcclient.h"
#include "perf/loadkit.h"

/* 200 OK to a server request, echoing Via, From, To, Call-ID and CSeq. */
static void
answer(struct agent *a, const struct sipmsg *m)
{
	size_t cap = 64, n = 0;
	char *o;

	for (unsigned i = 0; i < m->nhdr; i++)
		cap += m->hdr[i].name.len + m->hdr[i].value.len + 4;
	o = nbconn_reserve(&a->c, cap);
	if (o == NULL)
		return;
	memcpy(o, "SIP/2.0 200 OK\r\n", 16);
	n = 16;
	for (unsigned i = 0; i < m->nhdr; i++) {
		const struct sip_hdr *h = &m->hdr[i];

		if (h->id != SIP_H_VIA && h->id != SIP_H_FROM && h->id != SIP_H_TO &&
		    h->id != SIP_H_CALL_ID && h->id != SIP_H_CSEQ)
			continue;
		memcpy(o + n, h->name.p, h->name.len);
		n += h->name.len;
		o[n++] = ':';
		o[n++] = ' ';
		memcpy(o + n, h->value.p, h->value.len);
		n += h->value.len;
		o[n++] = '\r';
		o[n++] = '\n';
	}
	memcpy(o + n, "Content-Length: 0\r\n\r\n", 21);
	nbconn_commit(&a->c, n + 21);
}

static void
on_grpchat(struct agent *a, const char *body, size_t len)
{
	struct worker *w = a->w;
	const struct bench_conf *c = agent_conf(a);
	const char *p = memmem(body, len, "<chat>pb ", 9), *end = body + len;
	uint64_t g, s, t, now = clock_mono_ns();
	bool ok = true;

	if (p == NULL || a->rx == NULL) {
		ctr_add(w, C_BAD_DELIVERY, 1);
		return;
	}
	p += 9;
	g = loadkit_num(&p, end, &ok);
	s = loadkit_num(&p, end, &ok);
	t = loadkit_num(&p, end, &ok);
	if (!ok || g >= w->b->total || s == 0 || s > UINT32_MAX) {
		ctr_add(w, C_BAD_DELIVERY, 1);
		return;
	}
	if (g / c->members != a->room) {
		ctr_add(w, C_MISROUTED, 1);
		return;
	}
	if (!loadkit_rx_mark(&a->rx[g % c->members], (uint32_t)s)) {
		ctr_add(w, C_DUP, 1);
		return;
	}
	ctr_add(w, C_DELIVERED, 1);
	if (worker_sec(w, now) != NULL)
		worker_sec(w, now)->delivered++;
	if (worker_sec(w, t) != NULL && now >= t)
		hist_add(&worker_sec(w, t)->lat, now - t);
	if (g == a->gid)
		ctr_add(w, C_ECHO, 1);
	if (in_window(w, now)) {
		ctr_add(w, C_DELIVERED_WIN, 1);
		if (g == a->gid)
			ctr_add(w, C_ECHO_WIN, 1);
	}
	if (in_window(w, t) && now >= t) {
		hist_add(&w->lat, now - t);
		/* Client n is on server n % ndst (agent_start). */
		if (c->ndst > 1)
			hist_add(g % c->ndst == a->gid % c->ndst ? &w->lat_local : &w->lat_remote,
				 now - t);
	}
}

static int
resp_code(const char *body, size_t len)
{
	const char *p = memmem(body, len, "<resp code=\"", 12);

	return p != NULL ? atoi(p + 12) : -1;
}

/* The first client's room search (user-space mode): every room's URI by
 * name, then the others may start. A missing room ends the run. */
static void
on_chansrch(struct agent *a, const char *body, size_t len, uint64_t now)
{
	struct bench *b = a->w->b;
	char *z = strndup(body, len);

	if (z == NULL) {
		agent_fail(a, "out of memory", now);
		return;
	}
	for (uint32_t r = 0; r < b->c.rooms; r++) {
		char name[64];

		snprintf(name, sizeof(name), "%s%u", b->c.room_prefix, r);
		if (!gc_room_uri(z, name, b->room_uri[r], BENCH_URI_MAX)) {
			agent_note_error(a, "the server has no room '%s' (declare [room:%s] in its "
				   "config, one per room up to %s%u)", name, name,
				   b->c.room_prefix, b->c.rooms - 1);
			free(z);
			atomic_store(&b->scout_failed, true);
			agent_fail(a, "room missing", now);
			return;
		}
	}
	free(z);
	atomic_store_explicit(&b->rooms_known, true, memory_order_release);
	agent_send_join(a, now);
}

static void
on_reply(struct agent *a, const char *name, size_t nlen, const char *body, size_t len,
	 uint64_t now)
{
	struct worker *w = a->w;
	int code = resp_code(body, len);

#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
	if (IS("requri") && a->state == AG_REQURI) {
		const char *u = memmem(body, len, "uib uri=\"", 9), *e;

		e = u ? memchr(u + 9, '"', (size_t)(body + len - u - 9)) : NULL;
		if (e == NULL || (size_t)(e - u - 9) >= sizeof(a->chan_uri)) {
			agent_fail(a, "rpl:requri without a channel URI", now);
			return;
		}
		memcpy(a->chan_uri, u + 9, (size_t)(e - u - 9));
		a->chan_uri[e - u - 9] = '\0';
		{
			char uri[160];

			snprintf(uri, sizeof(uri), "sip:ocschat@%s", agent_conf(a)->domain);
			a->look.cseq++;
			if (!agent_send_req(a, "BYE", a->target, uri, &a->look, NULL, NULL, NULL)) {
				agent_fail(a, "cannot build BYE", now);
				return;
			}
		}
		agent_set_state(a, AG_LOOKUP_BYE, now);
	} else if (IS("chansrch") && a->state == AG_CHANSRCH) {
		on_chansrch(a, body, len, now);
	} else if (IS("join") && a->state == AG_JOIN) {
		if (code != 200) {
			agent_note_error(a, "rpl:join code %d", code);
			agent_fail(a, "join refused", now);
			return;
		}
		atomic_fetch_add(&w->b->present[a->room], 1);
		ctr_add(w, C_JOINED, 1);
		agent_set_state(a, AG_READY, now);
	} else if (IS("grpchat")) {
		/* A refused post: its 200 came first and was counted. */
		if (worker_sec(w, now) != NULL) {
			worker_sec(w, now)->refused++;
			worker_sec(w, now)->ok--;
		}
		ctr_add(w, C_POSTS_REFUSED, 1);
		ctr_add(w, C_POSTS_OK, -1);
		ctr_add(w, C_EXPECTED, -(int64_t)atomic_load_explicit(&w->b->present[a->room],
								       memory_order_relaxed));
		agent_note_error(a, "a post was refused: rpl:grpchat code %d", code);
	} else if (IS("bccontext") && a->bcc_busy) {
		const char *p = body, *e = body + len;
		uint64_t n = 0;

		while ((p = memmem(p, (size_t)(e - p), "<msg ", 5)) != NULL) {
			n++;
			p += 5;
		}
		a->bcc_busy = false;
		if (code != 200) {
			ctr_add(w, C_HIST_ERRORS, 1);
		} else {
			ctr_add(w, C_HIST_REPLIES, 1);
			ctr_add(w, C_HIST_MSGS, (int64_t)n);
			if (in_window(w, now))
				ctr_add(w, C_HIST_REPLIES_WIN, 1);
			if (in_window(w, a->bcc_sent))
				hist_add(&w->hlat, now - a->bcc_sent);
		}
		if (w->phase == PHASE_RUN)
			agent_bccontext(a, now);
	} else if (code != 200) {
		ctr_add(w, C_OTHER_ERRORS, 1);
	}
#undef IS
}

/* A server INFO body: the first element inside <xccos> says what it is. */
static void
on_body(struct agent *a, const char *body, size_t len, uint64_t now)
{
	const char *p = memmem(body, len, "<xccos", 6), *end = body + len;

	if (p != NULL)
		p = memchr(p, '>', (size_t)(end - p));
	if (p == NULL) {
		ctr_add(a->w, C_OTHER_ERRORS, 1);
		return;
	}
	p++;
	while (p < end && (*p == ' ' || *p == '\r' || *p == '\n' || *p == '\t'))
		p++;
	if (end - p > 8 && memcmp(p, "<grpchat", 8) == 0) {
		on_grpchat(a, p, (size_t)(end - p));
	} else if (end - p > 13 && memcmp(p, "<rpl id=\"rpl:", 13) == 0) {
		const char *n = p + 13, *q = memchr(n, '"', (size_t)(end - n));

		if (q != NULL)
			on_reply(a, n, (size_t)(q - n), p, (size_t)(end - p), now);
	} else if (end - p > 4 && memcmp(p, "<ntc", 4) == 0) {
		ctr_add(a->w, C_NOTICES, 1);
	}
}

void
agent_rx_request(struct agent *a, const struct sipmsg *m, uint64_t now)
{
	if (m->method == SIP_M_ACK)
		return;
	answer(a, m);
	if (m->method != SIP_M_INFO) {
		ctr_add(a->w, C_OTHER_ERRORS, 1);
		return;
	}
	ctr_add(a->w, C_INFOS_IN, 1);
	if (m->body.len > 0)
		on_body(a, m->body.p, m->body.len, now);
}

/* Whether the header named <p> (<n> bytes) is one an answer echoes: Via,
 * From, To, Call-ID, CSeq, or their compact forms. */
static bool
echoed(const char *p, size_t n)
{
	switch (n) {
	case 1:
		return strchr("vftiVFTI", *p) != NULL;
	case 2:
		return strncasecmp(p, "To", 2) == 0;
	case 3:
		return strncasecmp(p, "Via", 3) == 0;
	case 4:
		return strncasecmp(p, "From", 4) == 0 || strncasecmp(p, "CSeq", 4) == 0;
	case 7:
		return strncasecmp(p, "Call-ID", 7) == 0;
	default:
		return false;
	}
}

/* A server INFO, answered and handled without a full parse (the generator's
 * cost per delivery): the 200 copies the echoed header lines as they are,
 * and the body follows the blank line. false when <msg> is not an INFO or
 * looks unusual: the full parse then handles it. */
bool
agent_rx_info_fast(struct agent *a, const char *msg, size_t len, uint64_t now)
{
	const char *end = msg + len, *p, *body = NULL;
	bool echo = false;
	size_t n = 16;
	char *o;

	if (len < 5 || memcmp(msg, "INFO ", 5) != 0)
		return false;
	p = memchr(msg, '\n', len);
	o = p != NULL ? nbconn_reserve(&a->c, len + 64) : NULL;
	if (o == NULL)
		return false;
	memcpy(o, "SIP/2.0 200 OK\r\n", 16);
	for (p++; p < end; ) {
		const char *e = memchr(p, '\n', (size_t)(end - p)), *colon, *t;

		if (e == NULL)
			return false;
		if (e - p <= 1) {	/* the blank line */
			body = e + 1;
			break;
		}
		if (*p != ' ' && *p != '\t') {	/* not a continuation line */
			colon = memchr(p, ':', (size_t)(e - p));
			if (colon == NULL)
				return false;
			for (t = colon; t > p && (t[-1] == ' ' || t[-1] == '\t'); t--)
				;
			echo = echoed(p, (size_t)(t - p));
		}
		if (echo) {
			memcpy(o + n, p, (size_t)(e - p + 1));
			n += (size_t)(e - p + 1);
		}
		p = e + 1;
	}
	if (body == NULL)
		return false;
	memcpy(o + n, "Content-Length: 0\r\n\r\n", 21);
	nbconn_commit(&a->c, n + 21);
	ctr_add(a->w, C_INFOS_IN, 1);
	if (body < end)
		on_body(a, body, (size_t)(end - body), now);
	return true;
}
