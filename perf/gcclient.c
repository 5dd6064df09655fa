/* Group Chat client for tests and the load generator; see gcclient.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dataplane/base/clock.h"
#include "dataplane/sip/sipmsg.h"
#include "perf/client.h"
#include "perf/gcclient.h"

#define QMAX	65536

struct gc {
	struct pc_conn	*c;
	char		aor[160];
	char		domain[128];
	char		chan_uri[200];
	struct pc_dialog chan;
	char		target[256];	/* Request-URI of in-dialog requests */
	unsigned long	envid;
	char		**q;		/* queued server INFO bodies */
	size_t		qhead, qn;
};

static void
queue_push(struct gc *g, char *body)
{
	if (g->qn == QMAX) {	/* the caller does not read: drop the oldest */
		free(g->q[g->qhead]);
		g->qhead = (g->qhead + 1) % QMAX;
		g->qn--;
	}
	g->q[(g->qhead + g->qn) % QMAX] = body;
	g->qn++;
}

/* 200 to a server request, echoing its Via, From, To, Call-ID and CSeq. */
static void
answer(struct gc *g, const struct sipmsg *m)
{
	char out[4096];
	int n = snprintf(out, sizeof(out), "SIP/2.0 200 OK\r\n");

	for (unsigned i = 0; i < m->nhdr && n < (int)sizeof(out); i++) {
		const struct sip_hdr *h = &m->hdr[i];

		if (h->id == SIP_H_VIA || h->id == SIP_H_FROM || h->id == SIP_H_TO ||
		    h->id == SIP_H_CALL_ID || h->id == SIP_H_CSEQ)
			n += snprintf(out + n, sizeof(out) - n, "%.*s: %.*s\r\n", (int)h->name.len,
				      h->name.p, (int)h->value.len, h->value.p);
	}
	if (n < (int)sizeof(out))
		n += snprintf(out + n, sizeof(out) - n, "Content-Length: 0\r\n\r\n");
	if (n < (int)sizeof(out))
		pc_send(g->c, out, n);
}

/* One message: server requests are answered and their bodies queued.
 * Returns 1 with a response in <m>, 2 after a request, 0 timeout, -1. */
static int
step(struct gc *g, struct sipmsg *m, int timeout_ms)
{
	int r = pc_recv(g->c, m, timeout_ms);

	if (r != 1)
		return r;
	if (m->status != 0)
		return 1;
	answer(g, m);
	if (m->method == SIP_M_INFO && m->body.len > 0) {
		char *b = malloc(m->body.len + 1);

		if (b != NULL) {
			memcpy(b, m->body.p, m->body.len);
			b[m->body.len] = '\0';
			queue_push(g, b);
		}
	}
	return 2;
}

/* Waits for the final response to CSeq <cseq> of the dialog <callid>. */
static int
await(struct gc *g, const char *callid, uint32_t cseq, int timeout_ms, struct sipmsg *m)
{
	int64_t end = clock_mono_ms() + timeout_ms;

	for (;;) {
		int left = (int)(end - (int64_t)clock_mono_ms()), r;

		if (left <= 0)
			return -1;
		r = step(g, m, left);
		if (r < 0)
			return -1;
		if (r == 1 && m->status >= 200 && m->cseq == cseq &&
		    m->call_id.len == strlen(callid) && memcmp(m->call_id.p, callid, m->call_id.len) == 0)
			return m->status;
	}
}

static void
to_tag_of(const struct sipmsg *m, struct pc_dialog *d)
{
	snprintf(d->to_tag, sizeof(d->to_tag), "%.*s", (int)m->to_tag.len, m->to_tag.p);
}

static void
contact_of(const struct sipmsg *m, char *out, size_t cap, const char *dflt)
{
	char v[300], *a, *b;

	snprintf(out, cap, "%s", dflt);
	if (!pc_header(m, "Contact", v, sizeof(v)))
		return;
	a = strchr(v, '<');
	b = a ? strchr(a, '>') : NULL;
	if (a && b) {
		*b = '\0';
		snprintf(out, cap, "%s", a + 1);
	}
}

