/* One simulated Group Chat user; see agent.h. Here: its life, the requests it
 * builds, the sign-in flow and the load; what the server sends it (INFOs,
 * deliveries, the replies to its commands) is read in agent_rx.c.
 *
 * The messages are the ones perf/gcclient.c sends (and the integration tests
 * check), built with pc_build() from perf/client.c straight into the
 * connection's output buffer. What a state waits for:
 *
 *   AG_REG1      407 (or 401) to REGISTER        -> REGISTER with Digest
 *   AG_REG2      200                             -> INVITE sip:ocschat@
 *   AG_LOOKUP    200 to the INVITE               -> ACK, INFO cmd:requri
 *   AG_REQURI    server INFO rpl:requri          -> BYE on the Lookup dialog
 *   AG_LOOKUP_BYE 200 to the BYE                 -> INVITE the Channel URI
 *   AG_CHANNEL   200 to the INVITE               -> ACK, INFO cmd:join
 *                (user-space mode, the first client, rooms not known yet:
 *                 -> ACK, INFO cmd:chansrch)
 *   AG_CHANSRCH  server INFO rpl:chansrch        -> every room's URI; cmd:join
 *   AG_JOIN      server INFO rpl:join, code 200  -> AG_READY
 *
 * A post's text starts with "pb <poster> <seq> <send time ns> ", padded to
 * the configured size; receivers find the poster's room and slot from the
 * poster number (room * members + slot) and detect duplicates with a 64-post
 * window per poster. Post texts never need XML escaping. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/base/clock.h"
#include "dataplane/sip/digest.h"
#include "perf/agent.h"
#include "perf/agent_int.h"
#include "perf/gcclient.h"

#define STEP_TIMEOUT_NS	(15 * 1000000000ull)	/* one sign-in step */
#define RETRY_NS	(500 * 1000000ull)
#define SETUP_TRIES	3
#define REQ_SLACK	2048			/* headers around a body */

static const char sdp[] =
	"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=session\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
	"m=message 5061 sip null\r\na=accept-types:text/plain\r\n";

static const char *const state_name[] = {
	[AG_IDLE] = "idle", [AG_CONNECTING] = "connect/TLS", [AG_REG1] = "REGISTER",
	[AG_REG2] = "REGISTER with Digest", [AG_LOOKUP] = "INVITE ocschat",
	[AG_REQURI] = "cmd:requri", [AG_LOOKUP_BYE] = "BYE lookup",
	[AG_CHANNEL] = "INVITE channel", [AG_CHANSRCH] = "cmd:chansrch", [AG_JOIN] = "cmd:join", [AG_READY] = "joined",
	[AG_FAILED] = "failed",
};

static bool
str_is(struct sip_str s, const char *z)
{
	size_t n = strlen(z);

	return s.len == n && memcmp(s.p, z, n) == 0;
}

void
agent_set_state(struct agent *a, enum agent_state s, uint64_t now)
{
	bool was = agent_in_setup(a);

	a->state = s;
	a->deadline = now + STEP_TIMEOUT_NS;
	if (was && !agent_in_setup(a))
		a->w->in_setup--;
	else if (!was && agent_in_setup(a))
		a->w->in_setup++;
}

