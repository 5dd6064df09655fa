/* SIP over one connection's plaintext stream (RFC 3261 §18.3 framing).
 *
 * Frames messages out of c->in, parses each in place, and dispatches:
 * REGISTER and SUBSCRIBE to the registrar, INVITE-dialog methods to dialog.c,
 * OPTIONS answered here, known methods we do not serve 405, unknown 501.
 *
 * Server transactions (§17.2) over a reliable transport reduce to absorbing
 * retransmissions: the last CONN_TXN_CACHE answered requests are remembered
 * by key — the Via branch when it carries the RFC 3261 magic cookie, else
 * Call-ID + CSeq + From tag (the RFC 2543 rule; pidgin-sipe sends no branch
 * in-dialog) — and a repeat gets the same status again without side effects.
 *
 * Input that breaks framing closes the connection; a message that frames but
 * does not parse gets 400 when a response can be addressed, else the
 * connection is closed. Either way only this connection is affected.
 *
 * A 2xx response (a client's answer to each INFO we fan out, so one per
 * delivery) is only framed and counted, not parsed: nothing acts on it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dataplane/base/log.h"
#include "dataplane/engine/lcore.h"
#include "dataplane/session/dialog.h"
#include "dataplane/session/registrar.h"
#include "dataplane/session/session_ctr.h"
#include "dataplane/session/sipconn.h"
#include "dataplane/sip/sipmsg.h"
#include "dataplane/sip/sipout.h"

#define REPLY_MAX	8192
#define ALLOW_METHODS	"INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, SUBSCRIBE, INFO, UPDATE"
#define SUPPORTED_EXT	"timer"

static const char *const session_ctr_names[] = { SESSION_CTRS(CTR_NAME) };

const struct ctr_table session_ctr_table = {
	.first = ENGINE_CTR__END,
	.n = SESSION_CTR__END - ENGINE_CTR__END,
	.names = session_ctr_names,
};

_Static_assert(sizeof(session_ctr_names) / sizeof(session_ctr_names[0]) ==
	       SESSION_CTR__END - ENGINE_CTR__END, "one name per session counter");
_Static_assert(CTR_SIP_REQ_PUBLISH - CTR_SIP_REQ_UNKNOWN == SIP_M_PUBLISH - SIP_M_UNKNOWN,
	       "per-method counters follow enum sip_method");

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Transaction key: the branch when it carries the RFC 3261 cookie, else
 * Call-ID + CSeq + From tag; then the CSeq method, since CANCEL shares the
 * INVITE's branch but is its own transaction. */
static uint64_t
txn_key_of(struct sip_str branch, struct sip_str call_id, uint32_t cseq, struct sip_str from_tag,
	   enum sip_method meth)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	uint32_t mv = meth;

	if (branch.len > 7 && strncmp(branch.p, "z9hG4bK", 7) == 0) {
		h = fnv(h, branch.p, branch.len);
	} else {
		h = fnv(h, call_id.p, call_id.len);
		h = fnv(h, &cseq, sizeof(cseq));
		h = fnv(h, from_tag.p, from_tag.len);
	}
	return fnv(h, &mv, sizeof(mv));
}

/* A retransmission repeats the request byte for byte. pidgin-sipe resends
 * a challenged REGISTER with credentials but the same branch and CSeq (RFC
 * 3261 wants a new CSeq), so the credentials are part of the key: the
 * resend is a new request, not a retransmission to answer with the 407. */
static uint64_t
txn_key(const struct sipmsg *m)
{
	uint64_t h = txn_key_of(m->via_branch, m->call_id, m->cseq, m->from_tag, m->cseq_method);
	const struct sip_hdr *a = sipmsg_find(m, SIP_H_PROXY_AUTHORIZATION);

	if (a == NULL)
		a = sipmsg_find(m, SIP_H_AUTHORIZATION);
	return a != NULL ? fnv(h, a->value.p, a->value.len) : h;
}

static struct txn_entry *
txn_find(struct conn *c, uint64_t key)
{
	for (int i = 0; i < CONN_TXN_CACHE; i++)
		if (c->txn[i].status != 0 && c->txn[i].key == key)
			return &c->txn[i];
	return NULL;
}

/* True when an INVITE with the same Call-ID/CSeq as CANCEL <m> was answered. */
static bool
invite_answered(struct conn *c, const struct sipmsg *m)
{
	return txn_find(c, txn_key_of(m->via_branch, m->call_id, m->cseq, m->from_tag,
				      SIP_M_INVITE)) != NULL;
}

void
sipconn_tag(const struct conn *c, const struct sipmsg *req, char *out, size_t cap)
{
	uint64_t h = fnv(0xcbf29ce484222325ULL ^ c->id, req->call_id.p, req->call_id.len);

	h = fnv(h, req->from_tag.p, req->from_tag.len);
	snprintf(out, cap, "%016llx", (unsigned long long)h);
}