static const char sdp[] =
	"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=session\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
	"m=message 5061 sip null\r\na=accept-types:text/plain\r\n";

/* INVITE <uri>, ACK: the dialog in <d> and the target in <target>. */
static int
invite(struct gc *g, const char *uri, struct pc_dialog *d, char *target, size_t tcap)
{
	char req[4096];
	struct sipmsg m;
	ssize_t n;
	int st;

	memset(d, 0, sizeof(*d));
	d->cseq = 1;
	n = pc_build(req, sizeof(req), "INVITE", uri, g->aor, uri, d,
		     "Supported: ms-sender\r\nSupported: timer\r\n", "application/sdp", sdp);
	if (n < 0 || pc_send(g->c, req, n) != 0)
		return -1;
	st = await(g, d->call_id, d->cseq, 5000, &m);
	if (st != 200)
		return st;
	to_tag_of(&m, d);
	contact_of(&m, target, tcap, uri);
	n = pc_build(req, sizeof(req), "ACK", target, g->aor, uri, d, NULL, NULL, NULL);
	if (n < 0 || pc_send(g->c, req, n) != 0)
		return -1;
	return 200;
}

static int
info_on(struct gc *g, struct pc_dialog *d, const char *target, const char *to,
	const char *body, struct sipmsg *m)
{
	size_t cap = strlen(body) + 2048;
	char *req = malloc(cap);
	ssize_t n;
	int st;

	if (req == NULL)
		return -1;
	d->cseq++;
	n = pc_build(req, cap, "INFO", target, g->aor, to, d, NULL, "text/plain", body);
	st = n < 0 || pc_send(g->c, req, n) != 0 ? -1 : await(g, d->call_id, d->cseq, 10000, m);
	free(req);
	return st;
}

struct gc *
gc_open(const char *host, uint16_t port, const char *aor, const char *password, char *err,
	size_t errlen)
{
	return gc_open_to(host, port, aor, password, NULL, err, errlen);
}

struct gc *
gc_open_to(const char *host, uint16_t port, const char *aor, const char *password,
	   const char *ruri, char *err, size_t errlen)
{
	struct gc *g = calloc(1, sizeof(*g));
	struct pc_dialog look;
	char lookup[300], target[256], body[512], *rpl, *u, *e;
	struct sipmsg m;
	int st;

	if (g == NULL || (g->q = calloc(QMAX, sizeof(*g->q))) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(g);
		return NULL;
	}
	snprintf(g->aor, sizeof(g->aor), "%s", aor);
	snprintf(g->domain, sizeof(g->domain), "%s", strchr(aor, '@') ? strchr(aor, '@') + 1 : aor);
	g->envid = 1000 + (unsigned long)(rand() % 100000);
	g->c = pc_connect(host, port, NULL, 5000, err, errlen);
	if (g->c == NULL)
		goto out_free;
	st = pc_register_to(g->c, aor, password, 3600, ruri, "Warning", NULL, 0);
	if (st != 200) {
		snprintf(err, errlen, "REGISTER: %d", st);
		goto out_free;
	}
	snprintf(lookup, sizeof(lookup), "sip:ocschat@%s", g->domain);
	st = invite(g, lookup, &look, target, sizeof(target));
	if (st != 200) {
		snprintf(err, errlen, "INVITE %s: %d", lookup, st);
		goto out_free;
	}
	snprintf(body, sizeof(body), "<xccos ver=\"1\" envid=\"%lu\" xmlns=\"urn:parlano:xml:ns:xccos\">"
		 "<cmd id=\"cmd:requri\" seqid=\"1\"><data/></cmd></xccos>", g->envid++);
	st = info_on(g, &look, target, lookup, body, &m);
	rpl = st == 200 ? gc_wait(g, 5000, "rpl:requri", NULL) : NULL;
	u = rpl ? strstr(rpl, "uib uri=\"") : NULL;
	e = u ? strchr(u + 9, '"') : NULL;
	if (e == NULL) {
		snprintf(err, errlen, "requri: no channel URI (INFO %d)", st);
		free(rpl);
		goto out_free;
	}
	snprintf(g->chan_uri, sizeof(g->chan_uri), "%.*s", (int)(e - u - 9), u + 9);
	free(rpl);
	{
		char req[2048];
		ssize_t n;

		look.cseq++;
		n = pc_build(req, sizeof(req), "BYE", target, aor, lookup, &look, NULL, NULL, NULL);
		if (n < 0 || pc_send(g->c, req, n) != 0 || await(g, look.call_id, look.cseq, 5000, &m) != 200) {
			snprintf(err, errlen, "BYE on the lookup dialog failed");
			goto out_free;
		}
	}
	st = invite(g, g->chan_uri, &g->chan, g->target, sizeof(g->target));
	if (st != 200) {
		snprintf(err, errlen, "INVITE %s: %d", g->chan_uri, st);
		goto out_free;
	}
	return g;

out_free:
	gc_abort(g);
	return NULL;
}