void
agent_note_error(struct agent *a, const char *fmt, ...)
{
	struct worker *w = a->w;
	char why[160];
	va_list ap;

	if (w->first_error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(w->first_error, sizeof(w->first_error), "%.80s (during %s): %s", a->aor,
		 state_name[a->state], why);
}

void
agent_fail(struct agent *a, const char *why, uint64_t now)
{
	struct worker *w = a->w;
	enum agent_state was = a->state;

	agent_note_error(a, "%s", why);
	nbconn_close(&a->c, true);
	a->inflight = 0;
	a->bcc_busy = false;
	if (agent_conf(a)->mode == MODE_CONNECT) {
		ctr_add(w, C_CONN_ERRORS, 1);
		agent_set_state(a, AG_IDLE, now);
		a->deadline = now + RETRY_NS / 5;	/* not before */
		return;
	}
	if (was == AG_READY) {
		atomic_fetch_sub(&w->b->present[a->room], 1);
		ctr_add(w, C_DISCONNECTS, 1);
		agent_set_state(a, AG_FAILED, now);
		return;
	}
	if (++a->tries < SETUP_TRIES && w->phase == PHASE_SETUP) {
		ctr_add(w, C_SETUP_RETRIES, 1);
		agent_set_state(a, AG_IDLE, now);
		a->deadline = now + RETRY_NS;
		return;
	}
	ctr_add(w, C_SETUP_FAILED, 1);
	agent_set_state(a, AG_FAILED, now);
}

int
agent_init(struct agent *a, struct worker *w, uint32_t gid)
{
	const struct bench_conf *c = &w->b->c;

	memset(a, 0, sizeof(*a));
	a->c.fd = -1;
	a->w = w;
	a->gid = gid;
	a->room = c->members ? gid / c->members : 0;
	a->envid = 1000;
	snprintf(a->aor, sizeof(a->aor), "%s%u@%s", c->user_prefix, c->user_base + gid, c->domain);
	if (c->mode == MODE_FANOUT && c->members > 0) {
		a->rx = calloc(c->members, sizeof(*a->rx));
		if (a->rx == NULL)
			return -ENOMEM;
	}
	return 0;
}

void
agent_fini(struct agent *a)
{
	nbconn_close(&a->c, true);
	free(a->rx);
	a->rx = NULL;
}

bool
agent_start(struct agent *a, uint64_t now)
{
	const struct bench_conf *c = agent_conf(a);
	struct sockaddr_in src = { .sin_family = AF_INET };
	int rc;

	memset(&a->reg, 0, sizeof(a->reg));
	memset(&a->look, 0, sizeof(a->look));
	memset(&a->chan, 0, sizeof(a->chan));
	a->srch_cseq = 0;
	memset(a->pend, 0, sizeof(a->pend));
	a->inflight = 0;
	a->bcc_busy = false;
	a->regs_left = c->regs_per_conn;
	src.sin_addr.s_addr = htonl(0x7f000001u + (c->nsrc > 1 ? a->gid % c->nsrc : 0));
	if (a->w->un != NULL)
		rc = nbconn_start_unet(&a->c, a->w->un, a, &c->dst, a->w->ctx);
	else
		rc = nbconn_start(&a->c, a->w->ep, a,
				  c->ndst > 1 ? &c->dsts[a->gid % c->ndst] : &c->dst,
				  c->nsrc > 1 ? &src : NULL, a->w->ctx);
	if (rc != 0) {
		agent_set_state(a, AG_CONNECTING, now);
		agent_fail(a, a->c.why, now);
		return false;
	}
	agent_set_state(a, AG_CONNECTING, now);
	return true;
}

/* ---- building requests -------------------------------------------------- */

bool
agent_send_req(struct agent *a, const char *method, const char *ruri, const char *to,
	 struct pc_dialog *d, const char *extra, const char *ctype, const char *body)
{
	size_t cap = (body ? strlen(body) : 0) + REQ_SLACK + (extra ? strlen(extra) : 0);
	char *o = nbconn_reserve(&a->c, cap);
	ssize_t n;

	if (o == NULL)
		return false;
	n = pc_build(o, cap, method, ruri, a->aor, to, d, extra, ctype, body);
	if (n < 0)
		return false;
	nbconn_commit(&a->c, (size_t)n);
	return true;
}

static void
send_register(struct agent *a, const char *auth, uint64_t now)
{
	const struct bench_conf *c = agent_conf(a);
	char ruri[160], to[220], extra[1024];

	/* Spread over an array's nodes: served where it lands. */
	snprintf(ruri, sizeof(ruri), "sip:%s%s", c->domain, c->ndst > 1 ? ";parley-placed" : "");
	snprintf(to, sizeof(to), "sip:%s", a->aor);
	snprintf(extra, sizeof(extra), "Expires: 3600\r\n%s", auth ? auth : "");
	a->reg.cseq++;
	if (!agent_send_req(a, "REGISTER", ruri, to, &a->reg, extra, NULL, NULL))
		agent_fail(a, "cannot build REGISTER", now);
	else
		agent_set_state(a, auth ? AG_REG2 : AG_REG1, now);
}

static void
send_invite(struct agent *a, const char *uri, struct pc_dialog *d, enum agent_state next,
	    uint64_t now)
{
	memset(d, 0, sizeof(*d));
	d->cseq = 1;
	if (!agent_send_req(a, "INVITE", uri, uri, d, "Supported: ms-sender\r\nSupported: timer\r\n",
		      "application/sdp", sdp))
		agent_fail(a, "cannot build INVITE", now);
	else
		agent_set_state(a, next, now);
}

/* An XCCOS command in an INFO on dialog <d>. */
static bool
send_cmd(struct agent *a, struct pc_dialog *d, const char *to, const char *name, const char *data)
{
	char body[1024];

	snprintf(body, sizeof(body), "<xccos ver=\"1\" envid=\"%" PRIu64 "\" "
		 "xmlns=\"urn:parlano:xml:ns:xccos\"><cmd id=\"cmd:%s\" seqid=\"1\">%s%s%s</cmd>"
		 "</xccos>", a->envid++, name, data ? "<data>" : "<data/>", data ? data : "",
		 data ? "</data>" : "");
	d->cseq++;
	return agent_send_req(a, "INFO", a->target, to, d, NULL, "text/plain", body);
}

void
agent_send_join(struct agent *a, uint64_t now)
{
	const char *uri = a->w->b->room_uri[a->room];
	const char *slash = strrchr(uri, '/'), *dom = strstr(uri, "://");
	char data[512];

	if (slash == NULL || dom == NULL) {
		agent_fail(a, "bad room URI", now);
		return;
	}
	dom += 3;
	snprintf(data, sizeof(data), "<chanid key=\"0\" domain=\"%.*s\" value=\"%s\"/>",
		 (int)(slash - dom), dom, slash + 1);
	if (!send_cmd(a, &a->chan, a->chan_uri, "join", data)) {
		agent_fail(a, "cannot build cmd:join", now);
		return;
	}
	a->join_cseq = a->chan.cseq;
	agent_set_state(a, AG_JOIN, now);
}

/* ---- the sign-in flow ---------------------------------------------------- */

/* Parameter <name> of a Digest challenge, into <out>. */
static bool
chal_param(struct sip_str h, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);

	for (uint32_t i = 0; i + nl < h.len; i++) {
		const char *p = h.p + i, *v, *e, *end = h.p + h.len;

		if (strncasecmp(p, name, nl) != 0 || p[nl] != '=' ||
		    (i > 0 && p[-1] != ' ' && p[-1] != ','))
			continue;
		v = p + nl + 1;
		if (v < end && *v == '"') {
			v++;
			e = memchr(v, '"', (size_t)(end - v));
		} else {
			for (e = v; e < end && *e != ',' && *e != ' '; e++)
				;
		}
		if (e == NULL || (size_t)(e - v) >= cap)
			return false;
		memcpy(out, v, (size_t)(e - v));
		out[e - v] = '\0';
		return true;
	}
	return false;
}