void
sipconn_reply(struct conn *c, const struct sipmsg *req, int status, const char *reason,
	      const char *hdrs, const char *ctype, const void *body, size_t blen)
{
	char buf[REPLY_MAX], tag[24];
	struct sipout o;
	ssize_t n;

	sipconn_tag(c, req, tag, sizeof(tag));
	sipout_init(&o, buf, sizeof(buf));
	sipout_response_start(&o, req, status, reason ? reason : sip_reason(status),
			      status > 100 ? tag : NULL);
	sipout_cstr(&o, "Server: Parley/0.1\r\n");
	if (hdrs != NULL)
		sipout_cstr(&o, hdrs);
	sipout_end(&o, ctype, body, blen);
	n = sipout_finish(&o);
	if (n < 0) {
		LOG(ERR, SIP, "response %d to %.*s does not fit in %d bytes", status,
		    (int)req->method_name.len, req->method_name.p, REPLY_MAX);
		return;
	}
	if (status >= 200 && req->method != SIP_M_ACK) {
		struct txn_entry *t = &c->txn[c->txn_next++ % CONN_TXN_CACHE];

		t->key = txn_key(req);
		t->status = (uint16_t)status;
	}
	ctr_sip_response(c->lc, status);
	conn_send(c, buf, n);
}

static void
reply_options(struct conn *c, const struct sipmsg *m)
{
	sipconn_reply(c, m, 200, NULL,
		      "Allow: " ALLOW_METHODS "\r\n"
		      "Accept: application/sdp, text/plain\r\n"
		      "Supported: " SUPPORTED_EXT "\r\n", NULL, NULL, 0);
}

/* 420 for a Require/Proxy-Require option we do not support (§8.2.2.3).
 * True when it answered. */
static bool
check_require(struct conn *c, const struct sipmsg *m)
{
	char hdr[300];

	for (const struct sip_hdr *h = sipmsg_find(m, SIP_H_REQUIRE); h != NULL;
	     h = sipmsg_find_next(m, h)) {
		struct sip_str rest = h->value, item;

		while (sip_list_next(&rest, &item)) {
			if (sip_str_ieq(item, SUPPORTED_EXT))
				continue;
			if (m->method == SIP_M_ACK || m->method == SIP_M_CANCEL)
				return false;	/* never answered, §8.2.2.3 */
			snprintf(hdr, sizeof(hdr), "Unsupported: %.*s\r\n",
				 (int)(item.len > 200 ? 200 : item.len), item.p);
			sipconn_reply(c, m, 420, NULL, hdr, NULL, NULL, 0);
			return true;
		}
	}
	return false;
}

/* True when the From identity differs from the one bound to the connection
 * (answered 403). */
static bool
identity_mismatch(struct conn *c, const struct sipmsg *m)
{
	char from[CONN_AOR_MAX];

	if (c->aor[0] == '\0')
		return false;
	if (sip_uri_aor(m->from_uri, from, sizeof(from)) >= 0 && strcasecmp(from, c->aor) == 0)
		return false;
	ctr_inc(c->lc, CTR_DROP_IDENTITY);
	LOG(INFO, SIP, "%s: %.*s from %.*s on a connection authenticated as %s: 403",
	    c->peer_str, (int)m->method_name.len, m->method_name.p, (int)m->from_uri.len,
	    m->from_uri.p, c->aor);
	if (m->method != SIP_M_ACK)
		sipconn_reply(c, m, 403, NULL,
			      "Warning: 399 parley \"From does not match the authenticated "
			      "identity of this connection\"\r\n", NULL, NULL, 0);
	return true;
}

static void
dispatch(struct conn *c, const struct sipmsg *m)
{
	struct txn_entry *t;

	if (!m->is_request) {
		ctr_inc(c->lc, CTR_SIP_RESPONSES_IN);
		dialog_response(c, m);
		return;
	}
	ctr_inc(c->lc, CTR_SIP_REQUESTS);
	ctr_inc(c->lc, (unsigned int)(CTR_SIP_REQ_UNKNOWN + m->method));
	if (m->method != SIP_M_ACK) {
		t = txn_find(c, txn_key(m));
		if (t != NULL) {	/* retransmission: same answer, no side effects */
			sipconn_reply(c, m, t->status, NULL, NULL, NULL, NULL, 0);
			return;
		}
	}
	if (identity_mismatch(c, m) || check_require(c, m))
		return;

	switch (m->method) {
	case SIP_M_REGISTER:
		registrar_register(c, m);
		return;
	case SIP_M_OPTIONS:
		reply_options(c, m);
		return;
	case SIP_M_CANCEL:
		/* Every INVITE is answered at once, so a CANCEL either finds it
		 * answered (200, no effect: §9.2) or finds nothing (481). */
		sipconn_reply(c, m, invite_answered(c, m) ? 200 : 481, NULL, NULL, NULL, NULL, 0);
		return;
	case SIP_M_ACK:
		dialog_request(c, m);
		return;
	default:
		break;
	}
	if (m->method == SIP_M_UNKNOWN) {
		sipconn_reply(c, m, 501, NULL, "Allow: " ALLOW_METHODS "\r\n", NULL, NULL, 0);
		return;
	}
	if (m->method != SIP_M_SUBSCRIBE && m->method != SIP_M_INVITE &&
	    m->method != SIP_M_BYE && m->method != SIP_M_UPDATE && m->method != SIP_M_INFO) {
		sipconn_reply(c, m, 405, NULL, "Allow: " ALLOW_METHODS "\r\n", NULL, NULL, 0);
		return;
	}
	if (c->aor[0] == '\0') {
		sipconn_reply(c, m, 403, NULL,
			      "Warning: 399 parley \"REGISTER first: this connection has no "
			      "authenticated identity\"\r\n", NULL, NULL, 0);
		return;
	}
	if (m->method == SIP_M_SUBSCRIBE)
		registrar_subscribe(c, m);
	else
		dialog_request(c, m);
}