void
gc_abort(struct gc *g)
{
	if (g == NULL)
		return;
	pc_close(g->c);
	while (g->qn > 0)
		free(gc_next(g));
	free(g->q);
	free(g);
}

void
gc_close(struct gc *g)
{
	if (g == NULL)
		return;
	if (g->c != NULL && g->chan.to_tag[0] != '\0')
		gc_request(g, "BYE");
	gc_abort(g);
}

const char *
gc_channel_uri(const struct gc *g)
{
	return g->chan_uri;
}

const char *
gc_aor(const struct gc *g)
{
	return g->aor;
}

struct pc_conn *
gc_conn(struct gc *g)
{
	return g->c;
}

int
gc_info(struct gc *g, const char *body)
{
	struct sipmsg m;

	return info_on(g, &g->chan, g->target, g->chan_uri, body, &m);
}

int
gc_cmd(struct gc *g, const char *name, const char *data)
{
	size_t cap = strlen(data) + 512;
	char *b = malloc(cap);
	int st;

	if (b == NULL)
		return -1;
	snprintf(b, cap, "<xccos ver=\"1\" envid=\"%lu\" xmlns=\"urn:parlano:xml:ns:xccos\">"
		 "<cmd id=\"cmd:%s\" seqid=\"1\"><data>%s</data></cmd></xccos>", g->envid++, name,
		 data);
	st = gc_info(g, b);
	free(b);
	return st;
}

static void
escape(const char *s, char *out, size_t cap)
{
	size_t n = 0;

	for (; *s && n + 7 < cap; s++) {
		const char *r = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" :
				*s == '"' ? "&quot;" : NULL;

		if (r != NULL)
			n += (size_t)sprintf(out + n, "%s", r);
		else
			out[n++] = *s;
	}
	out[n] = '\0';
}

int
gc_post(struct gc *g, const char *room_uri, const char *text, const char *author)
{
	size_t cap = strlen(text) * 6 + 1024;
	char *esc = malloc(cap), *b = malloc(cap + 512), who[200];
	int st = -1;

	if (esc != NULL && b != NULL) {
		escape(text, esc, cap);
		snprintf(who, sizeof(who), "%s%s", author ? "" : "sip:", author ? author : g->aor);
		snprintf(b, cap + 512, "<xccos ver=\"1\" envid=\"%lu\" xmlns=\"urn:parlano:xml:ns:xccos\">"
			 "<grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"%s\" author=\"%s\" "
			 "ts=\"2010-09-21T09:48:10Z\"><chat>%s</chat></grpchat></xccos>",
			 g->envid++, room_uri, who, esc);
		st = gc_info(g, b);
	}
	free(esc);
	free(b);
	return st;
}