static void
on_challenge(struct agent *a, const struct sipmsg *m, uint64_t now)
{
	const struct bench_conf *c = agent_conf(a);
	const struct sip_hdr *h = sipmsg_find_name(m, m->status == 407 ? "Proxy-Authenticate" :
						   "WWW-Authenticate");
	char realm[128], nonce[160], alg[32] = "MD5", ha1[65], resp[65], cnonce[17];
	char ruri[160], auth[1024];
	enum digest_alg da;

	if (h == NULL || !chal_param(h->value, "realm", realm, sizeof(realm)) ||
	    !chal_param(h->value, "nonce", nonce, sizeof(nonce))) {
		agent_fail(a, "REGISTER challenge without realm or nonce", now);
		return;
	}
	chal_param(h->value, "algorithm", alg, sizeof(alg));
	da = strcasecmp(alg, "SHA-256") == 0 ? DIGEST_SHA256 : DIGEST_MD5;
	snprintf(ruri, sizeof(ruri), "sip:%s%s", c->domain, c->ndst > 1 ? ";parley-placed" : "");
	snprintf(cnonce, sizeof(cnonce), "%08x%08x", a->gid, (unsigned)(now & 0xffffffffu));
	digest_ha1(da, a->aor, realm, c->password, ha1);
	digest_response(da, ha1, nonce, "00000001", cnonce, "auth", "REGISTER", ruri, resp);
	snprintf(auth, sizeof(auth),
		 "%s: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", "
		 "response=\"%s\", algorithm=%s, qop=auth, nc=00000001, cnonce=\"%s\"\r\n",
		 m->status == 407 ? "Proxy-Authorization" : "Authorization", a->aor, realm, nonce,
		 ruri, resp, alg, cnonce);
	send_register(a, auth, now);
}