/* A message framed but not parsed: 400 when it can be addressed. */
static void
reject(struct conn *c, struct sipmsg *m, int rc)
{
	const char *why = rc == -E2BIG ? "Too many header fields" :
			  rc == -EPROTONOSUPPORT ? NULL : "Malformed request";

	ctr_inc(c->lc, CTR_SIP_400);
	if (!m->is_request)
		return;		/* a broken response is dropped */
	if (!sipmsg_can_reply(m)) {
		ctr_inc(c->lc, CTR_DROP_FRAMING);
		LOG(DEBUG, SIP, "%s: unparsable request, closing", c->peer_str);
		conn_close(c, true);
		return;
	}
	if (m->method == SIP_M_ACK)
		return;
	sipconn_reply(c, m, rc == -EPROTONOSUPPORT ? 505 : 400, why, NULL, NULL, NULL, 0);
}

/* True when the framed message <p> (<n> bytes) is a response whose status
 * line reads "SIP/2.0 2xx ". */
static bool
is_2xx_response(const char *p, size_t n)
{
	return n > 12 && memcmp(p, "SIP/2.0 2", 9) == 0 && p[9] >= '0' && p[9] <= '9' &&
	       p[10] >= '0' && p[10] <= '9' && p[11] == ' ';
}

/* Frames and handles the complete messages at the head of <buf> (<len>
 * bytes, parsed in place); returns the bytes they took. What is left is the
 * start of a message. Stops when the connection is no longer open. */
static size_t
input(struct conn *c, char *buf, size_t len)
{
	const struct sipmsg_limits *lim = &lcore_conf(c->lc)->sip_lim;
	struct sipmsg m;
	size_t off = 0;

	while (c->state == CONN_OPEN && off < len) {
		size_t skip = sipmsg_skip_keepalive(buf + off, len - off);
		ssize_t n;
		int rc;

		if (skip > 0) {
			/* RFC 5626 §4.4.1: a double-CRLF ping gets a single-CRLF pong. */
			if (skip >= 4)
				conn_send(c, "\r\n", 2);
			ctr_inc(c->lc, CTR_SIP_KEEPALIVES);
			off += skip;
			continue;
		}
		n = sipmsg_frame(buf + off, len - off, lim);
		if (n == 0)
			break;
		if (n < 0) {
			ctr_inc(c->lc, n == -E2BIG ? CTR_DROP_TOO_BIG : CTR_DROP_FRAMING);
			LOG(DEBUG, SIP, "%s: %s, closing", c->peer_str,
			    n == -E2BIG ? "message too large" : "framing lost");
			conn_close(c, false);
			return off;
		}
		if (is_2xx_response(buf + off, (size_t)n)) {
			/* What a client answers to each of our INFOs: dialog.c acts
			 * only on failures, so a 2xx needs no parse. */
			ctr_inc(c->lc, CTR_SIP_RESPONSES_IN);
			off += n;
			continue;
		}
		rc = sipmsg_parse(&m, buf + off, n, lim);
		if (rc != 0)
			reject(c, &m, rc);
		else
			dispatch(c, &m);
		off += n;
	}
	return off;
}

/* The complete messages in c->in; the rest moves to its start. */
static void
input_pending(struct conn *c)
{
	size_t off = input(c, c->in, c->in_len);

	if (off > 0 && c->state != CONN_DEAD) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
}

/* Once a second: a registration that was not refreshed ends, then the
 * dialogs whose session expired. */
static void
sweep(struct conn *c, uint64_t now_s)
{
	if (c->aor[0] != '\0' && c->registered_until_s != 0 && now_s >= c->registered_until_s) {
		LOG(INFO, REGISTRAR, "%s: registration of %s expired", c->peer_str, c->aor);
		c->aor[0] = '\0';
		c->registered_until_s = 0;
	}
	dialog_sweep(c, now_s);
}

static const struct engine_proto sipconn_proto = {
	.init = registrar_init,
	.fini = registrar_fini,
	.input = input_pending,
	.input_buf = input,
	.conn_closed = dialog_conn_closed,
	.sweep = sweep,
	.obj_size = sizeof(struct dialog),
	.objs_per_conn = 4,
	.ctrs = &session_ctr_table,
};

void
sipconn_register(void)
{
	engine_register_proto(&sipconn_proto);
}