int
gc_request(struct gc *g, const char *method)
{
	char req[2048];
	struct sipmsg m;
	ssize_t n;

	g->chan.cseq++;
	n = pc_build(req, sizeof(req), method, g->target, g->aor, g->chan_uri, &g->chan, NULL,
		     NULL, NULL);
	if (n < 0 || pc_send(g->c, req, n) != 0)
		return -1;
	return await(g, g->chan.call_id, g->chan.cseq, 5000, &m);
}

static bool
matches(const char *body, va_list ap)
{
	const char *needle;

	while ((needle = va_arg(ap, const char *)) != NULL)
		if (strstr(body, needle) == NULL)
			return false;
	return true;
}

static char *
take_match(struct gc *g, va_list ap0)
{
	for (size_t i = 0; i < g->qn; i++) {
		size_t k = (g->qhead + i) % QMAX;
		va_list ap;
		bool ok;
		char *b;

		va_copy(ap, ap0);
		ok = matches(g->q[k], ap);
		va_end(ap);
		if (!ok)
			continue;
		b = g->q[k];
		/* Close the gap, keeping order. */
		for (size_t j = i; j + 1 < g->qn; j++)
			g->q[(g->qhead + j) % QMAX] = g->q[(g->qhead + j + 1) % QMAX];
		g->qn--;
		return b;
	}
	return NULL;
}

char *
gc_wait(struct gc *g, int timeout_ms, ...)
{
	int64_t end = clock_mono_ms() + timeout_ms;
	struct sipmsg m;
	va_list ap;
	char *b;

	for (;;) {
		int left;

		va_start(ap, timeout_ms);
		b = take_match(g, ap);
		va_end(ap);
		if (b != NULL)
			return b;
		left = (int)(end - (int64_t)clock_mono_ms());
		if (left <= 0 || step(g, &m, left) < 0)
			return NULL;
	}
}

int
gc_pump(struct gc *g, int timeout_ms)
{
	int64_t end = clock_mono_ms() + timeout_ms;
	struct sipmsg m;

	for (;;) {
		int left = (int)(end - (int64_t)clock_mono_ms());

		if (left <= 0 || step(g, &m, left) <= 0)
			break;
	}
	return (int)g->qn;
}

char *
gc_next(struct gc *g)
{
	char *b;

	if (g->qn == 0)
		return NULL;
	b = g->q[g->qhead];
	g->qhead = (g->qhead + 1) % QMAX;
	g->qn--;
	return b;
}

int
gc_count(struct gc *g, const char *needle)
{
	int n = 0;

	for (size_t i = 0; i < g->qn; i++)
		n += strstr(g->q[(g->qhead + i) % QMAX], needle) != NULL;
	return n;
}

bool
gc_room_uri(const char *body, const char *name, char *out, size_t cap)
{
	char key[300];
	const char *p, *u, *e;

	snprintf(key, sizeof(key), " name=\"%s\"", name);
	p = strstr(body, key);
	if (p == NULL)
		return false;
	/* The uri attribute of the same chanib, before the name. */
	for (u = p; u > body && strncmp(u, "<chanib", 7) != 0; u--)
		;
	u = strstr(u, " uri=\"");
	if (u == NULL || u > p)
		return false;
	u += 6;
	e = strchr(u, '"');
	if (e == NULL || (size_t)(e - u) >= cap)
		return false;
	snprintf(out, cap, "%.*s", (int)(e - u), u);
	return true;
}

char *
gc_join(struct gc *g, const char *uri, int timeout_ms)
{
	const char *slash = strrchr(uri, '/');
	const char *dom = strstr(uri, "://");
	char data[512];

	if (slash == NULL || dom == NULL)
		return NULL;
	dom += 3;
	snprintf(data, sizeof(data), "<chanid key=\"0\" domain=\"%.*s\" value=\"%s\"/>",
		 (int)(slash - dom), dom, slash + 1);
	if (gc_cmd(g, "join", data) != 200)
		return NULL;
	return gc_wait(g, timeout_ms, "rpl:join", NULL);
}