static void
lookup_invite(struct agent *a, uint64_t now)
{
	char uri[160];

	snprintf(uri, sizeof(uri), "sip:ocschat@%s", agent_conf(a)->domain);
	send_invite(a, uri, &a->look, AG_LOOKUP, now);
}

static void
on_register(struct agent *a, const struct sipmsg *m, uint64_t now)
{
	struct worker *w = a->w;

	if (a->state == AG_REG1 && (m->status == 401 || m->status == 407)) {
		on_challenge(a, m, now);
		return;
	}
	if (m->status != 200) {
		agent_note_error(a, "REGISTER answered %d", m->status);
		agent_fail(a, "REGISTER refused", now);
		return;
	}
	if (agent_conf(a)->mode != MODE_CONNECT) {
		lookup_invite(a, now);
		return;
	}
	ctr_add(w, C_REGISTERS, 1);
	if (in_window(w, now))
		ctr_add(w, C_REGISTERS_WIN, 1);
	if (--a->regs_left > 0) {
		send_register(a, NULL, now);
		return;
	}
	nbconn_close(&a->c, true);
	agent_set_state(a, AG_IDLE, now);
	if (w->phase == PHASE_RUN)
		agent_start(a, now);
}

/* The target of a dialog from the Contact of its 200, else <dflt>. */
static void
take_contact(const struct sipmsg *m, char *out, size_t cap, const char *dflt)
{
	const struct sip_hdr *h = sipmsg_find(m, SIP_H_CONTACT);
	const char *lt, *gt;

	snprintf(out, cap, "%s", dflt);
	if (h == NULL)
		return;
	lt = memchr(h->value.p, '<', h->value.len);
	gt = lt ? memchr(lt, '>', (size_t)(h->value.p + h->value.len - lt)) : NULL;
	if (lt != NULL && gt != NULL && (size_t)(gt - lt - 1) < cap)
		snprintf(out, cap, "%.*s", (int)(gt - lt - 1), lt + 1);
}

/* 200 to an INVITE: remember the dialog, ACK. */
static bool
established(struct agent *a, const struct sipmsg *m, struct pc_dialog *d, const char *uri)
{
	if (m->to_tag.len >= sizeof(d->to_tag))
		return false;
	memcpy(d->to_tag, m->to_tag.p, m->to_tag.len);
	d->to_tag[m->to_tag.len] = '\0';
	take_contact(m, a->target, sizeof(a->target), uri);
	return agent_send_req(a, "ACK", a->target, uri, d, NULL, NULL, NULL);
}

static void
on_lookup(struct agent *a, const struct sipmsg *m, uint64_t now)
{
	char uri[160];

	snprintf(uri, sizeof(uri), "sip:ocschat@%s", agent_conf(a)->domain);
	if (m->status != 200) {
		agent_note_error(a, "Lookup dialog request answered %d", m->status);
		agent_fail(a, "Lookup service refused", now);
		return;
	}
	if (a->state == AG_LOOKUP && m->cseq_method == SIP_M_INVITE) {
		if (!established(a, m, &a->look, uri) ||
		    !send_cmd(a, &a->look, uri, "requri", NULL)) {
			agent_fail(a, "cannot answer the Lookup 200", now);
			return;
		}
		agent_set_state(a, AG_REQURI, now);
	} else if (a->state == AG_LOOKUP_BYE && m->cseq_method == SIP_M_BYE) {
		send_invite(a, a->chan_uri, &a->chan, AG_CHANNEL, now);
	}
}

static void
post_acked(struct agent *a, const struct sipmsg *m, uint64_t now)
{
	struct worker *w = a->w;
	unsigned slot = m->cseq % AGENT_PEND;

	if (a->pend[slot].cseq != m->cseq || a->pend[slot].sent == 0) {
		ctr_add(w, C_OTHER_ERRORS, 1);
		return;
	}
	if (a->inflight > 0)
		a->inflight--;
	if (m->status == 200) {
		struct series_sec *r = worker_sec(w, now);

		if (r != NULL)
			r->ok++;
		ctr_add(w, C_POSTS_OK, 1);
		ctr_add(w, C_EXPECTED, atomic_load_explicit(&w->b->present[a->room],
							    memory_order_relaxed));
		if (in_window(w, a->pend[slot].sent))
			hist_add(&w->ack, now - a->pend[slot].sent);
	} else {
		ctr_add(w, C_POST_ERRORS, 1);
		agent_note_error(a, "a post was answered %d", m->status);
	}
	a->pend[slot].sent = 0;
	/* Unpaced: keep the pipeline full. */
	if (w->b->c.rate == 0 && w->phase == PHASE_RUN)
		agent_post(a, now, now);
}

static void
on_channel(struct agent *a, const struct sipmsg *m, uint64_t now)
{
	struct worker *w = a->w;

	if (m->cseq_method == SIP_M_INVITE && a->state == AG_CHANNEL) {
		if (m->status != 200) {
			agent_fail(a, "the Channel INVITE was refused", now);
			return;
		}
		if (!established(a, m, &a->chan, a->chan_uri)) {
			agent_fail(a, "cannot ACK the Channel 200", now);
			return;
		}
		if (atomic_load_explicit(&w->b->rooms_known, memory_order_acquire)) {
			agent_send_join(a, now);
			return;
		}
		if (!send_cmd(a, &a->chan, a->chan_uri, "chansrch",
			      "<qib qtype=\"BYNAME\" criteria=\"\" extended=\"false\"/>"))
			agent_fail(a, "cannot build cmd:chansrch", now);
		else
			agent_set_state(a, AG_CHANSRCH, now);
		a->srch_cseq = a->chan.cseq;
		return;
	}
	if (m->cseq_method != SIP_M_INFO)
		return;
	if (m->cseq == a->join_cseq || (a->srch_cseq != 0 && m->cseq == a->srch_cseq)) {
		if (m->status != 200)
			agent_fail(a, "cmd:join or cmd:chansrch INFO not answered 200", now);
		return;
	}
	if (agent_conf(a)->mode == MODE_FANOUT) {
		post_acked(a, m, now);
		return;
	}
	if (m->status != 200)
		ctr_add(w, C_HIST_ERRORS, 1);
}

static void
on_response(struct agent *a, const struct sipmsg *m, uint64_t now)
{
	if (m->status < 200)
		return;
	if (str_is(m->call_id, a->reg.call_id))
		on_register(a, m, now);
	else if (str_is(m->call_id, a->look.call_id))
		on_lookup(a, m, now);
	else if (str_is(m->call_id, a->chan.call_id))
		on_channel(a, m, now);
	else
		ctr_add(a->w, C_OTHER_ERRORS, 1);
}


void
agent_io(struct agent *a, uint32_t events, uint64_t now)
{
	struct worker *w = a->w;
	struct sipmsg m;
	int r = nbconn_io(&a->c, events);

	if (r == NBCONN_ERR) {
		agent_fail(a, a->c.why ? a->c.why : "connection failed", now);
		return;
	}
	if (r & NBCONN_UP) {
		ctr_add(w, C_CONNECTED, 1);
		if (agent_conf(a)->mode == MODE_CONNECT) {
			ctr_add(w, C_HANDSHAKES, 1);
			if (in_window(w, now))
				ctr_add(w, C_HANDSHAKES_WIN, 1);
			if (agent_conf(a)->regs_per_conn == 0) {
				nbconn_close(&a->c, true);
				agent_set_state(a, AG_IDLE, now);
				if (w->phase == PHASE_RUN)
					agent_start(a, now);
				return;
			}
		}
		send_register(a, NULL, now);
		if (a->state == AG_IDLE || a->state == AG_FAILED)
			return;
	}
	if (r & NBCONN_DATA) {
		for (;;) {
			enum agent_state before = a->state;
			char *msg;
			size_t len;
			int k = nbconn_next_raw(&a->c, &msg, &len);

			if (k == 0)
				break;
			if (k < 0) {
				agent_fail(a, a->c.why, now);
				return;
			}
			if (agent_rx_info_fast(a, msg, len, now))
				goto next;
			if (nbconn_parse(&a->c, msg, len, &m) != 0) {
				agent_fail(a, a->c.why, now);
				return;
			}
			if (m.status != 0)
				on_response(a, &m, now);
			else
				agent_rx_request(a, &m, now);
next:
			/* A handler that closed or restarted the connection. */
			if (a->state == AG_IDLE || a->state == AG_FAILED ||
			    (before != AG_CONNECTING && a->state == AG_CONNECTING))
				return;
		}
	}
	if (nbconn_pending(&a->c) && nbconn_flush(&a->c) != 0)
		agent_fail(a, a->c.why, now);
}

/* ---- load ---------------------------------------------------------------- */

bool
agent_can_post(const struct agent *a)
{
	return a->state == AG_READY && a->inflight < a->w->b->c.inflight &&
	       a->pend[(a->chan.cseq + 1) % AGENT_PEND].sent == 0;
}

bool
agent_post(struct agent *a, uint64_t due, uint64_t now)
{
	struct worker *w = a->w;
	const struct bench_conf *c = agent_conf(a);
	const char *room = w->b->room_uri[a->room];
	size_t need = c->size + strlen(room) + strlen(a->aor) + 512;
	uint64_t t;
	int n, head;

	if (!agent_can_post(a))
		return false;
	if (c->max_posts > 0 &&
	    atomic_fetch_add_explicit(&w->b->posts_issued, 1, memory_order_relaxed) >= c->max_posts)
		return false;
	if (w->scratch_cap < need) {
		char *p = realloc(w->scratch, need);

		if (p == NULL)
			return false;
		w->scratch = p;
		w->scratch_cap = need;
	}
	t = clock_mono_ns();
	n = snprintf(w->scratch, w->scratch_cap, "<xccos ver=\"1\" envid=\"%" PRIu64 "\" "
		     "xmlns=\"urn:parlano:xml:ns:xccos\"><grpchat id=\"grpchat\" seqid=\"1\" "
		     "chanUri=\"%s\" author=\"sip:%s\" ts=\"2010-09-21T09:48:10Z\"><chat>",
		     a->envid++, room, a->aor);
	head = snprintf(w->scratch + n, w->scratch_cap - n, "pb %u %u %" PRIu64 " ", a->gid,
			++a->post_seq, t);
	/* Pad the text to its size with letters (no escaping needed). */
	for (int i = head; i < (int)c->size; i++)
		w->scratch[n + i] = (char)('a' + i % 26);
	n += head > (int)c->size ? head : (int)c->size;
	n += snprintf(w->scratch + n, w->scratch_cap - n, "</chat></grpchat></xccos>");
	a->chan.cseq++;
	if (!agent_send_req(a, "INFO", a->target, a->chan_uri, &a->chan, NULL, "text/plain",
		      w->scratch)) {
		a->chan.cseq--;
		return false;
	}
	a->pend[a->chan.cseq % AGENT_PEND].cseq = a->chan.cseq;
	a->pend[a->chan.cseq % AGENT_PEND].sent = t;
	a->inflight++;
	ctr_add(w, C_POSTS_SENT, 1);
	if (worker_sec(w, t) != NULL)
		worker_sec(w, t)->sent++;
	if (in_window(w, t))
		hist_add(&w->lag, now >= due ? now - due : 0);
	if (nbconn_flush(&a->c) != 0)
		agent_fail(a, a->c.why, now);
	return true;
}

bool
agent_bccontext(struct agent *a, uint64_t now)
{
	char data[512];

	if (a->state != AG_READY || a->bcc_busy)
		return false;
	snprintf(data, sizeof(data), "<chanib uri=\"%s\"/><bcq><last cnt=\"%u\"/></bcq>",
		 a->w->b->room_uri[a->room], agent_conf(a)->hist_cnt);
	if (!send_cmd(a, &a->chan, a->chan_uri, "bccontext", data))
		return false;
	a->bcc_busy = true;
	a->bcc_sent = clock_mono_ns();
	if (nbconn_flush(&a->c) != 0)
		agent_fail(a, a->c.why, now);
	return true;
}

void
agent_tick(struct agent *a, uint64_t now)
{
	if (agent_in_setup(a) && now > a->deadline)
		agent_fail(a, "timed out", now);
}

void
agent_stop(struct agent *a)
{
	if (a->state == AG_READY)
		atomic_fetch_sub(&a->w->b->present[a->room], 1);
	nbconn_close(&a->c, true);
	a->state = AG_IDLE;
}
